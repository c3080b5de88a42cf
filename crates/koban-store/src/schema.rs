//! The tantivy schema of one partition, and the mapping Event ⇄ document.
//!
//! What is indexed, stored and fast is chosen per question the store must answer:
//!
//! | field      | indexed            | stored | fast | why |
//! |------------|--------------------|--------|------|-----|
//! | `time`     | yes (i64)          | yes    | yes  | time-range filter, newest-first order |
//! | `received` | no                 | yes    | no   | shown in results |
//! | `seq`,`sub`| `seq` yes          | yes    | no   | replay checks, tests, links back to the WAL |
//! | `source`, `format` | raw        | yes    | no   | filter by listener / parser |
//! | `parsed`   | yes                | yes    | no   | find records no parser understood |
//! | `f`        | JSON, lower-cased raw values | no | no | exact / wildcard filters, numeric ranges and `count_by`, all over its term dictionary |
//! | `fields`   | no                 | yes    | no   | the event's fields with their original names, to rebuild the Event |
//! | `original` | no                 | yes    | no   | the record as received |
//! | `text`     | tokenised words    | no     | no   | free-text search over the original (or the field values when there is none) |
//!
//! Field names in `f` are lower-cased, as koban-event looks them up; values are
//! lower-cased by the `lowercase_raw` tokenizer, as Sigma compares them.
//!
//! `f` is deliberately not a fast field: measured on the Mordor Windows events, a
//! fast JSON field took 60 % of the disk (1.7 kB per event: a column and dictionary
//! per path, long values included) and most of the commit time. Ranges and
//! `count_by` walk the term dictionary of one path instead.

use tantivy::schema::{
    Field, IndexRecordOption, JsonObjectOptions, NumericOptions, OwnedValue, Schema,
    TextFieldIndexing, TextOptions, STORED,
};
use tantivy::tokenizer::{LowerCaser, RawTokenizer, TextAnalyzer};
use tantivy::{Index, TantivyDocument};

use koban_event::{Event, Value};

use crate::StoredEvent;

/// The tokenizer of exact values: the whole value as one term, lower-cased.
pub(crate) const LOWER_RAW: &str = "lowercase_raw";

/// Tantivy refuses terms longer than this (it drops them); values this long are kept
/// in the stored fields and the free-text index, just not as one exact term.
const MAX_TERM_BYTES: usize = 32 * 1024;

/// Handles to the schema's fields, resolved once per partition.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Fields {
    pub time: Field,
    pub received: Field,
    pub seq: Field,
    pub sub: Field,
    pub source: Field,
    pub format: Field,
    pub parsed: Field,
    pub f: Field,
    pub fields: Field,
    pub original: Field,
    pub text: Field,
}

pub(crate) fn build_schema() -> Schema {
    let mut b = Schema::builder();
    let num_indexed = NumericOptions::default().set_indexed().set_stored();
    b.add_i64_field("time", num_indexed.clone().set_fast());
    b.add_i64_field("received", NumericOptions::default().set_stored());
    b.add_u64_field("seq", num_indexed.clone());
    b.add_u64_field("sub", NumericOptions::default().set_stored());
    let keyword = TextOptions::default()
        .set_indexing_options(
            TextFieldIndexing::default()
                .set_tokenizer(LOWER_RAW)
                .set_index_option(IndexRecordOption::Basic),
        )
        .set_stored();
    b.add_text_field("source", keyword.clone());
    b.add_text_field("format", keyword);
    b.add_bool_field("parsed", num_indexed);
    let json = JsonObjectOptions::default()
        .set_indexing_options(
            TextFieldIndexing::default()
                .set_tokenizer(LOWER_RAW)
                .set_index_option(IndexRecordOption::Basic),
        )
        .set_expand_dots_enabled();
    b.add_json_field("f", json);
    b.add_text_field("fields", STORED);
    b.add_text_field("original", STORED);
    let words = TextOptions::default().set_indexing_options(
        TextFieldIndexing::default()
            .set_tokenizer("default")
            .set_index_option(IndexRecordOption::Basic),
    );
    b.add_text_field("text", words);
    b.build()
}

/// Tokenizers are not persisted by tantivy: every opened index needs them again.
pub(crate) fn register_tokenizers(index: &Index) {
    let lower_raw = || {
        TextAnalyzer::builder(RawTokenizer::default())
            .filter(LowerCaser)
            .build()
    };
    index.tokenizers().register(LOWER_RAW, lower_raw());
    index
        .fast_field_tokenizer()
        .register(LOWER_RAW, lower_raw());
}

impl Fields {
    pub(crate) fn resolve(schema: &Schema) -> tantivy::Result<Fields> {
        let f = |name| schema.get_field(name);
        Ok(Fields {
            time: f("time")?,
            received: f("received")?,
            seq: f("seq")?,
            sub: f("sub")?,
            source: f("source")?,
            format: f("format")?,
            parsed: f("parsed")?,
            f: f("f")?,
            fields: f("fields")?,
            original: f("original")?,
            text: f("text")?,
        })
    }

