//! Searching: one tenant, the partitions whose event times overlap the range, newest
//! first; and `count_by`, the `stats count() by field` aggregation.

use std::collections::HashMap;
use std::sync::Arc;

use tantivy::collector::{Collector, Count, SegmentCollector, TopDocs};
use tantivy::columnar::DynamicColumn;
use tantivy::schema::Value as _;
use tantivy::{DocAddress, DocId, Order, Score, SegmentOrdinal, SegmentReader, TantivyDocument};

use koban_event::Event;

use crate::partition::Partition;
use crate::schema::event_from_stored;
use crate::{query, Shared, StoreError, TenantId};

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
    /// How many events to return (newest first); the total is counted regardless.
    pub limit: usize,
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
    fn partitions(&self, req: &SearchRequest) -> Result<Vec<Arc<Partition>>, StoreError> {
        let tenant = TenantId::new(&req.tenant)?;
        Ok(self
            .shared
            .partitions()
            .iter()
            .filter(|(k, p)| k.tenant == tenant && p.committed().overlaps(req.from_ms, req.to_ms))
            .map(|(_, p)| p.clone())
            .collect())
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
            let q = query::build(req, &part.index, &part.fields)?;
            let searcher = part.reader.searcher();
            if req.limit == 0 {
                total += searcher.search(&q, &Count).map_err(err)? as u64;
                continue;
            }
            let newest =
                TopDocs::with_limit(req.limit).order_by_fast_field::<i64>("time", Order::Desc);
            let (count, docs) = searcher.search(&q, &(Count, newest)).map_err(err)?;
            total += count as u64;
            top.extend(docs.into_iter().map(|(t, a)| (t.unwrap_or(i64::MIN), i, a)));
        }
        top.sort_by(|a, b| b.0.cmp(&a.0));
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
    /// Events without the field are not counted.
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
        let column = format!("f.{}", field.to_lowercase());
        let mut counts: HashMap<String, u64> = HashMap::new();
        for part in self.partitions(req)? {
            let q = query::build(req, &part.index, &part.fields)?;
            let fruit = part
                .reader
                .searcher()
                .search(&q, &CountBy { column: &column })
                .map_err(|e| StoreError::index(&part.key, e))?;
            for (k, n) in fruit {
                *counts.entry(k).or_default() += n;
            }
        }
        let mut out: Vec<(String, u64)> = counts.into_iter().collect();
        out.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
        if req.limit > 0 {
            out.truncate(req.limit);
        }
        Ok(out)
    }
}

fn hit(part: &Partition, doc: &TantivyDocument) -> SearchHit {
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

/// Counts values of one JSON fast-field path over the matching documents. A path can
/// hold several column types (a field that is sometimes text, sometimes a number);
/// each is counted, numbers under their text form.
struct CountBy<'a> {
    column: &'a str,
}

struct SegmentCountBy {
    columns: Vec<DynamicColumn>,
    /// Per str column, counts by term ordinal (resolved to text once, at harvest).
    ords: Vec<HashMap<u64, u64>>,
    values: HashMap<String, u64>,
}

impl Collector for CountBy<'_> {
    type Fruit = HashMap<String, u64>;
    type Child = SegmentCountBy;

    fn for_segment(
        &self,
        _: SegmentOrdinal,
        segment: &SegmentReader,
    ) -> tantivy::Result<SegmentCountBy> {
        let mut columns = Vec::new();
        for handle in segment.fast_fields().dynamic_column_handles(self.column)? {
            columns.push(handle.open()?);
        }
        let ords = columns.iter().map(|_| HashMap::new()).collect();
        Ok(SegmentCountBy {
            columns,
            ords,
            values: HashMap::new(),
        })
    }

    fn requires_scoring(&self) -> bool {
        false
    }

    fn merge_fruits(&self, fruits: Vec<HashMap<String, u64>>) -> tantivy::Result<Self::Fruit> {
        let mut all = HashMap::new();
        for fruit in fruits {
            for (k, n) in fruit {
                *all.entry(k).or_default() += n;
            }
        }
        Ok(all)
    }
}

impl SegmentCollector for SegmentCountBy {
    type Fruit = HashMap<String, u64>;

    fn collect(&mut self, doc: DocId, _: Score) {
        for (i, column) in self.columns.iter().enumerate() {
            match column {
                DynamicColumn::Str(c) => {
                    for ord in c.term_ords(doc) {
                        *self.ords[i].entry(ord).or_default() += 1;
                    }
                }
                DynamicColumn::I64(c) => count_values(&mut self.values, c.values_for_doc(doc)),
                DynamicColumn::U64(c) => count_values(&mut self.values, c.values_for_doc(doc)),
                DynamicColumn::F64(c) => count_values(&mut self.values, c.values_for_doc(doc)),
                DynamicColumn::Bool(c) => count_values(&mut self.values, c.values_for_doc(doc)),
                _ => {}
            }
        }
    }

    fn harvest(mut self) -> HashMap<String, u64> {
        let mut text = String::new();
        for (column, ords) in self.columns.iter().zip(&self.ords) {
            let DynamicColumn::Str(c) = column else {
                continue;
            };
            for (&ord, &n) in ords {
                text.clear();
                if c.ord_to_str(ord, &mut text).unwrap_or(false) {
                    *self.values.entry(text.clone()).or_default() += n;
                }
            }
        }
        self.values
    }
}

fn count_values<T: ToString>(counts: &mut HashMap<String, u64>, values: impl Iterator<Item = T>) {
    for v in values {
        *counts.entry(v.to_string()).or_default() += 1;
    }
}
