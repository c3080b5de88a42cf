//! The tantivy schema of one partition, and the mapping Event ⇄ document.
//!
//! What is indexed, stored and fast is chosen per question the store must answer:
//!
//! | field      | indexed            | stored | fast | why |
//! |------------|--------------------|--------|------|-----|
//! | `time`     | no                 | yes    | yes  | time-range filter and newest-first order, both on the fast column |
//! | `received` | no                 | yes    | no   | shown in results |
//! | `seq`      | no                 | yes    | yes  | `@seq` filter (a range on the column), links back to the WAL |
//! | `sub`      | no                 | yes    | no   | links back to the WAL |
//! | `source`, `format` | raw        | yes    | no   | filter by listener / parser |
//! | `parsed`   | yes                | yes    | no   | find records no parser understood |
//! | `f`        | JSON, lower-cased raw values | no | no | exact / wildcard filters, numeric ranges and `count_by`, all over its term dictionary |
//! | `fields`   | no                 | yes    | no   | the event's fields with their original names, to rebuild the Event |
//! | `original` | no                 | yes    | no   | the record as received |
//! | `text`     | tokenised words    | no     | no   | free-text search over the original (or the field values when there is none) |
//!
//! Field names in `f` are lower-cased, as koban-event looks them up; values are
//! lower-cased by the `lowercase_raw` tokenizer, as Sigma compares them. The document
//! itself is `document::EventDoc`, read by tantivy straight from the event.
//!
//! `time` and `seq` are columns, not terms: both are (nearly) unique per event, and as
//! terms they were two of the ~40 an event cost the indexer, the most expensive two
//! (a new posting list and dictionary entry each). tantivy's `RangeQuery` reads the
//! column when the field is fast, and the term dictionary when not.
//!
//! Versions: partitions made before that ([`schema_v1`]: `time` indexed and fast,
//! `seq` indexed, not fast) are opened and written with their own schema — the
//! fields have the same names and types, and every query works on both (a range on
//! `time` or `seq` uses the term dictionary there). New partitions get the current
//! schema. Any other schema is refused as not ours.
//!
//! `f` is deliberately not a fast field: measured on the Mordor Windows events, a
//! fast JSON field took 60 % of the disk (1.7 kB per event: a column and dictionary
//! per path, long values included) and most of the commit time. Ranges and
//! `count_by` walk the term dictionary of one path instead.

use tantivy::schema::{
    Field, IndexRecordOption, JsonObjectOptions, NumericOptions, Schema, TextFieldIndexing,
    TextOptions, STORED,
};
use tantivy::tokenizer::{LowerCaser, RawTokenizer, TextAnalyzer};
use tantivy::Index;

use koban_event::{Event, Value};

use crate::words::Words;
use crate::StoredEvent;

/// The tokenizer of exact values: the whole value as one term, lower-cased.
pub(crate) const LOWER_RAW: &str = "lowercase_raw";

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

/// The schema of new partitions.
pub(crate) fn build_schema() -> Schema {
    schema(false)
}

/// The schema of partitions written before `time` and `seq` became columns only.
pub(crate) fn schema_v1() -> Schema {
    schema(true)
}

fn schema(v1: bool) -> Schema {
    let mut b = Schema::builder();
    let num_indexed = NumericOptions::default().set_indexed().set_stored();
    let column = NumericOptions::default().set_stored().set_fast();
    if v1 {
        b.add_i64_field("time", num_indexed.clone().set_fast());
    } else {
        b.add_i64_field("time", column.clone());
    }
    b.add_i64_field("received", NumericOptions::default().set_stored());
    if v1 {
        b.add_u64_field("seq", num_indexed.clone());
    } else {
        b.add_u64_field("seq", column);
    }
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
    // tantivy's `default` words, made in one pass (see words.rs).
    index
        .tokenizers()
        .register("default", TextAnalyzer::from(Words::default()));
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
pub(crate) const LOGSOURCE_KEY: &str = "@koban.logsource";
