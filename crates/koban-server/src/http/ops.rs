//! `/metrics` (Prometheus text) and `/healthz`.

use axum::extract::State;
use axum::http::{header, StatusCode};
use axum::response::IntoResponse;
use axum::routing::get;
use axum::{Json, Router};
use serde_json::json;

use super::AppState;

pub(super) fn routes() -> Router<AppState> {
    Router::new()
        .route("/metrics", get(metrics))
        .route("/healthz", get(healthz))
}

async fn metrics(State(st): State<AppState>) -> impl IntoResponse {
    let text = st.intake.metrics.render(&st.intake.figures());
    ([(header::CONTENT_TYPE, "text/plain; version=0.0.4")], text)
}

async fn healthz(State(st): State<AppState>) -> impl IntoResponse {
    let f = st.intake.figures();
    let body = |status: &str, reason: Option<String>| {
        Json(json!({
            "status": status,
            "reason": reason,
            "wal": { "last_seq": f.last_seq, "applied_seq": f.applied_seq, "size_bytes": f.size_bytes,
                     "backlog_records": f.last_seq.saturating_sub(f.applied_seq) }
        }))
    };
    match st.intake.stopped_reason() {
        None => (StatusCode::OK, body("ok", None)),
        Some(r) => (
            StatusCode::SERVICE_UNAVAILABLE,
            body("intake stopped", Some(r)),
        ),
    }
}
