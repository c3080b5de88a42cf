//! The write side: open tantivy writers, buffered documents, commits.
//!
//! Only a few writers are open at once (each holds its memory budget and indexing
//! threads); a partition idle for a few commits has its writer closed. A writer is
//! only ever closed with nothing uncommitted, so closing never loses or repeats data.

use std::collections::hash_map::Entry;
use std::collections::HashMap;
use std::sync::Arc;

use tantivy::IndexWriter;

use crate::document::EventDoc;

use crate::partition::{Coverage, Partition};
use crate::tenant::PartitionKey;
use crate::{StoreError, StoreOptions};

pub(crate) struct OpenWriter {
    pub part: Arc<Partition>,
    writer: IndexWriter<EventDoc>,
    /// What was added since the last commit.
    pending: Coverage,
    dirty: bool,
    /// Commits since this writer last received a document.
    idle_commits: u32,
    /// Logical clock of the last write, to pick the least recently used writer.
    last_used: u64,
}

impl OpenWriter {
    pub(crate) fn open(part: Arc<Partition>, opts: &StoreOptions) -> Result<Self, StoreError> {
        let writer = part
            .index
            .writer_with_num_threads(opts.writer_threads.max(1), opts.writer_memory_bytes)
            .map_err(|e| StoreError::index(&part.key, e))?;
        Ok(OpenWriter {
            part,
            writer,
            pending: Coverage::default(),
            dirty: false,
            idle_commits: 0,
            last_used: 0,
        })
    }

    pub(crate) fn add(
        &mut self,
        doc: EventDoc,
        seq: u64,
        sub: u32,
        time: i64,
        clock: u64,
    ) -> Result<(), StoreError> {
        self.writer
            .add_document(doc)
            .map_err(|e| StoreError::index(&self.part.key, e))?;
        self.pending.add(seq, sub, time);
        self.dirty = true;
        self.idle_commits = 0;
        self.last_used = clock;
        Ok(())
    }

    /// Whether (seq, sub) is already in this partition, durable or buffered.
    pub(crate) fn holds(&self, seq: u64, sub: u32) -> bool {
        self.part.committed().holds(seq, sub) || self.pending.holds(seq, sub)
    }

    /// Commits buffered documents with their coverage as the payload, then makes them
    /// visible to searches.
    pub(crate) fn commit(&mut self, applied_seq: u64) -> Result<(), StoreError> {
        if !self.dirty {
            self.idle_commits += 1;
            return Ok(());
        }
        let err = |e| StoreError::index(&self.part.key, e);
        let coverage = self.part.committed().merged(self.pending);
        let mut prepared = self.writer.prepare_commit().map_err(err)?;
        prepared.set_payload(&coverage.to_payload(applied_seq));
        prepared.commit().map_err(err)?;
        self.part.set_committed(coverage);
        self.pending = Coverage::default();
        self.dirty = false;
        self.part.reader.reload().map_err(err)?;
        Ok(())
    }
}

/// The set of open writers, bounded in number.
#[derive(Default)]
pub(crate) struct Writers {
    open: HashMap<PartitionKey, OpenWriter>,
    clock: u64,
}

impl Writers {
    pub(crate) fn tick(&mut self) -> u64 {
        self.clock += 1;
        self.clock
    }

    pub(crate) fn get_mut(&mut self, key: &PartitionKey) -> Option<&mut OpenWriter> {
        self.open.get_mut(key)
    }

    /// The partition's writer, opening it if needed. Opening makes room first by
    /// committing and closing the least recently used writer: writes arrive in WAL
    /// order, so its coverage is complete up to its last (seq, sub) and the early
    /// commit is exact.
    pub(crate) fn get_or_open(
        &mut self,
        key: &PartitionKey,
        max_open: usize,
        applied_seq: u64,
        open: impl FnOnce() -> Result<OpenWriter, StoreError>,
    ) -> Result<&mut OpenWriter, StoreError> {
        if !self.open.contains_key(key) {
            while self.open.len() >= max_open.max(1) {
                let Some(lru) = self
                    .open
                    .iter()
                    .min_by_key(|(_, w)| w.last_used)
                    .map(|(k, _)| k.clone())
                else {
                    break;
                };
                if let Some(mut old) = self.open.remove(&lru) {
                    old.commit(applied_seq)?;
                }
            }
        }
        match self.open.entry(key.clone()) {
            Entry::Occupied(o) => Ok(o.into_mut()),
            Entry::Vacant(v) => Ok(v.insert(open()?)),
        }
    }

    /// Commits every writer with documents; closes those idle for `close_after` commits.
    pub(crate) fn commit_all(
        &mut self,
        applied_seq: u64,
        close_after: u32,
    ) -> Result<(), StoreError> {
        for w in self.open.values_mut() {
            w.commit(applied_seq)?;
        }
        self.open.retain(|_, w| w.idle_commits < close_after.max(1));
        Ok(())
    }

    /// Drops a partition's writer, discarding anything it buffered (retention is
    /// deleting the partition anyway).
    pub(crate) fn discard(&mut self, key: &PartitionKey) {
        self.open.remove(key);
    }
}
