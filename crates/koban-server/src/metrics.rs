//! Counters for `/metrics` (Prometheus text format). Per (tenant, source) counts live in
//! one map; listeners add whole batches at a time, so the lock is taken once per batch.

use std::collections::BTreeMap;
use std::fmt::Write;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;

#[derive(Debug, Default, Clone, Copy)]
pub struct SourceCounts {
    pub received: u64,
    pub accepted: u64,
    pub rejected: u64,
    pub bytes: u64,
    /// Events the pipeline made of accepted records: understood by a parser,
    /// kept as raw text (no parser knew them), written to the event store.
    pub parsed: u64,
    pub unparsed: u64,
    pub stored: u64,
    /// When the source last sent anything (ms), for "sources gone silent".
    pub last_ms: i64,
    /// Records received per second over the last whole minute.
    pub rate: f64,
    window_start_ms: i64,
    window_count: u64,
}

/// The window the per-source rate is measured over.
const RATE_WINDOW_MS: i64 = 60_000;

impl SourceCounts {
    /// `n` records arrived at `now` (ms).
    pub fn receive(&mut self, n: u64, now: i64) {
        self.received += n;
        self.last_ms = now;
        if now - self.window_start_ms >= RATE_WINDOW_MS {
            // A window with nothing after it counts as silence, not the old rate.
            let gap = now - self.window_start_ms;
            self.rate = if gap < 2 * RATE_WINDOW_MS {
                self.window_count as f64 * 1000.0 / gap as f64
            } else {
                0.0
            };
            self.window_start_ms = now;
            self.window_count = 0;
        }
        self.window_count += n;
    }
}

#[derive(Default)]
pub struct Metrics {
    sources: Mutex<BTreeMap<(String, String), SourceCounts>>,
    connections: Mutex<BTreeMap<&'static str, (u64, u64)>>,
    pub auth_failures: AtomicU64,
    pub throttled: AtomicU64,
    pub detection: Mutex<DetectionFigures>,
}

/// What the detection stage did, since start.
#[derive(Debug, Default, Clone, Copy)]
pub struct DetectionFigures {
    /// Rule matches and fired correlations, before folding.
    pub detections: u64,
    pub new_alerts: u64,
    /// Detections folded into an existing alert's counter.
    pub folded: u64,
    pub new_incidents: u64,
    /// Detections an exception suppressed.
    pub suppressed: u64,
    /// Detection lag: event received → alert recorded.
    pub lag_ms_sum: u64,
    pub lag_count: u64,
    pub lag_ms_max: u64,
    pub lag_ms_last: u64,
}

/// One listener's name for the connection gauge.
pub type ListenerName = &'static str;

impl Metrics {
    pub fn add(&self, tenant: &str, source: &str, f: impl FnOnce(&mut SourceCounts)) {
        let mut m = self.sources.lock().unwrap_or_else(|p| p.into_inner());
        f(m.entry((tenant.to_owned(), source.to_owned())).or_default());
    }

    /// Every (tenant, source) with its counts.
    pub fn all_sources(&self) -> Vec<((String, String), SourceCounts)> {
        let m = self.sources.lock().unwrap_or_else(|p| p.into_inner());
        m.iter().map(|(k, v)| (k.clone(), *v)).collect()
    }

    pub fn counts(&self, tenant: &str, source: &str) -> SourceCounts {
        let m = self.sources.lock().unwrap_or_else(|p| p.into_inner());
        m.get(&(tenant.to_owned(), source.to_owned()))
            .copied()
            .unwrap_or_default()
    }

    pub fn connection_opened(&self, listener: ListenerName) {
        let mut m = self.connections.lock().unwrap_or_else(|p| p.into_inner());
        let e = m.entry(listener).or_default();
        e.0 += 1;
        e.1 += 1;
    }

    pub fn connection_closed(&self, listener: ListenerName) {
        let mut m = self.connections.lock().unwrap_or_else(|p| p.into_inner());
        let e = m.entry(listener).or_default();
        e.0 = e.0.saturating_sub(1);
    }

    /// Open stream connections over every listener.
    pub fn open_connections(&self) -> u64 {
        let m = self.connections.lock().unwrap_or_else(|p| p.into_inner());
        m.values().map(|(open, _)| open).sum()
    }

