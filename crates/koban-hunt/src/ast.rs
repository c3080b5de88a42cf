//! What a hunting query means, once parsed: a search (a boolean condition over event
//! fields and free text, plus an optional time range) and a pipeline of stages over
//! its results. Every node keeps the span of the query text it came from, so a later
//! error (an unknown field, a stage that cannot follow another) can point at it too.

use ipnet::IpNet;
use serde::Serialize;

/// Byte offsets `[start, end)` into the query text.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Default)]
pub struct Span {
    pub start: usize,
    pub end: usize,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Query {
    /// `None`: every event (the query was empty or began with a pipe).
    pub search: Option<Expr>,
    /// Event time bounds from `earliest=` / `latest=` (ms UTC, or relative to now).
    pub earliest: Option<TimeBound>,
    pub latest: Option<TimeBound>,
    pub stages: Vec<Stage>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum TimeBound {
    /// Milliseconds since the epoch, UTC.
    Absolute(i64),
    /// Milliseconds relative to the time the query runs (negative: in the past).
    Relative(i64),
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub enum Expr {
    And(Vec<Expr>),
    Or(Vec<Expr>),
    Not(Box<Expr>),
    /// `field=value` / `field:value`: equal ignoring case; `*` and `?` are wildcards.
    Match {
        field: String,
        value: String,
        span: Span,
    },
    /// `field>=n`, `field<n`, `field=a..b` (both inclusive).
    Range {
        field: String,
        min: Option<Bound>,
        max: Option<Bound>,
        span: Span,
    },
    /// `field=10.0.0.0/8`: an address inside the network.
    Cidr {
        field: String,
        net: IpNet,
        span: Span,
    },
    /// `field=*`: the field is present.
    Exists {
        field: String,
        span: Span,
    },
    /// A bare or quoted word: must occur in the record's text.
    Text {
        text: String,
        span: Span,
    },
}

#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Bound {
    pub value: f64,
    pub inclusive: bool,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub enum Stage {
    /// `stats count() [as NAME] by F1, F2`
    Stats {
        name: String,
        by: Vec<String>,
        span: Span,
    },
    /// `top [N] FIELD` (most common first) and `rare [N] FIELD` (least common first).
    Top {
        field: String,
        limit: usize,
        rare: bool,
        span: Span,
    },
    /// `timechart [span=DURATION] count() [by FIELD]`; span in ms (default 1 h).
    Timechart {
        span_ms: i64,
        by: Option<String>,
        span: Span,
    },
    /// `sort [-]F1, [+]F2`: `-` is descending.
    Sort { keys: Vec<SortKey>, span: Span },
    /// `head [N]` (default 10).
    Head { limit: usize, span: Span },
    /// `fields F1, F2`: keep only these fields.
    Fields { fields: Vec<String>, span: Span },
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SortKey {
    pub field: String,
    pub descending: bool,
}
