//! Searching: one tenant, the partitions whose event times overlap the range, newest
//! first; and `count_by`, the `stats count() by field` aggregation.

use std::collections::HashMap;
use std::sync::Arc;

use tantivy::collector::{Count, TopDocs};
use tantivy::query::EnableScoring;
use tantivy::schema::{IndexRecordOption, Type, Value as _, ValueBytes};
use tantivy::{BitSet, DocAddress, DocSet, Order, TantivyDocument, Term, TERMINATED};

use koban_event::Event;

use crate::partition::Partition;
use crate::schema::event_from_stored;
use crate::{query, Condition, Shared, StoreError, TenantId};

/// Largest `limit` a search may ask for: results are held in memory.
pub const MAX_LIMIT: usize = 10_000;

/// A search over one tenant's events.
#[derive(Debug, Clone, Default)]
pub struct SearchRequest {
    /// Required: a search never crosses tenants.
    pub tenant: String,
    /// Event time, ms UTC, inclusive.
    pub from_ms: Option<i64>,
    /// Event time, ms UTC, exclusive.
    pub to_ms: Option<i64>,
    /// All must hold.
    pub filters: Vec<FieldFilter>,
    /// Words that must all occur in the original record (or, for records without
    /// one, in the field values); case-insensitive, punctuation splits words.
    pub text: Option<String>,
    /// A boolean condition that must hold too (what a hunting query becomes).
    pub condition: Option<Condition>,
    /// How many events to return (newest first); the total is counted regardless.
    pub limit: usize,
    /// Return the oldest events first instead (timelines).
    pub oldest_first: bool,
}

impl SearchRequest {
    pub fn new(tenant: &str) -> SearchRequest {
        SearchRequest {
            tenant: tenant.to_owned(),
            limit: 100,
            ..SearchRequest::default()
        }
    }
}

/// A condition on one field. Event field names are case-insensitive; the store's own
/// fields are `@source`, `@format`, `@parsed` and `@seq`.
#[derive(Debug, Clone, PartialEq)]
pub enum FieldFilter {
    /// Equal, ignoring case (as Sigma compares). `*` and `?` are wildcards, `\`
    /// escapes them. A numeric value also matches the number.
    Match { field: String, value: String },
    /// A number within [min, max] (either bound optional).
    Range {
        field: String,
        min: Option<f64>,
        max: Option<f64>,
    },
}

impl FieldFilter {
    pub fn eq(field: &str, value: &str) -> FieldFilter {
        FieldFilter::Match {
            field: field.to_owned(),
            value: value.to_owned(),
        }
    }

    pub fn range(field: &str, min: Option<f64>, max: Option<f64>) -> FieldFilter {
        FieldFilter::Range {
            field: field.to_owned(),
            min,
            max,
        }
    }
}

/// One event found.
#[derive(Debug, Clone)]
pub struct SearchHit {
    /// Event time (the receive time when the event had none), ms UTC.
    pub time_ms: i64,
    pub received_ms: i64,
    pub source: String,
    pub format: String,
    pub parsed: bool,
    pub seq: u64,
    pub sub: u32,
    /// The fields with their original names; `timestamp` is `time_ms`.
    pub event: Event,
    pub original: Option<String>,
}

#[derive(Debug, Clone, Default)]
pub struct SearchResult {
    /// Every matching event, not only those returned.
    pub total: u64,
    pub hits: Vec<SearchHit>,
}

/// The read side of the store: clone it into every thread that searches.
#[derive(Debug, Clone)]
pub struct StoreSearcher {
    shared: Arc<Shared>,
}

impl StoreSearcher {
    pub(crate) fn new(shared: Arc<Shared>) -> StoreSearcher {
        StoreSearcher { shared }
    }

    /// The tenant's partitions that may hold events in the request's time range.
    pub(crate) fn partitions(
        &self,
        req: &SearchRequest,
    ) -> Result<Vec<Arc<Partition>>, StoreError> {
        let tenant = TenantId::new(&req.tenant)?;
        Ok(self
            .shared
            .partitions()
            .iter()
            .filter(|(k, p)| k.tenant == tenant && p.committed().overlaps(req.from_ms, req.to_ms))
            .map(|(_, p)| p.clone())
            .collect())
    }

