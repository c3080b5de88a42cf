//! Playbooks: what Koban does by itself when an alert or an incident matches.
//!
//! A playbook is YAML, checked whole when it is loaded — every error at once, each
//! named by its path (`steps[2].then[0].run`) — and compiled into a flat program of
//! steps with jumps, so a run's position is one number that survives a restart:
//!
//! ```yaml
//! id: contain-encryption
//! name: Isolate a host that encrypts files
//! trigger:
//!   on: alert                # or incident
//!   min_severity: high
//!   techniques: [T1486]      # any of; T1486 also matches T1486.001
//!   needs: [host]
//! steps:
//!   - enrich: [agent, history]
//!   - notify: "Isolating {{host}}: {{title}}"
//!   - id: isolate
//!     run: isolate_host      # under the tenant's approval gate
//!     ttl: 24h
//!   - if: isolate.verified
//!     then: [{ notify: "{{host}} is isolated" }]
//!     else: [{ notify: "isolation of {{host}} did not verify" }]
//! ```
//!
//! Nothing here runs anything: [`Playbook::next`] says what the next step is, the
//! server does it and reports the [`Outcome`] back with [`RunState::finish`].

use std::collections::BTreeMap;
use std::fmt;

use serde::{Deserialize, Serialize};
use serde_json::Value;
use serde_yaml::Value as Yaml;

use crate::action::Action;

/// One thing wrong with a playbook, by path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PlaybookError {
    pub path: String,
    pub message: String,
}

impl fmt::Display for PlaybookError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.path, self.message)
    }
}

/// Alert levels and incident severities, in order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Severity {
    Informational,
    Low,
    Medium,
    High,
    Critical,
}

impl Severity {
    pub fn parse(s: &str) -> Option<Severity> {
        Some(match s.to_ascii_lowercase().as_str() {
            "informational" | "info" => Severity::Informational,
            "low" => Severity::Low,
            "medium" => Severity::Medium,
            "high" => Severity::High,
            "critical" => Severity::Critical,
            _ => return None,
        })
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TriggerOn {
    Alert,
    Incident,
}

/// What a playbook sees of the alert or incident that triggered it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Subject {
    pub on: TriggerOn,
    pub id: i64,
    pub tenant: String,
    pub incident: Option<i64>,
    pub title: String,
    /// The rule's key (alerts; empty for incidents).
    pub rule: String,
    pub severity: Severity,
    pub techniques: Vec<String>,
    pub tactics: Vec<String>,
    /// host, user, src_ip, dst_ip, process, hash, domain — those present.
    pub entities: BTreeMap<String, String>,
    pub retroactive: bool,
}

impl Subject {
    /// The template variables the subject gives a run.
    pub fn vars(&self) -> BTreeMap<String, String> {
        let mut v = self.entities.clone();
        v.insert("tenant".into(), self.tenant.clone());
        v.insert("title".into(), self.title.clone());
        v.insert("rule".into(), self.rule.clone());
        v.insert(
            "severity".into(),
            format!("{:?}", self.severity).to_lowercase(),
        );
        match self.on {
            TriggerOn::Alert => v.insert("alert".into(), self.id.to_string()),
            TriggerOn::Incident => v.insert("incident".into(), self.id.to_string()),
        };
        if let Some(i) = self.incident {
            v.insert("incident".into(), i.to_string());
        }
        v
    }
}

/// The entities a subject may carry.
pub const ENTITIES: &[&str] = &[
    "host", "user", "src_ip", "dst_ip", "process", "hash", "domain",
];
/// Variables every run has (some only for alerts or once an incident exists).
const SUBJECT_VARS: &[&str] = &["tenant", "title", "rule", "severity", "alert", "incident"];
/// What `enrich` looks up, and the variables each lookup sets.
pub const LOOKUPS: &[(&str, &[&str])] = &[
    ("agent", &["agent", "agent_last_seen"]),
    ("history", &["host_alerts_7d", "host_open_incidents"]),
];

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Trigger {
    pub on: TriggerOn,
    pub min_severity: Severity,
    /// Lower-cased globs (`*`) over the rule key and title; empty: any.
    pub rules: Vec<String>,
    /// Upper-cased technique ids; a parent matches its sub-techniques.
    pub techniques: Vec<String>,
    /// Lower-cased tactic names (`credential-access` and `credential_access` alike).
    pub tactics: Vec<String>,
    /// Entities the subject must have.
    pub needs: Vec<String>,
    /// Also alerts a retro-hunt found (off: a month-old finding does not isolate).
    pub retroactive: bool,
}

impl Trigger {
    pub fn matches(&self, s: &Subject) -> bool {
        let norm = |t: &str| t.to_ascii_lowercase().replace('_', "-");
        s.on == self.on
            && s.severity >= self.min_severity
            && (self.retroactive || !s.retroactive)
            && (self.rules.is_empty()
                || self
                    .rules
                    .iter()
                    .any(|g| glob(g, &s.rule.to_lowercase()) || glob(g, &s.title.to_lowercase())))
            && (self.techniques.is_empty()
                || self.techniques.iter().any(|t| {
                    s.techniques.iter().any(|have| {
                        let have = have.to_ascii_uppercase();
                        have == *t || have.starts_with(&format!("{t}."))
                    })
                }))
            && (self.tactics.is_empty()
                || self
                    .tactics
                    .iter()
                    .any(|t| s.tactics.iter().any(|have| norm(have) == *t)))
            && self.needs.iter().all(|e| s.entities.contains_key(e))
    }
}

/// How a step ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    /// A notify was delivered.
    Done,
    /// An enrich found every lookup.
    Found,
    /// An enrich found some lookup empty.
    Missing,
    Verified,
    Unverified,
    Failed,
    Rejected,
    Expired,
}

