//! Hunting over HTTP: queries, retro-hunts, timelines, saved searches and history.
//!
//! ```text
//! POST /api/v1/hunt          {"tenant", "query", "from"?, "to"?}        NDJSON, streamed:
//!        {"progress":{"done","total"}} … {"events":[…]} | {"columns":[…]} {"rows":[…]} …
//!        {"summary":{"matched","returned","notes",…}}  or  {"error":…,"position":…}
//! POST /api/v1/retrohunt     {"tenant", "from"?, "to"?, "rules"?: [ids], "sigma"?: "yaml"}
//!        NDJSON, streamed: progress lines, then {"report":{…}}
//! GET  /api/v1/timeline?tenant=&kind=host|user|ip|process|hash|domain&value=&from=&to=&limit=&format=json|csv
//! GET  /api/v1/searches?tenant=          POST /api/v1/searches {"tenant","name","query"}
//! DELETE /api/v1/searches/{id}           GET  /api/v1/searches/history?tenant=&limit=
//! ```
//!
//! A query that does not parse is a 400 naming the byte where it went wrong, with a
//! caret line under the query; one that fails while running ends its stream with an
//! `error` line (the status was already sent).

use std::convert::Infallible;

use axum::body::{Body, Bytes};
use axum::extract::{Path, Query, State};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, get, post};
use axum::{Json, Router};
use serde::Deserialize;
use serde_json::{json, Value};
use tokio::sync::mpsc;

use super::caller::Caller;
use super::cases::{blocking, guard};
use super::error::{ApiError, Flavor};
use super::AppState;
use crate::hunt::retro::{retro_hunt, RetroRequest, RetroRules};
use crate::hunt::saved::Ran;
use crate::hunt::{exec, timeline, HuntError, HuntRequest, Output};
use crate::state::now_ms;

pub(super) fn routes() -> Router<AppState> {
    Router::new()
        .route("/api/v1/hunt", post(hunt))
        .route("/api/v1/retrohunt", post(retro))
        .route("/api/v1/timeline", get(timeline_route))
        .route("/api/v1/searches", get(list_saved).post(save))
        .route("/api/v1/searches/history", get(history))
        .route("/api/v1/searches/{id}", delete(delete_saved))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct HuntBody {
    tenant: String,
    query: String,
    from: Option<Value>,
    to: Option<Value>,
}

/// A time bound: milliseconds since the epoch or an RFC 3339 / log-style string.
pub(crate) fn millis(v: &Option<Value>, name: &str) -> Result<Option<i64>, ApiError> {
    let bad = || ApiError::invalid(format!("{name}: use milliseconds or RFC 3339"));
    match v {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Number(n)) => n.as_i64().map(Some).ok_or_else(bad),
        Some(Value::String(s)) if s.is_empty() => Ok(None),
        Some(Value::String(s)) => koban_event::parse_timestamp(s).map(Some).ok_or_else(bad),
        Some(_) => Err(bad()),
    }
}

/// The `tenant` of a JSON body, read before anything else is checked.
fn tenant_of(body: &[u8]) -> Result<String, ApiError> {
    serde_json::from_slice::<Value>(body)
        .ok()
        .and_then(|v| v["tenant"].as_str().map(str::to_owned))
        .ok_or_else(|| ApiError::invalid("the body needs a \"tenant\""))
}

/// 400 for a query that does not parse or cannot run as written.
fn query_error(query: &str, pos: usize, message: &str) -> Response {
    let e = koban_hunt::QueryError {
        pos,
        message: message.to_owned(),
    };
    (
        StatusCode::BAD_REQUEST,
        Json(json!({
            "error": e.to_string(), "position": pos, "message": message,
            "caret": e.caret(query),
        })),
    )
        .into_response()
}

fn searcher(st: &AppState) -> Result<koban_store::StoreSearcher, ApiError> {
    st.search.clone().ok_or_else(|| {
        ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            Flavor::Koban,
            "this server has no event store",
            0,
        )
    })
}

