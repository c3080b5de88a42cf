//! Enough of the Elasticsearch API that Beats (Filebeat, Winlogbeat), Logstash, Fluent
//! Bit, Vector and the official clients ship to Koban unchanged: the handshake they make
//! first (`GET /` for the version, `/_license`, `/_xpack`, template, ILM, data stream and
//! pipeline set-up, `/_nodes`, `/_cluster/health`) answered as a one-node cluster, and
//! `_bulk`, whose documents become WAL records. Every response carries
//! `X-Elastic-Product: Elasticsearch`, which the 8.x clients check before anything else.

use std::time::Instant;

use axum::extract::{Path, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use koban_wal::{Record, RecordKind};
use serde_json::{json, Map, Value};

use super::error::{ApiError, Flavor};
use super::ingest::is_json;
use super::{auth, decode_body, lines, AppState, Remote};
use crate::state::now_ms;

const VERSION: &str = "8.11.0";
const FLAVOR: Flavor = Flavor::Elastic;

pub(super) fn routes(state: AppState) -> Router<AppState> {
    let handshake = Router::new()
        .route("/", get(root).head(root_head))
        .route("/_license", get(license))
        .route("/_xpack", get(xpack))
        .route("/_nodes", get(nodes))
        .route("/_nodes/{*rest}", get(nodes))
        .route("/_cluster/health", get(health))
        .route("/_cluster/health/{*rest}", get(health))
        .route(
            "/_index_template/{name}",
            get(template).head(exists).put(acknowledged),
        )
        .route(
            "/_template/{name}",
            get(legacy_template).head(exists).put(acknowledged),
        )
        .route(
            "/_ilm/policy/{name}",
            get(ilm_policy).head(exists).put(acknowledged),
        )
        .route(
            "/_data_stream/{name}",
            get(data_stream).head(exists).put(acknowledged),
        )
        .route(
            "/_ingest/pipeline/{name}",
            get(pipeline).head(exists).put(acknowledged),
        )
        .layer(axum::middleware::from_fn_with_state(
            state,
            credentials_if_sent,
        ));
    Router::new()
        .merge(handshake)
        .route("/_bulk", post(bulk_root).put(bulk_root))
        .route("/{index}/_bulk", post(bulk_index).put(bulk_index))
        .layer(axum::middleware::map_response(product_header))
}

/// The handshake answers probes that send no credentials (a load balancer's `HEAD /`),
/// but credentials that are sent must be right, so a shipper with a wrong token fails
/// when it connects, with a clear 401, not later on its first bulk request.
async fn credentials_if_sent(
    State(st): State<AppState>,
    req: axum::extract::Request,
    next: axum::middleware::Next,
) -> Response {
    if req
        .headers()
        .contains_key(axum::http::header::AUTHORIZATION)
    {
        if let Err(e) = auth::ingest(&st, req.headers(), FLAVOR) {
            return e.into_response();
        }
    }
    next.run(req).await
}

async fn product_header(mut resp: Response) -> Response {
    resp.headers_mut().insert(
        "x-elastic-product",
        HeaderValue::from_static("Elasticsearch"),
    );
    resp
}

/// `GET /`: a browser goes to the console; a shipper gets the Elasticsearch banner.
async fn root(headers: axum::http::HeaderMap) -> axum::response::Response {
    use axum::response::IntoResponse;
    let browser = headers
        .get(axum::http::header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|a| a.contains("text/html"));
    if browser {
        return axum::response::Redirect::to("/dashboard").into_response();
    }
    banner().into_response()
}

fn banner() -> Json<Value> {
    Json(json!({
        "name": "koban",
        "cluster_name": "koban",
        "cluster_uuid": "a0b0c0d0e0f0koban000001",
        "version": {
            "number": VERSION,
            "build_flavor": "default",
            "build_type": "tar",
            "build_hash": "koban",
            "build_date": "2023-11-04T10:04:57.184859352Z",
            "build_snapshot": false,
            "lucene_version": "9.8.0",
            "minimum_wire_compatibility_version": "7.17.0",
            "minimum_index_compatibility_version": "7.0.0"
        },
        "tagline": "You Know, for Search"
    }))
}

async fn root_head() -> StatusCode {
    StatusCode::OK
}

async fn license() -> Json<Value> {
    Json(json!({ "license": {
        "status": "active", "uid": "koban-basic", "type": "basic",
        "issue_date": "2023-01-01T00:00:00.000Z", "issue_date_in_millis": 1_672_531_200_000i64,
        "max_nodes": 1000, "max_resource_units": null, "issued_to": "koban",
        "issuer": "elasticsearch", "start_date_in_millis": -1
    }}))
}

async fn xpack() -> Json<Value> {
    Json(json!({
        "build": { "hash": "koban", "date": "2023-11-04T10:04:57.184859352Z" },
        "license": { "uid": "koban-basic", "type": "basic", "mode": "basic", "status": "active" },
        "features": {
            "ilm": { "available": true, "enabled": true },
            "security": { "available": true, "enabled": true },
            "monitoring": { "available": true, "enabled": false }
        },
        "tagline": "You know, for X"
    }))
}

async fn nodes() -> Json<Value> {
    Json(json!({
        "_nodes": { "total": 1, "successful": 1, "failed": 0 },
        "cluster_name": "koban",
        "nodes": { "koban-node-0": {
            "name": "koban", "version": VERSION, "ip": "127.0.0.1", "host": "127.0.0.1",
            "roles": ["data", "ingest", "master"],
            "http": { "publish_address": "127.0.0.1:8443" }
        }}
    }))
}

async fn health() -> Json<Value> {
    Json(json!({
        "cluster_name": "koban", "status": "green", "timed_out": false,
        "number_of_nodes": 1, "number_of_data_nodes": 1,
        "active_primary_shards": 1, "active_shards": 1, "relocating_shards": 0,
        "initializing_shards": 0, "unassigned_shards": 0, "delayed_unassigned_shards": 0,
        "number_of_pending_tasks": 0, "number_of_in_flight_fetch": 0,
        "task_max_waiting_in_queue_millis": 0, "active_shards_percent_as_number": 100.0
    }))
}

/// Shippers ask whether their template/policy exists before creating it; saying yes
/// skips set-up that Koban has no use for.
async fn exists() -> StatusCode {
    StatusCode::OK
}

async fn acknowledged() -> Json<Value> {
    Json(json!({ "acknowledged": true }))
}

async fn template(Path(name): Path<String>) -> Json<Value> {
    Json(
        json!({ "index_templates": [{ "name": name, "index_template": {
        "index_patterns": [format!("{name}-*")], "composed_of": [], "template": {},
        "data_stream": {}, "priority": 150 }}]}),
    )
}

async fn legacy_template(Path(name): Path<String>) -> Json<Value> {
    let mut m = Map::new();
    m.insert(
        name.clone(),
        json!({ "order": 1, "index_patterns": [format!("{name}-*")],
        "settings": {}, "mappings": {}, "aliases": {} }),
    );
    Json(Value::Object(m))
}

async fn ilm_policy(Path(name): Path<String>) -> Json<Value> {
    let mut m = Map::new();
    m.insert(
        name,
        json!({ "version": 1, "modified_date": "2023-01-01T00:00:00.000Z",
        "policy": { "phases": { "hot": { "min_age": "0ms", "actions": {} } } } }),
    );
    Json(Value::Object(m))
}

async fn data_stream(Path(name): Path<String>) -> Json<Value> {
    Json(
        json!({ "data_streams": [{ "name": name, "timestamp_field": { "name": "@timestamp" },
        "indices": [], "generation": 1, "status": "GREEN", "template": name }]}),
    )
}

async fn pipeline(Path(name): Path<String>) -> Json<Value> {
    let mut m = Map::new();
    m.insert(
        name,
        json!({ "description": "accepted by koban", "processors": [] }),
    );
    Json(Value::Object(m))
}

async fn bulk_root(
    st: State<AppState>,
    remote: Remote,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> Result<Response, ApiError> {
    bulk(st, remote, headers, None, body).await
}

async fn bulk_index(
    st: State<AppState>,
    remote: Remote,
    headers: HeaderMap,
    Path(index): Path<String>,
    body: axum::body::Bytes,
) -> Result<Response, ApiError> {
    bulk(st, remote, headers, Some(index), body).await
}

/// One line of the bulk body's answer, before the append gives it a sequence number.
enum Item {
    Doc {
        op: String,
        index: String,
        id: Option<String>,
    },
    Failed {
        op: String,
        index: String,
        status: u16,
        kind: &'static str,
        reason: &'static str,
    },
}

async fn bulk(
    State(st): State<AppState>,
    Remote(remote): Remote,
    headers: HeaderMap,
    path_index: Option<String>,
    body: axum::body::Bytes,
) -> Result<Response, ApiError> {
    let started = Instant::now();
    let binding = auth::ingest(&st, &headers, FLAVOR)?;
    let body = decode_body(&headers, body, st.max_body_bytes, FLAVOR)?;
    let now = now_ms();
    let mut items = Vec::new();
    let mut records = Vec::new();
    let mut it = lines(&body);
    while let Some(action) = it.next() {
        let Ok(Value::Object(action)) = serde_json::from_slice::<Value>(action) else {
            return Err(ApiError::bad_request(
                FLAVOR,
                "Malformed action/metadata line",
            ));
        };
        let Some((op, meta)) = action.into_iter().next() else {
            return Err(ApiError::bad_request(
                FLAVOR,
                "Malformed action/metadata line",
            ));
        };
        let index = meta
            .get("_index")
            .and_then(Value::as_str)
            .map(str::to_owned)
            .or_else(|| path_index.clone())
            .unwrap_or_else(|| "koban".into());
        let id = meta.get("_id").and_then(Value::as_str).map(str::to_owned);
        match op.as_str() {
            "index" | "create" => {
                let Some(source) = it.next() else {
                    return Err(ApiError::bad_request(
                        FLAVOR,
                        "Malformed action/metadata line: no source",
                    ));
                };
                if !is_json(source) {
                    items.push(Item::Failed {
                        op,
                        index,
                        status: 400,
                        kind: "document_parsing_exception",
                        reason: "source is not JSON",
                    });
                    continue;
                }
                records.push(Record {
                    tenant: binding.tenant.clone(),
                    source: binding.source.clone(),
                    kind: RecordKind::Json,
                    received_ms: now,
                    remote,
                    payload: source.to_vec(),
                });
                items.push(Item::Doc { op, index, id });
            }
            "update" => {
                let _ = it.next();
                items.push(Item::Failed {
                    op,
                    index,
                    status: 400,
                    kind: "action_request_validation_exception",
                    reason: "koban accepts index and create only",
                });
            }
            "delete" => items.push(Item::Failed {
                op,
                index,
                status: 400,
                kind: "action_request_validation_exception",
                reason: "koban accepts index and create only",
            }),
            _ => {
                return Err(ApiError::bad_request(
                    FLAVOR,
                    "Malformed action/metadata line: unknown action",
                ))
            }
        }
    }
    let n = records.len() as u64;
    let last = st
        .intake
        .append(records)
        .await
        .map_err(|e| ApiError::from_intake(e, FLAVOR, st.retry_after()))?;
    let mut seq = last + 1 - n;
    let mut errors = false;
    let out: Vec<Value> = items
        .into_iter()
        .map(|item| match item {
            Item::Doc { op, index, id } => {
                let s = seq;
                seq += 1;
                let mut m = Map::new();
                m.insert(
                    op,
                    json!({
                        "_index": index, "_id": id.unwrap_or_else(|| format!("koban-{s}")),
                        "_version": 1, "result": "created",
                        "_shards": { "total": 1, "successful": 1, "failed": 0 },
                        "_seq_no": s, "_primary_term": 1, "status": 201
                    }),
                );
                Value::Object(m)
            }
            Item::Failed {
                op,
                index,
                status,
                kind,
                reason,
            } => {
                errors = true;
                let mut m = Map::new();
                m.insert(
                    op,
                    json!({ "_index": index, "status": status,
                    "error": { "type": kind, "reason": reason } }),
                );
                Value::Object(m)
            }
        })
        .collect();
    let took = started.elapsed().as_millis() as u64;
    Ok((
        StatusCode::OK,
        Json(json!({ "took": took, "errors": errors, "items": out })),
    )
        .into_response())
}
