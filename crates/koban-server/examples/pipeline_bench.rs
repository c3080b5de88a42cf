//! The store pipeline alone, without sockets or the WAL: WAL records handed to
//! `StorePipeline::apply` in batches of 4096, as the pipeline thread does, parsed,
//! stored (tantivy, commit every second) and run through Koban's own rules. Prints
//! lines/s and the CPU it took — the pipeline thread's and the whole process's —
//! because on a shared machine CPU per line compares better than wall time.
//!
//!     cargo run --release -p koban-server --example pipeline_bench -- [syslog|ndjson] [LINES] [detect|nodetect] [COMMIT_MS]
//!
//! COMMIT_MS (default 1000, as the server) is how often the pipeline commits. Under
//! callgrind, which runs ~50 times slower, a second of wall time is a few thousand
//! lines, so commits and merges would count far more than in the server: pass a large
//! value there (one commit at the end) for the cost per line.
//!
//! syslog: the loghub OpenSSH/Linux/Apache lines of bench/ingest.sh with `<38>`;
//! ndjson: the Suricata eve.json alerts. Read from ../shared/data.

use std::path::{Path, PathBuf};
use std::time::Instant;

use koban_server::alerts::Grouping;
use koban_server::{
    DetectStage, Pipeline, Record, RecordKind, RuleSource, StorePipeline, WalRecord,
};
use koban_store::StoreOptions;

const BATCH: usize = 4096;

/// The allocator of the `koban` binary, so the figures are the server's.
#[global_allocator]
static ALLOC: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let mode = args.get(1).map_or("syslog", String::as_str).to_owned();
    let total: usize = args.get(2).and_then(|s| s.parse().ok()).unwrap_or(300_000);
    let detect = args.get(3).map_or("detect", String::as_str) != "nodetect";
    let commit_ms: u64 = args.get(4).and_then(|s| s.parse().ok()).unwrap_or(1000);
    let data = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared/data");
    let (kind, lines) = match mode.as_str() {
        "ndjson" => (RecordKind::NdjsonLine, suricata(&data)),
        _ => (RecordKind::Syslog, loghub(&data)),
    };
    if lines.is_empty() {
        eprintln!("no shared data under {}", data.display());
        std::process::exit(1);
    }
    let dir = std::env::temp_dir().join(format!("koban-pipeline-bench-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    // KOBAN_BENCH_WRITER_THREADS: tantivy indexing threads (the server's default else).
    let mut options = StoreOptions::default();
    if let Some(n) = std::env::var("KOBAN_BENCH_WRITER_THREADS")
        .ok()
        .and_then(|v| v.parse().ok())
    {
        options.writer_threads = n;
    }
    let mut pipeline = match StorePipeline::open(&dir.join("events"), options) {
        Ok(p) => p,
        Err(e) => fail(&e.to_string()),
    };
    pipeline = pipeline.with_commit_every(std::time::Duration::from_millis(commit_ms));
    if detect {
        let rules = RuleSource::load(&[]).unwrap_or_else(|e| fail(&e));
        let stage = DetectStage::open(&dir.join("alerts.db"), rules, Grouping::default())
            .unwrap_or_else(|e| fail(&e.to_string()));
        pipeline = pipeline.with_detection(stage);
    }
    // Records are made before the clock starts: the WAL reader's work is not measured.
    let received_ms = 1_767_225_600_000i64;
    let batches: Vec<Vec<WalRecord>> = (0..total)
        .collect::<Vec<_>>()
        .chunks(BATCH)
        .map(|c| {
            c.iter()
                .map(|&i| WalRecord {
                    seq: i as u64 + 1,
                    record: Record {
                        tenant: "default".into(),
                        source: "syslog-tcp".into(),
                        kind,
                        received_ms: received_ms + i as i64 / 100,
                        remote: None,
                        payload: lines[i % lines.len()].clone(),
                    },
                })
                .collect()
        })
        .collect();
    let cpu0 = (
        cpu_secs("/proc/thread-self/stat"),
        cpu_secs("/proc/self/stat"),
    );
    let start = Instant::now();
    for b in &batches {
        if let Err(e) = pipeline.apply(b) {
            fail(&e.to_string());
        }
    }
    if let Err(e) = pipeline.idle() {
        fail(&e.to_string());
    }
    let secs = start.elapsed().as_secs_f64();
    let main_cpu = cpu_secs("/proc/thread-self/stat") - cpu0.0;
    let all_cpu = cpu_secs("/proc/self/stat") - cpu0.1;
    println!(
        "{mode} (detection {}): {total} lines in {secs:.2}s = {:.0} lines/s; CPU: pipeline thread {:.2} µs/line, whole process {:.2} µs/line; peak RSS {}",
        if detect { "on" } else { "off" },
        total as f64 / secs,
        main_cpu * 1e6 / total as f64,
        all_cpu * 1e6 / total as f64,
        vm_hwm()
    );
    drop(pipeline);
    let _ = std::fs::remove_dir_all(&dir);
}

fn fail(msg: &str) -> ! {
    eprintln!("{msg}");
    std::process::exit(1)
}

fn loghub(data: &Path) -> Vec<Vec<u8>> {
    let mut out = Vec::new();
    for f in ["OpenSSH_2k.log", "Linux_2k.log", "Apache_2k.log"] {
        let p: PathBuf = data.join("linux_text/loghub").join(f);
        let Ok(bytes) = std::fs::read(&p) else {
            continue;
        };
        for l in String::from_utf8_lossy(&bytes).lines() {
            if !l.trim().is_empty() {
                out.push(format!("<38>{}", l.trim_end()).into_bytes());
            }
        }
    }
    out
}

fn suricata(data: &Path) -> Vec<Vec<u8>> {
    let p = data.join("network/suricata/wrccdc-2018/alerts-only.json");
    let Ok(bytes) = std::fs::read(&p) else {
        return Vec::new();
    };
    let Ok(serde_json::Value::Array(docs)) = serde_json::from_slice(&bytes) else {
        return Vec::new();
    };
    docs.iter().map(|d| d.to_string().into_bytes()).collect()
}

/// utime + stime of a /proc stat file, in seconds (fields 14 and 15, after the
/// parenthesised command name).
fn cpu_secs(path: &str) -> f64 {
    let Ok(s) = std::fs::read_to_string(path) else {
        return 0.0;
    };
    let Some(after) = s.rsplit_once(')').map(|(_, a)| a) else {
        return 0.0;
    };
    let f: Vec<&str> = after.split_whitespace().collect();
    let ticks = |i: usize| f.get(i).and_then(|v| v.parse::<f64>().ok()).unwrap_or(0.0);
    // Field 14 is the 12th after the name (state is the 3rd field overall).
    (ticks(11) + ticks(12)) / 100.0
}

fn vm_hwm() -> String {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmHWM:"))
                .map(|l| l.trim_start_matches("VmHWM:").trim().to_string())
        })
        .unwrap_or_default()
}
