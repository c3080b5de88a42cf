//! `response.db`: enrolment tokens, agents, actions and each action's steps.

use std::path::Path;
use std::sync::{Mutex, MutexGuard};

use koban_respond::{
    Action, CommandSigner, Gate, Runner, SignedCommand, State as ActionState, Step,
};
use rusqlite::{params, Connection, OptionalExtension};
use serde_json::{json, Value};

use crate::state::{hash_token, new_secret};

#[derive(Debug, thiserror::Error)]
pub enum RespondError {
    #[error("response database: {0}")]
    Db(#[from] rusqlite::Error),
    #[error("command key {path}: {message}")]
    Key { path: String, message: String },
    /// The agent's credentials or the enrolment token do not hold.
    #[error("{0}")]
    Unauthorized(&'static str),
    #[error("no {0} {1}")]
    NotFound(&'static str, String),
    #[error("{0}")]
    Invalid(String),
}

type R<T> = Result<T, RespondError>;

const MIGRATIONS: &[&str] = &[
    "CREATE TABLE enrol_tokens (
        hash TEXT PRIMARY KEY,
        tenant TEXT NOT NULL,
        created_ms INTEGER NOT NULL,
        expires_ms INTEGER NOT NULL,
        used_by TEXT
    );
    CREATE TABLE agents (
        id TEXT PRIMARY KEY,
        tenant TEXT NOT NULL,
        hostname TEXT NOT NULL,
        secret_hash TEXT NOT NULL,
        enrolled_ms INTEGER NOT NULL,
        last_seen_ms INTEGER,
        status TEXT NOT NULL DEFAULT '{}',
        next_number INTEGER NOT NULL DEFAULT 1
    );
    CREATE INDEX agents_tenant ON agents(tenant);
    CREATE TABLE actions (
        id INTEGER PRIMARY KEY,
        tenant TEXT NOT NULL,
        agent TEXT REFERENCES agents(id),
        incident INTEGER,
        action TEXT NOT NULL,
        kind TEXT NOT NULL,
        state TEXT NOT NULL,
        requested_by TEXT NOT NULL,
        requested_ms INTEGER NOT NULL,
        decided_by TEXT,
        decided_ms INTEGER,
        escalate_at_ms INTEGER,
        expire_at_ms INTEGER,
        ttl_ms INTEGER,
        undo_at_ms INTEGER,
        undo_of INTEGER REFERENCES actions(id),
        number INTEGER,
        sent_ms INTEGER,
        ran_ms INTEGER,
        detail TEXT,
        observed TEXT,
        updated_ms INTEGER NOT NULL
    );
    CREATE INDEX actions_tenant ON actions(tenant, id);
    CREATE INDEX actions_agent_state ON actions(agent, state);
    CREATE TABLE action_steps (
        action INTEGER NOT NULL REFERENCES actions(id),
        at_ms INTEGER NOT NULL,
        step TEXT NOT NULL,
        by TEXT NOT NULL,
        detail TEXT NOT NULL
    );
    CREATE INDEX action_steps_action ON action_steps(action, at_ms);",
    // The last spooled log line (the agent's sequence number) the server holds.
    "ALTER TABLE agents ADD COLUMN shipped_seq INTEGER NOT NULL DEFAULT 0;",
    // Playbooks and their runs; and every step of an action or a run, in order, for
    // the incident timeline and the audit log (`mirror.rs` copies it there).
    "CREATE TABLE response_log (
        id INTEGER PRIMARY KEY,
        tenant TEXT NOT NULL,
        incident INTEGER,
        at_ms INTEGER NOT NULL,
        who TEXT NOT NULL,
        kind TEXT NOT NULL,
        object TEXT NOT NULL,
        detail TEXT NOT NULL
    );
    CREATE TABLE playbooks (
        tenant TEXT NOT NULL,
        id TEXT NOT NULL,
        yaml TEXT NOT NULL,
        updated_ms INTEGER NOT NULL,
        updated_by TEXT NOT NULL,
        PRIMARY KEY (tenant, id)
    );
    CREATE TABLE playbook_runs (
        id INTEGER PRIMARY KEY,
        tenant TEXT NOT NULL,
        playbook TEXT NOT NULL,
        yaml TEXT NOT NULL,
        subject_kind TEXT NOT NULL,
        subject_id INTEGER NOT NULL,
        incident INTEGER,
        state TEXT NOT NULL,
        run TEXT NOT NULL,
        waiting_action INTEGER REFERENCES actions(id),
        started_ms INTEGER NOT NULL,
        updated_ms INTEGER NOT NULL,
        detail TEXT NOT NULL DEFAULT '',
        UNIQUE (tenant, playbook, subject_kind, subject_id)
    );
    CREATE INDEX playbook_runs_state ON playbook_runs(state);
    -- The run and step that asked for an action: a run that restarts after a crash
    -- finds its action instead of asking twice.
    ALTER TABLE actions ADD COLUMN run INTEGER;
    ALTER TABLE actions ADD COLUMN run_step TEXT;
    CREATE INDEX actions_run ON actions(run, run_step);
    CREATE TABLE playbook_cursor (
        kind TEXT PRIMARY KEY,
        last_id INTEGER NOT NULL
    );",
    // Files agents collected for forensics (evidence.rs).
    "CREATE TABLE evidence (
        action INTEGER NOT NULL REFERENCES actions(id),
        idx INTEGER NOT NULL,
        path TEXT NOT NULL,
        sha256 TEXT NOT NULL,
        agent_sha256 TEXT NOT NULL,
        bytes INTEGER NOT NULL,
        kept TEXT NOT NULL,
        at_ms INTEGER NOT NULL,
        PRIMARY KEY (action, idx)
    );",
];

