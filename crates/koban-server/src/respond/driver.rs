//! Playbooks at work. Each tick: new alerts and incidents (in id order, from a cursor)
//! start the playbooks whose trigger they match, then every open run goes on as far as
//! it can. A run that asked for an action waits until the action is final — approved
//! and verified, or rejected, timed out, failed — and branches on that.
//!
//! Each step is saved before the next is taken; an action a run asked for is found
//! again by (run, step) after a crash instead of being asked twice.

use std::collections::BTreeMap;

use koban_respond::playbook::{Next, Op, Outcome, Severity, Subject, TriggerOn};
use koban_respond::{Action, Actor, Gate};
use rusqlite::OptionalExtension;
use serde_json::{json, Value};

use super::playbooks::OpenRun;
use super::{approval_policy, ActionRequest, RespondError, ResponseBook};
use crate::alerts::{subject_entities, AlertBook};
use crate::state::State;

type R<T> = Result<T, RespondError>;

const BATCH: usize = 200;
const WEEK_MS: i64 = 7 * 86_400_000;

/// Starts and advances playbook runs; returns how many runs started.
pub fn drive(book: &ResponseBook, alerts: &AlertBook, state: &State, now: i64) -> R<usize> {
    let mut started = 0;
    for on in [TriggerOn::Alert, TriggerOn::Incident] {
        started += start(book, alerts, on, now)?;
    }
    for run in book.open_runs()? {
        let id = run.id;
        if let Err(e) = advance(book, alerts, state, run, now) {
            tracing::error!(run = id, error = %e, "playbook run");
        }
    }
    Ok(started)
}

fn start(book: &ResponseBook, alerts: &AlertBook, on: TriggerOn, now: i64) -> R<usize> {
    let db = |e: crate::alerts::AlertsError| RespondError::Invalid(e.to_string());
    let incidents = on == TriggerOn::Incident;
    let Some(mut after) = book.cursor(on)? else {
        // The first look starts at the newest: history does not set off playbooks.
        return book
            .set_cursor(on, alerts.max_id(incidents).map_err(db)?)
            .map(|_| 0);
    };
    let mut started = 0;
    loop {
        let batch = if incidents {
            alerts.incidents_after(after, BATCH)
        } else {
            alerts.alerts_after(after, BATCH)
        }
        .map_err(db)?;
        if batch.is_empty() {
            return Ok(started);
        }
        for v in &batch {
            let s = subject(on, v);
            let matching = book.matching_playbooks(&s)?;
            started += book.start_runs(&s, &matching, s.id, now)?.len();
            after = s.id;
        }
    }
}

/// An alert or incident as a playbook sees it.
pub fn subject(on: TriggerOn, v: &Value) -> Subject {
    let strings = |v: &Value| -> Vec<String> {
        v.as_array()
            .into_iter()
            .flatten()
            .filter_map(|s| s.as_str().map(str::to_owned))
            .collect()
    };
    let severity = v[if on == TriggerOn::Alert {
        "level"
    } else {
        "severity"
    }]
    .as_str()
    .and_then(Severity::parse)
    .unwrap_or(Severity::Medium);
    Subject {
        on,
        id: v["id"].as_i64().unwrap_or_default(),
        tenant: v["tenant"].as_str().unwrap_or_default().to_owned(),
        incident: match on {
            TriggerOn::Alert => v["incident"].as_i64(),
            TriggerOn::Incident => v["id"].as_i64(),
        },
        title: v["title"].as_str().unwrap_or_default().to_owned(),
        rule: v["rule"].as_str().unwrap_or_default().to_owned(),
        severity,
        techniques: strings(&v["techniques"]),
        tactics: strings(&v["tactics"]),
        entities: subject_entities(v).into_iter().collect(),
        retroactive: v["retroactive"].as_bool().unwrap_or(false),
    }
}

/// What to do, owned (so the run can change while it is done).
enum Todo {
    Enrich(Op, Vec<String>),
    Notify(Op, Result<String, String>),
    Run(Op, Result<Action, String>, Option<i64>, bool),
    Done,
}

