//! Tests as data for the Sigma engine: every `*.yml` file under `tests/cases/` is one
//! case — Sigma rule text, a list of events, and the detections they must give.
//!
//! A case file is one YAML document:
//!
//! ```yaml
//! description: what the case proves
//! rules: |            # one or more Sigma documents (multi-document YAML), as text
//!   title: ...
//! events:             # each item becomes one event (Windows-shaped ones are normalised)
//!   - {Channel: Microsoft-Windows-Sysmon/Operational, EventID: 1, Image: 'C:\x.exe'}
//! expect:             # in any order: rule id (or title) and 0-based event index
//!   - {rule: some-id, event: 0}
//! expect_errors: 0    # optional: how many load/link errors, or a list of substrings
//! routing: logsource  # optional: logsource (default) or all
//! placeholders:       # optional: values for `%name%` with the `expand` modifier
//!   admins: [root, adm_*]
//! ```
//!
//! For correlation detections `event` is the index of the event that completed it.
//! With a list for `expect_errors`, there must be exactly that many errors and each
//! substring must occur in at least one of the error messages.
//!
//! Cases under `tests/cases-engine-bugs/` describe suspected engine bugs and are not
//! run here.

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};

use koban::hunt::{self, HuntOptions};
use koban_parse::{Reader, SourceHint};
use koban_sigma::{load_str, CompileOptions, Routing, RuleSet};
use serde::Deserialize;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Case {
    description: String,
    rules: String,
    #[serde(default)]
    events: Vec<serde_yaml::Value>,
    #[serde(default)]
    expect: Vec<Expected>,
    #[serde(default)]
    expect_errors: Option<ExpectErrors>,
    #[serde(default)]
    routing: Option<String>,
    #[serde(default)]
    placeholders: BTreeMap<String, OneOrMany>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Expected {
    rule: String,
    event: u64,
}

#[derive(Debug, Deserialize)]
#[serde(untagged)]
enum ExpectErrors {
    Count(usize),
    Substrings(Vec<String>),
}

#[derive(Debug, Deserialize)]
#[serde(untagged)]
enum OneOrMany {
    One(String),
    Many(Vec<String>),
}

fn cases_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/cases")
}

/// Every case file under `dir`, sorted by path (the rule loader's own walk).
fn case_files(dir: &Path) -> Vec<PathBuf> {
    koban_sigma::rule_files(dir).unwrap_or_default()
}