/// How long an agent's command stays valid after it is sent.
const COMMAND_VALIDITY_MS: i64 = 10 * 60_000;
/// How long an enrolment token can be used.
pub const ENROL_TOKEN_TTL_MS: i64 = 24 * 3_600_000;

pub struct ResponseBook {
    conn: Mutex<Connection>,
    signer: CommandSigner,
    /// The names of the configured connectors (`[[respond.connectors]]`).
    connectors: Vec<String>,
    /// The data dir (collected files go under `evidence/`).
    dir: std::path::PathBuf,
}

/// What enrolment gives an agent.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Enrolled {
    pub agent: String,
    /// Shown once; the server keeps only its hash.
    pub secret: String,
    pub tenant: String,
    /// The key the agent checks commands with (base64 of 32 bytes).
    pub server_key: String,
}

/// An authenticated agent.
#[derive(Debug, Clone)]
pub struct AgentAuth {
    pub id: String,
    pub tenant: String,
    pub hostname: String,
}

/// What an agent reports after running a command.
#[derive(Debug, Clone, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Outcome {
    pub number: u64,
    /// It ran without error.
    pub ran: bool,
    /// The observed state matches what the action asked for.
    pub verified: bool,
    pub detail: String,
    #[serde(default)]
    pub observed: Value,
}

/// An action asked for, already validated and gated.
#[derive(Debug, Clone)]
pub struct ActionRequest {
    pub tenant: String,
    pub agent: Option<String>,
    pub incident: Option<i64>,
    pub action: Action,
    /// Undo the action this long after it is verified (a 24-hour block).
    pub ttl_ms: Option<i64>,
    pub by: String,
    /// The playbook run and step asking, when a playbook asks.
    pub run: Option<(i64, String)>,
}

impl ResponseBook {
    /// Opens `dir/response.db` and the command key, making both on first start.
    pub fn open(dir: &Path) -> R<ResponseBook> {
        let mut conn = Connection::open(dir.join("response.db"))?;
        conn.pragma_update(None, "journal_mode", "WAL")?;
        conn.pragma_update(None, "foreign_keys", "ON")?;
        let done: i64 = conn.pragma_query_value(None, "user_version", |r| r.get(0))?;
        for (i, m) in MIGRATIONS.iter().enumerate().skip(done.max(0) as usize) {
            // Each migration and its version number together, or neither.
            let tx = conn.transaction()?;
            tx.execute_batch(m)?;
            tx.pragma_update(None, "user_version", i as i64 + 1)?;
            tx.commit()?;
        }
        let signer = load_key(&dir.join("command.key"))?;
        Ok(ResponseBook {
            conn: Mutex::new(conn),
            signer,
            connectors: Vec::new(),
            dir: dir.to_path_buf(),
        })
    }

    /// The connectors actions may name.
    pub fn with_connectors(mut self, names: Vec<String>) -> ResponseBook {
        self.connectors = names;
        self
    }

    pub(super) fn dir(&self) -> &Path {
        &self.dir
    }

