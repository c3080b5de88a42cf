//! Alerts, incidents and their case record over HTTP (JSON). Admin only until the
//! console issue brings per-tenant roles; every handler goes through [`book`], which
//! is where those checks will sit.
//!
//! ```text
//! GET  /api/v1/alerts?tenant=&incident=&rule=&verdict=none|true_positive|..&before=&limit=
//! GET  /api/v1/alerts/{id}                    the alert with its matching events
//! POST /api/v1/alerts/{id}/verdict            {"verdict", "reason", "exception"?: {field, value, expires_ms?}}
//! GET  /api/v1/incidents?tenant=&state=&before=&limit=
//! GET  /api/v1/incidents/{id}                 timeline, tactics, scope, assessment, SLA clocks, log, tasks
//! POST /api/v1/incidents/{id}/state           {"state", "note"?}
//! POST /api/v1/incidents/{id}/assign          {"assignee"}
//! POST /api/v1/incidents/{id}/comments        {"text", "side"?: "provider"|"customer"}
//! POST /api/v1/incidents/{id}/evidence        {"url", "note"?}
//! POST /api/v1/incidents/{id}/tasks           {"title"}
//! POST /api/v1/incidents/{id}/tasks/{task}/done
//! GET  /api/v1/detections/summary?tenant=     raw detections per source and rule, totals
//! ```

use std::sync::Arc;

use axum::extract::{Path, Query, State};
use axum::http::HeaderMap;
use axum::routing::{get, post};
use axum::{Json, Router};
use koban_detect::{CaseState, Verdict};
use serde::Deserialize;
use serde_json::{json, Value};

use super::error::ApiError;
use super::{auth, AppState};
use crate::alerts::{
    AlertBook, AlertFilter, AlertsError, Annotation, ExceptionRequest, IncidentFilter, TriageError,
};
use crate::state::now_ms;

pub(super) fn routes() -> Router<AppState> {
    Router::new()
        .route("/api/v1/alerts", get(list_alerts))
        .route("/api/v1/alerts/{id}", get(get_alert))
        .route("/api/v1/alerts/{id}/verdict", post(verdict))
        .route("/api/v1/incidents", get(list_incidents))
        .route("/api/v1/incidents/{id}", get(get_incident))
        .route("/api/v1/incidents/{id}/state", post(state))
        .route("/api/v1/incidents/{id}/assign", post(assign))
        .route("/api/v1/incidents/{id}/comments", post(comment))
        .route("/api/v1/incidents/{id}/evidence", post(evidence))
        .route("/api/v1/incidents/{id}/tasks", post(task))
        .route("/api/v1/incidents/{id}/tasks/{task}/done", post(task_done))
        .route("/api/v1/detections/summary", get(summary))
}

/// Checks the caller and hands back the alert book and who is asking.
pub(super) async fn book(
    st: &AppState,
    headers: &HeaderMap,
) -> Result<(Arc<AlertBook>, String), ApiError> {
    let who = auth::admin(st, headers).await?;
    let book = st.alerts.clone().ok_or_else(|| {
        ApiError::not_found("detection is off on this server: no alerts or incidents")
    })?;
    Ok((book, who))
}

/// Runs a database call off the async threads.
pub(super) async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, TriageError> + Send + 'static,
) -> Result<T, ApiError> {
    match tokio::task::spawn_blocking(f).await {
        Ok(r) => r.map_err(triage_error),
        Err(_) => Err(ApiError::internal(super::error::Flavor::Koban)),
    }
}

pub(super) fn triage_error(e: TriageError) -> ApiError {
    match e {
        TriageError::NotFound(what, id) => ApiError::not_found(format!("no {what} {id}")),
        TriageError::Invalid(m) => ApiError::invalid(m),
        TriageError::Db(e) => {
            tracing::error!(error = %e, "alerts database");
            ApiError::internal(super::error::Flavor::Koban)
        }
    }
}

fn db(e: AlertsError) -> TriageError {
    TriageError::Db(e)
}

const DEFAULT_LIMIT: usize = 100;
const MAX_LIMIT: usize = 10_000;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct AlertQuery {
    tenant: Option<String>,
    incident: Option<i64>,
    rule: Option<String>,
    verdict: Option<String>,
    before: Option<i64>,
    limit: Option<usize>,
}

