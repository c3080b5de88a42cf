//! Koban's Sigma engine: load rules (files, folders, multi-document collections),
//! compile each once into a matcher that cannot fail on an event, route events to the
//! rules of their log source, explain every match, and run correlation rules over the
//! stream of matches.
//!
//! No I/O beyond reading rule files; no async; no global state.

mod condition;
mod correlation;
mod detection;
mod error;
mod field;
mod load;
mod modifier;
mod pattern;
mod prefilter;
mod rule;
mod ruleset;
mod transform;

pub use correlation::{
    parse_timespan, Correlation, CorrelationEngine, CorrelationHit, CorrelationKind,
    CountCondition, CountOp, SavedEntry, SavedWindow,
};
pub use detection::{Detection, Explanation, Hit};
pub use error::{LoadError, RuleError};
pub use load::{load_file, load_str, rule_files, CompileOptions, FileRules, LoadWarning};
pub use rule::{Document, Filter, Level, LogSourceSpec, Meta, Origin, Rule, TACTICS};
pub use ruleset::{MatchScratch, Routing, RuleSet, Source};
