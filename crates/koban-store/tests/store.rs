//! The store end to end: write, commit, reopen, search, retention, crash replay.

use std::collections::HashSet;
use std::path::Path;
use std::sync::Arc;

use koban_event::{Event, Value};
use koban_store::{EventStore, FieldFilter, SearchRequest, StoreError, StoreOptions, StoredEvent};

const DAY: i64 = 86_400_000;
/// 2024-03-01T00:00:00Z
const T0: i64 = 1_709_251_200_000;

fn options() -> StoreOptions {
    // Small budgets: tests open several writers and run in parallel.
    StoreOptions {
        writer_memory_bytes: 20 << 20,
        writer_threads: 1,
        max_open_writers: 2,
        close_idle_after_commits: 2,
        ..StoreOptions::default()
    }
}

fn event(host: &str, event_id: i64, cmd: &str, time: i64) -> Event {
    let mut e = Event::from_fields(vec![
        ("Computer".into(), Value::from(host)),
        ("EventID".into(), Value::Int(event_id)),
        ("CommandLine".into(), Value::from(cmd)),
        ("source.ip".into(), Value::from("10.1.2.3")),
        ("Duration".into(), Value::Float(1.5)),
        (
            "Message".into(),
            Value::from(format!("Process {cmd} started on {host}")),
        ),
    ]);
    e.timestamp = Some(time);
    e.original = Some(format!("{host} EventID={event_id} cmd={cmd}").into());
    e
}

/// An owned input record; tests build `StoredEvent`s borrowing from these.
struct Rec {
    tenant: &'static str,
    seq: u64,
    sub: u32,
    received_ms: i64,
    event: Arc<Event>,
}

impl Rec {
    fn stored(&self) -> StoredEvent<'_> {
        StoredEvent {
            tenant: self.tenant,
            source: "test",
            seq: self.seq,
            sub: self.sub,
            received_ms: self.received_ms,
            format: "windows",
            parsed: true,
            event: &self.event,
        }
    }
}

fn write(store: &mut EventStore, recs: &[Rec]) -> koban_store::WriteReport {
    let batch: Vec<_> = recs.iter().map(Rec::stored).collect();
    store.write(&batch).expect("write")
}

/// `n` WAL records of `subs` events each, starting at seq `first`, for tenant `t`;
/// record i is received on day `i % days` after T0.
fn records(t: &'static str, first: u64, n: u64, subs: u32, days: i64) -> Vec<Rec> {
    let mut out = Vec::new();
    for seq in first..first + n {
        for sub in 0..subs {
            let day = (seq as i64) % days;
            let time = T0 + day * DAY + (seq as i64) * 1000 + i64::from(sub);
            out.push(Rec {
                tenant: t,
                seq,
                sub,
                received_ms: T0 + day * DAY + 5,
                event: Arc::new(event(
                    &format!("HOST-{}", seq % 3),
                    4600 + (seq % 50) as i64,
                    &format!("cmd.exe /c run{seq}"),
                    time,
                )),
            });
        }
    }
    out
}

fn all(store: &EventStore, tenant: &str) -> Vec<(u64, u32)> {
    let mut req = SearchRequest::new(tenant);
    req.limit = 10_000;
    let res = store.search(&req).expect("search");
    assert_eq!(res.total as usize, res.hits.len());
    res.hits.iter().map(|h| (h.seq, h.sub)).collect()
}

fn assert_exactly(store: &EventStore, tenant: &str, expected: usize) {
    let ids = all(store, tenant);
    let unique: HashSet<_> = ids.iter().copied().collect();
    assert_eq!(unique.len(), ids.len(), "duplicates stored");
    assert_eq!(ids.len(), expected);
}

fn count(store: &EventStore, req: &SearchRequest) -> u64 {
    store.search(req).expect("search").total
}

