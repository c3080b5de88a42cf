//! Running a parsed hunting query against the event store.
//!
//! The search part becomes one store [`Condition`]; the pipeline then takes one of
//! two shapes:
//!
//! - **events**: `sort`, `head` and `fields` over the matching events (newest first;
//!   `sort` before `head` sorts the newest [`SORT_WINDOW`] events and says so);
//! - **table**: one aggregation (`stats`, `top`, `rare`, `timechart`) then `sort`,
//!   `head` and `fields` over its rows. Aggregations by one field walk the term
//!   dictionary (no event is opened), a timechart without `by` reads the time column;
//!   by several fields they scan the matching events.
//!
//! Results reach the caller through `sink` as they are produced — progress after each
//! partition of a scan, events and rows in chunks — so an API can stream them.

use std::cmp::Ordering;
use std::collections::HashMap;
use std::ops::ControlFlow;

use koban_hunt::{Expr, Query, Span, Stage, TimeBound};
use koban_store::{Condition, SearchRequest, StoreError, StoreSearcher};
use serde::Serialize;
use serde_json::{json, Value as JsonValue};

use super::hit_json;

/// Events sorted when `sort` comes before any `head`.
pub const SORT_WINDOW: usize = 10_000;
/// Events returned when the query has no `head`.
pub const DEFAULT_EVENTS: usize = 100;
/// Groups an aggregation over several fields may hold in memory.
pub const MAX_GROUPS: usize = 100_000;
/// Series a `timechart … by` keeps; the rest are summed into `other`.
const MAX_SERIES: usize = 10;

#[derive(Debug, Clone)]
pub struct HuntRequest {
    pub tenant: String,
    pub query: Query,
    /// Bounds given beside the query (the console's time picker); the query's own
    /// `earliest` / `latest` narrow them further.
    pub from_ms: Option<i64>,
    pub to_ms: Option<i64>,
    /// When the query runs: what relative times count from.
    pub now_ms: i64,
}

#[derive(Debug, thiserror::Error)]
pub enum HuntError {
    /// The query parsed but cannot run as written; `span` is where.
    #[error("at {}: {message}", span.start)]
    Query { span: Span, message: String },
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl HuntError {
    fn at(span: Span, message: impl Into<String>) -> HuntError {
        HuntError::Query {
            span,
            message: message.into(),
        }
    }
}

/// What a query produces, piece by piece.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Output {
    /// `done` of `total` partitions searched.
    Progress {
        done: usize,
        total: usize,
    },
    /// Some matching events (in the API's event form).
    Events(Vec<JsonValue>),
    /// The columns of a table, sent before its rows.
    Columns(Vec<String>),
    Rows(Vec<Vec<JsonValue>>),
}

/// How the run went, sent last.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Summary {
    /// Events matching the search part.
    pub matched: u64,
    /// Events or rows sent.
    pub returned: usize,
    pub from_ms: Option<i64>,
    pub to_ms: Option<i64>,
    /// What an analyst should know about the answer (truncation, sampling).
    pub notes: Vec<String>,
}

/// Runs `req`, handing results to `sink` as they come.
pub fn run(
    searcher: &StoreSearcher,
    req: &HuntRequest,
    sink: &mut dyn FnMut(Output),
) -> Result<Summary, HuntError> {
    let mut base = SearchRequest::new(&req.tenant);
    let bound = |b: &Option<TimeBound>| {
        b.map(|b| match b {
            TimeBound::Absolute(t) => t,
            TimeBound::Relative(d) => req.now_ms.saturating_add(d),
        })
    };
    base.from_ms = max_opt(req.from_ms, bound(&req.query.earliest));
    base.to_ms = min_opt(req.to_ms, bound(&req.query.latest));
    base.condition = req.query.search.as_ref().map(condition);
    let mut summary = Summary {
        from_ms: base.from_ms,
        to_ms: base.to_ms,
        ..Summary::default()
    };
    let stages = &req.query.stages;
    let aggregation = stages.iter().position(is_aggregation);
    match aggregation {
        None => run_events(searcher, &base, stages, sink, &mut summary)?,
        Some(i) => {
            if let Some(early) = stages[..i].first() {
                return Err(HuntError::at(
                    stage_span(early),
                    "this stage must come after the aggregation (stats, top, rare or timechart)",
                ));
            }
            if let Some(second) = stages[i + 1..].iter().find(|s| is_aggregation(s)) {
                return Err(HuntError::at(
                    stage_span(second),
                    "only one aggregation per query",
                ));
            }
            let table = aggregate(searcher, &base, &stages[i], sink, &mut summary)?;
            let table = reshape(table, &stages[i + 1..])?;
            summary.returned = table.rows.len();
            sink(Output::Columns(table.columns));
            for chunk in table.rows.chunks(1000) {
                sink(Output::Rows(chunk.to_vec()));
            }
        }
    }
    Ok(summary)
}

