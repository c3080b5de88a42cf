//! Timelines: everything about one host, user, address or process in time order —
//! its stored events (any of the fields that name that kind of entity) and the alerts
//! whose entities include it — for an analyst rebuilding what happened.

use koban_detect::entities::fields_of;
use koban_store::{Condition, SearchRequest, StoreError, StoreSearcher};
use serde_json::{json, Value};

use super::hit_json;

/// Entries per timeline at most (events and alerts each).
pub const MAX_ENTRIES: usize = 10_000;

/// The kinds a timeline can be about, and the entity kinds they read.
pub const KINDS: &[(&str, &[&str])] = &[
    ("host", &["host"]),
    ("user", &["user"]),
    ("ip", &["src_ip", "dst_ip"]),
    ("process", &["process"]),
    ("hash", &["hash"]),
    ("domain", &["domain"]),
];

pub fn entity_kinds(kind: &str) -> Option<&'static [&'static str]> {
    KINDS.iter().find(|(k, _)| *k == kind).map(|(_, v)| *v)
}

/// Events naming `value` in any field of the kind. A user also matches with a
/// Windows domain in front (`CORP\alice` for `alice`).
pub fn entity_condition(kind: &str, value: &str) -> Option<Condition> {
    let kinds = entity_kinds(kind)?;
    let escaped = value
        .replace('\\', "\\\\")
        .replace('*', "\\*")
        .replace('?', "\\?");
    let mut any = Vec::new();
    for k in kinds {
        for field in fields_of(k)? {
            any.push(Condition::Match {
                field: (*field).to_owned(),
                value: escaped.clone(),
            });
            if *k == "user" && !value.contains('\\') {
                any.push(Condition::Match {
                    field: (*field).to_owned(),
                    value: format!("*\\\\{escaped}"),
                });
            }
        }
    }
    Some(Condition::Any(any))
}

/// The events of a timeline, oldest first, as the API shows them.
pub fn events(
    searcher: &StoreSearcher,
    tenant: &str,
    kind: &str,
    value: &str,
    from_ms: Option<i64>,
    to_ms: Option<i64>,
    limit: usize,
) -> Result<(u64, Vec<Value>), StoreError> {
    let condition = entity_condition(kind, value)
        .ok_or_else(|| StoreError::InvalidQuery(format!("no timeline kind {kind:?}")))?;
    let mut req = SearchRequest::new(tenant);
    req.from_ms = from_ms;
    req.to_ms = to_ms;
    req.condition = Some(condition);
    req.limit = limit.min(MAX_ENTRIES);
    req.oldest_first = true;
    let r = searcher.search(&req)?;
    Ok((r.total, r.hits.iter().map(hit_json).collect()))
}

/// Events and alerts in one list, oldest first: each entry `{"at", "kind", ...}`.
pub fn merge(events: Vec<Value>, alerts: Vec<Value>) -> Vec<Value> {
    let mut out: Vec<(String, Value)> = Vec::with_capacity(events.len() + alerts.len());
    for e in events {
        let at = e["time"].as_str().unwrap_or_default().to_owned();
        out.push((at.clone(), json!({"at": at, "kind": "event", "event": e})));
    }
    for a in alerts {
        let at = koban_event::format_rfc3339(a["first_event_ms"].as_i64().unwrap_or_default());
        out.push((at.clone(), json!({"at": at, "kind": "alert", "alert": a})));
    }
    // RFC 3339 in UTC with fixed width: text order is time order.
    out.sort_by(|a, b| a.0.cmp(&b.0));
    out.into_iter().map(|(_, v)| v).collect()
}

/// The timeline as CSV: time, kind, what (rule or source), and the entry's fields.
pub fn csv(entries: &[Value]) -> String {
    let mut out = String::from("time,kind,source,summary\n");
    for e in entries {
        let (source, summary) = match e["kind"].as_str() {
            Some("alert") => (
                e["alert"]["source"].as_str().unwrap_or_default().to_owned(),
                e["alert"]["title"].as_str().unwrap_or_default().to_owned(),
            ),
            _ => {
                let ev = &e["event"];
                let fields = ev["fields"]
                    .as_object()
                    .map(|m| {
                        m.iter()
                            .map(|(k, v)| match v {
                                Value::String(s) => format!("{k}={s}"),
                                other => format!("{k}={other}"),
                            })
                            .collect::<Vec<_>>()
                            .join(" ")
                    })
                    .unwrap_or_default();
                (ev["source"].as_str().unwrap_or_default().to_owned(), fields)
            }
        };
        for (i, cell) in [
            e["at"].as_str().unwrap_or_default(),
            e["kind"].as_str().unwrap_or_default(),
            &source,
            &summary,
        ]
        .iter()
        .enumerate()
        {
            if i > 0 {
                out.push(',');
            }
            out.push_str(&csv_cell(cell));
        }
        out.push('\n');
    }
    out
}

/// A CSV cell: quoted when it holds a comma, quote or line break; a leading
/// `=`, `+`, `-` or `@` is defused so a spreadsheet does not run it as a formula.
fn csv_cell(s: &str) -> String {
    let defused = if s.starts_with(['=', '+', '-', '@']) {
        format!("'{s}")
    } else {
        s.to_owned()
    };
    if defused.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", defused.replace('"', "\"\""))
    } else {
        defused
    }
}