    pub(super) fn conn(&self) -> MutexGuard<'_, Connection> {
        self.conn.lock().unwrap_or_else(|p| p.into_inner())
    }

    pub fn server_key(&self) -> String {
        use base64::Engine;
        base64::engine::general_purpose::STANDARD.encode(self.signer.public_key())
    }

    /// A one-time token an agent of `tenant` enrols with.
    pub fn new_enrol_token(&self, tenant: &str, now: i64) -> R<String> {
        let token = new_secret("kbe_");
        self.conn().execute(
            "INSERT INTO enrol_tokens (hash, tenant, created_ms, expires_ms) VALUES (?1, ?2, ?3, ?4)",
            params![hash_token(&token), tenant, now, now + ENROL_TOKEN_TTL_MS],
        )?;
        Ok(token)
    }

    /// Spends an enrolment token on a new agent.
    pub fn enrol(&self, token: &str, hostname: &str, now: i64) -> R<Enrolled> {
        let hostname = hostname.trim();
        if hostname.is_empty() || hostname.len() > 255 || hostname.chars().any(char::is_control) {
            return Err(RespondError::Invalid(
                "hostname: 1 to 255 printable characters".into(),
            ));
        }
        let mut conn = self.conn();
        let tx = conn.transaction()?;
        let row: Option<(String, i64, Option<String>)> = tx
            .query_row(
                "SELECT tenant, expires_ms, used_by FROM enrol_tokens WHERE hash = ?1",
                [hash_token(token)],
                |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
            )
            .optional()?;
        let tenant = match row {
            Some((tenant, expires, None)) if expires > now => tenant,
            Some((_, _, Some(_))) => {
                return Err(RespondError::Unauthorized(
                    "the enrolment token was used already",
                ))
            }
            Some(_) => return Err(RespondError::Unauthorized("the enrolment token expired")),
            None => return Err(RespondError::Unauthorized("unknown enrolment token")),
        };
        let id = format!("agt-{}", &new_secret("")[..16]);
        let secret = new_secret("kba_");
        tx.execute(
            "INSERT INTO agents (id, tenant, hostname, secret_hash, enrolled_ms, last_seen_ms)
             VALUES (?1, ?2, ?3, ?4, ?5, ?5)",
            params![id, tenant, hostname, hash_token(&secret), now],
        )?;
        tx.execute(
            "UPDATE enrol_tokens SET used_by = ?2 WHERE hash = ?1",
            params![hash_token(token), id],
        )?;
        tx.commit()?;
        Ok(Enrolled {
            agent: id,
            secret,
            tenant,
            server_key: self.server_key(),
        })
    }

    /// The agent behind `id` and `secret`, or why not.
    pub fn authenticate(&self, id: &str, secret: &str) -> R<AgentAuth> {
        let row: Option<(String, String, String)> = self
            .conn()
            .query_row(
                "SELECT tenant, hostname, secret_hash FROM agents WHERE id = ?1",
                [id],
                |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
            )
            .optional()?;
        match row {
            Some((tenant, hostname, hash)) if constant_eq(&hash, &hash_token(secret)) => {
                Ok(AgentAuth {
                    id: id.to_owned(),
                    tenant,
                    hostname,
                })
            }
            _ => Err(RespondError::Unauthorized("unknown agent or wrong secret")),
        }
    }

    /// A heartbeat: records the agent's status and hands it the commands now due, each
    /// signed with the next number of that agent.
    pub fn poll(&self, agent: &AgentAuth, status: &Value, now: i64) -> R<Vec<SignedCommand>> {
        let mut conn = self.conn();
        let tx = conn.transaction()?;
        tx.execute(
            "UPDATE agents SET last_seen_ms = ?2, status = ?3 WHERE id = ?1",
            params![agent.id, now, status.to_string()],
        )?;
        // Commands sent before but never reported (the agent restarted, the answer
        // was lost) go again under a new number: the agent refuses old numbers.
        let due: Vec<(i64, String)> = {
            let mut q = tx.prepare(
                "SELECT id, action FROM actions
                 WHERE agent = ?1 AND (state = 'queued' OR (state = 'sent' AND sent_ms < ?2))
                 ORDER BY id",
            )?;
            let rows = q.query_map(params![agent.id, now - COMMAND_VALIDITY_MS], |r| {
                Ok((r.get(0)?, r.get(1)?))
            })?;
            rows.collect::<Result<_, _>>()?
        };
        let mut out = Vec::with_capacity(due.len());
        for (id, action_json) in due {
            let action: Action = serde_json::from_str(&action_json)
                .map_err(|e| RespondError::Invalid(format!("stored action {id}: {e}")))?;
            let number: i64 = tx.query_row(
                "UPDATE agents SET next_number = next_number + 1 WHERE id = ?1 RETURNING next_number - 1",
                [&agent.id],
                |r| r.get(0),
            )?;
            let command = koban_respond::Command {
                agent: agent.id.clone(),
                number: number as u64,
                action_id: id,
                issued_ms: now,
                expires_ms: now + COMMAND_VALIDITY_MS,
                action,
            };
            tx.execute(
                "UPDATE actions SET state = 'sent', number = ?2, sent_ms = ?3, updated_ms = ?3 WHERE id = ?1",
                params![id, number, now],
            )?;
            step(
                &tx,
                id,
                now,
                "sent",
                &agent.id,
                &format!("command {number}"),
            )?;
            out.push(self.signer.sign(&command));
        }
        tx.commit()?;
        Ok(out)
    }

    /// The agent's report of command `number`.
    pub fn report(&self, agent: &AgentAuth, o: &Outcome, now: i64) -> R<Value> {
        let mut conn = self.conn();
        let tx = conn.transaction()?;
        let row: Option<(i64, String, Option<i64>, Option<i64>)> = tx
            .query_row(
                "SELECT id, state, ttl_ms, undo_of FROM actions WHERE agent = ?1 AND number = ?2",
                params![agent.id, o.number as i64],
                |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)),
            )
            .optional()?;
        let Some((id, state, ttl, undo_of)) = row else {
            return Err(RespondError::NotFound("command", o.number.to_string()));
        };
        let to = finish(&tx, (id, &state, ttl, undo_of), o, &agent.id, now)?;
        tx.commit()?;
        Ok(json!({ "action": id, "state": to.as_str() }))
    }

    /// Actions for connectors, approved (or needing no approval) and not yet run.
    pub fn connector_queue(&self) -> R<Vec<(i64, String, Action)>> {
        let conn = self.conn();
        let mut q = conn.prepare(
            "SELECT id, tenant, action FROM actions WHERE agent IS NULL AND state = 'queued'
             ORDER BY id",
        )?;
        let rows = q.query_map([], |r| {
            Ok((
                r.get::<_, i64>(0)?,
                r.get::<_, String>(1)?,
                r.get::<_, String>(2)?,
            ))
        })?;
        let mut out = Vec::new();
        for row in rows {
            let (id, tenant, action) = row?;
            match serde_json::from_str(&action) {
                Ok(a) => out.push((id, tenant, a)),
                Err(e) => tracing::error!(action = id, error = %e, "stored action no longer loads"),
            }
        }
        Ok(out)
    }

    /// A connector takes its action (queued → sent).
    pub fn connector_sent(&self, id: i64, connector: &str, now: i64) -> R<()> {
        self.advance(id, Step::Send, &format!("connector:{connector}"), "", now)
            .map(|_| ())
    }

    /// What a connector's run came to: ran, and whether the answer confirms the state.
    pub fn connector_result(&self, id: i64, connector: &str, o: &Outcome, now: i64) -> R<Value> {
        let mut conn = self.conn();
        let tx = conn.transaction()?;
        let (state, ttl, undo_of): (String, Option<i64>, Option<i64>) = tx
            .query_row(
                "SELECT state, ttl_ms, undo_of FROM actions WHERE id = ?1 AND agent IS NULL",
                [id],
                |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
            )
            .optional()?
            .ok_or_else(|| RespondError::NotFound("action", id.to_string()))?;
        let by = format!("connector:{connector}");
        let to = finish(&tx, (id, &state, ttl, undo_of), o, &by, now)?;
        tx.commit()?;
        Ok(json!({ "action": id, "state": to.as_str() }))
    }
}