#[test]
fn round_trip_survives_reopen() {
    let dir = tempfile::tempdir().expect("tempdir");
    let recs = records("acme", 1, 10, 2, 2);
    {
        let mut store = EventStore::open(dir.path(), options()).expect("open");
        assert_eq!(store.applied_seq(), 0);
        let r = write(&mut store, &recs);
        assert_eq!((r.written, r.skipped), (20, 0));
        // Nothing is visible before the commit.
        assert_eq!(count(&store, &SearchRequest::new("acme")), 0);
        store.commit(10).expect("commit");
        assert_eq!(count(&store, &SearchRequest::new("acme")), 20);
    }
    let store = EventStore::open(dir.path(), options()).expect("reopen");
    assert_eq!(store.applied_seq(), 10);
    let mut req = SearchRequest::new("acme");
    req.filters.push(FieldFilter::eq("@seq", "7"));
    let res = store.search(&req).expect("search");
    assert_eq!(res.total, 2);
    let hit = &res.hits[0];
    assert_eq!(hit.seq, 7);
    assert_eq!(hit.source, "test");
    assert_eq!(hit.format, "windows");
    assert!(hit.parsed);
    assert_eq!(hit.event.get_str("computer").as_deref(), Some("HOST-1"));
    assert_eq!(hit.event.get("EventID"), Some(&Value::Int(4607)));
    assert_eq!(hit.event.fields()[0].name.as_ref().len(), 7); // "EventID" kept its case
    assert_eq!(
        hit.original.as_deref(),
        Some("HOST-1 EventID=4607 cmd=cmd.exe /c run7")
    );
    // Newest first.
    assert!(res.hits[0].time_ms >= res.hits[1].time_ms);
    // Two receive days → two partitions on disk.
    assert!(dir.path().join("acme/2024-03-01/meta.json").is_file());
    assert!(dir.path().join("acme/2024-03-02/meta.json").is_file());
    let stats = store.stats();
    assert_eq!(stats.tenants["acme"].partitions.len(), 2);
    assert_eq!(stats.docs, 20);
    assert!(stats.bytes > 0);
}

