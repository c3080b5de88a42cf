//! Typed errors for loading and compiling rules. Every error names what was wrong;
//! [`LoadError`] adds where (file, document, line when known, rule title/id).

use std::fmt;
use std::path::PathBuf;

/// Why one rule (or one part of it) could not be compiled.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum RuleError {
    #[error("YAML syntax: {0}")]
    Yaml(String),
    #[error("the document is not a mapping")]
    NotAMapping,
    #[error("missing `{0}`")]
    Missing(&'static str),
    #[error("`{key}` must be {expected}")]
    WrongType { key: String, expected: &'static str },
    #[error("unknown modifier `{modifier}` on `{field}`")]
    UnknownModifier { field: String, modifier: String },
    #[error("modifiers `{a}` and `{b}` cannot be combined on `{field}`")]
    ConflictingModifiers { field: String, a: String, b: String },
    #[error("modifier `{modifier}` on `{field}` needs {expected}, got `{got}`")]
    BadModifierValue {
        field: String,
        modifier: String,
        expected: &'static str,
        got: String,
    },
    #[error("invalid regular expression for `{field}`: {message}")]
    BadRegex { field: String, message: String },
    #[error("selection `{selection}` has an unsupported value: {message}")]
    BadSelection { selection: String, message: String },
    #[error("condition `{condition}` at character {position}: {message}")]
    Condition {
        condition: String,
        position: usize,
        message: String,
    },
    #[error("condition refers to `{0}`, which is not a selection in `detection`")]
    UnknownSelection(String),
    #[error("`{pattern}` in the condition matches no selection")]
    EmptyQuantifier { pattern: String },
    #[error(
        "aggregation in the condition (`| count() ...`) is Sigma 1 syntax; use a correlation rule"
    )]
    Aggregation,
    #[error("correlation: {0}")]
    Correlation(String),
    #[error("filter: {0}")]
    Filter(String),
    #[error("`action: {0}` is not one of global, reset, repeat")]
    UnknownAction(String),
    #[error("placeholder `%{0}%` has no values configured")]
    UnknownPlaceholder(String),
}

/// A rule that failed to load, with where it came from.
#[derive(Debug, Clone, PartialEq)]
pub struct LoadError {
    pub file: PathBuf,
    /// 1-based index of the YAML document within the file.
    pub document: usize,
    /// 1-based line, when the YAML parser or the document start gives one.
    pub line: Option<usize>,
    /// The rule's title or id when it got far enough to have one.
    pub rule: Option<String>,
    pub error: RuleError,
}

impl fmt::Display for LoadError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.file.display())?;
        if let Some(line) = self.line {
            write!(f, ":{line}")?;
        }
        if self.document > 1 {
            write!(f, " (document {})", self.document)?;
        }
        if let Some(rule) = &self.rule {
            write!(f, " [{rule}]")?;
        }
        write!(f, ": {}", self.error)
    }
}

impl std::error::Error for LoadError {}
