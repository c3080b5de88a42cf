//! Turning a [`SearchRequest`](crate::SearchRequest) into a tantivy query for one
//! partition. Kept apart from execution so the rules of matching live in one place.

use std::ops::Bound;

use std::collections::BTreeSet;
use std::net::IpAddr;

use ipnet::IpNet;
use tantivy::query::{
    AllQuery, BooleanQuery, EmptyQuery, InvertedIndexRangeQuery, Occur, Query, RangeQuery,
    RegexQuery, TermQuery, TermSetQuery,
};
use tantivy::schema::{Field, IndexRecordOption, Type, ValueBytes};
use tantivy::{Index, Searcher, Term};

use crate::schema::Fields;
use crate::{Condition, FieldFilter, SearchRequest, StoreError};

/// The query for `req` in a partition with these fields; `searcher` is the
/// partition's (a CIDR condition reads its term dictionary).
pub(crate) fn build(
    req: &SearchRequest,
    searcher: &Searcher,
    fields: &Fields,
) -> Result<Box<dyn Query>, StoreError> {
    let index = searcher.index();
    let mut must: Vec<(Occur, Box<dyn Query>)> = Vec::new();
    if req.from_ms.is_some() || req.to_ms.is_some() {
        let lower = req.from_ms.map_or(Bound::Unbounded, |t| {
            Bound::Included(Term::from_field_i64(fields.time, t))
        });
        let upper = req.to_ms.map_or(Bound::Unbounded, |t| {
            Bound::Excluded(Term::from_field_i64(fields.time, t))
        });
        must.push((Occur::Must, Box::new(RangeQuery::new(lower, upper))));
    }
    for filter in &req.filters {
        must.push((Occur::Must, filter_query(filter, fields)?));
    }
    if let Some(text) = req.text.as_deref() {
        must.push((Occur::Must, text_query(text, index, fields)?));
    }
    if let Some(c) = &req.condition {
        must.push((Occur::Must, condition_query(c, searcher, fields, 0)?));
    }
    Ok(match must.len() {
        0 => Box::new(AllQuery),
        _ => Box::new(BooleanQuery::new(must)),
    })
}

/// Every word of `text` in the free-text field.
fn text_query(text: &str, index: &Index, fields: &Fields) -> Result<Box<dyn Query>, StoreError> {
    let mut analyzer = index
        .tokenizers()
        .get("default")
        .ok_or_else(|| StoreError::InvalidQuery("default tokenizer missing".into()))?;
    let mut stream = analyzer.token_stream(text);
    let mut words: Vec<(Occur, Box<dyn Query>)> = Vec::new();
    while stream.advance() {
        let term = Term::from_field_text(fields.text, &stream.token().text);
        words.push((
            Occur::Must,
            Box::new(TermQuery::new(term, IndexRecordOption::Basic)),
        ));
    }
    match words.len() {
        0 => Err(StoreError::InvalidQuery(format!(
            "free text {text:?} has no words"
        ))),
        1 => Ok(words.remove(0).1),
        _ => Ok(Box::new(BooleanQuery::new(words))),
    }
}

/// Conditions nest at most this deep (the query language refuses deeper ones first).
const MAX_DEPTH: usize = 128;

fn condition_query(
    c: &Condition,
    searcher: &Searcher,
    fields: &Fields,
    depth: usize,
) -> Result<Box<dyn Query>, StoreError> {
    if depth > MAX_DEPTH {
        return Err(StoreError::InvalidQuery(format!(
            "condition nested deeper than {MAX_DEPTH}"
        )));
    }
    let sub = |c: &Condition| condition_query(c, searcher, fields, depth + 1);
    Ok(match c {
        Condition::All(cs) if cs.is_empty() => Box::new(AllQuery),
        Condition::All(cs) => {
            let mut clauses: Vec<(Occur, Box<dyn Query>)> = cs
                .iter()
                .map(|c| occur_of(c, sub))
                .collect::<Result<_, StoreError>>()?;
            // Only exclusions match nothing in tantivy: exclude them from everything.
            if clauses.iter().all(|(o, _)| *o == Occur::MustNot) {
                clauses.push((Occur::Must, Box::new(AllQuery)));
            }
            Box::new(BooleanQuery::new(clauses))
        }
        Condition::Any(cs) if cs.is_empty() => Box::new(EmptyQuery),
        Condition::Any(cs) => Box::new(BooleanQuery::new(
            cs.iter()
                .map(|c| Ok((Occur::Should, sub(c)?)))
                .collect::<Result<_, StoreError>>()?,
        )),
        // A query of only exclusions matches nothing in tantivy: exclude from all.
        Condition::Not(inner) => Box::new(BooleanQuery::new(vec![
            (Occur::Must, Box::new(AllQuery) as Box<dyn Query>),
            (Occur::MustNot, sub(inner)?),
        ])),
        Condition::Match { field, value } => filter_query(
            &FieldFilter::Match {
                field: field.clone(),
                value: value.clone(),
            },
            fields,
        )?,
        Condition::Range { field, min, max } => {
            let name = event_path(field, "range")?;
            if min.is_some_and(|b| b.0.is_nan()) || max.is_some_and(|b| b.0.is_nan()) {
                return Err(StoreError::InvalidQuery(format!(
                    "range on {field:?} with NaN"
                )));
            }
            bounded_range(fields.f, &name, *min, *max)
        }
        Condition::Cidr { field, net } => {
            let name = event_path(field, "a network match")?;
            cidr_query(searcher, fields.f, &name, net)?
        }
        Condition::Exists { field } => {
            let name = event_path(field, "an existence test")?;
            exists_query(fields.f, &name)
        }
        Condition::Text(text) => text_query(text, searcher.index(), fields)?,
    })
}

