//! Detection over a stream of events, as the server sees them: each event is matched
//! at once against the rules of its log source; matches of rules that feed
//! correlations become signals fed straight to that tenant's correlation engine (events
//! arrive roughly in time order; the hunt over files sorts them first instead).
//!
//! The engine's open windows can be saved and restored, so a correlation whose first
//! half arrived before a restart fires on its second half after it.

use std::collections::HashMap;
use std::sync::Arc;

use koban_event::Event;
use koban_sigma::{
    CorrelationEngine, CorrelationHit, CorrelationKind, Level, MatchScratch, RuleSet, SavedWindow,
};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

use crate::entities::Entities;

/// What a rule or correlation says about itself in an alert.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RuleRef {
    /// The rule's id, else its title.
    pub key: String,
    pub title: String,
    pub level: Level,
    pub tactics: Vec<String>,
    pub techniques: Vec<String>,
}

/// One detection: a rule that matched an event, or a correlation that fired.
#[derive(Debug, Clone)]
pub struct Found<P> {
    pub rule: RuleRef,
    /// Event time (ms); for a correlation, its last signal's.
    pub time: Option<i64>,
    pub entities: Entities,
    /// Why, in words an analyst reads: the selection, field and value that matched, or
    /// the correlation's count and window.
    pub why: String,
    pub correlation: bool,
    /// Events it stands for (1 for a rule match; the correlation's count).
    pub count: u64,
    /// What the caller attached to the event(s): one for a rule match, the most recent
    /// contributing signals for a correlation.
    pub evidence: Vec<P>,
}

/// A base-rule match kept inside a correlation window.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Signal<P> {
    pub entities: Entities,
    pub evidence: P,
}

/// The saved state: per tenant, the open correlation windows.
pub type SavedState<P> = Vec<(String, Vec<SavedWindow<Signal<P>>>)>;

/// Matching + streaming correlation for every tenant. One per pipeline thread.
pub struct StreamDetector<P> {
    set: Arc<RuleSet>,
    needed: Vec<Vec<String>>,
    scratch: MatchScratch,
    matched: Vec<u32>,
    engines: HashMap<String, CorrelationEngine<Signal<P>>>,
}

impl<P: Clone + Serialize + DeserializeOwned> StreamDetector<P> {
    pub fn new(set: Arc<RuleSet>) -> StreamDetector<P> {
        StreamDetector {
            needed: correlation_fields(&set),
            set,
            scratch: MatchScratch::default(),
            matched: Vec::new(),
            engines: HashMap::new(),
        }
    }

    pub fn rules(&self) -> &Arc<RuleSet> {
        &self.set
    }

    /// Swaps in a new rule set, keeping the windows of correlations it still has.
    pub fn replace_rules(&mut self, set: Arc<RuleSet>) {
        let saved = self.save();
        self.needed = correlation_fields(&set);
        self.set = set;
        self.scratch = MatchScratch::default();
        self.engines.clear();
        self.restore(saved);
    }

    /// Matches one event of `tenant`. `enabled(rule_key)` says whether the tenant runs
    /// a rule (a disabled rule neither alerts nor feeds correlations). `evidence` makes
    /// the event's reference, called only when something matched (most events match
    /// nothing, and the hot path should not build what it throws away).
    pub fn detect(
        &mut self,
        tenant: &str,
        event: &Event,
        evidence: &dyn Fn() -> P,
        enabled: &dyn Fn(&str) -> bool,
        out: &mut Vec<Found<P>>,
    ) {
        self.matched.clear();
        self.set
            .matching(&mut self.scratch, event, &mut self.matched);
        if self.matched.is_empty() {
            return;
        }
        let set = self.set.clone();
        let evidence = evidence();
        let mut entities = None;
        let mut hits = Vec::new();
        for &i in &self.matched {
            let i = i as usize;
            let rule = &set.rules()[i];
            if !enabled(rule.meta.key()) {
                continue;
            }
            let ents = entities.get_or_insert_with(|| Entities::of(event)).clone();
            if set.is_standalone(i) {
                out.push(Found {
                    rule: rule_ref(&rule.meta),
                    time: event.timestamp,
                    entities: ents.clone(),
                    why: rule.detection.explain(event).to_string(),
                    correlation: false,
                    count: 1,
                    evidence: vec![evidence.clone()],
                });
            }
            let feeds = set.feeds_of_rule(i);
            let Some(time) = event.timestamp else {
                continue;
            };
            if feeds.is_empty() {
                continue;
            }
            let values: HashMap<&str, String> = self.needed[i]
                .iter()
                .filter_map(|n| event.get_str(n).map(|v| (n.as_str(), v)))
                .collect();
            let lookup = |f: &str| values.get(f).cloned();
            let names: Vec<&str> = [rule.meta.name.as_deref(), rule.meta.id.as_deref()]
                .into_iter()
                .flatten()
                .collect();
            let engine = self
                .engines
                .entry(tenant.to_owned())
                .or_insert_with(|| CorrelationEngine::new(set.correlations().to_vec()));
            for &(c, pos) in feeds {
                let signal = Signal {
                    entities: ents.clone(),
                    evidence: evidence.clone(),
                };
                if let Some(h) = engine.feed(c, pos, &names, time, &lookup, signal) {
                    hits.push(h);
                }
            }
        }
        if !hits.is_empty() {
            self.drain(tenant, hits, enabled, out);
        }
    }

