//! The tantivy document of one stored event, read straight from the [`Event`].
//!
//! Building a `TantivyDocument` copied every field value twice on the pipeline thread
//! (into `OwnedValue`s, then into the compact document) and tantivy's indexing threads
//! decoded it again. [`EventDoc`] instead holds the parsed event itself (shared with
//! the detection stage through an `Arc`) and implements tantivy's `Document` over it:
//! the indexing threads walk the event's fields in place. Only the stored `fields`
//! JSON (and, for events without an original, the free text) is made per document.
//!
//! What is indexed and stored is exactly what `schema.rs` describes; this module only
//! changes how the values reach tantivy.

use std::sync::Arc;

use tantivy::schema::document::{ReferenceValue, ReferenceValueLeaf};
use tantivy::schema::{Field, Value as TantivyValue};
use tantivy::Document;

use koban_event::{Event, Value};

use crate::schema::{Fields, LOGSOURCE_KEY};
use crate::StoredEvent;

/// Tantivy refuses terms longer than this (it drops them); values this long are kept
/// in the stored fields and the free-text index, just not as one exact term.
pub(crate) const MAX_TERM_BYTES: usize = 32 * 1024;

/// One event as a tantivy document.
#[derive(Debug)]
pub(crate) struct EventDoc {
    pub fields: Fields,
    pub time: i64,
    pub received: i64,
    pub seq: u64,
    pub sub: u64,
    pub source: Arc<str>,
    pub format: Arc<str>,
    pub parsed: bool,
    pub event: Arc<Event>,
    /// Lower-cased names of the fields indexed as words only (`text_only_fields`).
    pub text_only: Arc<[String]>,
    /// The `fields` JSON: every field under its original name, to rebuild the event.
    pub named: String,
    /// The free text of an event without an original (EVTX): its string values.
    pub free_text: Option<String>,
    /// The text-only fields whose words are not all in the original, by index into
    /// the event's fields: their words are indexed beside the original's. Found once
    /// here (usually none, and then nothing is allocated), because tantivy walks a
    /// document's fields several times.
    pub extra_words: Vec<u32>,
}

impl EventDoc {
    /// The document of `e`; `source` and `format` are `e`'s, shared between documents.
    pub(crate) fn new(
        fields: Fields,
        e: &StoredEvent<'_>,
        source: Arc<str>,
        format: Arc<str>,
        text_only: Arc<[String]>,
    ) -> EventDoc {
        let event = e.event;
        let mut named = String::with_capacity(event.original.as_ref().map_or(256, |o| o.len() * 2));
        named_json(event, &mut named);
        let mut extra_words = Vec::new();
        if let Some(o) = event.original.as_deref() {
            for (i, field) in event.fields().iter().enumerate() {
                if let Value::Str(t) = &field.value {
                    // A text-only field stays searchable by its words even when the
                    // original record does not contain it (when it does, as a syslog
                    // line's message, its words are indexed once, from the original).
                    if text_only.iter().any(|k| **k == *field.key()) && !words_within(o, t.as_str())
                    {
                        extra_words.push(i as u32);
                    }
                }
            }
        }
        EventDoc {
            fields,
            time: Fields::event_time(e),
            received: e.received_ms,
            seq: e.seq,
            sub: u64::from(e.sub),
            source,
            format,
            parsed: e.parsed,
            event: Arc::clone(event),
            text_only,
            named,
            // EVTX records have no text form: search the field values instead.
            free_text: event.original.is_none().then(|| text_of(event)),
            extra_words,
        }
    }

    fn exact(&self, key: &str) -> bool {
        !self.text_only.iter().any(|t| t == key)
    }
}

/// A value of an [`EventDoc`]: a leaf, the `f` object over the event's fields, or
/// one event value inside it.
#[derive(Debug, Clone)]
pub(crate) enum DocValue<'a> {
    Leaf(ReferenceValueLeaf<'a>),
    Exact(&'a EventDoc),
    Field(&'a Value),
}

impl<'a> TantivyValue<'a> for DocValue<'a> {
    type ArrayIter = ListIter<'a>;
    type ObjectIter = ExactFields<'a>;

    fn as_value(&self) -> ReferenceValue<'a, Self> {
        match self {
            DocValue::Leaf(l) => ReferenceValue::Leaf(l.clone()),
            DocValue::Exact(doc) => ReferenceValue::Object(ExactFields {
                doc,
                at: doc.event.fields().iter(),
            }),
            DocValue::Field(v) => match indexed(v) {
                Some(Indexed::Leaf(l)) => ReferenceValue::Leaf(l),
                Some(Indexed::List(items)) => ReferenceValue::Array(ListIter(items.iter())),
                None => ReferenceValue::Leaf(ReferenceValueLeaf::Null),
            },
        }
    }
}

