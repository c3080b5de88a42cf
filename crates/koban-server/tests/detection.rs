//! The streaming detection stage inside the real pipeline, fed WAL records directly:
//! a correlation that spans a crash, exactly-once alerts after a crash between the
//! store's and detection's commits, folding and grouping, and the case workflow.

use std::path::PathBuf;
use std::sync::Arc;

use koban_detect::case::Verdict;
use koban_detect::CaseState;
use koban_server::alerts::{AlertBook, AlertFilter, ExceptionRequest, Grouping, IncidentFilter};
use koban_server::{
    DetectStage, Pipeline, Record, RecordKind, RuleSource, StorePipeline, WalRecord,
};
use koban_store::StoreOptions;

const BRUTE_SUCCESS: &str = "0f3a1c52-6b1e-4d1f-9a55-5a1c0c4e7b04";

fn temp_dir(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("koban-detection-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).expect("temp dir");
    d
}

/// A rule folder with one rule of our own beside the built-in ones.
fn rules(dir: &std::path::Path) -> Arc<RuleSource> {
    let rdir = dir.join("rules");
    std::fs::create_dir_all(&rdir).expect("rules dir");
    std::fs::write(
        rdir.join("whoami.yml"),
        "title: Whoami run\nid: test-whoami\nlogsource:\n  product: windows\n  category: process_creation\n\
         detection:\n  sel:\n    Image|endswith: '\\whoami.exe'\n  condition: sel\nlevel: high\n\
         tags:\n  - attack.discovery\n  - attack.t1033\n",
    )
    .expect("rule");
    RuleSource::load(&[rdir]).expect("rules load")
}

fn open(dir: &std::path::Path, src: &Arc<RuleSource>) -> StorePipeline {
    let stage =
        DetectStage::open(&dir.join("alerts.db"), src.clone(), Grouping::default()).expect("stage");
    StorePipeline::open(&dir.join("events"), StoreOptions::default())
        .expect("store")
        .with_detection(stage)
}

fn logon(seq: u64, id: u32, second: u32, user: &str) -> WalRecord {
    let line = format!(
        r#"{{"EventID":{id},"Channel":"Security","Computer":"dc01","TargetUserName":"{user}","IpAddress":"203.0.113.7","LogonType":3,"TimeCreated":"2026-11-30T10:00:{second:02}Z"}}"#
    );
    wal(seq, &line)
}

fn whoami(seq: u64, host: &str, minute: u32) -> WalRecord {
    let line = format!(
        r#"{{"EventID":1,"Channel":"Microsoft-Windows-Sysmon/Operational","Computer":"{host}","Image":"C:\\Windows\\System32\\whoami.exe","User":"CORP\\bob","UtcTime":"2026-11-30 11:{minute:02}:00.000"}}"#
    );
    wal(seq, &line)
}

fn wal(seq: u64, line: &str) -> WalRecord {
    WalRecord {
        seq,
        record: Record {
            tenant: "acme".into(),
            source: "winlogbeat".into(),
            kind: RecordKind::NdjsonLine,
            received_ms: 1_764_500_000_000,
            remote: None,
            payload: line.as_bytes().to_vec(),
        },
    }
}

fn alerts(book: &AlertBook, rule: Option<&str>) -> Vec<serde_json::Value> {
    book.alerts(&AlertFilter {
        tenant: Some("acme".into()),
        rule: rule.map(str::to_owned),
        limit: 1000,
        ..AlertFilter::default()
    })
    .expect("alerts")
}

#[test]
fn a_brute_force_correlation_fires_across_a_crash_between_its_halves() {
    let dir = temp_dir("brute");
    let src = rules(&dir);
    {
        let mut p = open(&dir, &src);
        let first: Vec<_> = (1..=6).map(|s| logon(s, 4625, s as u32, "alice")).collect();
        p.apply(&first).expect("apply");
        assert_eq!(p.idle().expect("commit"), 6);
        // Dropped without shutdown: a crash after the commit.
    }
    let mut p = open(&dir, &src);
    assert_eq!(p.applied_seq(), 6);
    let mut rest: Vec<_> = (7..=12)
        .map(|s| logon(s, 4625, s as u32, "alice"))
        .collect();
    rest.push(logon(13, 4624, 20, "alice"));
    p.apply(&rest).expect("apply");
    p.idle().expect("commit");
    let book = AlertBook::open(&dir.join("alerts.db")).expect("book");
    let fired = alerts(&book, Some(BRUTE_SUCCESS));
    assert_eq!(fired.len(), 1, "{fired:?}");
    assert_eq!(fired[0]["entities"]["user"], "alice");
    assert!(fired[0]["why"]
        .as_str()
        .unwrap_or_default()
        .contains("temporal_ordered"));
    // The failed logons alone are not alerts (they only feed the correlation).
    assert_eq!(
        alerts(&book, None).len(),
        2,
        "attempts + success correlations"
    );
}

#[test]
fn a_crash_between_detection_and_store_commits_loses_and_doubles_nothing() {
    let batch: Vec<_> = (1..=40)
        .map(|s| whoami(s, if s % 2 == 0 { "ws1" } else { "ws2" }, (s % 50) as u32))
        .collect();
    // The clean run.
    let clean = temp_dir("clean");
    let src = rules(&clean);
    {
        let mut p = open(&clean, &src);
        p.apply(&batch).expect("apply");
        p.idle().expect("commit");
    }
    let clean_book = AlertBook::open(&clean.join("alerts.db")).expect("book");
    let want = clean_book.detection_summary("acme").expect("summary");
    assert_eq!(want["raw_detections"], 40);
    // Two alerts (one per host: repeats fold), grouped by the shared user into one incident.
    assert_eq!(want["alerts"], 2, "{want}");
    assert_eq!(want["incidents"], 1, "{want}");

    // The crash run: half committed, the rest taken but never committed, then replay.
    let dir = temp_dir("crash");
    {
        let mut p = open(&dir, &src);
        p.apply(&batch[..20]).expect("apply");
        p.idle().expect("commit");
        p.apply(&batch[20..]).expect("apply");
    }
    let mut p = open(&dir, &src);
    let from = p.applied_seq() as usize;
    assert_eq!(from, 20);
    p.apply(&batch[from..]).expect("replay");
    p.idle().expect("commit");
    let book = AlertBook::open(&dir.join("alerts.db")).expect("book");
    let got = book.detection_summary("acme").expect("summary");
    assert_eq!(got, want);
    let a = &alerts(&book, None)[0];
    assert_eq!(
        a["count"], 20,
        "one alert per host, counting its repeats: {a}"
    );
}

#[test]
fn triage_exceptions_and_the_case_lifecycle() {
    let dir = temp_dir("triage");
    let src = rules(&dir);
    let mut p = open(&dir, &src);
    p.apply(&[whoami(1, "ws1", 1), whoami(2, "ws9", 2)])
        .expect("apply");
    p.idle().expect("commit");
    let book = AlertBook::open(&dir.join("alerts.db")).expect("book");
    let incident = book
        .incidents(&IncidentFilter {
            tenant: Some("acme".into()),
            limit: 10,
            ..IncidentFilter::default()
        })
        .expect("incidents")[0]
        .clone();
    let id = incident["id"].as_i64().expect("id");
    // Scope, tactics and an assessment with reasons.
    assert_eq!(incident["scope"]["host"], serde_json::json!(["ws1", "ws9"]));
    assert_eq!(incident["tactics"], serde_json::json!(["discovery"]));
    assert_eq!(incident["severity"], "high");
    assert!(incident["assessment"]["severity"]["reason"]
        .as_str()
        .is_some_and(|r| r.contains("Whoami run")));

    // A false positive on ws9 becomes an exception; the preview counts the past alert.
    let on_ws9 = alerts(&book, None)
        .into_iter()
        .find(|a| a["entities"]["host"] == "ws9")
        .expect("ws9 alert");
    book.set_verdict(
        on_ws9["id"].as_i64().expect("id"),
        Verdict::FalsePositive,
        "admin tooling",
        "analyst",
        1,
    )
    .expect("verdict");
    let x = ExceptionRequest {
        tenant: "acme".into(),
        rule: "test-whoami".into(),
        field: "host".into(),
        value: "WS9".into(),
        expires_ms: None,
        reason: "admin tooling".into(),
    };
    assert_eq!(book.exception_preview(&x).expect("preview"), Some(1));
    book.add_exception(&x, "analyst", 1).expect("exception");
    // The stage picks the policy up within a second; later ws9 runs are suppressed.
    std::thread::sleep(std::time::Duration::from_millis(1100));
    p.apply(&[whoami(3, "ws9", 30), whoami(4, "ws1", 31)])
        .expect("apply");
    p.idle().expect("commit");
    let s = book.detection_summary("acme").expect("summary");
    assert_eq!(s["raw_detections"], 3, "the ws9 repeat was suppressed: {s}");

    // The lifecycle: no skipping from new to contained; triage, contain, close.
    assert!(book
        .transition(id, CaseState::Contained, "analyst", "", 10)
        .is_err());
    book.transition(id, CaseState::Triage, "analyst", "", 10)
        .expect("triage");
    book.transition(id, CaseState::Contained, "analyst", "isolated", 20)
        .expect("contain");
    book.transition(id, CaseState::Closed, "analyst", "done", 30)
        .expect("close");
    let full = book.incident(id, 40).expect("read").expect("incident");
    assert_eq!(full["state"], "closed");
    assert_eq!(full["acknowledged_ms"], 10);
    assert_eq!(full["contained_ms"], 20);
    assert_eq!(full["resolved_ms"], 30);
    let kinds: Vec<&str> = full["log"]
        .as_array()
        .expect("log")
        .iter()
        .filter_map(|e| e["kind"].as_str())
        .collect();
    assert_eq!(kinds, ["created", "verdict", "state", "state", "state"]);
    assert_eq!(full["sla"]["clocks"].as_array().map(Vec::len), Some(4));
}