/// Inside an `All`, a `Not` becomes a plain exclusion (cheaper than all-but).
fn occur_of(
    c: &Condition,
    sub: impl Fn(&Condition) -> Result<Box<dyn Query>, StoreError>,
) -> Result<(Occur, Box<dyn Query>), StoreError> {
    Ok(match c {
        Condition::Not(inner) => (Occur::MustNot, sub(inner)?),
        c => (Occur::Must, sub(c)?),
    })
}

/// The lower-cased path of an event field; the store's `@` fields take only matches.
fn event_path(field: &str, what: &str) -> Result<String, StoreError> {
    if field.starts_with('@') {
        return Err(StoreError::InvalidQuery(format!(
            "{what} on store field {field:?} is not supported"
        )));
    }
    Ok(field.to_lowercase())
}

/// A range with open or closed ends: the closed range over the term dictionary,
/// minus the excluded end points.
fn bounded_range(
    field: Field,
    path: &str,
    min: Option<(f64, bool)>,
    max: Option<(f64, bool)>,
) -> Box<dyn Query> {
    let range = json_range(field, path, min.map(|b| b.0), max.map(|b| b.0));
    let mut excluded: Vec<Box<dyn Query>> = Vec::new();
    for (v, inclusive) in [min, max].into_iter().flatten() {
        if !inclusive && v.is_finite() {
            excluded.push(json_range(field, path, Some(v), Some(v)));
        }
    }
    if excluded.is_empty() {
        return range;
    }
    let mut clauses = vec![(Occur::Must, range)];
    clauses.extend(excluded.into_iter().map(|q| (Occur::MustNot, q)));
    Box::new(BooleanQuery::new(clauses))
}

/// Any value at all on the path: any string, any number, either boolean.
fn exists_query(field: Field, path: &str) -> Box<dyn Query> {
    let mut prefix = Term::from_field_json_path(field, path, true);
    prefix.append_type_and_str("");
    let mut pattern = String::from("(?s)");
    for c in String::from_utf8_lossy(prefix.serialized_value_bytes()).chars() {
        push_literal(&mut pattern, c);
    }
    pattern.push_str(".*");
    let mut any: Vec<Box<dyn Query>> = Vec::new();
    if let Ok(regex) = tantivy_fst::Regex::new(&pattern) {
        any.push(Box::new(RegexQuery::from_regex(regex, field)));
    }
    any.push(json_range(field, path, None, None));
    for b in [true, false] {
        let mut t = Term::from_field_json_path(field, path, true);
        t.append_type_and_fast_value(b);
        any.push(term_query(t));
    }
    any_of(any)
}

