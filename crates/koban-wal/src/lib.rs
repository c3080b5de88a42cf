//! The intake write-ahead log. Every record the server accepts is appended here before
//! it is acknowledged; the pipeline reads it back in order and, once the records are
//! stored, `truncate_through` drops the segments behind it.
//!
//! - `record.rs`: a record and its CRC-checked frame
//! - `segment.rs`: segment files and scanning them (recovery, fuzzing)
//! - `wal.rs`: open + recovery, group-committed append, truncation
//! - `reader.rs`: ordered reading from a sequence number

mod error;
mod reader;
mod record;
pub mod segment;
mod wal;

pub use error::WalError;
pub use reader::WalReader;
pub use record::{Record, RecordKind, WalRecord};
pub use wal::{FsyncPolicy, Recovery, Wal, WalOptions};
