//! Hunting over a large store: loads the Mordor JSON and EVTX attack samples into an
//! embedded event store, replicated with shifted timestamps and host names until it
//! holds EVENTS events, then times the hunting questions an analyst asks of it.
//!
//!   cargo run --release -p koban-server --example hunt_bench -- SHARED_DATA STORE_DIR EVENTS [RUNS]
//!
//! Replica `r` of every event is received on day `r` after 2026-01-01 (its own
//! partition), its event time moved `r` days later and its host renamed `HOST-r<r>`.
//! One needle event (`TargetUserName=needle.user.<EVENTS>`) sits in the middle. A
//! store already loaded to EVENTS is reused. Prints, per question, the best and the
//! median of RUNS runs (default 5), and the store's size on disk per million events.

use std::path::{Path, PathBuf};
use std::time::Instant;

use koban_event::{Event, Value};
use koban_parse::Reader;
use koban_server::hunt::{exec, timeline, HuntRequest, Output};
use koban_store::{EventStore, StoreOptions, StoredEvent};

const DAY: i64 = 86_400_000;
/// 2026-01-01T00:00:00Z
const T0: i64 = 1_767_225_600_000;
const TENANT: &str = "bench";
/// One timed question: runs and says what it found.
type Question<'a> = Box<dyn Fn() -> Result<String, Box<dyn std::error::Error>> + 'a>;

const HOST_FIELDS: &[&str] = &["Computer", "Hostname", "host.name", "ComputerName"];

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().collect();
    if args.len() < 4 {
        eprintln!("usage: hunt_bench SHARED_DATA STORE_DIR EVENTS [RUNS]");
        std::process::exit(2);
    }
    let data = PathBuf::from(&args[1]);
    let dir = PathBuf::from(&args[2]);
    let want: u64 = args[3].parse()?;
    let runs: usize = args.get(4).map(|s| s.parse()).transpose()?.unwrap_or(5);
    let needle = format!("needle.user.{want}");

    let mut store = EventStore::open(&dir, StoreOptions::default())?;
    let have = store.applied_seq();
    let base = if have < want {
        let base = read_base(&data)?;
        println!("base: {} events read from {}", base.len(), data.display());
        load(&mut store, &base, have, want, &needle)?;
        base
    } else {
        println!("store: {have} events already loaded, reused");
        Vec::new()
    };
    drop(base);
    let searcher = store.searcher();
    let bytes = dir_size(&dir);
    let events = store.applied_seq();
    println!(
        "store: {events} events, {:.2} GiB on disk, {:.1} MiB per million events",
        bytes as f64 / (1u64 << 30) as f64,
        bytes as f64 / (1u64 << 20) as f64 / (events as f64 / 1e6)
    );

    // A host of the middle replica, and the day its events start.
    let mid = (events / 2) / 1000 * 1000;
    let probe = hunt(&searcher, &format!("@seq={mid}"))?;
    let host = probe
        .first()
        .and_then(host_of)
        .ok_or("no host on the middle event")?;
    let day_start = probe
        .first()
        .and_then(|e| e["time"].as_str())
        .and_then(koban_event::parse_timestamp)
        .ok_or("no time on the middle event")?
        .div_euclid(DAY)
        * DAY;

    let questions: Vec<(&str, Question<'_>)> = vec![
        (
            "needle (rare value, all time)",
            Box::new(|| {
                let hits = hunt(&searcher, &format!("TargetUserName={needle}"))?;
                Ok(format!("{} hit(s)", hits.len()))
            }),
        ),
        (
            "stats count() by Computer (everything)",
            Box::new(|| {
                let rows = table(&searcher, "| stats count() by Computer")?;
                Ok(format!("{rows} hosts"))
            }),
        ),
        (
            "24 h timeline of one host",
            Box::new(|| {
                let (total, events) = timeline::events(
                    &searcher,
                    TENANT,
                    "host",
                    &host,
                    Some(day_start),
                    Some(day_start + DAY),
                    timeline::MAX_ENTRIES,
                )?;
                Ok(format!("{host}: {} of {total} events", events.len()))
            }),
        ),
        (
            "EventID=4688 | top 10 NewProcessName",
            Box::new(|| {
                let rows = table(&searcher, "EventID=4688 | top 10 NewProcessName")?;
                Ok(format!("{rows} rows"))
            }),
        ),
        (
            "timechart span=1d count() (everything)",
            Box::new(|| {
                let rows = table(&searcher, "| timechart span=1d count()")?;
                Ok(format!("{rows} days"))
            }),
        ),
    ];
    for (name, q) in &questions {
        let mut times = Vec::new();
        let mut what = String::new();
        for _ in 0..runs {
            let t = Instant::now();
            what = q()?;
            times.push(t.elapsed().as_secs_f64() * 1000.0);
        }
        times.sort_by(|a, b| a.total_cmp(b));
        println!(
            "query {name}: best {:.1} ms, median {:.1} ms ({what})",
            times[0],
            times[times.len() / 2]
        );
    }
    Ok(())
}