#[test]
fn filters_wildcards_ranges_text_and_time() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut store = EventStore::open(dir.path(), options()).expect("open");
    write(&mut store, &records("acme", 1, 30, 1, 1));
    store.commit(30).expect("commit");
    let q = |filters: Vec<FieldFilter>| {
        let mut r = SearchRequest::new("acme");
        r.filters = filters;
        count(&store, &r)
    };
    // Exact, case-insensitive on name and value.
    assert_eq!(q(vec![FieldFilter::eq("computer", "host-1")]), 10);
    assert_eq!(q(vec![FieldFilter::eq("COMPUTER", "HOST-1")]), 10);
    assert_eq!(q(vec![FieldFilter::eq("Computer", "HOST")]), 0);
    // Dotted names, numbers given as text.
    assert_eq!(q(vec![FieldFilter::eq("source.ip", "10.1.2.3")]), 30);
    assert_eq!(q(vec![FieldFilter::eq("EventID", "4605")]), 1);
    // Wildcards: contains, prefix, suffix, one character, escaped.
    assert_eq!(q(vec![FieldFilter::eq("CommandLine", "*run1*")]), 11);
    assert_eq!(
        q(vec![FieldFilter::eq("CommandLine", "CMD.EXE /c run2?")]),
        10
    );
    assert_eq!(q(vec![FieldFilter::eq("CommandLine", "*run30")]), 1);
    assert_eq!(q(vec![FieldFilter::eq("Computer", "host-*")]), 30);
    assert_eq!(q(vec![FieldFilter::eq("Computer", "host-\\*")]), 0);
    // Numeric ranges, integers and floats.
    assert_eq!(
        q(vec![FieldFilter::range(
            "EventID",
            Some(4610.0),
            Some(4619.0)
        )]),
        10
    );
    assert_eq!(
        q(vec![FieldFilter::range("eventid", None, Some(4602.0))]),
        2
    );
    assert_eq!(
        q(vec![FieldFilter::range("Duration", Some(1.25), Some(1.75))]),
        30
    );
    assert_eq!(q(vec![FieldFilter::range("Duration", Some(2.0), None)]), 0);
    // Store fields.
    assert_eq!(q(vec![FieldFilter::eq("@format", "WINDOWS")]), 30);
    assert_eq!(q(vec![FieldFilter::eq("@parsed", "false")]), 0);
    // Filters combine with AND.
    assert_eq!(
        q(vec![
            FieldFilter::eq("computer", "host-1"),
            FieldFilter::eq("CommandLine", "*run1*")
        ]),
        5 // seq % 3 == 1 among run1, run10..run19: 1, 10, 13, 16, 19
    );
    // Free text over the original record.
    let mut r = SearchRequest::new("acme");
    r.text = Some("run17".into());
    assert_eq!(count(&store, &r), 1);
    r.text = Some("HOST-2 cmd".into());
    assert_eq!(count(&store, &r), 10);
    // Message is text-only by default: no exact match, found by its words, and
    // still returned with the event.
    assert_eq!(
        q(vec![FieldFilter::eq(
            "Message",
            "Process cmd.exe /c run17 started on HOST-2"
        )]),
        0
    );
    let mut r = SearchRequest::new("acme");
    r.text = Some("started".into());
    assert_eq!(count(&store, &r), 30);
    r.text = Some("run17".into());
    let hit = &store.search(&r).expect("search").hits[0];
    assert!(hit
        .event
        .get_str("message")
        .is_some_and(|m| m.contains("run17")));
    // Time range on event time: seq s is at T0 + s seconds, [from, to).
    let mut r = SearchRequest::new("acme");
    r.from_ms = Some(T0 + 5_000);
    r.to_ms = Some(T0 + 10_000);
    assert_eq!(count(&store, &r), 5);
    r.from_ms = Some(T0 + 365 * DAY);
    r.to_ms = None;
    assert_eq!(count(&store, &r), 0);
    // Bad queries are errors, not empty results.
    let mut r = SearchRequest::new("acme");
    r.filters.push(FieldFilter::eq("@nope", "x"));
    assert!(matches!(store.search(&r), Err(StoreError::InvalidQuery(_))));
}

#[test]
fn count_by_groups_values() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut store = EventStore::open(dir.path(), options()).expect("open");
    write(&mut store, &records("acme", 1, 30, 2, 3));
    store.commit(30).expect("commit");
    let mut req = SearchRequest::new("acme");
    req.limit = 0;
    let by_host = store.count_by(&req, "Computer").expect("count_by");
    assert_eq!(
        by_host,
        vec![
            ("host-0".into(), 20),
            ("host-1".into(), 20),
            ("host-2".into(), 20)
        ]
    );
    req.filters.push(FieldFilter::eq("computer", "host-1"));
    let by_id = store.count_by(&req, "EventID").expect("count_by");
    assert_eq!(by_id.iter().map(|(_, n)| n).sum::<u64>(), 20);
    assert!(by_id.contains(&("4601".into(), 2)));
    req.limit = 1;
    assert_eq!(store.count_by(&req, "computer").expect("count_by").len(), 1);
    assert!(store
        .count_by(&req, "missing")
        .expect("count_by")
        .is_empty());
}

#[test]
fn tenants_are_isolated() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut store = EventStore::open(dir.path(), options()).expect("open");
    let mut recs = records("acme", 1, 5, 1, 1);
    recs.extend(records("globex", 6, 3, 1, 1));
    write(&mut store, &recs);
    store.commit(8).expect("commit");
    assert_exactly(&store, "acme", 5);
    assert_exactly(&store, "globex", 3);
    assert_exactly(&store, "initech", 0);
    let mut req = SearchRequest::new("globex");
    req.filters.push(FieldFilter::eq("@seq", "2"));
    assert_eq!(
        count(&store, &req),
        0,
        "acme's seq 2 must not be visible to globex"
    );
    let mut req = SearchRequest::new("acme");
    req.limit = 0;
    let hosts: u64 = store
        .count_by(&req, "computer")
        .expect("count_by")
        .iter()
        .map(|x| x.1)
        .sum();
    assert_eq!(hosts, 5);
}

