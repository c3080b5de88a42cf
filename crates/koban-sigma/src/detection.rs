//! The `detection:` section: named selections and the condition over them, compiled
//! into a tree that evaluates an event without failing and can explain a match.

use std::collections::HashMap;

use koban_event::{Event, Value};
use serde_yaml::{Mapping, Value as Yaml};

use crate::condition::{self, Cond};
use crate::error::RuleError;
use crate::field::{self, FieldTest};
use crate::pattern::{self, StrPattern};
use crate::transform::Unresolved;

/// One way a selection can hold.
#[derive(Debug, Clone)]
pub(crate) enum Alternative {
    /// Every key holds.
    Fields(Vec<FieldTest>),
    /// Any keyword occurs in any field value of the event.
    Keywords(Keywords),
}

/// A keyword list, with one automaton for all of them when they are plain substrings
/// (the usual case): one pass per field value instead of one per keyword.
#[derive(Debug, Clone)]
pub(crate) struct Keywords {
    patterns: Vec<StrPattern>,
    any: Option<aho_corasick::AhoCorasick>,
}

impl Keywords {
    fn new(patterns: Vec<StrPattern>) -> Keywords {
        let needles: Option<Vec<&[u8]>> =
            patterns.iter().map(StrPattern::contains_literal).collect();
        let any = needles.and_then(|n| aho_corasick::AhoCorasick::new(n).ok());
        Keywords { patterns, any }
    }

    /// The first pattern occurring in the text.
    #[inline]
    fn find(&self, original: &str, lower: &str) -> Option<&StrPattern> {
        if let Some(ac) = &self.any {
            if !ac.is_match(lower) {
                return None;
            }
        }
        self.patterns.iter().find(|p| p.matches(original, lower))
    }
}

#[derive(Debug, Clone)]
pub(crate) struct Selection {
    pub name: Box<str>,
    /// Any alternative holds (a list of maps is an OR of maps).
    pub alternatives: Vec<Alternative>,
}

/// Why a rule matched: each positive selection that held, with field and values.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Explanation {
    pub hits: Vec<Hit>,
}

/// One part of an explanation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Hit {
    pub selection: String,
    /// `None` for keyword matches.
    pub field: Option<String>,
    /// The event's value.
    pub value: String,
    /// The rule value(s) that matched it.
    pub matched: String,
}

impl std::fmt::Display for Explanation {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        for (i, h) in self.hits.iter().enumerate() {
            if i > 0 {
                f.write_str("; ")?;
            }
            match &h.field {
                Some(field) => write!(
                    f,
                    "{}: {}={:?} ~ {}",
                    h.selection, field, h.value, h.matched
                )?,
                None => write!(f, "{}: keyword {} in {:?}", h.selection, h.matched, h.value)?,
            }
        }
        Ok(())
    }
}

#[derive(Debug, Clone)]
pub struct Detection {
    pub(crate) selections: Vec<Selection>,
    pub(crate) condition: Cond,
}

impl Detection {
    /// Compiles a `detection:` mapping. `unresolved` collects placeholders without values.
    pub(crate) fn compile(
        detection: &Mapping,
        placeholders: &HashMap<String, Vec<String>>,
        unresolved: &mut Unresolved,
    ) -> Result<Detection, RuleError> {
        let mut selections = Vec::new();
        let mut conditions: Vec<String> = Vec::new();
        for (key, value) in detection {
            let Some(name) = key.as_str() else {
                return Err(RuleError::WrongType {
                    key: "detection".into(),
                    expected: "a mapping with string keys",
                });
            };
            match name {
                "condition" => match value {
                    Yaml::String(s) => conditions.push(s.clone()),
                    Yaml::Sequence(items) => {
                        for item in items {
                            let s = item.as_str().ok_or(RuleError::WrongType {
                                key: "condition".into(),
                                expected: "a string or a list of strings",
                            })?;
                            conditions.push(s.to_owned());
                        }
                    }
                    _ => {
                        return Err(RuleError::WrongType {
                            key: "condition".into(),
                            expected: "a string or a list of strings",
                        })
                    }
                },
                // Sigma 1 aggregation window, meaningless without aggregation.
                "timeframe" => {}
                _ => selections.push(compile_selection(name, value, placeholders, unresolved)?),
            }
        }
        if conditions.is_empty() {
            return Err(RuleError::Missing("detection.condition"));
        }
        let names: Vec<String> = selections.iter().map(|s| s.name.to_string()).collect();
        let mut parsed = conditions
            .iter()
            .map(|c| condition::parse(c, &names))
            .collect::<Result<Vec<_>, _>>()?;
        // A list of conditions means any of them (Sigma 1 style).
        let condition = if parsed.len() == 1 {
            parsed.remove(0)
        } else {
            Cond::Or(parsed)
        };
        Ok(Detection {
            selections,
            condition,
        })
    }