    /// Committed events per (tenant, receive day start in ms), for one tenant or all:
    /// what the console charts as events over time.
    pub fn daily_counts(&self, tenant: Option<&str>) -> Vec<(String, i64, u64)> {
        let mut out: Vec<(String, i64, u64)> = self
            .shared
            .partitions()
            .iter()
            .filter(|(k, _)| tenant.is_none_or(|t| k.tenant.as_str() == t))
            .map(|(k, p)| {
                (
                    k.tenant.as_str().to_owned(),
                    k.day.start_ms(),
                    p.reader.searcher().num_docs(),
                )
            })
            .collect();
        out.sort();
        out
    }

    pub fn search(&self, req: &SearchRequest) -> Result<SearchResult, StoreError> {
        if req.limit > MAX_LIMIT {
            return Err(StoreError::InvalidQuery(format!(
                "limit {} is over the maximum {MAX_LIMIT}",
                req.limit
            )));
        }
        let mut total = 0u64;
        // (time, partition, address): the newest `limit` of each partition, merged.
        let mut top: Vec<(i64, usize, DocAddress)> = Vec::new();
        let parts = self.partitions(req)?;
        for (i, part) in parts.iter().enumerate() {
            let err = |e| StoreError::index(&part.key, e);
            let searcher = part.reader.searcher();
            let q = query::build(req, &searcher, &part.fields)?;
            if req.limit == 0 {
                total += searcher.search(&q, &Count).map_err(err)? as u64;
                continue;
            }
            let order = if req.oldest_first {
                Order::Asc
            } else {
                Order::Desc
            };
            let first = TopDocs::with_limit(req.limit).order_by_fast_field::<i64>("time", order);
            let (count, docs) = searcher.search(&q, &(Count, first)).map_err(err)?;
            total += count as u64;
            top.extend(docs.into_iter().map(|(t, a)| (t.unwrap_or(i64::MIN), i, a)));
        }
        if req.oldest_first {
            top.sort_by_key(|t| t.0);
        } else {
            top.sort_by_key(|t| std::cmp::Reverse(t.0));
        }
        top.truncate(req.limit);
        let mut hits = Vec::with_capacity(top.len());
        for (_, i, addr) in top {
            let part = &parts[i];
            let doc: TantivyDocument = part
                .reader
                .searcher()
                .doc(addr)
                .map_err(|e| StoreError::index(&part.key, e))?;
            hits.push(hit(part, &doc));
        }
        Ok(SearchResult { total, hits })
    }

    /// Counts matching events per value of `field` (lower-cased, as indexed),
    /// largest first; `req.limit` caps the number of values returned (0: all).
    /// Events without the field are not counted; a list counts once per element.
    pub fn count_by(
        &self,
        req: &SearchRequest,
        field: &str,
    ) -> Result<Vec<(String, u64)>, StoreError> {
        if field.starts_with('@') {
            return Err(StoreError::InvalidQuery(format!(
                "count_by on store field {field:?} is not supported"
            )));
        }
        let path = field.to_lowercase();
        let mut counts: HashMap<String, u64> = HashMap::new();
        for part in self.partitions(req)? {
            count_partition(&part, req, &path, &mut counts)
                .map_err(|e| StoreError::index(&part.key, e))?;
        }
        let mut out: Vec<(String, u64)> = counts.into_iter().collect();
        out.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
        if req.limit > 0 {
            out.truncate(req.limit);
        }
        Ok(out)
    }
}