#[test]
fn bad_tenant_ids_are_rejected() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut store = EventStore::open(dir.path(), options()).expect("open");
    for bad in ["../etc", "", "Acme", "a/b", ".x"] {
        let e = Arc::new(event("h", 1, "c", T0));
        let rec = StoredEvent {
            tenant: bad,
            source: "test",
            seq: 1,
            sub: 0,
            received_ms: T0,
            format: "raw",
            parsed: false,
            event: &e,
        };
        let err = store.write(&[rec]).expect_err("must be rejected");
        assert!(matches!(err, StoreError::InvalidTenant(_)), "{bad}: {err}");
        assert!(err.to_string().contains("invalid tenant id"), "{err}");
        assert!(matches!(
            store.search(&SearchRequest::new(bad)),
            Err(StoreError::InvalidTenant(_))
        ));
    }
    assert!(!dir
        .path()
        .join("..")
        .join("etc")
        .join("2024-03-01")
        .exists());
}

#[test]
fn writes_must_follow_wal_order() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut store = EventStore::open(dir.path(), options()).expect("open");
    let recs = records("acme", 5, 1, 1, 1);
    write(&mut store, &recs);
    let again: Vec<_> = recs.iter().map(Rec::stored).collect();
    assert!(matches!(
        store.write(&again),
        Err(StoreError::OutOfOrder { .. })
    ));
    assert!(matches!(store.commit(4), Ok(())));
    assert!(matches!(
        store.commit(3),
        Err(StoreError::AppliedSeqBackwards { .. })
    ));
}

/// The WAL: records 1..=40, two events each, spread over 4 receive days (4
/// partitions, more than the 2 writers kept open, so writers are also evicted).
fn wal() -> Vec<Rec> {
    records("acme", 1, 40, 2, 4)
}

/// Replays the WAL after the store's applied_seq, as `koban serve` does on start.
fn replay(dir: &Path) -> (EventStore, koban_store::WriteReport) {
    let mut store = EventStore::open(dir, options()).expect("reopen");
    let from = store.applied_seq();
    let recs: Vec<Rec> = wal().into_iter().filter(|r| r.seq > from).collect();
    let report = write(&mut store, &recs);
    store.commit(40).expect("commit");
    (store, report)
}

#[test]
fn crash_before_commit_loses_nothing_acknowledged_and_stores_nothing_twice() {
    let dir = tempfile::tempdir().expect("tempdir");
    {
        let mut store = EventStore::open(dir.path(), options()).expect("open");
        let recs = wal();
        write(&mut store, &recs[..40]); // seq 1..=20
        store.commit(20).expect("commit");
        write(&mut store, &recs[40..60]); // seq 21..=30, never committed
                                          // The process dies here: dropped without commit.
    }
    let (store, report) = replay(dir.path());
    // Writers evicted while writing seq 21..30 committed early; those are skipped.
    assert_eq!(report.written + report.skipped, 40);
    assert_exactly(&store, "acme", 80);
    assert_eq!(store.applied_seq(), 40);
}

