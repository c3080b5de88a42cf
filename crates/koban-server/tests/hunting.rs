//! Hunting end to end in process: queries in the hunting language against a real
//! event store, timelines, and retro-hunts recording into a real alert book.

use std::sync::Arc;

use koban_event::{Event, LogSource, Value};
use koban_server::alerts::{AlertBook, AlertFilter, Grouping};
use koban_server::hunt::retro::{retro_hunt, RetroRequest, RetroRules};
use koban_server::hunt::{exec, timeline, HuntError, HuntRequest, Output};
use koban_store::{EventStore, StoreOptions, StoredEvent};
use serde_json::Value as Json;

const HOUR: i64 = 3_600_000;
/// 2026-03-01T00:00:00Z
const T0: i64 = 1_772_323_200_000;

/// 60 events over 6 hours: 3 hosts, logons (4624) and failures (4625) from two
/// networks, one `whoami` process on ws2.
fn events() -> Vec<std::sync::Arc<Event>> {
    let mut out = Vec::new();
    for i in 0..60i64 {
        let host = format!("WS{}", i % 3);
        let failed = i % 4 == 0;
        let ip = if i % 2 == 0 {
            format!("10.0.{}.{}", i % 5, i)
        } else {
            format!("192.168.1.{i}")
        };
        let mut fields = vec![
            ("Computer".to_owned(), Value::from(host.as_str())),
            (
                "EventID".into(),
                Value::Int(if failed { 4625 } else { 4624 }),
            ),
            ("IpAddress".into(), Value::from(ip.as_str())),
            (
                "TargetUserName".into(),
                Value::from(format!("user{}", i % 7)),
            ),
            (
                "LogonType".into(),
                Value::Int(if i % 3 == 0 { 10 } else { 3 }),
            ),
        ];
        if i == 41 {
            fields = vec![
                ("Computer".to_owned(), Value::from("WS2")),
                ("EventID".into(), Value::Int(1)),
                (
                    "Channel".into(),
                    Value::from("Microsoft-Windows-Sysmon/Operational"),
                ),
                (
                    "Image".into(),
                    Value::from("C:\\Windows\\System32\\whoami.exe"),
                ),
                ("CommandLine".into(), Value::from("whoami /all")),
                ("User".into(), Value::from("CORP\\alice")),
            ];
        }
        let mut e = Event::from_fields(fields);
        if i == 41 {
            // What the Windows parser gives a Sysmon event 1.
            e.logsource = LogSource {
                product: Some("windows".into()),
                services: vec!["sysmon".into()],
                categories: vec!["process_creation".into()],
            };
        }
        e.timestamp = Some(T0 + i * 6 * 60_000);
        e.original = Some(format!("event {i} on {host}").into());
        out.push(std::sync::Arc::new(e));
    }
    out
}

struct World {
    _dir: tempfile::TempDir,
    store: EventStore,
}

fn world() -> World {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut store =
        EventStore::open(&dir.path().join("events"), StoreOptions::default()).expect("store");
    let evs = events();
    let stored: Vec<StoredEvent<'_>> = evs
        .iter()
        .enumerate()
        .map(|(i, e)| StoredEvent {
            tenant: "acme",
            source: "winlogbeat",
            seq: i as u64 + 1,
            sub: 0,
            received_ms: T0 + HOUR,
            format: "windows",
            parsed: true,
            event: e,
        })
        .collect();
    store.write(&stored).expect("write");
    store.commit(60).expect("commit");
    World { _dir: dir, store }
}

/// What a query gave: events, table columns, table rows, events matched.
type Answer = (Vec<Json>, Vec<String>, Vec<Vec<Json>>, u64);

fn run(w: &World, query: &str) -> Result<Answer, HuntError> {
    let q = koban_hunt::parse(query).unwrap_or_else(|e| panic!("{query}: {e}\n{}", e.caret(query)));
    let req = HuntRequest {
        tenant: "acme".into(),
        query: q,
        from_ms: None,
        to_ms: None,
        now_ms: T0 + 7 * HOUR,
    };
    let (mut events, mut columns, mut rows) = (Vec::new(), Vec::new(), Vec::new());
    let summary = exec::run(&w.store.searcher(), &req, &mut |o| match o {
        Output::Events(e) => events.extend(e),
        Output::Columns(c) => columns = c,
        Output::Rows(r) => rows.extend(r),
        Output::Progress { .. } => {}
    })?;
    Ok((events, columns, rows, summary.matched))
}

fn matched(w: &World, query: &str) -> u64 {
    run(w, query).expect("runs").3
}