/// Moves action `id` (in `state`) to what its runner observed; a verified undo closes
/// the action it undid.
fn finish(
    tx: &rusqlite::Transaction<'_>,
    (id, state, ttl, undo_of): (i64, &str, Option<i64>, Option<i64>),
    o: &Outcome,
    by: &str,
    now: i64,
) -> R<ActionState> {
    let from = parse_state(state)?;
    let step_done = if o.ran {
        Step::Ran {
            verified: o.verified,
        }
    } else {
        Step::Fail
    };
    let to = from
        .next(step_done)
        .map_err(|e| RespondError::Invalid(e.to_string()))?;
    let undo_at = match (to, ttl) {
        (ActionState::Verified, Some(t)) => Some(now + t),
        _ => None,
    };
    tx.execute(
        "UPDATE actions SET state = ?2, ran_ms = ?3, detail = ?4, observed = ?5,
                 undo_at_ms = ?6, updated_ms = ?3 WHERE id = ?1",
        params![
            id,
            to.as_str(),
            now,
            o.detail,
            o.observed.to_string(),
            undo_at
        ],
    )?;
    step(tx, id, now, to.as_str(), by, &o.detail)?;
    if let (ActionState::Verified, Some(orig)) = (to, undo_of) {
        close_undone(tx, orig, id, now)?;
    }
    Ok(to)
}

