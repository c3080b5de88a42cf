//! Sigma documents: detection rules, filters and correlation rules, read from a YAML
//! mapping into typed, compiled forms.

use std::collections::HashMap;
use std::path::Path;
use std::sync::Arc;

use serde_yaml::{Mapping, Value as Yaml};

use crate::correlation::Correlation;
use crate::detection::Detection;
use crate::error::RuleError;
use crate::transform::Unresolved;

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Level {
    Informational,
    Low,
    Medium,
    High,
    Critical,
}

impl Level {
    pub fn parse(s: &str) -> Option<Level> {
        Some(match s.trim().to_ascii_lowercase().as_str() {
            "informational" | "info" => Level::Informational,
            "low" => Level::Low,
            "medium" => Level::Medium,
            "high" => Level::High,
            "critical" => Level::Critical,
            _ => return None,
        })
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Level::Informational => "informational",
            Level::Low => "low",
            Level::Medium => "medium",
            Level::High => "high",
            Level::Critical => "critical",
        }
    }
}

impl std::fmt::Display for Level {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The `logsource:` of a rule, lower-cased for routing.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash)]
pub struct LogSourceSpec {
    pub product: Option<String>,
    pub category: Option<String>,
    pub service: Option<String>,
}

/// Where a document came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Origin {
    pub file: Arc<Path>,
    /// 1-based document index in the file.
    pub document: usize,
    /// 1-based line where the document starts.
    pub line: usize,
}

/// The ATT&CK enterprise tactics in kill-chain order, as Sigma tags name them.
pub const TACTICS: [&str; 14] = [
    "reconnaissance",
    "resource-development",
    "initial-access",
    "execution",
    "persistence",
    "privilege-escalation",
    "defense-evasion",
    "credential-access",
    "discovery",
    "lateral-movement",
    "collection",
    "command-and-control",
    "exfiltration",
    "impact",
];

/// What every kind of Sigma document carries.
#[derive(Debug, Clone)]
pub struct Meta {
    pub title: String,
    pub id: Option<String>,
    /// The `name:` other rules use to refer to this one (correlations, filters).
    pub name: Option<String>,
    pub status: Option<String>,
    pub level: Option<Level>,
    pub description: Option<String>,
    pub author: Option<String>,
    pub tags: Vec<String>,
    pub references: Vec<String>,
    pub falsepositives: Vec<String>,
    pub logsource: LogSourceSpec,
    pub origin: Origin,
}

impl Meta {
    /// ATT&CK technique ids from `attack.tNNNN[.NNN]` tags, upper-cased.
    pub fn techniques(&self) -> Vec<String> {
        self.tags
            .iter()
            .filter_map(|t| t.strip_prefix("attack."))
            .filter(|t| {
                let b = t.as_bytes();
                b.len() >= 5
                    && (b[0] == b't' || b[0] == b'T')
                    && b[1..5].iter().all(u8::is_ascii_digit)
            })
            .map(|t| t.to_ascii_uppercase())
            .collect()
    }

    /// ATT&CK tactic names from `attack.<tactic>` tags (`credential-access` form).
    pub fn tactics(&self) -> Vec<String> {
        self.tags
            .iter()
            .filter_map(|t| t.strip_prefix("attack."))
            .map(|t| t.replace('_', "-"))
            .filter(|t| TACTICS.contains(&t.as_str()))
            .collect()
    }

    /// The id if there is one, else the title: how alerts name the rule.
    pub fn key(&self) -> &str {
        self.id.as_deref().unwrap_or(&self.title)
    }
}

/// A detection rule.
#[derive(Debug, Clone)]
pub struct Rule {
    pub meta: Meta,
    pub detection: Detection,
}

/// A Sigma filter: more conditions for the rules it names.
#[derive(Debug, Clone)]
pub struct Filter {
    pub meta: Meta,
    pub rules: Vec<String>,
    pub detection: Detection,
}

#[derive(Debug, Clone)]
pub enum Document {
    Rule(Rule),
    Filter(Filter),
    Correlation(Correlation),
}

impl Document {
    pub fn meta(&self) -> &Meta {
        match self {
            Document::Rule(r) => &r.meta,
            Document::Filter(f) => &f.meta,
            Document::Correlation(c) => &c.meta,
        }
    }

