//! The embedded event store.
//!
//! Events are kept in tantivy indexes, one per (tenant, UTC day the record was
//! *received*): retention deletes whole directories, and a replayed year-old log still
//! expires on schedule. Each partition remembers the min/max *event* time it holds, so
//! time-range searches open only the partitions that can match.
//!
//! Exactly-once: the caller (the WAL-consuming pipeline) writes events in WAL order
//! and calls [`EventStore::commit`] with the last WAL sequence number applied. Each
//! partition commits its documents together with the last (seq, sub) it holds (the
//! tantivy commit payload); then the store writes `applied_seq` atomically. After a
//! crash the caller replays WAL records after [`EventStore::applied_seq`], and
//! [`EventStore::write`] skips every event a partition already committed.
//!
//! Writes go through `&mut EventStore` (one pipeline thread); searches go through a
//! [`StoreSearcher`], cheap to clone and `Send + Sync`, from any thread.

mod condition;
mod document;
mod durable;
mod error;
mod partition;
mod query;
mod retention;
mod scan;
mod schema;
mod search;
mod tenant;
mod words;
mod writer;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};

use koban_event::Event;

pub use condition::Condition;
pub use error::StoreError;
pub use retention::{PartitionStats, RetentionReport, StoreStats, TenantStats};
pub use scan::Progress;
pub use search::{FieldFilter, SearchHit, SearchRequest, SearchResult, StoreSearcher};
pub use tenant::TenantId;

use document::EventDoc;
use partition::Partition;
use schema::Fields;
use tenant::{Day, PartitionKey};
use writer::{OpenWriter, Writers};

/// Tuning of the write side.
#[derive(Debug, Clone)]
pub struct StoreOptions {
    /// Tantivy's indexing memory budget per open writer (split among its threads,
    /// at least 15 MB each); a segment is flushed when it fills.
    pub writer_memory_bytes: usize,
    /// Indexing threads per writer.
    pub writer_threads: usize,
    /// Writers open at once; more partitions written in one go close the least
    /// recently used writer (committing it first).
    pub max_open_writers: usize,
    /// A writer that received nothing for this many commits is closed.
    pub close_idle_after_commits: u32,
    /// Fields (names, case-insensitive) indexed only as words for free text, not as
    /// exact values: long prose that is unique per event. Windows' rendered
    /// `Message` repeats the event data in ~800 bytes, and as exact terms it was
    /// about half of the term dictionary. Filters on these fields match nothing;
    /// search their words with `text`.
    pub text_only_fields: Vec<String>,
}

impl Default for StoreOptions {
    fn default() -> Self {
        StoreOptions {
            writer_memory_bytes: 256 << 20,
            writer_threads: 2,
            max_open_writers: 4,
            close_idle_after_commits: 3,
            text_only_fields: vec!["message".into()],
        }
    }
}

/// One event to store, with where it came from in the WAL.
#[derive(Debug, Clone, Copy)]
pub struct StoredEvent<'a> {
    pub tenant: &'a str,
    /// The listener or upload it arrived by (`syslog-udp`, `bulk`, `evtx-upload`…).
    pub source: &'a str,
    /// The WAL record's sequence number.
    pub seq: u64,
    /// The event's index within that WAL record (one EVTX upload or `_bulk` body
    /// yields many events).
    pub sub: u32,
    /// When the record was received, ms since the epoch (UTC): picks the partition.
    pub received_ms: i64,
    /// The parser that produced the event, `raw` when none did.
    pub format: &'a str,
    pub parsed: bool,
    /// Shared, not copied: the store's document reads the event in place on tantivy's
    /// indexing threads while the caller (detection) still uses it.
    pub event: &'a Arc<Event>,
}

/// What a write did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct WriteReport {
    pub written: u64,
    /// Events skipped because their partition had already committed them (replay).
    pub skipped: u64,
}

#[derive(Debug)]
pub(crate) struct Shared {
    pub root: PathBuf,
    pub partitions: RwLock<BTreeMap<PartitionKey, Arc<Partition>>>,
}

impl Shared {
    pub(crate) fn partitions(
        &self,
    ) -> std::sync::RwLockReadGuard<'_, BTreeMap<PartitionKey, Arc<Partition>>> {
        self.partitions.read().unwrap_or_else(|p| p.into_inner())
    }

    pub(crate) fn partitions_mut(
        &self,
    ) -> std::sync::RwLockWriteGuard<'_, BTreeMap<PartitionKey, Arc<Partition>>> {
        self.partitions.write().unwrap_or_else(|p| p.into_inner())
    }
}

/// The event store: the write side, and a searcher for everyone else.
pub struct EventStore {
    shared: Arc<Shared>,
    options: StoreOptions,
    /// `options.text_only_fields`, lower-cased, shared by every document.
    text_only: Arc<[String]>,
    /// Source and format names already seen, shared by the documents instead of one
    /// copy each.
    names: Names,
    writers: Writers,
    applied_seq: u64,
    /// The last (seq, sub) accepted in this process, to enforce WAL order.
    last_written: Option<(u64, u32)>,
}

impl EventStore {
    /// Opens (creating if missing) the store in `dir` and every partition in it.
    pub fn open(dir: &Path, options: StoreOptions) -> Result<EventStore, StoreError> {
        std::fs::create_dir_all(dir).map_err(|e| StoreError::io(dir, e))?;
        let applied_seq = durable::read_applied(dir)?;
        let mut partitions = BTreeMap::new();
        for key in partition::discover(dir)? {
            let part = Partition::open_or_create(dir, key.clone())?;
            partitions.insert(key, Arc::new(part));
        }
        let text_only: Vec<String> = options
            .text_only_fields
            .iter()
            .map(|f| f.to_lowercase())
            .collect();
        Ok(EventStore {
            shared: Arc::new(Shared {
                root: dir.to_path_buf(),
                partitions: RwLock::new(partitions),
            }),
            text_only: text_only.clone().into(),
            names: Names::default(),
            options: StoreOptions {
                text_only_fields: text_only,
                ..options
            },
            writers: Writers::default(),
            applied_seq,
            last_written: None,
        })
    }

