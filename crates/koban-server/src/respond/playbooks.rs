//! Playbooks in `response.db`: the YAML as written (checked before it is kept), the
//! runs with their position, and the response log every step lands in.

use koban_respond::playbook::{RunState, Subject, TriggerOn};
use koban_respond::{Playbook, PlaybookError};
use rusqlite::{params, OptionalExtension};
use serde_json::{json, Value};

use super::{RespondError, ResponseBook};

type R<T> = Result<T, RespondError>;

/// The tenant column of a playbook every tenant runs (the provider's).
pub const ALL_TENANTS: &str = "*";

/// (tenant, playbook, yaml, updated_ms, updated_by).
type Stored = (String, Playbook, String, i64, String);

/// A run the driver is to carry on.
#[derive(Debug, Clone)]
pub struct OpenRun {
    pub id: i64,
    pub tenant: String,
    pub playbook: Playbook,
    pub incident: Option<i64>,
    pub run: RunState,
    pub waiting_action: Option<i64>,
}

impl ResponseBook {
    /// Checks and keeps a playbook for `tenant` (or [`ALL_TENANTS`]); replaces one of
    /// the same id. Every error at once, by path.
    pub fn put_playbook(
        &self,
        tenant: &str,
        yaml: &str,
        by: &str,
        now: i64,
    ) -> Result<Value, Vec<PlaybookError>> {
        let pb = Playbook::parse(yaml)?;
        let db = |e: rusqlite::Error| {
            vec![PlaybookError {
                path: "(database)".into(),
                message: e.to_string(),
            }]
        };
        self.conn()
            .execute(
                "INSERT INTO playbooks (tenant, id, yaml, updated_ms, updated_by)
                 VALUES (?1, ?2, ?3, ?4, ?5)
                 ON CONFLICT (tenant, id) DO UPDATE SET yaml = ?3, updated_ms = ?4, updated_by = ?5",
                params![tenant, pb.id, yaml, now, by],
            )
            .map_err(db)?;
        Ok(playbook_json(tenant, &pb, yaml, now, by))
    }

    pub fn delete_playbook(&self, tenant: &str, id: &str) -> R<()> {
        let n = self.conn().execute(
            "DELETE FROM playbooks WHERE tenant = ?1 AND id = ?2",
            params![tenant, id],
        )?;
        if n == 0 {
            return Err(RespondError::NotFound("playbook", id.to_owned()));
        }
        Ok(())
    }

    /// The playbooks `tenant` runs (its own and every tenant's); None: all of them.
    pub fn playbooks(&self, tenant: Option<&str>) -> R<Vec<Value>> {
        Ok(self
            .stored_playbooks(tenant)?
            .into_iter()
            .map(|(t, pb, yaml, at, by)| playbook_json(&t, &pb, &yaml, at, &by))
            .collect())
    }

