//! Ingest and query benchmark of the event store on real Windows events.
//!
//!     cargo run --release -p koban-store --example store_bench -- [COPIES] [THREADS] [BUDGET_MB]
//!
//! Reads ../shared/data/windows/mordor_json (≈418k events, parsed once, before the
//! clock starts), writes them COPIES times (new WAL seqs each time) in batches of
//! 1,000 with a commit about every second, then times a needle search, a count_by
//! host over everything and a 24 h timeline of one host. One event per WAL record.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use koban_event::{Event, Value};
use koban_store::{EventStore, FieldFilter, SearchRequest, StoreOptions, StoredEvent};

const NEEDLE: &str = "kobanneedle7f3a";

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().collect();
    let arg = |i: usize, default: usize| -> usize {
        args.get(i).and_then(|a| a.parse().ok()).unwrap_or(default)
    };
    let copies = arg(1, 1) as u64;
    let threads = arg(2, 2);
    let budget_mb = arg(3, 256);

    let data =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared/data/windows/mordor_json");
    let mut events = load(&data)?;
    // KOBAN_BENCH_EVENTS caps the events used, for quick experiments.
    if let Some(n) = std::env::var("KOBAN_BENCH_EVENTS")
        .ok()
        .and_then(|v| v.parse().ok())
    {
        events.truncate(n);
    }
    let fields: usize = events.iter().map(Event::len).sum();
    let bytes: usize = events
        .iter()
        .filter_map(|e| e.original.as_deref())
        .map(str::len)
        .sum();
    println!(
        "average event: {:.0} fields, {:.0} bytes of original record",
        fields as f64 / events.len() as f64,
        bytes as f64 / events.len() as f64
    );
    // One rare value, in the middle: the needle both as a field and as a word.
    let mid = events.len() / 2;
    let mut needle = events[mid].clone();
    needle.insert("needle", Value::from(NEEDLE));
    let original = needle.original.as_deref().unwrap_or_default().to_owned();
    needle.original = Some(format!("{original} {NEEDLE}").into());
    events[mid] = needle;
    println!(
        "loaded {} events from {} (RSS with them in memory: {})",
        events.len(),
        data.display(),
        vm("VmRSS:")
    );

    // The store shares each event with its caller (the pipeline's detection stage).
    let events: Vec<Arc<Event>> = events.into_iter().map(Arc::new).collect();

    let dir = tempdir()?;
    let opts = StoreOptions {
        writer_threads: threads,
        writer_memory_bytes: budget_mb << 20,
        ..StoreOptions::default()
    };
    println!("options: {opts:?}");
    let mut store = EventStore::open(&dir, opts)?;

    // Receive times: a synthetic clock giving each receive day 5M events, as a busy
    // tenant would; event times are the datasets' own.
    let base_ms = 1_767_225_600_000i64; // 2026-01-01
    let per_event_ms = 86_400_000 / 5_000_000;
    let start = Instant::now();
    let mut last_commit = Instant::now();
    let mut seq = 0u64;
    let mut commits = 0;
    let (mut write_secs, mut commit_secs) = (0.0, 0.0);
    for _ in 0..copies {
        for chunk in events.chunks(1000) {
            let batch: Vec<StoredEvent<'_>> = chunk
                .iter()
                .map(|event| {
                    seq += 1;
                    StoredEvent {
                        tenant: "bench",
                        source: "bench",
                        seq,
                        sub: 0,
                        received_ms: base_ms + seq as i64 * per_event_ms.max(1),
                        format: "windows",
                        parsed: true,
                        event,
                    }
                })
                .collect();
            let t = Instant::now();
            store.write(&batch)?;
            write_secs += t.elapsed().as_secs_f64();
            if last_commit.elapsed() >= Duration::from_secs(1) {
                let t = Instant::now();
                store.commit(seq)?;
                commit_secs += t.elapsed().as_secs_f64();
                commits += 1;
                last_commit = Instant::now();
            }
        }
    }
    store.commit(seq)?;
    commits += 1;
    let secs = start.elapsed().as_secs_f64();
    let stats = store.stats();
    println!(
        "indexed {seq} events in {secs:.1} s: {:.0} events/s ({commits} commits)",
        seq as f64 / secs
    );
    println!("time in write: {write_secs:.1} s, in commit: {commit_secs:.1} s");
    println!(
        "on disk: {:.1} MiB in {} partitions, {:.0} MiB per million events",
        stats.bytes as f64 / 1048576.0,
        stats.tenants.get("bench").map_or(0, |t| t.partitions.len()),
        stats.bytes as f64 / 1048576.0 / (stats.docs as f64 / 1e6)
    );

    let mut req = SearchRequest::new("bench");
    req.filters.push(FieldFilter::eq("needle", NEEDLE));
    let (res, t) = timed(|| store.search(&req))?;
    println!("needle field search: {} hits in {t:.1} ms", res.total);
    let mut req = SearchRequest::new("bench");
    req.text = Some(NEEDLE.into());
    let (res, t) = timed(|| store.search(&req))?;
    println!("needle free-text search: {} hits in {t:.1} ms", res.total);

    let mut all = SearchRequest::new("bench");
    all.limit = 0;
    let (hosts, t) = timed(|| store.count_by(&all, "Computer"))?;
    println!(
        "count_by Computer over everything: {} hosts in {t:.1} ms, top {:?}",
        hosts.len(),
        hosts.iter().take(3).collect::<Vec<_>>()
    );

    if let Some((host, _)) = hosts.first() {
        let mut newest = SearchRequest::new("bench");
        newest.filters.push(FieldFilter::eq("Computer", host));
        newest.limit = 1;
        let last = store
            .search(&newest)?
            .hits
            .first()
            .map(|h| h.time_ms)
            .unwrap_or(0);
        let mut day = SearchRequest::new("bench");
        day.filters.push(FieldFilter::eq("Computer", host));
        day.from_ms = Some(last - 86_400_000);
        day.to_ms = Some(last + 1);
        day.limit = 100;
        let (res, t) = timed(|| store.search(&day))?;
        println!(
            "24 h timeline of {host}: {} events, newest 100 returned, in {t:.1} ms",
            res.total
        );
    }
    println!("peak RSS: {}", vm("VmHWM:"));
    println!("bytes by index file kind: {:?}", by_extension(&dir));
    drop(store);
    std::fs::remove_dir_all(&dir)?;
    Ok(())
}

