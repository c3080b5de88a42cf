//! Threat intelligence in the stream: indicators loaded from a STIX bundle and a plain
//! list turn matching events into alerts that carry the indicator's context; a
//! warning list keeps a known-benign value quiet; events with nothing listed stay
//! quiet.

use std::path::PathBuf;
use std::sync::Arc;

use koban_server::alerts::{AlertBook, AlertFilter, Grouping};
use koban_server::intel::Intel;
use koban_server::{
    DetectStage, Pipeline, Record, RecordKind, RuleSource, StorePipeline, WalRecord,
};
use koban_store::StoreOptions;

fn temp_dir(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("koban-intel-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).expect("temp dir");
    d
}

fn wal(seq: u64, line: &str) -> WalRecord {
    WalRecord {
        seq,
        record: Record {
            tenant: "acme".into(),
            source: "zeek".into(),
            kind: RecordKind::NdjsonLine,
            received_ms: 1_764_500_000_000,
            remote: None,
            payload: line.as_bytes().to_vec(),
        },
    }
}

#[test]
fn listed_values_alert_with_their_context_and_benign_ones_do_not() {
    let dir = temp_dir("stream");
    let feeds = dir.join("feeds");
    std::fs::create_dir_all(&feeds).expect("feeds");
    std::fs::write(
        feeds.join("c2.json"),
        r#"{"type":"bundle","id":"bundle--1","objects":[{"type":"indicator","spec_version":"2.1",
        "id":"indicator--1","name":"Example C2","confidence":90,"pattern_type":"stix",
        "pattern":"[ipv4-addr:value = '198.51.100.0/24'] OR [domain-name:value = 'evil.example']",
        "valid_from":"2026-01-01T00:00:00Z"}]}"#,
    )
    .expect("stix");
    // 8.8.8.8 is listed too — the public-DNS warning list must keep it quiet.
    std::fs::write(feeds.join("list.txt"), "# a plain feed\n8.8.8.8\n").expect("list");
    let warn = dir.join("public-dns.json");
    std::fs::write(
        &warn,
        r#"{"name":"Public DNS","type":"cidr","list":["8.8.8.8/32"],"description":"","matching_attributes":[],"version":1}"#,
    )
    .expect("warninglist");
    let intel = Intel::load(&[feeds], &[warn]).expect("intel");
    assert_eq!(intel.indicators(), 3);

    let rules = RuleSource::load(&[]).expect("rules");
    let stage = DetectStage::open(&dir.join("alerts.db"), rules, Grouping::default())
        .expect("stage")
        .with_intel(Arc::new(intel));
    let mut p = StorePipeline::open(&dir.join("events"), StoreOptions::default())
        .expect("store")
        .with_detection(stage);
    let lines = [
        r#"{"ts":1764500000.0,"uid":"C1","id.orig_h":"10.0.0.5","id.resp_h":"198.51.100.23","id.resp_p":443,"proto":"tcp"}"#,
        r#"{"ts":1764500001.0,"uid":"C2","id.orig_h":"10.0.0.5","query":"cdn.evil.example","qtype_name":"A"}"#,
        r#"{"ts":1764500002.0,"uid":"C3","id.orig_h":"10.0.0.5","id.resp_h":"8.8.8.8","id.resp_p":53,"proto":"udp"}"#,
        r#"{"ts":1764500003.0,"uid":"C4","id.orig_h":"10.0.0.5","id.resp_h":"192.0.2.80","id.resp_p":80,"proto":"tcp"}"#,
    ];
    let batch: Vec<WalRecord> = lines
        .iter()
        .enumerate()
        .map(|(i, l)| wal(i as u64 + 1, l))
        .collect();
    p.apply(&batch).expect("apply");
    p.idle().expect("commit");
    drop(p);
    let book = AlertBook::open(&dir.join("alerts.db")).expect("book");
    let alerts = book
        .alerts(&AlertFilter {
            tenant: Some("acme".into()),
            limit: 100,
            ..AlertFilter::default()
        })
        .expect("alerts");
    let mut titles: Vec<String> = alerts
        .iter()
        .map(|a| a["title"].as_str().unwrap_or("").to_owned())
        .collect();
    titles.sort();
    assert_eq!(
        titles,
        [
            "Threat intel: domain evil.example",
            "Threat intel: ip 198.51.100.0/24"
        ],
        "{alerts:#?}"
    );
    let ip = alerts
        .iter()
        .find(|a| a["title"].as_str().is_some_and(|t| t.contains("ip")))
        .expect("ip alert");
    assert_eq!(ip["level"], "high", "confidence 90");
    let why = ip["why"].as_str().unwrap_or_default();
    assert!(
        why.contains(".ip = 198.51.100.23 is on c2.json") && why.contains("Example C2"),
        "{why}"
    );
}