fn max_opt(a: Option<i64>, b: Option<i64>) -> Option<i64> {
    match (a, b) {
        (Some(a), Some(b)) => Some(a.max(b)),
        (a, b) => a.or(b),
    }
}

fn min_opt(a: Option<i64>, b: Option<i64>) -> Option<i64> {
    match (a, b) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, b) => a.or(b),
    }
}

/// The search part in the store's terms.
pub fn condition(e: &Expr) -> Condition {
    match e {
        Expr::And(es) => Condition::All(es.iter().map(condition).collect()),
        Expr::Or(es) => Condition::Any(es.iter().map(condition).collect()),
        Expr::Not(e) => Condition::Not(Box::new(condition(e))),
        Expr::Match { field, value, .. } => Condition::Match {
            field: field.clone(),
            value: value.clone(),
        },
        Expr::Range {
            field, min, max, ..
        } => Condition::Range {
            field: field.clone(),
            min: min.map(|b| (b.value, b.inclusive)),
            max: max.map(|b| (b.value, b.inclusive)),
        },
        Expr::Cidr { field, net, .. } => Condition::Cidr {
            field: field.clone(),
            net: *net,
        },
        Expr::Exists { field, .. } => Condition::Exists {
            field: field.clone(),
        },
        Expr::Text { text, .. } => Condition::Text(text.clone()),
    }
}

fn is_aggregation(s: &Stage) -> bool {
    matches!(
        s,
        Stage::Stats { .. } | Stage::Top { .. } | Stage::Timechart { .. }
    )
}

fn stage_span(s: &Stage) -> Span {
    match s {
        Stage::Stats { span, .. }
        | Stage::Top { span, .. }
        | Stage::Timechart { span, .. }
        | Stage::Sort { span, .. }
        | Stage::Head { span, .. }
        | Stage::Fields { span, .. } => *span,
    }
}

// ---- events ----------------------------------------------------------------

fn run_events(
    searcher: &StoreSearcher,
    base: &SearchRequest,
    stages: &[Stage],
    sink: &mut dyn FnMut(Output),
    summary: &mut Summary,
) -> Result<(), HuntError> {
    // How many of the newest events the pipeline needs: a head before any sort caps
    // it; a sort first needs a window to sort.
    let mut limit = DEFAULT_EVENTS;
    for s in stages {
        match s {
            Stage::Head { limit: n, .. } => {
                limit = *n;
                break;
            }
            Stage::Sort { .. } => {
                limit = SORT_WINDOW;
                break;
            }
            _ => {}
        }
    }
    let mut req = base.clone();
    req.limit = limit.min(SORT_WINDOW);
    let has_head = stages.iter().any(|s| matches!(s, Stage::Head { .. }));
    let result = searcher.search(&req)?;
    sink(Output::Progress { done: 1, total: 1 });
    summary.matched = result.total;
    let mut events: Vec<JsonValue> = result.hits.iter().map(hit_json).collect();
    let mut sorted_window = false;
    for s in stages {
        match s {
            Stage::Sort { keys, .. } => {
                sorted_window = events.len() == SORT_WINDOW && result.total > SORT_WINDOW as u64;
                events.sort_by(|a, b| {
                    for k in keys {
                        let o = compare(&event_value(a, &k.field), &event_value(b, &k.field));
                        let o = if k.descending { o.reverse() } else { o };
                        if o != Ordering::Equal {
                            return o;
                        }
                    }
                    Ordering::Equal
                });
            }
            Stage::Head { limit, .. } => events.truncate(*limit),
            Stage::Fields { fields, .. } => {
                for e in &mut events {
                    project(e, fields);
                }
            }
            _ => {}
        }
    }
    if sorted_window {
        summary.notes.push(format!(
            "sorted the newest {SORT_WINDOW} of {} matching events; narrow the search to sort them all",
            result.total
        ));
    }
    if !has_head && events.len() < result.total as usize {
        summary.notes.push(format!(
            "showing the newest {} of {} matching events; add `| head N` for more",
            events.len(),
            result.total
        ));
    }
    summary.returned = events.len();
    for chunk in events.chunks(500) {
        sink(Output::Events(chunk.to_vec()));
    }
    Ok(())
}

