//! Sigma correlation rules (event_count, value_count, temporal, temporal_ordered):
//! their definition, and a streaming engine that keeps per-group windows.
//!
//! The engine is fed *signals* — "rule R matched at time T, with these field values" —
//! in time order, from base rules or from other correlations (chaining). It is the
//! same engine for the live stream and for hunting over files (where the hunt sorts
//! the signals by time first).

use std::collections::{HashMap, HashSet, VecDeque};

use serde_yaml::{Mapping, Value as Yaml};

use crate::error::RuleError;
use crate::rule::{string_list, Meta};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CorrelationKind {
    EventCount,
    ValueCount,
    Temporal,
    TemporalOrdered,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CountOp {
    Gt,
    Gte,
    Lt,
    Lte,
    Eq,
}

/// `condition:` of a correlation: all bounds must hold.
#[derive(Debug, Clone, PartialEq)]
pub struct CountCondition {
    /// The field whose distinct values are counted (value_count only).
    pub field: Option<String>,
    pub bounds: Vec<(CountOp, u64)>,
}

impl CountCondition {
    pub fn holds(&self, n: u64) -> bool {
        self.bounds.iter().all(|&(op, v)| match op {
            CountOp::Gt => n > v,
            CountOp::Gte => n >= v,
            CountOp::Lt => n < v,
            CountOp::Lte => n <= v,
            CountOp::Eq => n == v,
        })
    }

    /// Whether more events can only help: then the condition is checked as events
    /// arrive; otherwise (an upper bound) only when a window closes.
    fn monotone(&self) -> bool {
        self.bounds
            .iter()
            .all(|(op, _)| matches!(op, CountOp::Gt | CountOp::Gte))
    }

    fn describe(&self) -> String {
        self.bounds
            .iter()
            .map(|(op, v)| format!("{} {v}", format!("{op:?}").to_lowercase()))
            .collect::<Vec<_>>()
            .join(" and ")
    }
}

#[derive(Debug, Clone)]
pub struct Correlation {
    pub meta: Meta,
    pub kind: CorrelationKind,
    /// Referenced rules, by id or name.
    pub rules: Vec<String>,
    pub group_by: Vec<String>,
    pub timespan_ms: i64,
    pub condition: CountCondition,
    /// alias -> (rule name -> field name)
    pub aliases: HashMap<String, HashMap<String, String>>,
    /// Whether the referenced rules also alert on their own.
    pub generate: bool,
}

/// Parses `30s`, `5m`, `1h`, `2d`, `1w` (and `M`/`y` as 30/365 days) into milliseconds.
pub fn parse_timespan(s: &str) -> Option<i64> {
    let s = s.trim();
    let unit = s.chars().last()?;
    let n: i64 = s[..s.len() - unit.len_utf8()].trim().parse().ok()?;
    let secs = match unit {
        's' => 1,
        'm' => 60,
        'h' => 3600,
        'd' => 86_400,
        'w' => 7 * 86_400,
        'M' => 30 * 86_400,
        'y' => 365 * 86_400,
        _ => return None,
    };
    (n > 0).then_some(n * secs * 1000)
}

impl Correlation {
    pub(crate) fn from_yaml(
        meta: Meta,
        c: &Mapping,
        generate_top: bool,
    ) -> Result<Correlation, RuleError> {
        let err = |m: &str| RuleError::Correlation(m.into());
        let kind = match c.get("type").and_then(Yaml::as_str) {
            Some("event_count") => CorrelationKind::EventCount,
            Some("value_count") => CorrelationKind::ValueCount,
            Some("temporal") => CorrelationKind::Temporal,
            Some("temporal_ordered") => CorrelationKind::TemporalOrdered,
            Some(other) => {
                return Err(err(&format!(
                "type `{other}` is not one of event_count, value_count, temporal, temporal_ordered"
            )))
            }
            None => return Err(err("missing `type`")),
        };
        let rules = string_list(c.get("rules"), "correlation.rules")?;
        if rules.is_empty() {
            return Err(err("`rules` names no rule"));
        }
        let group_by = string_list(c.get("group-by"), "correlation.group-by")?;
        let timespan = c
            .get("timespan")
            .or_else(|| c.get("timeframe"))
            .and_then(crate::field::yaml_text)
            .ok_or_else(|| err("missing `timespan`"))?;
        let timespan_ms = parse_timespan(&timespan).ok_or_else(|| {
            err(&format!(
                "timespan `{timespan}` is not like 30s, 5m, 1h, 2d"
            ))
        })?;
        let condition = match c.get("condition") {
            None if matches!(
                kind,
                CorrelationKind::Temporal | CorrelationKind::TemporalOrdered
            ) =>
            {
                CountCondition {
                    field: None,
                    bounds: vec![(CountOp::Gte, rules.len() as u64)],
                }
            }
            None => return Err(err("missing `condition`")),
            Some(Yaml::Mapping(m)) => read_condition(m)?,
            Some(_) => return Err(err("`condition` must be a mapping such as {gte: 10}")),
        };
        if kind == CorrelationKind::ValueCount && condition.field.is_none() {
            return Err(err("value_count needs `field` in its condition"));
        }
        // The spec lists group-by as required for counts; without it every event falls
        // in one group, which is still well defined, so it is accepted.
        let mut aliases = HashMap::new();
        if let Some(a) = c.get("aliases") {
            let a = a
                .as_mapping()
                .ok_or_else(|| err("`aliases` must be a mapping"))?;
            for (alias, per_rule) in a {
                let alias = alias
                    .as_str()
                    .ok_or_else(|| err("alias names must be strings"))?;
                let per_rule = per_rule.as_mapping().ok_or_else(|| {
                    err(&format!("alias `{alias}` must map rule names to fields"))
                })?;
                let mut map = HashMap::new();
                for (rule, field) in per_rule {
                    match (rule.as_str(), field.as_str()) {
                        (Some(r), Some(f)) => {
                            map.insert(r.to_owned(), f.to_owned());
                        }
                        _ => {
                            return Err(err(&format!(
                                "alias `{alias}` must map rule names to field names"
                            )))
                        }
                    }
                }
                aliases.insert(alias.to_owned(), map);
            }
        }
        let generate = generate_top || matches!(c.get("generate"), Some(Yaml::Bool(true)));
        Ok(Correlation {
            meta,
            kind,
            rules,
            group_by,
            timespan_ms,
            condition,
            aliases,
            generate,
        })
    }
}

fn read_condition(m: &Mapping) -> Result<CountCondition, RuleError> {
    let mut cond = CountCondition {
        field: None,
        bounds: Vec::new(),
    };
    for (k, v) in m {
        let key = k.as_str().unwrap_or_default();
        if key == "field" {
            cond.field = Some(
                v.as_str()
                    .ok_or_else(|| {
                        RuleError::Correlation("`condition.field` must be a field name".into())
                    })?
                    .to_owned(),
            );
            continue;
        }
        let op = match key {
            "gt" => CountOp::Gt,
            "gte" => CountOp::Gte,
            "lt" => CountOp::Lt,
            "lte" => CountOp::Lte,
            "eq" => CountOp::Eq,
            other => {
                return Err(RuleError::Correlation(format!(
                    "condition `{other}` is not one of gt, gte, lt, lte, eq, field"
                )))
            }
        };
        let n = v
            .as_u64()
            .or_else(|| v.as_str().and_then(|s| s.trim().parse().ok()))
            .ok_or_else(|| {
                RuleError::Correlation(format!("condition `{key}` needs a whole number"))
            })?;
        cond.bounds.push((op, n));
    }
    if cond.bounds.is_empty() {
        return Err(RuleError::Correlation(
            "`condition` has no bound (gt, gte, lt, lte, eq)".into(),
        ));
    }
    Ok(cond)
}

/// A correlation that fired.
#[derive(Debug, Clone)]
pub struct CorrelationHit<P> {
    /// Index of the correlation in the engine.
    pub correlation: usize,
    /// Group-by field -> value.
    pub group: Vec<(String, String)>,
    pub first_ms: i64,
    pub last_ms: i64,
    /// Events counted, distinct values, or distinct rules, by kind.
    pub count: u64,
    /// The signals that made it fire (the most recent ones, bounded).
    pub evidence: Vec<P>,
    /// A sentence an analyst can read.
    pub why: String,
}

const MAX_EVIDENCE: usize = 50;

/// One open window of a correlation, as [`CorrelationEngine::save`] hands it out.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct SavedWindow<P> {
    /// The correlation's key (id, else title).
    pub correlation: String,
    pub group: Vec<String>,
    pub window_start: i64,
    pub entries: Vec<SavedEntry<P>>,
}

