//! Arbitrary bytes as one text record for the ingest path (`koban_parse::parse_text`):
//! every line format (syslog headers, CEF, LEEF, key=value, firewall CSV, Cisco,
//! access/error logs, audit) must come back as an event, never panic, and always keep
//! the original text. The first byte picks whether Zeek-style columns are announced.
#![no_main]

use std::sync::Arc;

use koban_parse::{parse_text, SourceHint};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Some((&selector, body)) = data.split_first() else { return };
    let mut hint = SourceHint::default();
    if selector & 1 == 1 {
        let cols: Vec<String> = ["ts", "uid", "id.orig_h", "id.orig_p", "query"]
            .iter()
            .map(|s| (*s).to_owned())
            .collect();
        hint.columns = Some(Arc::from(cols));
        hint.stem = "dns".into();
    }
    let text = String::from_utf8_lossy(body);
    for line in text.lines().take(64) {
        let p = parse_text(line, &hint);
        assert!(p.event.original.is_some(), "the original record is kept");
        assert!(p.parsed || p.event.get("message").is_some(), "raw keeps the message");
    }
});
