//! One detection key with its values (`Image|endswith: [...]`), compiled into a test
//! that cannot fail on an event, and able to say which value matched.

use std::collections::HashMap;
use std::net::IpAddr;

use aho_corasick::AhoCorasick;
use ipnet::IpNet;
use koban_event::{Event, Value};
use regex::RegexBuilder;
use serde_yaml::Value as Yaml;

use crate::error::RuleError;
use crate::modifier::{Compare, Modifiers};
use crate::pattern::{self, StrPattern};
use crate::transform::{self, Unresolved};

/// Above this many substring values on one field, an Aho-Corasick automaton answers
/// "does any of them occur" in one pass instead of one search per value.
const AHO_CORASICK_MIN: usize = 6;

#[derive(Debug, Clone)]
pub(crate) enum ValueTest {
    Text(StrPattern),
    /// A plain number: equal as a number, or as text when the event has text.
    Number(f64, StrPattern),
    Bool(bool),
    /// `null`: the field is absent or null.
    Null,
    Compare(Compare, f64),
    Cidr(IpNet),
    /// Another field of the same event (`fieldref`), compared by `compare`.
    FieldRef {
        key: Box<str>,
        name: Box<str>,
        compare: Compare,
        cased: bool,
    },
    /// Left over when a value expands to nothing (unconfigured placeholder).
    Never,
}

/// A compiled detection key.
#[derive(Debug, Clone)]
pub struct FieldTest {
    /// Field name as the rule wrote it.
    pub(crate) name: Box<str>,
    /// Lower-cased: the event lookup key.
    pub(crate) key: Box<str>,
    pub(crate) tests: Vec<ValueTest>,
    /// `all`: every listed value must hold; otherwise any.
    pub(crate) all: bool,
    /// The tests each listed value became (one value may become several: windash,
    /// base64offset, expand). With `all`, each group needs one test that holds.
    groups: Vec<std::ops::Range<usize>>,
    /// `exists: true/false`.
    pub(crate) exists: Option<bool>,
    /// Many substring tests at once (only for "any" semantics over lowered text).
    any_substring: Option<AhoCorasick>,
}

impl FieldTest {
    pub(crate) fn compile(
        name: &str,
        modifier_names: &[&str],
        value: &Yaml,
        placeholders: &HashMap<String, Vec<String>>,
        unresolved: &mut Unresolved,
    ) -> Result<FieldTest, RuleError> {
        let m = Modifiers::parse(name, modifier_names)?;
        let values: Vec<&Yaml> = match value {
            Yaml::Sequence(items) => items.iter().collect(),
            other => vec![other],
        };
        let mut test = FieldTest {
            name: name.into(),
            key: name.to_lowercase().into_boxed_str(),
            tests: Vec::new(),
            all: m.all,
            exists: None,
            any_substring: None,
            groups: Vec::new(),
        };
        // An empty field name (`'|all': [...]`) is a keyword search over every value.
        let m = if name.is_empty() && m.compare == Compare::Equals {
            Modifiers {
                compare: Compare::Contains,
                ..m
            }
        } else {
            m
        };
        if m.compare == Compare::Exists {
            let [v] = values.as_slice() else {
                return Err(bad(name, "exists", "one boolean", value));
            };
            test.exists =
                Some(yaml_bool(v).ok_or_else(|| bad(name, "exists", "true or false", v))?);
            return Ok(test);
        }
        for v in values {
            let start = test.tests.len();
            compile_value(name, &m, v, placeholders, unresolved, &mut test.tests)?;
            if test.tests.len() == start {
                // An unresolvable placeholder: this value can never hold.
                test.tests.push(ValueTest::Never);
            }
            test.groups.push(start..test.tests.len());
        }
        if test.tests.is_empty() {
            // An empty list, or only unresolvable placeholders: nothing can match.
            test.tests.push(ValueTest::Never);
        }
        if !test.all && test.tests.len() >= AHO_CORASICK_MIN {
            let needles: Option<Vec<&[u8]>> = test
                .tests
                .iter()
                .map(|t| match t {
                    ValueTest::Text(p) => p.contains_literal(),
                    _ => None,
                })
                .collect();
            if let Some(needles) = needles {
                test.any_substring = AhoCorasick::new(needles).ok();
            }
        }
        Ok(test)
    }