/// One signal inside a saved window.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct SavedEntry<P> {
    pub time: i64,
    /// Position of the referencing rule in the correlation's `rules`.
    pub rule: usize,
    pub value: Option<String>,
    pub payload: P,
}

#[derive(Debug, Clone)]
struct Entry<P> {
    time: i64,
    /// Position of the referencing rule in the correlation's `rules`.
    rule: usize,
    value: Option<String>,
    payload: P,
}

#[derive(Debug, Clone)]
struct GroupState<P> {
    entries: VecDeque<Entry<P>>,
    /// Start of the current window for upper-bound conditions.
    window_start: i64,
}

/// Streaming state for a set of correlations.
#[derive(Debug)]
pub struct CorrelationEngine<P> {
    correlations: Vec<Correlation>,
    /// Per correlation: group key -> state.
    state: Vec<HashMap<Vec<String>, GroupState<P>>>,
}

impl<P: Clone> CorrelationEngine<P> {
    pub fn new(correlations: Vec<Correlation>) -> Self {
        let state = correlations.iter().map(|_| HashMap::new()).collect();
        CorrelationEngine {
            correlations,
            state,
        }
    }

    pub fn correlations(&self) -> &[Correlation] {
        &self.correlations
    }

    /// Feeds one signal: rule `rule_pos` of correlation `idx` (its position in the
    /// correlation's `rules`) matched at `time_ms`; `field` reads values of the matched
    /// event by field name; `rule_name` is the referencing name used by `aliases`.
    /// Signals must arrive in time order per correlation.
    pub fn feed(
        &mut self,
        idx: usize,
        rule_pos: usize,
        rule_names: &[&str],
        time_ms: i64,
        field: &dyn Fn(&str) -> Option<String>,
        payload: P,
    ) -> Option<CorrelationHit<P>> {
        let c = &self.correlations[idx];
        let mut group = Vec::with_capacity(c.group_by.len());
        for g in &c.group_by {
            let source = c
                .aliases
                .get(g)
                .and_then(|per_rule| rule_names.iter().find_map(|n| per_rule.get(*n)))
                .map(String::as_str)
                .unwrap_or(g.as_str());
            // A missing group-by value is its own group (empty), as SIEM backends do.
            group.push(field(source).unwrap_or_default());
        }
        let value = match (&c.kind, &c.condition.field) {
            (CorrelationKind::ValueCount, Some(f)) => match field(f) {
                Some(v) => Some(v),
                // Without the counted field the event says nothing about distinct values.
                None => return None,
            },
            _ => None,
        };
        let monotone = c.condition.monotone();
        let span = c.timespan_ms;
        let kind = c.kind;
        let states = &mut self.state[idx];
        let st = states.entry(group.clone()).or_insert_with(|| GroupState {
            entries: VecDeque::new(),
            window_start: time_ms,
        });
        let mut fired = None;
        if !monotone && time_ms - st.window_start > span {
            // The window closed: judge it with its final count, then start anew.
            let n = count(kind, &st.entries, self.correlations[idx].rules.len());
            if !st.entries.is_empty() && self.correlations[idx].condition.holds(n) {
                fired = Some(hit(&self.correlations[idx], idx, &group, &st.entries, n));
            }
            st.entries.clear();
            st.window_start = time_ms;
        }
        if monotone {
            while st.entries.front().is_some_and(|e| time_ms - e.time > span) {
                st.entries.pop_front();
            }
        }
        st.entries.push_back(Entry {
            time: time_ms,
            rule: rule_pos,
            value,
            payload,
        });
        if monotone {
            let c = &self.correlations[idx];
            let n = match kind {
                CorrelationKind::TemporalOrdered => ordered_progress(&st.entries, c.rules.len()),
                _ => count(kind, &st.entries, c.rules.len()),
            };
            if c.condition.holds(n) {
                let h = hit(c, idx, &group, &st.entries, n);
                st.entries.clear();
                return fired.or(Some(h));
            }
        }
        fired
    }