/// An NDJSON response fed line by line from a blocking task.
fn ndjson_stream(rx: mpsc::Receiver<Value>) -> Response {
    let stream = futures_util::stream::unfold(rx, |mut rx| async move {
        let v = rx.recv().await?;
        let mut line = v.to_string();
        line.push('\n');
        Some((Ok::<_, Infallible>(Bytes::from(line)), rx))
    });
    Response::builder()
        .header(header::CONTENT_TYPE, "application/x-ndjson")
        .header(header::CACHE_CONTROL, "no-store")
        .body(Body::from_stream(stream))
        .unwrap_or_else(|_| ApiError::internal(Flavor::Koban).into_response())
}

async fn hunt(State(st): State<AppState>, caller: Caller, body: Bytes) -> Response {
    match hunt_inner(st, caller, body).await {
        Ok(r) => r,
        Err(e) => e.into_response(),
    }
}

async fn hunt_inner(st: AppState, caller: Caller, body: Bytes) -> Result<Response, ApiError> {
    // Access first: a refusal must not depend on the rest of the body being right.
    let g = guard(&st, caller)?;
    let tenant = tenant_of(&body)?;
    let q = serde_json::from_slice::<Value>(&body)
        .ok()
        .and_then(|v| v["query"].as_str().map(str::to_owned))
        .unwrap_or_default();
    let g = blocking(move || g.hunt(&tenant, &q).map(|()| g)).await?;
    let b: HuntBody = serde_json::from_slice(&body).map_err(|e| {
        ApiError::invalid(format!(
            "expected {{\"tenant\", \"query\", \"from\"?, \"to\"?}}: {e}"
        ))
    })?;
    let searcher = searcher(&st)?;
    let from_ms = millis(&b.from, "from")?;
    let to_ms = millis(&b.to, "to")?;
    let started = now_ms();
    let query = match koban_hunt::parse(&b.query) {
        Ok(q) => q,
        Err(e) => {
            let text = b.query.clone();
            let tenant = b.tenant.clone();
            let message = e.to_string();
            tokio::task::spawn_blocking(move || {
                g.log_query(Ran {
                    tenant: &tenant,
                    who: "",
                    query: &text,
                    at_ms: started,
                    took_ms: 0,
                    matched: None,
                    error: Some(&message),
                })
            });
            return Ok(query_error(&b.query, e.pos, &e.message));
        }
    };
    let req = HuntRequest {
        tenant: b.tenant.clone(),
        query,
        from_ms,
        to_ms,
        now_ms: started,
    };
    let (tx, rx) = mpsc::channel::<Value>(64);
    tokio::task::spawn_blocking(move || {
        let send = |v: Value| {
            // A closed stream (the client left) just drops what follows.
            let _ = tx.blocking_send(v);
        };
        let result = exec::run(&searcher, &req, &mut |o| {
            send(match o {
                Output::Progress { done, total } => {
                    json!({"progress": {"done": done, "total": total}})
                }
                Output::Events(e) => json!({ "events": e }),
                Output::Columns(c) => json!({ "columns": c }),
                Output::Rows(r) => json!({ "rows": r }),
            })
        });
        let took = now_ms() - started;
        let (matched, error) = match &result {
            Ok(s) => (Some(s.matched), None),
            Err(e) => (None, Some(e.to_string())),
        };
        match result {
            Ok(mut s) => {
                s.notes.shrink_to_fit();
                send(json!({ "summary": s, "took_ms": took }));
            }
            Err(HuntError::Query { span, message }) => {
                let e = koban_hunt::QueryError {
                    pos: span.start,
                    message: message.clone(),
                };
                send(json!({"error": e.to_string(), "position": span.start,
                            "message": message, "caret": e.caret(&b.query)}));
            }
            Err(HuntError::Store(e)) => {
                tracing::warn!(error = %e, "hunt failed");
                send(json!({ "error": e.to_string() }));
            }
        }
        g.log_query(Ran {
            tenant: &b.tenant,
            who: "",
            query: &b.query,
            at_ms: started,
            took_ms: took,
            matched,
            error: error.as_deref(),
        });
    });
    Ok(ndjson_stream(rx))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RetroBody {
    tenant: String,
    from: Option<Value>,
    to: Option<Value>,
    /// Rule ids (or titles) of the loaded set; none: every rule the tenant has on.
    rules: Option<Vec<String>>,
    /// Sigma YAML to run instead of loaded rules.
    sigma: Option<String>,
}

async fn retro(State(st): State<AppState>, caller: Caller, body: Bytes) -> Response {
    match retro_inner(st, caller, body).await {
        Ok(r) => r,
        Err(e) => e.into_response(),
    }
}

async fn retro_inner(st: AppState, caller: Caller, body: Bytes) -> Result<Response, ApiError> {
    let g = guard(&st, caller)?;
    let tenant = tenant_of(&body)?;
    let (book, policy) = blocking(move || g.retro_hunt(&tenant, "run")).await?;
    let b: RetroBody = serde_json::from_slice(&body).map_err(|e| {
        ApiError::invalid(format!(
            "expected {{\"tenant\", \"from\"?, \"to\"?, \"rules\"?: [ids], \"sigma\"?: yaml}}: {e}"
        ))
    })?;
    let rules = match (b.rules, b.sigma) {
        (Some(_), Some(_)) => return Err(ApiError::invalid("give rules or sigma, not both")),
        (Some(keys), None) => RetroRules::Keys(keys),
        (None, Some(yaml)) => RetroRules::Yaml(yaml),
        (None, None) => RetroRules::Enabled,
    };
    let req = RetroRequest {
        tenant: b.tenant,
        from_ms: millis(&b.from, "from")?,
        to_ms: millis(&b.to, "to")?,
        rules,
    };
    let searcher = searcher(&st)?;
    let loaded = st
        .rules
        .as_ref()
        .map(|r| r.current())
        .ok_or_else(|| ApiError::invalid("detection is off on this server: no rules to run"))?;
    let grouping = st.grouping;
    let (tx, rx) = mpsc::channel::<Value>(64);
    tokio::task::spawn_blocking(move || {
        let result = retro_hunt(
            &searcher,
            &book,
            &loaded,
            &policy,
            &grouping,
            &req,
            &mut |done, total| {
                let _ = tx.blocking_send(json!({"progress": {"done": done, "total": total}}));
            },
        );
        let _ = tx.blocking_send(match result {
            Ok(r) => json!({ "report": r }),
            Err(e) => json!({ "error": e.to_string() }),
        });
    });
    Ok(ndjson_stream(rx))
}

#[derive(Deserialize)]
struct TimelineQuery {
    tenant: Option<String>,
    kind: Option<String>,
    value: Option<String>,
    from: Option<String>,
    to: Option<String>,
    limit: Option<usize>,
    format: Option<String>,
}

async fn timeline_route(
    State(st): State<AppState>,
    caller: Caller,
    Query(q): Query<TimelineQuery>,
) -> Result<Response, ApiError> {
    let g = guard(&st, caller)?;
    let tenant = q.tenant.clone().unwrap_or_default();
    let (kind, value) = (
        q.kind.clone().unwrap_or_default(),
        q.value.clone().unwrap_or_default(),
    );
    let g = {
        let (t, what) = (tenant.clone(), format!("timeline {kind}={value}"));
        blocking(move || g.hunt(&t, &what).map(|()| g)).await?
    };
    let kinds = timeline::entity_kinds(&kind).ok_or_else(|| {
        ApiError::invalid(format!(
            "kind {kind:?}: use one of {}",
            timeline::KINDS
                .iter()
                .map(|k| k.0)
                .collect::<Vec<_>>()
                .join(", ")
        ))
    })?;
    if value.is_empty() {
        return Err(ApiError::invalid("value: the entity to follow is missing"));
    }
    let from_ms = millis(&q.from.map(Value::String), "from")?;
    let to_ms = millis(&q.to.map(Value::String), "to")?;
    let limit = q.limit.unwrap_or(1000).min(timeline::MAX_ENTRIES);
    let csv = match q.format.as_deref() {
        None | Some("json") => false,
        Some("csv") => true,
        Some(other) => return Err(ApiError::invalid(format!("format {other:?}: json or csv"))),
    };
    let searcher = searcher(&st)?;
    let with_alerts = st.alerts.is_some();
    let (t, k, val) = (tenant.clone(), kind.clone(), value.clone());
    let (total, entries) = blocking(move || {
        let (tenant, kind, value) = (t, k, val);
        let (total, events) = timeline::events(
            &searcher, &tenant, &kind, &value, from_ms, to_ms, limit,
        )
        .map_err(|e| {
            crate::guard::GuardError::Triage(crate::alerts::TriageError::Invalid(e.to_string()))
        })?;
        let alerts = if with_alerts {
            g.entity_alerts(&tenant, kinds, &value, (from_ms, to_ms), limit)?
        } else {
            Vec::new()
        };
        Ok((total, timeline::merge(events, alerts)))
    })
    .await?;
    if csv {
        let name = format!("timeline-{}-{}.csv", kind, sanitize(&value));
        return Ok((
            [
                (header::CONTENT_TYPE, "text/csv; charset=utf-8".to_owned()),
                (
                    header::CONTENT_DISPOSITION,
                    format!("attachment; filename=\"{name}\""),
                ),
            ],
            timeline::csv(&entries),
        )
            .into_response());
    }
    Ok(Json(json!({
        "tenant": tenant, "kind": kind, "value": value,
        "events_matched": total, "entries": entries,
    }))
    .into_response())
}

/// A value fit for a file name.
fn sanitize(v: &str) -> String {
    v.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '.' || c == '-' {
                c
            } else {
                '_'
            }
        })
        .take(64)
        .collect()
}