    /// The last WAL sequence number whose events are all durable: replay after it.
    pub fn applied_seq(&self) -> u64 {
        self.applied_seq
    }

    /// A handle for searching from other threads; sees every commit made after it.
    pub fn searcher(&self) -> StoreSearcher {
        StoreSearcher::new(self.shared.clone())
    }

    /// Buffers events for the next commit. Events must come in WAL order, (seq, sub)
    /// increasing; events a partition already committed are skipped (replay).
    pub fn write(&mut self, batch: &[StoredEvent<'_>]) -> Result<WriteReport, StoreError> {
        let mut report = WriteReport::default();
        for e in batch {
            let tenant = TenantId::new(e.tenant)?;
            if let Some((last_seq, last_sub)) = self.last_written {
                if (e.seq, e.sub) <= (last_seq, last_sub) {
                    return Err(StoreError::OutOfOrder {
                        seq: e.seq,
                        sub: e.sub,
                        last_seq,
                        last_sub,
                    });
                }
            }
            let key = PartitionKey {
                tenant,
                day: Day::of_ms(e.received_ms),
            };
            self.last_written = Some((e.seq, e.sub));
            let clock = self.writers.tick();
            let w = writer_for(
                &mut self.writers,
                &self.shared,
                &self.options,
                self.applied_seq,
                key,
            )?;
            if w.holds(e.seq, e.sub) {
                report.skipped += 1;
                continue;
            }
            let doc = EventDoc::new(
                w.part.fields,
                e,
                self.names.get(e.source),
                self.names.get(e.format),
                self.text_only.clone(),
            );
            w.add(doc, e.seq, e.sub, Fields::event_time(e), clock)?;
            report.written += 1;
        }
        Ok(report)
    }

    /// Makes every written event durable and records `applied_seq`: the caller
    /// promises every WAL record up to it has been passed to [`EventStore::write`].
    pub fn commit(&mut self, applied_seq: u64) -> Result<(), StoreError> {
        if applied_seq < self.applied_seq {
            return Err(StoreError::AppliedSeqBackwards {
                applied: applied_seq,
                current: self.applied_seq,
            });
        }
        self.writers
            .commit_all(applied_seq, self.options.close_idle_after_commits)?;
        durable::write_applied(&self.shared.root, applied_seq)?;
        self.applied_seq = applied_seq;
        Ok(())
    }

    /// Commits only the partitions of `tenant`'s given receive day, leaving others
    /// buffered and `applied_seq` unchanged: a crash between partition commits, for tests.
    #[doc(hidden)]
    pub fn commit_partition_for_test(
        &mut self,
        tenant: &str,
        received_ms: i64,
    ) -> Result<(), StoreError> {
        let key = PartitionKey {
            tenant: TenantId::new(tenant)?,
            day: Day::of_ms(received_ms),
        };
        match self.writers.get_mut(&key) {
            Some(w) => w.commit(self.applied_seq),
            None => Ok(()),
        }
    }

    pub fn search(&self, req: &SearchRequest) -> Result<SearchResult, StoreError> {
        self.searcher().search(req)
    }

    pub fn count_by(
        &self,
        req: &SearchRequest,
        field: &str,
    ) -> Result<Vec<(String, u64)>, StoreError> {
        self.searcher().count_by(req, field)
    }

    pub fn stats(&self) -> StoreStats {
        retention::stats(&self.shared)
    }

    /// Deletes `tenant`'s partitions whose whole receive day is more than `keep_days`
    /// days before `now_ms`.
    pub fn apply_retention(
        &mut self,
        tenant: &str,
        keep_days: u32,
        now_ms: i64,
    ) -> Result<RetentionReport, StoreError> {
        let tenant = TenantId::new(tenant)?;
        retention::apply(&self.shared, &mut self.writers, &tenant, keep_days, now_ms)
    }
}

/// A few interned names (sources, formats): a document holds an `Arc<str>` instead
/// of its own copy. Bounded: past `MAX` distinct names, new ones are not kept.
#[derive(Default)]
struct Names(Vec<Arc<str>>);

impl Names {
    const MAX: usize = 256;

    fn get(&mut self, name: &str) -> Arc<str> {
        if let Some(n) = self.0.iter().find(|n| &***n == name) {
            return n.clone();
        }
        let n: Arc<str> = name.into();
        if self.0.len() < Names::MAX {
            self.0.push(n.clone());
        }
        n
    }
}

/// The partition's open writer, opening the partition (creating it) and the writer
/// as needed. A free function so `write` can borrow the options beside it.
fn writer_for<'w>(
    writers: &'w mut Writers,
    shared: &Shared,
    options: &StoreOptions,
    applied_seq: u64,
    key: PartitionKey,
) -> Result<&'w mut OpenWriter, StoreError> {
    writers.get_or_open(&key, options.max_open_writers, applied_seq, || {
        let existing = shared.partitions().get(&key).cloned();
        let part = match existing {
            Some(p) => p,
            None => {
                let p = Arc::new(Partition::open_or_create(&shared.root, key.clone())?);
                shared.partitions_mut().insert(key.clone(), p.clone());
                p
            }
        };
        OpenWriter::open(part, options)
    })
}