    /// Adds a filter's selections and condition: the rule then also requires the
    /// filter condition (filters are written as `not ...`).
    pub(crate) fn and_filter(&mut self, filter: &Detection) {
        let offset = self.selections.len();
        self.selections.extend(filter.selections.iter().cloned());
        let shifted = shift(&filter.condition, offset);
        let current = std::mem::replace(&mut self.condition, Cond::And(Vec::new()));
        self.condition = Cond::And(vec![current, shifted]);
    }

    #[inline]
    pub fn matches(&self, event: &Event) -> bool {
        self.eval(&self.condition, event)
    }

    fn eval(&self, c: &Cond, event: &Event) -> bool {
        match c {
            Cond::Sel(i) => selection_holds(&self.selections[*i], event),
            Cond::Not(inner) => !self.eval(inner, event),
            Cond::And(items) => items.iter().all(|c| self.eval(c, event)),
            Cond::Or(items) => items.iter().any(|c| self.eval(c, event)),
            Cond::AtLeast(n, sels) => {
                sels.iter()
                    .filter(|&&i| selection_holds(&self.selections[i], event))
                    .take(*n)
                    .count()
                    >= *n
            }
        }
    }

    /// Explains a match: the selections that made the condition true.
    pub fn explain(&self, event: &Event) -> Explanation {
        let mut hits = Vec::new();
        self.collect(&self.condition, event, &mut hits);
        Explanation { hits }
    }

    fn collect(&self, c: &Cond, event: &Event, hits: &mut Vec<Hit>) {
        match c {
            Cond::Sel(i) => explain_selection(&self.selections[*i], event, hits),
            // What was *not* there explains nothing an analyst can look at.
            Cond::Not(_) => {}
            Cond::And(items) => {
                for item in items {
                    self.collect(item, event, hits);
                }
            }
            Cond::Or(items) => {
                if let Some(first) = items.iter().find(|c| self.eval(c, event)) {
                    self.collect(first, event, hits);
                }
            }
            Cond::AtLeast(_, sels) => {
                for &i in sels {
                    if selection_holds(&self.selections[i], event) {
                        explain_selection(&self.selections[i], event, hits);
                    }
                }
            }
        }
    }

    /// Literals one of which occurs in every event this detection matches (in some
    /// field value), or `None` when no such set is known. Used to skip rules cheaply.
    pub(crate) fn necessary_literals(&self) -> Option<Vec<&str>> {
        self.necessary_in(&self.condition)
    }

    fn necessary_in(&self, c: &Cond) -> Option<Vec<&str>> {
        match c {
            Cond::Sel(i) => union(
                self.selections[*i]
                    .alternatives
                    .iter()
                    .map(|alt| match alt {
                        Alternative::Fields(tests) => best(tests.iter().map(FieldTest::necessary)),
                        Alternative::Keywords(k) => {
                            k.patterns.iter().map(StrPattern::necessary).collect()
                        }
                    }),
            ),
            Cond::Not(_) => None,
            Cond::And(items) => best(items.iter().map(|c| self.necessary_in(c))),
            Cond::Or(items) => union(items.iter().map(|c| self.necessary_in(c))),
            Cond::AtLeast(_, sels) => union(sels.iter().map(|&i| self.necessary_in(&Cond::Sel(i)))),
        }
    }

