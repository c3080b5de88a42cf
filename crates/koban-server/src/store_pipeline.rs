//! The pipeline of the integrated server: each accepted WAL record is parsed into
//! events (koban-parse) and written to the embedded event store (koban-store).
//!
//! Commits are batched — a tantivy commit costs far more than the documents — so the
//! durable position (`applied_seq`) trails the records taken by up to `commit_every`.
//! A crash in between loses nothing: the WAL still holds those records, the store's
//! applied position says where to resume, and the store skips any event a partition
//! already committed, so nothing is stored twice.

use std::collections::VecDeque;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use koban_event::{Event, Value};
use koban_parse::{Parsed, Reader, SourceHint};
use koban_store::{EventStore, StoreOptions, StoreSearcher, StoredEvent};
use koban_wal::{RecordKind, WalRecord};

use crate::alerts::EventRef;
use crate::detection::DetectStage;
use crate::intake::Intake;
use crate::pipeline::{Pipeline, PipelineError};

/// How long taken records may wait for their commit by default.
pub const DEFAULT_COMMIT_EVERY: Duration = Duration::from_secs(1);

/// Parse + store.
pub struct StorePipeline {
    dir: PathBuf,
    options: StoreOptions,
    store: EventStore,
    reader: Reader,
    commit_every: Duration,
    /// The last WAL record written to the store, committed or not.
    written_seq: u64,
    last_commit: Instant,
    intake: Option<Arc<Intake>>,
    /// Streaming detection over the stored events, when rules are loaded.
    detect: Option<DetectStage>,
    /// The last events written, held a little longer so that this thread, which
    /// allocated them, also frees them: tantivy's indexing threads take at most
    /// [`IN_FLIGHT`] documents behind the newest, so past that our reference is nearly
    /// always the last. Freeing an event's ~30 allocations from another thread cost
    /// mimalloc about twice as much (measured with callgrind on syslog lines).
    recent: VecDeque<Arc<Event>>,
}

/// Documents tantivy's writer may hold unindexed (its channel takes 10,000), with
/// room for the ones its threads are indexing.
const IN_FLIGHT: usize = 10_000 + 2_048;

/// One parsed event with the record it came from. The event is shared by the store's
/// document (indexed on tantivy's threads) and the detection stage: parsed once, never
/// copied.
struct Made {
    seq: u64,
    sub: u32,
    format: &'static str,
    parsed: bool,
    event: Arc<Event>,
}

impl Made {
    fn new(seq: u64, sub: u32, p: Parsed) -> Made {
        Made {
            seq,
            sub,
            format: p.format,
            parsed: p.parsed,
            event: Arc::new(p.event),
        }
    }
}

impl StorePipeline {
    /// Opens (or creates) the event store in `dir`.
    pub fn open(dir: &Path, options: StoreOptions) -> Result<StorePipeline, PipelineError> {
        let store = EventStore::open(dir, options.clone())
            .map_err(|e| PipelineError(format!("cannot open the event store: {e}")))?;
        let reader =
            Reader::new().map_err(|e| PipelineError(format!("cannot load the parsers: {e}")))?;
        Ok(StorePipeline {
            dir: dir.to_path_buf(),
            options,
            written_seq: store.applied_seq(),
            store,
            reader,
            commit_every: DEFAULT_COMMIT_EVERY,
            last_commit: Instant::now(),
            intake: None,
            detect: None,
            recent: VecDeque::new(),
        })
    }

    /// Runs every stored event through `stage` as well.
    pub fn with_detection(mut self, stage: DetectStage) -> StorePipeline {
        self.detect = Some(stage);
        self
    }

    pub fn with_commit_every(mut self, every: Duration) -> StorePipeline {
        self.commit_every = every;
        self
    }

    /// A searcher for the HTTP side; it sees every commit.
    pub fn searcher(&self) -> StoreSearcher {
        self.store.searcher()
    }

