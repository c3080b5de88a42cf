//! Per-record cost of the ingest entry points on real lines from the shared data: a
//! syslog mix (sshd, PAM, kernel, cron, sudo and appliance lines, as a syslog
//! listener receives them), Apache access lines, auditd records, and JSON documents
//! (Suricata, CloudTrail, Zeek). Prints lines per second per mix. Skips when the
//! shared data is absent.

use std::path::{Path, PathBuf};
use std::time::Instant;

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use koban_parse::{parse_json, parse_text, SourceHint};

fn shared() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared/data")
}

fn lines(rel: &str) -> Vec<String> {
    std::fs::read_to_string(shared().join(rel))
        .unwrap_or_default()
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(str::to_owned)
        .collect()
}

/// Log lines of the wazuh-ruleset test files (`log N pass = LINE`).
fn ini_lines() -> Vec<String> {
    let mut out = Vec::new();
    let Ok(dir) = std::fs::read_dir(shared().join("multi/wazuh_rule_tests")) else {
        return out;
    };
    let mut files: Vec<PathBuf> = dir.filter_map(|e| e.ok().map(|e| e.path())).collect();
    files.sort();
    for f in files {
        let body = std::fs::read_to_string(&f).unwrap_or_default();
        for l in body.lines() {
            if let Some((_, v)) = l.strip_prefix("log ").and_then(|r| r.split_once(" = ")) {
                out.push(v.to_owned());
            }
        }
    }
    out
}

fn parse(record: &str, json: bool, hint: &SourceHint) -> usize {
    let p = if json {
        parse_json(record.as_bytes(), hint)
    } else {
        parse_text(record, hint)
    };
    p.event.len()
}

/// A plain timed loop, so the figure is printed as lines per second.
fn report(name: &str, records: &[String], json: bool) {
    let hint = SourceHint::default();
    let start = Instant::now();
    let (mut n, mut fields) = (0usize, 0usize);
    while start.elapsed().as_millis() < 1500 {
        for r in records {
            fields += parse(r, json, &hint);
            n += 1;
        }
    }
    let secs = start.elapsed().as_secs_f64();
    println!(
        "ingest {name}: {:.0} lines/s on one core ({:.2} µs/line, {:.1} fields/event, {} distinct lines)",
        n as f64 / secs,
        secs * 1e6 / n as f64,
        fields as f64 / n as f64,
        records.len()
    );
}

fn bench(c: &mut Criterion) {
    if !shared().is_dir() {
        eprintln!("shared data not found; ingest bench skipped");
        return;
    }
    let mut syslog = Vec::new();
    syslog.extend(lines("linux_text/loghub/OpenSSH_2k.log"));
    syslog.extend(lines("linux_text/loghub/Linux_2k.log"));
    syslog.extend(ini_lines());
    let web = lines("web/apache_scanner_logs/w3af.txt");
    let audit = lines("linux_text/auditd/ait_lds_v2_Audit_2k.log");
    let mut json = lines("network/suricata/wrccdc-2018/eve-alerts.ndjson");
    json.extend(lines("cloud/panther_cloudtrail/cloudtrail_records.ndjson"));
    json.extend(lines("network/zeek/otrf_apt29_day1/SCRANTON_conn.log"));
    let mixes: [(&str, &Vec<String>, bool); 4] = [
        ("syslog", &syslog, false),
        ("apache_access", &web, false),
        ("auditd", &audit, false),
        ("json", &json, true),
    ];
    for (name, records, is_json) in mixes {
        if !records.is_empty() {
            report(name, records, is_json);
        }
    }
    let mut group = c.benchmark_group("ingest");
    let hint = SourceHint::default();
    for (name, records, is_json) in mixes {
        if records.is_empty() {
            continue;
        }
        group.throughput(Throughput::Elements(records.len() as u64));
        group.bench_function(format!("{name} x {}", records.len()), |b| {
            b.iter(|| {
                records
                    .iter()
                    .map(|r| parse(r, is_json, &hint))
                    .sum::<usize>()
            })
        });
    }
    group.finish();
}

criterion_group! {
    name = benches;
    config = Criterion::default().sample_size(10).measurement_time(std::time::Duration::from_secs(3));
    targets = bench
}
criterion_main!(benches);
