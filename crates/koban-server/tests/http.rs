//! The HTTP endpoints in process (`oneshot`, no socket): tokens, tenant binding, the
//! Elasticsearch and HEC shapes, gzip, EVTX, the admin API, backpressure.

mod common;

use std::io::Write;

use axum::body::Body;
use axum::http::{Request, StatusCode};
use base64::Engine;
use common::*;
use koban_server::app;
use koban_wal::RecordKind;
use serde_json::Value;
use tower::ServiceExt;

async fn call(
    t: &TestApp,
    method: &str,
    uri: &str,
    headers: &[(&str, String)],
    body: impl Into<Body>,
) -> (StatusCode, axum::http::HeaderMap, Value) {
    let mut req = Request::builder().method(method).uri(uri);
    for (k, v) in headers {
        req = req.header(*k, v);
    }
    let resp = app(t.state.clone())
        .oneshot(req.body(body.into()).expect("request"))
        .await
        .expect("response");
    let status = resp.status();
    let headers = resp.headers().clone();
    let bytes = axum::body::to_bytes(resp.into_body(), 1 << 24)
        .await
        .expect("body");
    let json = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
    (status, headers, json)
}

fn token(t: &TestApp, tenant: &str, source: &str) -> String {
    let _ = t.state.state.add_tenant(tenant);
    t.state
        .state
        .create_ingest_token(tenant, source)
        .expect("token")
}

fn bearer(tok: &str) -> (&'static str, String) {
    ("authorization", format!("Bearer {tok}"))
}

#[tokio::test]
async fn ndjson_ingest_with_a_token_is_durable_before_the_answer() {
    let t = test_app("ndjson", default_limits());
    let tok = token(&t, "acme", "web");
    let body = "{\"a\":1}\n\n{\"b\":2}\r\nnot json at all\n";
    let (status, _, json) = call(&t, "POST", "/api/v1/ingest", &[bearer(&tok)], body).await;
    assert_eq!(status, StatusCode::OK, "{json}");
    assert_eq!(json["accepted"], 3);
    // The answer came after the append: the records are in the WAL now.
    let recs = all_records(&t.wal);
    assert_eq!(recs.len(), 3);
    assert_eq!(recs[0].record.payload, b"{\"a\":1}");
    assert_eq!(recs[1].record.payload, b"{\"b\":2}");
    assert_eq!(recs[0].record.kind, RecordKind::NdjsonLine);
    assert_eq!(
        recs[2].record.kind,
        RecordKind::RawText,
        "kept, never dropped"
    );
}

#[tokio::test]
async fn a_zeek_tsv_log_posted_as_it_is_gives_rows_with_their_columns() {
    let t = test_app("zeek", default_limits());
    let tok = token(&t, "acme", "zeek");
    let body = "#separator \\x09\n#set_separator\t,\n#path\tdns\n#open\t2024-04-12-19-29-12\n\
                #fields\tts\tuid\tquery\n#types\ttime\tstring\tstring\n\
                1.5\tC1\ta.example\n2.5\tC2\tb.example\n#close\t2024-04-12-19-30-00\n\
                after the close: plain text\n";
    let (status, _, json) = call(&t, "POST", "/api/v1/ingest", &[bearer(&tok)], body).await;
    assert_eq!(status, StatusCode::OK, "{json}");
    assert_eq!(json["accepted"], 3, "directives are not records");
    let recs = all_records(&t.wal);
    assert_eq!(recs.len(), 3);
    assert_eq!(recs[0].record.kind, RecordKind::ZeekTsvRow);
    assert_eq!(
        recs[0].record.payload,
        b"#path\tdns\n#fields\tts\tuid\tquery\n1.5\tC1\ta.example"
    );
    assert!(recs[1].record.payload.ends_with(b"\n2.5\tC2\tb.example"));
    assert_eq!(
        recs[2].record.kind,
        RecordKind::RawText,
        "#close ends the header"
    );
    // A `#` line that is not a Zeek directive stays a record.
    let (_, _, json) = call(
        &t,
        "POST",
        "/api/v1/ingest",
        &[bearer(&tok)],
        "#fields are nice\n",
    )
    .await;
    assert_eq!(json["accepted"], 1);
}