    /// The events one WAL record holds: one for a line or document, many for an EVTX
    /// upload. Never none: what no parser understands is kept raw.
    fn events_of(&self, r: &WalRecord, out: &mut Vec<Made>) {
        let hint = SourceHint::default();
        let rec = &r.record;
        let one = |parsed: Parsed, out: &mut Vec<Made>| out.push(Made::new(r.seq, 0, parsed));
        match rec.kind {
            RecordKind::Evtx => {
                let name = PathBuf::from(format!("{}.evtx", rec.source));
                let mut sub = 0u32;
                let mut problems = Vec::new();
                self.reader.read_evtx_bytes(
                    &name,
                    rec.payload.clone(),
                    &mut |record| {
                        out.push(Made::new(
                            r.seq,
                            sub,
                            Parsed {
                                event: record.event,
                                format: "evtx",
                                parsed: true,
                            },
                        ));
                        sub += 1;
                    },
                    &mut |e| problems.push(e.to_string()),
                );
                for p in problems {
                    // A broken record inside an upload is kept as a raw event naming
                    // the problem: never silently dropped.
                    tracing::warn!(seq = r.seq, problem = %p, "evtx upload: record not readable");
                    out.push(Made::new(r.seq, sub, raw_event(&p)));
                    sub += 1;
                }
            }
            RecordKind::Json | RecordKind::NdjsonLine => {
                one(koban_parse::parse_json(&rec.payload, &hint), out)
            }
            RecordKind::HecEvent => one(hec_event(&rec.payload, &hint), out),
            RecordKind::ZeekTsvRow => one(zeek_row(&rec.payload), out),
            RecordKind::Syslog | RecordKind::HecRaw | RecordKind::RawText => {
                let text = String::from_utf8_lossy(&rec.payload);
                one(koban_parse::parse_text(&text, &hint), out)
            }
        }
    }

    /// Makes what was taken durable: detections first (their position may run ahead of
    /// the store's; a replay then stores without detecting again), then the store.
    fn commit(&mut self) -> Result<(), PipelineError> {
        if let Some(d) = &mut self.detect {
            if let Err(e) = d.commit(self.written_seq) {
                return Err(self.fail(e.0));
            }
        }
        if self.written_seq > self.store.applied_seq() {
            self.store
                .commit(self.written_seq)
                .map_err(|e| self.fail(format!("commit failed: {e}")))?;
        }
        self.last_commit = Instant::now();
        // Committed: the indexing threads are done with every document.
        self.recent.clear();
        Ok(())
    }

    /// Reopens the store after a failed write or commit, dropping what it had not
    /// committed; the caller replays from the applied position.
    fn fail(&mut self, message: String) -> PipelineError {
        match EventStore::open(&self.dir, self.options.clone()) {
            Ok(s) => {
                self.written_seq = s.applied_seq();
                self.store = s;
            }
            Err(e) => tracing::error!(error = %e, "cannot reopen the event store"),
        }
        if let Some(d) = &mut self.detect {
            if let Err(e) = d.reset() {
                tracing::error!(error = %e, "cannot reread the detection position");
            }
        }
        PipelineError(message)
    }
}

/// A Splunk HEC event: `{"time": epoch s, "host": .., "sourcetype": .., "event": ..}`
/// where `event` is a line of text or an object.
fn hec_event(payload: &[u8], hint: &SourceHint) -> Parsed {
    let Ok(serde_json::Value::Object(mut env)) = serde_json::from_slice(payload) else {
        return koban_parse::parse_json(payload, hint);
    };
    let mut parsed = match env.remove("event") {
        Some(serde_json::Value::String(s)) => koban_parse::parse_text(&s, hint),
        Some(v @ serde_json::Value::Object(_)) => koban_parse::parse_json_value(v, hint),
        Some(other) => koban_parse::parse_text(&other.to_string(), hint),
        None => return koban_parse::parse_json(payload, hint),
    };
    if parsed.event.timestamp.is_none() {
        parsed.event.timestamp = env
            .get("time")
            .and_then(|t| t.as_f64().or_else(|| t.as_str()?.parse().ok()))
            .map(|s| (s * 1000.0) as i64);
    }
    for (key, field) in [
        ("host", "host.name"),
        ("source", "log.file.path"),
        ("sourcetype", "event.dataset"),
    ] {
        if let Some(v) = env.get(key).and_then(|v| v.as_str()) {
            parsed.event.insert(field, Value::from(v));
        }
    }
    parsed
}

/// A Zeek TSV row after the `#path` / `#fields` directives it came with
/// (`RecordKind::ZeekTsvRow`); the row alone is kept as the original.
fn zeek_row(payload: &[u8]) -> Parsed {
    let text = String::from_utf8_lossy(payload);
    let (header, row) = text.rsplit_once('\n').unwrap_or(("", &text));
    let mut hint = SourceHint::default();
    for d in header.lines() {
        if let Some(cols) = d.strip_prefix("#fields\t") {
            let names: Vec<String> = cols.split('\t').map(str::to_owned).collect();
            hint.columns = Some(Arc::from(names));
        } else if let Some(path) = d.strip_prefix("#path\t") {
            hint.stem = path.to_ascii_lowercase();
        }
    }
    koban_parse::parse_text(row, &hint)
}