    /// The open windows, to be kept across a restart (the streaming server stores them
    /// with the position it has detected up to). Windows are named by their
    /// correlation's key, so a reloaded rule set gets back the windows of the
    /// correlations it still has.
    pub fn save(&self) -> Vec<SavedWindow<P>> {
        let mut out = Vec::new();
        for (idx, states) in self.state.iter().enumerate() {
            let key = self.correlations[idx].meta.key();
            for (group, st) in states {
                if st.entries.is_empty() {
                    continue;
                }
                out.push(SavedWindow {
                    correlation: key.to_owned(),
                    group: group.clone(),
                    window_start: st.window_start,
                    entries: st
                        .entries
                        .iter()
                        .map(|e| SavedEntry {
                            time: e.time,
                            rule: e.rule,
                            value: e.value.clone(),
                            payload: e.payload.clone(),
                        })
                        .collect(),
                });
            }
        }
        out
    }

    /// Puts saved windows back; windows of correlations this engine does not have (or
    /// whose referenced rules shrank) are dropped. Returns how many were restored.
    pub fn restore(&mut self, saved: Vec<SavedWindow<P>>) -> usize {
        let by_key: HashMap<&str, usize> = self
            .correlations
            .iter()
            .enumerate()
            .map(|(i, c)| (c.meta.key(), i))
            .collect();
        let mut restored = 0;
        for w in saved {
            let Some(&idx) = by_key.get(w.correlation.as_str()) else {
                continue;
            };
            let n_rules = self.correlations[idx].rules.len();
            if w.entries.iter().any(|e| e.rule >= n_rules) {
                continue;
            }
            let entries = w
                .entries
                .into_iter()
                .map(|e| Entry {
                    time: e.time,
                    rule: e.rule,
                    value: e.value,
                    payload: e.payload,
                })
                .collect();
            self.state[idx].insert(
                w.group,
                GroupState {
                    entries,
                    window_start: w.window_start,
                },
            );
            restored += 1;
        }
        restored
    }