    /// Whether any selection is a keyword (full-text) search.
    pub(crate) fn has_keywords(&self) -> bool {
        self.selections.iter().any(|s| {
            s.alternatives.iter().any(|a| match a {
                Alternative::Keywords(_) => true,
                Alternative::Fields(tests) => tests.iter().any(FieldTest::is_keyword_search),
            })
        })
    }

    /// Lower-cased names of every field the detection tests.
    pub(crate) fn field_keys(&self) -> impl Iterator<Item = &str> {
        self.selections.iter().flat_map(|s| {
            s.alternatives.iter().flat_map(|a| match a {
                Alternative::Fields(tests) => {
                    tests.iter().map(|t| t.key.as_ref()).collect::<Vec<_>>()
                }
                Alternative::Keywords(_) => Vec::new(),
            })
        })
    }

    /// Field names the detection reads, for documentation and field coverage checks.
    pub fn fields(&self) -> Vec<&str> {
        let mut out = Vec::new();
        for s in &self.selections {
            for alt in &s.alternatives {
                if let Alternative::Fields(tests) = alt {
                    out.extend(tests.iter().map(|t| t.name.as_ref()));
                }
            }
        }
        out.sort_unstable();
        out.dedup();
        out
    }
}

/// Literals shorter than this are too common to be worth checking for.
const MIN_LITERAL: usize = 3;

fn usable(set: &Option<Vec<&str>>) -> bool {
    set.as_ref()
        .is_some_and(|s| !s.is_empty() && s.iter().all(|l| l.len() >= MIN_LITERAL))
}

/// Of alternatives that must all hold, the literal set that rules out the most:
/// the one whose shortest literal is longest.
fn best<'a>(sets: impl Iterator<Item = Option<Vec<&'a str>>>) -> Option<Vec<&'a str>> {
    sets.filter(usable)
        .max_by_key(|s| {
            let shortest = s
                .as_ref()
                .map_or(0, |s| s.iter().map(|l| l.len()).min().unwrap_or(0));
            (shortest.min(8), usize::MAX - s.as_ref().map_or(0, Vec::len))
        })
        .flatten()
}

/// Of alternatives any of which may hold, every one's literals (unknown if any is).
fn union<'a>(sets: impl Iterator<Item = Option<Vec<&'a str>>>) -> Option<Vec<&'a str>> {
    let mut out = Vec::new();
    for s in sets {
        if !usable(&s) {
            return None;
        }
        out.extend(s.unwrap_or_default());
    }
    (!out.is_empty()).then_some(out)
}

fn shift(c: &Cond, offset: usize) -> Cond {
    match c {
        Cond::Sel(i) => Cond::Sel(i + offset),
        Cond::Not(inner) => Cond::Not(Box::new(shift(inner, offset))),
        Cond::And(items) => Cond::And(items.iter().map(|c| shift(c, offset)).collect()),
        Cond::Or(items) => Cond::Or(items.iter().map(|c| shift(c, offset)).collect()),
        Cond::AtLeast(n, sels) => Cond::AtLeast(*n, sels.iter().map(|i| i + offset).collect()),
    }
}

#[inline]
fn selection_holds(s: &Selection, event: &Event) -> bool {
    s.alternatives
        .iter()
        .any(|alt| alternative_holds(alt, event))
}

#[inline]
fn alternative_holds(alt: &Alternative, event: &Event) -> bool {
    match alt {
        Alternative::Fields(tests) => tests.iter().all(|t| t.matches(event)),
        Alternative::Keywords(k) => keyword_hit(k, event).is_some(),
    }
}

