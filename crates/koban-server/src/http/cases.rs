//! Alerts, incidents and their case record over HTTP (JSON). Every handler takes the
//! [`Caller`] and works through a [`Guard`] (tenant scope, role, audit).
//!
//! ```text
//! GET  /api/v1/alerts?tenant=&incident=&rule=&verdict=none|true_positive|..&before=&limit=
//! GET  /api/v1/alerts/{id}                    the alert with its matching events
//! POST /api/v1/alerts/{id}/verdict            {"verdict", "reason", "exception"?: {field, value, expires_ms?}}
//! GET  /api/v1/incidents?tenant=&state=&before=&limit=
//! GET  /api/v1/incidents/{id}                 timeline, tactics, scope, assessment, SLA clocks, log, tasks
//! POST /api/v1/incidents/{id}/state           {"state", "note"?}
//! POST /api/v1/incidents/{id}/assign          {"assignee"}
//! POST /api/v1/incidents/{id}/comments        {"text"} (its side follows the author's role)
//! POST /api/v1/incidents/{id}/evidence        {"url", "note"?}
//! POST /api/v1/incidents/{id}/tasks           {"title"}
//! POST /api/v1/incidents/{id}/tasks/{task}/done
//! GET  /api/v1/detections/summary?tenant=     raw detections per source and rule, totals
//! ```

use axum::extract::{Path, Query, State};
use axum::routing::{get, post};
use axum::{Json, Router};
use koban_detect::{CaseState, Verdict};
use serde::Deserialize;
use serde_json::{json, Value};

use super::caller::{denied, Caller};
use super::error::{ApiError, Flavor};
use super::AppState;
use crate::alerts::{AlertFilter, Annotation, IncidentFilter, TriageError};
use crate::guard::{Guard, GuardError};

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

/// The caller's guard over the alert book.
pub(super) fn guard(st: &AppState, caller: Caller) -> Result<Guard, ApiError> {
    Ok(Guard::new(
        st.alerts.clone(),
        st.state.clone(),
        caller.who,
        caller.remote.map(|r| r.to_string()),
    ))
}

/// Runs a guarded database call off the async threads.
pub(super) async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, GuardError> + Send + 'static,
) -> Result<T, ApiError> {
    match tokio::task::spawn_blocking(f).await {
        Ok(r) => r.map_err(guard_error),
        Err(_) => Err(ApiError::internal(Flavor::Koban)),
    }
}

pub(super) fn guard_error(e: GuardError) -> ApiError {
    match e {
        GuardError::Denied(d) => denied(d),
        GuardError::Triage(TriageError::NotFound(what, id)) => {
            ApiError::not_found(format!("no {what} {id}"))
        }
        GuardError::Triage(TriageError::Invalid(m)) => ApiError::invalid(m),
        GuardError::Triage(TriageError::Db(e)) => {
            tracing::error!(error = %e, "alerts database");
            ApiError::internal(Flavor::Koban)
        }
    }
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
    caller: Caller,
    Query(q): Query<AlertQuery>,
) -> Result<Json<Value>, ApiError> {
    let g = guard(&st, caller)?;
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
    let alerts = blocking(move || g.alerts(f)).await?;
    Ok(Json(json!({ "alerts": alerts })))
}

async fn get_alert(
    State(st): State<AppState>,
    caller: Caller,
    Path(id): Path<i64>,
) -> Result<Json<Value>, ApiError> {
    let g = guard(&st, caller)?;
    blocking(move || g.alert(id)).await.map(Json)
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
    caller: Caller,
    Path(id): Path<i64>,
    Json(b): Json<VerdictBody>,
) -> Result<Json<Value>, ApiError> {
    let g = guard(&st, caller)?;
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
    let x = b.exception.map(|x| (x.field, x.value, x.expires_ms));
    blocking(move || g.verdict(id, v, &b.reason, x))
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
    caller: Caller,
    Query(q): Query<IncidentQuery>,
) -> Result<Json<Value>, ApiError> {
    let g = guard(&st, caller)?;
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
    let incidents = blocking(move || g.incidents(f)).await?;
    Ok(Json(json!({ "incidents": incidents })))
}

async fn get_incident(
    State(st): State<AppState>,
    caller: Caller,
    Path(id): Path<i64>,
) -> Result<Json<Value>, ApiError> {
    let g = guard(&st, caller)?;
    blocking(move || g.incident(id)).await.map(Json)
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
    caller: Caller,
    Path(id): Path<i64>,
    Json(b): Json<StateBody>,
) -> Result<Json<Value>, ApiError> {
    let g = guard(&st, caller)?;
    let Some(to) = CaseState::parse(&b.state) else {
        return Err(ApiError::invalid(format!(
            "state `{}`: use new, triage, contained, eradicated, recovered or closed",
            b.state
        )));
    };
    blocking(move || g.transition(id, to, &b.note)).await?;
    Ok(Json(json!({"incident": id, "state": to.as_str()})))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct AssignBody {
    assignee: String,
}

async fn assign(
    State(st): State<AppState>,
    caller: Caller,
    Path(id): Path<i64>,
    Json(b): Json<AssignBody>,
) -> Result<Json<Value>, ApiError> {
    let g = guard(&st, caller)?;
    if b.assignee.trim().is_empty() {
        return Err(ApiError::invalid("assignee is empty"));
    }
    blocking(move || g.assign(id, &b.assignee)).await?;
    Ok(Json(json!({"incident": id, "assigned": true})))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct CommentBody {
    text: String,
}

async fn comment(
    State(st): State<AppState>,
    caller: Caller,
    Path(id): Path<i64>,
    Json(b): Json<CommentBody>,
) -> Result<Json<Value>, ApiError> {
    let g = guard(&st, caller)?;
    blocking(move || {
        let side = g.side();
        g.annotate(
            id,
            Annotation::Comment {
                text: &b.text,
                side,
            },
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
    caller: Caller,
    Path(id): Path<i64>,
    Json(b): Json<EvidenceBody>,
) -> Result<Json<Value>, ApiError> {
    let g = guard(&st, caller)?;
    blocking(move || {
        g.annotate(
            id,
            Annotation::Evidence {
                url: &b.url,
                note: &b.note,
            },
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
    caller: Caller,
    Path(id): Path<i64>,
    Json(b): Json<TaskBody>,
) -> Result<Json<Value>, ApiError> {
    let g = guard(&st, caller)?;
    let task = blocking(move || g.annotate(id, Annotation::Task { title: &b.title })).await?;
    Ok(Json(json!({"incident": id, "task": task})))
}

async fn task_done(
    State(st): State<AppState>,
    caller: Caller,
    Path((id, task)): Path<(i64, i64)>,
) -> Result<Json<Value>, ApiError> {
    let g = guard(&st, caller)?;
    blocking(move || g.finish_task(id, task)).await?;
    Ok(Json(json!({"incident": id, "task": task, "done": true})))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct SummaryQuery {
    tenant: String,
}

async fn summary(
    State(st): State<AppState>,
    caller: Caller,
    Query(q): Query<SummaryQuery>,
) -> Result<Json<Value>, ApiError> {
    let g = guard(&st, caller)?;
    blocking(move || g.summary(&q.tenant)).await.map(Json)
}
