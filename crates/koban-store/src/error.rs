//! The store's one error type.

use std::path::PathBuf;

/// Everything that can go wrong in the store. Tantivy's own errors are wrapped, not
/// flattened to text, so callers can log the cause chain.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("invalid tenant id {0:?}: use 1-64 characters of a-z, 0-9, '_' or '-', not starting with '-' or '.'")]
    InvalidTenant(String),
    #[error("i/o error on {path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("index error in partition {partition}: {source}")]
    Index {
        partition: String,
        #[source]
        source: tantivy::TantivyError,
    },
    #[error("corrupt store metadata in {path}: {message}")]
    Corrupt { path: PathBuf, message: String },
    #[error(
        "event (seq {seq}, sub {sub}) written after (seq {last_seq}, sub {last_sub}): \
         writes must follow WAL order for exactly-once replay"
    )]
    OutOfOrder {
        seq: u64,
        sub: u32,
        last_seq: u64,
        last_sub: u32,
    },
    #[error("commit of applied seq {applied} would go back from {current}")]
    AppliedSeqBackwards { applied: u64, current: u64 },
    #[error("invalid search: {0}")]
    InvalidQuery(String),
}

impl StoreError {
    pub(crate) fn io(path: impl Into<PathBuf>, source: std::io::Error) -> StoreError {
        StoreError::Io {
            path: path.into(),
            source,
        }
    }

    pub(crate) fn index(partition: impl std::fmt::Display, source: tantivy::TantivyError) -> Self {
        StoreError::Index {
            partition: partition.to_string(),
            source,
        }
    }
}