fn load(dir: &Path) -> Result<Vec<Event>, Box<dyn std::error::Error>> {
    let reader = koban_parse::Reader::new()?;
    let mut files = Vec::new();
    collect(dir, &mut files)?;
    files.sort();
    let mut events = Vec::new();
    let mut errors = 0;
    for f in files {
        reader.read_file(&f, &mut |r| events.push(r.event), &mut |_| errors += 1);
    }
    if errors > 0 {
        eprintln!("{errors} records or files could not be read");
    }
    Ok(events)
}

fn collect(dir: &Path, out: &mut Vec<PathBuf>) -> std::io::Result<()> {
    for entry in std::fs::read_dir(dir)? {
        let path = entry?.path();
        if path.is_dir() {
            collect(&path, out)?;
        } else if path.extension().is_some_and(|e| e == "zip") {
            out.push(path);
        }
    }
    Ok(())
}

fn tempdir() -> std::io::Result<PathBuf> {
    let dir = std::env::temp_dir().join(format!("koban-store-bench-{}", std::process::id()));
    std::fs::create_dir_all(&dir)?;
    Ok(dir)
}

fn timed<T, E>(f: impl FnOnce() -> Result<T, E>) -> Result<(T, f64), E> {
    let start = Instant::now();
    let out = f()?;
    Ok((out, start.elapsed().as_secs_f64() * 1000.0))
}

/// A line of /proc/self/status (`VmHWM:` is the peak resident set).
fn vm(key: &str) -> String {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with(key))
                .map(|l| l.trim_start_matches(key).trim().to_owned())
        })
        .unwrap_or_else(|| "unknown".into())
}

/// Disk use per tantivy file kind (.store, .term, .idx, .fast…): where the bytes go.
fn by_extension(dir: &Path) -> Vec<(String, u64)> {
    let mut sizes = std::collections::BTreeMap::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for entry in std::fs::read_dir(&d).into_iter().flatten().flatten() {
            let path = entry.path();
            if path.is_dir() {
                stack.push(path);
            } else if let Some(ext) = path.extension().and_then(|e| e.to_str()) {
                *sizes.entry(ext.to_owned()).or_insert(0u64) +=
                    entry.metadata().map_or(0, |m| m.len());
            }
        }
    }
    sizes.into_iter().collect()
}