impl Outcome {
    const ALL: &'static [(&'static str, Outcome)] = &[
        ("done", Outcome::Done),
        ("found", Outcome::Found),
        ("missing", Outcome::Missing),
        ("verified", Outcome::Verified),
        ("unverified", Outcome::Unverified),
        ("failed", Outcome::Failed),
        ("rejected", Outcome::Rejected),
        ("expired", Outcome::Expired),
    ];

    pub fn parse(s: &str) -> Option<Outcome> {
        Outcome::ALL.iter().find(|(n, _)| *n == s).map(|(_, o)| *o)
    }

    pub fn as_str(self) -> &'static str {
        Outcome::ALL
            .iter()
            .find(|(_, o)| *o == self)
            .map_or("done", |(n, _)| n)
    }

    /// The outcome of a run step, from its action's final state; `None` while the
    /// action is still on its way.
    pub fn of_action_state(state: &str) -> Option<Outcome> {
        Some(match state {
            "verified" | "undone" => Outcome::Verified,
            "unverified" => Outcome::Unverified,
            "failed" => Outcome::Failed,
            "rejected" => Outcome::Rejected,
            "expired" => Outcome::Expired,
            _ => return None,
        })
    }
}

/// Text with `{{var}}` holes, checked against the known variables when loaded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Template {
    parts: Vec<Part>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Part {
    Text(String),
    Var(String),
}

impl Template {
    fn parse(s: &str, known: &dyn Fn(&str) -> bool) -> Result<Template, String> {
        let mut parts = Vec::new();
        let mut rest = s;
        while let Some(open) = rest.find("{{") {
            if open > 0 {
                parts.push(Part::Text(rest[..open].to_owned()));
            }
            let after = &rest[open + 2..];
            let close = after.find("}}").ok_or_else(|| {
                format!(
                    "{{{{ at byte {} is never closed",
                    s.len() - rest.len() + open
                )
            })?;
            let name = after[..close].trim();
            if !known(name) {
                return Err(format!(
                    "unknown variable {{{{{name}}}}} (known: {})",
                    known_vars().join(", ")
                ));
            }
            parts.push(Part::Var(name.to_owned()));
            rest = &after[close + 2..];
        }
        if !rest.is_empty() {
            parts.push(Part::Text(rest.to_owned()));
        }
        Ok(Template { parts })
    }

    fn has_vars(&self) -> bool {
        self.parts.iter().any(|p| matches!(p, Part::Var(_)))
    }

