//! Per-event matching cost with the whole SigmaHQ rule set loaded: the events of the
//! SigmaHQ regression data (EVTX records of many kinds) run through routing, the
//! literal prefilter and full evaluation. Skips when the shared data is absent.

use std::path::{Path, PathBuf};

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use koban_sigma::{load_file, rule_files, CompileOptions, MatchScratch, Routing, RuleSet};

fn shared() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared/data")
}

fn bench(c: &mut Criterion) {
    let rules_dir = shared().join("sigma/rules");
    let events_dir = shared().join("windows/sigma_regression/regression_data");
    if !rules_dir.exists() || !events_dir.exists() {
        eprintln!("shared data not found; matching bench skipped");
        return;
    }
    let options = CompileOptions::default();
    let mut documents = Vec::new();
    for f in rule_files(&rules_dir).unwrap_or_default() {
        documents.extend(load_file(&f, &options).documents);
    }
    let (set, _) = RuleSet::build(documents, Routing::LogSource);
    let reader = match koban_parse::Reader::new() {
        Ok(r) => r,
        Err(e) => panic!("embedded map: {e}"),
    };
    let mut events = Vec::new();
    for f in walk(&events_dir) {
        if f.extension().is_some_and(|e| e == "evtx") {
            reader.read_file(&f, &mut |r| events.push(r.event), &mut |_| {});
        }
    }
    // A realistic mix: every 10th event of every Mordor dataset (Sysmon, Security,
    // PowerShell, as hosts log them while an attack runs among normal activity),
    // beside the regression events above, which are nearly all rule hits and so the
    // worst case.
    let mut mixed = Vec::new();
    for f in walk(&shared().join("windows/mordor_json")) {
        let mut n = 0u64;
        reader.read_file(
            &f,
            &mut |r| {
                n += 1;
                if n.is_multiple_of(10) {
                    mixed.push(r.event)
                }
            },
            &mut |_| {},
        );
    }
    let mut group = c.benchmark_group("matching");
    let rules = set.rules().len();
    if !mixed.is_empty() {
        let name = format!("{rules} rules x {} mordor events", mixed.len());
        bench_events(&mut group, &name, &set, &mixed);
    }
    bench_events(
        &mut group,
        &format!("{rules} rules x {} events", events.len()),
        &set,
        &events,
    );
    group.finish();
}

/// Times matching every event once, reported per event.
fn bench_events(
    group: &mut criterion::BenchmarkGroup<'_, criterion::measurement::WallTime>,
    name: &str,
    set: &RuleSet,
    events: &[koban_event::Event],
) {
    group.throughput(Throughput::Elements(events.len() as u64));
    group.bench_function(name, |b| {
        let mut scratch = MatchScratch::default();
        let mut out = Vec::new();
        b.iter(|| {
            let mut total = 0;
            for e in events {
                out.clear();
                set.matching(&mut scratch, e, &mut out);
                total += out.len();
            }
            total
        })
    });
}

fn walk(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).into_iter().flatten().flatten() {
            let p = e.path();
            if p.is_dir() {
                stack.push(p);
            } else {
                out.push(p);
            }
        }
    }
    out.sort();
    out
}

criterion_group!(benches, bench);
criterion_main!(benches);