    /// Does the event satisfy this key?
    #[inline]
    pub(crate) fn matches(&self, event: &Event) -> bool {
        if self.key.is_empty() {
            return self.matches_any_field(event);
        }
        let value = event.get_lower(&self.key);
        if let Some(want) = self.exists {
            // Present counts, even when empty or null (the spec's `exists`).
            return value.is_some() == want;
        }
        if let (Some(ac), Some(v)) = (&self.any_substring, value) {
            return any_text(v, &mut |_, lower| ac.is_match(lower));
        }
        if self.all {
            self.groups.iter().all(|g| {
                self.tests[g.clone()]
                    .iter()
                    .any(|t| test_value(t, value, event))
            })
        } else {
            self.tests.iter().any(|t| test_value(t, value, event))
        }
    }

    /// Keyword form (no field name): each value may hold in any field.
    fn matches_any_field(&self, event: &Event) -> bool {
        let holds = |t: &ValueTest| {
            event
                .fields()
                .iter()
                .any(|f| test_value(t, Some(&f.value), event))
        };
        if self.all {
            self.groups
                .iter()
                .all(|g| self.tests[g.clone()].iter().any(holds))
        } else {
            self.tests.iter().any(holds)
        }
    }

    /// Whether this key searches every field (a keyword list with modifiers).
    pub(crate) fn is_keyword_search(&self) -> bool {
        self.key.is_empty()
    }

    /// Literals one of which occurs in any event this key holds for, or `None`.
    pub(crate) fn necessary(&self) -> Option<Vec<&str>> {
        if self.exists.is_some() {
            return None;
        }
        fn literal(t: &ValueTest) -> Option<&str> {
            match t {
                ValueTest::Text(p) => p.necessary(),
                _ => None,
            }
        }
        if self.all {
            // Every value must hold, so any one value's literals (one per variant) are
            // necessary: take the value whose shortest literal is longest.
            self.groups
                .iter()
                .filter_map(|g| {
                    self.tests[g.clone()]
                        .iter()
                        .map(literal)
                        .collect::<Option<Vec<&str>>>()
                })
                .max_by_key(|set| set.iter().map(|l| l.len()).min().unwrap_or(0))
        } else {
            self.tests.iter().map(literal).collect()
        }
    }

    /// A rough relative cost of evaluating this key, to try cheap keys first.
    pub(crate) fn cost(&self) -> u32 {
        if self.exists.is_some() {
            return 1;
        }
        let per_value: u32 = self
            .tests
            .iter()
            .map(|t| match t {
                ValueTest::Text(p) => p.cost(),
                ValueTest::FieldRef { .. } => 8,
                _ => 1,
            })
            .sum();
        match &self.any_substring {
            Some(_) => 6,
            None => per_value,
        }
    }

    /// For an explanation: the event's value and the rule value(s) that matched.
    pub(crate) fn explain(&self, event: &Event) -> (String, String) {
        let value = event.get_lower(&self.key);
        let shown_value = value
            .and_then(Value::to_display)
            .unwrap_or_else(|| "(absent)".into());
        if let Some(want) = self.exists {
            return (shown_value, format!("exists: {want}"));
        }
        let matched: Vec<String> = self
            .tests
            .iter()
            .filter(|t| test_value(t, value, event))
            .map(describe)
            .collect();
        (shown_value, matched.join(" and "))
    }
}

fn describe(t: &ValueTest) -> String {
    match t {
        ValueTest::Text(p) | ValueTest::Number(_, p) => p.shown().to_owned(),
        ValueTest::Bool(b) => b.to_string(),
        ValueTest::Null => "null".into(),
        ValueTest::Compare(c, n) => format!("{c:?} {n}").to_lowercase(),
        ValueTest::Cidr(net) => format!("cidr {net}"),
        ValueTest::FieldRef { name, compare, .. } => {
            format!("{compare:?} field {name}").to_lowercase()
        }
        ValueTest::Never => "never".into(),
    }
}