    /// The text with the run's values; a variable the run lacks is an error.
    pub fn render(&self, vars: &BTreeMap<String, String>) -> Result<String, String> {
        let mut out = String::new();
        for p in &self.parts {
            match p {
                Part::Text(t) => out.push_str(t),
                Part::Var(v) => {
                    out.push_str(vars.get(v).ok_or_else(|| format!("this run has no {v}"))?)
                }
            }
        }
        Ok(out)
    }
}

fn known_vars() -> Vec<&'static str> {
    let mut v: Vec<&str> = ENTITIES.iter().chain(SUBJECT_VARS).copied().collect();
    v.extend(LOOKUPS.iter().flat_map(|(_, vars)| vars.iter().copied()));
    v
}

/// A value inside a run step's `with`, strings possibly templated.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Param {
    Text(Template),
    Plain(Value),
    List(Vec<Param>),
}

impl Param {
    fn render(&self, vars: &BTreeMap<String, String>) -> Result<Value, String> {
        Ok(match self {
            Param::Text(t) => Value::String(t.render(vars)?),
            Param::Plain(v) => v.clone(),
            Param::List(l) => {
                Value::Array(l.iter().map(|p| p.render(vars)).collect::<Result<_, _>>()?)
            }
        })
    }

    fn has_vars(&self) -> bool {
        match self {
            Param::Text(t) => t.has_vars(),
            Param::Plain(_) => false,
            Param::List(l) => l.iter().any(Param::has_vars),
        }
    }
}

/// A condition of `if`: `step.outcome`, `step.outcome|outcome`, or `not …`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cond {
    pub step: String,
    pub any_of: Vec<Outcome>,
    pub negate: bool,
}

impl Cond {
    fn holds(&self, outcomes: &BTreeMap<String, Outcome>) -> bool {
        let hit = outcomes
            .get(&self.step)
            .is_some_and(|o| self.any_of.contains(o));
        hit != self.negate
    }
}

/// One step of the compiled program.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Op {
    /// Where it was written (`steps[3].then[0]`), for messages and the run log.
    pub path: String,
    /// The name its outcome is kept under (its `id`, else its path).
    pub key: String,
    kind: OpKind,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum OpKind {
    Enrich(Vec<String>),
    Notify(Template),
    Run {
        kind: String,
        with: BTreeMap<String, Param>,
        ttl_ms: Option<i64>,
        always_approve: bool,
    },
    /// Go to `to` unless `cond` holds.
    Unless {
        cond: Cond,
        to: usize,
    },
    Jump(usize),
}

/// What the server must do next for a run.
#[derive(Debug, Clone, PartialEq)]
pub enum Next<'a> {
    /// Look these up and set their variables (see [`LOOKUPS`]).
    Enrich {
        op: &'a Op,
        lookups: &'a [String],
    },
    /// Tell people (the incident timeline, the notification channels).
    Notify {
        op: &'a Op,
        text: Result<String, String>,
    },
    /// Ask for an action on the subject's host; wait for its final state.
    Run {
        op: &'a Op,
        action: Result<Action, String>,
        ttl_ms: Option<i64>,
        /// Wait for a customer admin even where the tenant's service would not.
        always_approve: bool,
    },
    Done,
}

/// Where a run is: the next step, the outcomes so far, its variables. Serialised into
/// the server's database between steps.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct RunState {
    pub pc: usize,
    pub outcomes: BTreeMap<String, Outcome>,
    pub vars: BTreeMap<String, String>,
}

impl RunState {
    pub fn new(subject: &Subject) -> RunState {
        RunState {
            pc: 0,
            outcomes: BTreeMap::new(),
            vars: subject.vars(),
        }
    }

    /// Records how the step [`Playbook::next`] gave ended, and moves past it.
    pub fn finish(&mut self, op: &Op, outcome: Outcome) {
        self.outcomes.insert(op.key.clone(), outcome);
        self.pc += 1;
    }
}

/// A loaded, checked playbook.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Playbook {
    pub id: String,
    pub name: String,
    pub description: String,
    pub enabled: bool,
    pub trigger: Trigger,
    program: Vec<Op>,
}