enum Indexed<'a> {
    Leaf(ReferenceValueLeaf<'a>),
    List(&'a [Value]),
}

/// How a field value is indexed in `f`: numbers as numbers (range queries work),
/// text as text. Nulls are left out, and so are lists with nothing indexable in them;
/// a list indexes every element. Non-finite floats are indexed as their text.
fn indexed(v: &Value) -> Option<Indexed<'_>> {
    Some(Indexed::Leaf(match v {
        Value::Null => return None,
        Value::Bool(b) => ReferenceValueLeaf::Bool(*b),
        Value::Int(i) => ReferenceValueLeaf::I64(*i),
        Value::Float(f) if f.is_finite() => ReferenceValueLeaf::F64(*f),
        Value::Float(f) if f.is_nan() => ReferenceValueLeaf::Str("NaN"),
        Value::Float(f) if *f > 0.0 => ReferenceValueLeaf::Str("inf"),
        Value::Float(_) => ReferenceValueLeaf::Str("-inf"),
        Value::Str(t) if t.as_str().len() > MAX_TERM_BYTES => return None,
        Value::Str(t) => ReferenceValueLeaf::Str(t.as_str()),
        Value::List(items) => {
            if !items.iter().any(|i| indexed(i).is_some()) {
                return None;
            }
            return Some(Indexed::List(items));
        }
    }))
}

/// The elements of a list that are indexed.
#[derive(Debug, Clone)]
pub(crate) struct ListIter<'a>(std::slice::Iter<'a, Value>);

impl<'a> Iterator for ListIter<'a> {
    type Item = DocValue<'a>;

    fn next(&mut self) -> Option<DocValue<'a>> {
        self.0
            .by_ref()
            .find(|v| indexed(v).is_some())
            .map(DocValue::Field)
    }
}

/// The fields indexed as exact values in `f`, under their lower-cased names.
#[derive(Debug, Clone)]
pub(crate) struct ExactFields<'a> {
    doc: &'a EventDoc,
    at: std::slice::Iter<'a, koban_event::Field>,
}

impl<'a> Iterator for ExactFields<'a> {
    type Item = (&'a str, DocValue<'a>);

    fn next(&mut self) -> Option<Self::Item> {
        let doc = self.doc;
        self.at
            .by_ref()
            .find(|f| indexed(&f.value).is_some() && doc.exact(f.key()))
            .map(|f| (f.key(), DocValue::Field(&f.value)))
    }
}

/// Where the field/value iterator of an [`EventDoc`] is.
#[derive(Debug, Clone, Copy)]
enum Step {
    Time,
    Received,
    Seq,
    Sub,
    Source,
    Format,
    Parsed,
    /// The text-only fields' words not in the original (index into `extra_words`).
    TextOnly(usize),
    Exact,
    Original,
    Text,
    Named,
    Done,
}

pub(crate) struct DocFields<'a> {
    doc: &'a EventDoc,
    step: Step,
}

impl<'a> Iterator for DocFields<'a> {
    type Item = (Field, DocValue<'a>);

    fn next(&mut self) -> Option<Self::Item> {
        use ReferenceValueLeaf as L;
        let d = self.doc;
        let f = &d.fields;
        loop {
            let (next, item) = match self.step {
                Step::Time => (Step::Received, Some((f.time, L::I64(d.time)))),
                Step::Received => (Step::Seq, Some((f.received, L::I64(d.received)))),
                Step::Seq => (Step::Sub, Some((f.seq, L::U64(d.seq)))),
                Step::Sub => (Step::Source, Some((f.sub, L::U64(d.sub)))),
                Step::Source => (Step::Format, Some((f.source, L::Str(&d.source)))),
                Step::Format => (Step::Parsed, Some((f.format, L::Str(&d.format)))),
                Step::Parsed => (Step::TextOnly(0), Some((f.parsed, L::Bool(d.parsed)))),
                Step::TextOnly(i) => match d.extra_words.get(i) {
                    None => (Step::Exact, None),
                    Some(&at) => match &d.event.fields()[at as usize].value {
                        Value::Str(t) => {
                            (Step::TextOnly(i + 1), Some((f.text, L::Str(t.as_str()))))
                        }
                        _ => (Step::TextOnly(i + 1), None),
                    },
                },
                Step::Exact => {
                    self.step = Step::Original;
                    return Some((f.f, DocValue::Exact(d)));
                }
                Step::Original => match d.event.original.as_deref() {
                    Some(o) => (Step::Text, Some((f.original, L::Str(o)))),
                    None => (Step::Text, None),
                },
                Step::Text => {
                    let text = d.event.original.as_deref().or(d.free_text.as_deref());
                    (Step::Named, text.map(|t| (f.text, L::Str(t))))
                }
                Step::Named => (Step::Done, Some((f.fields, L::Str(&d.named)))),
                Step::Done => return None,
            };
            self.step = next;
            if let Some((field, leaf)) = item {
                return Some((field, DocValue::Leaf(leaf)));
            }
        }
    }
}

impl Document for EventDoc {
    type Value<'a> = DocValue<'a>;
    type FieldsValuesIter<'a> = DocFields<'a>;