async fn list_alerts(
    State(st): State<AppState>,
    headers: HeaderMap,
    Query(q): Query<AlertQuery>,
) -> Result<Json<Value>, ApiError> {
    let (book, _) = book(&st, &headers).await?;
    if let Some(v) = &q.verdict {
        if v != "none" && Verdict::parse(v).is_none() {
            return Err(ApiError::invalid(format!(
                "verdict `{v}`: use none, true_positive, false_positive, benign or duplicate"
            )));
        }
    }
    let f = AlertFilter {
        tenant: q.tenant,
        incident: q.incident,
        rule: q.rule,
        verdict: q.verdict,
        before_id: q.before,
        limit: q.limit.unwrap_or(DEFAULT_LIMIT).clamp(1, MAX_LIMIT),
    };
    let alerts = blocking(move || book.alerts(&f).map_err(db)).await?;
    Ok(Json(json!({ "alerts": alerts })))
}

async fn get_alert(
    State(st): State<AppState>,
    headers: HeaderMap,
    Path(id): Path<i64>,
) -> Result<Json<Value>, ApiError> {
    let (book, _) = book(&st, &headers).await?;
    blocking(move || book.alert(id).map_err(db))
        .await?
        .map(Json)
        .ok_or_else(|| ApiError::not_found(format!("no alert {id}")))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct VerdictBody {
    verdict: String,
    #[serde(default)]
    reason: String,
    exception: Option<ExceptionScope>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ExceptionScope {
    field: String,
    value: String,
    expires_ms: Option<i64>,
}

/// A verdict; with `exception`, a false positive also becomes a scoped exception of
/// the alert's rule, and the answer says how many past alerts it would have suppressed.
async fn verdict(
    State(st): State<AppState>,
    headers: HeaderMap,
    Path(id): Path<i64>,
    Json(b): Json<VerdictBody>,
) -> Result<Json<Value>, ApiError> {
    let (book, who) = book(&st, &headers).await?;
    let Some(v) = Verdict::parse(&b.verdict) else {
        return Err(ApiError::invalid(format!(
            "verdict `{}`: use true_positive, false_positive, benign or duplicate",
            b.verdict
        )));
    };
    if b.exception.is_some() && v != Verdict::FalsePositive && v != Verdict::Benign {
        return Err(ApiError::invalid(
            "an exception goes with a false_positive or benign verdict",
        ));
    }
    blocking(move || {
        let now = now_ms();
        let alert = book
            .alert(id)
            .map_err(db)?
            .ok_or(TriageError::NotFound("alert", id))?;
        let incident = book.set_verdict(id, v, &b.reason, &who, now)?;
        let mut out = json!({"alert": id, "verdict": v.as_str(), "incident": incident});
        if let Some(x) = b.exception {
            let req = ExceptionRequest {
                tenant: alert["tenant"].as_str().unwrap_or_default().to_owned(),
                rule: alert["rule"].as_str().unwrap_or_default().to_owned(),
                field: x.field,
                value: x.value,
                expires_ms: x.expires_ms,
                reason: if b.reason.is_empty() {
                    format!("verdict {} on alert {id}", v.as_str())
                } else {
                    b.reason.clone()
                },
            };
            let would = book.exception_preview(&req)?;
            let created = book.add_exception(&req, &who, now)?;
            out["exception"] = json!(created);
            out["would_have_suppressed"] = json!(would);
        }
        Ok(out)
    })
    .await
    .map(Json)
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct IncidentQuery {
    tenant: Option<String>,
    state: Option<String>,
    before: Option<i64>,
    limit: Option<usize>,
}

async fn list_incidents(
    State(st): State<AppState>,
    headers: HeaderMap,
    Query(q): Query<IncidentQuery>,
) -> Result<Json<Value>, ApiError> {
    let (book, _) = book(&st, &headers).await?;
    if let Some(s) = &q.state {
        if CaseState::parse(s).is_none() {
            return Err(ApiError::invalid(format!(
                "state `{s}`: use new, triage, contained, eradicated, recovered or closed"
            )));
        }
    }
    let f = IncidentFilter {
        tenant: q.tenant,
        state: q.state,
        before_id: q.before,
        limit: q.limit.unwrap_or(DEFAULT_LIMIT).clamp(1, MAX_LIMIT),
    };
    let incidents = blocking(move || book.incidents(&f).map_err(db)).await?;
    Ok(Json(json!({ "incidents": incidents })))
}

async fn get_incident(
    State(st): State<AppState>,
    headers: HeaderMap,
    Path(id): Path<i64>,
) -> Result<Json<Value>, ApiError> {
    let (book, _) = book(&st, &headers).await?;
    blocking(move || book.incident(id, now_ms()).map_err(db))
        .await?
        .map(Json)
        .ok_or_else(|| ApiError::not_found(format!("no incident {id}")))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct StateBody {
    state: String,
    #[serde(default)]
    note: String,
}

async fn state(
    State(st): State<AppState>,
    headers: HeaderMap,
    Path(id): Path<i64>,
    Json(b): Json<StateBody>,
) -> Result<Json<Value>, ApiError> {
    let (book, who) = book(&st, &headers).await?;
    let Some(to) = CaseState::parse(&b.state) else {
        return Err(ApiError::invalid(format!(
            "state `{}`: use new, triage, contained, eradicated, recovered or closed",
            b.state
        )));
    };
    blocking(move || book.transition(id, to, &who, &b.note, now_ms())).await?;
    Ok(Json(json!({"incident": id, "state": to.as_str()})))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct AssignBody {
    assignee: String,
}

async fn assign(
    State(st): State<AppState>,
    headers: HeaderMap,
    Path(id): Path<i64>,
    Json(b): Json<AssignBody>,
) -> Result<Json<Value>, ApiError> {
    let (book, who) = book(&st, &headers).await?;
    if b.assignee.trim().is_empty() {
        return Err(ApiError::invalid("assignee is empty"));
    }
    blocking(move || book.assign(id, &b.assignee, &who, now_ms())).await?;
    Ok(Json(json!({"incident": id, "assigned": true})))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct CommentBody {
    text: String,
    side: Option<String>,
}

async fn comment(
    State(st): State<AppState>,
    headers: HeaderMap,
    Path(id): Path<i64>,
    Json(b): Json<CommentBody>,
) -> Result<Json<Value>, ApiError> {
    let (book, who) = book(&st, &headers).await?;
    let side = b.side.unwrap_or_else(|| "provider".into());
    if side != "provider" && side != "customer" {
        return Err(ApiError::invalid(format!(
            "side `{side}`: use provider or customer"
        )));
    }
    blocking(move || {
        book.annotate(
            id,
            Annotation::Comment {
                text: &b.text,
                side: &side,
            },
            &who,
            now_ms(),
        )
    })
    .await?;
    Ok(Json(json!({"incident": id, "commented": true})))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct EvidenceBody {
    url: String,
    #[serde(default)]
    note: String,
}

async fn evidence(
    State(st): State<AppState>,
    headers: HeaderMap,
    Path(id): Path<i64>,
    Json(b): Json<EvidenceBody>,
) -> Result<Json<Value>, ApiError> {
    let (book, who) = book(&st, &headers).await?;
    blocking(move || {
        book.annotate(
            id,
            Annotation::Evidence {
                url: &b.url,
                note: &b.note,
            },
            &who,
            now_ms(),
        )
    })
    .await?;
    Ok(Json(json!({"incident": id, "evidence": true})))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct TaskBody {
    title: String,
}

async fn task(
    State(st): State<AppState>,
    headers: HeaderMap,
    Path(id): Path<i64>,
    Json(b): Json<TaskBody>,
) -> Result<Json<Value>, ApiError> {
    let (book, who) = book(&st, &headers).await?;
    let task =
        blocking(move || book.annotate(id, Annotation::Task { title: &b.title }, &who, now_ms()))
            .await?;
    Ok(Json(json!({"incident": id, "task": task})))
}

async fn task_done(
    State(st): State<AppState>,
    headers: HeaderMap,
    Path((id, task)): Path<(i64, i64)>,
) -> Result<Json<Value>, ApiError> {
    let (book, who) = book(&st, &headers).await?;
    blocking(move || book.finish_task(id, task, &who, now_ms())).await?;
    Ok(Json(json!({"incident": id, "task": task, "done": true})))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct SummaryQuery {
    tenant: String,
}

async fn summary(
    State(st): State<AppState>,
    headers: HeaderMap,
    Query(q): Query<SummaryQuery>,
) -> Result<Json<Value>, ApiError> {
    let (book, _) = book(&st, &headers).await?;
    blocking(move || book.detection_summary(&q.tenant).map_err(db))
        .await
        .map(Json)
}
