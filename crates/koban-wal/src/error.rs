//! What can go wrong with the log, as types the server can act on.

use std::path::PathBuf;

#[derive(Debug, thiserror::Error)]
pub enum WalError {
    /// The file system has no room left. Nothing of the failed append was kept; appends
    /// work again once space returns.
    #[error("disk full while writing {path}")]
    DiskFull { path: PathBuf },
    #[error("{op} {path}: {source}")]
    Io {
        op: &'static str,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// A frame whose checksum does not match, or whose content cannot be decoded.
    #[error("corrupt record in {path} at byte {offset}: {reason}")]
    Corrupt {
        path: PathBuf,
        offset: u64,
        reason: String,
    },
    #[error("{path} is not a koban WAL segment")]
    NotASegment { path: PathBuf },
    #[error("record of {size} bytes is over the limit of {limit} bytes")]
    RecordTooLarge { size: usize, limit: usize },
    /// An fsync failed: the kernel may have dropped the written pages, so this log no
    /// longer accepts appends until it is reopened (and recovered).
    #[error("the log failed to sync earlier and accepts no more appends: reopen it")]
    Poisoned,
    #[error("record {wanted} is no longer in the log (oldest kept is {oldest})")]
    Truncated { wanted: u64, oldest: u64 },
}

impl WalError {
    pub(crate) fn io(op: &'static str, path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        let path = path.into();
        // ENOSPC (28 on Linux) and EDQUOT (122) mean the same thing to the server: no room.
        if matches!(source.raw_os_error(), Some(28) | Some(122))
            || source.kind() == std::io::ErrorKind::StorageFull
        {
            return WalError::DiskFull { path };
        }
        WalError::Io { op, path, source }
    }

    pub fn is_disk_full(&self) -> bool {
        matches!(self, WalError::DiskFull { .. })
    }
}
