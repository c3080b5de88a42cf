//! Skipping rules that cannot match. Most rules need some literal text in the event
//! (`\mimikatz.exe`, `-encodedcommand`); one Aho-Corasick pass over all of an event's
//! values finds which of those literals are present, and only rules whose literals
//! were seen (or that have none) are evaluated. The rule is still evaluated in full,
//! so this only saves work; it never decides a match.

use std::collections::HashMap;

use aho_corasick::{AhoCorasick, AhoCorasickBuilder, MatchKind};
use koban_event::{Event, Value};

use crate::rule::Rule;

#[derive(Debug, Default)]
pub(crate) struct Prefilter {
    automaton: Option<AhoCorasick>,
    /// Literal id -> rules needing it.
    literal_rules: Vec<Vec<u32>>,
    /// Rules without a usable literal set: always evaluated.
    always: Vec<bool>,
}

/// Per-worker buffers for the prefilter.
#[derive(Debug, Default)]
pub(crate) struct PrefilterScratch {
    haystack: String,
    /// Bit per rule: a literal it needs was seen in the current event.
    hit: Vec<u64>,
    touched: Vec<u32>,
    seen_literal: Vec<u64>,
    seen_touched: Vec<u32>,
}

impl Prefilter {
    pub(crate) fn build(rules: &[Rule]) -> Prefilter {
        let mut ids: HashMap<&str, usize> = HashMap::new();
        let mut literals: Vec<&str> = Vec::new();
        let mut literal_rules: Vec<Vec<u32>> = Vec::new();
        let mut always = vec![true; rules.len()];
        for (i, r) in rules.iter().enumerate() {
            let Some(set) = r.detection.necessary_literals() else { continue };
            always[i] = false;
            for l in set {
                let id = *ids.entry(l).or_insert_with(|| {
                    literals.push(l);
                    literal_rules.push(Vec::new());
                    literals.len() - 1
                });
                if literal_rules[id].last() != Some(&(i as u32)) {
                    literal_rules[id].push(i as u32);
                }
            }
        }
        let automaton = if literals.is_empty() {
            None
        } else {
            AhoCorasickBuilder::new()
                .match_kind(MatchKind::Standard)
                .build(&literals)
                .ok()
        };
        if automaton.is_none() {
            // Could not build (should not happen): evaluate everything.
            always.iter_mut().for_each(|a| *a = true);
        }
        Prefilter {
            automaton,
            literal_rules,
            always,
        }
    }

    /// Marks the rules whose literals occur in the event.
    pub(crate) fn scan(&self, event: &Event, s: &mut PrefilterScratch) {
        for &r in &s.touched {
            s.hit[r as usize / 64] = 0;
        }
        s.touched.clear();
        let Some(ac) = &self.automaton else { return };
        if s.hit.len() < self.always.len().div_ceil(64) {
            s.hit.resize(self.always.len().div_ceil(64), 0);
        }
        if s.seen_literal.len() < self.literal_rules.len().div_ceil(64) {
            s.seen_literal.resize(self.literal_rules.len().div_ceil(64), 0);
        }
        s.haystack.clear();
        for f in event.fields() {
            push_text(&f.value, &mut s.haystack);
        }
        if let Some(o) = &event.original {
            s.haystack.push_str(&o.to_lowercase());
        }
        for m in ac.find_overlapping_iter(s.haystack.as_str()) {
            let id = m.pattern().as_usize();
            let (word, bit) = (id / 64, 1u64 << (id % 64));
            if s.seen_literal[word] & bit != 0 {
                continue;
            }
            s.seen_literal[word] |= bit;
            s.seen_touched.push(id as u32);
            for &r in &self.literal_rules[id] {
                let (w, b) = (r as usize / 64, 1u64 << (r % 64));
                if s.hit[w] & b == 0 {
                    s.hit[w] |= b;
                    s.touched.push(r);
                }
            }
        }
        for &id in &s.seen_touched {
            s.seen_literal[id as usize / 64] = 0;
        }
        s.seen_touched.clear();
    }

    /// Could rule `r` match the event last scanned?
    #[inline]
    pub(crate) fn may_match(&self, r: u32, s: &PrefilterScratch) -> bool {
        self.always[r as usize] || s.hit.get(r as usize / 64).is_some_and(|w| w & (1u64 << (r % 64)) != 0)
    }

    /// How many rules can be skipped by the prefilter at all.
    pub(crate) fn filtered_rules(&self) -> usize {
        self.always.iter().filter(|a| !**a).count()
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
