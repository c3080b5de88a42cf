//! `koban hunt`: every rule over every event of a set of files, on all cores.
//!
//! Files are read in parallel (one file per worker at a time); each event goes to the
//! rules of its log source; matches become detections with their explanation. Matches
//! of rules that feed correlation rules become signals, which are sorted by time after
//! all files are read and run through the correlation engine.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use koban_detect::stream::{correlation_fields, correlation_ref, kind_name};
use koban_event::Event;
use koban_parse::{ReadError, Reader, Record};
use koban_sigma::{CorrelationEngine, Level, MatchScratch, RuleSet};
use rayon::prelude::*;

/// One detection: a rule (or correlation) that matched, where, and why.
#[derive(Debug, Clone)]
pub struct Detection {
    /// Milliseconds since the epoch, when the event had a time.
    pub time: Option<i64>,
    pub host: Option<String>,
    pub rule_id: String,
    pub title: String,
    pub level: Level,
    pub tactics: Vec<String>,
    pub techniques: Vec<String>,
    /// The file as it was named on the command line or found under a folder.
    pub file: PathBuf,
    /// The archive member, for records inside zip files.
    pub entry: Option<String>,
    pub record: u64,
    pub why: String,
    /// Set for correlation detections.
    pub correlation: bool,
    /// How many matches this detection stands for: repeats of one rule on one host
    /// within the same second are folded into the first.
    pub count: u64,
}

/// Counters for the summary.
#[derive(Debug, Default)]
pub struct HuntStats {
    pub files: u64,
    pub skipped_files: u64,
    pub events: u64,
    pub errors: u64,
    pub elapsed: Duration,
}

pub struct HuntOutput {
    pub detections: Vec<Detection>,
    pub stats: HuntStats,
    pub errors: Vec<String>,
}

/// File extensions that are never logs (rule files, documentation): skipped when
/// walking folders, so `koban hunt .` over a mixed folder does not read rules as logs.
const NOT_LOGS: [&str; 10] = [
    "yml", "yaml", "md", "py", "rs", "toml", "html", "pdf", "png", "tsv",
];

/// Every file under the given paths, sorted, and the number skipped as not logs.
pub fn input_files(paths: &[PathBuf]) -> (Vec<PathBuf>, u64, Vec<String>) {
    let mut files = Vec::new();
    let mut skipped = 0;
    let mut errors = Vec::new();
    for p in paths {
        if p.is_file() {
            files.push(p.clone());
            continue;
        }
        if !p.exists() {
            errors.push(format!("{}: no such file or folder", p.display()));
            continue;
        }
        for entry in walkdir::WalkDir::new(p)
            .follow_links(true)
            .sort_by_file_name()
        {
            match entry {
                Ok(e) if e.file_type().is_file() => {
                    let ext = e
                        .path()
                        .extension()
                        .and_then(|x| x.to_str())
                        .unwrap_or_default()
                        .to_ascii_lowercase();
                    let name = e.file_name().to_string_lossy();
                    if NOT_LOGS.contains(&ext.as_str()) || name.starts_with('.') {
                        skipped += 1;
                    } else {
                        files.push(e.into_path());
                    }
                }
                Ok(_) => {}
                Err(err) => errors.push(format!("cannot walk: {err}")),
            }
        }
    }
    (files, skipped, errors)
}

/// A base-rule match kept for correlation.
struct Signal {
    time: i64,
    rule: usize,
    fields: Vec<(String, String)>,
    evidence: Evidence,
}

#[derive(Debug, Clone)]
struct Evidence {
    file: usize,
    entry: Option<String>,
    record: u64,
    host: Option<String>,
}

/// The host an event is about, from the fields the common formats use.
pub fn event_host(e: &Event) -> Option<String> {
    koban_detect::entities::host_of(e)
}

/// How the hunt reports.
#[derive(Debug, Clone, Copy)]
pub struct HuntOptions {
    /// Drop detections below this level (correlations still see the matches).
    pub min_level: Level,
    /// Fold repeats of one rule on one host within one second into one detection.
    pub fold_repeats: bool,
}

impl Default for HuntOptions {
    fn default() -> Self {
        HuntOptions {
            min_level: Level::Informational,
            fold_repeats: false,
        }
    }
}