    /// Forgets windows of lower-bound correlations whose newest signal is older than
    /// their timespan at `now_ms`: they can no longer fire. Keeps the saved state small.
    pub fn expire(&mut self, now_ms: i64) {
        for (idx, states) in self.state.iter_mut().enumerate() {
            let c = &self.correlations[idx];
            if !c.condition.monotone() {
                continue;
            }
            states.retain(|_, st| {
                st.entries
                    .back()
                    .is_some_and(|e| now_ms - e.time <= c.timespan_ms)
            });
        }
    }

    /// Closes every open window (end of input) and returns what fires then.
    pub fn flush(&mut self) -> Vec<CorrelationHit<P>> {
        let mut out = Vec::new();
        for (idx, states) in self.state.iter_mut().enumerate() {
            let c = &self.correlations[idx];
            // Lower-bound conditions fire as events arrive; their state stays so that
            // hits produced by this flush can still complete chained correlations.
            if c.condition.monotone() {
                continue;
            }
            for (group, st) in states.drain() {
                let n = count(c.kind, &st.entries, c.rules.len());
                if !st.entries.is_empty() && c.condition.holds(n) {
                    out.push(hit(c, idx, &group, &st.entries, n));
                }
            }
        }
        out
    }
}

fn count<P>(kind: CorrelationKind, entries: &VecDeque<Entry<P>>, n_rules: usize) -> u64 {
    match kind {
        CorrelationKind::EventCount => entries.len() as u64,
        CorrelationKind::ValueCount => entries
            .iter()
            .filter_map(|e| e.value.as_deref())
            .collect::<HashSet<_>>()
            .len() as u64,
        CorrelationKind::Temporal => {
            entries.iter().map(|e| e.rule).collect::<HashSet<_>>().len() as u64
        }
        CorrelationKind::TemporalOrdered => ordered_progress(entries, n_rules),
    }
}

/// How many of the rules, in their listed order, appear in order in the window.
fn ordered_progress<P>(entries: &VecDeque<Entry<P>>, n_rules: usize) -> u64 {
    let mut next = 0usize;
    for e in entries {
        if next < n_rules && e.rule == next {
            next += 1;
        }
    }
    next as u64
}

fn hit<P: Clone>(
    c: &Correlation,
    idx: usize,
    group: &[String],
    entries: &VecDeque<Entry<P>>,
    n: u64,
) -> CorrelationHit<P> {
    let group: Vec<(String, String)> = c
        .group_by
        .iter()
        .cloned()
        .zip(group.iter().cloned())
        .collect();
    let first_ms = entries.front().map_or(0, |e| e.time);
    let last_ms = entries.back().map_or(0, |e| e.time);
    let what = match c.kind {
        CorrelationKind::EventCount => format!("{n} events"),
        CorrelationKind::ValueCount => format!(
            "{n} distinct values of {}",
            c.condition.field.as_deref().unwrap_or_default()
        ),
        CorrelationKind::Temporal => format!("{n} of {} rules", c.rules.len()),
        CorrelationKind::TemporalOrdered => format!("{n} of {} rules in order", c.rules.len()),
    };
    let by = if group.is_empty() {
        String::new()
    } else {
        format!(
            " for {}",
            group
                .iter()
                .map(|(k, v)| format!("{k}={v}"))
                .collect::<Vec<_>>()
                .join(", ")
        )
    };
    let why = format!(
        "{what} ({}) within {}s{by}",
        c.condition.describe(),
        c.timespan_ms / 1000
    );
    let skip = entries.len().saturating_sub(MAX_EVIDENCE);
    CorrelationHit {
        correlation: idx,
        group,
        first_ms,
        last_ms,
        count: n,
        evidence: entries
            .iter()
            .skip(skip)
            .map(|e| e.payload.clone())
            .collect(),
        why,
    }
}
