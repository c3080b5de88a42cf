//! Skipping rules that cannot match. Most rules need some literal text in the event
//! (`\mimikatz.exe`, `-encodedcommand`). For each kind of event (log source) a plan is
//! made once: the rules routed to it, one Aho-Corasick automaton over their literals,
//! and the fields they read. Per event, one pass over those fields' values finds which
//! literals are present, and only rules whose literals were seen (or that have none)
//! are evaluated — in full, so this only saves work and never decides a match.

use std::collections::{HashMap, HashSet};

use aho_corasick::{AhoCorasick, AhoCorasickBuilder, MatchKind};
use koban_event::{Event, Value};

use crate::rule::Rule;

/// What the prefilter knows about one rule, computed once per rule set.
#[derive(Debug, Clone, Default)]
pub(crate) struct RuleLiterals {
    /// One of these occurs in the values of `fields` whenever the rule matches.
    literals: Option<Vec<Box<str>>>,
    /// Lower-cased names of the fields the rule reads.
    fields: Vec<Box<str>>,
    /// A keyword (full-text) rule: its literals may be in any value.
    any_field: bool,
}

impl RuleLiterals {
    pub(crate) fn is_prefiltered(&self) -> bool {
        self.literals.is_some()
    }

    pub(crate) fn of(rule: &Rule) -> RuleLiterals {
        RuleLiterals {
            literals: rule
                .detection
                .necessary_literals()
                .map(|l| l.into_iter().map(Box::from).collect()),
            fields: rule.detection.field_keys().map(Box::from).collect(),
            // Keyword searches read every value (and the original line).
            any_field: rule.detection.has_keywords(),
        }
    }
}

/// The matching plan for one log source.
#[derive(Debug)]
pub(crate) struct Plan {
    pub(crate) candidates: Vec<u32>,
    /// Per candidate position: evaluate without looking at literals.
    always: Vec<bool>,
    automaton: Option<AhoCorasick>,
    /// Literal id -> candidate positions needing it.
    literal_rules: Vec<Vec<u32>>,
    fields: HashSet<Box<str>>,
    /// The same for keyword rules, whose literals are looked for in every value.
    any_field_automaton: Option<AhoCorasick>,
    any_field_rules: Vec<Vec<u32>>,
}

/// Per-worker buffers for scanning.
#[derive(Debug, Default)]
pub(crate) struct Scan {
    haystack: String,
    /// Bit per candidate position: a literal it needs was seen.
    hit: Vec<u64>,
    seen_literal: Vec<u64>,
}

impl Plan {
    pub(crate) fn build(candidates: Vec<u32>, literals: &[RuleLiterals]) -> Plan {
        let mut named = PatternSet::default();
        let mut any_field = PatternSet::default();
        let mut always = vec![true; candidates.len()];
        let mut fields = HashSet::new();
        for (pos, &r) in candidates.iter().enumerate() {
            let info = &literals[r as usize];
            let Some(set) = &info.literals else { continue };
            always[pos] = false;
            if info.any_field {
                any_field.add(set, pos);
            } else {
                fields.extend(info.fields.iter().cloned());
                named.add(set, pos);
            }
        }
        let (automaton, literal_rules) = named.build();
        let (any_field_automaton, any_field_rules) = any_field.build();
        if (automaton.is_none() && !literal_rules.is_empty())
            || (any_field_automaton.is_none() && !any_field_rules.is_empty())
        {
            always.iter_mut().for_each(|a| *a = true);
        }
        Plan {
            candidates,
            always,
            automaton,
            literal_rules,
            fields,
            any_field_automaton,
            any_field_rules,
        }
    }

    /// Marks the candidates whose literals occur in the event.
    pub(crate) fn scan(&self, event: &Event, s: &mut Scan) {
        let words = self.candidates.len().div_ceil(64);
        s.hit.clear();
        s.hit.resize(words, 0);
        if let Some(ac) = &self.automaton {
            s.haystack.clear();
            for f in event.fields() {
                if self.fields.contains(f.key()) {
                    push_text(&f.value, &mut s.haystack);
                }
            }
            mark(ac, &self.literal_rules, s);
        }
        if let Some(ac) = &self.any_field_automaton {
            s.haystack.clear();
            for f in event.fields() {
                push_text(&f.value, &mut s.haystack);
            }
            if let Some(o) = &event.original {
                s.haystack.push_str(&o.to_lowercase());
            }
            mark(ac, &self.any_field_rules, s);
        }
    }

    /// Could the candidate at `pos` match the event last scanned?
    #[inline]
    pub(crate) fn may_match(&self, pos: usize, s: &Scan) -> bool {
        self.always[pos]
            || s.hit
                .get(pos / 64)
                .is_some_and(|w| w & (1u64 << (pos % 64)) != 0)
    }
}

/// Literals of a group of rules, deduplicated, with the rules needing each.
#[derive(Default)]
struct PatternSet<'a> {
    ids: HashMap<&'a str, usize>,
    patterns: Vec<&'a str>,
    rules: Vec<Vec<u32>>,
}

impl<'a> PatternSet<'a> {
    fn add(&mut self, set: &'a [Box<str>], pos: usize) {
        for l in set {
            let id = *self.ids.entry(l.as_ref()).or_insert_with(|| {
                self.patterns.push(l.as_ref());
                self.rules.push(Vec::new());
                self.patterns.len() - 1
            });
            if self.rules[id].last() != Some(&(pos as u32)) {
                self.rules[id].push(pos as u32);
            }
        }
    }

    fn build(self) -> (Option<AhoCorasick>, Vec<Vec<u32>>) {
        if self.patterns.is_empty() {
            return (None, self.rules);
        }
        let ac = AhoCorasickBuilder::new()
            .match_kind(MatchKind::Standard)
            .build(&self.patterns)
            .ok();
        (ac, self.rules)
    }
}

/// Sets the hit bit of every rule whose literal occurs in the haystack.
fn mark(ac: &AhoCorasick, literal_rules: &[Vec<u32>], s: &mut Scan) {
    s.seen_literal.clear();
    s.seen_literal.resize(literal_rules.len().div_ceil(64), 0);
    for m in ac.find_overlapping_iter(s.haystack.as_str()) {
        let id = m.pattern().as_usize();
        let (word, bit) = (id / 64, 1u64 << (id % 64));
        if s.seen_literal[word] & bit != 0 {
            continue;
        }
        s.seen_literal[word] |= bit;
        for &p in &literal_rules[id] {
            s.hit[p as usize / 64] |= 1u64 << (p % 64);
        }
    }
}

/// Appends the lower-cased text forms of a value, separated by newlines.
fn push_text(v: &Value, out: &mut String) {
    use std::fmt::Write;
    match v {
        Value::Str(t) => out.push_str(t.lower()),
        Value::Int(i) => {
            let _ = write!(out, "{i}");
        }
        Value::Float(f) => {
            let _ = write!(out, "{f}");
        }
        Value::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
        Value::List(items) => {
            for item in items {
                push_text(item, out);
            }
        }
        Value::Null => {}
    }
    out.push('\n');
}
