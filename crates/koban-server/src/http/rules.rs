//! The rule set and what each tenant changes about it, over HTTP, through the caller's
//! [`crate::guard::Guard`].
//!
//! ```text
//! GET    /api/v1/rules?tenant=&q=&limit=          rules with the tenant's overrides
//! POST   /api/v1/rules/reload                     read the rule folders again
//! PUT    /api/v1/tenants/{t}/rules/{rule}         {"enabled": false, "level"?: "low"}
//! GET    /api/v1/tenants/{t}/exceptions
//! POST   /api/v1/exceptions/preview               {tenant, rule, field, value}: past alerts it would suppress
//! POST   /api/v1/exceptions                       {tenant, rule, field, value, expires_ms?, reason}
//! DELETE /api/v1/tenants/{t}/exceptions/{id}
//! PUT    /api/v1/tenants/{t}/assets               [{name, kind: host|user, patterns, criticality}]
//! GET    /api/v1/tenants/{t}/sla
//! PUT    /api/v1/tenants/{t}/sla/{severity}       {detect_s, acknowledge_s, contain_s, resolve_s}
//! GET    /api/v1/openapi.json
//! ```

use axum::extract::{Path, Query, State};
use axum::routing::{delete, get, post, put};
use axum::{Json, Router};
use koban_detect::case::SlaTargets;
use koban_detect::stream::rule_ref;
use koban_detect::Grade;
use serde::Deserialize;
use serde_json::{json, Value};

use super::caller::{denied, Caller};
use super::cases::{blocking, guard};
use super::error::ApiError;
use super::AppState;
use crate::access::Action;
use crate::alerts::{AssetGroup, ExceptionRequest};