    /// A stored playbook that no longer loads (a newer server's, say) is skipped with
    /// an error in the log.
    fn stored_playbooks(&self, tenant: Option<&str>) -> R<Vec<Stored>> {
        let conn = self.conn();
        let mut q = conn.prepare(
            "SELECT tenant, yaml, updated_ms, updated_by FROM playbooks
             WHERE ?1 IS NULL OR tenant = ?1 OR tenant = '*' ORDER BY tenant, id",
        )?;
        let rows = q.query_map(params![tenant], |r| {
            Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?))
        })?;
        let mut out = Vec::new();
        for row in rows {
            let (t, yaml, at, by): (String, String, i64, String) = row?;
            match Playbook::parse(&yaml) {
                Ok(pb) => out.push((t, pb, yaml, at, by)),
                Err(e) => {
                    tracing::error!(tenant = %t, errors = ?e, "stored playbook no longer loads")
                }
            }
        }
        Ok(out)
    }

    /// The enabled playbooks whose trigger matches `s`, for its tenant.
    pub fn matching_playbooks(&self, s: &Subject) -> R<Vec<(Playbook, String)>> {
        Ok(self
            .stored_playbooks(Some(&s.tenant))?
            .into_iter()
            .filter(|(_, pb, ..)| pb.enabled && pb.trigger.matches(s))
            .map(|(_, pb, yaml, ..)| (pb, yaml))
            .collect())
    }

    /// The last alert or incident id the driver looked at; None before the first look.
    pub fn cursor(&self, kind: TriggerOn) -> R<Option<i64>> {
        Ok(self
            .conn()
            .query_row(
                "SELECT last_id FROM playbook_cursor WHERE kind = ?1",
                [on_str(kind)],
                |r| r.get(0),
            )
            .optional()?)
    }

    /// Starts a run of each `(playbook, yaml)` for `s` and moves the cursor past it,
    /// in one transaction: a subject starts each playbook once.
    pub fn start_runs(
        &self,
        s: &Subject,
        playbooks: &[(Playbook, String)],
        cursor: i64,
        now: i64,
    ) -> R<Vec<i64>> {
        let mut conn = self.conn();
        let tx = conn.transaction()?;
        let mut ids = Vec::new();
        for (pb, yaml) in playbooks {
            let run = serde_json::to_string(&RunState::new(s)).unwrap_or_default();
            let n = tx.execute(
                "INSERT OR IGNORE INTO playbook_runs (tenant, playbook, yaml, subject_kind,
                     subject_id, incident, state, run, started_ms, updated_ms)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, 'running', ?7, ?8, ?8)",
                params![
                    s.tenant,
                    pb.id,
                    yaml,
                    on_str(s.on),
                    s.id,
                    s.incident,
                    run,
                    now
                ],
            )?;
            if n == 1 {
                let id = tx.last_insert_rowid();
                let what = format!("{} {} matched playbook {}", on_str(s.on), s.id, pb.id);
                log(
                    &tx,
                    &s.tenant,
                    s.incident,
                    now,
                    &pb.id,
                    id,
                    "started",
                    &json!({ "text": what }),
                )?;
                ids.push(id);
            }
        }
        tx.execute(
            "INSERT INTO playbook_cursor (kind, last_id) VALUES (?1, ?2)
             ON CONFLICT (kind) DO UPDATE SET last_id = MAX(last_id, ?2)",
            params![on_str(s.on), cursor],
        )?;
        tx.commit()?;
        Ok(ids)
    }

    /// Moves the cursor without a subject (the first look starts at the newest).
    pub fn set_cursor(&self, kind: TriggerOn, last_id: i64) -> R<()> {
        self.conn().execute(
            "INSERT INTO playbook_cursor (kind, last_id) VALUES (?1, ?2)
             ON CONFLICT (kind) DO UPDATE SET last_id = MAX(last_id, ?2)",
            params![on_str(kind), last_id],
        )?;
        Ok(())
    }

    /// Runs not finished.
    pub fn open_runs(&self) -> R<Vec<OpenRun>> {
        let conn = self.conn();
        let mut q = conn.prepare(
            "SELECT id, tenant, yaml, incident, run, waiting_action FROM playbook_runs
             WHERE state IN ('running', 'waiting') ORDER BY id",
        )?;
        let rows = q.query_map([], |r| {
            Ok((
                r.get::<_, i64>(0)?,
                r.get::<_, String>(1)?,
                r.get::<_, String>(2)?,
                r.get::<_, Option<i64>>(3)?,
                r.get::<_, String>(4)?,
                r.get::<_, Option<i64>>(5)?,
            ))
        })?;
        let mut out = Vec::new();
        for row in rows {
            let (id, tenant, yaml, incident, run, waiting_action) = row?;
            let (Ok(playbook), Ok(run)) = (Playbook::parse(&yaml), serde_json::from_str(&run))
            else {
                tracing::error!(run = id, "a playbook run no longer loads; left as it is");
                continue;
            };
            out.push(OpenRun {
                id,
                tenant,
                playbook,
                incident,
                run,
                waiting_action,
            });
        }
        Ok(out)
    }

    /// Saves where a run is: `state` running, waiting (on `waiting_action`), done or
    /// failed; with a log entry for the step just taken, in one transaction.
    pub fn save_run(
        &self,
        r: &OpenRun,
        state: &str,
        now: i64,
        step: &str,
        detail: &Value,
    ) -> R<()> {
        let mut conn = self.conn();
        let tx = conn.transaction()?;
        tx.execute(
            "UPDATE playbook_runs SET state = ?2, run = ?3, waiting_action = ?4, updated_ms = ?5,
                 detail = ?6 WHERE id = ?1",
            params![
                r.id,
                state,
                serde_json::to_string(&r.run).unwrap_or_default(),
                r.waiting_action,
                now,
                detail["text"].as_str().unwrap_or_default()
            ],
        )?;
        log(
            &tx,
            &r.tenant,
            r.incident,
            now,
            &r.playbook.id,
            r.id,
            step,
            detail,
        )?;
        tx.commit()?;
        Ok(())
    }

    /// The state of an action (for a run waiting on it).
    pub fn action_state(&self, id: i64) -> R<String> {
        self.conn()
            .query_row("SELECT state FROM actions WHERE id = ?1", [id], |r| {
                r.get(0)
            })
            .optional()?
            .ok_or_else(|| RespondError::NotFound("action", id.to_string()))
    }

    /// The agent of `tenant` on `host` (its name, or its short name, any case) and
    /// when it was last seen.
    pub fn agent_for_host(&self, tenant: &str, host: &str) -> R<Option<(String, Option<i64>)>> {
        let host = host.to_lowercase();
        let short = host.split('.').next().unwrap_or(&host).to_owned();
        Ok(self
            .conn()
            .query_row(
                "SELECT id, last_seen_ms FROM agents WHERE tenant = ?1
                   AND (lower(hostname) = ?2 OR lower(hostname) = ?3
                        OR substr(lower(hostname), 1, instr(lower(hostname) || '.', '.') - 1) = ?3)
                 ORDER BY last_seen_ms DESC LIMIT 1",
                params![tenant, host, short],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .optional()?)
    }

    /// Newest first; `tenant` None means every tenant.
    pub fn runs(&self, tenant: Option<&str>, limit: usize) -> R<Vec<Value>> {
        let conn = self.conn();
        let mut q = conn.prepare(
            "SELECT id, tenant, playbook, subject_kind, subject_id, incident, state,
                    waiting_action, started_ms, updated_ms, detail, run
             FROM playbook_runs WHERE ?1 IS NULL OR tenant = ?1 ORDER BY id DESC LIMIT ?2",
        )?;
        let rows = q.query_map(params![tenant, limit as i64], |r| {
            let run: String = r.get(11)?;
            let run: Value = serde_json::from_str(&run).unwrap_or(Value::Null);
            Ok(json!({
                "id": r.get::<_, i64>(0)?, "tenant": r.get::<_, String>(1)?,
                "playbook": r.get::<_, String>(2)?,
                "subject": { "kind": r.get::<_, String>(3)?, "id": r.get::<_, i64>(4)? },
                "incident": r.get::<_, Option<i64>>(5)?, "state": r.get::<_, String>(6)?,
                "waiting_action": r.get::<_, Option<i64>>(7)?,
                "started_ms": r.get::<_, i64>(8)?, "updated_ms": r.get::<_, i64>(9)?,
                "detail": r.get::<_, String>(10)?, "outcomes": run["outcomes"],
            }))
        })?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    /// Response log entries after `after`, oldest first (for the mirror).
    pub fn log_after(&self, after: i64, limit: usize) -> R<Vec<LogEntry>> {
        let conn = self.conn();
        let mut q = conn.prepare(
            "SELECT id, tenant, incident, at_ms, who, kind, object, detail FROM response_log
             WHERE id > ?1 ORDER BY id LIMIT ?2",
        )?;
        let rows = q.query_map(params![after, limit as i64], |r| {
            Ok(LogEntry {
                id: r.get(0)?,
                tenant: r.get(1)?,
                incident: r.get(2)?,
                at_ms: r.get(3)?,
                who: r.get(4)?,
                kind: r.get(5)?,
                object: r.get(6)?,
                detail: serde_json::from_str(&r.get::<_, String>(7)?).unwrap_or(Value::Null),
            })
        })?;
        Ok(rows.collect::<Result<_, _>>()?)
    }
}

/// One step of an action or a playbook run.
#[derive(Debug, Clone)]
pub struct LogEntry {
    pub id: i64,
    pub tenant: String,
    pub incident: Option<i64>,
    pub at_ms: i64,
    pub who: String,
    /// `action` or `playbook`.
    pub kind: String,
    /// `action 7`, `playbook contain run 3`.
    pub object: String,
    pub detail: Value,
}

#[allow(clippy::too_many_arguments)]
fn log(
    tx: &rusqlite::Transaction<'_>,
    tenant: &str,
    incident: Option<i64>,
    at: i64,
    playbook: &str,
    run: i64,
    step: &str,
    detail: &Value,
) -> R<()> {
    let mut d = detail.clone();
    d["step"] = json!(step);
    d["playbook"] = json!(playbook);
    d["run"] = json!(run);
    tx.execute(
        "INSERT INTO response_log (tenant, incident, at_ms, who, kind, object, detail)
         VALUES (?1, ?2, ?3, ?4, 'playbook', ?5, ?6)",
        params![
            tenant,
            incident,
            at,
            format!("playbook:{playbook}"),
            format!("playbook {playbook} run {run}"),
            d.to_string()
        ],
    )?;
    Ok(())
}

fn on_str(on: TriggerOn) -> &'static str {
    match on {
        TriggerOn::Alert => "alert",
        TriggerOn::Incident => "incident",
    }
}

fn playbook_json(tenant: &str, pb: &Playbook, yaml: &str, at: i64, by: &str) -> Value {
    let t = &pb.trigger;
    json!({
        "tenant": tenant, "id": pb.id, "name": pb.name, "description": pb.description,
        "enabled": pb.enabled,
        "trigger": {
            "on": t.on, "min_severity": t.min_severity, "rules": t.rules,
            "techniques": t.techniques, "tactics": t.tactics, "needs": t.needs,
            "retroactive": t.retroactive,
        },
        "steps": pb.steps().map(|(path, what)| json!({"path": path, "what": what})).collect::<Vec<_>>(),
        "yaml": yaml, "updated_ms": at, "updated_by": by,
    })
}
