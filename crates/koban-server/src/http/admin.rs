//! Tenants and ingest tokens over the API, for an admin (API token or password).

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::routing::post;
use axum::{Json, Router};
use serde::Deserialize;
use serde_json::{json, Value};

use super::error::{ApiError, Flavor};
use super::{auth, AppState};
use crate::state::StateError;

pub(super) fn routes() -> Router<AppState> {
    Router::new()
        .route("/api/v1/tenants", post(add_tenant).get(list_tenants))
        .route("/api/v1/tokens", post(create_token))
}

fn state_error(e: StateError) -> ApiError {
    let f = Flavor::Koban;
    match e {
        StateError::BadName(_) => {
            ApiError::bad_request(f, "invalid name: tenants use lower-case letters, digits, -, _; sources also . and capitals (1-64)")
        }
        StateError::NoTenant(_) => ApiError::new(StatusCode::NOT_FOUND, f, "no such tenant", 0),
        StateError::TenantExists(_) => {
            ApiError::new(StatusCode::CONFLICT, f, "tenant exists already", 0)
        }
        other => {
            tracing::error!(error = %other, "state operation failed");
            ApiError::internal(f)
        }
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct NewTenant {
    name: String,
}

async fn add_tenant(
    State(st): State<AppState>,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    auth::admin(&st, &headers).await?;
    let req: NewTenant = serde_json::from_slice(&body)
        .map_err(|_| ApiError::bad_request(Flavor::Koban, "expected {\"name\": \"...\"}"))?;
    st.state.add_tenant(&req.name).map_err(state_error)?;
    tracing::info!(tenant = %req.name, "tenant added");
    Ok((StatusCode::CREATED, Json(json!({ "name": req.name }))))
}

async fn list_tenants(
    State(st): State<AppState>,
    headers: HeaderMap,
) -> Result<Json<Value>, ApiError> {
    auth::admin(&st, &headers).await?;
    let tenants = st.state.tenants().map_err(state_error)?;
    Ok(Json(json!({ "tenants": tenants.iter().map(|t| json!({
        "name": t.name, "created_ms": t.created_ms })).collect::<Vec<_>>() })))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct NewToken {
    tenant: String,
    source: String,
}

async fn create_token(
    State(st): State<AppState>,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    auth::admin(&st, &headers).await?;
    let req: NewToken = serde_json::from_slice(&body).map_err(|_| {
        ApiError::bad_request(
            Flavor::Koban,
            "expected {\"tenant\": \"...\", \"source\": \"...\"}",
        )
    })?;
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