#[test]
fn crash_between_partition_commits_is_replayed_exactly_once() {
    let dir = tempfile::tempdir().expect("tempdir");
    {
        let mut store = EventStore::open(
            dir.path(),
            StoreOptions {
                max_open_writers: 8,
                ..options()
            },
        )
        .expect("open");
        let recs = wal();
        write(&mut store, &recs[..20]);
        store.commit(10).expect("commit");
        write(&mut store, &recs[20..]);
        // Only day 1's partition commits, then the process dies before the others
        // and before applied_seq is written.
        store
            .commit_partition_for_test("acme", T0 + DAY)
            .expect("partial commit");
    }
    let (store, report) = replay(dir.path());
    assert_eq!(store.applied_seq(), 40);
    // seq 11..=40 replayed; day 1 (seq % 4 == 1) had committed 13, 17, …, 37:
    // 7 records × 2 events skipped.
    assert_eq!(report.skipped, 14);
    assert_eq!(report.written, 46);
    assert_exactly(&store, "acme", 80);
    // A second restart replays nothing.
    drop(store);
    let (store, report) = replay(dir.path());
    assert_eq!((report.written, report.skipped), (0, 0));
    assert_exactly(&store, "acme", 80);
}

#[test]
fn retention_deletes_whole_old_partitions() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut store = EventStore::open(dir.path(), options()).expect("open");
    let mut recs = records("acme", 1, 10, 1, 5); // receive days T0 .. T0+4
    recs.extend(records("globex", 11, 5, 1, 5));
    write(&mut store, &recs);
    store.commit(15).expect("commit");
    // Now is noon on day 4; keep 2 days: days 0 and 1 end before now - 2 days.
    let now = T0 + 4 * DAY + DAY / 2;
    let report = store.apply_retention("acme", 2, now).expect("retention");
    assert_eq!(
        report.deleted_days,
        vec!["2024-03-01".to_string(), "2024-03-02".into()]
    );
    assert_eq!(report.deleted_docs, 4);
    assert!(report.freed_bytes > 0);
    assert!(!dir.path().join("acme/2024-03-01").exists());
    assert_exactly(&store, "acme", 6);
    // Another tenant's data is untouched.
    assert_exactly(&store, "globex", 5);
    // Deleted partitions stay deleted across a restart, and new writes still work.
    drop(store);
    let mut store = EventStore::open(dir.path(), options()).expect("reopen");
    assert_exactly(&store, "acme", 6);
    write(&mut store, &records("acme", 16, 1, 1, 1));
    store.commit(16).expect("commit");
    assert_exactly(&store, "acme", 7);
}

#[test]
fn searcher_sees_commits_from_another_thread() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut store = EventStore::open(dir.path(), options()).expect("open");
    let searcher = store.searcher();
    let reader = std::thread::spawn(move || {
        let mut seen = 0;
        for _ in 0..200 {
            seen = searcher
                .search(&SearchRequest::new("acme"))
                .expect("search")
                .total;
            if seen == 6 {
                break;
            }
            std::thread::sleep(std::time::Duration::from_millis(10));
        }
        seen
    });
    write(&mut store, &records("acme", 1, 3, 2, 1));
    store.commit(3).expect("commit");
    assert_eq!(reader.join().expect("thread"), 6);
}

