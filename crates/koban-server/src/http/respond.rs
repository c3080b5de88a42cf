//! Response over HTTP: agents enrol, poll for signed commands and report what they
//! observed; analysts ask for actions, approvers decide, anyone allowed can undo.
//!
//! ```text
//! agents (Authorization: Agent <id>:<secret>; enrol with a one-time token):
//! POST /api/v1/agents/enrol          {"token","hostname"} → {"agent","secret","tenant","server_key"}
//! POST /api/v1/agents/poll           {"status"}           → {"commands":[{"payload","signature"}]}
//! POST /api/v1/agents/result         {"number","ran","verified","detail","observed"}
//! POST /api/v1/agents/logs           {"first": seq, "lines": […]}   → {"acked": seq}
//! POST /api/v1/agents/files          {"number","path","sha256","data": base64}  (collect_files)
//! users:
//! POST /api/v1/agents/enrol-tokens   {"tenant"}           → {"token","expires_ms"}   (tenant admin)
//! GET  /api/v1/agents?tenant=
//! POST /api/v1/actions               {"tenant","agent","action":{"kind",…},"incident"?,"ttl_s"?}
//! GET  /api/v1/actions?tenant=&limit=    GET /api/v1/actions/{id}
//! POST /api/v1/actions/{id}/approve | /reject | /undo
//! GET  /api/v1/evidence/{action}/{index}   a collected file (its action's `files`)
//! ```
//!
//! Every user route asks the [`Guard`](crate::guard::Guard) first (tenant, role,
//! audit); the approval gate of the tenant's service decides what runs at once.

use std::sync::Arc;

