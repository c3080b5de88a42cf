//! Hunting over stored history: queries in the hunting language run against the
//! event store (`exec.rs`), timelines of one entity (`timeline.rs`), retro-hunts of
//! Sigma rules into retroactive alerts (`retro.rs`), and saved searches with each
//! user's query history (`saved.rs`).

pub mod exec;
pub mod retro;
pub mod saved;
pub mod timeline;

use koban_event::Value;
use koban_store::SearchHit;
use serde_json::{json, Map, Value as JsonValue};

pub use exec::{run, HuntError, HuntRequest, Output, Summary};

pub fn value_json(v: &Value) -> JsonValue {
    match v {
        Value::Null => JsonValue::Null,
        Value::Bool(b) => json!(b),
        Value::Int(i) => json!(i),
        Value::Float(f) => json!(f),
        Value::Str(t) => json!(t.as_str()),
        Value::List(items) => JsonValue::Array(items.iter().map(value_json).collect()),
    }
}

/// One stored event as the API shows it.
pub fn hit_json(h: &SearchHit) -> JsonValue {
    let fields: Map<String, JsonValue> = h
        .event
        .fields()
        .iter()
        .map(|f| (f.name.to_string(), value_json(&f.value)))
        .collect();
    json!({
        "time": koban_event::format_rfc3339(h.time_ms),
        "received": koban_event::format_rfc3339(h.received_ms),
        "source": h.source, "format": h.format, "parsed": h.parsed,
        "seq": h.seq, "sub": h.sub, "fields": fields, "original": h.original,
    })
}