/// The path's string terms that are addresses inside `net`, found by one walk over
/// the partition's term dictionaries, as one term-set query.
fn cidr_query(
    searcher: &Searcher,
    field: Field,
    path: &str,
    net: &IpNet,
) -> Result<Box<dyn Query>, StoreError> {
    let mut prefix = Term::from_field_json_path(field, path, true);
    prefix.append_type_and_str("");
    let key = prefix.serialized_value_bytes().to_vec();
    let mut end = key.clone();
    if let Some(last) = end.last_mut() {
        *last += 1;
    }
    let mut found: BTreeSet<Vec<u8>> = BTreeSet::new();
    let walk = |e: std::io::Error| StoreError::InvalidQuery(format!("reading terms: {e}"));
    for segment in searcher.segment_readers() {
        let inverted = segment
            .inverted_index(field)
            .map_err(|e| StoreError::InvalidQuery(format!("reading terms: {e}")))?;
        let mut terms = inverted
            .terms()
            .range()
            .ge(&key)
            .lt(&end)
            .into_stream()
            .map_err(walk)?;
        while terms.advance() {
            let value = ValueBytes::wrap(&terms.key()[key.len() - 1..]);
            if value.typ() != Type::Str {
                continue;
            }
            let inside = value
                .as_str()
                .and_then(|s| s.trim().parse::<IpAddr>().ok())
                .is_some_and(|ip| net.contains(&ip));
            if inside {
                found.insert(terms.key().to_vec());
            }
        }
    }
    if found.is_empty() {
        return Ok(Box::new(EmptyQuery));
    }
    let terms = found.into_iter().map(|bytes| {
        let mut t = Term::from_field_json_path(field, path, true);
        let value = ValueBytes::wrap(&bytes[key.len() - 1..]);
        t.append_type_and_str(value.as_str().unwrap_or_default());
        t
    });
    Ok(Box::new(TermSetQuery::new(terms)))
}

fn term_query(term: Term) -> Box<dyn Query> {
    Box::new(TermQuery::new(term, IndexRecordOption::Basic))
}

fn any_of(mut queries: Vec<Box<dyn Query>>) -> Box<dyn Query> {
    if queries.len() == 1 {
        if let Some(q) = queries.pop() {
            return q;
        }
    }
    Box::new(BooleanQuery::new(
        queries.into_iter().map(|q| (Occur::Should, q)).collect(),
    ))
}

/// Store metadata is addressed as `@source`, `@format`, `@parsed`, `@seq`, so it can
/// never collide with an event field of the same name.
fn filter_query(filter: &FieldFilter, fields: &Fields) -> Result<Box<dyn Query>, StoreError> {
    match filter {
        FieldFilter::Match { field, value } => match field.to_lowercase().as_str() {
            "@source" => keyword_query(fields.source, None, value),
            "@format" => keyword_query(fields.format, None, value),
            "@parsed" => match value.to_lowercase().as_str() {
                "true" => Ok(term_query(Term::from_field_bool(fields.parsed, true))),
                "false" => Ok(term_query(Term::from_field_bool(fields.parsed, false))),
                _ => Err(StoreError::InvalidQuery(format!(
                    "@parsed is true or false, not {value:?}"
                ))),
            },
            "@seq" => value
                .trim()
                .parse()
                .map(|seq| {
                    // A range of one: the column where `seq` is fast, the term
                    // dictionary in partitions of schema v1 (see schema.rs).
                    let t = Term::from_field_u64(fields.seq, seq);
                    Box::new(RangeQuery::new(
                        Bound::Included(t.clone()),
                        Bound::Included(t),
                    )) as Box<dyn Query>
                })
                .map_err(|_| StoreError::InvalidQuery(format!("@seq is a number, not {value:?}"))),
            name if name.starts_with('@') => Err(StoreError::InvalidQuery(format!(
                "unknown store field {field:?}"
            ))),
            name => keyword_query(fields.f, Some(name), value),
        },
        FieldFilter::Range { field, min, max } => {
            let name = field.to_lowercase();
            if name.starts_with('@') {
                return Err(StoreError::InvalidQuery(format!(
                    "range on store field {field:?} is not supported"
                )));
            }
            if min.is_some_and(f64::is_nan) || max.is_some_and(f64::is_nan) {
                return Err(StoreError::InvalidQuery(format!(
                    "range on {field:?} with NaN"
                )));
            }
            if min.is_none() && max.is_none() {
                return Err(StoreError::InvalidQuery(format!(
                    "range on {field:?} has no bound"
                )));
            }
            Ok(json_range(fields.f, &name, *min, *max))
        }
    }
}

/// A numeric range on one JSON path, as a walk over its term dictionary: tantivy
/// orders number terms by value within a path and type. Integers and floats are
/// separate types there, so both are searched; both bounds are always set so the
/// walk stays within the path.
fn json_range(field: Field, path: &str, min: Option<f64>, max: Option<f64>) -> Box<dyn Query> {
    let term = |append: &dyn Fn(&mut Term)| {
        let mut t = Term::from_field_json_path(field, path, true);
        append(&mut t);
        t
    };
    let (lo, hi) = (
        min.unwrap_or(f64::NEG_INFINITY),
        max.unwrap_or(f64::INFINITY),
    );
    let mut alternatives: Vec<Box<dyn Query>> = vec![Box::new(InvertedIndexRangeQuery::new(
        Bound::Included(term(&|t| t.append_type_and_fast_value(lo))),
        Bound::Included(term(&|t| t.append_type_and_fast_value(hi))),
    ))];
    // Saturating casts: ±inf become i64::MIN / MAX.
    let (ilo, ihi) = (lo.ceil() as i64, hi.floor() as i64);
    if ilo <= ihi {
        alternatives.push(Box::new(InvertedIndexRangeQuery::new(
            Bound::Included(term(&|t| t.append_type_and_fast_value(ilo))),
            Bound::Included(term(&|t| t.append_type_and_fast_value(ihi))),
        )));
    }
    any_of(alternatives)
}