#[derive(Deserialize)]
struct TenantQuery {
    tenant: Option<String>,
    limit: Option<usize>,
}

async fn list_saved(
    State(st): State<AppState>,
    caller: Caller,
    Query(q): Query<TenantQuery>,
) -> Result<Json<Value>, ApiError> {
    let g = guard(&st, caller)?;
    let v = blocking(move || g.saved_searches(q.tenant)).await?;
    Ok(Json(json!({ "searches": v })))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct SaveBody {
    tenant: String,
    name: String,
    query: String,
}

async fn save(
    State(st): State<AppState>,
    caller: Caller,
    body: Bytes,
) -> Result<Response, ApiError> {
    let g = guard(&st, caller)?;
    let tenant = tenant_of(&body)?;
    let g = blocking(move || g.hunt(&tenant, "saved search").map(|()| g)).await?;
    let b: SaveBody = serde_json::from_slice(&body).map_err(|e| {
        ApiError::invalid(format!("expected {{\"tenant\", \"name\", \"query\"}}: {e}"))
    })?;
    if let Err(e) = koban_hunt::parse(&b.query) {
        return Ok(query_error(&b.query, e.pos, &e.message));
    }
    let id = blocking(move || g.save_search(&b.tenant, &b.name, &b.query)).await?;
    Ok((StatusCode::CREATED, Json(json!({ "id": id }))).into_response())
}

async fn delete_saved(
    State(st): State<AppState>,
    caller: Caller,
    Path(id): Path<i64>,
) -> Result<Json<Value>, ApiError> {
    let g = guard(&st, caller)?;
    blocking(move || g.delete_search(id)).await?;
    Ok(Json(json!({ "deleted": id })))
}

async fn history(
    State(st): State<AppState>,
    caller: Caller,
    Query(q): Query<TenantQuery>,
) -> Result<Json<Value>, ApiError> {
    let g = guard(&st, caller)?;
    let limit = q.limit.unwrap_or(50).min(500);
    let v = blocking(move || g.query_history(q.tenant, limit)).await?;
    Ok(Json(json!({ "history": v })))
}
