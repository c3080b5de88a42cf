//! Nested JSON to flat, dotted field names (`userIdentity.arn`), the form Sigma rules
//! for JSON logs (CloudTrail, ECS, Zeek) use.

use std::fmt;

use koban_event::{Text, Value};
use serde::de::{DeserializeSeed, Deserializer, MapAccess, SeqAccess, Visitor};
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
                let name = if prefix.is_empty() {
                    k
                } else {
                    format!("{prefix}.{k}")
                };
                flatten_at(&name, v, out, depth + 1);
            }
        }
        // Lists of scalars stay lists (any element may match); lists of objects are
        // kept as JSON text, searchable but not addressable field by field.
        v => out.push((prefix.to_owned(), Value::from_json(v))),
    }
}

/// Parses one JSON object straight into flat, dotted fields, without building a
/// `serde_json::Value` first: the hot path for NDJSON, where most time would otherwise
/// go to allocating and then dismantling the tree.
pub(crate) fn flat_fields(bytes: &[u8]) -> Result<Vec<(String, Value)>, serde_json::Error> {
    let mut out = Vec::with_capacity(64);
    let mut de = serde_json::Deserializer::from_slice(bytes);
    FlatSeed {
        prefix: String::new(),
        out: &mut out,
        depth: 0,
    }
    .deserialize(&mut de)?;
    de.end()?;
    Ok(out)
}

struct FlatSeed<'a> {
    prefix: String,
    out: &'a mut Vec<(String, Value)>,
    depth: usize,
}

impl<'de> DeserializeSeed<'de> for FlatSeed<'_> {
    type Value = ();

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for FlatSeed<'_> {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON value")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        if self.depth >= MAX_DEPTH {
            // Keep deep nesting as text rather than recursing further.
            let mut obj = serde_json::Map::new();
            while let Some((k, v)) = map.next_entry::<String, Json>()? {
                obj.insert(k, v);
            }
            self.out
                .push((self.prefix, Value::from_json(Json::Object(obj))));
            return Ok(());
        }
        let mut empty = true;
        while let Some(key) = map.next_key::<std::borrow::Cow<'de, str>>()? {
            empty = false;
            let name = if self.prefix.is_empty() {
                key.into_owned()
            } else {
                format!("{}.{key}", self.prefix)
            };
            map.next_value_seed(FlatSeed {
                prefix: name,
                out: self.out,
                depth: self.depth + 1,
            })?;
        }
        if empty && !self.prefix.is_empty() {
            self.out.push((
                self.prefix,
                Value::from_json(Json::Object(serde_json::Map::new())),
            ));
        }
        Ok(())
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        let mut items = Vec::new();
        while let Some(v) = seq.next_element::<Json>()? {
            items.push(Value::from_json(v));
        }
        self.out.push((self.prefix, Value::List(items)));
        Ok(())
    }

    fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<(), E> {
        self.out.push((self.prefix, Value::Str(Text::new(v))));
        Ok(())
    }

    fn visit_string<E: serde::de::Error>(self, v: String) -> Result<(), E> {
        self.out.push((self.prefix, Value::Str(Text::new(v))));
        Ok(())
    }

    fn visit_i64<E: serde::de::Error>(self, v: i64) -> Result<(), E> {
        self.out.push((self.prefix, Value::Int(v)));
        Ok(())
    }

    fn visit_u64<E: serde::de::Error>(self, v: u64) -> Result<(), E> {
        let value = i64::try_from(v)
            .map(Value::Int)
            .unwrap_or_else(|_| Value::from(v.to_string()));
        self.out.push((self.prefix, value));
        Ok(())
    }

    fn visit_f64<E: serde::de::Error>(self, v: f64) -> Result<(), E> {
        self.out.push((self.prefix, Value::Float(v)));
        Ok(())
    }

    fn visit_bool<E: serde::de::Error>(self, v: bool) -> Result<(), E> {
        self.out.push((self.prefix, Value::Bool(v)));
        Ok(())
    }

    fn visit_unit<E: serde::de::Error>(self) -> Result<(), E> {
        self.out.push((self.prefix, Value::Null));
        Ok(())
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
    fn direct_parse_agrees_with_the_tree_walk() {
        let text = br#"{"a": {"b": 1, "c": {"d": "X"}}, "l": [1, "two"], "n": null, "e": {}}"#;
        let mut direct = flat_fields(text).expect("valid JSON");
        let mut walked = Vec::new();
        flatten_into(
            "",
            serde_json::from_slice(text).expect("valid JSON"),
            &mut walked,
        );
        direct.sort_by(|a, b| a.0.cmp(&b.0));
        walked.sort_by(|a, b| a.0.cmp(&b.0));
        assert_eq!(direct, walked);
        assert!(flat_fields(b"{\"a\": 1} trailing").is_err());
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
