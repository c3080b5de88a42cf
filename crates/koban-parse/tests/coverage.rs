//! Coverage of the one-record entry points over the shared test data: every log line
//! of `multi/wazuh_rule_tests/*.ini` and every record under `linux_text/`, `linux/`,
//! `web/`, `network/` and `cloud/` goes through `parse_text` / `parse_json` /
//! `parse_json_value`. Prints per source (per .ini file, per folder) the records,
//! parsed, raw and raw share, the formats seen and samples of what stayed raw.
//! Fails if any record panics, or if a source of a supported format has raw records.
//! Skips when `../shared/data` is absent.

use std::collections::BTreeMap;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use koban_parse::{parse_json, parse_json_value, parse_text, Parsed, SourceHint};

#[derive(Default)]
struct Tally {
    records: usize,
    parsed: usize,
    panics: usize,
    formats: BTreeMap<&'static str, usize>,
    raw_samples: Vec<String>,
}

impl Tally {
    fn add(&mut self, result: std::thread::Result<Parsed>, record: &str) {
        self.records += 1;
        match result {
            Ok(p) => {
                *self.formats.entry(p.format).or_default() += 1;
                if p.parsed {
                    self.parsed += 1;
                } else if self.raw_samples.len() < 3 {
                    self.raw_samples.push(record.chars().take(140).collect());
                }
            }
            Err(_) => {
                self.panics += 1;
                eprintln!(
                    "PANIC on record: {}",
                    record.chars().take(300).collect::<String>()
                );
            }
        }
    }
}

fn data_dir() -> Option<PathBuf> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared/data");
    dir.is_dir().then_some(dir)
}

fn text(t: &mut Tally, line: &str, hint: &SourceHint) {
    let line = line.trim_end_matches(['\r', '\n']);
    if line.trim().is_empty() {
        return;
    }
    let r = std::panic::catch_unwind(|| {
        if line.trim_start().starts_with('{') {
            parse_json(line.as_bytes(), hint)
        } else {
            parse_text(line, hint)
        }
    });
    t.add(r, line);
}

/// Log lines of a wazuh-ruleset test file: `log N pass|fail = LINE` values and bare
/// lines; not the `rule =`, `alert =`, `decoder =` keys, sections or comments.
fn ini_lines(body: &str) -> Vec<&str> {
    let mut out = Vec::new();
    for line in body.lines() {
        let l = line.trim_end();
        if l.trim().is_empty() || l.starts_with([';', '#', '[']) {
            continue;
        }
        if let Some(rest) = l.strip_prefix("log ") {
            if let Some((_, value)) = rest.split_once(" = ") {
                out.push(value);
                continue;
            }
        }
        let key = l.split('=').next().unwrap_or_default().trim();
        if matches!(key, "rule" | "alert" | "decoder") {
            continue;
        }
        out.push(l);
    }
    out
}

/// Files that hold no log records (documentation, labels, signature lists).
fn not_logs(name: &str) -> bool {
    name.to_ascii_lowercase().ends_with(".md")
        || name == "LICENSE"
        || name.ends_with("-list.txt")
        || name == "labels.jsonl"
        || name == "event_counts.tsv"
        || name == "expected.jsonl"
}

fn feed_stream(t: &mut Tally, name: &str, body: &[u8]) {
    let hint = SourceHint::from_path(Path::new(name));
    let text_body = String::from_utf8_lossy(body);
    let first = text_body.trim_start().as_bytes().first().copied();
    if first == Some(b'[') {
        // A pretty-printed JSON array: one record per element.
        match serde_json::from_str::<serde_json::Value>(&text_body) {
            Ok(serde_json::Value::Array(items)) => {
                for item in items {
                    let shown = item.to_string();
                    let h = hint.clone();
                    let r = std::panic::catch_unwind(move || parse_json_value(item, &h));
                    t.add(r, &shown);
                }
                return;
            }
            _ => eprintln!("{name}: starts with [ but is not a JSON array; read as lines"),
        }
    }
    let mut hint = hint;
    let zeek_tsv = text_body.starts_with("#separator");
    for line in text_body.lines() {
        if let Some(directive) = line.strip_prefix('#').filter(|_| zeek_tsv) {
            // Zeek TSV directives announce the columns of the rows that follow;
            // they are not records.
            if let Some(cols) = directive.strip_prefix("fields\t") {
                let names: Vec<String> = cols.split('\t').map(str::to_owned).collect();
                hint.columns = Some(Arc::from(names));
            }
            continue;
        }
        text(t, line, &hint);
    }
}