    /// Reports fired correlations and feeds each to the correlations that use it.
    fn drain(
        &mut self,
        tenant: &str,
        mut hits: Vec<CorrelationHit<Signal<P>>>,
        enabled: &dyn Fn(&str) -> bool,
        out: &mut Vec<Found<P>>,
    ) {
        let set = self.set.clone();
        let Some(engine) = self.engines.get_mut(tenant) else {
            return;
        };
        while let Some(h) = hits.pop() {
            let corr = &set.correlations()[h.correlation];
            if !enabled(corr.meta.key()) {
                continue;
            }
            let group: HashMap<&str, &str> = h
                .group
                .iter()
                .map(|(k, v)| (k.as_str(), v.as_str()))
                .collect();
            let lookup = |f: &str| group.get(f).map(|v| (*v).to_owned());
            let names: Vec<&str> = [corr.meta.name.as_deref(), corr.meta.id.as_deref()]
                .into_iter()
                .flatten()
                .collect();
            if let Some(last) = h.evidence.last() {
                for &(c, pos) in set.feeds_of_correlation(h.correlation) {
                    if let Some(next) =
                        engine.feed(c, pos, &names, h.last_ms, &lookup, last.clone())
                    {
                        hits.push(next);
                    }
                }
            }
            if let Some(found) = correlation_found(&set, &h) {
                out.push(found);
            }
        }
    }

    /// Drops windows that can no longer fire (their newest signal is older than their
    /// timespan at `now_ms`, in event time).
    pub fn expire(&mut self, now_ms: i64) {
        for e in self.engines.values_mut() {
            e.expire(now_ms);
        }
    }

    pub fn save(&self) -> SavedState<P> {
        let mut out: SavedState<P> = self
            .engines
            .iter()
            .map(|(t, e)| (t.clone(), e.save()))
            .filter(|(_, w)| !w.is_empty())
            .collect();
        out.sort_by(|a, b| a.0.cmp(&b.0));
        out
    }

    /// Restores saved windows; returns how many came back.
    pub fn restore(&mut self, saved: SavedState<P>) -> usize {
        let mut n = 0;
        for (tenant, windows) in saved {
            let engine = self
                .engines
                .entry(tenant)
                .or_insert_with(|| CorrelationEngine::new(self.set.correlations().to_vec()));
            n += engine.restore(windows);
        }
        n
    }
}

pub fn rule_ref(meta: &koban_sigma::Meta) -> RuleRef {
    RuleRef {
        key: meta.key().to_owned(),
        title: meta.title.clone(),
        level: meta.level.unwrap_or(Level::Medium),
        tactics: meta.tactics(),
        techniques: meta.techniques(),
    }
}

/// Field names each rule must hand to the correlations it feeds (group-by fields,
/// through aliases, and the counted field).
pub fn correlation_fields(set: &RuleSet) -> Vec<Vec<String>> {
    (0..set.rules().len())
        .map(|r| {
            let meta = &set.rules()[r].meta;
            let mut names: Vec<String> = Vec::new();
            for &(c, _) in set.feeds_of_rule(r) {
                let corr = &set.correlations()[c];
                for g in &corr.group_by {
                    let alias = corr.aliases.get(g).and_then(|per| {
                        [meta.name.as_deref(), meta.id.as_deref()]
                            .into_iter()
                            .flatten()
                            .find_map(|n| per.get(n).cloned())
                    });
                    names.push(alias.unwrap_or_else(|| g.clone()));
                }
                names.extend(corr.condition.field.clone());
            }
            names.sort();
            names.dedup();
            names
        })
        .collect()
}

/// What a fired correlation reports, or `None` for an intermediate step (a correlation
/// only used inside another, with no level of its own). ATT&CK tags come from the
/// referenced rules when the correlation has none.
pub fn correlation_ref(set: &RuleSet, idx: usize) -> Option<RuleRef> {
    let corr = &set.correlations()[idx];
    if !set.feeds_of_correlation(idx).is_empty() && corr.meta.level.is_none() {
        return None;
    }
    let mut r = rule_ref(&corr.meta);
    if r.techniques.is_empty() {
        for name in &corr.rules {
            if let Some(base) = set.rules().iter().find(|b| {
                b.meta.id.as_deref() == Some(name) || b.meta.name.as_deref() == Some(name)
            }) {
                r.techniques.extend(base.meta.techniques());
                r.tactics.extend(base.meta.tactics());
            }
        }
        r.techniques.sort();
        r.techniques.dedup();
        r.tactics.sort();
        r.tactics.dedup();
    }
    Some(r)
}

pub fn kind_name(k: CorrelationKind) -> &'static str {
    match k {
        CorrelationKind::EventCount => "event_count",
        CorrelationKind::ValueCount => "value_count",
        CorrelationKind::Temporal => "temporal",
        CorrelationKind::TemporalOrdered => "temporal_ordered",
    }
}

fn correlation_found<P: Clone>(set: &RuleSet, h: &CorrelationHit<Signal<P>>) -> Option<Found<P>> {
    let rule = correlation_ref(set, h.correlation)?;
    let last = h.evidence.last()?;
    let kind = set.correlations()[h.correlation].kind;
    Some(Found {
        rule,
        time: Some(h.last_ms),
        entities: last.entities.clone(),
        why: format!("{} correlation: {}", kind_name(kind), h.why),
        correlation: true,
        count: h.count,
        evidence: h.evidence.iter().map(|s| s.evidence.clone()).collect(),
    })
}
