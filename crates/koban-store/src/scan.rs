//! Walking every matching event, not only the newest few: what aggregations over
//! stored fields, timecharts and retro-hunts need. Partitions are visited in receive
//! order (oldest day first), each partition's events in index order; `progress` hears
//! after every partition how many of how many are done.

use std::collections::BTreeMap;
use std::ops::ControlFlow;

use tantivy::query::EnableScoring;
use tantivy::{DocSet, TantivyDocument, TERMINATED};

use crate::search::hit;
use crate::{SearchHit, SearchRequest, StoreError, StoreSearcher};

/// Partitions done, partitions in all.
pub type Progress<'a> = &'a mut dyn FnMut(usize, usize);

impl StoreSearcher {
    /// Calls `each` with every event matching `req` (its `limit` is ignored) until it
    /// breaks; returns how many were visited.
    pub fn scan(
        &self,
        req: &SearchRequest,
        progress: Progress<'_>,
        each: &mut dyn FnMut(SearchHit) -> ControlFlow<()>,
    ) -> Result<u64, StoreError> {
        let parts = self.partitions(req)?;
        let mut visited = 0;
        for (i, part) in parts.iter().enumerate() {
            let err = |e| StoreError::index(&part.key, e);
            let searcher = part.reader.searcher();
            let query = crate::query::build(req, &searcher, &part.fields)?;
            let weight = query
                .weight(EnableScoring::disabled_from_searcher(&searcher))
                .map_err(err)?;
            for segment in searcher.segment_readers() {
                let store = segment
                    .get_store_reader(64)
                    .map_err(|e| StoreError::index(&part.key, e.into()))?;
                let mut scorer = weight.scorer(segment, 1.0).map_err(err)?;
                let mut doc = scorer.doc();
                while doc != TERMINATED {
                    if !segment.is_deleted(doc) {
                        let stored: TantivyDocument = store.get(doc).map_err(err)?;
                        visited += 1;
                        if each(hit(part, &stored)).is_break() {
                            progress(i + 1, parts.len());
                            return Ok(visited);
                        }
                    }
                    doc = scorer.advance();
                }
            }
            progress(i + 1, parts.len());
        }
        Ok(visited)
    }

    /// Matching events per `span_ms` of event time (bucket start → count), read from
    /// the time column alone: no stored document is opened.
    pub fn time_histogram(
        &self,
        req: &SearchRequest,
        span_ms: i64,
        progress: Progress<'_>,
    ) -> Result<BTreeMap<i64, u64>, StoreError> {
        if span_ms <= 0 {
            return Err(StoreError::InvalidQuery(format!(
                "time span {span_ms} ms is not positive"
            )));
        }
        let parts = self.partitions(req)?;
        let mut buckets = BTreeMap::new();
        for (i, part) in parts.iter().enumerate() {
            let err = |e| StoreError::index(&part.key, e);
            let searcher = part.reader.searcher();
            let query = crate::query::build(req, &searcher, &part.fields)?;
            let weight = query
                .weight(EnableScoring::disabled_from_searcher(&searcher))
                .map_err(err)?;
            for segment in searcher.segment_readers() {
                let times = segment.fast_fields().i64("time").map_err(err)?;
                let mut scorer = weight.scorer(segment, 1.0).map_err(err)?;
                let mut doc = scorer.doc();
                while doc != TERMINATED {
                    if !segment.is_deleted(doc) {
                        if let Some(t) = times.first(doc) {
                            *buckets.entry(t.div_euclid(span_ms) * span_ms).or_default() += 1;
                        }
                    }
                    doc = scorer.advance();
                }
            }
            progress(i + 1, parts.len());
        }
        Ok(buckets)
    }
}
