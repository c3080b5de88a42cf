//! Zeek's TSV log format: `#separator`, `#path`, `#fields` directives, then one row per
//! record with `-` for unset and `(empty)` for empty fields.

use koban_event::{Text, Value};

#[derive(Debug, Default)]
pub(crate) struct ZeekTsv {
    fields: Vec<String>,
    path: Option<String>,
    started: bool,
}

impl ZeekTsv {
    pub(crate) fn active(&self) -> bool {
        self.started
    }

    /// Takes one line; returns the fields of a data row, `None` for directives.
    pub(crate) fn line(&mut self, line: &str) -> Option<Vec<(String, Value)>> {
        self.started = true;
        if let Some(directive) = line.strip_prefix('#') {
            let mut parts = directive.split('\t');
            match parts.next() {
                Some("fields") => self.fields = parts.map(str::to_owned).collect(),
                Some("path") => self.path = parts.next().map(str::to_owned),
                _ => {}
            }
            return None;
        }
        let mut out = row(&self.fields, line);
        if let Some(p) = &self.path {
            out.push(("_path".into(), Value::from(p.as_str())));
        }
        Some(out)
    }
}

/// One data row under the `#fields` names; `-` (unset) fields are left out.
pub(crate) fn row(fields: &[String], line: &str) -> Vec<(String, Value)> {
    let mut out: Vec<(String, Value)> = Vec::with_capacity(fields.len() + 1);
    for (name, raw) in fields.iter().zip(line.split('\t')) {
        let value = match raw {
            "-" => continue,
            "(empty)" => Value::Str(Text::new("")),
            _ => match raw.parse::<i64>() {
                Ok(i) => Value::Int(i),
                Err(_) if name == "ts" => raw
                    .parse::<f64>()
                    .map(Value::Float)
                    .unwrap_or(Value::from(raw)),
                Err(_) => Value::from(raw),
            },
        };
        out.push((name.clone(), value));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn directives_then_rows() {
        let mut z = ZeekTsv::default();
        assert!(z.line("#separator \\x09").is_none());
        assert!(z.line("#path\tdns").is_none());
        assert!(z
            .line("#fields\tts\tuid\tid.orig_h\tquery\tqtype")
            .is_none());
        let row = z
            .line("1588205199.82\tC1\t10.0.1.6\texample.com\t-")
            .unwrap_or_default();
        assert_eq!(row.len(), 5);
        assert_eq!(row[0], ("ts".to_string(), Value::Float(1588205199.82)));
        assert!(row.iter().all(|(k, _)| k != "qtype"));
        assert_eq!(row[4], ("_path".to_string(), Value::from("dns")));
    }
}
