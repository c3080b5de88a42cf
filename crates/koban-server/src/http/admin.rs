//! Tenants, users, ingest tokens and the audit log over the API, each checked and
//! audited through the caller's guard.
//!
//! ```text
//! GET  /api/v1/me
//! POST /api/v1/tenants            {"name", "service"?: "fully_managed"|"semi_managed"}   provider admin
//! GET  /api/v1/tenants            all for provider users, one's own for customers
//! PUT  /api/v1/tenants/{t}/service {"service"}                                          provider admin
//! PUT  /api/v1/tenants/{t}/approval {"timeout_s"?, "escalate_to"?}                       tenant admin
//! POST /api/v1/tokens             {"tenant", "source"}                                  tenant admin
//! GET  /api/v1/users?tenant=
//! POST /api/v1/users              {"name", "password", "role", "tenant"?}
//! GET  /api/v1/audit?tenant=&format=json|csv&limit=                                     tenant admin
//! ```

use axum::extract::{Path, Query, State};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post, put};
use axum::{Json, Router};
use serde::Deserialize;
use serde_json::{json, Value};

use super::caller::Caller;
use super::cases::{guard, guard_error};
use super::error::{ApiError, Flavor};
use super::AppState;
use crate::access::{Action, Role};
use crate::state::StateError;

pub(super) fn routes() -> Router<AppState> {
    Router::new()
        .route("/api/v1/me", get(me))
        .route("/api/v1/tenants", post(add_tenant).get(list_tenants))
        .route("/api/v1/tenants/{tenant}/service", put(set_service))
        .route("/api/v1/tenants/{tenant}/approval", put(set_approval))
        .route("/api/v1/tokens", post(create_token))
        .route("/api/v1/users", post(add_user).get(list_users))
        .route("/api/v1/audit", get(audit))
}

pub(super) fn state_error(e: StateError) -> ApiError {
    let f = Flavor::Koban;
    match e {
        StateError::BadName(_) => {
            ApiError::bad_request(f, "invalid name: tenants use lower-case letters, digits, -, _; sources also . and capitals (1-64)")
        }
        StateError::NoTenant(t) => ApiError::not_found(format!("no tenant `{t}`")),
        StateError::TenantExists(_) => {
            ApiError::new(StatusCode::CONFLICT, f, "tenant exists already", 0)
        }
        StateError::Invalid(m) => ApiError::invalid(m),
        other => {
            tracing::error!(error = %other, "state operation failed");
            ApiError::internal(f)
        }
    }
}

fn body<T: serde::de::DeserializeOwned>(bytes: &[u8], shape: &'static str) -> Result<T, ApiError> {
    serde_json::from_slice(bytes).map_err(|e| ApiError::invalid(format!("expected {shape}: {e}")))
}