/// `count_by` in one partition: the matching documents as a bitset per segment, then
/// one walk over the path's terms in the dictionary, counting each term's postings
/// that are in the set. With no condition at all, a term's document frequency is
/// its count and no posting is read.
fn count_partition(
    part: &Partition,
    req: &SearchRequest,
    path: &str,
    counts: &mut HashMap<String, u64>,
) -> tantivy::Result<()> {
    let everything = req.filters.is_empty()
        && req.condition.is_none()
        && req.text.is_none()
        && req.from_ms.is_none()
        && req.to_ms.is_none();
    let searcher = part.reader.searcher();
    let query = query::build(req, &searcher, &part.fields)
        .map_err(|e| tantivy::TantivyError::InvalidArgument(e.to_string()))?;
    let weight = query.weight(EnableScoring::disabled_from_searcher(&searcher))?;
    let prefix = Term::from_field_json_path(part.fields.f, path, true);
    let prefix = prefix.serialized_value_bytes();
    let mut end = prefix.to_vec();
    // The path ends in a 0 byte; the next byte value bounds every term of the path.
    if let Some(last) = end.last_mut() {
        *last += 1;
    }
    for segment in searcher.segment_readers() {
        let matching = if everything && segment.alive_bitset().is_none() {
            None
        } else {
            let mut bits = BitSet::with_max_value(segment.max_doc());
            let mut scorer = weight.scorer(segment, 1.0)?;
            let mut doc = scorer.doc();
            while doc != TERMINATED {
                if segment.is_deleted(doc) {
                    doc = scorer.advance();
                    continue;
                }
                bits.insert(doc);
                doc = scorer.advance();
            }
            Some(bits)
        };
        let inverted = segment.inverted_index(part.fields.f)?;
        let mut terms = inverted.terms().range().ge(prefix).lt(&end).into_stream()?;
        while terms.advance() {
            let n = match &matching {
                None => u64::from(terms.value().doc_freq),
                Some(bits) => {
                    let mut postings = inverted.read_block_postings_from_terminfo(
                        terms.value(),
                        IndexRecordOption::Basic,
                    )?;
                    let mut n = 0;
                    loop {
                        let docs = postings.docs();
                        if docs.is_empty() {
                            break;
                        }
                        n += docs.iter().filter(|&&d| bits.contains(d)).count() as u64;
                        postings.advance();
                    }
                    n
                }
            };
            if n > 0 {
                if let Some(value) = term_value(&terms.key()[prefix.len()..]) {
                    *counts.entry(value).or_default() += n;
                }
            }
        }
    }
    Ok(())
}

/// The text form of a JSON term's value (type byte, then the value).
fn term_value(bytes: &[u8]) -> Option<String> {
    let v = ValueBytes::wrap(bytes);
    match v.typ() {
        Type::Str => v.as_str().map(str::to_owned),
        Type::I64 => v.as_i64().map(|i| i.to_string()),
        Type::U64 => v.as_u64().map(|u| u.to_string()),
        Type::F64 => v.as_f64().map(|f| f.to_string()),
        Type::Bool => v.as_bool().map(|b| b.to_string()),
        _ => None,
    }
}

pub(crate) fn hit(part: &Partition, doc: &TantivyDocument) -> SearchHit {
    let f = &part.fields;
    let text = |field| {
        doc.get_first(field)
            .and_then(|v| v.as_str())
            .map(str::to_owned)
    };
    let time = doc
        .get_first(f.time)
        .and_then(|v| v.as_i64())
        .unwrap_or_default();
    let original = text(f.original);
    SearchHit {
        time_ms: time,
        received_ms: doc
            .get_first(f.received)
            .and_then(|v| v.as_i64())
            .unwrap_or_default(),
        source: text(f.source).unwrap_or_default(),
        format: text(f.format).unwrap_or_default(),
        parsed: doc
            .get_first(f.parsed)
            .and_then(|v| v.as_bool())
            .unwrap_or_default(),
        seq: doc
            .get_first(f.seq)
            .and_then(|v| v.as_u64())
            .unwrap_or_default(),
        sub: doc
            .get_first(f.sub)
            .and_then(|v| v.as_u64())
            .and_then(|s| u32::try_from(s).ok())
            .unwrap_or_default(),
        event: event_from_stored(
            &text(f.fields).unwrap_or_default(),
            time,
            original.as_deref(),
        ),
        original,
    }
}