fn advance(
    book: &ResponseBook,
    alerts: &AlertBook,
    state: &State,
    mut r: OpenRun,
    now: i64,
) -> R<()> {
    loop {
        let todo = match r.playbook.next(&mut r.run) {
            Next::Done => Todo::Done,
            Next::Enrich { op, lookups } => Todo::Enrich(op.clone(), lookups.to_vec()),
            Next::Notify { op, text } => Todo::Notify(op.clone(), text),
            Next::Run {
                op,
                action,
                ttl_ms,
                always_approve,
            } => Todo::Run(op.clone(), action, ttl_ms, always_approve),
        };
        match todo {
            Todo::Done => {
                let text = format!("finished: {}", outcomes_line(&r.run.outcomes));
                return book.save_run(&r, "done", now, "finished", &json!({ "text": text }));
            }
            Todo::Enrich(op, lookups) => {
                let (outcome, text) = enrich(book, alerts, &mut r, &lookups, now)?;
                r.run.finish(&op, outcome);
                let d = json!({ "text": text, "path": op.path, "outcome": outcome.as_str() });
                book.save_run(&r, "running", now, "enriched", &d)?;
            }
            Todo::Notify(op, text) => {
                let (outcome, text) = match text {
                    Ok(t) => {
                        tracing::info!(tenant = %r.tenant, playbook = %r.playbook.id, "{t}");
                        (Outcome::Done, t)
                    }
                    Err(e) => (Outcome::Failed, format!("cannot write the message: {e}")),
                };
                r.run.finish(&op, outcome);
                let d = json!({ "text": text, "path": op.path, "outcome": outcome.as_str() });
                book.save_run(&r, "running", now, "notified", &d)?;
            }
            Todo::Run(op, action, ttl_ms, always_approve) => {
                if let Some(waiting) = r.waiting_action {
                    let st = book.action_state(waiting)?;
                    let Some(outcome) = Outcome::of_action_state(&st) else {
                        return Ok(());
                    };
                    r.run.finish(&op, outcome);
                    r.waiting_action = None;
                    let text = format!("action {waiting} ended {st}");
                    let d = json!({ "text": text, "path": op.path, "action": waiting,
                                    "outcome": outcome.as_str() });
                    book.save_run(&r, "running", now, "action ended", &d)?;
                    continue;
                }
                match ask(book, state, &r, &op, action, ttl_ms, always_approve, now) {
                    Ok(id) => {
                        r.waiting_action = Some(id);
                        let st = book.action_state(id)?;
                        let text = format!("asked for action {id} ({st})");
                        let d = json!({ "text": text, "path": op.path, "action": id });
                        book.save_run(&r, "waiting", now, "asked", &d)?;
                    }
                    Err(why) => {
                        r.run.finish(&op, Outcome::Failed);
                        let d = json!({ "text": why, "path": op.path, "outcome": "failed" });
                        book.save_run(&r, "running", now, "action failed", &d)?;
                    }
                }
            }
        }
    }
}

/// Asks for the step's action on the subject's host, under the tenant's gate; the
/// action's id, or why it could not be asked for.
#[allow(clippy::too_many_arguments)]
fn ask(
    book: &ResponseBook,
    state: &State,
    r: &OpenRun,
    op: &Op,
    action: Result<Action, String>,
    ttl_ms: Option<i64>,
    always_approve: bool,
    now: i64,
) -> Result<i64, String> {
    let action = action?;
    // Asked before a crash that came before the run was saved: that action, not a new one.
    if let Some(id) = book
        .conn()
        .query_row(
            "SELECT id FROM actions WHERE run = ?1 AND run_step = ?2",
            rusqlite::params![r.id, op.key],
            |row| row.get::<_, i64>(0),
        )
        .optional()
        .map_err(|e| e.to_string())?
    {
        return Ok(id);
    }
    let agent = match r.run.vars.get("agent") {
        _ if action.runner() == koban_respond::Runner::Connector => None,
        Some(a) => Some(a.clone()),
        None => Some({
            let host = r
                .run
                .vars
                .get("host")
                .ok_or("the alert names no host to act on")?;
            book.agent_for_host(&r.tenant, host)
                .map_err(|e| e.to_string())?
                .ok_or_else(|| format!("no agent is enrolled for host {host}"))?
                .0
        }),
    };
    let policy = approval_policy(state, &r.tenant).map_err(|e| format!("{e:?}"))?;
    let mut gate = policy.gate(Actor::Playbook, now);
    if always_approve && gate == Gate::RunNow {
        gate = Gate::AwaitApproval {
            escalate_at_ms: now + policy.timeout_ms,
            expire_at_ms: now + 2 * policy.timeout_ms,
        };
    }
    let req = ActionRequest {
        tenant: r.tenant.clone(),
        agent,
        incident: r.incident,
        action,
        ttl_ms,
        by: format!("playbook:{}", r.playbook.id),
        run: Some((r.id, op.key.clone())),
    };
    let v = book.request(&req, &gate, now).map_err(|e| e.to_string())?;
    v["id"]
        .as_i64()
        .ok_or_else(|| "the action has no id".to_owned())
}

fn enrich(
    book: &ResponseBook,
    alerts: &AlertBook,
    r: &mut OpenRun,
    lookups: &[String],
    now: i64,
) -> R<(Outcome, String)> {
    let mut found = true;
    let mut said = Vec::new();
    let host = r.run.vars.get("host").cloned();
    for l in lookups {
        match (l.as_str(), &host) {
            (_, None) => {
                found = false;
                said.push(format!("{l}: no host"));
            }
            ("agent", Some(h)) => match book.agent_for_host(&r.tenant, h)? {
                Some((agent, seen)) => {
                    r.run.vars.insert("agent".into(), agent.clone());
                    if let Some(s) = seen {
                        r.run.vars.insert("agent_last_seen".into(), s.to_string());
                    }
                    said.push(format!("agent {agent} on {h}"));
                }
                None => {
                    found = false;
                    said.push(format!("no agent on {h}"));
                }
            },
            ("history", Some(h)) => {
                let (n, open) = alerts
                    .host_history(&r.tenant, h, now - WEEK_MS)
                    .map_err(|e| RespondError::Invalid(e.to_string()))?;
                r.run.vars.insert("host_alerts_7d".into(), n.to_string());
                r.run
                    .vars
                    .insert("host_open_incidents".into(), open.to_string());
                said.push(format!("{h}: {n} alerts in 7 days, {open} open incidents"));
            }
            (other, _) => said.push(format!("{other}: unknown lookup")),
        }
    }
    let outcome = if found {
        Outcome::Found
    } else {
        Outcome::Missing
    };
    Ok((outcome, said.join("; ")))
}

fn outcomes_line(o: &BTreeMap<String, Outcome>) -> String {
    if o.is_empty() {
        return "no steps".into();
    }
    o.iter()
        .map(|(k, v)| format!("{k} {}", v.as_str()))
        .collect::<Vec<_>>()
        .join(", ")
}
