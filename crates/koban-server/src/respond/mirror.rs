//! Every response step into the incident's timeline and the audit log.
//!
//! `response.db` keeps the steps in `response_log` in the same transaction as the step
//! itself; this copies them on, each destination with its own cursor kept in the same
//! transaction as the copy, so a crash neither loses nor doubles an entry.

use serde_json::Value;

use super::playbooks::LogEntry;
use super::{RespondError, ResponseBook};
use crate::alerts::{AlertBook, ResponseStep};
use crate::state::State;

const BATCH: usize = 500;

/// Copies what is new; returns how many entries went into timelines and the audit.
pub fn mirror(
    book: &ResponseBook,
    alerts: Option<&AlertBook>,
    state: &State,
) -> Result<(usize, usize), RespondError> {
    let fail = |e: String| RespondError::Invalid(format!("copying response steps: {e}"));
    let mut timeline = 0;
    if let Some(alerts) = alerts {
        loop {
            let after = alerts.response_cursor().map_err(|e| fail(e.to_string()))?;
            let batch = book.log_after(after, BATCH)?;
            let Some(last) = batch.last().map(|e| e.id) else {
                break;
            };
            let steps: Vec<ResponseStep> = batch
                .iter()
                .filter_map(|e| {
                    Some(ResponseStep {
                        id: e.id,
                        tenant: e.tenant.clone(),
                        incident: e.incident?,
                        at_ms: e.at_ms,
                        who: e.who.clone(),
                        detail: timeline_detail(e),
                    })
                })
                .collect();
            timeline += alerts
                .copy_response_steps(&steps, last)
                .map_err(|e| fail(e.to_string()))?;
        }
    }
    let mut audited = 0;
    loop {
        let after = state.response_audited().map_err(|e| fail(e.to_string()))?;
        let batch = book.log_after(after, BATCH)?;
        let Some(last) = batch.last().map(|e| e.id) else {
            break;
        };
        let rows: Vec<_> = batch
            .iter()
            .map(|e| {
                (
                    e.at_ms,
                    e.who.clone(),
                    e.tenant.clone(),
                    format!("{} {}", e.kind, e.detail["step"].as_str().unwrap_or("step")),
                    e.object.clone(),
                    e.detail.to_string(),
                )
            })
            .collect();
        state
            .audit_response(&rows, last)
            .map_err(|e| fail(e.to_string()))?;
        audited += rows.len();
    }
    Ok((timeline, audited))
}

/// What the timeline shows: the object, the step and its words.
fn timeline_detail(e: &LogEntry) -> Value {
    let mut d = e.detail.clone();
    d["object"] = Value::String(e.object.clone());
    d
}