    fn iter_fields_and_values(&self) -> DocFields<'_> {
        DocFields {
            doc: self,
            step: Step::Time,
        }
    }
}

/// Whether the words of `value` are already words of `original`: `value` occurs in it
/// with no letter or digit running on across either end. The free-text tokenizer
/// splits at every character that is not alphanumeric, so the words of such a span
/// are exactly the original's words there, and indexing `value` again would add no
/// term (search does not score, so the repeated words changed nothing either).
pub(crate) fn words_within(original: &str, value: &str) -> bool {
    // A word runs on across a boundary when both characters there are alphanumeric.
    let runs_on = |a: Option<char>, b: Option<char>| {
        a.is_some_and(char::is_alphanumeric) && b.is_some_and(char::is_alphanumeric)
    };
    let (first, last) = (value.chars().next(), value.chars().next_back());
    let bounded = |at: usize| {
        let before = original[..at].chars().next_back();
        let after = original[at + value.len()..].chars().next();
        !(runs_on(before, first) || runs_on(after, last))
    };
    // A syslog message is the line's tail: try there first.
    if original.ends_with(value) && bounded(original.len() - value.len()) {
        return true;
    }
    original.match_indices(value).any(|(at, _)| bounded(at))
}

/// The string values of an event, for free-text search when it has no original.
fn text_of(event: &Event) -> String {
    let mut out = String::new();
    for field in event.fields() {
        if let Value::Str(t) = &field.value {
            out.push_str(t.as_str());
            out.push(' ');
        }
    }
    out
}

/// The `fields` JSON of an event: `{"Name": value, ...}` in field order, written
/// directly (no intermediate JSON tree). Non-finite floats become `null`, as
/// `serde_json::Number` would have them.
pub(crate) fn named_json(event: &Event, out: &mut String) {
    out.push('{');
    for (i, field) in event.fields().iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        json_str(&field.name, out);
        out.push(':');
        json_value(&field.value, out);
    }
    logsource_json(event, !event.fields().is_empty(), out);
    out.push('}');
}

/// The event's Sigma log source under [`LOGSOURCE_KEY`], when it has one, so events
/// read back route to the same rules as when they arrived.
fn logsource_json(event: &Event, comma: bool, out: &mut String) {
    let ls = &event.logsource;
    if ls.product.is_none() && ls.services.is_empty() && ls.categories.is_empty() {
        return;
    }
    if comma {
        out.push(',');
    }
    json_str(LOGSOURCE_KEY, out);
    out.push_str(":{\"product\":");
    match ls.product.as_deref() {
        Some(p) => json_str(p, out),
        None => out.push_str("null"),
    }
    for (key, list) in [("services", &ls.services), ("categories", &ls.categories)] {
        out.push_str(",\"");
        out.push_str(key);
        out.push_str("\":[");
        for (i, item) in list.iter().enumerate() {
            if i > 0 {
                out.push(',');
            }
            json_str(item, out);
        }
        out.push(']');
    }
    out.push('}');
}

fn json_value(v: &Value, out: &mut String) {
    match v {
        Value::Null => out.push_str("null"),
        Value::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
        Value::Int(i) => out.push_str(itoa::Buffer::new().format(*i)),
        Value::Float(f) if f.is_finite() => {
            // serde_json's own float formatting, so the text reads back identically.
            out.push_str(
                &serde_json::Number::from_f64(*f)
                    .map_or_else(|| "null".to_string(), |n| n.to_string()),
            );
        }
        Value::Float(_) => out.push_str("null"),
        Value::Str(t) => json_str(t.as_str(), out),
        Value::List(items) => {
            out.push('[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                json_value(item, out);
            }
            out.push(']');
        }
    }
}

/// A JSON string literal, escaped as serde_json escapes (`"`, `\`, control bytes).
fn json_str(s: &str, out: &mut String) {
    out.push('"');
    if needs_escape(s.as_bytes()) {
        json_escaped(s, out);
    } else {
        out.push_str(s);
    }
    out.push('"');
}