fn bad(field: &str, modifier: &str, expected: &'static str, got: &Yaml) -> RuleError {
    RuleError::BadModifierValue {
        field: field.into(),
        modifier: modifier.into(),
        expected,
        got: yaml_text(got).unwrap_or_else(|| format!("{got:?}")),
    }
}

fn yaml_bool(v: &Yaml) -> Option<bool> {
    match v {
        Yaml::Bool(b) => Some(*b),
        Yaml::String(s) if s.eq_ignore_ascii_case("true") => Some(true),
        Yaml::String(s) if s.eq_ignore_ascii_case("false") => Some(false),
        _ => None,
    }
}

pub(crate) fn yaml_text(v: &Yaml) -> Option<String> {
    match v {
        Yaml::String(s) => Some(s.clone()),
        Yaml::Number(n) => Some(n.to_string()),
        Yaml::Bool(b) => Some(b.to_string()),
        _ => None,
    }
}

fn compile_value(
    field: &str,
    m: &Modifiers,
    v: &Yaml,
    placeholders: &HashMap<String, Vec<String>>,
    unresolved: &mut Unresolved,
    out: &mut Vec<ValueTest>,
) -> Result<(), RuleError> {
    let modifier = |c: Compare| format!("{c:?}").to_lowercase();
    match m.compare {
        Compare::Regex => {
            let src = yaml_text(v).ok_or_else(|| bad(field, "re", "a regular expression", v))?;
            let re = RegexBuilder::new(&src)
                .case_insensitive(m.re_insensitive)
                .multi_line(m.re_multiline)
                .dot_matches_new_line(m.re_dotall)
                .build()
                .map_err(|e| RuleError::BadRegex {
                    field: field.into(),
                    message: e.to_string(),
                })?;
            out.push(ValueTest::Text(StrPattern::regex(re, &src)));
        }
        Compare::Cidr => {
            let src = yaml_text(v).ok_or_else(|| bad(field, "cidr", "a network", v))?;
            let net = src
                .trim()
                .parse::<IpNet>()
                .or_else(|_| src.trim().parse::<IpAddr>().map(IpNet::from))
                .map_err(|_| bad(field, "cidr", "a network such as 10.0.0.0/8", v))?;
            out.push(ValueTest::Cidr(net));
        }
        c @ (Compare::Gt | Compare::Gte | Compare::Lt | Compare::Lte) => {
            let n = yaml_number(v).ok_or_else(|| bad(field, &modifier(c), "a number", v))?;
            out.push(ValueTest::Compare(c, n));
        }
        // `exists` returns before values are compiled.
        Compare::Exists => {}
        compare if m.fieldref => {
            let other = yaml_text(v).ok_or_else(|| bad(field, "fieldref", "a field name", v))?;
            out.push(ValueTest::FieldRef {
                key: other.to_lowercase().into_boxed_str(),
                name: other.into_boxed_str(),
                compare,
                cased: m.cased,
            });
        }
        compare => match v {
            Yaml::Null if compare == Compare::Equals && m.transforms.is_empty() => {
                out.push(ValueTest::Null)
            }
            Yaml::Bool(b) if compare == Compare::Equals && m.transforms.is_empty() => {
                out.push(ValueTest::Bool(*b))
            }
            Yaml::Number(n) if compare == Compare::Equals && m.transforms.is_empty() => {
                let text = n.to_string();
                let f = n.as_f64().unwrap_or(f64::NAN);
                out.push(ValueTest::Number(
                    f,
                    StrPattern::from_tokens(pattern::literal(text), m.cased),
                ));
            }
            Yaml::String(_) | Yaml::Number(_) | Yaml::Bool(_) => {
                let text = yaml_text(v).unwrap_or_default();
                for staged in transform::apply(
                    pattern::tokenize(&text),
                    &m.transforms,
                    placeholders,
                    unresolved,
                ) {
                    let mut tokens = staged.into_tokens();
                    if matches!(compare, Compare::Contains | Compare::EndsWith) {
                        tokens.insert(0, pattern::Token::Star);
                    }
                    if matches!(compare, Compare::Contains | Compare::StartsWith) {
                        tokens.push(pattern::Token::Star);
                    }
                    out.push(ValueTest::Text(StrPattern::from_tokens(tokens, m.cased)));
                }
            }
            Yaml::Null => return Err(bad(field, &modifier(compare), "a value, not null", v)),
            _ => {
                return Err(bad(
                    field,
                    &modifier(compare),
                    "a string, number or boolean",
                    v,
                ))
            }
        },
    }
    Ok(())
}

