//! What analysts do to alerts and incidents: verdicts, exceptions (with how many past
//! alerts they would have suppressed), case state changes, assignment, comments,
//! evidence, tasks; and the tenant settings detection uses: rule overrides, asset
//! groups, SLA targets. Every change to a case lands in its log with who and when.

use koban_detect::case::{CaseState, SlaTargets, Verdict};
use koban_detect::{Entities, Grade};
use koban_sigma::Level;
use rusqlite::{params, OptionalExtension};
use serde::Deserialize;
use serde_json::{json, Value};

use super::policy::{self, entity_value, exception_row, Exception, EXCEPTION_COLUMNS};
use super::query::sla_targets;
use super::{AlertBook, AlertsError};

#[derive(Debug, thiserror::Error)]
pub enum TriageError {
    #[error("no {0} {1}")]
    NotFound(&'static str, i64),
    #[error("{0}")]
    Invalid(String),
    #[error(transparent)]
    Db(#[from] AlertsError),
}

impl From<rusqlite::Error> for TriageError {
    fn from(e: rusqlite::Error) -> Self {
        TriageError::Db(AlertsError::Db(e))
    }
}

/// A scoped exception: this rule, this entity or field value, until `expires_ms`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ExceptionRequest {
    pub tenant: String,
    pub rule: String,
    pub field: String,
    pub value: String,
    pub expires_ms: Option<i64>,
    #[serde(default)]
    pub reason: String,
}

fn log(
    conn: &rusqlite::Connection,
    incident: i64,
    at_ms: i64,
    who: &str,
    kind: &str,
    detail: Value,
) -> Result<(), TriageError> {
    conn.execute(
        "INSERT INTO incident_log (incident_id, at_ms, who, kind, detail) VALUES (?1, ?2, ?3, ?4, ?5)",
        params![incident, at_ms, who, kind, detail.to_string()],
    )?;
    conn.execute(
        "UPDATE incidents SET updated_ms = ?2 WHERE id = ?1",
        params![incident, at_ms],
    )?;
    Ok(())
}

impl AlertBook {
    /// Gives an alert a verdict. Returns the incident it belongs to.
    pub fn set_verdict(
        &self,
        alert: i64,
        verdict: Verdict,
        reason: &str,
        who: &str,
        now_ms: i64,
    ) -> Result<Option<i64>, TriageError> {
        let conn = self.conn();
        let incident: Option<Option<i64>> = conn
            .query_row(
                "SELECT incident_id FROM alerts WHERE id = ?1",
                [alert],
                |r| r.get(0),
            )
            .optional()?;
        let Some(incident) = incident else {
            return Err(TriageError::NotFound("alert", alert));
        };
        conn.execute(
            "UPDATE alerts SET verdict = ?2, verdict_reason = ?3, verdict_by = ?4, verdict_ms = ?5
             WHERE id = ?1",
            params![alert, verdict.as_str(), reason, who, now_ms],
        )?;
        if let Some(i) = incident {
            log(
                &conn,
                i,
                now_ms,
                who,
                "verdict",
                json!({"alert": alert, "verdict": verdict.as_str(), "reason": reason}),
            )?;
        }
        Ok(incident)
    }

    /// How many past alerts of this rule an exception would have suppressed, when its
    /// field is an entity the alerts record (`None` for other event fields: alerts do
    /// not keep whole events).
    pub fn exception_preview(&self, x: &ExceptionRequest) -> Result<Option<i64>, TriageError> {
        if !policy::ENTITY_FIELDS.contains(&x.field.as_str()) {
            return Ok(None);
        }
        let probe = Exception {
            id: 0,
            tenant: x.tenant.clone(),
            rule: x.rule.clone(),
            field: x.field.clone(),
            value: x.value.clone(),
            expires_ms: None,
            reason: String::new(),
            created_ms: 0,
            created_by: String::new(),
        };
        let conn = self.conn();
        let mut st =
            conn.prepare("SELECT entities, count FROM alerts WHERE tenant = ?1 AND rule_key = ?2")?;
        let mut n = 0i64;
        let mut rows = st.query(params![x.tenant, x.rule])?;
        while let Some(r) = rows.next()? {
            let e: Entities =
                serde_json::from_str(&r.get::<_, String>(0)?).map_err(AlertsError::from)?;
            if entity_value(&e, &x.field).is_some() && probe.covers(&e, None, 0) {
                n += r.get::<_, i64>(1)?;
            }
        }
        Ok(Some(n))
    }