/// Whether any byte of `b` must be escaped in a JSON string. Nearly no value needs
/// it; this whole-slice test (no early exit, so the compiler runs it on wide
/// registers) costs a fraction of the byte-at-a-time escaping loop it lets us skip.
#[inline]
fn needs_escape(b: &[u8]) -> bool {
    b.iter().fold(false, |acc, &c| {
        acc | (c < 0x20) | (c == b'"') | (c == b'\\')
    })
}

fn json_escaped(s: &str, out: &mut String) {
    use std::fmt::Write;
    let mut start = 0;
    for (i, b) in s.bytes().enumerate() {
        let esc = match b {
            b'"' => "\\\"",
            b'\\' => "\\\\",
            b'\n' => "\\n",
            b'\r' => "\\r",
            b'\t' => "\\t",
            0x08 => "\\b",
            0x0c => "\\f",
            0..=0x1f => "",
            _ => continue,
        };
        out.push_str(&s[start..i]);
        if esc.is_empty() {
            let _ = write!(out, "\\u{b:04x}");
        } else {
            out.push_str(esc);
        }
        start = i + 1;
    }
    out.push_str(&s[start..]);
}

#[cfg(test)]
mod tests {
    use super::*;

    fn event() -> Event {
        Event::from_fields(vec![
            ("Name".into(), Value::from("a \"q\" \\ \n\t\u{1}é")),
            ("n".into(), Value::Int(-3)),
            ("f".into(), Value::Float(1.5)),
            ("big".into(), Value::Float(1e300)),
            ("nan".into(), Value::Float(f64::NAN)),
            ("b".into(), Value::Bool(true)),
            ("z".into(), Value::Null),
            (
                "l".into(),
                Value::List(vec![Value::from("x"), Value::Int(2), Value::Null]),
            ),
        ])
    }

    /// The stored JSON is what serde_json made of the same values before.
    #[test]
    fn named_json_is_serde_jsons() {
        let e = event();
        let mut ours = String::new();
        named_json(&e, &mut ours);
        let theirs: serde_json::Map<String, serde_json::Value> = e
            .fields()
            .iter()
            .map(|f| (f.name.to_string(), to_json(&f.value)))
            .collect();
        let parsed: serde_json::Value = serde_json::from_str(&ours).expect("valid json");
        assert_eq!(parsed, serde_json::Value::Object(theirs.clone()));
        // Byte for byte too, in field order.
        let mut want = String::from("{");
        for (i, f) in e.fields().iter().enumerate() {
            if i > 0 {
                want.push(',');
            }
            want.push_str(&serde_json::to_string(f.name.as_ref()).expect("name"));
            want.push(':');
            want.push_str(&to_json(&f.value).to_string());
        }
        want.push('}');
        assert_eq!(ours, want);
    }

    fn to_json(v: &Value) -> serde_json::Value {
        use serde_json::Value as J;
        match v {
            Value::Null => J::Null,
            Value::Bool(b) => J::Bool(*b),
            Value::Int(i) => J::from(*i),
            Value::Float(f) => serde_json::Number::from_f64(*f).map_or(J::Null, J::Number),
            Value::Str(t) => J::String(t.as_str().to_owned()),
            Value::List(items) => J::Array(items.iter().map(to_json).collect()),
        }
    }

    #[test]
    fn words_within_needs_word_boundaries() {
        let line = "<38>Dec 10 06:55:46 LabSZ sshd[24200]: Invalid user webmaster from 1.2.3.4";
        assert!(words_within(line, "Invalid user webmaster from 1.2.3.4"));
        assert!(words_within(line, "user webmaster"));
        assert!(words_within(line, ": Invalid"));
        assert!(words_within(line, ""));
        // Cut inside a word: "nvalid" and "webmast" are not words of the line.
        assert!(!words_within(line, "nvalid user"));
        assert!(!words_within(line, "user webmast"));
        assert!(!words_within(line, "not there"));
        // A later occurrence on boundaries is enough.
        assert!(words_within("xab ab", "ab"));
        assert!(words_within("é ab", "ab"));
        assert!(!words_within("éab", "ab"));
    }

    #[test]
    fn lists_and_nulls_in_f() {
        assert!(indexed(&Value::Null).is_none());
        assert!(indexed(&Value::List(vec![Value::Null])).is_none());
        let l = Value::List(vec![Value::Null, Value::from("x")]);
        let Some(Indexed::List(items)) = indexed(&l) else {
            panic!("a list with a string is indexed");
        };
        assert_eq!(ListIter(items.iter()).count(), 1);
        assert!(indexed(&Value::from("x".repeat(MAX_TERM_BYTES + 1))).is_none());
    }
}