fn yaml_number(v: &Yaml) -> Option<f64> {
    match v {
        Yaml::Number(n) => n.as_f64(),
        Yaml::String(s) => s.trim().parse().ok(),
        _ => None,
    }
}

/// Calls `f(original, lower)` on the text form of a value (each element of a list)
/// until it returns true.
#[inline]
pub(crate) fn any_text(value: &Value, f: &mut dyn FnMut(&str, &str) -> bool) -> bool {
    match value {
        Value::Str(t) => f(t.as_str(), t.lower()),
        Value::Int(i) => {
            let s = i.to_string();
            f(&s, &s)
        }
        Value::Float(x) => {
            let s = x.to_string();
            f(&s, &s)
        }
        Value::Bool(b) => {
            let s = if *b { "true" } else { "false" };
            f(s, s)
        }
        Value::List(items) => items.iter().any(|v| any_text(v, f)),
        Value::Null => false,
    }
}

fn test_value(t: &ValueTest, value: Option<&Value>, event: &Event) -> bool {
    if let ValueTest::Null = t {
        return matches!(value, None | Some(Value::Null));
    }
    let Some(value) = value else { return false };
    match t {
        ValueTest::Text(p) => any_text(value, &mut |o, l| p.matches(o, l)),
        ValueTest::Number(n, p) => match value {
            Value::Int(i) => *i as f64 == *n,
            Value::Float(f) => f == n,
            Value::Str(s) => {
                p.matches(s.as_str(), s.lower())
                    || s.as_str().trim().parse::<f64>().ok() == Some(*n)
            }
            Value::List(items) => items.iter().any(|v| test_value(t, Some(v), event)),
            _ => false,
        },
        ValueTest::Bool(b) => match value {
            Value::Bool(v) => v == b,
            Value::Str(s) => s.lower() == if *b { "true" } else { "false" },
            Value::List(items) => items.iter().any(|v| test_value(t, Some(v), event)),
            _ => false,
        },
        ValueTest::Compare(c, n) => {
            let check = |x: f64| match c {
                Compare::Gt => x > *n,
                Compare::Gte => x >= *n,
                Compare::Lt => x < *n,
                _ => x <= *n,
            };
            match value {
                Value::List(items) => items.iter().any(|v| v.as_f64().is_some_and(check)),
                v => v.as_f64().is_some_and(check),
            }
        }
        ValueTest::Cidr(net) => any_text(value, &mut |o, _| {
            let o = o.trim().trim_start_matches('[').trim_end_matches(']');
            o.parse::<IpAddr>().is_ok_and(|ip| {
                net.contains(&ip)
                    || match ip {
                        IpAddr::V6(v6) => v6
                            .to_ipv4_mapped()
                            .is_some_and(|v4| net.contains(&IpAddr::V4(v4))),
                        IpAddr::V4(_) => false,
                    }
            })
        }),
        ValueTest::FieldRef {
            key,
            compare,
            cased,
            ..
        } => {
            let Some(other) = event.get_lower(key).and_then(Value::to_display) else {
                return false;
            };
            let other_lower = other.to_lowercase();
            any_text(value, &mut |o, l| {
                let (s, needle) = if *cased {
                    (o, other.as_str())
                } else {
                    (l, other_lower.as_str())
                };
                match compare {
                    Compare::Contains => s.contains(needle),
                    Compare::StartsWith => s.starts_with(needle),
                    Compare::EndsWith => s.ends_with(needle),
                    _ => s == needle,
                }
            })
        }
        ValueTest::Null => true,
        ValueTest::Never => false,
    }
}