#[tokio::test]
async fn gzip_bodies_are_accepted() {
    let t = test_app("gzip", default_limits());
    let tok = token(&t, "acme", "web");
    let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    enc.write_all(b"{\"x\":1}\n{\"x\":2}\n").expect("gzip");
    let gz = enc.finish().expect("gzip");
    let (status, _, json) = call(
        &t,
        "POST",
        "/api/v1/ingest",
        &[bearer(&tok), ("content-encoding", "gzip".into())],
        gz,
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{json}");
    assert_eq!(json["accepted"], 2);
    let (status, _, _) = call(
        &t,
        "POST",
        "/api/v1/ingest",
        &[bearer(&tok), ("content-encoding", "gzip".into())],
        "not gzip",
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
}

#[tokio::test]
async fn wrong_or_missing_token_is_401_in_every_shape() {
    let t = test_app("auth", default_limits());
    let _ = token(&t, "acme", "web");
    for uri in [
        "/api/v1/ingest",
        "/_bulk",
        "/services/collector/event",
        "/api/v1/ingest/evtx",
    ] {
        let (status, _, _) = call(&t, "POST", uri, &[], "{}\n").await;
        assert_eq!(status, StatusCode::UNAUTHORIZED, "{uri} without a token");
        let (status, _, _) = call(&t, "POST", uri, &[bearer("kbi_0000")], "{}\n").await;
        assert_eq!(status, StatusCode::UNAUTHORIZED, "{uri} with a wrong token");
    }
    let (_, _, json) = call(&t, "POST", "/services/collector/event", &[], "{}").await;
    assert_eq!(json["code"], 2);
    let (_, h, json) = call(&t, "POST", "/_bulk", &[bearer("kbi_x")], "{}").await;
    assert_eq!(json["error"]["type"], "security_exception");
    assert_eq!(h["x-elastic-product"], "Elasticsearch");
    assert!(all_records(&t.wal).is_empty());
}

#[tokio::test]
async fn a_tokens_records_carry_its_tenant_and_source() {
    let t = test_app("binding", default_limits());
    let acme = token(&t, "acme", "fw");
    let globex = token(&t, "globex", "dc01");
    call(
        &t,
        "POST",
        "/api/v1/ingest",
        &[bearer(&acme)],
        "{\"n\":1}\n",
    )
    .await;
    let basic = base64::engine::general_purpose::STANDARD.encode(format!("elastic:{globex}"));
    let bulk = "{\"index\":{\"_index\":\"winlogbeat-8\"}}\n{\"n\":2}\n";
    let (status, _, _) = call(
        &t,
        "POST",
        "/_bulk",
        &[("authorization", format!("Basic {basic}"))],
        bulk,
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    let apikey = base64::engine::general_purpose::STANDARD.encode(format!("someid:{acme}"));
    let (status, _, _) = call(
        &t,
        "POST",
        "/_bulk",
        &[("authorization", format!("ApiKey {apikey}"))],
        bulk,
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    let recs = all_records(&t.wal);
    let who: Vec<_> = recs
        .iter()
        .map(|r| (r.record.tenant.as_str(), r.record.source.as_str()))
        .collect();
    assert_eq!(who, [("acme", "fw"), ("globex", "dc01"), ("acme", "fw")]);
}

#[tokio::test]
async fn bulk_answers_in_the_elasticsearch_shape() {
    let t = test_app("bulk", default_limits());
    let tok = token(&t, "acme", "beats");
    let body = concat!(
        "{\"index\":{\"_index\":\"logs\",\"_id\":\"abc\"}}\n{\"message\":\"one\"}\n",
        "{\"create\":{}}\n{\"message\":\"two\"}\n",
        "{\"delete\":{\"_index\":\"logs\",\"_id\":\"x\"}}\n",
    );
    let (status, h, json) = call(&t, "POST", "/filebeat-8/_bulk", &[bearer(&tok)], body).await;
    assert_eq!(status, StatusCode::OK, "{json}");
    assert_eq!(h["x-elastic-product"], "Elasticsearch");
    let items = json["items"].as_array().expect("items");
    assert_eq!(items.len(), 3);
    assert_eq!(items[0]["index"]["status"], 201);
    assert_eq!(items[0]["index"]["_id"], "abc");
    assert_eq!(items[0]["index"]["_index"], "logs");
    assert_eq!(items[1]["create"]["status"], 201);
    assert_eq!(items[1]["create"]["_index"], "filebeat-8");
    assert_eq!(items[2]["delete"]["status"], 400);
    assert_eq!(json["errors"], true, "the delete is refused per item");
    let recs = all_records(&t.wal);
    assert_eq!(recs.len(), 2);
    assert_eq!(recs[1].record.payload, b"{\"message\":\"two\"}");
    assert_eq!(recs[1].record.kind, RecordKind::Json);
    let only_index = "{\"index\":{}}\n{\"m\":1}\n";
    let (_, _, json) = call(&t, "POST", "/_bulk", &[bearer(&tok)], only_index).await;
    assert_eq!(json["errors"], false);
    let (status, _, _) = call(&t, "POST", "/_bulk", &[bearer(&tok)], "not an action\n").await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
}

#[tokio::test]
async fn elasticsearch_handshake_calls_look_like_a_cluster() {
    let t = test_app("handshake", default_limits());
    let (status, h, json) = call(&t, "GET", "/", &[], Body::empty()).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(h["x-elastic-product"], "Elasticsearch");
    assert_eq!(json["version"]["number"], "8.11.0");
    assert_eq!(json["tagline"], "You Know, for Search");
    let (status, h, _) = call(&t, "HEAD", "/", &[], Body::empty()).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(h["x-elastic-product"], "Elasticsearch");
    // Credentials are optional on the handshake, but wrong ones are refused early.
    let (status, h, _) = call(&t, "GET", "/", &[bearer("kbi_wrong")], Body::empty()).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert_eq!(h["x-elastic-product"], "Elasticsearch");
    let tok = token(&t, "acme", "beats");
    let (status, _, _) = call(&t, "GET", "/", &[bearer(&tok)], Body::empty()).await;
    assert_eq!(status, StatusCode::OK);
    let (_, _, json) = call(&t, "GET", "/_license", &[], Body::empty()).await;
    assert_eq!(json["license"]["status"], "active");
    let (_, _, json) = call(&t, "GET", "/_xpack", &[], Body::empty()).await;
    assert_eq!(json["license"]["mode"], "basic");
    for (m, uri) in [
        ("GET", "/_index_template/winlogbeat-8.11.0"),
        ("HEAD", "/_index_template/winlogbeat-8.11.0"),
        ("PUT", "/_index_template/winlogbeat-8.11.0"),
        ("GET", "/_ilm/policy/filebeat"),
        ("PUT", "/_ilm/policy/filebeat"),
        ("GET", "/_template/logstash"),
        ("GET", "/_data_stream/logs-generic-default"),
        ("GET", "/_nodes/_local"),
        ("GET", "/_nodes/http"),
        ("GET", "/_cluster/health"),
    ] {
        let (status, h, _) = call(&t, m, uri, &[], Body::empty()).await;
        assert_eq!(status, StatusCode::OK, "{m} {uri}");
        assert_eq!(h["x-elastic-product"], "Elasticsearch", "{m} {uri}");
    }
}

#[tokio::test]
async fn hec_event_raw_health_and_ack() {
    let t = test_app("hec", default_limits());
    let tok = token(&t, "acme", "splunk-fwd");
    let splunk = ("authorization", format!("Splunk {tok}"));
    // Concatenated objects, not one per line.
    let body = r#"{"event":"one","time":1700000000}{"event":{"k":"v"},"sourcetype":"x"}
        {"event":"three"}"#;
    let (status, _, json) = call(
        &t,
        "POST",
        "/services/collector/event",
        std::slice::from_ref(&splunk),
        body,
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{json}");
    assert_eq!(json, serde_json::json!({"text": "Success", "code": 0}));
    let (status, _, json) = call(
        &t,
        "POST",
        "/services/collector/event",
        std::slice::from_ref(&splunk),
        "{\"time\":1}",
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(json["code"], 12);
    let (status, _, _) = call(
        &t,
        "POST",
        "/services/collector/raw",
        std::slice::from_ref(&splunk),
        "line a\nline b\n",
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    let recs = all_records(&t.wal);
    assert_eq!(recs.len(), 5);
    assert_eq!(
        recs[0].record.payload,
        br#"{"event":"one","time":1700000000}"#
    );
    assert_eq!(recs[2].record.payload, br#"{"event":"three"}"#);
    assert_eq!(recs[0].record.kind, RecordKind::HecEvent);
    assert_eq!(recs[4].record.kind, RecordKind::HecRaw);
    let chan = (
        "x-splunk-request-channel",
        "0A1B2C3D-0000-4000-8000-000000000001".to_string(),
    );
    let (_, _, json) = call(
        &t,
        "POST",
        "/services/collector/event",
        &[splunk.clone(), chan.clone()],
        "{\"event\":1}",
    )
    .await;
    assert_eq!(json["ackId"], 1);
    let (_, _, json) = call(
        &t,
        "POST",
        "/services/collector/ack",
        &[splunk.clone(), chan],
        "{\"acks\":[1,2]}",
    )
    .await;
    assert_eq!(json["acks"]["1"], true);
    assert_eq!(json["acks"]["2"], false);
    let (status, _, json) = call(&t, "GET", "/services/collector/health", &[], Body::empty()).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(json["code"], 17);
}

#[tokio::test]
async fn evtx_upload_is_one_record() {
    let t = test_app("evtx", default_limits());
    let tok = token(&t, "acme", "dc01");
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../../shared/data/windows/evtx/evtx_attack_samples");
    // A real EVTX file when the shared data is there, else a minimal header.
    let file = std::fs::read_dir(&path).ok().and_then(|mut d| {
        d.find_map(|e| {
            let p = e.ok()?.path();
            let f = std::fs::read_dir(&p)
                .ok()?
                .find_map(|e| e.ok().map(|e| e.path()))?;
            (f.extension()? == "evtx").then_some(f)
        })
    });
    let bytes = match file {
        Some(f) => std::fs::read(f).expect("evtx"),
        None => b"ElfFile\0rest of a header".to_vec(),
    };
    let (status, _, json) = call(
        &t,
        "POST",
        "/api/v1/ingest/evtx",
        &[bearer(&tok)],
        bytes.clone(),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{json}");
    let recs = all_records(&t.wal);
    assert_eq!(recs.len(), 1);
    assert_eq!(recs[0].record.kind, RecordKind::Evtx);
    assert_eq!(recs[0].record.payload, bytes);
    let (status, _, _) = call(
        &t,
        "POST",
        "/api/v1/ingest/evtx",
        &[bearer(&tok)],
        "not evtx",
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
}

#[tokio::test]
async fn admin_api_creates_tenants_and_tokens() {
    let t = test_app("admin", default_limits());
    let basic = |pw: &str| {
        let b = base64::engine::general_purpose::STANDARD.encode(format!("admin:{pw}"));
        ("authorization", format!("Basic {b}"))
    };
    let (status, _, _) = call(
        &t,
        "POST",
        "/api/v1/tenants",
        &[basic("wrong")],
        "{\"name\":\"acme\"}",
    )
    .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    let (status, _, _) = call(&t, "POST", "/api/v1/tenants", &[], "{\"name\":\"acme\"}").await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    let pw = t.admin_password.clone();
    let (status, _, _) = call(
        &t,
        "POST",
        "/api/v1/tenants",
        &[basic(&pw)],
        "{\"name\":\"acme\"}",
    )
    .await;
    assert_eq!(status, StatusCode::CREATED);
    let (status, _, _) = call(
        &t,
        "POST",
        "/api/v1/tenants",
        &[basic(&pw)],
        "{\"name\":\"acme\"}",
    )
    .await;
    assert_eq!(status, StatusCode::CONFLICT);
    let admin_token = t.state.state.create_admin_token().expect("admin token");
    let (status, _, json) = call(
        &t,
        "POST",
        "/api/v1/tokens",
        &[bearer(&admin_token)],
        "{\"tenant\":\"acme\",\"source\":\"fw\"}",
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{json}");
    let ingest = json["token"].as_str().expect("token").to_string();
    // An ingest token is no admin token.
    let (status, _, _) = call(
        &t,
        "POST",
        "/api/v1/tenants",
        &[bearer(&ingest)],
        "{\"name\":\"x\"}",
    )
    .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    let (status, _, _) = call(&t, "POST", "/api/v1/ingest", &[bearer(&ingest)], "{}\n").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(all_records(&t.wal)[0].record.tenant, "acme");
    let (_, _, json) = call(
        &t,
        "GET",
        "/api/v1/tenants",
        &[bearer(&admin_token)],
        Body::empty(),
    )
    .await;
    assert_eq!(json["tenants"].as_array().map(Vec::len), Some(2));
}

#[tokio::test]
async fn backpressure_answers_429_and_503_with_retry_after() {
    let limits = koban_server::intake::Limits {
        max_backlog_records: 3,
        ..default_limits()
    };
    let t = test_app("backpressure", limits);
    let tok = token(&t, "acme", "web");
    let (status, _, _) = call(
        &t,
        "POST",
        "/api/v1/ingest",
        &[bearer(&tok)],
        "{}\n{}\n{}\n",
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    // Nothing consumes: the backlog is at its bound.
    let (status, h, _) = call(&t, "POST", "/api/v1/ingest", &[bearer(&tok)], "{}\n").await;
    assert_eq!(status, StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(h["retry-after"], "2");
    let (status, h, json) = call(
        &t,
        "POST",
        "/_bulk",
        &[bearer(&tok)],
        "{\"index\":{}}\n{}\n",
    )
    .await;
    assert_eq!(status, StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(json["error"]["type"], "es_rejected_execution_exception");
    assert_eq!(json["status"], 429);
    assert!(h.contains_key("retry-after"));
    let splunk = ("authorization", format!("Splunk {tok}"));
    let (status, h, json) = call(
        &t,
        "POST",
        "/services/collector/event",
        &[splunk],
        "{\"event\":1}",
    )
    .await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(json["code"], 9);
    assert!(h.contains_key("retry-after"));
    let (status, _, json) = call(&t, "GET", "/healthz", &[], Body::empty()).await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
    assert!(json["reason"]
        .as_str()
        .expect("reason")
        .contains("throttled"));
    // The consumer catches up: intake resumes.
    t.state.intake.set_applied(3);
    let (status, _, _) = call(&t, "POST", "/api/v1/ingest", &[bearer(&tok)], "{}\n").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(all_records(&t.wal).len(), 4, "nothing refused was written");
}

#[tokio::test]
async fn metrics_count_per_tenant_and_source() {
    let t = test_app("metrics", default_limits());
    let tok = token(&t, "acme", "web");
    call(&t, "POST", "/api/v1/ingest", &[bearer(&tok)], "{}\n{}\n").await;
    let resp = app(t.state.clone())
        .oneshot(Request::get("/metrics").body(Body::empty()).expect("req"))
        .await
        .expect("resp");
    let text = String::from_utf8(
        axum::body::to_bytes(resp.into_body(), 1 << 20)
            .await
            .expect("body")
            .to_vec(),
    )
    .expect("utf8");
    assert!(
        text.contains("koban_intake_accepted_total{tenant=\"acme\",source=\"web\"} 2"),
        "{text}"
    );
    assert!(text.contains("koban_wal_last_seq 2"));
    assert!(text.contains("koban_wal_backlog_records 2"));
}

#[tokio::test]
async fn requests_over_the_inflight_bound_wait_then_get_told_to_retry() {
    let mut t = test_app("inflight", default_limits());
    t.state = t.state.clone().with_max_inflight(1);
    let tok = token(&t, "acme", "web");
    // Hold the only permit, as a slow request would.
    let held = std::sync::Arc::clone(&t.state.inflight)
        .acquire_owned()
        .await
        .expect("permit");
    let started = std::time::Instant::now();
    let (status, h, json) = call(
        &t,
        "POST",
        "/_bulk",
        &[bearer(&tok)],
        "{\"index\":{}}\n{}\n",
    )
    .await;
    assert_eq!(status, StatusCode::TOO_MANY_REQUESTS, "{json}");
    assert!(h.contains_key("retry-after"));
    assert!(
        started.elapsed() >= std::time::Duration::from_secs(4),
        "it waited its turn first"
    );
    drop(held);
    let (status, _, _) = call(
        &t,
        "POST",
        "/_bulk",
        &[bearer(&tok)],
        "{\"index\":{}}\n{}\n",
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    // Reads are never held back.
    let (status, _, _) = call(&t, "GET", "/healthz", &[], Body::empty()).await;
    assert_eq!(status, StatusCode::OK);
}