/// Every event of the Mordor JSON archives and the EVTX samples.
fn read_base(data: &Path) -> Result<Vec<Event>, Box<dyn std::error::Error>> {
    let reader = Reader::new()?;
    let mut out = Vec::new();
    for folder in ["windows/mordor_json", "windows/evtx"] {
        for entry in walkdir::WalkDir::new(data.join(folder)).sort_by_file_name() {
            let entry = entry?;
            let p = entry.path();
            let ext = p.extension().and_then(|e| e.to_str()).unwrap_or_default();
            if !entry.file_type().is_file() || !matches!(ext, "zip" | "evtx" | "json") {
                continue;
            }
            reader.read_file(p, &mut |r| out.push(r.event), &mut |_| {});
        }
    }
    Ok(out)
}

/// Writes replicas until the store holds `want` events (seq = event number, 1-based).
fn load(
    store: &mut EventStore,
    base: &[Event],
    have: u64,
    want: u64,
    needle: &str,
) -> Result<(), Box<dyn std::error::Error>> {
    let started = Instant::now();
    let mut batch: Vec<(u64, i64, std::sync::Arc<Event>)> = Vec::with_capacity(10_000);
    let mut seq = have;
    while seq < want {
        let r = seq / base.len() as u64;
        let event = replica(&base[(seq % base.len() as u64) as usize], r);
        seq += 1;
        let event = if seq == want / 2 {
            let e = event;
            let mut fields: Vec<(String, Value)> = e
                .fields()
                .iter()
                .filter(|f| !f.name.eq_ignore_ascii_case("TargetUserName"))
                .map(|f| (f.name.to_string(), f.value.clone()))
                .collect();
            fields.push(("TargetUserName".into(), Value::from(needle)));
            let mut n = Event::from_fields(fields);
            n.timestamp = e.timestamp;
            n.logsource = e.logsource.clone();
            n
        } else {
            event
        };
        batch.push((seq, T0 + r as i64 * DAY + 1, std::sync::Arc::new(event)));
        if batch.len() == batch.capacity() || seq == want {
            let stored: Vec<StoredEvent<'_>> = batch
                .iter()
                .map(|(s, received, e)| StoredEvent {
                    tenant: TENANT,
                    source: "bench",
                    seq: *s,
                    sub: 0,
                    received_ms: *received,
                    format: "windows",
                    parsed: true,
                    event: e,
                })
                .collect();
            store.write(&stored)?;
            drop(stored);
            batch.clear();
            if seq.is_multiple_of(200_000) || seq == want {
                store.commit(seq)?;
                let secs = started.elapsed().as_secs_f64();
                eprintln!(
                    "loaded {seq} events ({:.0} events/s)",
                    (seq - have) as f64 / secs
                );
            }
        }
    }
    let secs = started.elapsed().as_secs_f64();
    println!(
        "load: {} events in {secs:.0} s ({:.0} events/s)",
        want - have,
        (want - have) as f64 / secs
    );
    Ok(())
}

/// Replica `r` of an event: `r` days later, its host renamed.
fn replica(e: &Event, r: u64) -> Event {
    let fields: Vec<(String, Value)> = e
        .fields()
        .iter()
        .map(|f| {
            let host = HOST_FIELDS.iter().any(|h| f.name.eq_ignore_ascii_case(h));
            let value = match (&f.value, host) {
                (Value::Str(s), true) => Value::from(format!("{}-r{r}", s.as_str())),
                (v, _) => v.clone(),
            };
            (f.name.to_string(), value)
        })
        .collect();
    let mut n = Event::from_fields(fields);
    n.timestamp = e.timestamp.map(|t| t + r as i64 * DAY);
    n.logsource = e.logsource.clone();
    n
}

fn request(query: &str) -> Result<HuntRequest, Box<dyn std::error::Error>> {
    let q = koban_hunt::parse(query).map_err(|e| format!("{e}\n{}", e.caret(query)))?;
    Ok(HuntRequest {
        tenant: TENANT.into(),
        query: q,
        from_ms: None,
        to_ms: None,
        now_ms: T0,
    })
}

fn hunt(
    searcher: &koban_store::StoreSearcher,
    query: &str,
) -> Result<Vec<serde_json::Value>, Box<dyn std::error::Error>> {
    let mut events = Vec::new();
    exec::run(searcher, &request(query)?, &mut |o| {
        if let Output::Events(e) = o {
            events.extend(e);
        }
    })?;
    Ok(events)
}

fn table(
    searcher: &koban_store::StoreSearcher,
    query: &str,
) -> Result<usize, Box<dyn std::error::Error>> {
    let mut rows = 0;
    exec::run(searcher, &request(query)?, &mut |o| {
        if let Output::Rows(r) = o {
            rows += r.len();
        }
    })?;
    Ok(rows)
}

fn host_of(e: &serde_json::Value) -> Option<String> {
    let fields = e["fields"].as_object()?;
    HOST_FIELDS.iter().find_map(|h| {
        fields
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(h))
            .and_then(|(_, v)| v.as_str().map(str::to_owned))
    })
}

fn dir_size(dir: &Path) -> u64 {
    walkdir::WalkDir::new(dir)
        .into_iter()
        .filter_map(Result::ok)
        .filter(|e| e.file_type().is_file())
        .filter_map(|e| e.metadata().ok())
        .map(|m| m.len())
        .sum()
}