#[test]
fn conditions_nest_negate_and_match_networks_and_presence() {
    use koban_store::Condition as C;
    let dir = tempfile::tempdir().expect("tempdir");
    let mut store = EventStore::open(dir.path(), options()).expect("open");
    write(&mut store, &records("acme", 1, 30, 1, 3));
    store.commit(30).expect("commit");
    let q = |c: C| {
        let mut r = SearchRequest::new("acme");
        r.condition = Some(c);
        count(&store, &r)
    };
    let m = |f: &str, v: &str| C::Match {
        field: f.into(),
        value: v.into(),
    };
    assert_eq!(q(m("Computer", "host-1")), 10);
    assert_eq!(q(C::Not(Box::new(m("Computer", "host-1")))), 20);
    assert_eq!(
        q(C::Any(vec![
            m("Computer", "host-1"),
            m("Computer", "host-2")
        ])),
        20
    );
    assert_eq!(
        q(C::All(vec![
            m("Computer", "host-*"),
            C::Not(Box::new(m("Computer", "host-0")))
        ])),
        20
    );
    assert_eq!(q(C::All(vec![])), 30);
    assert_eq!(q(C::Any(vec![])), 0);
    // Open and closed range ends: 4611..=4618 of 4601..4630 (seq % 50 + 4600).
    let range = |min, max| C::Range {
        field: "EventID".into(),
        min,
        max,
    };
    assert_eq!(q(range(Some((4610.0, false)), Some((4619.0, false)))), 8);
    assert_eq!(q(range(Some((4610.0, true)), Some((4619.0, true)))), 10);
    assert_eq!(q(range(None, Some((4602.0, false)))), 1);
    // Networks over the string values of a path.
    let cidr = |net: &str| C::Cidr {
        field: "source.ip".into(),
        net: net.parse().expect("net"),
    };
    assert_eq!(q(cidr("10.0.0.0/8")), 30);
    assert_eq!(q(cidr("10.1.2.0/30")), 30);
    assert_eq!(q(cidr("10.1.2.4/30")), 0);
    assert_eq!(q(cidr("::/0")), 0);
    assert_eq!(q(cidr("192.168.0.0/16")), 0);
    // Presence, whatever the type.
    let exists = |f: &str| C::Exists { field: f.into() };
    assert_eq!(q(exists("Duration")), 30);
    assert_eq!(q(exists("eventid")), 30);
    assert_eq!(q(exists("Computer")), 30);
    assert_eq!(q(exists("NoSuchField")), 0);
    assert_eq!(q(C::Text("run2".into())), 1);
    // The store's own fields refuse what they cannot answer, by name.
    let mut r = SearchRequest::new("acme");
    r.condition = Some(C::Exists {
        field: "@source".into(),
    });
    let e = store.search(&r).expect_err("refused").to_string();
    assert!(e.contains("@source"), "{e}");
}

#[test]
fn scans_histograms_and_oldest_first() {
    use std::ops::ControlFlow;
    let dir = tempfile::tempdir().expect("tempdir");
    let mut store = EventStore::open(dir.path(), options()).expect("open");
    write(&mut store, &records("acme", 1, 30, 2, 3));
    store.commit(30).expect("commit");
    let searcher = store.searcher();
    let mut req = SearchRequest::new("acme");
    req.filters = vec![FieldFilter::eq("Computer", "host-1")];
    let mut seen = HashSet::new();
    let mut calls = Vec::new();
    let n = searcher
        .scan(&req, &mut |d, t| calls.push((d, t)), &mut |h| {
            seen.insert((h.seq, h.sub));
            ControlFlow::Continue(())
        })
        .expect("scan");
    assert_eq!((n, seen.len()), (20, 20));
    assert_eq!(
        calls.last(),
        Some(&(3, 3)),
        "one call per partition: {calls:?}"
    );
    let mut first = 0;
    let stopped = searcher
        .scan(&req, &mut |_, _| {}, &mut |_| {
            first += 1;
            ControlFlow::Break(())
        })
        .expect("scan");
    assert_eq!((stopped, first), (1, 1));
    let buckets = searcher
        .time_histogram(&req, DAY, &mut |_, _| {})
        .expect("histogram");
    assert_eq!(buckets.values().sum::<u64>(), 20);
    assert!(buckets.keys().all(|b| b % DAY == 0));
    assert!(searcher.time_histogram(&req, 0, &mut |_, _| {}).is_err());
    req.limit = 5;
    req.oldest_first = true;
    let oldest: Vec<i64> = store
        .search(&req)
        .expect("search")
        .hits
        .iter()
        .map(|h| h.time_ms)
        .collect();
    let mut sorted = oldest.clone();
    sorted.sort();
    assert_eq!(oldest, sorted);
    req.oldest_first = false;
    let newest = store.search(&req).expect("search").hits[0].time_ms;
    assert!(newest > oldest[4]);
}

