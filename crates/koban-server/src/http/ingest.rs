//! Koban's own ingest API: NDJSON lines and whole EVTX files.

use axum::extract::{DefaultBodyLimit, State};
use axum::http::{HeaderMap, StatusCode};
use axum::routing::post;
use axum::{Json, Router};
use koban_wal::{Record, RecordKind};
use serde_json::json;

use super::error::{ApiError, Flavor};
use super::{auth, decode_body, lines, AppState, Remote};
use crate::state::now_ms;

pub(super) fn routes(evtx_limit: usize) -> Router<AppState> {
    Router::new().route("/api/v1/ingest", post(ndjson)).route(
        "/api/v1/ingest/evtx",
        post(evtx).layer(DefaultBodyLimit::max(evtx_limit)),
    )
}

/// Whether a line is one JSON value (else it is kept as raw text, never dropped).
pub(crate) fn is_json(line: &[u8]) -> bool {
    serde_json::from_slice::<serde::de::IgnoredAny>(line).is_ok()
}

async fn ndjson(
    State(st): State<AppState>,
    Remote(remote): Remote,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> Result<(StatusCode, Json<serde_json::Value>), ApiError> {
    let flavor = Flavor::Koban;
    let binding = auth::ingest(&st, &headers, flavor)?;
    let body = decode_body(&headers, body, st.max_body_bytes, flavor)?;
    let now = now_ms();
    let records: Vec<Record> = lines(&body)
        .map(|l| Record {
            tenant: binding.tenant.clone(),
            source: binding.source.clone(),
            kind: if is_json(l) {
                RecordKind::NdjsonLine
            } else {
                RecordKind::RawText
            },
            received_ms: now,
            remote,
            payload: l.to_vec(),
        })
        .collect();
    let n = records.len();
    let seq = st
        .intake
        .append(records)
        .await
        .map_err(|e| ApiError::from_intake(e, flavor, st.retry_after()))?;
    Ok((
        StatusCode::OK,
        Json(json!({ "accepted": n, "last_seq": seq })),
    ))
}

const EVTX_MAGIC: &[u8] = b"ElfFile\0";

async fn evtx(
    State(st): State<AppState>,
    Remote(remote): Remote,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> Result<(StatusCode, Json<serde_json::Value>), ApiError> {
    let flavor = Flavor::Koban;
    let binding = auth::ingest(&st, &headers, flavor)?;
    let body = decode_body(&headers, body, st.max_evtx_bytes, flavor)?;
    if !body.starts_with(EVTX_MAGIC) {
        return Err(ApiError::bad_request(flavor, "body is not an EVTX file"));
    }
    let bytes = body.len();
    let record = Record {
        tenant: binding.tenant,
        source: binding.source,
        kind: RecordKind::Evtx,
        received_ms: now_ms(),
        remote,
        payload: body,
    };
    let seq = st
        .intake
        .append(vec![record])
        .await
        .map_err(|e| ApiError::from_intake(e, flavor, st.retry_after()))?;
    Ok((
        StatusCode::OK,
        Json(json!({ "accepted": 1, "bytes": bytes, "last_seq": seq })),
    ))
}