    /// The event time a document is filed under: the event's own, else when it was
    /// received (an unparsed line still belongs somewhere on the timeline).
    pub(crate) fn event_time(e: &StoredEvent<'_>) -> i64 {
        e.event.timestamp.unwrap_or(e.received_ms)
    }

    /// `text_only` holds lower-cased field names kept out of the exact index (see
    /// [`StoreOptions::text_only_fields`](crate::StoreOptions::text_only_fields)).
    pub(crate) fn document(&self, e: &StoredEvent<'_>, text_only: &[String]) -> TantivyDocument {
        let mut doc = TantivyDocument::default();
        doc.add_i64(self.time, Fields::event_time(e));
        doc.add_i64(self.received, e.received_ms);
        doc.add_u64(self.seq, e.seq);
        doc.add_u64(self.sub, u64::from(e.sub));
        doc.add_text(self.source, e.source);
        doc.add_text(self.format, e.format);
        doc.add_bool(self.parsed, e.parsed);

        let mut indexed = Vec::with_capacity(e.event.len());
        let mut named = serde_json::Map::with_capacity(e.event.len());
        for field in e.event.fields() {
            let exact = !text_only.iter().any(|t| t == field.key());
            if let Some(v) = indexed_value(&field.value).filter(|_| exact) {
                indexed.push((field.key().to_owned(), v));
            }
            // A text-only field stays searchable by its words even when the
            // original record does not contain it.
            if let (false, Some(_), Value::Str(t)) = (exact, &e.event.original, &field.value) {
                doc.add_text(self.text, t.as_str());
            }
            named.insert(field.name.to_string(), to_json(&field.value));
        }
        doc.add_field_value(self.f, &OwnedValue::Object(indexed));
        let ls = &e.event.logsource;
        if ls.product.is_some() || !ls.services.is_empty() || !ls.categories.is_empty() {
            named.insert(
                LOGSOURCE_KEY.to_owned(),
                serde_json::json!({
                    "product": ls.product.as_deref(),
                    "services": ls.services.iter().map(|s| &**s).collect::<Vec<_>>(),
                    "categories": ls.categories.iter().map(|s| &**s).collect::<Vec<_>>(),
                }),
            );
        }
        let named = serde_json::Value::Object(named).to_string();
        match e.event.original.as_deref() {
            Some(original) => {
                doc.add_text(self.original, original);
                doc.add_text(self.text, original);
            }
            // EVTX records have no text form: search the field values instead.
            None => doc.add_text(self.text, text_of(e.event)),
        }
        doc.add_text(self.fields, named);
        doc
    }
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

/// The JSON value indexed for a field: numbers as numbers (range queries work),
/// text as text. Nulls are left out; lists index every element.
fn indexed_value(v: &Value) -> Option<OwnedValue> {
    Some(match v {
        Value::Null => return None,
        Value::Bool(b) => OwnedValue::Bool(*b),
        Value::Int(i) => OwnedValue::I64(*i),
        Value::Float(f) if f.is_finite() => OwnedValue::F64(*f),
        Value::Float(f) => OwnedValue::Str(f.to_string()),
        Value::Str(t) if t.as_str().len() > MAX_TERM_BYTES => return None,
        Value::Str(t) => OwnedValue::Str(t.as_str().to_owned()),
        Value::List(items) => {
            let items: Vec<_> = items.iter().filter_map(indexed_value).collect();
            if items.is_empty() {
                return None;
            }
            OwnedValue::Array(items)
        }
    })
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

/// Rebuilds an event from the stored `fields` JSON. The stored form is ours, so a
/// parse failure means a damaged index; the event then comes back without fields
/// rather than failing the whole search.
pub(crate) fn event_from_stored(fields_json: &str, time: i64, original: Option<&str>) -> Event {
    let mut logsource = None;
    let fields = match serde_json::from_str::<serde_json::Value>(fields_json) {
        Ok(serde_json::Value::Object(mut map)) => {
            logsource = map.remove(LOGSOURCE_KEY);
            map.into_iter()
                .map(|(k, v)| (k, Value::from_json(v)))
                .collect()
        }
        _ => Vec::new(),
    };
    let mut event = Event::from_fields(fields);
    event.timestamp = Some(time);
    event.original = original.map(Into::into);
    if let Some(ls) = logsource {
        let list = |k: &str| -> Vec<Box<str>> {
            ls[k]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(|v| v.as_str().map(Into::into))
                .collect()
        };
        event.logsource = koban_event::LogSource {
            product: ls["product"].as_str().map(Into::into),
            services: list("services"),
            categories: list("categories"),
        };
    }
    event
}

/// Where the stored `fields` keep the event's Sigma log source (product, services,
/// categories), so events read back — by a retro-hunt — route to the same rules as
/// when they arrived. Data stored before it was kept comes back without one.
const LOGSOURCE_KEY: &str = "@koban.logsource";
