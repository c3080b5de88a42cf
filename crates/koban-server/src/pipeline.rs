//! The seam between intake and storage. The pipeline thread reads the WAL in order from
//! the consumer's position, hands batches to a [`Pipeline`], tells the intake how far
//! it got (backpressure) and drops the WAL segments behind it.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use koban_wal::WalRecord;

use crate::intake::Intake;

#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct PipelineError(pub String);

/// What the server feeds accepted records to (parse + store, in the integrated server).
pub trait Pipeline: Send + 'static {
    /// The last WAL sequence number whose records are durably applied (stored). Read
    /// once at start; reading resumes after it, so nothing is applied twice.
    fn applied_seq(&self) -> u64;
    /// Takes the next records in order (the first follows the last one taken) and
    /// returns the applied sequence number, durable when it returns. It may lag behind
    /// the records taken: a pipeline that batches its commits says later, from `apply`
    /// or `idle`, how far is durable. On error the pipeline must forget what it took
    /// since its last durable point: reading starts again after `applied_seq()`.
    fn apply(&mut self, records: &[WalRecord]) -> Result<u64, PipelineError>;

    /// Called when no record is waiting (and before stopping): a chance to make what
    /// was taken durable. Returns the applied sequence number.
    fn idle(&mut self) -> Result<u64, PipelineError> {
        Ok(self.applied_seq())
    }

    /// Called once on the pipeline thread before the first record, with the intake
    /// whose counters (`/metrics`) the pipeline may add to.
    fn attach(&mut self, _intake: &Arc<Intake>) {}
}

/// The built-in stand-in until the event store is joined in: it counts records and
/// keeps nothing. Its position is not durable, so after a restart it replays the WAL.
#[derive(Debug, Default)]
pub struct CountingPipeline {
    applied: u64,
    pub records: u64,
}

impl Pipeline for CountingPipeline {
    fn applied_seq(&self) -> u64 {
        self.applied
    }

    fn apply(&mut self, records: &[WalRecord]) -> Result<u64, PipelineError> {
        self.records += records.len() as u64;
        if let Some(last) = records.last() {
            self.applied = last.seq;
        }
        Ok(self.applied)
    }
}

const BATCH_RECORDS: usize = 4096;
const BATCH_BYTES: usize = 16 << 20;

/// Runs `pipeline` until `stop` is set and the WAL is drained; returns it.
pub(crate) fn run<P: Pipeline + ?Sized>(
    mut pipeline: Box<P>,
    intake: Arc<Intake>,
    stop: Arc<AtomicBool>,
) -> Box<P> {
    let wal = intake.wal().clone();
    pipeline.attach(&intake);
    let mut applied = pipeline.applied_seq();
    // A pipeline that starts before the WAL's oldest record (the store was reset) begins
    // at the oldest record there is.
    applied = applied.max(wal.first_seq().saturating_sub(1));
    intake.set_applied(applied);
    let mut reader = wal.reader(applied + 1);
    // The last record handed to the pipeline; `applied` may lag behind it.
    let mut taken = applied;
    loop {
        let batch =
            match reader.read_batch_wait(BATCH_RECORDS, BATCH_BYTES, Duration::from_millis(100)) {
                Ok(b) => b,
                Err(e) => {
                    tracing::error!(error = %e, "pipeline cannot read the wal");
                    std::thread::sleep(Duration::from_secs(1));
                    reader = wal.reader(taken + 1);
                    continue;
                }
            };
        let result = if batch.is_empty() {
            pipeline.idle()
        } else {
            pipeline.apply(&batch)
        };
        match result {
            Ok(seq) => {
                if let Some(last) = batch.last() {
                    taken = last.seq;
                }
                if seq != applied {
                    applied = seq;
                    intake.set_applied(seq);
                    if let Err(e) = wal.truncate_through(seq) {
                        tracing::warn!(error = %e, "cannot drop stored wal segments");
                    }
                }
                if batch.is_empty() && stop.load(Ordering::Acquire) && wal.durable_seq() <= applied
                {
                    return pipeline;
                }
            }
            Err(e) => {
                tracing::error!(error = %e, first_seq = batch.first().map(|r| r.seq), "pipeline failed; retrying");
                std::thread::sleep(Duration::from_millis(500));
                if stop.load(Ordering::Acquire) {
                    return pipeline;
                }
                applied = pipeline.applied_seq();
                taken = applied;
                reader = wal.reader(applied + 1);
            }
        }
    }
}
