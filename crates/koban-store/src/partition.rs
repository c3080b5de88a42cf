//! One partition: a tantivy index for one (tenant, receive day), its reader, and what
//! its last commit recorded.
//!
//! The commit payload is the partition's own durable bookkeeping, written atomically
//! with its documents by tantivy: the last (seq, sub) it holds — so a replay after a
//! crash skips what this partition already has — and the min/max event time of its
//! documents, so a time-range search can skip it without opening a segment.

use std::path::{Path, PathBuf};
use std::sync::RwLock;

use tantivy::directory::MmapDirectory;
use tantivy::{Index, IndexReader, ReloadPolicy};

use crate::schema::{build_schema, register_tokenizers, Fields};
use crate::tenant::{Day, PartitionKey, TenantId};
use crate::StoreError;

/// What a partition's last commit covers (or, for a writer, what it has buffered).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct Coverage {
    /// The last (seq, sub) written; writes come in WAL order, so every earlier
    /// (seq, sub) destined to this partition is in it too.
    pub last: Option<(u64, u32)>,
    pub min_ms: Option<i64>,
    pub max_ms: Option<i64>,
}

impl Coverage {
    pub(crate) fn add(&mut self, seq: u64, sub: u32, time: i64) {
        self.last = Some((seq, sub));
        self.min_ms = Some(self.min_ms.map_or(time, |m| m.min(time)));
        self.max_ms = Some(self.max_ms.map_or(time, |m| m.max(time)));
    }

    pub(crate) fn merged(self, newer: Coverage) -> Coverage {
        let pick = |a: Option<i64>, b: Option<i64>, f: fn(i64, i64) -> i64| match (a, b) {
            (Some(a), Some(b)) => Some(f(a, b)),
            (a, b) => a.or(b),
        };
        Coverage {
            last: newer.last.or(self.last),
            min_ms: pick(self.min_ms, newer.min_ms, i64::min),
            max_ms: pick(self.max_ms, newer.max_ms, i64::max),
        }
    }

    /// Whether this partition already holds the event (seq, sub).
    pub(crate) fn holds(&self, seq: u64, sub: u32) -> bool {
        self.last.is_some_and(|last| (seq, sub) <= last)
    }

    /// Whether documents in [from, to) may be here.
    pub(crate) fn overlaps(&self, from: Option<i64>, to: Option<i64>) -> bool {
        let (Some(min), Some(max)) = (self.min_ms, self.max_ms) else {
            return false; // nothing committed yet
        };
        from.is_none_or(|f| max >= f) && to.is_none_or(|t| min < t)
    }

    pub(crate) fn to_payload(self, applied_seq: u64) -> String {
        let mut o = serde_json::Map::new();
        o.insert("applied_seq".into(), applied_seq.into());
        if let Some((seq, sub)) = self.last {
            o.insert("seq".into(), seq.into());
            o.insert("sub".into(), sub.into());
        }
        if let (Some(min), Some(max)) = (self.min_ms, self.max_ms) {
            o.insert("min_ms".into(), min.into());
            o.insert("max_ms".into(), max.into());
        }
        serde_json::Value::Object(o).to_string()
    }

    fn from_payload(payload: &str) -> Option<Coverage> {
        let v: serde_json::Value = serde_json::from_str(payload).ok()?;
        let seq = v.get("seq").and_then(serde_json::Value::as_u64);
        let sub = v
            .get("sub")
            .and_then(serde_json::Value::as_u64)
            .and_then(|s| u32::try_from(s).ok());
        Some(Coverage {
            last: seq.zip(sub),
            min_ms: v.get("min_ms").and_then(serde_json::Value::as_i64),
            max_ms: v.get("max_ms").and_then(serde_json::Value::as_i64),
        })
    }
}

pub(crate) struct Partition {
    pub key: PartitionKey,
    pub dir: PathBuf,
    pub index: Index,
    pub reader: IndexReader,
    pub fields: Fields,
    /// What the last commit made durable; updated by the writer after each commit.
    pub committed: RwLock<Coverage>,
}

impl std::fmt::Debug for Partition {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Partition")
            .field("key", &self.key)
            .field("dir", &self.dir)
            .finish()
    }
}

impl Partition {
    pub(crate) fn dir_of(root: &Path, key: &PartitionKey) -> PathBuf {
        root.join(key.tenant.as_str()).join(key.day.name())
    }

    /// Opens the partition's index, creating it if it does not exist yet.
    pub(crate) fn open_or_create(root: &Path, key: PartitionKey) -> Result<Partition, StoreError> {
        let dir = Partition::dir_of(root, &key);
        std::fs::create_dir_all(&dir).map_err(|e| StoreError::io(&dir, e))?;
        let err = |e| StoreError::index(&key, e);
        let mmap = MmapDirectory::open(&dir).map_err(|e| err(e.into()))?;
        let index = Index::open_or_create(mmap, build_schema()).map_err(err)?;
        register_tokenizers(&index);
        let fields = Fields::resolve(&index.schema()).map_err(err)?;
        // Reloaded by the writer right after each commit: searches see new events as
        // soon as they are durable, and no file watcher thread per partition.
        let reader = index
            .reader_builder()
            .reload_policy(ReloadPolicy::Manual)
            .try_into()
            .map_err(err)?;
        let metas = index.load_metas().map_err(err)?;
        let committed = match metas.payload.as_deref() {
            None => Coverage::default(),
            Some(p) => Coverage::from_payload(p).ok_or_else(|| StoreError::Corrupt {
                path: dir.clone(),
                message: format!("unreadable commit payload {p:?}"),
            })?,
        };
        Ok(Partition {
            key,
            dir,
            index,
            reader,
            fields,
            committed: RwLock::new(committed),
        })
    }

    pub(crate) fn committed(&self) -> Coverage {
        // A poisoned lock only means a panic elsewhere mid-update of a Copy value.
        *self.committed.read().unwrap_or_else(|p| p.into_inner())
    }

    pub(crate) fn set_committed(&self, c: Coverage) {
        *self.committed.write().unwrap_or_else(|p| p.into_inner()) = c;
    }
}

/// Finds the partitions on disk: `root/<tenant>/<yyyy-mm-dd>/` holding a tantivy
/// index. Other entries are ignored (not ours), not errors.
pub(crate) fn discover(root: &Path) -> Result<Vec<PartitionKey>, StoreError> {
    let mut keys = Vec::new();
    let read = |p: &Path| std::fs::read_dir(p).map_err(|e| StoreError::io(p, e));
    for tenant in read(root)? {
        let tenant = tenant.map_err(|e| StoreError::io(root, e))?;
        let Some(tenant_id) = tenant
            .file_name()
            .to_str()
            .and_then(|n| TenantId::new(n).ok())
        else {
            continue;
        };
        if !tenant.path().is_dir() {
            continue;
        }
        for day in read(&tenant.path())? {
            let day = day.map_err(|e| StoreError::io(tenant.path(), e))?;
            let Some(d) = day.file_name().to_str().and_then(Day::parse) else {
                continue;
            };
            if day.path().join("meta.json").is_file() {
                keys.push(PartitionKey {
                    tenant: tenant_id.clone(),
                    day: d,
                });
            }
        }
    }
    Ok(keys)
}

/// Bytes of all files in a partition directory.
pub(crate) fn dir_bytes(dir: &Path) -> u64 {
    std::fs::read_dir(dir)
        .map(|entries| {
            entries
                .filter_map(Result::ok)
                .filter_map(|e| e.metadata().ok())
                .filter(|m| m.is_file())
                .map(|m| m.len())
                .sum()
        })
        .unwrap_or(0)
}
