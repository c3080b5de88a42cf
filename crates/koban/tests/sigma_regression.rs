//! SigmaHQ's regression tests: for every test folder under
//! `shared/data/windows/sigma_regression/regression_data`, hunt the named rule over the
//! test's EVTX file and over its JSON file; each must give exactly `match_count`
//! detections (or at least one when no count is given).
//!
//! Skips (and says so) when the shared data folder is absent.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use koban::hunt;
use koban_sigma::{load_file, rule_files, CompileOptions, Routing, RuleSet};

fn data_dir() -> Option<PathBuf> {
    let d =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared/data/windows/sigma_regression");
    d.exists().then_some(d)
}

struct Case {
    dir: PathBuf,
    rule_id: String,
    match_count: Option<u64>,
}

fn cases(root: &Path) -> Vec<Case> {
    let mut out = Vec::new();
    let infos = rule_files(&root.join("regression_data")).unwrap_or_default();
    for p in infos
        .iter()
        .filter(|p| p.file_name().is_some_and(|n| n == "info.yml"))
    {
        let text = std::fs::read_to_string(p).unwrap_or_default();
        let info: serde_yaml::Value =
            serde_yaml::from_str(&text).unwrap_or(serde_yaml::Value::Null);
        let rule_id = info["rule_metadata"][0]["id"]
            .as_str()
            .unwrap_or_default()
            .to_owned();
        let tests = &info["regression_tests_info"];
        if !tests.is_sequence() {
            continue; // no EVTX/JSON test (e.g. a raw Cisco line)
        }
        out.push(Case {
            dir: p.parent().unwrap_or(root).to_path_buf(),
            rule_id,
            match_count: tests[0]["match_count"].as_u64(),
        });
    }
    out.sort_by(|a, b| a.dir.cmp(&b.dir));
    out
}

/// Tests whose upstream `match_count` disagrees with the Sigma specification, with
/// the count the specification gives. Each listed event plainly satisfies the rule
/// (see the closing note of the Sigma engine issue); the suite still fails if Koban's
/// count differs from the number here.
const UPSTREAM_COUNT_ERRORS: [(&str, u64, &str); 4] = [
    (
        "file_event_win_anydesk_artefact",
        3,
        "user.conf.new (twice) and user.conf~RF2d9c20d.TMP all contain \\AnyDesk\\user.conf",
    ),
    (
        "file_event_win_cred_dump_tools_dropped_files",
        3,
        "procdump64.exe, procdump64a.exe and procdump.exe are each listed by endswith",
    ),
    (
        "registry_set_change_security_zones",
        3,
        "three ZoneMap\\Domains values set to DWORD 2, none filtered",
    ),
    (
        "registry_set_disable_administrative_share",
        2,
        "AutoShareServer and AutoShareWks both set to DWORD 0",
    ),
];

#[test]
fn sigmahq_regression_suite() {
    let Some(root) = data_dir() else {
        eprintln!("shared data not found; sigma regression suite skipped");
        return;
    };
    let options = CompileOptions::default();
    // Index every rule of the regression snapshot by id.
    let mut by_id: HashMap<String, koban_sigma::Document> = HashMap::new();
    for f in rule_files(&root.join("rules")).expect("rules folder") {
        for d in load_file(&f, &options).documents {
            if let Some(id) = d.meta().id.clone() {
                by_id.insert(id, d);
            }
        }
    }
    let reader = koban_parse::Reader::new().expect("embedded map");
    let (mut passed, mut failed, mut deviations) = (0, 0, 0);
    let mut failures = Vec::new();
    for case in cases(&root) {
        let Some(doc) = by_id.get(&case.rule_id) else {
            failed += 2;
            failures.push(format!(
                "{}: rule {} not found",
                case.dir.display(),
                case.rule_id
            ));
            continue;
        };
        let (set, errors) = RuleSet::build(vec![doc.clone()], Routing::LogSource);
        assert!(errors.is_empty(), "{errors:?}");
        for ext in ["evtx", "json"] {
            let file = case.dir.join(format!("{}.{ext}", case.rule_id));
            if !file.exists() {
                continue;
            }
            let out = hunt::run(
                &set,
                &reader,
                std::slice::from_ref(&file),
                hunt::HuntOptions::default(),
            );
            let got = out.detections.len() as u64;
            let name = case
                .dir
                .file_name()
                .and_then(|n| n.to_str())
                .unwrap_or_default();
            let corrected = UPSTREAM_COUNT_ERRORS.iter().find(|(n, _, _)| *n == name);
            let ok = match (corrected, case.match_count) {
                (Some((_, n, why)), Some(upstream)) => {
                    if got == *n {
                        deviations += 1;
                        eprintln!("DEVIATES {name} ({ext}): upstream says {upstream}, the spec gives {n}: {why}");
                    }
                    got == *n
                }
                (_, Some(n)) => got == n,
                (_, None) => got >= 1,
            };
            if ok {
                passed += 1;
            } else {
                failed += 1;
                failures.push(format!(
                    "{} ({ext}): expected {}, got {got}; read errors {:?}",
                    case.dir.strip_prefix(&root).unwrap_or(&case.dir).display(),
                    case.match_count.map_or("≥1".into(), |n| n.to_string()),
                    out.errors
                ));
            }
        }
    }
    for f in &failures {
        eprintln!("FAIL {f}");
    }
    println!(
        "sigma regression: {passed} passed, {failed} failed ({deviations} of the passes use the spec count where upstream's match_count is wrong)"
    );
    assert_eq!(failed, 0, "{failed} regression checks failed");
}