fn raw_event(text: &str) -> Parsed {
    let mut event = Event::from_fields(vec![("message".into(), Value::from(text))]);
    event.original = Some(text.into());
    Parsed {
        event,
        format: "raw",
        parsed: false,
    }
}

impl StorePipeline {
    /// Where both the store and detection hold everything before.
    fn durable_seq(&self) -> u64 {
        let stored = self.store.applied_seq();
        self.detect
            .as_ref()
            .map_or(stored, |d| stored.min(d.position()))
    }
}

impl Pipeline for StorePipeline {
    fn applied_seq(&self) -> u64 {
        self.durable_seq()
    }

    fn attach(&mut self, intake: &Arc<Intake>) {
        self.intake = Some(intake.clone());
        if let Some(d) = &mut self.detect {
            d.attach(intake.clone());
        }
    }

    fn apply(&mut self, records: &[WalRecord]) -> Result<u64, PipelineError> {
        let mut made = Vec::with_capacity(records.len());
        let mut owners = Vec::with_capacity(records.len());
        for r in records {
            let before = made.len();
            self.events_of(r, &mut made);
            owners.push((r, before..made.len()));
        }
        let mut batch = Vec::with_capacity(made.len());
        for (r, range) in &owners {
            for m in &made[range.clone()] {
                batch.push(StoredEvent {
                    tenant: &r.record.tenant,
                    source: &r.record.source,
                    seq: m.seq,
                    sub: m.sub,
                    received_ms: r.record.received_ms,
                    format: m.format,
                    parsed: m.parsed,
                    event: &m.event,
                });
            }
        }
        let report = self.store.write(&batch);
        drop(batch);
        if let Some(d) = &mut self.detect {
            d.refresh();
            for (r, range) in &owners {
                for m in &made[range.clone()] {
                    let at = || EventRef {
                        source: r.record.source.clone(),
                        seq: m.seq,
                        sub: m.sub,
                        received_ms: r.record.received_ms,
                    };
                    d.detect(&r.record.tenant, &m.event, m.seq, &at);
                }
            }
        }
        if let Err(e) = report {
            return Err(self.fail(format!("store write failed: {e}")));
        }
        if let Some(intake) = &self.intake {
            for (r, range) in &owners {
                let events = &made[range.clone()];
                let parsed = events.iter().filter(|m| m.parsed).count() as u64;
                let n = events.len() as u64;
                intake.metrics.add(&r.record.tenant, &r.record.source, |c| {
                    c.parsed += parsed;
                    c.unparsed += n - parsed;
                    c.stored += n;
                });
            }
        }
        if let Some(last) = records.last() {
            self.written_seq = last.seq;
        }
        self.recent.extend(made.into_iter().map(|m| m.event));
        while self.recent.len() > IN_FLIGHT {
            self.recent.pop_front();
        }
        if self.last_commit.elapsed() >= self.commit_every {
            self.commit()?;
        }
        Ok(self.durable_seq())
    }

    fn idle(&mut self) -> Result<u64, PipelineError> {
        self.commit()?;
        Ok(self.durable_seq())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const ROW: &str = "1521911720.865716\tCqKst53mF3det3eDV9\t10.47.1.100\t41772\t10.0.0.100\t53\tudp\tise.wrccdc.org";

    #[test]
    fn a_zeek_row_is_parsed_with_the_columns_it_came_with() {
        let payload = format!(
            "#path\tdns\n#fields\tts\tuid\tid.orig_h\tid.orig_p\tid.resp_h\tid.resp_p\tproto\tquery\n{ROW}"
        );
        let p = zeek_row(payload.as_bytes());
        assert!(p.parsed, "format {}", p.format);
        assert_eq!(p.event.get_str("id.orig_h").as_deref(), Some("10.47.1.100"));
        assert_eq!(p.event.get_str("query").as_deref(), Some("ise.wrccdc.org"));
        assert_eq!(
            p.event.original.as_deref(),
            Some(ROW),
            "the row alone is the original"
        );
        // Without its header the same row is only text: kept raw, never dropped.
        assert!(!koban_parse::parse_text(ROW, &SourceHint::default()).parsed);
    }
}