impl ResponseBook {
    /// Records a new action with its gate's verdict. Agent actions need an agent of
    /// the same tenant; connector actions run on the server (not yet: refused).
    pub fn request(&self, r: &ActionRequest, gate: &Gate, now: i64) -> R<Value> {
        r.action
            .validate()
            .map_err(|e| RespondError::Invalid(format!("action.{e}")))?;
        let agent = match (&r.action, r.action.runner()) {
            (Action::Webhook { connector, .. } | Action::Command { connector, .. }, _) => {
                if !self.connectors.contains(connector) {
                    return Err(RespondError::Invalid(format!(
                        "action.connector: {connector:?} is not configured (configured: {})",
                        if self.connectors.is_empty() {
                            "none".to_owned()
                        } else {
                            self.connectors.join(", ")
                        }
                    )));
                }
                None
            }
            (_, Runner::Agent | Runner::Connector) => {
                Some(r.agent.as_deref().ok_or_else(|| {
                    RespondError::Invalid(format!("agent: {} runs on an agent", r.action.kind()))
                })?)
            }
        };
        let mut conn = self.conn();
        let tx = conn.transaction()?;
        if let Some(agent) = agent {
            let owner: Option<String> = tx
                .query_row("SELECT tenant FROM agents WHERE id = ?1", [agent], |r| {
                    r.get(0)
                })
                .optional()?;
            if owner.as_deref() != Some(r.tenant.as_str()) {
                // Another tenant's agent is as absent as a missing one.
                return Err(RespondError::NotFound("agent", agent.to_owned()));
            }
        }
        let (state, escalate, expire) = match gate {
            Gate::RunNow => (ActionState::Queued, None, None),
            Gate::AwaitApproval {
                escalate_at_ms,
                expire_at_ms,
            } => (
                ActionState::AwaitingApproval,
                Some(*escalate_at_ms),
                Some(*expire_at_ms),
            ),
            Gate::Refused(why) => return Err(RespondError::Invalid((*why).to_owned())),
        };
        if r.ttl_ms.is_some() && r.action.undo().is_none() {
            return Err(RespondError::Invalid(format!(
                "ttl: {} cannot be undone, so it cannot expire",
                r.action.kind()
            )));
        }
        let action_json = serde_json::to_string(&r.action).unwrap_or_default();
        tx.execute(
            "INSERT INTO actions (tenant, agent, incident, action, kind, state, requested_by,
                 requested_ms, escalate_at_ms, expire_at_ms, ttl_ms, updated_ms, run, run_step)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?8, ?12, ?13)",
            params![
                r.tenant,
                agent,
                r.incident,
                action_json,
                r.action.kind(),
                state.as_str(),
                r.by,
                now,
                escalate,
                expire,
                r.ttl_ms,
                r.run.as_ref().map(|r| r.0),
                r.run.as_ref().map(|r| r.1.as_str())
            ],
        )?;
        let id = tx.last_insert_rowid();
        step(&tx, id, now, "requested", &r.by, &r.action.to_string())?;
        match state {
            ActionState::Queued => step(&tx, id, now, "queued", &r.by, "no approval needed")?,
            _ => step(
                &tx,
                id,
                now,
                "awaiting_approval",
                &r.by,
                "the tenant's service needs a customer admin's approval",
            )?,
        }
        tx.commit()?;
        drop(conn);
        self.action(id).map(|(_, v)| v)
    }

    /// An approver's yes or no.
    pub fn decide(&self, id: i64, approve: bool, by: &str, now: i64) -> R<Value> {
        let (s, said) = if approve {
            (Step::Approve, "approved")
        } else {
            (Step::Reject, "rejected")
        };
        self.advance(id, s, by, said, now)?;
        self.conn().execute(
            "UPDATE actions SET decided_by = ?2, decided_ms = ?3 WHERE id = ?1",
            params![id, by, now],
        )?;
        self.action(id).map(|(_, v)| v)
    }

    /// Queues the undo of a verified action; the original closes when the undo verifies.
    pub fn undo(&self, id: i64, by: &str, now: i64) -> R<Value> {
        let (tenant, v) = self.action(id)?;
        let action: Action = serde_json::from_value(v["action"].clone())
            .map_err(|e| RespondError::Invalid(format!("stored action {id}: {e}")))?;
        let state = parse_state(v["state"].as_str().unwrap_or_default())?;
        if !matches!(state, ActionState::Verified | ActionState::Unverified) {
            return Err(RespondError::Invalid(format!(
                "action {id} is {}: only an action that ran can be undone",
                state.as_str()
            )));
        }
        let undo = action
            .undo()
            .ok_or_else(|| RespondError::Invalid(format!("{} cannot be undone", action.kind())))?;
        let mut conn = self.conn();
        let tx = conn.transaction()?;
        tx.execute(
            "INSERT INTO actions (tenant, agent, incident, action, kind, state, requested_by,
                 requested_ms, undo_of, updated_ms)
             VALUES (?1, ?2, ?3, ?4, ?5, 'queued', ?6, ?7, ?8, ?7)",
            params![
                tenant,
                v["agent"].as_str(),
                v["incident"].as_i64(),
                serde_json::to_string(&undo).unwrap_or_default(),
                undo.kind(),
                by,
                now,
                id
            ],
        )?;
        let undo_id = tx.last_insert_rowid();
        step(
            &tx,
            undo_id,
            now,
            "requested",
            by,
            &format!("undo of action {id}"),
        )?;
        step(
            &tx,
            id,
            now,
            "undo requested",
            by,
            &format!("action {undo_id}"),
        )?;
        tx.execute("UPDATE actions SET undo_at_ms = NULL WHERE id = ?1", [id])?;
        tx.commit()?;
        drop(conn);
        self.action(undo_id).map(|(_, v)| v)
    }

    /// Escalations, time-outs and expiries due at `now`; returns what changed, for
    /// notifications.
    /// `escalate_to` names a tenant's escalation contact, for the escalation step.
    pub fn tick(
        &self,
        now: i64,
        escalate_to: &dyn Fn(&str) -> Option<String>,
    ) -> R<Vec<(i64, &'static str)>> {
        let mut changed = Vec::new();
        let ids = |sql: &str| -> R<Vec<i64>> {
            let conn = self.conn();
            let mut q = conn.prepare(sql)?;
            let rows = q.query_map([now], |r| r.get(0))?;
            Ok(rows.collect::<Result<_, _>>()?)
        };
        for id in ids(
            "SELECT id FROM actions WHERE state = 'awaiting_approval' AND escalate_at_ms <= ?1",
        )? {
            let (tenant, _) = self.action(id)?;
            let said = match escalate_to(&tenant) {
                Some(who) => format!("no answer in time; escalated to {who}"),
                None => "no answer in time; escalated (the tenant names no contact)".to_owned(),
            };
            self.advance(id, Step::Escalate, "koban", &said, now)?;
            changed.push((id, "escalated"));
        }
        for id in ids("SELECT id FROM actions WHERE state = 'escalated' AND expire_at_ms <= ?1")? {
            self.advance(
                id,
                Step::TimeOut,
                "koban",
                "no answer after escalation",
                now,
            )?;
            changed.push((id, "timed_out"));
        }
        for id in ids("SELECT id FROM actions WHERE state = 'verified' AND undo_at_ms <= ?1")? {
            self.undo(id, "koban (expiry)", now)?;
            changed.push((id, "expired"));
        }
        Ok(changed)
    }

    fn advance(&self, id: i64, s: Step, by: &str, detail: &str, now: i64) -> R<ActionState> {
        let mut conn = self.conn();
        let tx = conn.transaction()?;
        let state: String = tx
            .query_row("SELECT state FROM actions WHERE id = ?1", [id], |r| {
                r.get(0)
            })
            .optional()?
            .ok_or_else(|| RespondError::NotFound("action", id.to_string()))?;
        let to = parse_state(&state)?
            .next(s)
            .map_err(|e| RespondError::Invalid(format!("action {id}: {e}")))?;
        tx.execute(
            "UPDATE actions SET state = ?2, updated_ms = ?3 WHERE id = ?1",
            params![id, to.as_str(), now],
        )?;
        step(&tx, id, now, to.as_str(), by, detail)?;
        tx.commit()?;
        Ok(to)
    }

    /// One action with its steps, and its tenant.
    pub fn action(&self, id: i64) -> R<(String, Value)> {
        let conn = self.conn();
        let mut v = conn
            .query_row(&format!("{ACTION_SELECT} WHERE id = ?1"), [id], action_json)
            .optional()?
            .ok_or_else(|| RespondError::NotFound("action", id.to_string()))?;
        let mut q = conn.prepare(
            "SELECT at_ms, step, by, detail FROM action_steps WHERE action = ?1 ORDER BY rowid",
        )?;
        let steps: Vec<Value> = q
            .query_map([id], |r| {
                Ok(
                    json!({"at_ms": r.get::<_, i64>(0)?, "step": r.get::<_, String>(1)?,
                          "by": r.get::<_, String>(2)?, "detail": r.get::<_, String>(3)?}),
                )
            })?
            .collect::<Result<_, _>>()?;
        v["steps"] = Value::Array(steps);
        drop(q);
        drop(conn);
        v["files"] = Value::Array(self.evidence(id)?);
        let tenant = v["tenant"].as_str().unwrap_or_default().to_owned();
        Ok((tenant, v))
    }

    /// Newest first; `tenant` None means every tenant (provider users).
    pub fn actions(&self, tenant: Option<&str>, limit: usize) -> R<Vec<Value>> {
        let conn = self.conn();
        let mut q = conn.prepare(&format!(
            "{ACTION_SELECT} WHERE (?1 IS NULL OR tenant = ?1) ORDER BY id DESC LIMIT ?2"
        ))?;
        let rows = q.query_map(params![tenant, limit as i64], action_json)?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    pub fn agents(&self, tenant: Option<&str>) -> R<Vec<Value>> {
        let conn = self.conn();
        let mut q = conn.prepare(
            "SELECT id, tenant, hostname, enrolled_ms, last_seen_ms, status FROM agents
             WHERE (?1 IS NULL OR tenant = ?1) ORDER BY tenant, hostname",
        )?;
        let rows = q.query_map(params![tenant], |r| {
            let status: String = r.get(5)?;
            Ok(json!({
                "id": r.get::<_, String>(0)?, "tenant": r.get::<_, String>(1)?,
                "hostname": r.get::<_, String>(2)?, "enrolled_ms": r.get::<_, i64>(3)?,
                "last_seen_ms": r.get::<_, Option<i64>>(4)?,
                "status": serde_json::from_str::<Value>(&status).unwrap_or(Value::Null),
            }))
        })?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    /// The last of the agent's spooled lines the server holds.
    pub fn shipped(&self, agent: &str) -> R<u64> {
        let seq: Option<i64> = self
            .conn()
            .query_row(
                "SELECT shipped_seq FROM agents WHERE id = ?1",
                [agent],
                |r| r.get(0),
            )
            .optional()?;
        seq.map(|s| s as u64)
            .ok_or_else(|| RespondError::NotFound("agent", agent.to_owned()))
    }

    /// Notes that the lines up to `seq` are durable in the WAL.
    pub fn set_shipped(&self, agent: &str, seq: u64) -> R<()> {
        self.conn().execute(
            "UPDATE agents SET shipped_seq = MAX(shipped_seq, ?2) WHERE id = ?1",
            params![agent, seq as i64],
        )?;
        Ok(())
    }

    /// The tenant of an agent, for the access check.
    pub fn agent_tenant(&self, id: &str) -> R<String> {
        self.conn()
            .query_row("SELECT tenant FROM agents WHERE id = ?1", [id], |r| {
                r.get(0)
            })
            .optional()?
            .ok_or_else(|| RespondError::NotFound("agent", id.to_owned()))
    }
}

const ACTION_SELECT: &str = "SELECT id, tenant, agent, incident, action, state, requested_by,
    requested_ms, decided_by, decided_ms, escalate_at_ms, expire_at_ms, ttl_ms, undo_at_ms,
    undo_of, number, sent_ms, ran_ms, detail, observed FROM actions";

fn action_json(r: &rusqlite::Row<'_>) -> rusqlite::Result<Value> {
    let action: String = r.get(4)?;
    let observed: Option<String> = r.get(19)?;
    let action: Value = serde_json::from_str(&action).unwrap_or(Value::Null);
    let undo = serde_json::from_value::<Action>(action.clone())
        .ok()
        .and_then(|a| a.undo())
        .map(|u| serde_json::to_value(u).unwrap_or(Value::Null));
    Ok(json!({
        "id": r.get::<_, i64>(0)?, "tenant": r.get::<_, String>(1)?,
        "agent": r.get::<_, Option<String>>(2)?, "incident": r.get::<_, Option<i64>>(3)?,
        "action": action, "undo": undo, "state": r.get::<_, String>(5)?,
        "requested_by": r.get::<_, String>(6)?, "requested_ms": r.get::<_, i64>(7)?,
        "decided_by": r.get::<_, Option<String>>(8)?, "decided_ms": r.get::<_, Option<i64>>(9)?,
        "escalate_at_ms": r.get::<_, Option<i64>>(10)?, "expire_at_ms": r.get::<_, Option<i64>>(11)?,
        "ttl_ms": r.get::<_, Option<i64>>(12)?, "undo_at_ms": r.get::<_, Option<i64>>(13)?,
        "undo_of": r.get::<_, Option<i64>>(14)?, "number": r.get::<_, Option<i64>>(15)?,
        "sent_ms": r.get::<_, Option<i64>>(16)?, "ran_ms": r.get::<_, Option<i64>>(17)?,
        "detail": r.get::<_, Option<String>>(18)?,
        "observed": observed.and_then(|o| serde_json::from_str::<Value>(&o).ok()),
    }))
}

pub(super) fn step(
    tx: &rusqlite::Transaction<'_>,
    id: i64,
    at: i64,
    step: &str,
    by: &str,
    detail: &str,
) -> R<()> {
    tx.execute(
        "INSERT INTO action_steps (action, at_ms, step, by, detail) VALUES (?1, ?2, ?3, ?4, ?5)",
        params![id, at, step, by, detail],
    )?;
    tx.execute(
        "INSERT INTO response_log (tenant, incident, at_ms, who, kind, object, detail)
         SELECT tenant, incident, ?2, ?4, 'action', 'action ' || id,
                json_object('step', ?3, 'action', kind, 'detail', ?5)
         FROM actions WHERE id = ?1",
        params![id, at, step, by, detail],
    )?;
    Ok(())
}

fn close_undone(tx: &rusqlite::Transaction<'_>, orig: i64, undo_id: i64, now: i64) -> R<()> {
    let state: String = tx.query_row("SELECT state FROM actions WHERE id = ?1", [orig], |r| {
        r.get(0)
    })?;
    if let Ok(to) = parse_state(&state)?.next(Step::Undo) {
        tx.execute(
            "UPDATE actions SET state = ?2, updated_ms = ?3 WHERE id = ?1",
            params![orig, to.as_str(), now],
        )?;
        step(
            tx,
            orig,
            now,
            to.as_str(),
            "koban",
            &format!("undo action {undo_id} verified"),
        )?;
    }
    Ok(())
}

fn parse_state(s: &str) -> R<ActionState> {
    ActionState::parse(s).ok_or_else(|| RespondError::Invalid(format!("stored state {s:?}")))
}

/// Compares two hex digests without an early exit.
fn constant_eq(a: &str, b: &str) -> bool {
    a.len() == b.len()
        && a.bytes()
            .zip(b.bytes())
            .fold(0u8, |acc, (x, y)| acc | (x ^ y))
            == 0
}

/// Reads the command key, or makes one (mode 0600) on first start.
fn load_key(path: &Path) -> R<CommandSigner> {
    let key_err = |message: String| RespondError::Key {
        path: path.display().to_string(),
        message,
    };
    let der = match std::fs::read(path) {
        Ok(d) => d,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            let der = CommandSigner::generate().map_err(|e| key_err(e.to_string()))?;
            write_private(path, &der).map_err(|e| key_err(e.to_string()))?;
            der
        }
        Err(e) => return Err(key_err(e.to_string())),
    };
    CommandSigner::from_pkcs8(&der).map_err(|e| key_err(e.to_string()))
}

fn write_private(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    use std::io::Write;
    let tmp = path.with_extension("tmp");
    let mut opts = std::fs::OpenOptions::new();
    opts.write(true).create(true).truncate(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        opts.mode(0o600);
    }
    let mut f = opts.open(&tmp)?;
    f.write_all(bytes)?;
    f.sync_all()?;
    std::fs::rename(&tmp, path)
}