    /// The Prometheus text exposition, with the WAL figures the caller passes in.
    pub fn render(&self, wal: &WalFigures) -> String {
        let mut out = String::new();
        let sources = self
            .sources
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone();
        for (name, help, get) in [
            ("koban_intake_received_total", "records received", 0),
            (
                "koban_intake_accepted_total",
                "records durable in the WAL",
                1,
            ),
            (
                "koban_intake_rejected_total",
                "records refused (backpressure, disk full, bad input)",
                2,
            ),
            ("koban_intake_bytes_total", "payload bytes accepted", 3),
            ("koban_events_parsed_total", "events a parser understood", 4),
            (
                "koban_events_unparsed_total",
                "events stored as raw text: no parser understood them",
                5,
            ),
            (
                "koban_events_stored_total",
                "events written to the event store",
                6,
            ),
        ] {
            let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} counter");
            for ((tenant, source), c) in &sources {
                let v = [
                    c.received, c.accepted, c.rejected, c.bytes, c.parsed, c.unparsed, c.stored,
                ][get];
                let _ = writeln!(out, "{name}{{tenant=\"{tenant}\",source=\"{source}\"}} {v}");
            }
        }
        let _ = writeln!(out, "# HELP koban_source_events_per_second records received per second over the last minute\n# TYPE koban_source_events_per_second gauge");
        for ((tenant, source), c) in &sources {
            let _ = writeln!(
                out,
                "koban_source_events_per_second{{tenant=\"{tenant}\",source=\"{source}\"}} {:.1}",
                c.rate
            );
        }
        let conns = self
            .connections
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone();
        let _ = writeln!(out, "# HELP koban_listener_connections open connections\n# TYPE koban_listener_connections gauge");
        for (l, (open, _)) in &conns {
            let _ = writeln!(out, "koban_listener_connections{{listener=\"{l}\"}} {open}");
        }
        let _ = writeln!(out, "# HELP koban_listener_connections_total connections accepted\n# TYPE koban_listener_connections_total counter");
        for (l, (_, total)) in &conns {
            let _ = writeln!(
                out,
                "koban_listener_connections_total{{listener=\"{l}\"}} {total}"
            );
        }
        for (name, kind, v) in [
            ("koban_wal_size_bytes", "gauge", wal.size_bytes),
            ("koban_wal_last_seq", "gauge", wal.last_seq),
            ("koban_pipeline_applied_seq", "gauge", wal.applied_seq),
            (
                "koban_wal_backlog_records",
                "gauge",
                wal.last_seq.saturating_sub(wal.applied_seq),
            ),
            ("koban_intake_stopped", "gauge", u64::from(wal.stopped)),
            (
                "koban_http_auth_failures_total",
                "counter",
                self.auth_failures.load(Ordering::Relaxed),
            ),
            (
                "koban_intake_throttled_total",
                "counter",
                self.throttled.load(Ordering::Relaxed),
            ),
        ] {
            let _ = writeln!(out, "# TYPE {name} {kind}\n{name} {v}");
        }
        let d = *self.detection.lock().unwrap_or_else(|p| p.into_inner());
        for (name, kind, v) in [
            ("koban_detections_total", "counter", d.detections),
            ("koban_alerts_created_total", "counter", d.new_alerts),
            ("koban_alerts_folded_total", "counter", d.folded),
            ("koban_incidents_created_total", "counter", d.new_incidents),
            ("koban_detections_suppressed_total", "counter", d.suppressed),
            ("koban_detection_lag_ms_sum", "counter", d.lag_ms_sum),
            ("koban_detection_lag_ms_count", "counter", d.lag_count),
            ("koban_detection_lag_ms_max", "gauge", d.lag_ms_max),
            ("koban_detection_lag_ms_last", "gauge", d.lag_ms_last),
        ] {
            let _ = writeln!(out, "# TYPE {name} {kind}\n{name} {v}");
        }
        out
    }
}

pub struct WalFigures {
    pub size_bytes: u64,
    pub last_seq: u64,
    pub applied_seq: u64,
    pub stopped: bool,
}
