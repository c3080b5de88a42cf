//! Threat intelligence in the stream: the indicators of `[intel] files` (STIX 2.1
//! bundles, MISP events, CSV or plain lists — told apart by their content) and the
//! MISP warning lists of `[intel] warninglists`, loaded once at start; every stored
//! event's addresses, domains, URLs, hashes and e-mail addresses are looked up
//! (`koban_intel::IndicatorSet`, flat cost per value), and a hit that no warning list
//! calls benign becomes a detection carrying the indicator's source and context.
//!
//! Not yet here (issue 8 stays open): TAXII polling, retroactive matching of new
//! indicators over stored events, the intel page.

use std::path::{Path, PathBuf};

use koban_detect::entities::{fields_of, Entities};
use koban_detect::stream::RuleRef;
use koban_detect::Found;
use koban_event::Event;
use koban_event::Value as EventValue;
use koban_intel::warninglist::WarningLists;
use koban_intel::{list, misp, stix, ImportReport, Indicator, IndicatorSet, Kind};
use koban_sigma::Level;
use serde_json::Value;

use crate::alerts::EventRef;

/// URL and e-mail fields (the other kinds use the entity fields of koban-detect).
const URL_FIELDS: &[&str] = &["url.full", "url", "request.url", "requestURL", "uri"];
const EMAIL_FIELDS: &[&str] = &[
    "email.from.address",
    "email.to.address",
    "user.email",
    "SenderAddress",
    "RecipientAddress",
    "sender",
];

/// What an event field is looked up as.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Looked {
    Is(Kind),
    /// A hash whose kind its length tells.
    Hash,
    /// Sysmon's `Hashes` list.
    HashList,
}

pub struct Intel {
    set: IndicatorSet,
    warn: WarningLists,
    /// (lower-cased field name, the name as shown, how it is looked up), built once.
    fields: Vec<(String, &'static str, Looked)>,
    /// Per file: what its import came to.
    pub reports: Vec<(String, ImportReport)>,
}

impl Intel {
    /// Loads indicator files and warning lists; a file that cannot be read or parsed
    /// is an error naming it (a feed silently missing is worse than a refusal).
    pub fn load(files: &[PathBuf], warninglists: &[PathBuf]) -> Result<Intel, String> {
        let mut set = IndicatorSet::new();
        let mut reports = Vec::new();
        for f in expand(files)? {
            let text = std::fs::read_to_string(&f).map_err(|e| format!("{}: {e}", f.display()))?;
            let source = f.file_name().map_or_else(
                || f.display().to_string(),
                |n| n.to_string_lossy().into_owned(),
            );
            let mut got = Vec::new();
            let mut report = ImportReport::default();
            read(&f, &text, &source, &mut got, &mut report)?;
            for i in got {
                set.insert(i);
            }
            tracing::info!(file = %f.display(), imported = report.imported,
                unsupported = report.unsupported_total(), "intel loaded");
            reports.push((f.display().to_string(), report));
        }
        let mut warn = WarningLists::new();
        for f in expand(warninglists)? {
            let doc: Value = serde_json::from_slice(
                &std::fs::read(&f).map_err(|e| format!("{}: {e}", f.display()))?,
            )
            .map_err(|e| format!("{}: {e}", f.display()))?;
            warn.add(&doc)
                .map_err(|e| format!("{}: {e}", f.display()))?;
        }
        let mut fields = Vec::new();
        let mut add = |names: &[&'static str], how: Looked| {
            for n in names {
                let lower = n.to_ascii_lowercase();
                if !fields
                    .iter()
                    .any(|(l, _, h): &(String, &str, Looked)| *l == lower && *h == how)
                {
                    fields.push((lower, *n, how));
                }
            }
        };
        add(
            fields_of("src_ip").unwrap_or_default(),
            Looked::Is(Kind::Ip),
        );
        add(
            fields_of("dst_ip").unwrap_or_default(),
            Looked::Is(Kind::Ip),
        );
        add(
            fields_of("domain").unwrap_or_default(),
            Looked::Is(Kind::Domain),
        );
        add(fields_of("hash").unwrap_or_default(), Looked::Hash);
        add(&["Hashes"], Looked::HashList);
        add(URL_FIELDS, Looked::Is(Kind::Url));
        add(EMAIL_FIELDS, Looked::Is(Kind::Email));
        Ok(Intel {
            set,
            warn,
            fields,
            reports,
        })
    }

    pub fn indicators(&self) -> usize {
        self.set.len()
    }

    pub fn memory_bytes(&self) -> usize {
        self.set.memory_bytes()
    }

