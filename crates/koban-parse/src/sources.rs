//! Recognising the kind of a JSON record that is not a Windows event, so Sigma rules
//! written for it (`product: aws, service: cloudtrail`, `product: zeek, service: dns`)
//! are routed to it.

use koban_event::{parse_timestamp, Event, LogSource, Value};
use serde_json::{Map, Value as Json};

use crate::flatten::flatten_into;

/// Hints from where a record came from (the file name) for formats whose records do
/// not say what they are, like Zeek logs (`dns.log`).
#[derive(Debug, Clone, Default)]
pub struct SourceHint {
    /// The file stem, lower-cased (`dns` for `dns.log`, `conn` for `conn.json.gz`).
    pub stem: String,
}

impl SourceHint {
    pub fn from_path(path: &std::path::Path) -> SourceHint {
        let name = path
            .file_name()
            .and_then(|n| n.to_str())
            .unwrap_or_default()
            .to_lowercase();
        let stem = name.split('.').next().unwrap_or_default().to_owned();
        SourceHint { stem }
    }
}

/// Flattens a generic JSON record and classifies it.
pub fn normalise(obj: Map<String, Json>, hint: &SourceHint) -> Event {
    let mut ls = LogSource::default();
    let has = |k: &str| obj.contains_key(k);
    let mut time_keys: &[&str] = &["@timestamp", "timestamp", "time", "ts", "eventTime", "TimeCreated"];
    if has("eventSource") && has("eventName") && (has("awsRegion") || has("eventVersion")) {
        ls.product = Some("aws".into());
        ls.services.push("cloudtrail".into());
        time_keys = &["eventTime"];
    } else if has("uid") && (has("id.orig_h") || obj.get("id").is_some_and(|i| i.get("orig_h").is_some())) {
        ls.product = Some("zeek".into());
        let path = obj
            .get("_path")
            .and_then(Json::as_str)
            .map(str::to_owned)
            .unwrap_or_else(|| hint.stem.clone());
        if !path.is_empty() {
            ls.services.push(path.into());
        }
    } else if has("event_type") && has("src_ip") && has("dest_ip") {
        ls.product = Some("suricata".into());
    } else if has("operationName") && has("category") && has("properties") {
        ls.product = Some("azure".into());
        if let Some(c) = obj.get("category").and_then(Json::as_str) {
            ls.services.push(c.to_lowercase().into());
        }
    }
    let timestamp = time_keys.iter().find_map(|k| match obj.get(*k) {
        Some(Json::String(s)) => parse_timestamp(s),
        // Zeek and others write epoch seconds with a fraction.
        Some(Json::Number(n)) => n.as_f64().map(|f| (f * 1000.0) as i64),
        _ => None,
    });
    let mut fields: Vec<(String, Value)> = Vec::with_capacity(obj.len() + 8);
    for (k, v) in obj {
        flatten_into(&k, v, &mut fields);
    }
    let mut event = Event::from_fields(fields);
    event.timestamp = timestamp;
    event.logsource = ls;
    event
}

#[cfg(test)]
mod tests {
    use super::*;

    fn obj(v: Json) -> Map<String, Json> {
        match v {
            Json::Object(m) => m,
            _ => Map::new(),
        }
    }

    #[test]
    fn cloudtrail_is_recognised() {
        let e = normalise(
            obj(serde_json::json!({"eventSource":"iam.amazonaws.com","eventName":"CreateUser",
                "awsRegion":"us-east-1","eventTime":"2020-01-01T00:00:00Z","userIdentity":{"arn":"a"}})),
            &SourceHint::default(),
        );
        assert_eq!(e.logsource.product.as_deref(), Some("aws"));
        assert_eq!(e.get_str("userIdentity.arn").as_deref(), Some("a"));
        assert!(e.timestamp.is_some());
    }

    #[test]
    fn zeek_service_comes_from_path_or_file() {
        let hint = SourceHint::from_path(std::path::Path::new("/x/dns.json"));
        let e = normalise(
            obj(serde_json::json!({"uid":"C1","id.orig_h":"10.0.0.1","ts":1.5,"query":"x"})),
            &hint,
        );
        assert_eq!(e.logsource.services, vec!["dns".into()]);
        assert_eq!(e.timestamp, Some(1500));
    }
}