async fn me(caller: Caller) -> Json<Value> {
    Json(json!({
        "user": caller.who.user, "role": caller.who.role, "tenant": caller.who.tenant,
        "lang": caller.who.lang,
    }))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct NewTenant {
    name: String,
    service: Option<String>,
}

async fn add_tenant(
    State(st): State<AppState>,
    caller: Caller,
    bytes: axum::body::Bytes,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    let req: NewTenant = body(&bytes, r#"{"name": "...", "service"?: "..."}"#)?;
    let g = guard(&st, caller)?;
    g.allow(
        None,
        Action::Operate,
        &format!("tenant {}", req.name),
        "create",
    )
    .map_err(guard_error)?;
    st.state.add_tenant(&req.name).map_err(state_error)?;
    if let Some(s) = &req.service {
        st.state.set_service(&req.name, s).map_err(state_error)?;
    }
    tracing::info!(tenant = %req.name, "tenant added");
    Ok((StatusCode::CREATED, Json(json!({ "name": req.name }))))
}

async fn list_tenants(State(st): State<AppState>, caller: Caller) -> Result<Json<Value>, ApiError> {
    let scope = caller.who.scope().map(str::to_owned);
    let tenants = st.state.tenants().map_err(state_error)?;
    let mut out = Vec::new();
    for t in tenants {
        if scope.as_deref().is_some_and(|own| own != t.name) {
            continue;
        }
        let service = st.state.service(&t.name).map_err(state_error)?;
        out.push(json!({"name": t.name, "created_ms": t.created_ms, "service": service}));
    }
    Ok(Json(json!({ "tenants": out })))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Service {
    service: String,
}

async fn set_service(
    State(st): State<AppState>,
    caller: Caller,
    Path(tenant): Path<String>,
    bytes: axum::body::Bytes,
) -> Result<Json<Value>, ApiError> {
    let req: Service = body(&bytes, r#"{"service": "fully_managed" | "semi_managed"}"#)?;
    let g = guard(&st, caller)?;
    g.allow(Some(&tenant), Action::Operate, "service type", &req.service)
        .map_err(guard_error)?;
    st.state
        .set_service(&tenant, &req.service)
        .map_err(state_error)?;
    Ok(Json(json!({"tenant": tenant, "service": req.service})))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Approval {
    /// How long a request waits before it escalates, and again before it expires.
    timeout_s: Option<u64>,
    /// Who is told when a request escalates (an on-call address, a rota name).
    escalate_to: Option<String>,
}

async fn set_approval(
    State(st): State<AppState>,
    caller: Caller,
    Path(tenant): Path<String>,
    bytes: axum::body::Bytes,
) -> Result<Json<Value>, ApiError> {
    let req: Approval = body(&bytes, r#"{"timeout_s"?: 1800, "escalate_to"?: "..."}"#)?;
    if let Some(t) = req.timeout_s {
        if !(60..=7 * 86_400).contains(&t) {
            return Err(ApiError::invalid(format!(
                "timeout_s: {t}: from 60 s to 7 days"
            )));
        }
    }
    if req
        .escalate_to
        .as_deref()
        .is_some_and(|e| e.len() > 256 || e.trim().is_empty())
    {
        return Err(ApiError::invalid("escalate_to: 1 to 256 characters"));
    }
    let g = guard(&st, caller)?;
    let detail = format!(
        "timeout {:?} s, escalate to {:?}",
        req.timeout_s, req.escalate_to
    );
    g.allow(
        Some(&tenant),
        Action::Administer,
        "approval settings",
        &detail,
    )
    .map_err(guard_error)?;
    st.state
        .set_approval(
            &tenant,
            req.timeout_s.map(|s| s as i64 * 1000),
            req.escalate_to.as_deref(),
        )
        .map_err(state_error)?;
    Ok(Json(
        json!({"tenant": tenant, "timeout_s": req.timeout_s, "escalate_to": req.escalate_to}),
    ))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct NewToken {
    tenant: String,
    source: String,
}

async fn create_token(
    State(st): State<AppState>,
    caller: Caller,
    bytes: axum::body::Bytes,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    let req: NewToken = body(&bytes, r#"{"tenant": "...", "source": "..."}"#)?;
    let g = guard(&st, caller)?;
    g.allow(
        Some(&req.tenant),
        Action::Administer,
        "ingest token",
        &req.source,
    )
    .map_err(guard_error)?;
    let token = st
        .state
        .create_ingest_token(&req.tenant, &req.source)
        .map_err(state_error)?;
    tracing::info!(tenant = %req.tenant, source = %req.source, "ingest token created");
    Ok((
        StatusCode::CREATED,
        Json(json!({ "token": token, "tenant": req.tenant, "source": req.source })),
    ))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct NewUser {
    name: String,
    password: String,
    role: String,
    tenant: Option<String>,
}

async fn add_user(
    State(st): State<AppState>,
    caller: Caller,
    bytes: axum::body::Bytes,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    let req: NewUser = body(
        &bytes,
        r#"{"name": "...", "password": "...", "role": "...", "tenant"?: "..."}"#,
    )?;
    let Some(role) = Role::parse(&req.role) else {
        return Err(ApiError::invalid(format!(
            "role `{}`: use provider_admin, provider_analyst, customer_admin, customer_analyst or customer_viewer",
            req.role
        )));
    };
    guard(&st, caller)?
        .allow_new_user(&req.name, role, req.tenant.as_deref())
        .map_err(guard_error)?;
    let state = st.state.clone();
    let (name, password, t) = (req.name.clone(), req.password, req.tenant.clone());
    tokio::task::spawn_blocking(move || state.create_user(&name, &password, role, t.as_deref()))
        .await
        .map_err(|_| ApiError::internal(Flavor::Koban))?
        .map_err(state_error)?;
    Ok((
        StatusCode::CREATED,
        Json(json!({"user": req.name, "role": role, "tenant": req.tenant})),
    ))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct TenantQuery {
    tenant: Option<String>,
    format: Option<String>,
    limit: Option<usize>,
}

async fn list_users(
    State(st): State<AppState>,
    caller: Caller,
    Query(q): Query<TenantQuery>,
) -> Result<Json<Value>, ApiError> {
    let tenant = guard(&st, caller)?
        .administer(q.tenant, "users", "")
        .map_err(guard_error)?;
    let users = st.state.users(tenant.as_deref()).map_err(state_error)?;
    Ok(Json(json!({ "users": users })))
}

/// The audit log of a tenant (its admin) or of everything (provider admin), as JSON
/// or CSV.
async fn audit(
    State(st): State<AppState>,
    caller: Caller,
    Query(q): Query<TenantQuery>,
) -> Result<Response, ApiError> {
    let tenant = guard(&st, caller)?
        .administer(q.tenant, "audit log", "export")
        .map_err(guard_error)?;
    let entries = st
        .state
        .audit_log(
            tenant.as_deref(),
            q.limit.unwrap_or(10_000).clamp(1, 1_000_000),
        )
        .map_err(state_error)?;
    if q.format.as_deref() == Some("csv") {
        let mut out = String::from("id,at_ms,user,role,tenant,action,object,detail,remote\n");
        for e in &entries {
            let cells = [
                e.id.to_string(),
                e.at_ms.to_string(),
                e.user.clone(),
                e.role.clone(),
                e.tenant.clone().unwrap_or_default(),
                e.action.clone(),
                e.object.clone(),
                e.detail.clone(),
                e.remote.clone().unwrap_or_default(),
            ];
            let row: Vec<String> = cells.iter().map(|c| csv_cell(c)).collect();
            out.push_str(&row.join(","));
            out.push('\n');
        }
        return Ok(([(header::CONTENT_TYPE, "text/csv; charset=utf-8")], out).into_response());
    }
    Ok(Json(json!({ "audit": entries })).into_response())
}

/// A CSV cell, quoted when it holds a comma, quote or line break; a leading `=`, `+`,
/// `-` or `@` is defused so spreadsheets do not run it as a formula.
fn csv_cell(s: &str) -> String {
    let s = if s.starts_with(['=', '+', '-', '@']) {
        format!("'{s}")
    } else {
        s.to_owned()
    };
    if s.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", s.replace('"', "\"\""))
    } else {
        s
    }
}
