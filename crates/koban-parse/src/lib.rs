//! Log readers and normalisation into [`koban_event::Event`]s, through two doors:
//!
//! - files ([`Reader`]): EVTX, JSON, NDJSON, zip/gzip/tar archives of those, plain
//!   text lines. A broken file or record is reported through the error callback and
//!   skipped; the rest of the input is still read.
//! - one record at a time ([`parse_text`], [`parse_json`], [`parse_json_value`]), the
//!   way the server's listeners receive them: the format is found from the content,
//!   the original is kept, and a record nothing understands comes back `raw`.
//!
//! Nothing here panics on bad input.

mod cef;
mod cisco;
mod firewall;
mod flatten;
mod ingest;
mod json;
mod kv;
mod leef;
mod linux;
mod out;
mod read;
mod sources;
mod syslog;
mod text;
mod web;
mod windows;
mod zeek;

use std::path::PathBuf;

pub use ingest::{parse_json, parse_json_value, parse_text, Parsed};
pub use read::{Reader, Record};
pub use sources::SourceHint;
pub use text::parse_line;
pub use windows::WindowsMap;

/// A problem with one file or one record. The reader carries on after it.
#[derive(Debug, thiserror::Error)]
pub enum ReadError {
    #[error("{path}: cannot read: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{path}{}: not a valid EVTX file: {message}", entry_suffix(.entry))]
    Evtx {
        path: PathBuf,
        entry: Option<String>,
        message: String,
    },
    #[error("{path}{}: record {record}: {message}", entry_suffix(.entry))]
    Record {
        path: PathBuf,
        entry: Option<String>,
        /// 0-based record (line) index.
        record: u64,
        message: String,
    },
    #[error("{path}: not a readable zip archive: {message}")]
    Zip { path: PathBuf, message: String },
    #[error("{path}: {message}")]
    Unsupported { path: PathBuf, message: String },
}

fn entry_suffix(entry: &Option<String>) -> String {
    entry
        .as_ref()
        .map(|e| format!(" ({e})"))
        .unwrap_or_default()
}

/// The embedded Windows log-source map failed to load (a build defect, caught by tests).
#[derive(Debug, thiserror::Error)]
#[error("the embedded Windows log-source map is invalid: {0}")]
pub struct MapError(#[from] serde_yaml::Error);
