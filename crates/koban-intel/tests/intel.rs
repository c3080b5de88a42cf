//! Threat intelligence: patterns parse by the grammar; the shared STIX and MISP
//! samples import with every indicator accounted for; the set matches networks,
//! parent domains and hashes and forgets expired indicators; warning lists load.

use std::path::PathBuf;

use koban_intel::indicator::{time_ms, Indicator, Kind};
use koban_intel::stix::{atoms, parse};
use koban_intel::warninglist::WarningLists;
use koban_intel::{misp, stix, ImportReport, IndicatorSet};
use serde_json::Value;

fn data(rel: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../../shared/data/intel")
        .join(rel)
}

fn json_files(dir: &str) -> Vec<(String, Value)> {
    let mut out = Vec::new();
    let mut stack = vec![data(dir)];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).expect("dir") {
            let p = e.expect("entry").path();
            if p.is_dir() {
                stack.push(p);
            } else if p.extension().is_some_and(|x| x == "json") {
                let v = serde_json::from_slice(&std::fs::read(&p).expect("read")).expect("json");
                out.push((p.display().to_string(), v));
            }
        }
    }
    out.sort_by(|a, b| a.0.cmp(&b.0));
    out
}

#[test]
fn patterns_parse_and_say_what_koban_can_match() {
    let ok = |p: &str| atoms(&parse(p).unwrap_or_else(|e| panic!("{p}: {e}")));
    assert_eq!(
        ok("[ipv4-addr:value = '198.51.100.0/24']").expect("atoms"),
        vec![(Kind::Ip, "198.51.100.0/24".into())]
    );
    assert_eq!(
        ok("[file:hashes.'SHA-256' = 'AB' OR file:hashes.MD5 = 'cd']")
            .expect("atoms")
            .len(),
        2
    );
    assert_eq!(
        ok("[domain-name:value IN ('a.example', 'b.example')] OR [url:value = 'http://x.example/\\'q']")
            .expect("atoms"),
        vec![
            (Kind::Domain, "a.example".into()),
            (Kind::Domain, "b.example".into()),
            (Kind::Url, "http://x.example/'q".into())
        ]
    );
    assert_eq!(
        ok("[ipv4-addr:value ISSUBSET '10.0.0.0/8']")
            .expect("atoms")
            .len(),
        1
    );
    for (p, why) in [
        (
            "[email-message:subject MATCHES '^[IMPORTANT]']",
            "path email-message:subject",
        ),
        ("[domain-name:value MATCHES 'evil']", "operator MATCHES"),
        (
            "[x509-certificate:issuer = 'CN=a' AND x509-certificate:serial_number = '0e']",
            "AND between comparisons",
        ),
        (
            "[ipv4-addr:value = '1.2.3.4'] FOLLOWEDBY [domain-name:value = 'x.example']",
            "FOLLOWEDBY",
        ),
        (
            "[ipv4-addr:value = '1.2.3.4'] REPEATS 5 TIMES WITHIN 10 SECONDS",
            "qualifier REPEATS",
        ),
        ("[ipv4-addr:value != '1.2.3.4']", "operator !="),
        ("[ipv4-addr:value NOT = '1.2.3.4']", "NOT ="),
    ] {
        assert_eq!(ok(p).expect_err(p), why, "{p}");
    }
    for bad in [
        "[ipv4-addr:value = '1.2.3.4'",
        "ipv4-addr:value = '1'",
        "[ipv4-addr:value = ]",
        "[a:b = 'x'] AND",
    ] {
        assert!(parse(bad).is_err(), "{bad} parses");
    }
}

#[test]
fn the_shared_stix_and_misp_samples_import_with_every_indicator_accounted_for() {
    let mut all = Vec::new();
    let mut stix_report = ImportReport::default();
    let mut stix_objects = 0;
    for (path, doc) in json_files("stix2_examples") {
        let before = (stix_report.imported, stix_report.unsupported_total());
        stix::import_bundle(&doc, &path, &mut all, &mut stix_report);
        let objects = doc["objects"]
            .as_array()
            .map_or(0, |o| o.iter().filter(|x| x["type"] == "indicator").count());
        stix_objects += objects;
        let skipped = stix_report.unsupported_total() - before.1;
        let imported = stix_report.imported - before.0;
        // Each indicator object gave at least one indicator or one reason.
        assert!(
            imported + skipped >= objects,
            "{path}: {objects} indicators, {imported} + {skipped}"
        );
    }
    println!(
        "STIX: {stix_objects} indicator objects → {} indicators imported, {} unsupported {:?}",
        stix_report.imported,
        stix_report.unsupported_total(),
        stix_report.unsupported
    );
    assert!(stix_report.imported >= 30, "{stix_report:?}");

    let mut misp_report = ImportReport::default();
    let mut attributes = 0;
    for (path, doc) in json_files("misp_events") {
        let e = doc.get("Event").unwrap_or(&doc);
        if e.get("Attribute").is_none() && e.get("Object").is_none() {
            continue; // not an event (a STIX export, a sighting)
        }
        attributes += e["Attribute"].as_array().map_or(0, Vec::len)
            + e["Object"]
                .as_array()
                .into_iter()
                .flatten()
                .map(|o| o["Attribute"].as_array().map_or(0, Vec::len))
                .sum::<usize>();
        misp::import_event(&doc, &path, &mut all, &mut misp_report);
    }
    println!(
        "MISP: {attributes} attributes → {} imported, {} not indicators {:?}",
        misp_report.imported,
        misp_report.unsupported_total(),
        misp_report.unsupported
    );
    assert_eq!(
        misp_report.imported + misp_report.unsupported_total(),
        attributes
    );
    assert!(misp_report.imported >= 100, "{misp_report:?}");

    // Everything imported is matchable by its own value.
    let mut set = IndicatorSet::new();
    for i in all.clone() {
        set.insert(i);
    }
    for i in &all {
        let probe = match i.net() {
            Some(n) => n.network().to_string(),
            None => i.value.clone(),
        };
        assert!(
            !set.lookup(i.kind, &probe, 0).is_empty(),
            "{i:?} does not match itself"
        );
    }
}