/// Runs the rules over events already in memory (tests as data, streaming callers):
/// the same matching, folding and correlation as [`run`], with `source` standing in
/// for the file name and the position in `events` as the record number.
pub fn run_events(
    set: &RuleSet,
    events: Vec<Event>,
    source: &Path,
    options: HuntOptions,
) -> Vec<Detection> {
    let needed = correlation_fields(set);
    let mut routes = MatchScratch::default();
    let mut matched = Vec::new();
    let mut detections = Vec::new();
    let mut seen = HashMap::new();
    let mut signals = Vec::new();
    for (index, event) in events.into_iter().enumerate() {
        let r = Record {
            event,
            index: index as u64,
            entry: None,
        };
        process(
            set,
            &needed,
            options,
            &mut routes,
            &mut matched,
            &r,
            (0, source),
            &mut detections,
            &mut seen,
            &mut signals,
        );
    }
    let files = [source.to_path_buf()];
    detections.extend(correlate(set, signals, &files, options.min_level));
    detections
}

type Seen = HashMap<(usize, Option<String>, Option<i64>), usize>;

/// Matches one record and records its detections and correlation signals.
#[allow(clippy::too_many_arguments)]
fn process(
    set: &RuleSet,
    needed: &[Vec<String>],
    options: HuntOptions,
    routes: &mut MatchScratch,
    matched: &mut Vec<u32>,
    r: &Record,
    (file_idx, path): (usize, &Path),
    detections: &mut Vec<Detection>,
    seen: &mut Seen,
    signals: &mut Vec<Signal>,
) {
    matched.clear();
    set.matching(routes, &r.event, matched);
    for &i in matched.iter() {
        let i = i as usize;
        let rule = &set.rules()[i];
        let level = rule.meta.level.unwrap_or(Level::Medium);
        if set.is_standalone(i) && level >= options.min_level {
            // Folding needs a key per match; without it, no bookkeeping at all.
            let second = r.event.timestamp.map(|t| t.div_euclid(1000));
            if options.fold_repeats && second.is_some() {
                let key = (i, event_host(&r.event), second);
                match seen.get(&key) {
                    Some(&at) => detections[at].count += 1,
                    None => {
                        seen.insert(key, detections.len());
                        detections.push(detection(set, i, r, path));
                    }
                }
            } else {
                detections.push(detection(set, i, r, path));
            }
        }
        if !set.feeds_of_rule(i).is_empty() {
            if let Some(time) = r.event.timestamp {
                let fields = needed[i]
                    .iter()
                    .filter_map(|n| r.event.get_str(n).map(|v| (n.clone(), v)))
                    .collect();
                signals.push(Signal {
                    time,
                    rule: i,
                    fields,
                    evidence: Evidence {
                        file: file_idx,
                        entry: r.entry.as_deref().map(str::to_owned),
                        record: r.index,
                        host: event_host(&r.event),
                    },
                });
            }
        }
    }
}

/// What one file yields: detections, correlation signals, read errors.
type FileResult = (Vec<Detection>, Vec<Signal>, Vec<String>);

/// Runs the hunt.
pub fn run(set: &RuleSet, reader: &Reader, files: &[PathBuf], options: HuntOptions) -> HuntOutput {
    let min_level = options.min_level;
    let start = Instant::now();
    let events = AtomicU64::new(0);
    let needed = correlation_fields(set);
    // Largest files first, so no worker is left alone with a big file at the end;
    // results go back to the input order afterwards.
    let mut order: Vec<(usize, &PathBuf)> = files.iter().enumerate().collect();
    order.sort_by_key(|(_, p)| {
        std::cmp::Reverse(std::fs::metadata(p).map(|m| m.len()).unwrap_or(0))
    });
    let mut per_file: Vec<(usize, FileResult)> = order
        .into_par_iter()
        .with_max_len(1)
        .map_init(
            || (MatchScratch::default(), Vec::<u32>::new()),
            |(routes, matched), (file_idx, path)| {
                (file_idx, {
                    let mut detections: Vec<Detection> = Vec::new();
                    // (rule, host, second) -> index in `detections`, for folding repeats.
                    let mut seen: Seen = HashMap::new();
                    let mut signals = Vec::new();
                    let mut errors = Vec::new();
                    let mut count = 0u64;
                    let mut on_record = |r: Record| {
                        count += 1;
                        process(
                            set,
                            &needed,
                            options,
                            routes,
                            matched,
                            &r,
                            (file_idx, path),
                            &mut detections,
                            &mut seen,
                            &mut signals,
                        );
                    };
                    let mut on_error = |e: ReadError| errors.push(e.to_string());
                    reader.read_file(path, &mut on_record, &mut on_error);
                    events.fetch_add(count, Ordering::Relaxed);
                    (detections, signals, errors)
                })
            },
        )
        .collect();
    per_file.sort_by_key(|(i, _)| *i);
    let mut detections = Vec::new();
    let mut signals = Vec::new();
    let mut errors = Vec::new();
    for (_, (d, s, e)) in per_file {
        detections.extend(d);
        signals.extend(s);
        errors.extend(e);
    }
    detections.extend(correlate(set, signals, files, min_level));
    HuntOutput {
        detections,
        stats: HuntStats {
            files: files.len() as u64,
            skipped_files: 0,
            events: events.load(Ordering::Relaxed),
            errors: errors.len() as u64,
            elapsed: start.elapsed(),
        },
        errors,
    }
}