#[test]
fn searches_filter_combine_negate_and_match_networks() {
    let w = world();
    // Each case: (query, events matching), counted by hand from `events()`.
    let cases: &[(&str, u64)] = &[
        ("", 60),
        ("Computer=ws1", 20),
        ("computer:WS1", 20),
        ("EventID=4625", 15),
        ("EventID=4625 Computer=ws0", 5),
        ("EventID=4625 AND Computer=ws0", 5),
        ("Computer=ws0 OR Computer=ws1", 40),
        ("NOT Computer=ws0", 40),
        ("-Computer=ws0 -Computer=ws1", 20),
        ("Computer!=ws0", 40),
        ("(Computer=ws0 OR Computer=ws1) EventID=4625", 10),
        ("IpAddress=10.0.0.0/8", 30),
        ("IpAddress=192.168.1.0/24", 29),
        ("IpAddress=10.0.3.0/24", 6),
        ("IpAddress=172.16.0.0/12", 0),
        ("TargetUserName=user1*", 9),
        ("TargetUserName IN (user1, user2)", 18),
        ("LogonType>=10", 20),
        ("LogonType>3", 20),
        ("LogonType<10", 39),
        ("LogonType=3..10", 59),
        ("Image=*", 1),
        ("Image=*\\\\whoami.exe", 1),
        ("41", 1),
        ("\"event 41\"", 1),
        ("earliest=-2h", 10),
        ("earliest=2026-03-01T05:00:00Z", 10),
        ("latest=2026-03-01T01:00:00Z", 10),
    ];
    let mut wrong = Vec::new();
    for (q, want) in cases {
        let got = matched(&w, q);
        if got != *want {
            wrong.push(format!("{q:?}: {got} matched, expected {want}"));
        }
    }
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));
}

#[test]
fn pipelines_aggregate_sort_cut_and_project() {
    let w = world();
    let (_, cols, rows, _) = run(&w, "| stats count() by Computer").expect("stats");
    assert_eq!(cols, ["Computer", "count"]);
    assert_eq!(rows.len(), 3);
    assert_eq!(
        rows.iter().map(|r| r[1].as_u64().unwrap_or(0)).sum::<u64>(),
        60
    );

    let (_, cols, rows, _) =
        run(&w, "EventID=4625 | stats count() as failures by Computer, LogonType | sort -failures, Computer")
            .expect("stats by two");
    assert_eq!(cols, ["Computer", "LogonType", "failures"]);
    assert_eq!(
        rows.iter().map(|r| r[2].as_u64().unwrap_or(0)).sum::<u64>(),
        15
    );
    let counts: Vec<u64> = rows.iter().map(|r| r[2].as_u64().unwrap_or(0)).collect();
    assert!(counts.windows(2).all(|p| p[0] >= p[1]), "{counts:?}");

    // An aggregation counts only what the search matched.
    let (_, _, rows, m) = run(&w, "EventID=4625 | top 3 Computer").expect("top of a search");
    assert_eq!(m, 15);
    assert_eq!(
        rows.iter().map(|r| r[1].as_u64().unwrap_or(0)).sum::<u64>(),
        15,
        "{rows:?}"
    );
    let (_, cols, rows, _) = run(&w, "| top 2 TargetUserName").expect("top");
    assert_eq!(cols, ["TargetUserName", "count", "percent"]);
    assert_eq!(rows.len(), 2);
    assert_eq!(rows[0][1], 9);
    // user0..3 have 9 events, user4 and user5 8, user6 7 (event 41 is no logon).
    let (_, _, rows, _) = run(&w, "| rare 1 TargetUserName").expect("rare");
    assert_eq!(rows[0][0], "user6");
    assert_eq!(rows[0][1], 7);

    let (_, cols, rows, _) = run(&w, "| timechart span=1h count()").expect("timechart");
    assert_eq!(cols, ["_time", "count"]);
    assert_eq!(rows.len(), 6);
    assert!(rows.iter().all(|r| r[1] == 10), "{rows:?}");
    let (_, cols, rows, _) = run(&w, "| timechart span=2h count() by Computer").expect("by");
    assert_eq!(cols.len(), 4, "{cols:?}");
    assert_eq!(rows.len(), 3);

    let (events, _, _, m) = run(
        &w,
        "EventID=4624 | sort LogonType, -@time | head 3 | fields Computer",
    )
    .expect("events");
    assert_eq!(m, 44, "45 logons less event 41");
    assert_eq!(events.len(), 3);
    for e in &events {
        let f = e["fields"].as_object().expect("fields");
        assert_eq!(f.keys().collect::<Vec<_>>(), ["Computer"]);
    }
    let (events, _, _, _) = run(&w, "| head 5").expect("head");
    assert_eq!(events.len(), 5);
    let (_, _, rows, _) =
        run(&w, "| stats count() by Computer | head 1 | fields count").expect("cut");
    assert_eq!(rows, vec![vec![serde_json::json!(20)]]);
}