/// Runs one case; `Err` carries a readable account of what differed.
fn run_case(path: &Path, reader: &Reader) -> Result<(), String> {
    let text = std::fs::read_to_string(path).map_err(|e| format!("cannot read: {e}"))?;
    let case: Case =
        serde_yaml::from_str(&text).map_err(|e| format!("not a valid case file: {e}"))?;
    if case.description.trim().is_empty() {
        return Err("the case has no description".into());
    }
    let routing = match case.routing.as_deref() {
        None | Some("logsource") => Routing::LogSource,
        Some("all") => Routing::All,
        Some(other) => return Err(format!("routing `{other}` is not logsource or all")),
    };
    let placeholders: HashMap<String, Vec<String>> = case
        .placeholders
        .into_iter()
        .map(|(k, v)| {
            let values = match v {
                OneOrMany::One(s) => vec![s],
                OneOrMany::Many(v) => v,
            };
            (k, values)
        })
        .collect();
    let options = CompileOptions { placeholders };

    let loaded = load_str(&case.rules, path, &options);
    let (set, link_errors) = RuleSet::build(loaded.documents, routing);
    let errors: Vec<String> = loaded
        .errors
        .iter()
        .chain(link_errors.iter())
        .map(ToString::to_string)
        .collect();
    let mut problems = Vec::new();
    let (want_errors, substrings): (usize, &[String]) = match &case.expect_errors {
        None => (0, &[]),
        Some(ExpectErrors::Count(n)) => (*n, &[]),
        Some(ExpectErrors::Substrings(s)) => (s.len(), s),
    };
    if errors.len() != want_errors {
        problems.push(format!(
            "expected {want_errors} rule error(s), got {}:",
            errors.len()
        ));
        problems.extend(errors.iter().map(|e| format!("    {e}")));
    }
    for s in substrings {
        if !errors.iter().any(|e| e.contains(s.as_str())) {
            problems.push(format!("no rule error mentions {s:?}"));
        }
    }

    let mut events = Vec::with_capacity(case.events.len());
    for (i, e) in case.events.into_iter().enumerate() {
        let json =
            serde_json::to_value(&e).map_err(|err| format!("event {i} is not JSON-like: {err}"))?;
        let event = reader
            .normalise_json(json, &SourceHint::default())
            .ok_or_else(|| format!("event {i} is not an object"))?;
        events.push(event);
    }

    // `rule:` may name a rule or correlation by its key (id, else title) or its title.
    let mut title_to_key: HashMap<String, String> = HashMap::new();
    for m in set
        .rules()
        .iter()
        .map(|r| &r.meta)
        .chain(set.correlations().iter().map(|c| &c.meta))
    {
        title_to_key.insert(m.title.clone(), m.key().to_owned());
    }
    let keys: Vec<String> = title_to_key.values().cloned().collect();
    let mut want: Vec<(String, u64)> = case
        .expect
        .iter()
        .map(|x| {
            let key = if keys.contains(&x.rule) {
                x.rule.clone()
            } else {
                title_to_key
                    .get(&x.rule)
                    .cloned()
                    .unwrap_or_else(|| x.rule.clone())
            };
            (key, x.event)
        })
        .collect();
    let detections = hunt::run_events(&set, events, Path::new("case"), HuntOptions::default());
    let mut got: Vec<(String, u64)> = detections
        .iter()
        .map(|d| (d.rule_id.clone(), d.record))
        .collect();
    want.sort();
    got.sort();
    if want != got {
        let (missing, unexpected) = multiset_diff(&want, &got);
        problems.push("detections differ:".into());
        for (r, e) in missing {
            problems.push(format!("    missing     {{rule: {r}, event: {e}}}"));
        }
        for (r, e) in unexpected {
            let why = detections
                .iter()
                .find(|d| d.rule_id == r && d.record == e)
                .map(|d| d.why.clone())
                .unwrap_or_default();
            problems.push(format!(
                "    unexpected  {{rule: {r}, event: {e}}}  ({why})"
            ));
        }
    }
    if problems.is_empty() {
        Ok(())
    } else {
        Err(format!(
            "{}\n  {}",
            case.description.trim(),
            problems.join("\n  ")
        ))
    }
}

/// (in `want` but not `got`, in `got` but not `want`), counting repeats. Both sorted.
fn multiset_diff<T: Ord + Clone>(want: &[T], got: &[T]) -> (Vec<T>, Vec<T>) {
    let (mut i, mut j) = (0, 0);
    let (mut missing, mut unexpected) = (Vec::new(), Vec::new());
    while i < want.len() || j < got.len() {
        match (want.get(i), got.get(j)) {
            (Some(a), Some(b)) if a == b => {
                i += 1;
                j += 1;
            }
            (Some(a), Some(b)) if a < b => {
                missing.push(a.clone());
                i += 1;
            }
            (Some(_), Some(b)) => {
                unexpected.push(b.clone());
                j += 1;
            }
            (Some(a), None) => {
                missing.push(a.clone());
                i += 1;
            }
            (None, Some(b)) => {
                unexpected.push(b.clone());
                j += 1;
            }
            (None, None) => break,
        }
    }
    (missing, unexpected)
}

#[test]
fn sigma_cases() {
    let reader = Reader::new().expect("the embedded Windows map loads");
    let dir = cases_dir();
    let files = case_files(&dir);
    assert!(!files.is_empty(), "no case files under {}", dir.display());
    let (mut passed, mut failed) = (0usize, 0usize);
    for f in &files {
        let name = f.strip_prefix(&dir).unwrap_or(f).display().to_string();
        match run_case(f, &reader) {
            Ok(()) => {
                passed += 1;
                println!("ok   {name}");
            }
            Err(why) => {
                failed += 1;
                println!("FAIL {name}: {why}");
            }
        }
    }
    println!("sigma cases: {passed} passed, {failed} failed");
    assert_eq!(
        failed, 0,
        "{failed} sigma case(s) failed; run with --nocapture for the diffs"
    );
}
