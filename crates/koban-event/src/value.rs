//! Field values.

use std::fmt::Write;

/// A string value with its lower-cased form computed once.
#[derive(Debug, Clone, PartialEq)]
pub struct Text {
    original: Box<str>,
    /// `None` when lower-casing changes nothing (the common case for paths and ids).
    lower: Option<Box<str>>,
}

impl Text {
    pub fn new(s: impl Into<Box<str>>) -> Self {
        let original: Box<str> = s.into();
        // One pass without early exit (the compiler runs it on wide registers): is
        // any byte non-ASCII, is any an upper-case ASCII letter.
        let (non_ascii, upper) = original.bytes().fold((false, false), |(n, u), b| {
            (n | !b.is_ascii(), u | b.is_ascii_uppercase())
        });
        let lower = if !non_ascii {
            upper.then(|| original.to_ascii_lowercase().into_boxed_str())
        } else {
            original
                .chars()
                .any(char::is_uppercase)
                .then(|| original.to_lowercase().into_boxed_str())
        };
        Text { original, lower }
    }

    #[inline]
    pub fn as_str(&self) -> &str {
        &self.original
    }

    #[inline]
    pub fn lower(&self) -> &str {
        self.lower.as_deref().unwrap_or(&self.original)
    }
}

/// A typed field value.
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    Null,
    Bool(bool),
    Int(i64),
    Float(f64),
    Str(Text),
    List(Vec<Value>),
}

impl From<&str> for Value {
    fn from(s: &str) -> Self {
        Value::Str(Text::new(s))
    }
}

impl From<String> for Value {
    fn from(s: String) -> Self {
        Value::Str(Text::new(s))
    }
}

impl Value {
    /// The value as text, numbers and booleans rendered the way they appear in logs.
    /// Lists and null have no single text form.
    pub fn to_display(&self) -> Option<String> {
        match self {
            Value::Str(t) => Some(t.as_str().to_owned()),
            Value::Int(i) => Some(i.to_string()),
            Value::Float(f) => Some(f.to_string()),
            Value::Bool(b) => Some(b.to_string()),
            Value::List(items) => {
                let mut out = String::new();
                for (i, item) in items.iter().enumerate() {
                    if i > 0 {
                        out.push_str(", ");
                    }
                    let _ = write!(out, "{}", item.to_display().unwrap_or_default());
                }
                Some(out)
            }
            Value::Null => None,
        }
    }

    /// The value as a number when it is one or is text that parses as one.
    pub fn as_f64(&self) -> Option<f64> {
        match self {
            Value::Int(i) => Some(*i as f64),
            Value::Float(f) => Some(*f),
            Value::Str(t) => t.as_str().trim().parse::<f64>().ok(),
            _ => None,
        }
    }

    pub fn from_json(v: serde_json::Value) -> Value {
        match v {
            serde_json::Value::Null => Value::Null,
            serde_json::Value::Bool(b) => Value::Bool(b),
            serde_json::Value::Number(n) => match n.as_i64() {
                Some(i) => Value::Int(i),
                None => match n.as_u64() {
                    Some(u) => Value::Str(Text::new(u.to_string())),
                    None => Value::Float(n.as_f64().unwrap_or(f64::NAN)),
                },
            },
            serde_json::Value::String(s) => Value::Str(Text::new(s)),
            serde_json::Value::Array(items) => {
                Value::List(items.into_iter().map(Value::from_json).collect())
            }
            serde_json::Value::Object(_) => Value::Str(Text::new(v.to_string())),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lower_is_shared_when_nothing_changes() {
        let t = Text::new("c:\\windows\\cmd.exe");
        assert_eq!(t.lower(), t.as_str());
        let t = Text::new("C:\\Windows\\ÄÖ.exe");
        assert_eq!(t.lower(), "c:\\windows\\äö.exe");
    }

    #[test]
    fn numbers_parse_from_text() {
        assert_eq!(Value::from(" 42 ").as_f64(), Some(42.0));
        assert_eq!(Value::Int(7).to_display().as_deref(), Some("7"));
    }
}
