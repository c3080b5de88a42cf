//! A loaded, linked rule set: filters applied to the rules they name, correlations
//! resolved to the rules they count, and an index from log source to rules so an event
//! is only tested against the rules written for its kind of log.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use koban_event::{Event, LogSource};

use crate::correlation::Correlation;
use crate::error::{LoadError, RuleError};
use crate::prefilter::{Plan, RuleLiterals, Scan};
use crate::rule::{Document, LogSourceSpec, Rule};

/// Whether rules are restricted to events of their `logsource`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Routing {
    /// A rule sees only events whose product/service/category agree with its logsource.
    #[default]
    LogSource,
    /// Every rule sees every event (for logs Koban cannot classify).
    All,
}

/// Where a correlation's referenced rule lives.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Source {
    Rule(usize),
    Correlation(usize),
}

#[derive(Debug, Default)]
pub struct RuleSet {
    rules: Vec<Rule>,
    correlations: Vec<Correlation>,
    /// Per rule: does it alert on its own? (false when only correlations use it)
    standalone: Vec<bool>,
    /// Per rule, and per correlation: the (correlation, position in its `rules`) it feeds.
    rule_feeds: Vec<Vec<(usize, usize)>>,
    correlation_feeds: Vec<Vec<(usize, usize)>>,
    /// Per rule: its `name` and id, the names correlation aliases use.
    routes: HashMap<RouteKey, Vec<u32>>,
    routing: Routing,
    /// Per rule, what the prefilter needs (see `prefilter`).
    literals: Vec<RuleLiterals>,
    /// Matching plans per log source, shared by the workers.
    plans: Mutex<HashMap<LogSource, Arc<Plan>>>,
}

type RouteKey = (Option<String>, Option<String>, Option<String>);

impl RuleSet {
    /// Links documents into a rule set. Problems that only show when rules meet (a filter
    /// naming no loaded rule, a correlation naming an unknown rule) become errors.
    pub fn build(documents: Vec<Document>, routing: Routing) -> (RuleSet, Vec<LoadError>) {
        let mut errors = Vec::new();
        let mut rules = Vec::new();
        let mut filters = Vec::new();
        let mut correlations = Vec::new();
        for d in documents {
            match d {
                Document::Rule(r) => rules.push(r),
                Document::Filter(f) => filters.push(f),
                Document::Correlation(c) => correlations.push(c),
            }
        }
        // Rule references: by id or by name.
        let mut by_ref: HashMap<&str, Vec<usize>> = HashMap::new();
        for (i, r) in rules.iter().enumerate() {
            if let Some(id) = &r.meta.id {
                by_ref.entry(id.as_str()).or_default().push(i);
            }
            if let Some(name) = &r.meta.name {
                by_ref.entry(name.as_str()).or_default().push(i);
            }
        }
        let mut apply: Vec<(usize, usize)> = Vec::new();
        for (fi, f) in filters.iter().enumerate() {
            let mut found = false;
            for name in &f.rules {
                if let Some(targets) = by_ref.get(name.as_str()) {
                    found = true;
                    apply.extend(targets.iter().map(|&t| (t, fi)));
                }
            }
            if !found {
                errors.push(link_error(
                    &f.meta,
                    RuleError::Filter(format!(
                        "none of the rules it names ({}) is loaded",
                        f.rules.join(", ")
                    )),
                ));
            }
        }
        drop(by_ref);
        for (t, fi) in apply {
            rules[t].detection.and_filter(&filters[fi].detection);
        }

        let mut set = RuleSet {
            standalone: vec![true; rules.len()],
            rule_feeds: vec![Vec::new(); rules.len()],
            correlation_feeds: vec![Vec::new(); correlations.len()],
            routing,
            ..RuleSet::default()
        };
        let mut rule_ref: HashMap<String, usize> = HashMap::new();
        for (i, r) in rules.iter().enumerate() {
            for key in [&r.meta.id, &r.meta.name].into_iter().flatten() {
                rule_ref.insert(key.clone(), i);
            }
        }
        let mut corr_ref: HashMap<String, usize> = HashMap::new();
        for (i, c) in correlations.iter().enumerate() {
            for key in [&c.meta.id, &c.meta.name].into_iter().flatten() {
                corr_ref.insert(key.clone(), i);
            }
        }
        let mut valid = vec![true; correlations.len()];
        for (ci, c) in correlations.iter().enumerate() {
            let mut sources = Vec::new();
            for name in &c.rules {
                match (rule_ref.get(name), corr_ref.get(name)) {
                    (Some(&r), _) => sources.push(Source::Rule(r)),
                    (None, Some(&other)) if other != ci => sources.push(Source::Correlation(other)),
                    _ => {
                        errors.push(link_error(
                            &c.meta,
                            RuleError::Correlation(format!("rule `{name}` is not loaded")),
                        ));
                        valid[ci] = false;
                    }
                }
            }
            if !valid[ci] {
                continue;
            }
            for (pos, s) in sources.into_iter().enumerate() {
                match s {
                    Source::Rule(r) => {
                        set.rule_feeds[r].push((ci, pos));
                        if !c.generate {
                            set.standalone[r] = false;
                        }
                    }
                    Source::Correlation(o) => set.correlation_feeds[o].push((ci, pos)),
                }
            }
        }
        // A rule that any generating correlation (or none) uses alerts on its own.
        for (ci, c) in correlations.iter().enumerate() {
            if c.generate && valid[ci] {
                for name in &c.rules {
                    if let Some(&r) = rule_ref.get(name) {
                        set.standalone[r] = true;
                    }
                }
            }
        }
        for (i, r) in rules.iter().enumerate() {
            set.routes
                .entry(route_key(&r.meta.logsource))
                .or_default()
                .push(i as u32);
        }
        set.literals = rules.iter().map(RuleLiterals::of).collect();
        set.rules = rules;
        set.correlations = correlations;
        (set, errors)
    }