fn detection(set: &RuleSet, i: usize, r: &Record, path: &Path) -> Detection {
    let rule = &set.rules()[i];
    Detection {
        time: r.event.timestamp,
        host: event_host(&r.event),
        rule_id: rule.meta.key().to_owned(),
        title: rule.meta.title.clone(),
        level: rule.meta.level.unwrap_or(Level::Medium),
        tactics: rule.meta.tactics(),
        techniques: rule.meta.techniques(),
        file: path.to_path_buf(),
        entry: r.entry.as_deref().map(str::to_owned),
        record: r.index,
        why: rule.detection.explain(&r.event).to_string(),
        correlation: false,
        count: 1,
    }
}

/// Runs the correlation engine over the signals in time order, following chains.
fn correlate(
    set: &RuleSet,
    mut signals: Vec<Signal>,
    files: &[PathBuf],
    min_level: Level,
) -> Vec<Detection> {
    if set.correlations().is_empty() || signals.is_empty() {
        return Vec::new();
    }
    signals.sort_by_key(|s| s.time);
    let mut engine: CorrelationEngine<Evidence> =
        CorrelationEngine::new(set.correlations().to_vec());
    let mut out = Vec::new();
    let mut hits = Vec::new();
    for s in &signals {
        let meta = &set.rules()[s.rule].meta;
        let names: Vec<&str> = [meta.name.as_deref(), meta.id.as_deref()]
            .into_iter()
            .flatten()
            .collect();
        let fields: HashMap<&str, &str> = s
            .fields
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .collect();
        let lookup = |f: &str| fields.get(f).map(|v| (*v).to_owned());
        for &(c, pos) in set.feeds_of_rule(s.rule) {
            if let Some(h) = engine.feed(c, pos, &names, s.time, &lookup, s.evidence.clone()) {
                hits.push(h);
            }
        }
        drain(set, &mut engine, &mut hits, files, min_level, &mut out);
    }
    // Windows with upper bounds close at the end of input; what fires then may still
    // complete correlations that use it.
    let mut hits = engine.flush();
    drain(set, &mut engine, &mut hits, files, min_level, &mut out);
    out
}

/// Reports fired correlations and feeds each to the correlations that use it (chains).
fn drain(
    set: &RuleSet,
    engine: &mut CorrelationEngine<Evidence>,
    hits: &mut Vec<koban_sigma::CorrelationHit<Evidence>>,
    files: &[PathBuf],
    min_level: Level,
    out: &mut Vec<Detection>,
) {
    while let Some(h) = hits.pop() {
        let corr = &set.correlations()[h.correlation];
        let group: HashMap<String, String> = h.group.iter().cloned().collect();
        let lookup = |f: &str| group.get(f).cloned();
        let names: Vec<&str> = [corr.meta.name.as_deref(), corr.meta.id.as_deref()]
            .into_iter()
            .flatten()
            .collect();
        for &(c, pos) in set.feeds_of_correlation(h.correlation) {
            if let Some(evidence) = h.evidence.last().cloned() {
                if let Some(next) = engine.feed(c, pos, &names, h.last_ms, &lookup, evidence) {
                    hits.push(next);
                }
            }
        }
        if let Some(d) = correlation_detection(set, &h, files, min_level) {
            out.push(d);
        }
    }
}

fn correlation_detection(
    set: &RuleSet,
    h: &koban_sigma::CorrelationHit<Evidence>,
    files: &[PathBuf],
    min_level: Level,
) -> Option<Detection> {
    let corr = &set.correlations()[h.correlation];
    let r = correlation_ref(set, h.correlation)?;
    if r.level < min_level {
        return None;
    }
    let last = h.evidence.last()?;
    Some(Detection {
        time: Some(h.last_ms),
        host: last.host.clone(),
        rule_id: r.key,
        title: r.title,
        level: r.level,
        tactics: r.tactics,
        techniques: r.techniques,
        file: files[last.file].clone(),
        entry: last.entry.clone(),
        record: last.record,
        why: format!("{} correlation: {}", kind_name(corr.kind), h.why),
        correlation: true,
        count: h.count,
    })
}
