//! `POST /api/v1/search`: stored events of one tenant by time range, field filters and
//! free text, newest first, or counts grouped by one field; the caller's guard checks
//! the tenant and audits provider reads.
//!
//! ```text
//! {"tenant": "acme", "from": "2025-10-24T00:00:00Z", "to": 1761350400000,
//!  "filters": {"host.name": "web01", "event.outcome": "fail*"},
//!  "ranges": {"destination.port": {"min": 1, "max": 1024}},
//!  "text": "Accepted password", "limit": 100, "count_by": "host.name"}
//! ```

use std::collections::BTreeMap;

use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::post;
use axum::{Json, Router};
use koban_store::{FieldFilter, SearchRequest, StoreError};
use serde::Deserialize;
use serde_json::{json, Value as JsonValue};

use super::error::{ApiError, Flavor};
use super::AppState;

pub(super) fn routes() -> Router<AppState> {
    Router::new().route("/api/v1/search", post(search))
}

/// At most this many groups per `count_by` answer (`limit: 0` means this many).
const MAX_GROUPS: usize = 100_000;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Query {
    tenant: String,
    from: Option<JsonValue>,
    to: Option<JsonValue>,
    #[serde(default)]
    filters: BTreeMap<String, String>,
    #[serde(default)]
    ranges: BTreeMap<String, Range>,
    text: Option<String>,
    limit: Option<usize>,
    count_by: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Range {
    min: Option<f64>,
    max: Option<f64>,
}

/// A time bound: milliseconds since the epoch or an RFC 3339 / log-style string.
fn millis(v: &Option<JsonValue>) -> Result<Option<i64>, ApiError> {
    let bad = || ApiError::bad_request(Flavor::Koban, "from/to: use milliseconds or RFC 3339");
    match v {
        None | Some(JsonValue::Null) => Ok(None),
        Some(JsonValue::Number(n)) => n.as_i64().map(Some).ok_or_else(bad),
        Some(JsonValue::String(s)) => koban_event::parse_timestamp(s).map(Some).ok_or_else(bad),
        Some(_) => Err(bad()),
    }
}

pub(super) fn store_error(e: StoreError) -> ApiError {
    match e {
        StoreError::InvalidTenant(_) => ApiError::bad_request(Flavor::Koban, "invalid tenant id"),
        StoreError::InvalidQuery(_) => {
            ApiError::bad_request(Flavor::Koban, "invalid filter (see the field and value)")
        }
        other => {
            tracing::error!(error = %other, "search failed");
            ApiError::internal(Flavor::Koban)
        }
    }
}

async fn search(
    State(st): State<AppState>,
    caller: super::caller::Caller,
    body: axum::body::Bytes,
) -> Result<Json<JsonValue>, ApiError> {
    let q: Query = serde_json::from_slice(&body).map_err(|_| {
        ApiError::bad_request(
            Flavor::Koban,
            "expected {\"tenant\", \"from\", \"to\", \"filters\", \"ranges\", \"text\", \"limit\", \"count_by\"}",
        )
    })?;
    super::cases::guard(&st, caller)?
        .allow(
            Some(&q.tenant),
            crate::access::Action::Read,
            "events",
            "search",
        )
        .map_err(super::cases::guard_error)?;
    let Some(searcher) = st.search.clone() else {
        return Err(ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            Flavor::Koban,
            "this server has no event store",
            0,
        ));
    };

    let mut req = SearchRequest::new(&q.tenant);
    req.from_ms = millis(&q.from)?;
    req.to_ms = millis(&q.to)?;
    req.text = q.text.clone();
    if let Some(l) = q.limit {
        req.limit = l;
    }
    req.filters = q
        .filters
        .iter()
        .map(|(f, v)| FieldFilter::eq(f, v))
        .chain(
            q.ranges
                .iter()
                .map(|(f, r)| FieldFilter::range(f, r.min, r.max)),
        )
        .collect();
    let count_by = q.count_by.clone();
    if count_by.is_some() && (req.limit == 0 || req.limit > MAX_GROUPS) {
        // Groups are built in memory: a `count_by` over millions of distinct values
        // (an id field) once took the server to 4.5 GB. Narrow with filters instead.
        req.limit = MAX_GROUPS;
    }
    // Index reads block: keep them off the async threads.
    let answer = tokio::task::spawn_blocking(move || match count_by {
        Some(field) => searcher.count_by(&req, &field).map(|groups| {
            json!({ "count_by": field, "groups": groups.into_iter()
                .map(|(v, n)| json!({ "value": v, "count": n })).collect::<Vec<_>>() })
        }),
        None => searcher.search(&req).map(|r| {
            let hits: Vec<JsonValue> = r.hits.iter().map(crate::hunt::hit_json).collect();
            json!({ "total": r.total, "hits": hits })
        }),
    })
    .await
    .map_err(|_| ApiError::internal(Flavor::Koban))?
    .map_err(store_error)?;
    tracing::info!(tenant = %q.tenant, "search");
    Ok(Json(answer))
}
