//! The door every listener goes through: admission (backpressure, disk full), the
//! durable WAL append, and the counters. A listener acknowledges only after `append`
//! returned.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use koban_wal::{Record, Wal, WalError};

use crate::metrics::{Metrics, WalFigures};

/// Why a record was not accepted.
#[derive(Debug, thiserror::Error)]
pub enum IntakeError {
    /// The consumer is behind by more than the configured backlog.
    #[error("intake is throttled: the pipeline is behind")]
    Busy,
    #[error("intake stopped: disk full")]
    DiskFull,
    #[error("record too large")]
    TooLarge,
    #[error("intake stopped: {0}")]
    Wal(String),
    #[error("server is shutting down")]
    ShuttingDown,
}

#[derive(Debug, Clone, Copy)]
pub struct Limits {
    pub max_backlog_records: u64,
    pub max_backlog_bytes: u64,
    pub retry_after_secs: u64,
}

pub struct Intake {
    wal: Wal,
    pub metrics: Metrics,
    limits: Limits,
    applied: AtomicU64,
    /// Set after ENOSPC; one append per second is let through to see if space is back.
    disk_full_since: Mutex<Option<Instant>>,
    stopped_reason: Mutex<Option<String>>,
    shutting_down: AtomicBool,
}

impl Intake {
    pub fn new(wal: Wal, limits: Limits, applied_seq: u64) -> Arc<Intake> {
        Arc::new(Intake {
            wal,
            metrics: Metrics::default(),
            limits,
            applied: AtomicU64::new(applied_seq),
            disk_full_since: Mutex::new(None),
            stopped_reason: Mutex::new(None),
            shutting_down: AtomicBool::new(false),
        })
    }

    pub fn wal(&self) -> &Wal {
        &self.wal
    }

    pub fn limits(&self) -> Limits {
        self.limits
    }

    /// The consumer's position: records up to `seq` are stored.
    pub fn set_applied(&self, seq: u64) {
        self.applied.fetch_max(seq, Ordering::AcqRel);
    }

    pub fn applied_seq(&self) -> u64 {
        self.applied.load(Ordering::Acquire)
    }

    pub fn backlog_records(&self) -> u64 {
        self.wal.last_seq().saturating_sub(self.applied_seq())
    }

    /// True while the backlog is over its bound: HTTP answers 429/503, TCP stops reading.
    pub fn overloaded(&self) -> bool {
        self.backlog_records() >= self.limits.max_backlog_records
            || self.wal.size_bytes() >= self.limits.max_backlog_bytes
    }

    /// Why intake is stopped, if it is (for `/healthz`).
    pub fn stopped_reason(&self) -> Option<String> {
        if let Some(r) = self
            .stopped_reason
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
        {
            return Some(r);
        }
        self.overloaded()
            .then(|| "throttled: pipeline backlog over its bound".to_string())
    }

    pub fn begin_shutdown(&self) {
        self.shutting_down.store(true, Ordering::Release);
    }

    pub fn shutting_down(&self) -> bool {
        self.shutting_down.load(Ordering::Acquire)
    }

    /// Whether a new batch may be appended now.
    pub fn admit(&self) -> Result<(), IntakeError> {
        {
            let mut full = self
                .disk_full_since
                .lock()
                .unwrap_or_else(|p| p.into_inner());
            if let Some(since) = *full {
                if since.elapsed() < Duration::from_secs(1) {
                    return Err(IntakeError::DiskFull);
                }
                // Let this one through as a probe; a failure sets the clock again.
                *full = Some(Instant::now());
            }
        }
        if self.overloaded() {
            self.metrics.throttled.fetch_add(1, Ordering::Relaxed);
            return Err(IntakeError::Busy);
        }
        Ok(())
    }

    /// Appends a batch from one tenant + source and waits until it is durable. Counts it
    /// either way. Blocking work runs off the async threads.
    pub async fn append(self: &Arc<Self>, records: Vec<Record>) -> Result<u64, IntakeError> {
        self.append_keep(records).await.0
    }

    /// Like `append`, and hands the records back so a caller can retry without copying.
    pub async fn append_keep(
        self: &Arc<Self>,
        records: Vec<Record>,
    ) -> (Result<u64, IntakeError>, Vec<Record>) {
        let Some(first) = records.first() else {
            return (Ok(self.wal.last_seq()), records);
        };
        let (tenant, source) = (first.tenant.clone(), first.source.clone());
        let n = records.len() as u64;
        let bytes: u64 = records.iter().map(|r| r.payload.len() as u64).sum();
        let now = crate::state::now_ms();
        self.metrics.add(&tenant, &source, |c| c.receive(n, now));
        if let Err(e) = self.admit() {
            self.metrics.add(&tenant, &source, |c| c.rejected += n);
            return (Err(e), records);
        }
        let me = Arc::clone(self);
        let joined = tokio::task::spawn_blocking(move || {
            let r = me.wal.append(&records);
            (r, records)
        })
        .await;
        let Ok((result, records)) = joined else {
            return (
                Err(IntakeError::Wal("append task failed".into())),
                Vec::new(),
            );
        };
        match result {
            Ok(seq) => {
                self.clear_disk_full();
                self.metrics.add(&tenant, &source, |c| {
                    c.accepted += n;
                    c.bytes += bytes;
                });
                (Ok(seq), records)
            }
            Err(e) => {
                self.metrics.add(&tenant, &source, |c| c.rejected += n);
                (Err(self.wal_failed(e)), records)
            }
        }
    }

    fn clear_disk_full(&self) {
        let mut full = self
            .disk_full_since
            .lock()
            .unwrap_or_else(|p| p.into_inner());
        if full.take().is_some() {
            tracing::info!("intake resumed: disk space is back");
            *self
                .stopped_reason
                .lock()
                .unwrap_or_else(|p| p.into_inner()) = None;
        }
    }

    fn wal_failed(&self, e: WalError) -> IntakeError {
        match e {
            WalError::DiskFull { path } => {
                let mut full = self
                    .disk_full_since
                    .lock()
                    .unwrap_or_else(|p| p.into_inner());
                if full.is_none() {
                    tracing::error!(path = %path.display(), "intake stopped: disk full");
                }
                *full = Some(Instant::now());
                *self
                    .stopped_reason
                    .lock()
                    .unwrap_or_else(|p| p.into_inner()) = Some("intake stopped: disk full".into());
                IntakeError::DiskFull
            }
            WalError::RecordTooLarge { .. } => IntakeError::TooLarge,
            other => {
                tracing::error!(error = %other, "wal append failed");
                let reason = if matches!(other, WalError::Poisoned) {
                    "wal fsync failed: restart the server".to_string()
                } else {
                    "wal write failed".to_string()
                };
                *self
                    .stopped_reason
                    .lock()
                    .unwrap_or_else(|p| p.into_inner()) = Some(format!("intake stopped: {reason}"));
                IntakeError::Wal(reason)
            }
        }
    }

    pub fn figures(&self) -> WalFigures {
        WalFigures {
            size_bytes: self.wal.size_bytes(),
            last_seq: self.wal.last_seq(),
            applied_seq: self.applied_seq(),
            stopped: self.stopped_reason().is_some(),
        }
    }
}