#[test]
fn networks_parent_domains_hashes_and_expiry() {
    let mut set = IndicatorSet::new();
    let mut add = |k: Kind, v: &str, until: Option<i64>| {
        let mut i = Indicator::new(k, v, "test").expect("indicator");
        i.valid_until_ms = until;
        set.insert(i);
    };
    add(Kind::Ip, "203.0.113.0/24", None);
    add(Kind::Ip, "2001:db8::/32", None);
    add(Kind::Ip, "198.51.100.7", Some(1_000));
    add(Kind::Domain, "Evil.Example.", None);
    add(Kind::Sha256, &"AB".repeat(32), None);
    assert_eq!(set.lookup(Kind::Ip, "203.0.113.77", 0).len(), 1);
    assert!(set.lookup(Kind::Ip, "203.0.114.1", 0).is_empty());
    assert_eq!(set.lookup(Kind::Ip, "2001:db8:1::5", 0).len(), 1);
    assert_eq!(set.lookup(Kind::Ip, "198.51.100.7", 999).len(), 1);
    assert!(
        set.lookup(Kind::Ip, "198.51.100.7", 1_000).is_empty(),
        "expired"
    );
    assert_eq!(
        set.lookup(Kind::Domain, "cdn.login.EVIL.example", 0).len(),
        1
    );
    assert!(set.lookup(Kind::Domain, "notevil.example", 0).is_empty());
    assert!(set.lookup(Kind::Domain, "example", 0).is_empty());
    assert_eq!(set.lookup(Kind::Sha256, &"ab".repeat(32), 0).len(), 1);
    assert!(set.lookup(Kind::Md5, "not a hash", 0).is_empty());
    assert_eq!(time_ms("2016-04-06T20:03:48.000Z"), Some(1_459_973_028_000));
    assert_eq!(
        time_ms("2016-04-06T22:03:48+02:00"),
        Some(1_459_973_028_000)
    );
}

#[test]
fn the_shared_warning_lists_load_and_mark_benign_values() {
    let mut w = WarningLists::new();
    let mut entries = 0;
    for (path, doc) in json_files("misp_warninglists") {
        entries += w.add(&doc).unwrap_or_else(|e| panic!("{path}: {e}"));
    }
    println!(
        "warning lists: {} loaded, {entries} entries; not evaluated: {:?}",
        w.names.len(),
        w.not_evaluated
    );
    assert!(w.benign(Kind::Ip, "10.1.2.3").is_some(), "RFC 1918");
    assert!(w.benign(Kind::Ip, "8.8.8.8").is_some(), "public DNS");
    assert!(
        w.benign(Kind::Ip, "203.0.113.9").is_some(),
        "RFC 5735 documentation range"
    );
    assert!(w.benign(Kind::Ip, "185.220.101.4").is_none());
}

#[test]
fn the_attack_catalogue_names_every_technique_of_the_shared_table() {
    let doc: Value = serde_json::from_slice(
        &std::fs::read(data("attack/enterprise-attack-techniques.stix.json")).expect("read"),
    )
    .expect("json");
    let c = koban_intel::attack::Catalogue::from_stix(&doc).expect("catalogue");
    let table = std::fs::read_to_string(data("attack/techniques.tsv")).expect("tsv");
    let mut rows = 0;
    for line in table.lines().skip(1) {
        let f: Vec<&str> = line.split('\t').collect();
        let t = c
            .technique(f[0])
            .unwrap_or_else(|| panic!("{} missing", f[0]));
        assert_eq!(t.name, f[1], "{}", f[0]);
        assert_eq!(t.tactics.join(","), f[2].replace(' ', ""), "{}", f[0]);
        assert_eq!(t.retired, f[4] == "True", "{}", f[0]);
        rows += 1;
    }
    println!(
        "ATT&CK: {} techniques, {} tactics; {rows} rows of techniques.tsv agree",
        c.techniques.len(),
        c.tactics.len()
    );
    assert_eq!(
        c.technique("t1003.001").map(|t| t.name.as_str()),
        Some("LSASS Memory")
    );
}