/// Every kind of value reaches the index as before the document was read in place:
/// lists by element, booleans, nulls left out, non-finite floats as text, and an event
/// without an original (EVTX) found by the words of its string values.
#[test]
fn every_value_kind_is_indexed() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut store = EventStore::open(dir.path(), options()).expect("open");
    let mut e = Event::from_fields(vec![
        (
            "Tags".into(),
            Value::List(vec![Value::from("Alpha"), Value::Null, Value::Int(7)]),
        ),
        ("Elevated".into(), Value::Bool(true)),
        ("Nothing".into(), Value::Null),
        ("Ratio".into(), Value::Float(f64::NAN)),
        ("Image".into(), Value::from("C:\\Windows\\evil.exe")),
        ("Message".into(), Value::from("prose words here")),
    ]);
    e.timestamp = Some(T0);
    let e = Arc::new(e);
    let rec = StoredEvent {
        tenant: "acme",
        source: "evtx-upload",
        seq: 1,
        sub: 0,
        received_ms: T0,
        format: "evtx",
        parsed: true,
        event: &e,
    };
    store.write(&[rec]).expect("write");
    store.commit(1).expect("commit");
    let q = |filters: Vec<FieldFilter>, text: Option<&str>| {
        let mut r = SearchRequest::new("acme");
        r.filters = filters;
        r.text = text.map(Into::into);
        count(&store, &r)
    };
    assert_eq!(q(vec![FieldFilter::eq("tags", "alpha")], None), 1);
    assert_eq!(q(vec![FieldFilter::eq("tags", "7")], None), 1);
    assert_eq!(
        q(vec![FieldFilter::range("tags", Some(6.0), Some(8.0))], None),
        1
    );
    assert_eq!(q(vec![FieldFilter::eq("elevated", "true")], None), 1);
    assert_eq!(q(vec![FieldFilter::eq("ratio", "nan")], None), 1);
    assert_eq!(q(vec![FieldFilter::eq("image", "*\\evil.exe")], None), 1);
    assert_eq!(q(vec![FieldFilter::eq("@source", "evtx-upload")], None), 1);
    // No original: the string values are the free text, text-only fields included.
    assert_eq!(q(vec![], Some("evil")), 1);
    assert_eq!(q(vec![], Some("prose")), 1);
    assert_eq!(
        q(vec![FieldFilter::eq("message", "prose words here")], None),
        0
    );
    let hit = &store
        .search(&SearchRequest::new("acme"))
        .expect("search")
        .hits[0];
    assert_eq!(hit.original, None);
    assert_eq!(hit.event.get("nothing"), Some(&Value::Null));
    assert_eq!(hit.event.get("ratio"), Some(&Value::Null));
    assert_eq!(hit.event.get("tags"), e.get("tags"));
}

/// A text-only field whose words are all in the original is indexed once, from the
/// original; one cut inside a word of the original still finds its own words.
#[test]
fn text_only_words_inside_the_original() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut store = EventStore::open(dir.path(), options()).expect("open");
    let mk = |original: &str, message: &str| {
        let mut e = Event::from_fields(vec![("message".into(), Value::from(message))]);
        e.original = Some(original.into());
        Arc::new(e)
    };
    let events = [
        mk(
            "host sshd[1]: Accepted password for bob",
            "Accepted password for bob",
        ),
        mk("host app: xyzzyplugh done", "zzyplugh done"),
    ];
    let batch: Vec<StoredEvent<'_>> = events
        .iter()
        .enumerate()
        .map(|(i, e)| StoredEvent {
            tenant: "acme",
            source: "test",
            seq: i as u64 + 1,
            sub: 0,
            received_ms: T0,
            format: "syslog",
            parsed: true,
            event: e,
        })
        .collect();
    store.write(&batch).expect("write");
    store.commit(2).expect("commit");
    let text = |t: &str| {
        let mut r = SearchRequest::new("acme");
        r.text = Some(t.into());
        count(&store, &r)
    };
    assert_eq!(text("accepted"), 1);
    assert_eq!(text("BOB"), 1);
    assert_eq!(text("xyzzyplugh"), 1);
    assert_eq!(
        text("zzyplugh"),
        1,
        "the message's own word is still indexed"
    );
}
