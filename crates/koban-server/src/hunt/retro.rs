//! Retro-hunts: Sigma rules run over a time range of one tenant's stored events, as
//! if those events were arriving now. Matches become alerts marked retroactive, folded
//! and grouped like live ones; an event some alert of the same rule already holds is
//! counted but not alerted again.
//!
//! Events are read partition by partition (receive day), each in index order — for
//! one writer that is arrival order, so correlations see what the live stage saw.

use std::collections::BTreeMap;
use std::ops::ControlFlow;
use std::path::Path;
use std::sync::Arc;

use koban_detect::StreamDetector;
use koban_sigma::{CompileOptions, Routing, RuleSet};
use koban_store::{SearchRequest, StoreSearcher};
use serde::Serialize;

use crate::alerts::{AlertBook, AlertsError, Detected, EventRef, Grouping, Policy};
use crate::state::now_ms;

/// Detections recorded per transaction.
const BATCH: usize = 500;

/// Which rules a retro-hunt runs.
#[derive(Debug, Clone)]
pub enum RetroRules {
    /// Every rule the tenant has enabled.
    Enabled,
    /// These rules (ids or titles) of the loaded set, enabled or not.
    Keys(Vec<String>),
    /// Rules given as Sigma YAML (one or more documents), e.g. one published today.
    Yaml(String),
}

#[derive(Debug, Clone)]
pub struct RetroRequest {
    pub tenant: String,
    pub from_ms: Option<i64>,
    pub to_ms: Option<i64>,
    pub rules: RetroRules,
}

#[derive(Debug, Clone, Default, Serialize)]
pub struct RetroReport {
    pub events: u64,
    pub rules: usize,
    /// Raw detections before folding, per (source, rule): what `koban hunt` over the
    /// same files reports per (file, rule).
    pub detections: u64,
    pub per_source_rule: BTreeMap<String, BTreeMap<String, u64>>,
    pub suppressed: u64,
    pub already_alerted: u64,
    pub new_alerts: u64,
    pub folded: u64,
    pub new_incidents: u64,
    pub took_ms: i64,
}

#[derive(Debug, thiserror::Error)]
pub enum RetroError {
    #[error("the rules do not compile: {0}")]
    Rules(String),
    #[error(transparent)]
    Store(#[from] koban_store::StoreError),
    #[error(transparent)]
    Alerts(#[from] AlertsError),
}

/// The rule set a request runs and whether a rule of it counts.
fn rule_set(
    loaded: &Arc<RuleSet>,
    rules: &RetroRules,
) -> Result<(Arc<RuleSet>, Option<Vec<String>>), RetroError> {
    match rules {
        RetroRules::Enabled => Ok((loaded.clone(), None)),
        RetroRules::Keys(keys) => {
            let known = |k: &String| {
                loaded.rules().iter().any(|r| r.meta.key() == k)
                    || loaded.correlations().iter().any(|c| c.meta.key() == k)
            };
            if let Some(unknown) = keys.iter().find(|k| !known(k)) {
                return Err(RetroError::Rules(format!("no loaded rule {unknown:?}")));
            }
            Ok((loaded.clone(), Some(keys.clone())))
        }
        RetroRules::Yaml(text) => {
            let file = koban_sigma::load_str(
                text,
                Path::new("retro-hunt rule"),
                &CompileOptions::default(),
            );
            let mut problems: Vec<String> = file.errors.iter().map(|e| e.to_string()).collect();
            let (set, link_errors) = RuleSet::build(file.documents, Routing::LogSource);
            problems.extend(link_errors.iter().map(|e| e.to_string()));
            if !problems.is_empty() {
                return Err(RetroError::Rules(problems.join("; ")));
            }
            if set.rules().is_empty() && set.correlations().is_empty() {
                return Err(RetroError::Rules("no rule in the YAML".into()));
            }
            Ok((Arc::new(set), None))
        }
    }
}

/// Runs a retro-hunt; `progress(done, total)` after each partition.
pub fn retro_hunt(
    searcher: &StoreSearcher,
    book: &AlertBook,
    loaded: &Arc<RuleSet>,
    policy: &Policy,
    grouping: &Grouping,
    req: &RetroRequest,
    progress: &mut dyn FnMut(usize, usize),
) -> Result<RetroReport, RetroError> {
    let started = now_ms();
    let (set, only) = rule_set(loaded, &req.rules)?;
    let mut report = RetroReport {
        rules: set.rules().len() + set.correlations().len(),
        ..RetroReport::default()
    };
    let given_yaml = matches!(req.rules, RetroRules::Yaml(_));
    let tenant = req.tenant.as_str();
    let enabled = |rule: &str| match &only {
        Some(keys) => keys.iter().any(|k| k == rule),
        None if given_yaml => true,
        None => policy.enabled(tenant, rule),
    };
    let mut detector: StreamDetector<EventRef> = StreamDetector::new(set);
    let mut search = SearchRequest::new(tenant);
    search.from_ms = req.from_ms;
    search.to_ms = req.to_ms;
    let mut found = Vec::new();
    let mut pending: Vec<Detected> = Vec::new();
    let mut failure: Option<AlertsError> = None;
    let flush = |pending: &mut Vec<Detected>, report: &mut RetroReport| {
        if pending.is_empty() {
            return Ok(());
        }
        let r = book.record_retro(pending, grouping, now_ms())?;
        pending.clear();
        report.already_alerted += r.already_alerted;
        report.new_alerts += r.new_alerts;
        report.folded += r.folded;
        report.new_incidents += r.new_incidents;
        Ok::<(), AlertsError>(())
    };
    searcher.scan(&search, progress, &mut |hit| {
        report.events += 1;
        let at = || EventRef {
            source: hit.source.clone(),
            seq: hit.seq,
            sub: hit.sub,
            received_ms: hit.received_ms,
        };
        found.clear();
        detector.detect(tenant, &hit.event, &at, &enabled, &mut found);
        for f in found.drain(..) {
            report.detections += 1;
            let source = f
                .evidence
                .last()
                .map(|e| e.source.clone())
                .unwrap_or_default();
            *report
                .per_source_rule
                .entry(source)
                .or_default()
                .entry(f.rule.key.clone())
                .or_default() += 1;
            let at_ms = f.time.unwrap_or(hit.time_ms);
            if policy.has_exceptions()
                && policy
                    .suppressed_by(tenant, &f.rule.key, &f.entities, Some(&hit.event), at_ms)
                    .is_some()
            {
                report.suppressed += 1;
                continue;
            }
            pending.push(Detected {
                tenant: tenant.to_owned(),
                level: policy.level(tenant, &f.rule.key, f.rule.level),
                found: f,
            });
        }
        if pending.len() >= BATCH {
            if let Err(e) = flush(&mut pending, &mut report) {
                failure = Some(e);
                return ControlFlow::Break(());
            }
        }
        ControlFlow::Continue(())
    })?;
    if let Some(e) = failure {
        return Err(e.into());
    }
    flush(&mut pending, &mut report)?;
    report.took_ms = now_ms() - started;
    Ok(report)
}