impl Playbook {
    /// Reads and checks a playbook; every error at once.
    pub fn parse(text: &str) -> Result<Playbook, Vec<PlaybookError>> {
        let doc: Yaml = serde_yaml::from_str(text).map_err(|e| {
            vec![PlaybookError {
                path: match e.location() {
                    Some(l) => format!("line {}, column {}", l.line(), l.column()),
                    None => "(document)".into(),
                },
                message: e.to_string(),
            }]
        })?;
        let mut c = Checker::default();
        let pb = c.playbook(&doc);
        match pb {
            Some(pb) if c.errors.is_empty() => Ok(pb),
            _ => Err(c.errors),
        }
    }

    /// The steps as compiled, for display.
    pub fn steps(&self) -> impl Iterator<Item = (&str, String)> {
        self.program.iter().filter_map(|op| {
            let what = match &op.kind {
                OpKind::Enrich(l) => format!("enrich {}", l.join(", ")),
                OpKind::Notify(_) => "notify".into(),
                OpKind::Run { kind, .. } => format!("run {kind}"),
                OpKind::Unless { cond, .. } => format!(
                    "if {}{}.{}",
                    if cond.negate { "not " } else { "" },
                    cond.step,
                    cond.any_of
                        .iter()
                        .map(|o| o.as_str())
                        .collect::<Vec<_>>()
                        .join("|")
                ),
                OpKind::Jump(_) => return None,
            };
            Some((op.path.as_str(), what))
        })
    }

    /// The next step to carry out for `run`, taking branches on the way.
    pub fn next<'a>(&'a self, run: &mut RunState) -> Next<'a> {
        // Every jump goes forward, so this loop ends.
        loop {
            let Some(op) = self.program.get(run.pc) else {
                return Next::Done;
            };
            match &op.kind {
                OpKind::Unless { cond, to } => {
                    run.pc = if cond.holds(&run.outcomes) {
                        run.pc + 1
                    } else {
                        *to
                    };
                }
                OpKind::Jump(to) => run.pc = *to,
                OpKind::Enrich(lookups) => return Next::Enrich { op, lookups },
                OpKind::Notify(t) => {
                    return Next::Notify {
                        op,
                        text: t.render(&run.vars),
                    }
                }
                OpKind::Run {
                    kind,
                    with,
                    ttl_ms,
                    always_approve,
                } => {
                    return Next::Run {
                        op,
                        action: build_action(kind, with, &run.vars),
                        ttl_ms: *ttl_ms,
                        always_approve: *always_approve,
                    }
                }
            }
        }
    }
}

fn build_action(
    kind: &str,
    with: &BTreeMap<String, Param>,
    vars: &BTreeMap<String, String>,
) -> Result<Action, String> {
    let mut obj = serde_json::Map::new();
    obj.insert("kind".into(), Value::String(kind.to_owned()));
    for (k, p) in with {
        obj.insert(
            k.clone(),
            p.render(vars).map_err(|e| format!("with.{k}: {e}"))?,
        );
    }
    Action::from_json(&Value::Object(obj).to_string()).map_err(|e| e.to_string())
}

/// A placeholder per variable, so a templated `with` can be checked for its shape.
fn sample(var: &str) -> &'static str {
    match var {
        "src_ip" | "dst_ip" => "192.0.2.1",
        "domain" => "example.com",
        "alert" | "incident" | "host_alerts_7d" | "host_open_incidents" => "1",
        "user" => "sample",
        "process" | "hash" => "/sample",
        _ => "sample",
    }
}

#[derive(Default)]
struct Checker {
    errors: Vec<PlaybookError>,
    /// Step keys defined so far, in program order (conditions may name only these).
    defined: Vec<String>,
}

const TOP_KEYS: &[&str] = &["id", "name", "description", "enabled", "trigger", "steps"];
const TRIGGER_KEYS: &[&str] = &[
    "on",
    "min_severity",
    "rules",
    "techniques",
    "tactics",
    "needs",
    "retroactive",
];
const STEP_KINDS: &[&str] = &["enrich", "notify", "run", "if"];

impl Checker {
    fn err(&mut self, path: &str, message: impl Into<String>) {
        self.errors.push(PlaybookError {
            path: path.to_owned(),
            message: message.into(),
        });
    }