/// The first (pattern, value) where a keyword occurs in a value of the event.
fn keyword_hit<'a>(k: &'a Keywords, event: &'a Event) -> Option<(&'a StrPattern, String)> {
    let mut found = None;
    let mut search = |v: &Value| {
        field::any_text(v, &mut |o, l| {
            if let Some(p) = k.find(o, l) {
                found = Some((p, o.to_owned()));
                true
            } else {
                false
            }
        })
    };
    for f in event.fields() {
        if search(&f.value) {
            return found;
        }
    }
    if let Some(original) = &event.original {
        let lower = original.to_lowercase();
        if let Some(p) = k.find(original, &lower) {
            return Some((p, original.to_string()));
        }
    }
    None
}

fn explain_selection(s: &Selection, event: &Event, hits: &mut Vec<Hit>) {
    let Some(alt) = s.alternatives.iter().find(|a| alternative_holds(a, event)) else {
        return;
    };
    match alt {
        Alternative::Fields(tests) => {
            for t in tests {
                let (value, matched) = t.explain(event);
                hits.push(Hit {
                    selection: s.name.to_string(),
                    field: Some(t.name.to_string()),
                    value,
                    matched,
                });
            }
        }
        Alternative::Keywords(k) => {
            if let Some((p, value)) = keyword_hit(k, event) {
                hits.push(Hit {
                    selection: s.name.to_string(),
                    field: None,
                    value,
                    matched: p.shown().to_owned(),
                });
            }
        }
    }
}

fn compile_selection(
    name: &str,
    value: &Yaml,
    placeholders: &HashMap<String, Vec<String>>,
    unresolved: &mut Unresolved,
) -> Result<Selection, RuleError> {
    let bad = |message: &str| RuleError::BadSelection {
        selection: name.into(),
        message: message.into(),
    };
    let mut alternatives = Vec::new();
    let mut keywords = Vec::new();
    let items: Vec<&Yaml> = match value {
        Yaml::Sequence(items) => items.iter().collect(),
        other => vec![other],
    };
    for item in items {
        match item {
            Yaml::Mapping(map) => alternatives.push(Alternative::Fields(compile_map(
                map,
                placeholders,
                unresolved,
            )?)),
            Yaml::String(_) | Yaml::Number(_) | Yaml::Bool(_) => {
                let text = field::yaml_text(item).unwrap_or_default();
                // Keywords are a full-text search: the value may occur anywhere.
                let mut tokens = pattern::tokenize(&text);
                tokens.insert(0, pattern::Token::Star);
                tokens.push(pattern::Token::Star);
                keywords.push(StrPattern::from_tokens(tokens, false));
            }
            Yaml::Null => return Err(bad("a null keyword")),
            Yaml::Sequence(_) => return Err(bad("a list inside a list")),
            Yaml::Tagged(_) => return Err(bad("a YAML tag")),
        }
    }
    if !keywords.is_empty() {
        alternatives.push(Alternative::Keywords(Keywords::new(keywords)));
    }
    if alternatives.is_empty() {
        return Err(bad("it is empty"));
    }
    Ok(Selection {
        name: name.into(),
        alternatives,
    })
}

fn compile_map(
    map: &Mapping,
    placeholders: &HashMap<String, Vec<String>>,
    unresolved: &mut Unresolved,
) -> Result<Vec<FieldTest>, RuleError> {
    let mut tests = Vec::with_capacity(map.len());
    for (key, value) in map {
        let key = field::yaml_text(key).ok_or(RuleError::WrongType {
            key: "detection".into(),
            expected: "field names as keys",
        })?;
        let mut parts = key.split('|');
        let field_name = parts.next().unwrap_or_default();
        let modifiers: Vec<&str> = parts.collect();
        tests.push(FieldTest::compile(
            field_name,
            &modifiers,
            value,
            placeholders,
            unresolved,
        )?);
    }
    // Cheap, selective tests first: exact values and short lists before long
    // substring lists and regular expressions.
    tests.sort_by_key(FieldTest::cost);
    Ok(tests)
}