/// A field of an event in the API form: `@time`/`_time`, the store's own, or an
/// event field (case-insensitive).
fn event_value(e: &JsonValue, field: &str) -> JsonValue {
    let lower = field.to_lowercase();
    match lower.as_str() {
        "@time" | "_time" | "time" => return e["time"].clone(),
        "@source" => return e["source"].clone(),
        "@received" => return e["received"].clone(),
        "@seq" => return e["seq"].clone(),
        _ => {}
    }
    e["fields"]
        .as_object()
        .and_then(|m| {
            m.iter()
                .find(|(k, _)| k.eq_ignore_ascii_case(field))
                .map(|(_, v)| v.clone())
        })
        .unwrap_or(JsonValue::Null)
}

/// Keeps only the named event fields (the event's time and origin stay).
fn project(e: &mut JsonValue, keep: &[String]) {
    if let Some(m) = e["fields"].as_object_mut() {
        m.retain(|k, _| keep.iter().any(|f| f.eq_ignore_ascii_case(k)));
    }
    if let Some(m) = e.as_object_mut() {
        m.remove("original");
    }
}

/// Numbers by value, then everything else by its text; missing values last.
fn compare(a: &JsonValue, b: &JsonValue) -> Ordering {
    let num = |v: &JsonValue| match v {
        JsonValue::Number(n) => n.as_f64(),
        JsonValue::String(s) => s.trim().parse::<f64>().ok(),
        _ => None,
    };
    match (a.is_null(), b.is_null()) {
        (true, true) => return Ordering::Equal,
        (true, false) => return Ordering::Greater,
        (false, true) => return Ordering::Less,
        _ => {}
    }
    match (num(a), num(b)) {
        (Some(x), Some(y)) => x.partial_cmp(&y).unwrap_or(Ordering::Equal),
        _ => text(a).cmp(&text(b)),
    }
}

fn text(v: &JsonValue) -> String {
    match v {
        JsonValue::String(s) => s.to_lowercase(),
        other => other.to_string(),
    }
}

// ---- tables ----------------------------------------------------------------

struct Table {
    columns: Vec<String>,
    rows: Vec<Vec<JsonValue>>,
}