use axum::extract::{Path, Query, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::Deserialize;
use serde_json::{json, Value};

use super::caller::Caller;
use super::cases::{blocking, guard};
use super::error::{ApiError, Flavor};
use super::AppState;
use crate::access::Action as Access;
use crate::alerts::TriageError;
use crate::respond::{
    approval_policy, decide_as, respond_error, ActionRequest, AgentAuth, Outcome, RespondError,
    ResponseBook,
};
use crate::state::now_ms;
use koban_wal::{Record, RecordKind};

pub(super) fn routes() -> Router<AppState> {
    Router::new()
        .route("/api/v1/agents/enrol", post(enrol))
        .route("/api/v1/agents/poll", post(poll))
        .route("/api/v1/agents/result", post(result))
        .route("/api/v1/agents/logs", post(logs))
        .route("/api/v1/agents/files", post(files))
        .route("/api/v1/evidence/{id}/{index}", get(evidence_file))
        .route("/api/v1/agents/enrol-tokens", post(enrol_token))
        .route("/api/v1/agents", get(agents))
        .route("/api/v1/actions", get(actions).post(request))
        .route("/api/v1/actions/{id}", get(action))
        .route("/api/v1/actions/{id}/{decision}", post(decide))
}

pub(super) fn book(st: &AppState) -> Result<Arc<ResponseBook>, ApiError> {
    st.respond
        .clone()
        .ok_or_else(|| ApiError::invalid("response is off on this server"))
}

/// The agent of `Authorization: Agent <id>:<secret>`.
async fn agent_auth(
    st: &AppState,
    headers: &HeaderMap,
) -> Result<(Arc<ResponseBook>, AgentAuth), ApiError> {
    let b = book(st)?;
    let value = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Agent "))
        .ok_or_else(|| ApiError::unauthorized(Flavor::Koban, true))?;
    let (id, secret) = value
        .trim()
        .split_once(':')
        .ok_or_else(|| ApiError::unauthorized(Flavor::Koban, false))?;
    let (id, secret) = (id.to_owned(), secret.to_owned());
    let b2 = Arc::clone(&b);
    let auth = tokio::task::spawn_blocking(move || b2.authenticate(&id, &secret))
        .await
        .map_err(|_| ApiError::internal(Flavor::Koban))?
        .map_err(|_| ApiError::unauthorized(Flavor::Koban, false))?;
    Ok((b, auth))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct EnrolBody {
    token: String,
    hostname: String,
}

async fn enrol(
    State(st): State<AppState>,
    Json(body): Json<EnrolBody>,
) -> Result<Json<Value>, ApiError> {
    let b = book(&st)?;
    let r = tokio::task::spawn_blocking(move || b.enrol(&body.token, &body.hostname, now_ms()))
        .await
        .map_err(|_| ApiError::internal(Flavor::Koban))?;
    match r {
        Ok(e) => {
            tracing::info!(agent = %e.agent, tenant = %e.tenant, "agent enrolled");
            Ok(Json(json!(e)))
        }
        Err(RespondError::Unauthorized(m)) => {
            let mut e = ApiError::unauthorized(Flavor::Koban, false);
            e.detail = Some(m.to_owned());
            Err(e)
        }
        Err(RespondError::Invalid(m)) => Err(ApiError::invalid(m)),
        Err(e) => {
            tracing::error!(error = %e, "enrolment");
            Err(ApiError::internal(Flavor::Koban))
        }
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct PollBody {
    #[serde(default)]
    status: Value,
}

async fn poll(
    State(st): State<AppState>,
    headers: HeaderMap,
    Json(body): Json<PollBody>,
) -> Result<Json<Value>, ApiError> {
    let (b, agent) = agent_auth(&st, &headers).await?;
    let commands = blocking(move || {
        b.poll(&agent, &body.status, now_ms())
            .map_err(respond_error)
    })
    .await?;
    Ok(Json(json!({ "commands": commands })))
}

async fn result(
    State(st): State<AppState>,
    headers: HeaderMap,
    Json(outcome): Json<Outcome>,
) -> Result<Json<Value>, ApiError> {
    let (b, agent) = agent_auth(&st, &headers).await?;
    let v = blocking(move || b.report(&agent, &outcome, now_ms()).map_err(respond_error)).await?;
    Ok(Json(v))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct LogsBody {
    /// The agent's sequence number of the first line.
    first: u64,
    lines: Vec<String>,
}

/// Lines from an agent's spool. Lines the server already holds (a resend after a lost
/// answer) are skipped by their sequence numbers; the rest go to the WAL, and only
/// then is the agent told they are held.
async fn logs(
    State(st): State<AppState>,
    super::Remote(remote): super::Remote,
    headers: HeaderMap,
    Json(body): Json<LogsBody>,
) -> Result<Json<Value>, ApiError> {
    let (b, agent) = agent_auth(&st, &headers).await?;
    if body.first == 0 {
        return Err(ApiError::invalid("first: sequence numbers start at 1"));
    }
    let id = agent.id.clone();
    let b2 = Arc::clone(&b);
    let shipped = blocking(move || b2.shipped(&id).map_err(respond_error)).await?;
    let last = body.first + body.lines.len() as u64 - 1;
    if body.lines.is_empty() || last <= shipped {
        return Ok(Json(json!({ "acked": shipped.max(last) })));
    }
    // Lines first..=shipped are held already.
    let skip = shipped.saturating_sub(body.first - 1) as usize;
    let now = now_ms();
    let source = agent_source(&agent.hostname);
    let records: Vec<Record> = body.lines[skip..]
        .iter()
        .filter(|l| !l.trim().is_empty())
        .map(|l| Record {
            tenant: agent.tenant.clone(),
            source: source.clone(),
            kind: if super::ingest::is_json(l.as_bytes()) {
                RecordKind::NdjsonLine
            } else {
                RecordKind::RawText
            },
            received_ms: now,
            remote,
            payload: l.as_bytes().to_vec(),
        })
        .collect();
    if !records.is_empty() {
        st.intake
            .append(records)
            .await
            .map_err(|e| ApiError::from_intake(e, Flavor::Koban, st.retry_after()))?;
    }
    let id = agent.id.clone();
    blocking(move || b.set_shipped(&id, last).map_err(respond_error)).await?;
    Ok(Json(json!({ "acked": last })))
}

/// The source name of an agent's logs: `agent.<hostname>`, in the characters source
/// names allow.
fn agent_source(hostname: &str) -> String {
    let clean: String = hostname
        .chars()
        .take(48)
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.') {
                c
            } else {
                '_'
            }
        })
        .collect();
    format!("agent.{clean}")
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct TenantBody {
    tenant: String,
}

async fn enrol_token(
    State(st): State<AppState>,
    caller: Caller,
    Json(body): Json<TenantBody>,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    let b = book(&st)?;
    let g = guard(&st, caller)?;
    let tenant = body.tenant;
    let v = blocking(move || {
        g.allow(
            Some(&tenant),
            Access::Administer,
            "agent enrolment token",
            "",
        )?;
        let now = now_ms();
        let token = b.new_enrol_token(&tenant, now).map_err(respond_error)?;
        Ok(json!({ "token": token, "tenant": tenant,
                   "expires_ms": now + crate::respond::ENROL_TOKEN_TTL_MS }))
    })
    .await?;
    Ok((StatusCode::CREATED, Json(v)))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct ListQuery {
    pub(super) tenant: Option<String>,
    pub(super) limit: Option<usize>,
}

async fn agents(
    State(st): State<AppState>,
    caller: Caller,
    Query(q): Query<ListQuery>,
) -> Result<Json<Value>, ApiError> {
    let b = book(&st)?;
    let g = guard(&st, caller)?;
    let v = blocking(move || {
        let tenant = g.narrow(q.tenant)?;
        g.allow(tenant.as_deref(), Access::Read, "agents", "")?;
        b.agents(tenant.as_deref()).map_err(respond_error)
    })
    .await?;
    Ok(Json(json!({ "agents": v })))
}

async fn actions(
    State(st): State<AppState>,
    caller: Caller,
    Query(q): Query<ListQuery>,
) -> Result<Json<Value>, ApiError> {
    let b = book(&st)?;
    let g = guard(&st, caller)?;
    let limit = q.limit.unwrap_or(100).min(1000);
    let v = blocking(move || {
        let tenant = g.narrow(q.tenant)?;
        g.allow(tenant.as_deref(), Access::Read, "actions", "")?;
        b.actions(tenant.as_deref(), limit).map_err(respond_error)
    })
    .await?;
    Ok(Json(json!({ "actions": v })))
}

async fn action(
    State(st): State<AppState>,
    caller: Caller,
    Path(id): Path<i64>,
) -> Result<Json<Value>, ApiError> {
    let b = book(&st)?;
    let g = guard(&st, caller)?;
    let v = blocking(move || {
        let (tenant, v) = b.action(id).map_err(respond_error)?;
        g.allow(Some(&tenant), Access::Read, &format!("action {id}"), "")?;
        Ok(v)
    })
    .await?;
    Ok(Json(v))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RequestBody {
    tenant: String,
    agent: Option<String>,
    action: Value,
    incident: Option<i64>,
    /// Undo this many seconds after the action is verified.
    ttl_s: Option<u64>,
}

async fn request(
    State(st): State<AppState>,
    caller: Caller,
    Json(body): Json<RequestBody>,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    let b = book(&st)?;
    let g = guard(&st, caller)?;
    let state = Arc::clone(&st.state);
    let v = blocking(move || {
        let tenant = body.tenant;
        g.who.allow(Some(&tenant), Access::Respond)?;
        let action = koban_respond::Action::from_json(&body.action.to_string())
            .map_err(|e| TriageError::Invalid(format!("action.{e}")))?;
        let policy = approval_policy(&state, &tenant)?;
        let now = now_ms();
        let gate = policy.gate(g.who.role.actor(), now);
        g.allow(
            Some(&tenant),
            Access::Respond,
            "action",
            &action.to_string(),
        )?;
        let r = ActionRequest {
            tenant,
            agent: body.agent,
            incident: body.incident,
            action,
            ttl_ms: body.ttl_s.map(|s| (s.min(365 * 86_400) * 1000) as i64),
            by: g.who.user.clone(),
            run: None,
        };
        b.request(&r, &gate, now).map_err(respond_error)
    })
    .await?;
    Ok((StatusCode::CREATED, Json(v)))
}

async fn decide(
    State(st): State<AppState>,
    caller: Caller,
    Path((id, decision)): Path<(i64, String)>,
) -> Result<Json<Value>, ApiError> {
    let b = book(&st)?;
    let g = guard(&st, caller)?;
    let state = Arc::clone(&st.state);
    let v = blocking(move || decide_as(&g, &state, &b, id, &decision)).await?;
    Ok(Json(v))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct FileBody {
    number: u64,
    path: String,
    sha256: String,
    data: String,
}

async fn files(
    State(st): State<AppState>,
    headers: HeaderMap,
    Json(body): Json<FileBody>,
) -> Result<Json<Value>, ApiError> {
    use base64::Engine;
    let (b, agent) = agent_auth(&st, &headers).await?;
    let data = base64::engine::general_purpose::STANDARD
        .decode(body.data.trim())
        .map_err(|e| ApiError::invalid(format!("data: not base64: {e}")))?;
    let v = blocking(move || {
        b.store_evidence(
            &agent,
            body.number,
            &body.path,
            &body.sha256,
            &data,
            now_ms(),
        )
        .map_err(respond_error)
    })
    .await?;
    Ok(Json(v))
}

async fn evidence_file(
    State(st): State<AppState>,
    caller: Caller,
    Path((id, index)): Path<(i64, i64)>,
) -> Result<axum::response::Response, ApiError> {
    use axum::response::IntoResponse;
    let b = book(&st)?;
    let g = guard(&st, caller)?;
    let (path, data) = blocking(move || {
        let (tenant, _) = b.action(id).map_err(respond_error)?;
        g.allow(
            Some(&tenant),
            Access::Read,
            &format!("action {id}"),
            &format!("evidence file {index}"),
        )?;
        b.evidence_file(id, index).map_err(respond_error)
    })
    .await?;
    let name: String = path
        .rsplit('/')
        .next()
        .unwrap_or("file")
        .chars()
        .filter(|c| c.is_ascii_alphanumeric() || ".-_".contains(*c))
        .collect();
    Ok((
        [
            (header::CONTENT_TYPE, "application/octet-stream".to_owned()),
            (
                header::CONTENT_DISPOSITION,
                format!("attachment; filename=\"{id}-{index}-{name}\""),
            ),
        ],
        data,
    )
        .into_response())
}