pub(super) fn routes() -> Router<AppState> {
    Router::new()
        .route("/api/v1/rules", get(list_rules))
        .route("/api/v1/rules/reload", post(reload))
        .route("/api/v1/tenants/{tenant}/rules/{rule}", put(set_override))
        .route("/api/v1/tenants/{tenant}/exceptions", get(list_exceptions))
        .route(
            "/api/v1/tenants/{tenant}/exceptions/{id}",
            delete(delete_exception),
        )
        .route("/api/v1/exceptions/preview", post(preview))
        .route("/api/v1/exceptions", post(add_exception))
        .route("/api/v1/tenants/{tenant}/assets", put(set_assets))
        .route("/api/v1/tenants/{tenant}/sla", get(get_sla))
        .route("/api/v1/tenants/{tenant}/sla/{severity}", put(set_sla))
        .route("/api/v1/openapi.json", get(openapi))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RulesQuery {
    tenant: Option<String>,
    /// Words that must all occur in the title or key.
    q: Option<String>,
    limit: Option<usize>,
}

async fn list_rules(
    State(st): State<AppState>,
    caller: Caller,
    Query(q): Query<RulesQuery>,
) -> Result<Json<Value>, ApiError> {
    let g = guard(&st, caller)?;
    let Some(src) = st.rules.clone() else {
        return Err(ApiError::not_found("detection is off on this server"));
    };
    let tenant = g
        .narrow(q.tenant.clone())
        .map_err(super::cases::guard_error)?;
    let t = tenant.clone();
    let policy = blocking(move || g.policy(t.as_deref())).await?;
    let set = src.current();
    let words: Vec<String> =
        q.q.as_deref()
            .unwrap_or_default()
            .split_whitespace()
            .map(str::to_lowercase)
            .collect();
    let limit = q.limit.unwrap_or(1000).clamp(1, 100_000);
    let mut out = Vec::new();
    let metas = set
        .rules()
        .iter()
        .map(|r| (&r.meta, false))
        .chain(set.correlations().iter().map(|c| (&c.meta, true)));
    let mut total = 0usize;
    for (meta, correlation) in metas {
        let r = rule_ref(meta);
        let hay = format!("{} {}", r.title, r.key).to_lowercase();
        if !words.iter().all(|w| hay.contains(w)) {
            continue;
        }
        total += 1;
        if out.len() >= limit {
            continue;
        }
        let (enabled, level) = match &tenant {
            Some(t) => (
                policy.enabled(t, &r.key),
                policy.level(t, &r.key, r.level).as_str(),
            ),
            None => (true, r.level.as_str()),
        };
        out.push(json!({
            "rule": r.key, "title": r.title, "level": level, "default_level": r.level.as_str(),
            "enabled": enabled, "tactics": r.tactics, "techniques": r.techniques,
            "correlation": correlation, "file": meta.origin.file.display().to_string(),
        }));
    }
    let summary = src
        .summary
        .read()
        .unwrap_or_else(|p| p.into_inner())
        .clone();
    Ok(Json(
        json!({"summary": summary, "matching": total, "rules": out}),
    ))
}

async fn reload(State(st): State<AppState>, caller: Caller) -> Result<Json<Value>, ApiError> {
    let g = guard(&st, caller)?;
    g.allow(None, Action::Operate, "rules", "reload")
        .map_err(super::cases::guard_error)?;
    let Some(src) = st.rules.clone() else {
        return Err(ApiError::not_found("detection is off on this server"));
    };
    let summary = blocking(move || {
        src.reload().map_err(|e| {
            crate::alerts::TriageError::Invalid(format!("rule reload failed: {e}")).into()
        })
    })
    .await?;
    Ok(Json(json!({"reloaded": true, "summary": summary})))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct OverrideBody {
    enabled: bool,
    level: Option<String>,
}

async fn set_override(
    State(st): State<AppState>,
    caller: Caller,
    Path((tenant, rule)): Path<(String, String)>,
    Json(b): Json<OverrideBody>,
) -> Result<Json<Value>, ApiError> {
    let g = guard(&st, caller)?;
    g.who.allow(Some(&tenant), Action::Read).map_err(denied)?;
    known_tenant(&st, &tenant)?;
    let (t, r) = (tenant.clone(), rule.clone());
    blocking(move || g.set_override(&t, &r, b.enabled, b.level.as_deref())).await?;
    Ok(Json(
        json!({"tenant": tenant, "rule": rule, "updated": true}),
    ))
}

fn known_tenant(st: &AppState, tenant: &str) -> Result<(), ApiError> {
    match st.state.tenants() {
        Ok(ts) if ts.iter().any(|t| t.name == tenant) => Ok(()),
        Ok(_) => Err(ApiError::not_found(format!("no tenant `{tenant}`"))),
        Err(e) => {
            tracing::error!(error = %e, "tenant lookup");
            Err(ApiError::internal(super::error::Flavor::Koban))
        }
    }
}

async fn list_exceptions(
    State(st): State<AppState>,
    caller: Caller,
    Path(tenant): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let g = guard(&st, caller)?;
    let xs = blocking(move || g.exceptions(&tenant)).await?;
    Ok(Json(json!({"exceptions": xs})))
}

async fn delete_exception(
    State(st): State<AppState>,
    caller: Caller,
    Path((tenant, id)): Path<(String, i64)>,
) -> Result<Json<Value>, ApiError> {
    let g = guard(&st, caller)?;
    blocking(move || g.delete_exception(&tenant, id)).await?;
    Ok(Json(json!({"deleted": id})))
}

async fn preview(
    State(st): State<AppState>,
    caller: Caller,
    Json(x): Json<ExceptionRequest>,
) -> Result<Json<Value>, ApiError> {
    let g = guard(&st, caller)?;
    let n = blocking(move || g.preview(&x)).await?;
    Ok(Json(json!({
        "would_have_suppressed": n,
        "note": if n.is_none() { "alerts keep entities, not whole events: no count for other fields" } else { "" },
    })))
}

async fn add_exception(
    State(st): State<AppState>,
    caller: Caller,
    Json(x): Json<ExceptionRequest>,
) -> Result<Json<Value>, ApiError> {
    let g = guard(&st, caller)?;
    g.who.allow(Some(&x.tenant), Action::Read).map_err(denied)?;
    known_tenant(&st, &x.tenant)?;
    let (created, would) = blocking(move || g.add_exception(&x)).await?;
    Ok(Json(
        json!({"exception": created, "would_have_suppressed": would}),
    ))
}

async fn set_assets(
    State(st): State<AppState>,
    caller: Caller,
    Path(tenant): Path<String>,
    Json(groups): Json<Vec<AssetGroup>>,
) -> Result<Json<Value>, ApiError> {
    let g = guard(&st, caller)?;
    g.who.allow(Some(&tenant), Action::Read).map_err(denied)?;
    known_tenant(&st, &tenant)?;
    let n = groups.len();
    blocking(move || g.set_assets(&tenant, &groups)).await?;
    Ok(Json(json!({"asset_groups": n})))
}

async fn get_sla(
    State(st): State<AppState>,
    caller: Caller,
    Path(tenant): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let g = guard(&st, caller)?;
    blocking(move || g.sla(&tenant)).await.map(Json)
}

async fn set_sla(
    State(st): State<AppState>,
    caller: Caller,
    Path((tenant, severity)): Path<(String, String)>,
    Json(t): Json<SlaTargets>,
) -> Result<Json<Value>, ApiError> {
    let guard = guard(&st, caller)?;
    guard
        .who
        .allow(Some(&tenant), Action::Read)
        .map_err(denied)?;
    known_tenant(&st, &tenant)?;
    let Some(g) = Grade::parse(&severity) else {
        return Err(ApiError::invalid(format!(
            "severity `{severity}`: use low, medium, high or critical"
        )));
    };
    blocking(move || guard.set_sla(&tenant, g, &t)).await?;
    Ok(Json(json!({"severity": g.as_str(), "updated": true})))
}

/// The API description, kept beside the code in `openapi.json`.
async fn openapi() -> ([(axum::http::HeaderName, &'static str); 1], &'static str) {
    (
        [(axum::http::header::CONTENT_TYPE, "application/json")],
        include_str!("openapi.json"),
    )
}