    pub fn add_exception(
        &self,
        x: &ExceptionRequest,
        who: &str,
        now_ms: i64,
    ) -> Result<Exception, TriageError> {
        if x.field.trim().is_empty() || x.value.trim().is_empty() {
            return Err(TriageError::Invalid(
                "an exception needs a field and a value".into(),
            ));
        }
        if x.expires_ms.is_some_and(|e| e <= now_ms) {
            return Err(TriageError::Invalid(
                "expires_ms is in the past: the exception would never apply".into(),
            ));
        }
        let conn = self.conn();
        conn.execute(
            "INSERT INTO rule_exceptions (tenant, rule_key, field, value, expires_ms, reason,
                 created_ms, created_by) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
            params![
                x.tenant,
                x.rule,
                x.field,
                x.value,
                x.expires_ms,
                x.reason,
                now_ms,
                who
            ],
        )?;
        let id = conn.last_insert_rowid();
        policy::bump(&conn)?;
        Ok(conn.query_row(
            &format!("SELECT {EXCEPTION_COLUMNS} FROM rule_exceptions WHERE id = ?1"),
            [id],
            exception_row,
        )?)
    }

    pub fn exceptions(&self, tenant: &str) -> Result<Vec<Exception>, TriageError> {
        let conn = self.conn();
        let mut st = conn.prepare(&format!(
            "SELECT {EXCEPTION_COLUMNS} FROM rule_exceptions WHERE tenant = ?1 ORDER BY id"
        ))?;
        let rows = st.query_map([tenant], exception_row)?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    pub fn delete_exception(&self, tenant: &str, id: i64) -> Result<(), TriageError> {
        let conn = self.conn();
        let n = conn.execute(
            "DELETE FROM rule_exceptions WHERE id = ?1 AND tenant = ?2",
            params![id, tenant],
        )?;
        if n == 0 {
            return Err(TriageError::NotFound("exception", id));
        }
        policy::bump(&conn)?;
        Ok(())
    }

    /// Moves a case along its lifecycle; the first move out of `new` acknowledges it.
    pub fn transition(
        &self,
        incident: i64,
        to: CaseState,
        who: &str,
        note: &str,
        now_ms: i64,
    ) -> Result<(), TriageError> {
        let conn = self.conn();
        let state: Option<String> = conn
            .query_row(
                "SELECT state FROM incidents WHERE id = ?1",
                [incident],
                |r| r.get(0),
            )
            .optional()?;
        let Some(state) = state else {
            return Err(TriageError::NotFound("incident", incident));
        };
        let from = CaseState::parse(&state).unwrap_or(CaseState::New);
        from.can_go_to(to).map_err(TriageError::Invalid)?;
        conn.execute(
            "UPDATE incidents SET state = ?2,
                acknowledged_ms = coalesce(acknowledged_ms, ?3),
                contained_ms = CASE WHEN ?4 THEN coalesce(contained_ms, ?3) ELSE contained_ms END,
                resolved_ms = CASE WHEN ?5 THEN ?3 WHEN ?6 THEN NULL ELSE resolved_ms END
             WHERE id = ?1",
            params![
                incident,
                to.as_str(),
                now_ms,
                to >= CaseState::Contained && to != CaseState::Closed,
                to == CaseState::Closed,
                from == CaseState::Closed
            ],
        )?;
        log(
            &conn,
            incident,
            now_ms,
            who,
            "state",
            json!({"from": from.as_str(), "to": to.as_str(), "note": note}),
        )
    }

    pub fn assign(
        &self,
        incident: i64,
        assignee: &str,
        who: &str,
        now_ms: i64,
    ) -> Result<(), TriageError> {
        let conn = self.conn();
        let n = conn.execute(
            "UPDATE incidents SET assignee = ?2, acknowledged_ms = coalesce(acknowledged_ms, ?3)
             WHERE id = ?1",
            params![incident, assignee, now_ms],
        )?;
        if n == 0 {
            return Err(TriageError::NotFound("incident", incident));
        }
        log(
            &conn,
            incident,
            now_ms,
            who,
            "assigned",
            json!({"assignee": assignee}),
        )
    }

    /// A comment, an evidence link, or a task added to the case record.
    pub fn annotate(
        &self,
        incident: i64,
        kind: Annotation<'_>,
        who: &str,
        now_ms: i64,
    ) -> Result<Option<i64>, TriageError> {
        let conn = self.conn();
        let exists: Option<i64> = conn
            .query_row("SELECT id FROM incidents WHERE id = ?1", [incident], |r| {
                r.get(0)
            })
            .optional()?;
        if exists.is_none() {
            return Err(TriageError::NotFound("incident", incident));
        }
        match kind {
            Annotation::Comment { text, side } => {
                if text.trim().is_empty() {
                    return Err(TriageError::Invalid("a comment needs text".into()));
                }
                log(
                    &conn,
                    incident,
                    now_ms,
                    who,
                    "comment",
                    json!({"text": text, "side": side}),
                )?;
                Ok(None)
            }
            Annotation::Evidence { url, note } => {
                if url.trim().is_empty() {
                    return Err(TriageError::Invalid("evidence needs a url".into()));
                }
                log(
                    &conn,
                    incident,
                    now_ms,
                    who,
                    "evidence",
                    json!({"url": url, "note": note}),
                )?;
                Ok(None)
            }
            Annotation::Task { title } => {
                if title.trim().is_empty() {
                    return Err(TriageError::Invalid("a task needs a title".into()));
                }
                conn.execute(
                    "INSERT INTO tasks (incident_id, title, created_ms, created_by) VALUES (?1, ?2, ?3, ?4)",
                    params![incident, title, now_ms, who],
                )?;
                let id = conn.last_insert_rowid();
                log(
                    &conn,
                    incident,
                    now_ms,
                    who,
                    "task",
                    json!({"task": id, "title": title}),
                )?;
                Ok(Some(id))
            }
        }
    }

    pub fn finish_task(
        &self,
        incident: i64,
        task: i64,
        who: &str,
        now_ms: i64,
    ) -> Result<(), TriageError> {
        let conn = self.conn();
        let n = conn.execute(
            "UPDATE tasks SET done_ms = ?3, done_by = ?4 WHERE id = ?1 AND incident_id = ?2 AND done_ms IS NULL",
            params![task, incident, now_ms, who],
        )?;
        if n == 0 {
            return Err(TriageError::NotFound("open task", task));
        }
        log(
            &conn,
            incident,
            now_ms,
            who,
            "task_done",
            json!({"task": task}),
        )
    }

    /// Enables/disables a rule for a tenant or changes its level; takes effect at the
    /// detection stage's next batch.
    pub fn set_override(
        &self,
        tenant: &str,
        rule: &str,
        enabled: bool,
        level: Option<&str>,
        who: &str,
        now_ms: i64,
    ) -> Result<(), TriageError> {
        if let Some(l) = level {
            if Level::parse(l).is_none() {
                return Err(TriageError::Invalid(format!(
                    "level `{l}`: use informational, low, medium, high or critical"
                )));
            }
        }
        let conn = self.conn();
        conn.execute(
            "INSERT INTO rule_overrides VALUES (?1, ?2, ?3, ?4, ?5, ?6)
             ON CONFLICT (tenant, rule_key) DO UPDATE SET enabled = excluded.enabled,
                 level = excluded.level, updated_ms = excluded.updated_ms,
                 updated_by = excluded.updated_by",
            params![tenant, rule, enabled, level, now_ms, who],
        )?;
        policy::bump(&conn)?;
        Ok(())
    }

    /// Replaces a tenant's asset groups.
    pub fn set_assets(&self, tenant: &str, groups: &[AssetGroup]) -> Result<(), TriageError> {
        for (i, g) in groups.iter().enumerate() {
            if g.kind != "host" && g.kind != "user" {
                return Err(TriageError::Invalid(format!(
                    "groups[{i}].kind `{}`: use host or user",
                    g.kind
                )));
            }
            if Grade::parse(&g.criticality).is_none() {
                return Err(TriageError::Invalid(format!(
                    "groups[{i}].criticality `{}`: use low, medium, high or critical",
                    g.criticality
                )));
            }
        }
        let mut conn = self.conn();
        let tx = conn.transaction()?;
        tx.execute("DELETE FROM asset_groups WHERE tenant = ?1", [tenant])?;
        for g in groups {
            for p in &g.patterns {
                tx.execute(
                    "INSERT INTO asset_groups (tenant, name, kind, pattern, criticality)
                     VALUES (?1, ?2, ?3, ?4, ?5)",
                    params![tenant, g.name, g.kind, p, g.criticality],
                )?;
            }
        }
        tx.commit()?;
        Ok(())
    }

    pub fn set_sla(
        &self,
        tenant: &str,
        severity: Grade,
        t: &SlaTargets,
    ) -> Result<(), TriageError> {
        if [t.detect_s, t.acknowledge_s, t.contain_s, t.resolve_s]
            .iter()
            .any(|s| *s <= 0)
        {
            return Err(TriageError::Invalid(
                "SLA targets are positive seconds".into(),
            ));
        }
        self.conn().execute(
            "INSERT INTO sla_targets VALUES (?1, ?2, ?3, ?4, ?5, ?6)
             ON CONFLICT (tenant, severity) DO UPDATE SET detect_s = excluded.detect_s,
                 acknowledge_s = excluded.acknowledge_s, contain_s = excluded.contain_s,
                 resolve_s = excluded.resolve_s",
            params![
                tenant,
                severity.as_str(),
                t.detect_s,
                t.acknowledge_s,
                t.contain_s,
                t.resolve_s
            ],
        )?;
        Ok(())
    }

    pub fn sla(&self, tenant: &str) -> Result<Value, TriageError> {
        let conn = self.conn();
        let mut out = serde_json::Map::new();
        for g in [Grade::Critical, Grade::High, Grade::Medium, Grade::Low] {
            out.insert(g.as_str().into(), json!(sla_targets(&conn, tenant, g)?));
        }
        Ok(Value::Object(out))
    }
}

pub enum Annotation<'a> {
    Comment { text: &'a str, side: &'a str },
    Evidence { url: &'a str, note: &'a str },
    Task { title: &'a str },
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AssetGroup {
    pub name: String,
    /// `host` or `user`.
    pub kind: String,
    /// Names with `*` wildcards, compared case-insensitively.
    pub patterns: Vec<String>,
    pub criticality: String,
}