    pub fn rules(&self) -> &[Rule] {
        &self.rules
    }

    pub fn correlations(&self) -> &[Correlation] {
        &self.correlations
    }

    /// Whether rule `i` alerts on its own (not only as part of correlations).
    pub fn is_standalone(&self, i: usize) -> bool {
        self.standalone[i]
    }

    /// The correlations rule `i` feeds: (correlation index, position in its rules).
    pub fn feeds_of_rule(&self, i: usize) -> &[(usize, usize)] {
        &self.rule_feeds[i]
    }

    /// The correlations correlation `i` feeds (chaining).
    pub fn feeds_of_correlation(&self, i: usize) -> &[(usize, usize)] {
        &self.correlation_feeds[i]
    }

    /// The rules that apply to events from `ls`, in rule order.
    pub fn candidates(&self, ls: &LogSource) -> Vec<u32> {
        if self.routing == Routing::All {
            return (0..self.rules.len() as u32).collect();
        }
        let products = [ls.product.as_deref(), None];
        let n_products = if ls.product.is_some() { 2 } else { 1 };
        // Each value the event has, plus `None` for rules that leave it open.
        let or_any = |values: &[Box<str>]| -> Vec<Option<String>> {
            values
                .iter()
                .map(|v| Some(v.to_string()))
                .chain([None])
                .collect()
        };
        let (services, categories) = (or_any(&ls.services), or_any(&ls.categories));
        let mut out = Vec::new();
        for p in &products[..n_products] {
            for s in &services {
                for c in &categories {
                    let key = (p.map(str::to_owned), c.clone(), s.clone());
                    if let Some(v) = self.routes.get(&key) {
                        out.extend_from_slice(v);
                    }
                }
            }
        }
        out.sort_unstable();
        out.dedup();
        out
    }

    /// Indices of the rules that match the event: those of its log source, less the
    /// ones the literal prefilter rules out, each evaluated in full.
    pub fn matching(&self, scratch: &mut MatchScratch, event: &Event, out: &mut Vec<u32>) {
        // Consecutive events usually share a log source: reuse the last plan without
        // hashing (and without touching the shared reference count).
        let MatchScratch { plans, last, scan } = scratch;
        if !last.as_ref().is_some_and(|(ls, _)| *ls == event.logsource) {
            let plan = match plans.get(&event.logsource) {
                Some(p) => p.clone(),
                None => {
                    // Plans are shared by all workers: built once per log source.
                    let plan = self
                        .plans
                        .lock()
                        .unwrap_or_else(std::sync::PoisonError::into_inner)
                        .entry(event.logsource.clone())
                        .or_insert_with(|| {
                            Arc::new(Plan::build(
                                self.candidates(&event.logsource),
                                &self.literals,
                            ))
                        })
                        .clone();
                    plans.insert(event.logsource.clone(), plan.clone());
                    plan
                }
            };
            *last = Some((event.logsource.clone(), plan));
        }
        let Some((_, plan)) = last.as_ref() else {
            return;
        };
        if plan.candidates.is_empty() {
            return;
        }
        plan.scan(event, scan);
        for (pos, &i) in plan.candidates.iter().enumerate() {
            if plan.may_match(pos, scan) && self.rules[i as usize].detection.matches(event) {
                out.push(i);
            }
        }
    }

    /// How many rules the literal prefilter can skip (the rest are always evaluated).
    pub fn prefiltered_rules(&self) -> usize {
        self.literals.iter().filter(|l| l.is_prefiltered()).count()
    }
}

fn route_key(ls: &LogSourceSpec) -> RouteKey {
    (ls.product.clone(), ls.category.clone(), ls.service.clone())
}

fn link_error(meta: &crate::rule::Meta, error: RuleError) -> LoadError {
    LoadError {
        file: meta.origin.file.to_path_buf(),
        document: meta.origin.document,
        line: Some(meta.origin.line),
        rule: Some(meta.key().to_owned()),
        error,
    }
}

/// Per-worker state for matching: routing answers cached per log source (events of
/// one kind repeat endlessly) and the prefilter's buffers. One per thread.
#[derive(Debug, Default)]
pub struct MatchScratch {
    plans: HashMap<LogSource, Arc<Plan>, koban_event::FnvBuild>,
    last: Option<(LogSource, Arc<Plan>)>,
    scan: Scan,
}