/// Exact (case-insensitive) or wildcard match on a keyword field, or on one path of
/// the JSON field `f` when `path` is given. A value that reads as a number also
/// matches the number (`EventID=4624` finds both `4624` and `"4624"`).
fn keyword_query(
    field: Field,
    path: Option<&str>,
    value: &str,
) -> Result<Box<dyn Query>, StoreError> {
    let lower = value.to_lowercase();
    let base = || match path {
        Some(p) => Term::from_field_json_path(field, p, true),
        None => Term::from_field_text(field, ""),
    };
    if let Some(glob) = Glob::parse(&lower) {
        let mut prefix = base();
        if path.is_some() {
            prefix.append_type_and_str("");
        }
        let key = prefix.serialized_value_bytes();
        let pattern = glob.regex(key);
        let regex = tantivy_fst::Regex::new(&pattern)
            .map_err(|e| StoreError::InvalidQuery(format!("wildcard {value:?}: {e}")))?;
        return Ok(Box::new(RegexQuery::from_regex(regex, field)));
    }
    let literal = unescape(&lower);
    let mut alternatives = Vec::new();
    let mut t = base();
    if path.is_some() {
        t.append_type_and_str(&literal);
    } else {
        t = Term::from_field_text(field, &literal);
    }
    alternatives.push(term_query(t));
    if path.is_some() {
        let trimmed = literal.trim();
        if let Ok(i) = trimmed.parse::<i64>() {
            let mut t = base();
            t.append_type_and_fast_value(i);
            alternatives.push(term_query(t));
        } else if let Ok(f) = trimmed.parse::<f64>() {
            if f.is_finite() && f.fract() != 0.0 {
                let mut t = base();
                t.append_type_and_fast_value(f);
                alternatives.push(term_query(t));
            }
        } else if trimmed == "true" || trimmed == "false" {
            let mut t = base();
            t.append_type_and_fast_value(trimmed == "true");
            alternatives.push(term_query(t));
        }
    }
    Ok(any_of(alternatives))
}

/// One piece of a Sigma-style value: `*` any run, `?` one character, and `\`
/// escaping `*`, `?` and itself (any other backslash is a plain backslash).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Piece {
    Char(char),
    Any,
    One,
}

fn pieces(value: &str) -> Vec<Piece> {
    let mut out = Vec::with_capacity(value.len());
    let mut chars = value.chars().peekable();
    while let Some(c) = chars.next() {
        out.push(match c {
            '*' => Piece::Any,
            '?' => Piece::One,
            '\\' => match chars.peek() {
                Some(&n @ ('*' | '?' | '\\')) => {
                    chars.next();
                    Piece::Char(n)
                }
                _ => Piece::Char('\\'),
            },
            c => Piece::Char(c),
        });
    }
    out
}

/// A value with at least one unescaped wildcard.
struct Glob(Vec<Piece>);

impl Glob {
    fn parse(value: &str) -> Option<Glob> {
        let p = pieces(value);
        p.iter()
            .any(|p| !matches!(p, Piece::Char(_)))
            .then_some(Glob(p))
    }

    /// A regex over whole term-dictionary keys: the key prefix (for JSON: the path,
    /// its terminator and the string type byte) literally, then the pattern.
    fn regex(&self, key_prefix: &[u8]) -> String {
        let mut out = String::from("(?s)");
        for c in String::from_utf8_lossy(key_prefix).chars() {
            push_literal(&mut out, c);
        }
        for p in &self.0 {
            match p {
                Piece::Any => out.push_str(".*"),
                Piece::One => out.push('.'),
                Piece::Char(c) => push_literal(&mut out, *c),
            }
        }
        out
    }
}

fn push_literal(out: &mut String, c: char) {
    if c.is_ascii_alphanumeric() {
        out.push(c);
    } else {
        out.push_str(&format!("\\x{{{:X}}}", u32::from(c)));
    }
}

/// The literal a wildcard-free value stands for (its escapes removed).
fn unescape(value: &str) -> String {
    pieces(value)
        .into_iter()
        .map(|p| match p {
            Piece::Char(c) => c,
            Piece::Any => '*',
            Piece::One => '?',
        })
        .collect()
}