    /// Reads one document. `unresolved` collects placeholders without values.
    pub(crate) fn from_yaml(
        doc: &Mapping,
        origin: Origin,
        placeholders: &HashMap<String, Vec<String>>,
        unresolved: &mut Unresolved,
    ) -> Result<Document, RuleError> {
        let meta = read_meta(doc, origin)?;
        if let Some(c) = doc.get("correlation") {
            let c = c.as_mapping().ok_or(RuleError::WrongType {
                key: "correlation".into(),
                expected: "a mapping",
            })?;
            let generate = match doc.get("generate") {
                None => false,
                Some(Yaml::Bool(b)) => *b,
                Some(_) => {
                    return Err(RuleError::WrongType {
                        key: "generate".into(),
                        expected: "true or false",
                    })
                }
            };
            return Ok(Document::Correlation(Correlation::from_yaml(
                meta, c, generate,
            )?));
        }
        if let Some(f) = doc.get("filter") {
            let f = f.as_mapping().ok_or(RuleError::WrongType {
                key: "filter".into(),
                expected: "a mapping",
            })?;
            let rules = string_list(f.get("rules"), "filter.rules")?;
            if rules.is_empty() {
                return Err(RuleError::Filter("`rules` names no rule to filter".into()));
            }
            let mut detection = f.clone();
            detection.remove("rules");
            let detection = Detection::compile(&detection, placeholders, unresolved)?;
            return Ok(Document::Filter(Filter {
                meta,
                rules,
                detection,
            }));
        }
        let detection = doc
            .get("detection")
            .ok_or(RuleError::Missing("detection"))?
            .as_mapping()
            .ok_or(RuleError::WrongType {
                key: "detection".into(),
                expected: "a mapping",
            })?;
        let detection = Detection::compile(detection, placeholders, unresolved)?;
        Ok(Document::Rule(Rule { meta, detection }))
    }
}

fn read_meta(doc: &Mapping, origin: Origin) -> Result<Meta, RuleError> {
    let title = opt_string(doc, "title")?.ok_or(RuleError::Missing("title"))?;
    let level = match opt_string(doc, "level")? {
        None => None,
        Some(l) => Some(Level::parse(&l).ok_or(RuleError::WrongType {
            key: "level".into(),
            expected: "one of informational, low, medium, high, critical",
        })?),
    };
    let logsource = match doc.get("logsource") {
        None => LogSourceSpec::default(),
        Some(Yaml::Mapping(ls)) => LogSourceSpec {
            product: opt_string(ls, "product")?.map(|s| s.to_lowercase()),
            category: opt_string(ls, "category")?.map(|s| s.to_lowercase()),
            service: opt_string(ls, "service")?.map(|s| s.to_lowercase()),
        },
        Some(_) => {
            return Err(RuleError::WrongType {
                key: "logsource".into(),
                expected: "a mapping",
            })
        }
    };
    Ok(Meta {
        title,
        id: opt_string(doc, "id")?,
        name: opt_string(doc, "name")?,
        status: opt_string(doc, "status")?,
        level,
        description: opt_string(doc, "description")?,
        author: opt_string(doc, "author")?,
        tags: string_list(doc.get("tags"), "tags")?,
        references: string_list(doc.get("references"), "references")?,
        falsepositives: string_list(doc.get("falsepositives"), "falsepositives")?,
        logsource,
        origin,
    })
}

fn opt_string(map: &Mapping, key: &'static str) -> Result<Option<String>, RuleError> {
    match map.get(key) {
        None | Some(Yaml::Null) => Ok(None),
        Some(Yaml::String(s)) => Ok(Some(s.clone())),
        Some(Yaml::Number(n)) => Ok(Some(n.to_string())),
        Some(Yaml::Bool(b)) => Ok(Some(b.to_string())),
        Some(_) => Err(RuleError::WrongType {
            key: key.into(),
            expected: "a string",
        }),
    }
}

pub(crate) fn string_list(v: Option<&Yaml>, key: &'static str) -> Result<Vec<String>, RuleError> {
    let wrong = || RuleError::WrongType {
        key: key.into(),
        expected: "a string or a list of strings",
    };
    match v {
        None | Some(Yaml::Null) => Ok(Vec::new()),
        Some(Yaml::String(s)) => Ok(vec![s.clone()]),
        Some(Yaml::Sequence(items)) => items
            .iter()
            .filter(|i| !i.is_null())
            .map(|i| crate::field::yaml_text(i).ok_or_else(wrong))
            .collect(),
        Some(_) => Err(wrong()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn attack_tags_split_into_techniques_and_tactics() {
        let meta = Meta {
            title: "t".into(),
            id: None,
            name: None,
            status: None,
            level: None,
            description: None,
            author: None,
            tags: vec![
                "attack.execution".into(),
                "attack.t1059.001".into(),
                "attack.credential_access".into(),
                "attack.g0016".into(),
                "cve.2021-44228".into(),
            ],
            references: vec![],
            falsepositives: vec![],
            logsource: LogSourceSpec::default(),
            origin: Origin {
                file: Arc::from(Path::new("x")),
                document: 1,
                line: 1,
            },
        };
        assert_eq!(meta.techniques(), vec!["T1059.001"]);
        assert_eq!(meta.tactics(), vec!["execution", "credential-access"]);
    }
}
