//! Splunk HTTP Event Collector: `/services/collector/event` (concatenated JSON event
//! objects, not only one per line), `/services/collector/raw` (lines), `health`, and
//! indexer acknowledgement. Acks are simple here: a response is only sent once its
//! records are durable, so every ackId handed out on a channel is already acknowledged.

use std::collections::HashMap;
use std::sync::Mutex;

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::routing::{get, post};
use axum::{Json, Router};
use koban_wal::{Record, RecordKind};
use serde::Deserialize;
use serde_json::{json, Value};

use super::error::{ApiError, Flavor};
use super::{auth, decode_body, lines, AppState, Remote};
use crate::state::now_ms;

const FLAVOR: Flavor = Flavor::Hec;
/// Channels remembered for acks; past this the oldest are forgotten.
const MAX_CHANNELS: usize = 10_000;

#[derive(Default)]
pub struct Acks {
    /// channel → last ackId issued.
    channels: Mutex<HashMap<String, u64>>,
}

impl Acks {
    fn issue(&self, channel: &str) -> u64 {
        let mut m = self.channels.lock().unwrap_or_else(|p| p.into_inner());
        if m.len() >= MAX_CHANNELS && !m.contains_key(channel) {
            // Forget an arbitrary channel rather than grow without bound.
            if let Some(k) = m.keys().next().cloned() {
                m.remove(&k);
            }
        }
        let id = m.entry(channel.to_owned()).or_insert(0);
        *id += 1;
        *id
    }

    fn issued(&self, channel: &str) -> u64 {
        let m = self.channels.lock().unwrap_or_else(|p| p.into_inner());
        m.get(channel).copied().unwrap_or(0)
    }
}

pub(super) fn routes() -> Router<AppState> {
    Router::new()
        .route("/services/collector", post(event))
        .route("/services/collector/event", post(event))
        .route("/services/collector/event/1.0", post(event))
        .route("/services/collector/raw", post(raw))
        .route("/services/collector/raw/1.0", post(raw))
        .route("/services/collector/health", get(health))
        .route("/services/collector/health/1.0", get(health))
        .route("/services/collector/ack", post(ack))
}

fn channel(headers: &HeaderMap) -> Option<String> {
    headers
        .get("x-splunk-request-channel")
        .and_then(|v| v.to_str().ok())
        .map(|s| s.trim().to_owned())
        .filter(|s| !s.is_empty() && s.len() <= 128)
}

#[derive(Deserialize)]
struct Envelope {
    #[serde(default)]
    event: Option<serde::de::IgnoredAny>,
}

/// Splits a body of concatenated JSON objects into the raw bytes of each.
fn split_events(body: &[u8]) -> Result<Vec<&[u8]>, ApiError> {
    let mut out = Vec::new();
    let mut stream = serde_json::Deserializer::from_slice(body).into_iter::<Envelope>();
    let mut start = 0;
    while let Some(next) = stream.next() {
        let end = stream.byte_offset();
        match next {
            Ok(Envelope { event: Some(_) }) => {}
            Ok(Envelope { event: None }) => {
                return Err(ApiError::new(
                    StatusCode::BAD_REQUEST,
                    FLAVOR,
                    "Event field is required",
                    12,
                ))
            }
            Err(_) => {
                return Err(ApiError::new(
                    StatusCode::BAD_REQUEST,
                    FLAVOR,
                    "Invalid data format",
                    6,
                ))
            }
        }
        let raw = body[start..end].trim_ascii();
        out.push(raw);
        start = end;
    }
    if out.is_empty() {
        return Err(ApiError::new(StatusCode::BAD_REQUEST, FLAVOR, "No data", 5));
    }
    Ok(out)
}

async fn respond(
    st: &AppState,
    headers: &HeaderMap,
    records: Vec<Record>,
) -> Result<Json<Value>, ApiError> {
    st.intake
        .append(records)
        .await
        .map_err(|e| ApiError::from_intake(e, FLAVOR, st.retry_after()))?;
    Ok(Json(match channel(headers) {
        Some(c) => json!({ "text": "Success", "code": 0, "ackId": st.hec_acks.issue(&c) }),
        None => json!({ "text": "Success", "code": 0 }),
    }))
}

async fn event(
    State(st): State<AppState>,
    Remote(remote): Remote,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> Result<Json<Value>, ApiError> {
    let binding = auth::ingest(&st, &headers, FLAVOR)?;
    let body = decode_body(&headers, body, st.max_body_bytes, FLAVOR)?;
    let now = now_ms();
    let records = split_events(&body)?
        .into_iter()
        .map(|e| Record {
            tenant: binding.tenant.clone(),
            source: binding.source.clone(),
            kind: RecordKind::HecEvent,
            received_ms: now,
            remote,
            payload: e.to_vec(),
        })
        .collect();
    respond(&st, &headers, records).await
}

async fn raw(
    State(st): State<AppState>,
    Remote(remote): Remote,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> Result<Json<Value>, ApiError> {
    let binding = auth::ingest(&st, &headers, FLAVOR)?;
    let body = decode_body(&headers, body, st.max_body_bytes, FLAVOR)?;
    let now = now_ms();
    let records: Vec<Record> = lines(&body)
        .map(|l| Record {
            tenant: binding.tenant.clone(),
            source: binding.source.clone(),
            kind: RecordKind::HecRaw,
            received_ms: now,
            remote,
            payload: l.to_vec(),
        })
        .collect();
    if records.is_empty() {
        return Err(ApiError::new(StatusCode::BAD_REQUEST, FLAVOR, "No data", 5));
    }
    respond(&st, &headers, records).await
}

async fn health(State(st): State<AppState>) -> (StatusCode, Json<Value>) {
    if st.intake.stopped_reason().is_some() {
        (
            StatusCode::SERVICE_UNAVAILABLE,
            Json(json!({ "text": "HEC is unhealthy, queues are full", "code": 18 })),
        )
    } else {
        (
            StatusCode::OK,
            Json(json!({ "text": "HEC is healthy", "code": 17 })),
        )
    }
}

#[derive(Deserialize)]
struct AckQuery {
    acks: Vec<u64>,
}

async fn ack(
    State(st): State<AppState>,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> Result<Json<Value>, ApiError> {
    auth::ingest(&st, &headers, FLAVOR)?;
    let Some(c) = channel(&headers) else {
        return Err(ApiError::new(
            StatusCode::BAD_REQUEST,
            FLAVOR,
            "Data channel is missing",
            10,
        ));
    };
    let q: AckQuery = serde_json::from_slice(&body)
        .map_err(|_| ApiError::new(StatusCode::BAD_REQUEST, FLAVOR, "Invalid data format", 6))?;
    let issued = st.hec_acks.issued(&c);
    let acks: serde_json::Map<String, Value> = q
        .acks
        .into_iter()
        .map(|id| (id.to_string(), Value::Bool(id >= 1 && id <= issued)))
        .collect();
    Ok(Json(json!({ "acks": acks })))
}