fn aggregate(
    searcher: &StoreSearcher,
    base: &SearchRequest,
    stage: &Stage,
    sink: &mut dyn FnMut(Output),
    summary: &mut Summary,
) -> Result<Table, HuntError> {
    let mut progress = |done, total| sink(Output::Progress { done, total });
    let mut count_req = base.clone();
    count_req.limit = 0;
    match stage {
        Stage::Stats { name, by, .. } if by.is_empty() => {
            let total = searcher.search(&count_req)?.total;
            summary.matched = total;
            Ok(Table {
                columns: vec![name.clone()],
                rows: vec![vec![json!(total)]],
            })
        }
        Stage::Stats { name, by, span } if by.len() == 1 => {
            summary.matched = searcher.search(&count_req)?.total;
            let groups = groups_of_one(searcher, base, &by[0], *span, summary)?;
            progress(1, 1);
            Ok(Table {
                columns: vec![by[0].clone(), name.clone()],
                rows: groups
                    .into_iter()
                    .map(|(v, n)| vec![json!(v), json!(n)])
                    .collect(),
            })
        }
        Stage::Stats { name, by, span } => {
            let mut groups: HashMap<Vec<String>, u64> = HashMap::new();
            let mut overflow = false;
            let visited = searcher.scan(base, &mut progress, &mut |h| {
                let key: Vec<String> = by
                    .iter()
                    .map(|f| {
                        h.event
                            .get_str(f)
                            .map(|s| s.to_lowercase())
                            .unwrap_or_default()
                    })
                    .collect();
                if key.iter().all(String::is_empty) {
                    return ControlFlow::Continue(());
                }
                if groups.len() >= MAX_GROUPS && !groups.contains_key(&key) {
                    overflow = true;
                    return ControlFlow::Break(());
                }
                *groups.entry(key).or_default() += 1;
                ControlFlow::Continue(())
            })?;
            if overflow {
                return Err(HuntError::at(
                    *span,
                    format!(
                        "more than {MAX_GROUPS} groups: narrow the search or group by fewer fields"
                    ),
                ));
            }
            summary.matched = visited;
            let mut rows: Vec<(Vec<String>, u64)> = groups.into_iter().collect();
            rows.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
            let mut columns = by.clone();
            columns.push(name.clone());
            Ok(Table {
                columns,
                rows: rows
                    .into_iter()
                    .map(|(k, n)| {
                        let mut r: Vec<JsonValue> = k.into_iter().map(JsonValue::from).collect();
                        r.push(json!(n));
                        r
                    })
                    .collect(),
            })
        }
        Stage::Top {
            field,
            limit,
            rare,
            span,
        } => {
            let total = searcher.search(&count_req)?.total;
            summary.matched = total;
            let mut groups = groups_of_one(searcher, base, field, *span, summary)?;
            if *rare {
                groups.sort_by(|a, b| a.1.cmp(&b.1).then_with(|| a.0.cmp(&b.0)));
            }
            groups.truncate(*limit);
            progress(1, 1);
            Ok(Table {
                columns: vec![field.clone(), "count".into(), "percent".into()],
                rows: groups
                    .into_iter()
                    .map(|(v, n)| {
                        let pct = if total == 0 {
                            0.0
                        } else {
                            (n as f64 * 10_000.0 / total as f64).round() / 100.0
                        };
                        vec![json!(v), json!(n), json!(pct)]
                    })
                    .collect(),
            })
        }
        Stage::Timechart {
            span_ms, by: None, ..
        } => {
            let buckets = searcher.time_histogram(base, *span_ms, &mut progress)?;
            summary.matched = buckets.values().sum();
            Ok(Table {
                columns: vec!["_time".into(), "count".into()],
                rows: fill(&buckets, *span_ms)
                    .into_iter()
                    .map(|(t, n)| vec![json!(koban_event::format_rfc3339(t)), json!(n)])
                    .collect(),
            })
        }
        Stage::Timechart {
            span_ms,
            by: Some(field),
            ..
        } => timechart_by(searcher, base, *span_ms, field, &mut progress, summary),
        Stage::Sort { .. } | Stage::Head { .. } | Stage::Fields { .. } => Ok(Table {
            columns: vec![],
            rows: vec![],
        }),
    }
}

/// Counts per value of one field, largest first, from the term dictionary.
fn groups_of_one(
    searcher: &StoreSearcher,
    base: &SearchRequest,
    field: &str,
    span: Span,
    summary: &mut Summary,
) -> Result<Vec<(String, u64)>, HuntError> {
    let mut req = base.clone();
    req.limit = MAX_GROUPS + 1;
    let mut groups = searcher.count_by(&req, field).map_err(|e| match e {
        StoreError::InvalidQuery(m) => HuntError::at(span, m),
        e => HuntError::Store(e),
    })?;
    if groups.len() > MAX_GROUPS {
        groups.truncate(MAX_GROUPS);
        summary.notes.push(format!(
            "only the {MAX_GROUPS} largest groups of {field} are kept"
        ));
    }
    Ok(groups)
}

