//! Arbitrary bytes as a rule file: load, link into a rule set, match fixed events,
//! explain the matches. Nothing may panic.
#![no_main]

use std::path::Path;

use koban_sigma::{load_str, CompileOptions};
use libfuzzer_sys::fuzz_target;

mod common;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    let loaded = load_str(text, Path::new("fuzz.yml"), &CompileOptions::default());
    for e in &loaded.errors {
        let _ = e.to_string();
    }
    common::exercise(loaded.documents);
});
