//! Nested JSON to flat, dotted field names (`userIdentity.arn`), the form Sigma rules
//! for JSON logs (CloudTrail, ECS, Zeek) use.

use koban_event::Value;
use serde_json::Value as Json;

/// Nesting below this depth is kept as JSON text instead of more fields: no log
/// format needs it, and hostile input must not recurse without bound.
const MAX_DEPTH: usize = 16;

pub(crate) fn flatten_into(prefix: &str, v: Json, out: &mut Vec<(String, Value)>) {
    flatten_at(prefix, v, out, 0);
}

fn flatten_at(prefix: &str, v: Json, out: &mut Vec<(String, Value)>, depth: usize) {
    match v {
        Json::Object(map) if depth < MAX_DEPTH && !map.is_empty() => {
            for (k, v) in map {
                let name = if prefix.is_empty() { k } else { format!("{prefix}.{k}") };
                flatten_at(&name, v, out, depth + 1);
            }
        }
        // Lists of scalars stay lists (any element may match); lists of objects are
        // kept as JSON text, searchable but not addressable field by field.
        v => out.push((prefix.to_owned(), Value::from_json(v))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nested_objects_become_dotted_names() {
        let mut out = Vec::new();
        let v: Json = serde_json::json!({"a": {"b": 1, "c": {"d": "x"}}, "l": [1, 2]});
        flatten_into("", v, &mut out);
        out.sort_by(|a, b| a.0.cmp(&b.0));
        let names: Vec<&str> = out.iter().map(|(k, _)| k.as_str()).collect();
        assert_eq!(names, vec!["a.b", "a.c.d", "l"]);
    }

    #[test]
    fn deep_nesting_is_bounded() {
        let mut v = Json::Null;
        for _ in 0..100 {
            v = serde_json::json!({ "x": v });
        }
        let mut out = Vec::new();
        flatten_into("", v, &mut out);
        assert_eq!(out.len(), 1);
    }
}
