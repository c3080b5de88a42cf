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
}

impl RuleLiterals {
    pub(crate) fn is_prefiltered(&self) -> bool {
        self.literals.is_some()
    }

    pub(crate) fn of(rule: &Rule) -> RuleLiterals {
        // Keyword searches read every value; such rules are always evaluated.
        if rule.detection.has_keywords() {
            return RuleLiterals::default();
        }
        RuleLiterals {
            literals: rule
                .detection
                .necessary_literals()
                .map(|l| l.into_iter().map(Box::from).collect()),
            fields: rule.detection.field_keys().map(Box::from).collect(),
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
        let mut ids: HashMap<&str, usize> = HashMap::new();
        let mut patterns: Vec<&str> = Vec::new();
        let mut literal_rules: Vec<Vec<u32>> = Vec::new();
        let mut always = vec![true; candidates.len()];
        let mut fields = HashSet::new();
        for (pos, &r) in candidates.iter().enumerate() {
            let info = &literals[r as usize];
            let Some(set) = &info.literals else { continue };
            always[pos] = false;
            fields.extend(info.fields.iter().cloned());
            for l in set {
                let id = *ids.entry(l.as_ref()).or_insert_with(|| {
                    patterns.push(l.as_ref());
                    literal_rules.push(Vec::new());
                    patterns.len() - 1
                });
                if literal_rules[id].last() != Some(&(pos as u32)) {
                    literal_rules[id].push(pos as u32);
                }
            }
        }
        let automaton = if patterns.is_empty() {
            None
        } else {
            AhoCorasickBuilder::new()
                .match_kind(MatchKind::Standard)
                .build(&patterns)
                .ok()
        };
        if automaton.is_none() {
            always.iter_mut().for_each(|a| *a = true);
        }
        Plan {
            candidates,
            always,
            automaton,
            literal_rules,
            fields,
        }
    }

    /// Marks the candidates whose literals occur in the event.
    pub(crate) fn scan(&self, event: &Event, s: &mut Scan) {
        let words = self.candidates.len().div_ceil(64);
        s.hit.clear();
        s.hit.resize(words, 0);
        let Some(ac) = &self.automaton else { return };
        s.seen_literal.clear();
        s.seen_literal
            .resize(self.literal_rules.len().div_ceil(64), 0);
        s.haystack.clear();
        for f in event.fields() {
            if self.fields.contains(f.key()) {
                push_text(&f.value, &mut s.haystack);
            }
        }
        for m in ac.find_overlapping_iter(s.haystack.as_str()) {
            let id = m.pattern().as_usize();
            let (word, bit) = (id / 64, 1u64 << (id % 64));
            if s.seen_literal[word] & bit != 0 {
                continue;
            }
            s.seen_literal[word] |= bit;
            for &p in &self.literal_rules[id] {
                s.hit[p as usize / 64] |= 1u64 << (p % 64);
            }
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
