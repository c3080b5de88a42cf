//! Playbooks over HTTP.
//!
//! ```text
//! GET    /api/v1/playbooks?tenant=            the playbooks a tenant runs (its own and every tenant's)
//! POST   /api/v1/playbooks                    {"tenant": T | "*", "yaml"} → 201, or 400 {"errors":[{path,message}]}
//! DELETE /api/v1/playbooks/{tenant}/{id}      ("*" for a playbook of every tenant)
//! GET    /api/v1/playbook-runs?tenant=&limit= runs, newest first, with their outcomes
//! ```
//!
//! A tenant's admin writes its playbooks; a provider admin also those every tenant
//! runs. The YAML is checked whole before it is kept.

use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::routing::{delete, get};
use axum::{Json, Router};
use serde::Deserialize;
use serde_json::{json, Value};

use super::caller::Caller;
use super::cases::{blocking, guard};
use super::error::ApiError;
use super::respond::{book, ListQuery};
use super::AppState;
use crate::access::Action as Access;
use crate::respond::{respond_error, ALL_TENANTS};
use crate::state::now_ms;

pub(super) fn routes() -> Router<AppState> {
    Router::new()
        .route("/api/v1/playbooks", get(list).post(put))
        .route("/api/v1/playbooks/{tenant}/{id}", delete(remove))
        .route("/api/v1/playbook-runs", get(runs))
}

/// The tenant a playbook is kept under, as the access check sees it.
fn scope(tenant: &str) -> Option<&str> {
    (tenant != ALL_TENANTS).then_some(tenant)
}

async fn list(
    State(st): State<AppState>,
    caller: Caller,
    Query(q): Query<ListQuery>,
) -> Result<Json<Value>, ApiError> {
    let b = book(&st)?;
    let g = guard(&st, caller)?;
    let v = blocking(move || {
        let tenant = g.narrow(q.tenant)?;
        g.allow(tenant.as_deref(), Access::Read, "playbooks", "")?;
        b.playbooks(tenant.as_deref()).map_err(respond_error)
    })
    .await?;
    Ok(Json(json!({ "playbooks": v })))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct PutBody {
    tenant: String,
    yaml: String,
}

async fn put(
    State(st): State<AppState>,
    caller: Caller,
    Json(body): Json<PutBody>,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    let b = book(&st)?;
    let g = guard(&st, caller)?;
    blocking(move || {
        g.allow(
            scope(&body.tenant),
            Access::Administer,
            "playbook",
            &format!("tenant {}", body.tenant),
        )?;
        Ok(
            match b.put_playbook(&body.tenant, &body.yaml, &g.who.user, now_ms()) {
                Ok(v) => (StatusCode::CREATED, Json(v)),
                Err(errors) => {
                    let errors: Vec<Value> = errors
                        .iter()
                        .map(|e| json!({ "path": e.path, "message": e.message }))
                        .collect();
                    let n = errors.len();
                    (
                        StatusCode::BAD_REQUEST,
                        Json(json!({ "error": format!("the playbook has {n} errors"), "errors": errors })),
                    )
                }
            },
        )
    })
    .await
}

async fn remove(
    State(st): State<AppState>,
    caller: Caller,
    Path((tenant, id)): Path<(String, String)>,
) -> Result<Json<Value>, ApiError> {
    let b = book(&st)?;
    let g = guard(&st, caller)?;
    blocking(move || {
        g.allow(
            scope(&tenant),
            Access::Administer,
            &format!("playbook {id}"),
            "delete",
        )?;
        b.delete_playbook(&tenant, &id).map_err(respond_error)?;
        Ok(Json(json!({ "deleted": id, "tenant": tenant })))
    })
    .await
}

async fn runs(
    State(st): State<AppState>,
    caller: Caller,
    Query(q): Query<ListQuery>,
) -> Result<Json<Value>, ApiError> {
    let b = book(&st)?;
    let g = guard(&st, caller)?;
    let limit = q.limit.unwrap_or(100).min(1000);
    let v = blocking(move || {
        let tenant = g.narrow(q.tenant)?;
        g.allow(tenant.as_deref(), Access::Read, "playbook runs", "")?;
        b.runs(tenant.as_deref(), limit).map_err(respond_error)
    })
    .await?;
    Ok(Json(json!({ "runs": v })))
}
