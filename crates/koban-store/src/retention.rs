//! Retention (delete whole partitions past their tenant's limit) and disk statistics.

use std::collections::BTreeMap;

use crate::partition::dir_bytes;
use crate::tenant::{PartitionKey, TenantId};
use crate::writer::Writers;
use crate::{Shared, StoreError};

/// What a retention run deleted.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RetentionReport {
    /// `yyyy-mm-dd` receive days removed.
    pub deleted_days: Vec<String>,
    pub deleted_docs: u64,
    pub freed_bytes: u64,
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PartitionStats {
    /// `yyyy-mm-dd`, the receive day.
    pub day: String,
    pub docs: u64,
    pub bytes: u64,
    /// Min/max event time committed, ms UTC.
    pub min_ms: Option<i64>,
    pub max_ms: Option<i64>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TenantStats {
    pub partitions: Vec<PartitionStats>,
    pub docs: u64,
    pub bytes: u64,
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct StoreStats {
    pub tenants: BTreeMap<String, TenantStats>,
    pub docs: u64,
    pub bytes: u64,
}

pub(crate) fn stats(shared: &Shared) -> StoreStats {
    let mut out = StoreStats::default();
    for (key, part) in shared.partitions().iter() {
        let committed = part.committed();
        let p = PartitionStats {
            day: key.day.name(),
            docs: part.reader.searcher().num_docs(),
            bytes: dir_bytes(&part.dir),
            min_ms: committed.min_ms,
            max_ms: committed.max_ms,
        };
        let t = out.tenants.entry(key.tenant.to_string()).or_default();
        t.docs += p.docs;
        t.bytes += p.bytes;
        out.docs += p.docs;
        out.bytes += p.bytes;
        t.partitions.push(p);
    }
    out
}

/// A partition goes when its whole receive day lies more than `keep_days` days
/// before `now_ms`: with `keep_days = 30`, every event received in the last 30 days
/// is kept, and a day is dropped once its last millisecond is older than that.
pub(crate) fn apply(
    shared: &Shared,
    writers: &mut Writers,
    tenant: &TenantId,
    keep_days: u32,
    now_ms: i64,
) -> Result<RetentionReport, StoreError> {
    let cutoff = now_ms - i64::from(keep_days) * 86_400_000;
    let doomed: Vec<PartitionKey> = shared
        .partitions()
        .keys()
        .filter(|k| &k.tenant == tenant && k.day.end_ms() <= cutoff)
        .cloned()
        .collect();
    let mut report = RetentionReport::default();
    for key in doomed {
        writers.discard(&key);
        let Some(part) = shared.partitions_mut().remove(&key) else {
            continue;
        };
        report.deleted_docs += part.reader.searcher().num_docs();
        report.freed_bytes += dir_bytes(&part.dir);
        // Searches already running keep their mmaps of the deleted files (POSIX).
        std::fs::remove_dir_all(&part.dir).map_err(|e| StoreError::io(&part.dir, e))?;
        report.deleted_days.push(key.day.name());
    }
    Ok(report)
}