/// Every bucket from the first to the last, empty ones as 0 (a chart needs the gaps).
fn fill(buckets: &std::collections::BTreeMap<i64, u64>, span_ms: i64) -> Vec<(i64, u64)> {
    let (Some(first), Some(last)) = (buckets.keys().next(), buckets.keys().next_back()) else {
        return Vec::new();
    };
    // A year of minutes would be half a million rows: past that, only the non-empty.
    if (last - first) / span_ms > 10_000 {
        return buckets.iter().map(|(t, n)| (*t, *n)).collect();
    }
    let mut out = Vec::new();
    let mut t = *first;
    while t <= *last {
        out.push((t, buckets.get(&t).copied().unwrap_or(0)));
        t += span_ms;
    }
    out
}

fn timechart_by(
    searcher: &StoreSearcher,
    base: &SearchRequest,
    span_ms: i64,
    field: &str,
    progress: &mut dyn FnMut(usize, usize),
    summary: &mut Summary,
) -> Result<Table, HuntError> {
    let mut per: HashMap<String, std::collections::BTreeMap<i64, u64>> = HashMap::new();
    let mut all = std::collections::BTreeMap::new();
    let visited = searcher.scan(base, progress, &mut |h| {
        let bucket = h.time_ms.div_euclid(span_ms) * span_ms;
        let value = h
            .event
            .get_str(field)
            .map(|s| s.to_lowercase())
            .unwrap_or_else(|| "(none)".into());
        if per.len() < MAX_GROUPS || per.contains_key(&value) {
            *per.entry(value).or_default().entry(bucket).or_default() += 1;
        }
        *all.entry(bucket).or_default() += 1u64;
        ControlFlow::Continue(())
    })?;
    summary.matched = visited;
    let mut series: Vec<(String, u64)> = per
        .iter()
        .map(|(k, b)| (k.clone(), b.values().sum()))
        .collect();
    series.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
    let shown: Vec<String> = series
        .iter()
        .take(MAX_SERIES)
        .map(|s| s.0.clone())
        .collect();
    let other = series.len() > MAX_SERIES;
    let mut columns = vec!["_time".to_owned()];
    columns.extend(shown.iter().cloned());
    if other {
        columns.push("other".into());
    }
    let rows = fill(&all, span_ms)
        .into_iter()
        .map(|(t, n)| {
            let mut row = vec![json!(koban_event::format_rfc3339(t))];
            let mut named = 0;
            for s in &shown {
                let c = per.get(s).and_then(|b| b.get(&t)).copied().unwrap_or(0);
                named += c;
                row.push(json!(c));
            }
            if other {
                row.push(json!(n - named));
            }
            row
        })
        .collect();
    Ok(Table { columns, rows })
}

/// `sort`, `head` and `fields` over a table.
fn reshape(mut t: Table, stages: &[Stage]) -> Result<Table, HuntError> {
    for s in stages {
        match s {
            Stage::Sort { keys, span } => {
                let mut idx = Vec::new();
                for k in keys {
                    let i = column(&t, &k.field, *span)?;
                    idx.push((i, k.descending));
                }
                t.rows.sort_by(|a, b| {
                    for (i, desc) in &idx {
                        let o = compare(&a[*i], &b[*i]);
                        let o = if *desc { o.reverse() } else { o };
                        if o != Ordering::Equal {
                            return o;
                        }
                    }
                    Ordering::Equal
                });
            }
            Stage::Head { limit, .. } => t.rows.truncate(*limit),
            Stage::Fields { fields, span } => {
                let mut idx = Vec::new();
                for f in fields {
                    idx.push(column(&t, f, *span)?);
                }
                t.columns = idx.iter().map(|i| t.columns[*i].clone()).collect();
                t.rows = t
                    .rows
                    .into_iter()
                    .map(|r| idx.iter().map(|i| r[*i].clone()).collect())
                    .collect();
            }
            _ => {}
        }
    }
    Ok(t)
}

fn column(t: &Table, name: &str, span: Span) -> Result<usize, HuntError> {
    t.columns
        .iter()
        .position(|c| c.eq_ignore_ascii_case(name))
        .ok_or_else(|| {
            HuntError::at(
                span,
                format!(
                    "no column {name:?} here; the columns are {}",
                    t.columns.join(", ")
                ),
            )
        })
}
