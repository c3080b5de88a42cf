//! Every HTTP endpoint, built into one router by [`app`] (tested with `oneshot`, served
//! over HTTPS by the server).
//!
//! - `ingest.rs`: `/api/v1/ingest` (NDJSON) and `/api/v1/ingest/evtx`
//! - `elastic.rs`: Elasticsearch `_bulk` and the handshake calls shippers make first
//! - `hec.rs`: Splunk HEC event, raw, health and ack
//! - `admin.rs`: tenants and tokens; `ops.rs`: `/metrics`, `/healthz`
//! - `search.rs`: `/api/v1/search` over the event store
//! - `respond.rs`: agents (enrol, poll for signed commands, report) and response
//!   actions (request, approve/reject, undo)
//! - `cases.rs`: alerts, incidents, triage and the case record; `rules.rs`: the rule
//!   set, per-tenant overrides and exceptions, asset groups, SLA targets

mod admin;
pub mod auth;
pub mod caller;
mod cases;
mod elastic;
pub mod error;
mod hec;
mod hunt;
mod ingest;
mod ops;
mod playbooks;
mod respond;
mod rules;
mod search;

use std::io::Read;
use std::net::SocketAddr;
use std::sync::Arc;

use axum::extract::{ConnectInfo, DefaultBodyLimit, FromRequestParts};
use axum::http::request::Parts;
use axum::http::{header, HeaderMap};
use axum::Router;

use crate::intake::Intake;
use crate::state::State;
use error::{ApiError, Flavor};

#[derive(Clone)]
pub struct AppState {
    pub intake: Arc<Intake>,
    pub state: Arc<State>,
    pub max_body_bytes: usize,
    pub max_evtx_bytes: usize,
    pub hec_acks: Arc<hec::Acks>,
    /// Request bodies being read or appended at once. Waiting requests have not read
    /// their bodies, so memory stays bounded by this times the body limit.
    pub inflight: Arc<tokio::sync::Semaphore>,
    /// The event store's read side, when the server has one (`/api/v1/search`).
    pub search: Option<koban_store::StoreSearcher>,
    /// Alerts, incidents and cases, when detection runs (`/api/v1/alerts`, ...).
    pub alerts: Option<Arc<crate::alerts::AlertBook>>,
    pub rules: Option<Arc<crate::detection::RuleSource>>,
    /// How retro-hunt alerts fold and group (the `[detection]` windows).
    pub grouping: crate::alerts::Grouping,
    /// Agents and response actions (`/api/v1/agents`, `/api/v1/actions`).
    pub respond: Option<Arc<crate::respond::ResponseBook>>,
}

/// Default for `server.max_inflight_requests`.
pub const DEFAULT_INFLIGHT: usize = 16;
/// How long a request waits for its turn before it is told to come back later.
const INFLIGHT_WAIT: std::time::Duration = std::time::Duration::from_secs(5);

impl AppState {
    pub fn new(
        intake: Arc<Intake>,
        state: Arc<State>,
        max_body_bytes: usize,
        max_evtx_bytes: usize,
    ) -> Self {
        AppState {
            intake,
            state,
            max_body_bytes,
            max_evtx_bytes,
            hec_acks: Arc::new(hec::Acks::default()),
            inflight: Arc::new(tokio::sync::Semaphore::new(DEFAULT_INFLIGHT)),
            search: None,
            alerts: None,
            rules: None,
            grouping: crate::alerts::Grouping::default(),
            respond: None,
        }
    }

    pub fn with_detection(
        mut self,
        alerts: Option<Arc<crate::alerts::AlertBook>>,
        rules: Option<Arc<crate::detection::RuleSource>>,
    ) -> Self {
        self.alerts = alerts;
        self.rules = rules;
        self
    }

    pub fn with_grouping(mut self, grouping: crate::alerts::Grouping) -> Self {
        self.grouping = grouping;
        self
    }

    pub fn with_respond(mut self, respond: Option<Arc<crate::respond::ResponseBook>>) -> Self {
        self.respond = respond;
        self
    }

    pub fn with_search(mut self, search: Option<koban_store::StoreSearcher>) -> Self {
        self.search = search;
        self
    }

    /// At most `n` requests with bodies are handled at once.
    pub fn with_max_inflight(mut self, n: usize) -> Self {
        self.inflight = Arc::new(tokio::sync::Semaphore::new(n.max(1)));
        self
    }

