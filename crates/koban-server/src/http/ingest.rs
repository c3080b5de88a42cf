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
    let mut zeek = ZeekHeader::default();
    let records: Vec<Record> = lines(&body)
        .filter_map(|l| {
            if zeek.directive(l) {
                return None;
            }
            let (kind, payload) = match zeek.header() {
                Some(h) if l.first() != Some(&b'{') => (RecordKind::ZeekTsvRow, [h, l].concat()),
                _ if is_json(l) => (RecordKind::NdjsonLine, l.to_vec()),
                _ => (RecordKind::RawText, l.to_vec()),
            };
            Some(Record {
                tenant: binding.tenant.clone(),
                source: binding.source.clone(),
                kind,
                received_ms: now,
                remote,
                payload,
            })
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

/// The header of a Zeek TSV log met in one body (a shipper posting a `conn.log` as
/// it is). Its directives — `#separator`, `#fields`, `#types`, `#close`, … — are not
/// records: they describe the rows that follow, which become `ZeekTsvRow` records
/// carrying `#path` and `#fields`. A header holds until `#close` or the next header;
/// a body cut in the middle of a log must repeat it (rows without one stay raw text).
#[derive(Default)]
pub(crate) struct ZeekHeader {
    active: bool,
    path: Vec<u8>,
    fields: Vec<u8>,
    /// `path` and `fields` as the prefix of a row's payload.
    prefix: Vec<u8>,
}

const ZEEK_DIRECTIVES: &[&[u8]] = &[
    b"#separator ",
    b"#set_separator\t",
    b"#empty_field\t",
    b"#unset_field\t",
    b"#path\t",
    b"#open\t",
    b"#fields\t",
    b"#types\t",
    b"#close\t",
];

impl ZeekHeader {
    /// Takes `line` if it is a Zeek directive (a header starts with `#separator` or,
    /// for a log read from its middle, `#fields`).
    pub(crate) fn directive(&mut self, line: &[u8]) -> bool {
        let starts_header = line.starts_with(b"#separator ") || line.starts_with(b"#fields\t");
        if !(self.active || starts_header) || !ZEEK_DIRECTIVES.iter().any(|d| line.starts_with(d)) {
            return false;
        }
        if line.starts_with(b"#separator ") {
            *self = ZeekHeader::default();
        }
        self.active = true;
        if line.starts_with(b"#path\t") {
            self.path = line.to_vec();
        } else if line.starts_with(b"#fields\t") {
            self.fields = line.to_vec();
        } else if line.starts_with(b"#close\t") {
            *self = ZeekHeader::default();
            return true;
        }
        self.prefix.clear();
        if !self.fields.is_empty() {
            for d in [&self.path, &self.fields] {
                if !d.is_empty() {
                    self.prefix.extend_from_slice(d);
                    self.prefix.push(b'\n');
                }
            }
        }
        true
    }

    /// The payload prefix of the next row, once `#fields` has been seen.
    pub(crate) fn header(&self) -> Option<&[u8]> {
        (!self.prefix.is_empty()).then_some(&self.prefix[..])
    }
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
