//! Throughput of the streaming detection stage on one core: every Mordor event (and
//! the EVTX attack samples) through the whole SigmaHQ rule set plus Koban's own rules —
//! matching, explanations, entities, correlation windows — and the detections recorded
//! into a fresh `alerts.db` (folding, incidents, assessment) every 4096 events, as the
//! pipeline does.
//!
//!     cargo run --release -p koban-server --example detect_bench [-- PASSES [INDICATORS]]
//!
//! With INDICATORS, that many generated threat-intel indicators (addresses, /24
//! networks, domains, SHA-256 hashes; none of them in the events) are loaded and every
//! event is also looked up in them, as `[intel] files` does: run once with 0 and once
//! with 1000000 to see what the lookups cost, and the indicator set's memory.

use std::path::{Path, PathBuf};
use std::time::Instant;

use koban_server::alerts::{EventRef, Grouping};
use koban_server::{DetectStage, RuleSource};

fn shared() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared/data")
}

fn main() {
    let passes: usize = std::env::args()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(1);
    let indicators: usize = std::env::args()
        .nth(2)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    let data = shared();
    let load = Instant::now();
    let rules = match RuleSource::load(&[data.join("sigma/rules")]) {
        Ok(r) => r,
        Err(e) => {
            eprintln!("cannot load rules: {e}");
            std::process::exit(1);
        }
    };
    let loaded = load.elapsed();
    let reader = match koban_parse::Reader::new() {
        Ok(r) => r,
        Err(e) => {
            eprintln!("parsers: {e}");
            std::process::exit(1);
        }
    };
    let mut events = Vec::new();
    for dir in ["windows/mordor_json", "windows/evtx/evtx_attack_samples"] {
        for f in walkdir(&data.join(dir)) {
            reader.read_file(&f, &mut |r| events.push(r.event), &mut |_| {});
        }
    }
    if events.is_empty() {
        eprintln!("no shared data under {}", data.display());
        std::process::exit(1);
    }
    let dir = std::env::temp_dir().join(format!("koban-detect-bench-{}", std::process::id()));
    let _ = std::fs::create_dir_all(&dir);
    let mut stage =
        match DetectStage::open(&dir.join("alerts.db"), rules.clone(), Grouping::default()) {
            Ok(s) => s,
            Err(e) => {
                eprintln!("{e}");
                std::process::exit(1);
            }
        };
    if indicators > 0 {
        let feed = dir.join("indicators.txt");
        if let Err(e) = std::fs::write(&feed, generated(indicators)) {
            eprintln!("{}: {e}", feed.display());
            std::process::exit(1);
        }
        let t = Instant::now();
        match koban_server::intel::Intel::load(&[feed], &[]) {
            Ok(intel) => {
                println!(
                    "intel: {} indicators loaded in {:.1}s, {:.0} MiB in the indicator set",
                    intel.indicators(),
                    t.elapsed().as_secs_f64(),
                    intel.memory_bytes() as f64 / (1 << 20) as f64
                );
                stage = stage.with_intel(std::sync::Arc::new(intel));
            }
            Err(e) => {
                eprintln!("{e}");
                std::process::exit(1);
            }
        }
    }
    let start = Instant::now();
    let mut seq = 0u64;
    let mut detections = 0u64;
    for _ in 0..passes {
        for e in &events {
            seq += 1;
            let at = || EventRef {
                source: "mordor".into(),
                seq,
                sub: 0,
                received_ms: 0,
            };
            stage.detect("bench", e, seq, &at);
            if seq.is_multiple_of(4096) {
                match stage.commit(seq) {
                    Ok(r) => detections += r.detections,
                    Err(e) => {
                        eprintln!("{e}");
                        std::process::exit(1);
                    }
                }
            }
        }
    }
    match stage.commit(seq) {
        Ok(r) => detections += r.detections,
        Err(e) => {
            eprintln!("{e}");
            std::process::exit(1);
        }
    }
    let secs = start.elapsed().as_secs_f64();
    let summary = rules.summary.read().map(|s| s.clone()).unwrap_or_default();
    println!("rules: {summary} (loaded in {:.1}s)", loaded.as_secs_f64());
    println!(
        "streaming detection, one thread: {seq} events in {secs:.2}s = {:.0} events/s per core; {detections} detections recorded",
        seq as f64 / secs
    );
    let _ = std::fs::remove_dir_all(&dir);
}

/// `n` indicators, one per line: 40 % addresses and 10 % /24 networks in 100.64/10
/// (shared address space, not in the sample events), 25 % domains, 25 % SHA-256.
fn generated(n: usize) -> String {
    let mut out = String::with_capacity(n * 40);
    let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
    for i in 0..n {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        let line = match i % 20 {
            0..=7 => format!(
                "100.{}.{}.{}",
                64 + (x >> 8) % 64,
                (x >> 16) % 256,
                (x >> 24) % 256
            ),
            8 | 9 => format!("100.{}.{}.0/24", 64 + (x >> 8) % 64, (x >> 16) % 256),
            10..=14 => format!("h{x:x}.bench-intel.example"),
            _ => format!(
                "{x:016x}{:016x}{:016x}{:016x}",
                x.rotate_left(7),
                x.rotate_left(19),
                x.rotate_left(41)
            ),
        };
        out.push_str(&line);
        out.push('\n');
    }
    out
}

fn walkdir(dir: &Path) -> Vec<PathBuf> {
    walkdir::WalkDir::new(dir)
        .sort_by_file_name()
        .into_iter()
        .filter_map(Result::ok)
        .filter(|e| e.file_type().is_file())
        .map(walkdir::DirEntry::into_path)
        .collect()
}
