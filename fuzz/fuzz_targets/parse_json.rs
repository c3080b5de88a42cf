//! Arbitrary bytes as one JSON document for the ingest path (`parse_json`), and, when
//! they decode, as a JSON value (`parse_json_value`, the `_bulk`/HEC path): never a
//! panic, the original always kept.
#![no_main]

use koban_parse::{parse_json, parse_json_value, SourceHint};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let hint = SourceHint::default();
    let p = parse_json(data, &hint);
    assert!(p.event.original.is_some(), "the original record is kept");
    if let Ok(v) = serde_json::from_slice::<serde_json::Value>(data) {
        let _ = parse_json_value(v, &hint);
    }
});