fn feed_file(t: &mut Tally, path: &Path) {
    let name = path
        .file_name()
        .and_then(|n| n.to_str())
        .unwrap_or_default()
        .to_owned();
    let Ok(bytes) = std::fs::read(path) else {
        eprintln!("cannot read {}", path.display());
        return;
    };
    if name.ends_with(".gz") {
        let mut out = Vec::new();
        if flate2::read::MultiGzDecoder::new(&bytes[..])
            .read_to_end(&mut out)
            .is_ok()
        {
            feed_stream(t, name.trim_end_matches(".gz"), &out);
        }
    } else if name.ends_with(".zip") {
        let Ok(mut archive) = zip::ZipArchive::new(std::io::Cursor::new(bytes)) else {
            return;
        };
        for i in 0..archive.len() {
            let Ok(mut member) = archive.by_index(i) else {
                continue;
            };
            let member_name = member.name().to_owned();
            let mut out = Vec::new();
            if member.is_file() && member.read_to_end(&mut out).is_ok() {
                feed_stream(t, &member_name, &out);
            }
        }
    } else if name.ends_with(".ini") {
        let body = String::from_utf8_lossy(&bytes);
        let hint = SourceHint::default();
        for line in ini_lines(&body) {
            text(t, line, &hint);
        }
    } else {
        feed_stream(t, &name, &bytes);
    }
}

fn walk(dir: &Path, out: &mut Vec<PathBuf>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    let mut paths: Vec<PathBuf> = entries.filter_map(|e| e.ok().map(|e| e.path())).collect();
    paths.sort();
    for p in paths {
        if p.is_dir() {
            walk(&p, out);
        } else {
            out.push(p);
        }
    }
}

/// Sources whose every record is of a supported format: none may stay raw.
const NO_RAW: &[&str] = &[
    "multi/wazuh_rule_tests/sshd.ini",
    "multi/wazuh_rule_tests/sudo.ini",
    "multi/wazuh_rule_tests/su.ini",
    "multi/wazuh_rule_tests/pam.ini",
    "multi/wazuh_rule_tests/paloalto.ini",
    "multi/wazuh_rule_tests/cisco_asa.ini",
    "multi/wazuh_rule_tests/panda_paps.ini",
    "multi/wazuh_rule_tests/nginx.ini",
    "multi/wazuh_rule_tests/apache.ini",
    "multi/wazuh_rule_tests/SonicWall.ini",
    "multi/wazuh_rule_tests/web_appsec.ini",
    "multi/wazuh_rule_tests/owlh.ini",
    "multi/wazuh_rule_tests/checkpoint_smart1.ini",
    "linux_text/loghub/OpenSSH_2k.log",
    "linux_text/loghub/Linux_2k.log",
    "linux_text/loghub/Apache_2k.log",
    "linux_text/auditd/ait_lds_v2_Audit_2k.log",
    "linux_text/auditd/izysec/UC001.log",
    "linux_text/auditd/izysec/UC001_enriched.log",
    "linux_text/auditd/izysec/userauth_ssh_failure_secure.log",
    "linux/mordor_linux/discovery/host",
    "linux/mordor_linux/defense_evasion/host",
    "web/apache_scanner_logs",
    "cloud/panther_cloudtrail",
];

