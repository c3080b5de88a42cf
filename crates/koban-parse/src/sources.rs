//! Recognising the kind of a JSON record that is not a Windows event, so Sigma rules
//! written for it (`product: aws, service: cloudtrail`, `product: zeek, service: dns`)
//! are routed to it.

use koban_event::{parse_timestamp, Event, LogSource, Value};

/// Hints from where a record came from (the file name) for formats whose records do
/// not say what they are, like Zeek logs (`dns.log`).
#[derive(Debug, Clone, Default)]
pub struct SourceHint {
    /// The file stem, lower-cased (`dns` for `dns.log`, `conn` for `conn.json.gz`).
    pub stem: String,
    /// Column names for headerless tab-separated rows (Zeek TSV's `#fields`), when
    /// the sender announced them once for a stream of rows.
    pub columns: Option<std::sync::Arc<[String]>>,
}

impl SourceHint {
    pub fn from_path(path: &std::path::Path) -> SourceHint {
        let name = path
            .file_name()
            .and_then(|n| n.to_str())
            .unwrap_or_default()
            .to_lowercase();
        let stem = name.split('.').next().unwrap_or_default().to_owned();
        SourceHint {
            stem,
            columns: None,
        }
    }
}

/// Classifies a flattened generic JSON record.
pub fn normalise(fields: Vec<(String, Value)>, hint: &SourceHint) -> Event {
    let mut event = Event::from_fields(fields);
    let has = |k: &str| event.get(k).is_some();
    let mut ls = LogSource::default();
    let mut time_keys: &[&str] = &[
        "@timestamp",
        "timestamp",
        "time",
        "ts",
        "eventTime",
        "TimeCreated",
    ];
    let aws_source = event
        .get_str("eventSource")
        .is_some_and(|s| s.ends_with(".amazonaws.com"));
    if has("eventSource")
        && has("eventName")
        && (has("awsRegion") || has("eventVersion") || aws_source)
    {
        ls.product = Some("aws".into());
        ls.services.push("cloudtrail".into());
        time_keys = &["eventTime"];
    } else if has("uid") && (has("id.orig_h") || has("id_orig_h"))
        // Zeek logs without a connection (stats, x509, files): the `_path` Zeek
        // writes in JSON, or columns announced by a TSV header.
        || has("ts") && (has("_path") || has("@stream") || hint.columns.is_some())
        || has("_path") && has("_write_ts")
    {
        ls.product = Some("zeek".into());
        // Some exporters write `id_orig_h`; rules use Zeek's own `id.orig_h`.
        for (flat, dotted) in [
            ("id_orig_h", "id.orig_h"),
            ("id_orig_p", "id.orig_p"),
            ("id_resp_h", "id.resp_h"),
            ("id_resp_p", "id.resp_p"),
        ] {
            if let Some(v) = event.get(flat).cloned() {
                event.insert(dotted, v);
            }
        }
        let path = event
            .get_str("_path")
            .or_else(|| event.get_str("@stream"))
            .unwrap_or_else(|| hint.stem.rsplit('_').next().unwrap_or_default().to_owned());
        if !path.is_empty() {
            ls.services.push(path.into());
        }
    } else if has("event_type") && has("src_ip") && has("dest_ip") {
        ls.product = Some("suricata".into());
    } else if has("operationName") && has("category") && has("properties.status.errorCode")
        || has("operationName")
            && has("category")
            && event
                .fields()
                .iter()
                .any(|f| f.key().starts_with("properties."))
    {
        ls.product = Some("azure".into());
        if let Some(c) = event.get_str("category") {
            ls.services.push(c.to_lowercase().into());
        }
    }
    let timestamp = time_keys.iter().find_map(|k| match event.get(k) {
        Some(Value::Str(s)) => parse_timestamp(s.as_str()),
        // Zeek and others write epoch seconds with a fraction.
        Some(Value::Float(f)) => Some((f * 1000.0) as i64),
        Some(Value::Int(i)) if *i > 1_000_000_000 => epoch_int_ms(*i),
        _ => None,
    });
    event.timestamp = timestamp;
    event.logsource = ls;
    event
}

/// An integer epoch in seconds, milliseconds, microseconds or nanoseconds (told apart
/// by magnitude, as 2001-09-09 onwards) in milliseconds.
pub(crate) fn epoch_int_ms(i: i64) -> Option<i64> {
    if i < 100_000_000_000 {
        i.checked_mul(1000)
    } else if i < 100_000_000_000_000 {
        Some(i)
    } else if i < 100_000_000_000_000_000 {
        Some(i / 1000)
    } else {
        Some(i / 1_000_000)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn integer_epochs_in_any_unit_become_milliseconds() {
        // Found by the parse_json fuzz target: nanoseconds overflowed `* 1000`.
        assert_eq!(epoch_int_ms(1_573_747_274), Some(1_573_747_274_000));
        assert_eq!(epoch_int_ms(1_573_747_274_729), Some(1_573_747_274_729));
        assert_eq!(epoch_int_ms(1_573_747_274_729_593), Some(1_573_747_274_729));
        assert_eq!(
            epoch_int_ms(1_573_747_274_729_593_348),
            Some(1_573_747_274_729)
        );
        assert_eq!(epoch_int_ms(i64::MAX), Some(i64::MAX / 1_000_000));
    }

    fn obj(v: serde_json::Value) -> Vec<(String, Value)> {
        crate::flatten::flat_fields(v.to_string().as_bytes()).unwrap_or_default()
    }

    #[test]
    fn cloudtrail_is_recognised() {
        let e = normalise(
            obj(
                serde_json::json!({"eventSource":"iam.amazonaws.com","eventName":"CreateUser",
                "awsRegion":"us-east-1","eventTime":"2020-01-01T00:00:00Z","userIdentity":{"arn":"a"}}),
            ),
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