    fn retry_after(&self) -> u64 {
        self.intake.limits().retry_after_secs
    }
}

/// The whole HTTP surface.
pub fn app(state: AppState) -> Router {
    let body_limit = state.max_body_bytes;
    let evtx_limit = state.max_evtx_bytes;
    Router::new()
        .merge(ingest::routes(evtx_limit))
        .merge(hec::routes())
        .merge(admin::routes())
        .merge(ops::routes())
        .merge(search::routes())
        .merge(hunt::routes())
        .merge(respond::routes())
        .merge(playbooks::routes())
        .merge(cases::routes())
        .merge(rules::routes())
        .merge(crate::console::routes())
        .merge(elastic::routes(state.clone()))
        .layer(DefaultBodyLimit::max(body_limit))
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            one_of_few,
        ))
        .with_state(state)
}

/// Bounds the requests with bodies (POST/PUT) handled at once; the rest wait their
/// turn for a while, then get a 429/503 with Retry-After in their client's shape.
async fn one_of_few(
    axum::extract::State(st): axum::extract::State<AppState>,
    req: axum::extract::Request,
    next: axum::middleware::Next,
) -> axum::response::Response {
    use axum::response::IntoResponse;
    let m = req.method();
    if m != axum::http::Method::POST && m != axum::http::Method::PUT {
        return next.run(req).await;
    }
    let permit =
        tokio::time::timeout(INFLIGHT_WAIT, Arc::clone(&st.inflight).acquire_owned()).await;
    let Ok(Ok(_permit)) = permit else {
        let path = req.uri().path();
        let flavor = if path.starts_with("/services/collector") {
            Flavor::Hec
        } else if path.ends_with("/_bulk") || path.starts_with("/_") {
            Flavor::Elastic
        } else {
            Flavor::Koban
        };
        return ApiError::from_intake(crate::intake::IntakeError::Busy, flavor, st.retry_after())
            .into_response();
    };
    next.run(req).await
}

/// The peer address axum records per connection (`ConnectInfo<PeerAddr>`).
#[derive(Debug, Clone, Copy)]
pub struct PeerAddr(pub SocketAddr);

impl
    axum::extract::connect_info::Connected<
        axum::serve::IncomingStream<'_, crate::https::TlsListener>,
    > for PeerAddr
{
    fn connect_info(stream: axum::serve::IncomingStream<'_, crate::https::TlsListener>) -> Self {
        PeerAddr(*stream.remote_addr())
    }
}

/// The peer's address when the request came over a socket (absent under `oneshot`).
pub struct Remote(pub Option<SocketAddr>);

impl<S: Send + Sync> FromRequestParts<S> for Remote {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        Ok(Remote(
            parts
                .extensions
                .get::<ConnectInfo<PeerAddr>>()
                .map(|c| c.0 .0),
        ))
    }
}

/// The request body, gunzipped when `Content-Encoding: gzip`, at most `limit` bytes.
pub(crate) fn decode_body(
    headers: &HeaderMap,
    body: axum::body::Bytes,
    limit: usize,
    flavor: Flavor,
) -> Result<Vec<u8>, ApiError> {
    let gzip = headers
        .get(header::CONTENT_ENCODING)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.trim().eq_ignore_ascii_case("gzip"));
    if !gzip {
        return Ok(body.to_vec());
    }
    let mut out = Vec::new();
    // Read one byte past the limit to tell "exactly at the limit" from "over it".
    let mut dec = flate2::read::MultiGzDecoder::new(&body[..]).take(limit as u64 + 1);
    dec.read_to_end(&mut out)
        .map_err(|_| ApiError::bad_request(flavor, "body is not valid gzip"))?;
    if out.len() > limit {
        return Err(ApiError::new(
            axum::http::StatusCode::PAYLOAD_TOO_LARGE,
            flavor,
            "decompressed body is too large",
            6,
        ));
    }
    Ok(out)
}

/// Non-blank lines, without their line ending.
pub(crate) fn lines(body: &[u8]) -> impl Iterator<Item = &[u8]> {
    body.split(|&b| b == b'\n').filter_map(|l| {
        let l = l.strip_suffix(b"\r").unwrap_or(l);
        (!l.iter().all(|b| b.is_ascii_whitespace())).then_some(l)
    })
}