#[test]
fn queries_that_cannot_run_say_where() {
    let w = world();
    for (q, at, words) in [
        (
            "| head 3 | stats count() by Computer",
            2,
            "after the aggregation",
        ),
        (
            "| stats count() by Computer | top Computer",
            30,
            "one aggregation",
        ),
        ("| stats count() by Computer | sort -nope", 30, "no column"),
        ("| top 3 @source", 2, "@source"),
    ] {
        match run(&w, q) {
            Err(HuntError::Query { span, message }) => {
                assert_eq!(span.start, at, "{q}: {message}");
                assert!(message.contains(words), "{q}: {message}");
            }
            other => panic!("{q}: expected a query error, got {other:?}"),
        }
    }
}

#[test]
fn timelines_follow_one_entity_in_time_order() {
    let w = world();
    let (total, events) =
        timeline::events(&w.store.searcher(), "acme", "host", "ws2", None, None, 100)
            .expect("timeline");
    assert_eq!((total, events.len()), (20, 20));
    let times: Vec<&str> = events.iter().filter_map(|e| e["time"].as_str()).collect();
    let mut sorted = times.clone();
    sorted.sort();
    assert_eq!(times, sorted);
    // A user without the domain finds the account with it.
    let (total, _) = timeline::events(
        &w.store.searcher(),
        "acme",
        "user",
        "alice",
        None,
        None,
        100,
    )
    .expect("user");
    assert_eq!(total, 1);
    let (total, _) = timeline::events(
        &w.store.searcher(),
        "acme",
        "ip",
        "192.168.1.5",
        Some(T0),
        Some(T0 + HOUR),
        100,
    )
    .expect("ip");
    assert_eq!(total, 1);
    let csv = timeline::csv(&timeline::merge(events, Vec::new()));
    assert_eq!(csv.lines().count(), 21);
    assert!(csv.starts_with("time,kind,source,summary\n"));
}

const WHOAMI_RULE: &str = r#"
title: Whoami run
id: 0b1b2b3b-0000-4000-8000-00000000cafe
logsource: {product: windows, category: process_creation}
detection:
  selection: {Image|endswith: '\whoami.exe'}
  condition: selection
level: high
tags: [attack.discovery, attack.t1033]
"#;

#[test]
fn a_retro_hunt_alerts_once_and_never_twice() {
    let w = world();
    let dir = tempfile::tempdir().expect("tempdir");
    let book = AlertBook::open(&dir.path().join("alerts.db")).expect("book");
    let policy = book.policy(0).expect("policy");
    let loaded =
        Arc::new(koban_sigma::RuleSet::build(Vec::new(), koban_sigma::Routing::LogSource).0);
    let req = RetroRequest {
        tenant: "acme".into(),
        from_ms: None,
        to_ms: None,
        rules: RetroRules::Yaml(WHOAMI_RULE.into()),
    };
    let mut calls = 0;
    let first = retro_hunt(
        &w.store.searcher(),
        &book,
        &loaded,
        &policy,
        &Grouping::default(),
        &req,
        &mut |_, _| calls += 1,
    )
    .expect("retro-hunt");
    assert_eq!(
        (first.events, first.detections, first.new_alerts),
        (60, 1, 1)
    );
    assert_eq!(
        first.per_source_rule["winlogbeat"]["0b1b2b3b-0000-4000-8000-00000000cafe"],
        1
    );
    assert!(calls >= 1);
    let alerts = book
        .alerts(&AlertFilter {
            tenant: Some("acme".into()),
            limit: 10,
            ..AlertFilter::default()
        })
        .expect("alerts");
    assert_eq!(alerts.len(), 1);
    assert_eq!(alerts[0]["retroactive"], true, "{}", alerts[0]);

    // Run again: the same event is counted, nobody is told again.
    let again = retro_hunt(
        &w.store.searcher(),
        &book,
        &loaded,
        &policy,
        &Grouping::default(),
        &req,
        &mut |_, _| {},
    )
    .expect("again");
    assert_eq!(
        (
            again.detections,
            again.already_alerted,
            again.new_alerts,
            again.folded
        ),
        (1, 1, 0, 0)
    );

    // Bad YAML is refused with the loader's reason; an unknown rule id by name.
    let bad = RetroRequest {
        rules: RetroRules::Yaml("title: x\ndetection: {}\n".into()),
        ..req.clone()
    };
    let e = retro_hunt(
        &w.store.searcher(),
        &book,
        &loaded,
        &policy,
        &Grouping::default(),
        &bad,
        &mut |_, _| {},
    )
    .expect_err("refused");
    assert!(e.to_string().contains("do not compile"), "{e}");
    let unknown = RetroRequest {
        rules: RetroRules::Keys(vec!["nope".into()]),
        ..req
    };
    let e = retro_hunt(
        &w.store.searcher(),
        &book,
        &loaded,
        &policy,
        &Grouping::default(),
        &unknown,
        &mut |_, _| {},
    )
    .expect_err("refused");
    assert!(e.to_string().contains("nope"), "{e}");
}
