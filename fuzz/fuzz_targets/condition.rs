//! Arbitrary text as the `condition:` of a rule with fixed selections. Loading must
//! not panic, a condition syntax error must point inside the condition (or just past
//! its end), and a rule that loads must evaluate and explain without panicking.
#![no_main]

use std::fmt::Write;
use std::path::Path;

use koban_sigma::{load_str, CompileOptions, RuleError};
use libfuzzer_sys::fuzz_target;

mod common;

/// The condition as a YAML double-quoted scalar: every character that is not
/// printable ASCII is written as an escape, so the parsed value is exactly `s`.
fn yaml_quoted(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            ' '..='~' => out.push(c),
            c if (c as u32) <= 0xffff => {
                let _ = write!(out, "\\u{:04x}", c as u32);
            }
            c => {
                let _ = write!(out, "\\U{:08x}", c as u32);
            }
        }
    }
    out.push('"');
    out
}

fuzz_target!(|data: &[u8]| {
    let Ok(condition) = std::str::from_utf8(data) else { return };
    let text = format!(
        r#"title: fuzzed condition
id: 6d1c7a52-0000-4000-8000-000000000001
logsource:
    product: windows
    category: process_creation
detection:
    sel_a:
        CommandLine|contains: whoami
    sel_b:
        Image|endswith: '\cmd.exe'
    filter_1:
        User|startswith: 'NT AUTHORITY\'
    _x:
        EventID: 1
    condition: {}
level: high
"#,
        yaml_quoted(condition)
    );
    let loaded = load_str(&text, Path::new("fuzz.yml"), &CompileOptions::default());
    for e in &loaded.errors {
        let _ = e.to_string();
        if let RuleError::Condition {
            condition: reported,
            position,
            message,
        } = &e.error
        {
            assert_eq!(reported, condition, "the error quotes a different condition");
            assert!(
                *position >= 1 && *position <= condition.len() + 1,
                "position {position} outside 1..={} for {condition:?}: {message}",
                condition.len() + 1
            );
        }
    }
    assert!(
        loaded.documents.len() + loaded.errors.len() == 1,
        "one rule in, {} documents and {} errors out: {:?}",
        loaded.documents.len(),
        loaded.errors.len(),
        loaded.errors
    );
    common::exercise(loaded.documents);
});