/// Why records of a source stay raw: formats outside the supported list.
const RAW_WHY: &[(&str, &str)] = &[
    (
        "Proxifier_2k.log",
        "Proxifier client log: not a supported format",
    ),
    (
        "Windows_2k.log",
        "Windows CBS/CSI text log (not the event log): not a supported format",
    ),
    (
        "izysec/UC0",
        "ausearch output: `----` separators, `time->` lines and shell prompts are not records",
    ),
    ("cpanel.ini", "cPanel access log: not a supported format"),
    (
        "exim.ini",
        "Exim main log (no syslog header): not a supported format",
    ),
    (
        "oscap.ini",
        "bare `oscap:` lines without a syslog header: not a supported format",
    ),
    (
        "ossec.ini",
        "OSSEC active-response log: not a supported format",
    ),
    (
        "squid_rules.ini",
        "Squid native access log: not a supported format",
    ),
    (
        "vsftpd.ini",
        "vsftpd's own log (no syslog header): not a supported format",
    ),
    (
        "web_rules.ini",
        "IIS W3C extended log lines: not a supported format",
    ),
];

#[test]
fn every_record_parses_without_panic() {
    let Some(data) = data_dir() else {
        eprintln!("skipped: ../shared/data is absent");
        return;
    };
    // Silence the default hook: panics are counted and printed by the tally.
    std::panic::set_hook(Box::new(|_| {}));
    let mut sources: BTreeMap<String, Tally> = BTreeMap::new();
    let mut skipped = Vec::new();
    for top in [
        "multi/wazuh_rule_tests",
        "linux_text",
        "linux",
        "web",
        "network",
        "cloud",
    ] {
        let mut files = Vec::new();
        walk(&data.join(top), &mut files);
        for f in files {
            let rel = f
                .strip_prefix(&data)
                .unwrap_or(&f)
                .to_string_lossy()
                .into_owned();
            let name = f.file_name().and_then(|n| n.to_str()).unwrap_or_default();
            if not_logs(name) {
                skipped.push(rel);
                continue;
            }
            // linux_text folders mix formats: one source per file there.
            let source = if rel.ends_with(".ini") || rel.starts_with("linux_text") {
                rel.clone()
            } else {
                Path::new(&rel)
                    .parent()
                    .map(|p| p.to_string_lossy().into_owned())
                    .unwrap_or_default()
            };
            feed_file(sources.entry(source).or_default(), &f);
        }
    }
    let _ = std::panic::take_hook();
    println!(
        "{:<58} {:>8} {:>8} {:>6} {:>7}  formats",
        "source", "records", "parsed", "raw", "raw %"
    );
    let (mut total, mut parsed, mut panics) = (0, 0, 0);
    let mut must_fix = Vec::new();
    for (name, t) in &sources {
        let raw = t.records - t.parsed - t.panics;
        let share = if t.records == 0 {
            0.0
        } else {
            100.0 * raw as f64 / t.records as f64
        };
        let formats: Vec<String> = t.formats.iter().map(|(f, n)| format!("{f}:{n}")).collect();
        println!(
            "{name:<58} {:>8} {:>8} {raw:>6} {share:>6.1}%  {}",
            t.records,
            t.parsed,
            formats.join(" ")
        );
        if raw > 0 {
            if let Some((_, why)) = RAW_WHY.iter().find(|(k, _)| name.contains(k)) {
                println!("    why: {why}");
            }
        }
        for s in &t.raw_samples {
            println!("    raw: {s}");
        }
        if raw > 0 && NO_RAW.contains(&name.as_str()) {
            must_fix.push(name.clone());
        }
        total += t.records;
        parsed += t.parsed;
        panics += t.panics;
    }
    println!(
        "total: {total} records, {parsed} parsed, {} raw ({:.2}%), {panics} panics; skipped (not logs): {}",
        total - parsed - panics,
        100.0 * (total - parsed - panics) as f64 / total.max(1) as f64,
        skipped.join(", ")
    );
    assert_eq!(panics, 0, "records panicked");
    assert!(
        must_fix.is_empty(),
        "sources of supported formats with raw records: {must_fix:?}"
    );
}
