//! The streaming detection stage: every stored event, in WAL order, through the rules
//! its tenant runs; detections into alerts and incidents (`alerts/`).
//!
//! Exactly-once without a shared transaction with the event store: detection keeps its
//! own position in `alerts.db`, written in the same SQLite transaction as the alerts
//! and the open correlation windows. The pipeline resumes from the lower of the store's
//! and detection's positions; each side skips what it already holds.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant, SystemTime};

use koban_detect::rules::load_with_builtin;
use koban_detect::stream::SavedState;
use koban_detect::StreamDetector;
use koban_event::Event;
use koban_sigma::{CompileOptions, Routing, RuleSet};

use crate::alerts::{AlertBook, Detected, EventRef, Grouping, Policy, RecordReport};
use crate::intake::Intake;
use crate::pipeline::PipelineError;
use crate::state::now_ms;

/// The global rule set: the configured folders plus Koban's own rules, reloadable
/// while the server runs.
pub struct RuleSource {
    paths: Vec<PathBuf>,
    current: RwLock<Arc<RuleSet>>,
    version: AtomicU64,
    fingerprint: RwLock<Fingerprint>,
    pub summary: RwLock<String>,
}

/// What the rule files look like on disk: a change in any means a reload.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
struct Fingerprint {
    files: usize,
    bytes: u64,
    newest: Option<SystemTime>,
}

fn fingerprint(paths: &[PathBuf]) -> Fingerprint {
    let mut f = Fingerprint::default();
    for p in paths {
        for file in koban_sigma::rule_files(p).unwrap_or_default() {
            if let Ok(m) = std::fs::metadata(&file) {
                f.files += 1;
                f.bytes += m.len();
                let t = m.modified().ok();
                if t > f.newest {
                    f.newest = t;
                }
            }
        }
    }
    f
}

impl RuleSource {
    /// Loads the rules; a rule that does not compile is reported and left out, the
    /// others run.
    pub fn load(paths: &[PathBuf]) -> Result<Arc<RuleSource>, String> {
        let src = RuleSource {
            paths: paths.to_vec(),
            current: RwLock::new(Arc::new(RuleSet::build(Vec::new(), Routing::LogSource).0)),
            version: AtomicU64::new(0),
            fingerprint: RwLock::new(Fingerprint::default()),
            summary: RwLock::new(String::new()),
        };
        src.reload()?;
        Ok(Arc::new(src))
    }

    /// Reads the rules again and swaps them in; the detection stage picks them up at
    /// its next batch. Returns the summary line.
    pub fn reload(&self) -> Result<String, String> {
        let print = fingerprint(&self.paths);
        let loaded = load_with_builtin(&self.paths, &CompileOptions::default())
            .map_err(|e| e.to_string())?;
        for e in loaded.errors.iter().take(20) {
            tracing::warn!(error = %e, "rule not loaded");
        }
        let (rules, filters, correlations) = loaded.kinds;
        let summary = format!(
            "{} files: {rules} rules, {filters} filters, {correlations} correlations; {} errors",
            loaded.files,
            loaded.errors.len()
        );
        tracing::info!(rules = %summary, "rules loaded");
        *self.current.write().unwrap_or_else(|p| p.into_inner()) = Arc::new(loaded.set);
        *self.fingerprint.write().unwrap_or_else(|p| p.into_inner()) = print;
        *self.summary.write().unwrap_or_else(|p| p.into_inner()) = summary.clone();
        self.version.fetch_add(1, Ordering::SeqCst);
        Ok(summary)
    }

    /// Reloads when a rule file was added, removed or changed since the last load.
    pub fn reload_if_changed(&self) -> Result<Option<String>, String> {
        let now = fingerprint(&self.paths);
        if *self.fingerprint.read().unwrap_or_else(|p| p.into_inner()) == now {
            return Ok(None);
        }
        self.reload().map(Some)
    }

    pub fn version(&self) -> u64 {
        self.version.load(Ordering::SeqCst)
    }

    pub fn current(&self) -> Arc<RuleSet> {
        self.current
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    /// Watches the rule files every `every` on its own thread (loading takes seconds
    /// of CPU; it must not stall intake or detection).
    pub fn watch(self: &Arc<Self>, every: Duration) {
        let src = Arc::downgrade(self);
        let spawned = std::thread::Builder::new()
            .name("koban-rules".into())
            .spawn(move || loop {
                std::thread::sleep(every);
                let Some(src) = src.upgrade() else { return };
                if let Err(e) = src.reload_if_changed() {
                    tracing::error!(error = %e, "rule reload failed; the previous rules stay");
                }
            });
        if let Err(e) = spawned {
            tracing::error!(error = %e, "cannot start the rule watcher");
        }
    }
}

/// How often the stage looks for policy changes (overrides, exceptions).
const POLICY_CHECK: Duration = Duration::from_secs(1);

pub struct DetectStage {
    book: AlertBook,
    rules: Arc<RuleSource>,
    rules_version: u64,
    detector: StreamDetector<EventRef>,
    policy: Policy,
    policy_checked: Instant,
    grouping: Grouping,
    /// The WAL position recorded in `alerts.db`.
    recorded: u64,
    pending: Vec<Detected>,
    /// The newest event time seen: correlation windows older than their span expire.
    newest_event_ms: i64,
    found: Vec<koban_detect::Found<EventRef>>,
    intake: Option<Arc<Intake>>,
    /// Indicators every event is also matched against (`[intel]`).
    intel: Option<Arc<crate::intel::Intel>>,
}

impl DetectStage {
    pub fn open(
        path: &Path,
        rules: Arc<RuleSource>,
        grouping: Grouping,
    ) -> Result<DetectStage, PipelineError> {
        let book = AlertBook::open(path).map_err(|e| PipelineError(e.to_string()))?;
        let mut stage = DetectStage {
            rules_version: rules.version(),
            detector: StreamDetector::new(rules.current()),
            rules,
            policy: book
                .policy(now_ms())
                .map_err(|e| PipelineError(e.to_string()))?,
            book,
            policy_checked: Instant::now(),
            grouping,
            recorded: 0,
            pending: Vec::new(),
            newest_event_ms: i64::MIN,
            found: Vec::new(),
            intake: None,
            intel: None,
        };
        stage.reset()?;
        Ok(stage)
    }