    fn mapping<'a>(
        &mut self,
        v: &'a Yaml,
        path: &str,
        keys: &[&str],
    ) -> Option<&'a serde_yaml::Mapping> {
        let Some(m) = v.as_mapping() else {
            self.err(path, "expected a mapping");
            return None;
        };
        for k in m.keys() {
            match k.as_str() {
                Some(k) if keys.contains(&k) => {}
                Some(k) => self.err(
                    &join(path, k),
                    format!("unknown key (known: {})", keys.join(", ")),
                ),
                None => self.err(path, format!("a key must be text, not {k:?}")),
            }
        }
        Some(m)
    }

    fn text(&mut self, v: Option<&Yaml>, path: &str, required: bool) -> Option<String> {
        match v {
            None if required => {
                self.err(path, "missing");
                None
            }
            None => None,
            Some(Yaml::String(s)) => Some(s.clone()),
            Some(_) => {
                self.err(path, "expected text");
                None
            }
        }
    }

    fn list(&mut self, v: Option<&Yaml>, path: &str) -> Vec<String> {
        match v {
            None => Vec::new(),
            Some(Yaml::String(s)) => vec![s.clone()],
            Some(Yaml::Sequence(items)) => items
                .iter()
                .enumerate()
                .filter_map(|(i, it)| self.text(Some(it), &format!("{path}[{i}]"), true))
                .collect(),
            Some(_) => {
                self.err(path, "expected a list of text");
                Vec::new()
            }
        }
    }

    fn boolean(&mut self, v: Option<&Yaml>, path: &str, default: bool) -> bool {
        match v {
            None => default,
            Some(Yaml::Bool(b)) => *b,
            Some(_) => {
                self.err(path, "expected true or false");
                default
            }
        }
    }

    fn playbook(&mut self, doc: &Yaml) -> Option<Playbook> {
        let m = self.mapping(doc, "(playbook)", TOP_KEYS)?;
        let id = self.text(m.get("id"), "id", true).unwrap_or_default();
        if !id.is_empty()
            && (id.len() > 64
                || !id.bytes().all(|b| {
                    b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'_'
                }))
        {
            self.err("id", format!("{id:?}: use 1–64 of a-z, 0-9, - and _"));
        }
        let name = self
            .text(m.get("name"), "name", false)
            .unwrap_or_else(|| id.clone());
        let description = self
            .text(m.get("description"), "description", false)
            .unwrap_or_default();
        let enabled = self.boolean(m.get("enabled"), "enabled", true);
        let trigger = match m.get("trigger") {
            Some(t) => self.trigger(t),
            None => {
                self.err("trigger", "missing");
                None
            }
        };
        let mut program = Vec::new();
        match m.get("steps") {
            Some(Yaml::Sequence(steps)) if !steps.is_empty() => {
                self.steps(steps, "steps", &mut program)
            }
            Some(_) => self.err("steps", "expected a non-empty list of steps"),
            None => self.err("steps", "missing"),
        }
        Some(Playbook {
            id,
            name,
            description,
            enabled,
            trigger: trigger?,
            program,
        })
    }

    fn trigger(&mut self, v: &Yaml) -> Option<Trigger> {
        let m = self.mapping(v, "trigger", TRIGGER_KEYS)?;
        let on = match self.text(m.get("on"), "trigger.on", true).as_deref() {
            Some("alert") => Some(TriggerOn::Alert),
            Some("incident") => Some(TriggerOn::Incident),
            Some(other) => {
                self.err("trigger.on", format!("{other:?}: use alert or incident"));
                None
            }
            None => None,
        };
        let min_severity = match self.text(m.get("min_severity"), "trigger.min_severity", false) {
            None => Severity::Informational,
            Some(s) => Severity::parse(&s).unwrap_or_else(|| {
                self.err(
                    "trigger.min_severity",
                    format!("{s:?}: use informational, low, medium, high or critical"),
                );
                Severity::Informational
            }),
        };
        let rules = self
            .list(m.get("rules"), "trigger.rules")
            .into_iter()
            .map(|r| r.to_lowercase())
            .collect();
        let mut techniques = Vec::new();
        for (i, t) in self
            .list(m.get("techniques"), "trigger.techniques")
            .into_iter()
            .enumerate()
        {
            let t = t.to_ascii_uppercase();
            let ok = t.len() >= 5
                && t.starts_with('T')
                && t[1..]
                    .split('.')
                    .all(|p| !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit()));
            if ok {
                techniques.push(t);
            } else {
                self.err(
                    &format!("trigger.techniques[{i}]"),
                    format!("{t:?} is not an ATT&CK technique id (T1234 or T1234.001)"),
                );
            }
        }
        let tactics = self
            .list(m.get("tactics"), "trigger.tactics")
            .into_iter()
            .map(|t| t.to_ascii_lowercase().replace('_', "-"))
            .collect();
        let needs = self.list(m.get("needs"), "trigger.needs");
        for (i, n) in needs.iter().enumerate() {
            if !ENTITIES.contains(&n.as_str()) {
                self.err(
                    &format!("trigger.needs[{i}]"),
                    format!("{n:?}: entities are {}", ENTITIES.join(", ")),
                );
            }
        }
        let retroactive = self.boolean(m.get("retroactive"), "trigger.retroactive", false);
        Some(Trigger {
            on: on?,
            min_severity,
            rules,
            techniques,
            tactics,
            needs,
            retroactive,
        })
    }

    fn steps(&mut self, steps: &[Yaml], path: &str, out: &mut Vec<Op>) {
        for (i, s) in steps.iter().enumerate() {
            self.step(s, &format!("{path}[{i}]"), out);
        }
    }

    fn step(&mut self, v: &Yaml, path: &str, out: &mut Vec<Op>) {
        let Some(m) = v.as_mapping() else {
            self.err(path, format!("expected a step ({})", STEP_KINDS.join(", ")));
            return;
        };
        let kinds: Vec<&str> = STEP_KINDS
            .iter()
            .copied()
            .filter(|k| m.contains_key(*k))
            .collect();
        let [kind] = kinds[..] else {
            self.err(
                path,
                if kinds.is_empty() {
                    format!("a step needs one of {}", STEP_KINDS.join(", "))
                } else {
                    format!("one kind per step, not {}", kinds.join(" and "))
                },
            );
            return;
        };
        let allowed: &[&str] = match kind {
            "enrich" | "notify" => &["id", "enrich", "notify"],
            "run" => &["id", "run", "with", "ttl", "approval"],
            _ => &["id", "if", "then", "else"],
        };
        self.mapping(v, path, allowed);
        let id = self.text(m.get("id"), &join(path, "id"), false);
        if let Some(id) = &id {
            if self.defined.contains(id) {
                self.err(
                    &join(path, "id"),
                    format!("{id:?} is already the id of an earlier step"),
                );
            }
            if id.contains('.') || id.contains(' ') || id.is_empty() {
                self.err(&join(path, "id"), format!("{id:?}: no dots or spaces"));
            }
        }
        let key = id.unwrap_or_else(|| path.to_owned());
        let kind = match kind {
            "enrich" => {
                let p = join(path, "enrich");
                let lookups = self.list(m.get("enrich"), &p);
                if lookups.is_empty() {
                    self.err(&p, "name at least one lookup");
                }
                for (i, l) in lookups.iter().enumerate() {
                    if !LOOKUPS.iter().any(|(n, _)| n == l) {
                        let known: Vec<&str> = LOOKUPS.iter().map(|(n, _)| *n).collect();
                        self.err(
                            &format!("{p}[{i}]"),
                            format!("{l:?}: lookups are {}", known.join(", ")),
                        );
                    }
                }
                OpKind::Enrich(lookups)
            }
            "notify" => {
                let p = join(path, "notify");
                let text = self.text(m.get("notify"), &p, true).unwrap_or_default();
                OpKind::Notify(self.template(&text, &p))
            }
            "run" => self.run(m, path),
            _ => {
                self.branch(m, path, key, out);
                return;
            }
        };
        self.defined.push(key.clone());
        out.push(Op {
            path: path.to_owned(),
            key,
            kind,
        });
    }

    fn template(&mut self, text: &str, path: &str) -> Template {
        let known = |v: &str| known_vars().contains(&v);
        Template::parse(text, &known).unwrap_or_else(|e| {
            self.err(path, e);
            Template { parts: Vec::new() }
        })
    }

    fn run(&mut self, m: &serde_yaml::Mapping, path: &str) -> OpKind {
        let kind = self
            .text(m.get("run"), &join(path, "run"), true)
            .unwrap_or_default();
        let mut with = BTreeMap::new();
        let wp = join(path, "with");
        match m.get("with") {
            None => {}
            Some(Yaml::Mapping(w)) => {
                for (k, v) in w {
                    let Some(k) = k.as_str() else {
                        self.err(&wp, "parameter names are text");
                        continue;
                    };
                    if k == "kind" {
                        self.err(&join(&wp, k), "the kind is the step's run");
                        continue;
                    }
                    if let Some(p) = self.param(v, &join(&wp, k)) {
                        with.insert(k.to_owned(), p);
                    }
                }
            }
            Some(_) => self.err(&wp, "expected a mapping of parameters"),
        }
        let ttl_ms = self
            .text(m.get("ttl"), &join(path, "ttl"), false)
            .and_then(|t| match duration_ms(&t) {
                Some(ms) => Some(ms),
                None => {
                    self.err(
                        &join(path, "ttl"),
                        format!("{t:?}: a duration such as 90s, 30m, 24h, 7d"),
                    );
                    None
                }
            });
        let always_approve = match self
            .text(m.get("approval"), &join(path, "approval"), false)
            .as_deref()
        {
            None | Some("policy") => false,
            Some("always") => true,
            Some(o) => {
                self.err(
                    &join(path, "approval"),
                    format!("{o:?}: use policy (the tenant's gate) or always"),
                );
                false
            }
        };
        if !kind.is_empty() {
            self.check_action(&kind, &with, path);
            if let (Some(_), Ok(a)) = (
                ttl_ms,
                build_action(&kind, &sampled(&with), &BTreeMap::new()),
            ) {
                if a.undo().is_none() {
                    self.err(
                        &join(path, "ttl"),
                        format!("{kind} cannot be undone, so it cannot expire"),
                    );
                }
            }
        }
        OpKind::Run {
            kind,
            with,
            ttl_ms,
            always_approve,
        }
    }

    /// The action's shape with the variables' placeholders; its values too when no
    /// variable is used (a templated value is checked when the run fills it in).
    fn check_action(&mut self, kind: &str, with: &BTreeMap<String, Param>, path: &str) {
        let templated = with.values().any(Param::has_vars);
        match build_action(kind, &sampled(with), &BTreeMap::new()) {
            Ok(_) => {}
            Err(e) if templated && !e.starts_with("action:") => {}
            Err(e) => {
                let e = e.strip_prefix("action: ").unwrap_or(&e);
                // serde's position is in JSON Koban built, not in the playbook.
                let e = e.rsplit_once(" at line ").map_or(e, |(msg, _)| msg);
                self.err(&join(path, "run"), format!("{kind}: {e}"));
            }
        }
    }

    fn param(&mut self, v: &Yaml, path: &str) -> Option<Param> {
        Some(match v {
            Yaml::String(s) => Param::Text(self.template(s, path)),
            Yaml::Sequence(items) => Param::List(
                items
                    .iter()
                    .enumerate()
                    .filter_map(|(i, it)| self.param(it, &format!("{path}[{i}]")))
                    .collect(),
            ),
            other => match serde_json::to_value(other) {
                Ok(j) => Param::Plain(j),
                Err(e) => {
                    self.err(path, e.to_string());
                    return None;
                }
            },
        })
    }

    fn branch(&mut self, m: &serde_yaml::Mapping, path: &str, key: String, out: &mut Vec<Op>) {
        let cp = join(path, "if");
        let cond = self
            .text(m.get("if"), &cp, true)
            .and_then(|c| match parse_cond(&c) {
                Ok(cond) => {
                    if !self.defined.contains(&cond.step) {
                        self.err(
                            &cp,
                            format!("{:?} is not the id of an earlier step", cond.step),
                        );
                    }
                    Some(cond)
                }
                Err(e) => {
                    self.err(&cp, e);
                    None
                }
            });
        let branch_at = out.len();
        out.push(Op {
            path: path.to_owned(),
            key,
            kind: OpKind::Jump(0),
        });
        let then = m.get("then");
        match then {
            Some(Yaml::Sequence(s)) if !s.is_empty() => self.steps(s, &join(path, "then"), out),
            _ => self.err(&join(path, "then"), "expected a non-empty list of steps"),
        }
        let mut jump_at = None;
        match m.get("else") {
            None => {}
            Some(Yaml::Sequence(s)) if !s.is_empty() => {
                jump_at = Some(out.len());
                out.push(Op {
                    path: join(path, "else"),
                    key: join(path, "else"),
                    kind: OpKind::Jump(0),
                });
                self.steps(s, &join(path, "else"), out);
            }
            Some(_) => self.err(&join(path, "else"), "expected a non-empty list of steps"),
        }
        let end = out.len();
        let else_start = jump_at.map_or(end, |j| j + 1);
        if let Some(cond) = cond {
            out[branch_at].kind = OpKind::Unless {
                cond,
                to: else_start,
            };
        }
        if let Some(j) = jump_at {
            out[j].kind = OpKind::Jump(end);
        }
    }
}

