//! Reading alerts and incidents for the API, as JSON ready to send.

use koban_detect::case::{clocks, default_targets, Milestones, SlaTargets};
use koban_detect::Grade;
use rusqlite::{params, params_from_iter, OptionalExtension, Row};
use serde_json::{json, Value};

use super::{AlertBook, AlertsError};

#[derive(Debug, Default, Clone)]
pub struct AlertFilter {
    pub tenant: Option<String>,
    pub incident: Option<i64>,
    pub rule: Option<String>,
    /// A verdict name, or `none` for alerts not triaged yet.
    pub verdict: Option<String>,
    /// Alerts with an id below this (paging newest first).
    pub before_id: Option<i64>,
    pub limit: usize,
}

#[derive(Debug, Default, Clone)]
pub struct IncidentFilter {
    pub tenant: Option<String>,
    pub state: Option<String>,
    pub before_id: Option<i64>,
    pub limit: usize,
}

const ALERT_COLUMNS: &str = "id, tenant, rule_key, title, level, tactics, techniques, entities,
    why, correlation, source, first_event_ms, last_event_ms, first_received_ms, created_ms,
    updated_ms, count, incident_id, verdict, verdict_reason, verdict_by, verdict_ms, retro";

fn json_col(r: &Row<'_>, i: usize) -> rusqlite::Result<Value> {
    let s: String = r.get(i)?;
    Ok(serde_json::from_str(&s).unwrap_or(Value::Null))
}

fn alert_json(r: &Row<'_>) -> rusqlite::Result<Value> {
    Ok(json!({
        "id": r.get::<_, i64>(0)?,
        "tenant": r.get::<_, String>(1)?,
        "rule": r.get::<_, String>(2)?,
        "title": r.get::<_, String>(3)?,
        "level": r.get::<_, String>(4)?,
        "tactics": json_col(r, 5)?,
        "techniques": json_col(r, 6)?,
        "entities": json_col(r, 7)?,
        "why": r.get::<_, String>(8)?,
        "correlation": r.get::<_, bool>(9)?,
        "source": r.get::<_, String>(10)?,
        "first_event_ms": r.get::<_, i64>(11)?,
        "last_event_ms": r.get::<_, i64>(12)?,
        "first_received_ms": r.get::<_, i64>(13)?,
        "created_ms": r.get::<_, i64>(14)?,
        "updated_ms": r.get::<_, i64>(15)?,
        "count": r.get::<_, i64>(16)?,
        "incident": r.get::<_, Option<i64>>(17)?,
        "verdict": r.get::<_, Option<String>>(18)?,
        "verdict_reason": r.get::<_, Option<String>>(19)?,
        "verdict_by": r.get::<_, Option<String>>(20)?,
        "verdict_ms": r.get::<_, Option<i64>>(21)?,
        "retroactive": r.get::<_, bool>(22)?,
    }))
}

const INCIDENT_COLUMNS: &str = "id, tenant, title, state, assignee, first_event_ms,
    last_event_ms, first_received_ms, created_ms, updated_ms, severity, impact, urgency,
    assessment, tactics, scope, alert_count, acknowledged_ms, contained_ms, resolved_ms";

fn incident_json(r: &Row<'_>) -> rusqlite::Result<Value> {
    Ok(json!({
        "id": r.get::<_, i64>(0)?,
        "tenant": r.get::<_, String>(1)?,
        "title": r.get::<_, String>(2)?,
        "state": r.get::<_, String>(3)?,
        "assignee": r.get::<_, Option<String>>(4)?,
        "first_event_ms": r.get::<_, i64>(5)?,
        "last_event_ms": r.get::<_, i64>(6)?,
        "first_received_ms": r.get::<_, Option<i64>>(7)?,
        "created_ms": r.get::<_, i64>(8)?,
        "updated_ms": r.get::<_, i64>(9)?,
        "severity": r.get::<_, String>(10)?,
        "impact": r.get::<_, String>(11)?,
        "urgency": r.get::<_, String>(12)?,
        "assessment": json_col(r, 13)?,
        "tactics": json_col(r, 14)?,
        "scope": json_col(r, 15)?,
        "alert_count": r.get::<_, i64>(16)?,
        "acknowledged_ms": r.get::<_, Option<i64>>(17)?,
        "contained_ms": r.get::<_, Option<i64>>(18)?,
        "resolved_ms": r.get::<_, Option<i64>>(19)?,
    }))
}

/// `WHERE` clauses and their parameters, built from the filters that are set.
struct Where {
    clauses: Vec<String>,
    params: Vec<rusqlite::types::Value>,
}

impl Where {
    fn new() -> Where {
        Where {
            clauses: vec!["1 = 1".into()],
            params: Vec::new(),
        }
    }

    fn add(&mut self, clause: &str, v: impl Into<rusqlite::types::Value>) {
        self.params.push(v.into());
        self.clauses
            .push(clause.replace('?', &format!("?{}", self.params.len())));
    }

    fn sql(&self) -> String {
        self.clauses.join(" AND ")
    }
}