    /// Matches every event against these indicators too.
    pub fn with_intel(mut self, intel: Arc<crate::intel::Intel>) -> DetectStage {
        self.intel = Some(intel);
        self
    }

    /// The intake whose `/metrics` the stage adds to.
    pub fn attach(&mut self, intake: Arc<Intake>) {
        self.intake = Some(intake);
    }

    /// The WAL sequence number detection has recorded up to.
    pub fn position(&self) -> u64 {
        self.recorded
    }

    /// Forgets what was not recorded and goes back to the recorded position and
    /// windows (start, and after a failed batch).
    pub fn reset(&mut self) -> Result<(), PipelineError> {
        let (seq, windows) = self
            .book
            .detection_position()
            .map_err(|e| PipelineError(e.to_string()))?;
        let saved: SavedState<EventRef> = serde_json::from_str(&windows).unwrap_or_else(|e| {
            tracing::error!(error = %e, "saved correlation windows unreadable; starting empty");
            Vec::new()
        });
        self.detector = StreamDetector::new(self.rules.current());
        self.rules_version = self.rules.version();
        let n = self.detector.restore(saved);
        if n > 0 {
            tracing::info!(windows = n, "correlation windows restored");
        }
        self.recorded = seq;
        self.pending.clear();
        Ok(())
    }

    /// Called at the start of each batch: new rules and policy take effect here.
    pub fn refresh(&mut self) {
        let v = self.rules.version();
        if v != self.rules_version {
            self.detector.replace_rules(self.rules.current());
            self.rules_version = v;
            tracing::info!("detection switched to the reloaded rules");
        }
        if self.policy_checked.elapsed() >= POLICY_CHECK {
            self.policy_checked = Instant::now();
            match self.book.policy_version() {
                Ok(v) if v != self.policy.version => match self.book.policy(now_ms()) {
                    Ok(p) => self.policy = p,
                    Err(e) => tracing::error!(error = %e, "cannot read the rule policy"),
                },
                Ok(_) => {}
                Err(e) => tracing::error!(error = %e, "cannot read the rule policy"),
            }
        }
    }

    /// Matches one stored event of WAL record `seq` (only records after the recorded
    /// position); `at` makes its reference when a rule matched.
    pub fn detect(&mut self, tenant: &str, event: &Event, seq: u64, at: &dyn Fn() -> EventRef) {
        if seq <= self.recorded {
            return;
        }
        if let Some(t) = event.timestamp {
            self.newest_event_ms = self.newest_event_ms.max(t);
        }
        let policy = &self.policy;
        let enabled = |rule: &str| policy.enabled(tenant, rule);
        self.found.clear();
        self.detector
            .detect(tenant, event, at, &enabled, &mut self.found);
        if let Some(intel) = &self.intel {
            intel.detect(event, at, &mut self.found);
        }
        let mut suppressed = 0u64;
        for f in self.found.drain(..) {
            let at_ms = f.time.unwrap_or_else(now_ms);
            if policy.has_exceptions()
                && policy
                    .suppressed_by(tenant, &f.rule.key, &f.entities, Some(event), at_ms)
                    .is_some()
            {
                suppressed += 1;
                continue;
            }
            self.pending.push(Detected {
                tenant: tenant.to_owned(),
                level: policy.level(tenant, &f.rule.key, f.rule.level),
                found: f,
            });
        }
        if suppressed > 0 {
            if let Some(i) = &self.intake {
                i.metrics
                    .detection
                    .lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .suppressed += suppressed;
            }
        }
    }

    /// Records the pending detections with position `seq` (all records up to it have
    /// been matched).
    pub fn commit(&mut self, seq: u64) -> Result<RecordReport, PipelineError> {
        if seq <= self.recorded && self.pending.is_empty() {
            return Ok(RecordReport::default());
        }
        if self.newest_event_ms > i64::MIN {
            self.detector.expire(self.newest_event_ms);
        }
        let windows = serde_json::to_string(&self.detector.save())
            .map_err(|e| PipelineError(format!("cannot save correlation windows: {e}")))?;
        let now = now_ms();
        let report = self
            .book
            .record(&self.pending, seq, &windows, &self.grouping, now)
            .map_err(|e| PipelineError(format!("recording alerts failed: {e}")))?;
        if let Some(i) = &self.intake {
            let mut d = i
                .metrics
                .detection
                .lock()
                .unwrap_or_else(|p| p.into_inner());
            d.detections += report.detections;
            d.new_alerts += report.new_alerts;
            d.folded += report.folded;
            d.new_incidents += report.new_incidents;
            for p in &self.pending {
                for e in p.found.evidence.iter().take(1) {
                    let lag = (now - e.received_ms).max(0) as u64;
                    d.lag_ms_sum += lag;
                    d.lag_count += 1;
                    d.lag_ms_max = d.lag_ms_max.max(lag);
                    d.lag_ms_last = lag;
                }
            }
        }
        self.pending.clear();
        self.recorded = seq;
        Ok(report)
    }
}
