//! Skipping rules that cannot match. Most rules need some literal text in the event
//! (`\mimikatz.exe`, `-encodedcommand`). For each kind of event (log source) a plan is
//! made once: the rules routed to it, one Aho-Corasick automaton over their literals,
//! and the fields they read. Per event, one pass over those fields' values finds which
//! literals are present, and only rules whose literals were seen (or that have none)
//! are evaluated — in full, so this only saves work and never decides a match.

use std::collections::{HashMap, HashSet};

use aho_corasick::{AhoCorasick, AhoCorasickBuilder, AhoCorasickKind, MatchKind};
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

/// Plans with at most this many literals get a DFA (see `PatternSet::build`).
const DFA_MAX_LITERALS: usize = 6000;

/// The matching plan for one log source.
#[derive(Debug)]
pub(crate) struct Plan {
    pub(crate) candidates: Vec<u32>,
    /// Per candidate position: evaluate without looking at literals.
    always: Vec<bool>,
    automaton: Option<AhoCorasick>,
    /// Literal id -> candidate positions needing it.
    literal_rules: Vec<Vec<u32>>,
    /// The fields whose values are scanned; `None` means every value (a keyword rule
    /// is among the candidates). Literals found in a field a rule does not read only
    /// cost an extra evaluation, never a missed match.
    fields: Option<HashSet<u64, KeyHashBuild>>,
    /// Whether any literal could occur in a rendered number or boolean.
    scan_numbers: bool,
}

/// Per-worker buffers for scanning.
#[derive(Debug, Default)]
pub(crate) struct Scan {
    /// Bit per candidate position: a literal it needs was seen.
    hit: Vec<u64>,
    seen_literal: Vec<u64>,
    number: String,
}

impl Plan {
    pub(crate) fn build(candidates: Vec<u32>, literals: &[RuleLiterals]) -> Plan {
        let mut set = PatternSet::default();
        let mut always = vec![true; candidates.len()];
        let mut fields: HashSet<u64, KeyHashBuild> = HashSet::default();
        let mut any_field = false;
        for (pos, &r) in candidates.iter().enumerate() {
            let info = &literals[r as usize];
            let Some(lits) = &info.literals else { continue };
            always[pos] = false;
            any_field |= info.any_field;
            fields.extend(info.fields.iter().map(|f| koban_event::key_hash(f)));
            set.add(lits, pos);
        }
        let scan_numbers = set.patterns.iter().any(|l| {
            l.chars()
                .all(|c| c.is_ascii_digit() || ".-+einfatrulsn".contains(c))
        });
        let (automaton, literal_rules) = set.build();
        if automaton.is_none() && !literal_rules.is_empty() {
            always.iter_mut().for_each(|a| *a = true);
        }
        Plan {
            candidates,
            always,
            automaton,
            literal_rules,
            fields: (!any_field).then_some(fields),
            scan_numbers,
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
        for f in event.fields() {
            // A hash collision only scans one more value: never a missed match.
            if self
                .fields
                .as_ref()
                .is_none_or(|set| set.contains(&f.key_hash()))
            {
                self.mark_value(ac, &f.value, s);
            }
        }
        if self.fields.is_none() {
            if let Some(o) = &event.original {
                self.mark_text(ac, &o.to_lowercase(), s);
            }
        }
    }

    fn mark_value(&self, ac: &AhoCorasick, v: &Value, s: &mut Scan) {
        use std::fmt::Write;
        match v {
            Value::Str(t) => self.mark_text(ac, t.lower(), s),
            Value::List(items) => {
                for item in items {
                    self.mark_value(ac, item, s);
                }
            }
            Value::Null => {}
            // Rendering a number only to find no literal in it is wasted work.
            _ if !self.scan_numbers => {}
            other => {
                let mut number = std::mem::take(&mut s.number);
                number.clear();
                let _ = match other {
                    Value::Int(i) => write!(number, "{i}"),
                    Value::Float(f) => write!(number, "{f}"),
                    Value::Bool(b) => write!(number, "{b}"),
                    _ => Ok(()),
                };
                self.mark_text(ac, &number, s);
                s.number = number;
            }
        }
    }

    /// Sets the hit bit of every rule whose literal occurs in `text`.
    fn mark_text(&self, ac: &AhoCorasick, text: &str, s: &mut Scan) {
        for m in ac.find_overlapping_iter(text) {
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

/// Field-name hashes (`koban_event::key_hash`) are already hashes: used as they are.
type KeyHashBuild = std::hash::BuildHasherDefault<KeyHash>;

#[derive(Default)]
struct KeyHash(u64);

impl std::hash::Hasher for KeyHash {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.0 = self.0.rotate_left(8) ^ u64::from(b);
        }
    }

    fn write_u64(&mut self, n: u64) {
        self.0 = n;
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
            // A DFA scans about a third faster but its size grows with the literal
            // count; the big process-creation sets stay on the compact NFA.
            .kind(Some(if self.patterns.len() <= DFA_MAX_LITERALS {
                AhoCorasickKind::DFA
            } else {
                AhoCorasickKind::ContiguousNFA
            }))
            .build(&self.patterns)
            .ok();
        (ac, self.rules)
    }
}
