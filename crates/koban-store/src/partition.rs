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
use tantivy::{Index, IndexReader, IndexSettings, ReloadPolicy};

use crate::schema::{build_schema, register_tokenizers, schema_v1, Fields};
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
        // An existing partition keeps the schema it was made with, if it is one of ours
        // (see the versions in schema.rs); a new one gets the current schema.
        let exists = Index::exists(&mmap).map_err(|e| err(e.into()))?;
        let index = if exists {
            let index = Index::open(mmap).map_err(err)?;
            let schema = index.schema();
            if schema != build_schema() && schema != schema_v1() {
                return Err(StoreError::Corrupt {
                    path: dir.clone(),
                    message: "the index has a schema this version does not know".into(),
                });
            }
            index
        } else {
            Index::create(mmap, build_schema(), IndexSettings::default()).map_err(err)?
        };
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

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use koban_event::{Event, Value};

    use super::*;
    use crate::{EventStore, FieldFilter, SearchRequest, StoreOptions, StoredEvent};

    const DAY: i64 = 86_400_000;
    /// 2024-03-01T00:00:00Z
    const T0: i64 = 1_709_251_200_000;

    /// A data dir from before `time` and `seq` became columns still opens, takes new
    /// events in its old layout, and answers every query as a new partition does.
    #[test]
    fn partitions_of_schema_v1_open_and_answer_as_before() {
        let dir = tempfile::tempdir().expect("tempdir");
        let old = dir.path().join("acme/2024-03-01");
        std::fs::create_dir_all(&old).expect("mkdir");
        let mmap = MmapDirectory::open(&old).expect("dir");
        Index::create(mmap, schema_v1(), IndexSettings::default()).expect("v1 index");

        let opts = StoreOptions {
            writer_memory_bytes: 20 << 20,
            writer_threads: 1,
            ..StoreOptions::default()
        };
        let mut store = EventStore::open(dir.path(), opts.clone()).expect("open");
        let events: Vec<Arc<Event>> = (0..6)
            .map(|i| {
                let mut e = Event::from_fields(vec![("host".into(), Value::from("h1"))]);
                e.timestamp = Some(T0 + i * 1000);
                Arc::new(e)
            })
            .collect();
        // seq 1-3 received on the v1 partition's day, 4-6 on the next day (a new one).
        let batch: Vec<StoredEvent<'_>> = events
            .iter()
            .enumerate()
            .map(|(i, e)| StoredEvent {
                tenant: "acme",
                source: "test",
                seq: i as u64 + 1,
                sub: 0,
                received_ms: T0 + if i < 3 { 0 } else { DAY },
                format: "syslog",
                parsed: true,
                event: e,
            })
            .collect();
        store.write(&batch).expect("write");
        store.commit(6).expect("commit");
        drop(store);

        let store = EventStore::open(dir.path(), opts).expect("reopen");
        let schema_of = |day: &str| {
            let mmap = MmapDirectory::open(dir.path().join("acme").join(day)).expect("dir");
            Index::open(mmap).expect("index").schema()
        };
        assert!(schema_of("2024-03-01") == schema_v1());
        assert!(schema_of("2024-03-02") == build_schema());
        let count = |f: &dyn Fn(&mut SearchRequest)| {
            let mut r = SearchRequest::new("acme");
            f(&mut r);
            store.search(&r).expect("search").total
        };
        assert_eq!(count(&|_| {}), 6);
        for seq in 1..=6 {
            let s = seq.to_string();
            assert_eq!(
                count(&|r| r.filters.push(FieldFilter::eq("@seq", &s))),
                1,
                "@seq {seq}"
            );
        }
        // [T0 + 2 s, T0 + 5 s): seq 3 (v1) and 4, 5 (current).
        assert_eq!(
            count(&|r| {
                r.from_ms = Some(T0 + 2000);
                r.to_ms = Some(T0 + 5000);
            }),
            3
        );
        let hits = store
            .search(&SearchRequest::new("acme"))
            .expect("search")
            .hits;
        let times: Vec<i64> = hits.iter().map(|h| h.time_ms).collect();
        assert_eq!(
            times,
            (0..6).rev().map(|i| T0 + i * 1000).collect::<Vec<_>>()
        );
    }

    #[test]
    fn a_foreign_schema_is_refused() {
        let dir = tempfile::tempdir().expect("tempdir");
        let part = dir.path().join("acme/2024-03-01");
        std::fs::create_dir_all(&part).expect("mkdir");
        let mut b = tantivy::schema::Schema::builder();
        b.add_text_field("title", tantivy::schema::TEXT);
        let mmap = MmapDirectory::open(&part).expect("dir");
        Index::create(mmap, b.build(), IndexSettings::default()).expect("index");
        match EventStore::open(dir.path(), StoreOptions::default()) {
            Err(StoreError::Corrupt { message, .. }) => assert!(message.contains("schema")),
            Err(e) => panic!("wrong error: {e}"),
            Ok(_) => panic!("a foreign index was opened"),
        }
    }
}