impl AlertBook {
    pub fn alerts(&self, f: &AlertFilter) -> Result<Vec<Value>, AlertsError> {
        let mut w = Where::new();
        if let Some(t) = &f.tenant {
            w.add("tenant = ?", t.clone());
        }
        if let Some(i) = f.incident {
            w.add("incident_id = ?", i);
        }
        if let Some(r) = &f.rule {
            w.add("rule_key = ?", r.clone());
        }
        match f.verdict.as_deref() {
            Some("none") => w.clauses.push("verdict IS NULL".into()),
            Some(v) => w.add("verdict = ?", v.to_owned()),
            None => {}
        }
        if let Some(b) = f.before_id {
            w.add("id < ?", b);
        }
        let conn = self.conn();
        let mut st = conn.prepare(&format!(
            "SELECT {ALERT_COLUMNS} FROM alerts WHERE {} ORDER BY id DESC LIMIT {}",
            w.sql(),
            f.limit
        ))?;
        let rows = st.query_map(params_from_iter(w.params.iter()), alert_json)?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    /// Alerts of one tenant whose entities include `value` under one of `kinds`
    /// (case-insensitive; a user also as `DOMAIN\value`), overlapping the time range,
    /// oldest first: a timeline's alerts.
    pub fn alerts_for_entity(
        &self,
        tenant: &str,
        kinds: &[&str],
        value: &str,
        from_ms: Option<i64>,
        to_ms: Option<i64>,
        limit: usize,
    ) -> Result<Vec<Value>, AlertsError> {
        let conn = self.conn();
        let mut st = conn.prepare_cached(&format!(
            "SELECT {ALERT_COLUMNS} FROM alerts
             WHERE tenant = ?1 AND last_event_ms >= ?3 AND first_event_ms < ?4
               AND (lower(json_extract(entities, '$.' || ?2)) = lower(?5)
                    OR (?2 = 'user' AND lower(json_extract(entities, '$.user')) LIKE '%\\' || lower(?5)))
             ORDER BY first_event_ms, id LIMIT ?6"
        ))?;
        let mut out = Vec::new();
        for kind in kinds {
            let rows = st.query_map(
                params![
                    tenant,
                    kind,
                    from_ms.unwrap_or(i64::MIN),
                    to_ms.unwrap_or(i64::MAX),
                    value,
                    limit as i64
                ],
                alert_json,
            )?;
            for r in rows {
                out.push(r?);
            }
        }
        out.truncate(limit);
        Ok(out)
    }

    pub fn alert(&self, id: i64) -> Result<Option<Value>, AlertsError> {
        let conn = self.conn();
        let Some(mut a) = conn
            .query_row(
                &format!("SELECT {ALERT_COLUMNS} FROM alerts WHERE id = ?1"),
                [id],
                alert_json,
            )
            .optional()?
        else {
            return Ok(None);
        };
        let mut st = conn.prepare(
            "SELECT source, seq, sub, event_ms, received_ms FROM alert_events
             WHERE alert_id = ?1 ORDER BY rowid",
        )?;
        let events: Vec<Value> = st
            .query_map([id], |r| {
                Ok(json!({
                    "source": r.get::<_, String>(0)?,
                    "seq": r.get::<_, i64>(1)?,
                    "sub": r.get::<_, i64>(2)?,
                    "event_ms": r.get::<_, Option<i64>>(3)?,
                    "received_ms": r.get::<_, i64>(4)?,
                }))
            })?
            .collect::<Result<_, _>>()?;
        a["events"] = Value::Array(events);
        Ok(Some(a))
    }

    /// The tenant an alert or incident belongs to (for the access check).
    pub fn tenant_of(&self, table: Owner, id: i64) -> Result<Option<String>, AlertsError> {
        let conn = self.conn();
        let sql = match table {
            Owner::Alert => "SELECT tenant FROM alerts WHERE id = ?1",
            Owner::Incident => "SELECT tenant FROM incidents WHERE id = ?1",
        };
        Ok(conn.query_row(sql, [id], |r| r.get(0)).optional()?)
    }

    pub fn incidents(&self, f: &IncidentFilter) -> Result<Vec<Value>, AlertsError> {
        let mut w = Where::new();
        if let Some(t) = &f.tenant {
            w.add("tenant = ?", t.clone());
        }
        if let Some(s) = &f.state {
            w.add("state = ?", s.clone());
        }
        if let Some(b) = f.before_id {
            w.add("id < ?", b);
        }
        let conn = self.conn();
        let mut st = conn.prepare(&format!(
            "SELECT {INCIDENT_COLUMNS} FROM incidents WHERE {} ORDER BY id DESC LIMIT {}",
            w.sql(),
            f.limit
        ))?;
        let rows = st.query_map(params_from_iter(w.params.iter()), incident_json)?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    /// An incident with its alerts as a timeline, its case record, tasks and SLA clocks.
    pub fn incident(&self, id: i64, now_ms: i64) -> Result<Option<Value>, AlertsError> {
        let Some(mut inc) = self
            .conn()
            .query_row(
                &format!("SELECT {INCIDENT_COLUMNS} FROM incidents WHERE id = ?1"),
                [id],
                incident_json,
            )
            .optional()?
        else {
            return Ok(None);
        };
        let conn = self.conn();
        let mut st = conn.prepare(&format!(
            "SELECT {ALERT_COLUMNS} FROM alerts WHERE incident_id = ?1
             ORDER BY first_event_ms, id"
        ))?;
        let timeline: Vec<Value> = st.query_map([id], alert_json)?.collect::<Result<_, _>>()?;
        let mut st = conn.prepare(
            "SELECT id, at_ms, who, kind, detail FROM incident_log WHERE incident_id = ?1 ORDER BY id",
        )?;
        let log: Vec<Value> = st
            .query_map([id], |r| {
                Ok(json!({
                    "id": r.get::<_, i64>(0)?, "at_ms": r.get::<_, i64>(1)?,
                    "who": r.get::<_, String>(2)?, "kind": r.get::<_, String>(3)?,
                    "detail": serde_json::from_str::<Value>(&r.get::<_, String>(4)?)
                        .unwrap_or_else(|_| Value::Null),
                }))
            })?
            .collect::<Result<_, _>>()?;
        let mut st = conn.prepare(
            "SELECT id, title, created_ms, created_by, done_ms, done_by FROM tasks
             WHERE incident_id = ?1 ORDER BY id",
        )?;
        let tasks: Vec<Value> = st
            .query_map([id], |r| {
                Ok(json!({
                    "id": r.get::<_, i64>(0)?, "title": r.get::<_, String>(1)?,
                    "created_ms": r.get::<_, i64>(2)?, "created_by": r.get::<_, String>(3)?,
                    "done_ms": r.get::<_, Option<i64>>(4)?, "done_by": r.get::<_, Option<String>>(5)?,
                }))
            })?
            .collect::<Result<_, _>>()?;
        let tenant = inc["tenant"].as_str().unwrap_or_default().to_owned();
        let severity =
            Grade::parse(inc["severity"].as_str().unwrap_or("medium")).unwrap_or(Grade::Medium);
        let targets = sla_targets(&conn, &tenant, severity)?;
        let m = Milestones {
            first_received: inc["first_received_ms"].as_i64(),
            created: inc["created_ms"].as_i64().unwrap_or(now_ms),
            acknowledged: inc["acknowledged_ms"].as_i64(),
            contained: inc["contained_ms"].as_i64(),
            resolved: inc["resolved_ms"].as_i64(),
        };
        inc["alerts"] = Value::Array(timeline);
        inc["log"] = Value::Array(log);
        inc["tasks"] = Value::Array(tasks);
        inc["sla"] = json!({ "targets": targets, "clocks": clocks(&m, &targets, now_ms) });
        Ok(Some(inc))
    }

    /// Raw detections per source and rule (before folding), and the totals.
    pub fn detection_summary(&self, tenant: &str) -> Result<Value, AlertsError> {
        let conn = self.conn();
        let mut st = conn.prepare(
            "SELECT source, rule_key, count FROM detection_counts WHERE tenant = ?1
             ORDER BY source, rule_key",
        )?;
        let mut raw = 0i64;
        let per: Vec<Value> = st
            .query_map([tenant], |r| {
                Ok((
                    r.get::<_, String>(0)?,
                    r.get::<_, String>(1)?,
                    r.get::<_, i64>(2)?,
                ))
            })?
            .map(|row| {
                row.map(|(s, rule, n)| {
                    raw += n;
                    json!({"source": s, "rule": rule, "count": n})
                })
            })
            .collect::<Result<_, _>>()?;
        let count = |sql: &str| -> Result<i64, AlertsError> {
            Ok(conn.query_row(sql, params![tenant], |r| r.get(0))?)
        };
        Ok(json!({
            "tenant": tenant,
            "raw_detections": raw,
            "alerts": count("SELECT count(*) FROM alerts WHERE tenant = ?1")?,
            "incidents": count("SELECT count(*) FROM incidents WHERE tenant = ?1")?,
            "open_incidents": count("SELECT count(*) FROM incidents WHERE tenant = ?1 AND state != 'closed'")?,
            "by_source_rule": per,
        }))
    }
}

/// Which table an id belongs to.
#[derive(Debug, Clone, Copy)]
pub enum Owner {
    Alert,
    Incident,
}

/// The tenant's targets for a severity, else the defaults.
pub(super) fn sla_targets(
    conn: &rusqlite::Connection,
    tenant: &str,
    severity: Grade,
) -> Result<SlaTargets, AlertsError> {
    Ok(conn
        .query_row(
            "SELECT detect_s, acknowledge_s, contain_s, resolve_s FROM sla_targets
             WHERE tenant = ?1 AND severity = ?2",
            params![tenant, severity.as_str()],
            |r| {
                Ok(SlaTargets {
                    detect_s: r.get(0)?,
                    acknowledge_s: r.get(1)?,
                    contain_s: r.get(2)?,
                    resolve_s: r.get(3)?,
                })
            },
        )
        .optional()?
        .unwrap_or_else(|| default_targets(severity)))
}