fn sampled(with: &BTreeMap<String, Param>) -> BTreeMap<String, Param> {
    fn fill(p: &Param) -> Param {
        match p {
            Param::Text(t) => Param::Text(Template {
                parts: t
                    .parts
                    .iter()
                    .map(|part| match part {
                        Part::Var(v) => Part::Text(sample(v).to_owned()),
                        text => text.clone(),
                    })
                    .collect(),
            }),
            Param::Plain(v) => Param::Plain(v.clone()),
            Param::List(l) => Param::List(l.iter().map(fill).collect()),
        }
    }
    with.iter().map(|(k, p)| (k.clone(), fill(p))).collect()
}

fn parse_cond(text: &str) -> Result<Cond, String> {
    let t = text.trim();
    let (negate, t) = match t.strip_prefix("not ") {
        Some(rest) => (true, rest.trim()),
        None => (false, t),
    };
    let (step, outcomes) = t
        .rsplit_once('.')
        .ok_or_else(|| format!("{text:?}: write step.outcome, e.g. isolate.verified"))?;
    let mut any_of = Vec::new();
    for o in outcomes.split('|') {
        let o = o.trim();
        any_of.push(Outcome::parse(o).ok_or_else(|| {
            let names: Vec<&str> = Outcome::ALL.iter().map(|(n, _)| *n).collect();
            format!("{o:?} is not an outcome ({})", names.join(", "))
        })?);
    }
    Ok(Cond {
        step: step.trim().to_owned(),
        any_of,
        negate,
    })
}