    /// The detections `event` earns from the indicators.
    pub fn detect(&self, event: &Event, at: &dyn Fn() -> EventRef, out: &mut Vec<Found<EventRef>>) {
        if self.set.is_empty() {
            return;
        }
        let now = crate::state::now_ms();
        let mut seen: Vec<(Kind, String)> = Vec::new();
        let mut look = |kind: Kind, field: &str, value: &str, out: &mut Vec<Found<EventRef>>| {
            for hit in self.set.lookup_normal(kind, value, now) {
                if seen
                    .iter()
                    .any(|(k, v)| *k == kind && *v == hit.indicator.value)
                {
                    continue;
                }
                if self.warn.benign(kind, &hit.value).is_some() {
                    continue;
                }
                seen.push((kind, hit.indicator.value.clone()));
                out.push(found(event, field, &hit.value, hit.indicator, at()));
            }
        };
        // One binary search per field name (lower-cased once, at load); the event's own
        // text: addresses as written, names and hashes pre-lowered.
        for (lower, field, how) in &self.fields {
            let Some(EventValue::Str(t)) = event.get_lower(lower) else {
                continue;
            };
            match *how {
                Looked::Is(Kind::Ip) => look(Kind::Ip, field, t.as_str(), out),
                Looked::Is(kind @ (Kind::Url | Kind::Email)) => {
                    // URLs keep their path's case; only scheme and host are lowered.
                    if let Ok(n) = koban_intel::indicator::normalise(kind, t.as_str()) {
                        look(kind, field, &n, out);
                    }
                }
                Looked::Is(kind) => look(kind, field, t.lower(), out),
                Looked::Hash => {
                    if let Some(k) = hash_kind(t.lower()) {
                        look(k, field, t.lower(), out);
                    }
                }
                Looked::HashList => {
                    for part in t.lower().split(',') {
                        if let Some((_, v)) = part.split_once('=') {
                            if let Some(k) = hash_kind(v.trim()) {
                                look(k, field, v.trim(), out);
                            }
                        }
                    }
                }
            }
        }
    }
}

fn hash_kind(v: &str) -> Option<Kind> {
    match v.len() {
        32 => Some(Kind::Md5),
        40 => Some(Kind::Sha1),
        64 => Some(Kind::Sha256),
        _ => None,
    }
}

fn found(
    event: &Event,
    field: &str,
    value: &str,
    ind: &Indicator,
    at: EventRef,
) -> Found<EventRef> {
    let level = match ind.confidence {
        Some(c) if c >= 80 => Level::High,
        Some(c) if c < 50 => Level::Low,
        _ => Level::Medium,
    };
    let mut why = format!(
        "{field} = {value} is on {} ({} {})",
        ind.source,
        ind.kind.as_str(),
        ind.value
    );
    if !ind.context.is_empty() {
        why.push_str(&format!(": {}", ind.context));
    }
    if let Some(c) = ind.confidence {
        why.push_str(&format!("; confidence {c}"));
    }
    if let Some(t) = ind.tlp {
        why.push_str(&format!("; TLP {t:?}"));
    }
    Found {
        rule: RuleRef {
            key: format!("intel:{}:{}", ind.kind.as_str(), ind.value),
            title: format!("Threat intel: {} {}", ind.kind.as_str(), ind.value),
            level,
            tactics: Vec::new(),
            techniques: Vec::new(),
        },
        time: event.timestamp,
        entities: Entities::of(event),
        why,
        correlation: false,
        count: 1,
        evidence: vec![at],
    }
}

/// Files, and the files of folders (sorted).
fn expand(paths: &[PathBuf]) -> Result<Vec<PathBuf>, String> {
    let mut out = Vec::new();
    for p in paths {
        if p.is_dir() {
            let mut files: Vec<PathBuf> = std::fs::read_dir(p)
                .map_err(|e| format!("{}: {e}", p.display()))?
                .filter_map(|e| e.ok().map(|e| e.path()))
                .filter(|f| f.is_file())
                .collect();
            files.sort();
            out.extend(files);
        } else if p.is_file() {
            out.push(p.clone());
        } else {
            return Err(format!("{}: no such file or folder", p.display()));
        }
    }
    Ok(out)
}

/// One file by its content: STIX (a bundle or indicator JSON), MISP (an `Event`),
/// CSV (`.csv`), else one value per line.
fn read(
    path: &Path,
    text: &str,
    source: &str,
    out: &mut Vec<Indicator>,
    report: &mut ImportReport,
) -> Result<(), String> {
    let trimmed = text.trim_start();
    if trimmed.starts_with('{') || trimmed.starts_with('[') {
        let doc: Value =
            serde_json::from_str(text).map_err(|e| format!("{}: {e}", path.display()))?;
        if doc.get("Event").is_some() || doc.get("Attribute").is_some() {
            misp::import_event(&doc, source, out, report);
        } else {
            stix::import_bundle(&doc, source, out, report);
        }
        return Ok(());
    }
    if path
        .extension()
        .is_some_and(|e| e.eq_ignore_ascii_case("csv"))
    {
        return list::import_csv(text, None, None, source, out, report)
            .map_err(|e| format!("{}: {e}", path.display()));
    }
    list::import_lines(text, None, source, out, report);
    Ok(())
}