fn join(path: &str, key: &str) -> String {
    format!("{path}.{key}")
}

/// `90s`, `30m`, `24h`, `7d` in milliseconds.
pub fn duration_ms(s: &str) -> Option<i64> {
    let s = s.trim();
    let unit = s.chars().last()?;
    let n: i64 = s[..s.len() - unit.len_utf8()].trim().parse().ok()?;
    let ms = match unit {
        's' => 1_000,
        'm' => 60_000,
        'h' => 3_600_000,
        'd' => 86_400_000,
        _ => return None,
    };
    (n > 0).then(|| n.checked_mul(ms)).flatten()
}

/// `*` matches any run of characters; everything else itself.
fn glob(pattern: &str, text: &str) -> bool {
    let parts: Vec<&str> = pattern.split('*').collect();
    if parts.len() == 1 {
        return pattern == text;
    }
    let (first, last) = (parts[0], parts[parts.len() - 1]);
    if !text.starts_with(first) || text.len() < first.len() + last.len() || !text.ends_with(last) {
        return false;
    }
    let mut rest = &text[first.len()..text.len() - last.len()];
    for mid in &parts[1..parts.len() - 1] {
        match rest.find(mid) {
            Some(i) => rest = &rest[i + mid.len()..],
            None => return false,
        }
    }
    true
}
