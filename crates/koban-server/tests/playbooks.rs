//! Playbooks on the server: a new alert starts the playbooks it matches; under a
//! semi-managed tenant the run waits for a customer admin (a viewer cannot approve),
//! under a fully managed one it acts at once; the agent's verified report lets the
//! run branch on; every step lands in the incident timeline and the audit log, once.

mod common;

use std::sync::Arc;

use axum::body::Body;
use axum::http::{Request, StatusCode};
use common::*;
use koban_detect::entities::Entities;
use koban_detect::stream::RuleRef;
use koban_detect::Found;
use koban_respond::{CommandVerifier, SignedCommand};
use koban_server::access::Role;
use koban_server::alerts::{AlertBook, Detected, EventRef, Grouping};
use koban_server::app;
use koban_server::respond::{drive, mirror, AgentAuth, Outcome, ResponseBook};
use koban_sigma::Level;
use serde_json::{json, Value};
use tower::ServiceExt;

const PLAYBOOK: &str = r#"
id: contain-execution
name: Isolate a host running attacker tooling
trigger:
  on: alert
  min_severity: high
  tactics: [execution]
  needs: [host]
steps:
  - enrich: [agent, history]
  - notify: "Isolating {{host}} ({{host_alerts_7d}} alerts this week): {{title}}"
  - id: isolate
    run: isolate_host
    ttl: 24h
  - if: isolate.verified
    then: [{ notify: "{{host}} is isolated" }]
    else: [{ notify: "isolation of {{host}} did not happen" }]
"#;

fn detection(tenant: &str, host: &str) -> Detected {
    Detected {
        tenant: tenant.into(),
        level: Level::High,
        found: Found {
            rule: RuleRef {
                key: "pb-rule".into(),
                title: "Attacker tooling".into(),
                level: Level::High,
                tactics: vec!["execution".into()],
                techniques: vec!["T1059".into()],
            },
            time: Some(now()),
            entities: Entities {
                host: Some(host.into()),
                ..Entities::default()
            },
            why: "Image endswith \\x.exe".into(),
            correlation: false,
            count: 1,
            evidence: vec![EventRef {
                source: "pb".into(),
                seq: 1,
                sub: 0,
                received_ms: now(),
            }],
        },
    }
}

fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock")
        .as_millis() as i64
}

async fn send(
    state: &koban_server::http::AppState,
    method: &str,
    uri: &str,
    token: &str,
    body: Option<Value>,
) -> (StatusCode, Value) {
    let mut req = Request::builder()
        .method(method)
        .uri(uri)
        .header("authorization", format!("Bearer {token}"));
    let body = match body {
        Some(b) => {
            req = req.header("content-type", "application/json");
            Body::from(b.to_string())
        }
        None => Body::empty(),
    };
    let resp = app(state.clone())
        .oneshot(req.body(body).expect("request"))
        .await
        .expect("response");
    let status = resp.status();
    let bytes = axum::body::to_bytes(resp.into_body(), 1 << 24)
        .await
        .expect("body");
    (
        status,
        serde_json::from_slice(&bytes).unwrap_or(Value::Null),
    )
}

/// A console request with a session cookie; the page's HTML.
async fn console(
    state: &koban_server::http::AppState,
    method: &str,
    uri: &str,
    cookie: &str,
    form: Option<String>,
) -> (StatusCode, String) {
    let mut req = Request::builder()
        .method(method)
        .uri(uri)
        .header("cookie", format!("koban_session={cookie}"));
    let body = match form {
        Some(f) => {
            req = req.header("content-type", "application/x-www-form-urlencoded");
            Body::from(f)
        }
        None => Body::empty(),
    };
    let resp = app(state.clone())
        .oneshot(req.body(body).expect("request"))
        .await
        .expect("response");
    let status = resp.status();
    let bytes = axum::body::to_bytes(resp.into_body(), 1 << 24)
        .await
        .expect("body");
    (status, String::from_utf8_lossy(&bytes).into_owned())
}

/// The agent's side: poll, check the signature, report `verified`.
fn agent_runs(book: &ResponseBook, agent: &AgentAuth, verifier: &mut CommandVerifier) -> usize {
    let cmds: Vec<SignedCommand> = book.poll(agent, &json!({}), now()).expect("poll");
    for c in &cmds {
        let cmd = verifier.accept(c, now()).expect("genuine");
        book.report(
            agent,
            &serde_json::from_value::<Outcome>(json!({
                "number": cmd.number, "ran": true, "verified": true,
                "detail": "isolated; probe refused, server reached",
            }))
            .expect("outcome"),
            now(),
        )
        .expect("report");
    }
    cmds.len()
}

#[tokio::test]
async fn playbooks_wait_for_the_customer_where_the_service_says_so_and_log_every_step() {
    let mut t = test_app("playbooks", default_limits());
    let st = Arc::clone(&t.state.state);
    for (tenant, service) in [("acme", "semi_managed"), ("globex", "fully_managed")] {
        st.add_tenant(tenant).expect("tenant");
        st.set_service(tenant, service).expect("service");
    }
    let mut tokens = std::collections::HashMap::new();
    for (name, role, tenant) in [
        ("padmin", Role::ProviderAdmin, None),
        ("acme-admin", Role::CustomerAdmin, Some("acme")),
        ("acme-viewer", Role::CustomerViewer, Some("acme")),
    ] {
        st.create_user(name, "a long enough password", role, tenant)
            .expect("user");
        tokens.insert(name, st.create_user_token(name).expect("token"));
    }
    let book = Arc::new(ResponseBook::open(&t.dir).expect("response book"));
    let alerts = Arc::new(AlertBook::open(&t.dir.join("alerts.db")).expect("alerts"));
    t.state = t
        .state
        .clone()
        .with_respond(Some(Arc::clone(&book)))
        .with_detection(Some(Arc::clone(&alerts)), None);
    let state = t.state.clone();

    // A bad playbook is refused with every error; a customer cannot write the
    // provider's playbooks; the provider admin's is kept.
    let (s, v) = send(
        &state,
        "POST",
        "/api/v1/playbooks",
        &tokens["padmin"],
        Some(json!({"tenant": "*", "yaml": "id: x\ntrigger: {on: sometimes}\nsteps:\n  - run: nuke\n"})),
    )
    .await;
    assert_eq!(s, StatusCode::BAD_REQUEST, "{v}");
    assert_eq!(v["errors"].as_array().map(Vec::len), Some(2), "{v}");
    let (s, _) = send(
        &state,
        "POST",
        "/api/v1/playbooks",
        &tokens["acme-admin"],
        Some(json!({"tenant": "*", "yaml": PLAYBOOK})),
    )
    .await;
    assert!(
        matches!(s, StatusCode::FORBIDDEN | StatusCode::NOT_FOUND),
        "a customer admin writes only its own tenant's playbooks: {s}"
    );
    let (s, v) = send(
        &state,
        "POST",
        "/api/v1/playbooks",
        &tokens["padmin"],
        Some(json!({"tenant": "*", "yaml": PLAYBOOK})),
    )
    .await;
    assert_eq!(s, StatusCode::CREATED, "{v}");
    let (_, v) = send(
        &state,
        "GET",
        "/api/v1/playbooks",
        &tokens["acme-viewer"],
        None,
    )
    .await;
    assert_eq!(v["playbooks"][0]["id"], "contain-execution", "{v}");

    // acme's approval settings: its admin sets them, its viewer cannot.
    let approval = json!({"timeout_s": 60, "escalate_to": "oncall@acme.example"});
    let (s, _) = send(
        &state,
        "PUT",
        "/api/v1/tenants/acme/approval",
        &tokens["acme-viewer"],
        Some(approval.clone()),
    )
    .await;
    assert_eq!(s, StatusCode::FORBIDDEN);
    let (s, v) = send(
        &state,
        "PUT",
        "/api/v1/tenants/acme/approval",
        &tokens["acme-admin"],
        Some(approval),
    )
    .await;
    assert_eq!(s, StatusCode::OK, "{v}");

    // Agents on both hosts.
    let mut agents = Vec::new();
    for (tenant, host) in [("acme", "web-1"), ("globex", "db-1.corp.example")] {
        let token = book.new_enrol_token(tenant, now()).expect("token");
        let e = book.enrol(&token, host, now()).expect("enrol");
        let key = base64::Engine::decode(&base64::engine::general_purpose::STANDARD, &e.server_key)
            .expect("key");
        let auth = book.authenticate(&e.agent, &e.secret).expect("auth");
        agents.push((
            auth,
            CommandVerifier::new(&key, &e.agent, 0).expect("verifier"),
        ));
    }

    // The first look starts at the newest alert; then two alerts arrive.
    assert_eq!(drive(&book, &alerts, &st, now()).expect("drive"), 0);
    alerts
        .record(
            &[detection("acme", "web-1"), detection("globex", "db-1")],
            1,
            "[]",
            &Grouping::default(),
            now(),
        )
        .expect("record");
    assert_eq!(drive(&book, &alerts, &st, now()).expect("drive"), 2);
    // Driving again starts nothing twice and asks for nothing twice.
    assert_eq!(drive(&book, &alerts, &st, now()).expect("drive"), 0);
    let acts = book.actions(None, 10).expect("actions");
    assert_eq!(acts.len(), 2, "{acts:?}");
    let by_tenant = |t: &str| acts.iter().find(|a| a["tenant"] == t).cloned().expect(t);
    assert_eq!(by_tenant("acme")["state"], "awaiting_approval");
    assert_eq!(
        by_tenant("globex")["state"],
        "queued",
        "fully managed acts at once"
    );
    assert_eq!(
        by_tenant("acme")["requested_by"],
        "playbook:contain-execution"
    );

    // Fully managed: the agent runs it, the run goes on to its end.
    let (g_auth, g_ver) = &mut agents[1];
    assert_eq!(agent_runs(&book, g_auth, g_ver), 1);
    drive(&book, &alerts, &st, now()).expect("drive");
    let runs = book.runs(Some("globex"), 10).expect("runs");
    assert_eq!(runs[0]["state"], "done", "{runs:?}");
    assert_eq!(runs[0]["outcomes"]["isolate"], "verified", "{runs:?}");

    // Semi-managed: nothing reaches the agent before a yes; a viewer cannot say it.
    let (a_auth, a_ver) = &mut agents[0];
    assert_eq!(agent_runs(&book, a_auth, a_ver), 0);
    let acme_action = by_tenant("acme")["id"].as_i64().expect("id");
    let uri = format!("/api/v1/actions/{acme_action}/approve");
    let (s, _) = send(&state, "POST", &uri, &tokens["acme-viewer"], None).await;
    assert_eq!(s, StatusCode::FORBIDDEN, "a viewer cannot approve");
    // In the console: the viewer sees no button and its form post is refused; the
    // customer admin approves there.
    let (viewer_cookie, viewer_csrf) = st.create_session("acme-viewer", now()).expect("session");
    let (admin_cookie, admin_csrf) = st.create_session("acme-admin", now()).expect("session");
    let button = format!("id=\"approve-{acme_action}\"");
    let (s, html) = console(&state, "GET", "/actions", &viewer_cookie, None).await;
    assert_eq!(s, StatusCode::OK);
    assert!(
        html.contains("awaiting_approval") && !html.contains(&button),
        "{html}"
    );
    let (s, html) = console(&state, "GET", "/actions", &admin_cookie, None).await;
    assert_eq!(s, StatusCode::OK);
    assert!(html.contains(&button), "{html}");
    assert!(
        !html.contains("db-1"),
        "globex's host is not on acme's page"
    );
    let decide = format!("/actions/{acme_action}/decide");
    let (s, _) = console(
        &state,
        "POST",
        &decide,
        &viewer_cookie,
        Some(format!("csrf={viewer_csrf}&decision=approve")),
    )
    .await;
    assert_eq!(s, StatusCode::FORBIDDEN, "a viewer's form is refused");
    // Unanswered past acme's 60 s, it escalates to acme's contact.
    let contact = |t: &str| st.approval(t).ok().and_then(|a| a.1);
    let changed = book.tick(now() + 61_000, &contact).expect("tick");
    assert_eq!(changed, vec![(acme_action, "escalated")]);
    let (_, a) = book.action(acme_action).expect("action");
    assert_eq!(a["state"], "escalated");
    assert!(
        a.to_string().contains("escalated to oncall@acme.example"),
        "{a}"
    );
    let (s, _) = console(
        &state,
        "POST",
        &decide,
        &admin_cookie,
        Some(format!("csrf={admin_csrf}&decision=approve")),
    )
    .await;
    assert_eq!(
        s,
        StatusCode::SEE_OTHER,
        "approved, back to the action's page"
    );
    assert_eq!(agent_runs(&book, a_auth, a_ver), 1);
    drive(&book, &alerts, &st, now()).expect("drive");
    let runs = book.runs(Some("acme"), 10).expect("runs");
    assert_eq!(runs[0]["state"], "done", "{runs:?}");
    assert_eq!(runs[0]["outcomes"]["isolate"], "verified", "{runs:?}");

    // Every step into the incident's timeline and the audit log — once.
    let (timeline, audited) = mirror(&book, Some(&alerts), &st).expect("mirror");
    assert!(timeline >= 10, "{timeline} timeline entries");
    assert!(audited >= timeline, "{audited} audited");
    assert_eq!(mirror(&book, Some(&alerts), &st).expect("mirror"), (0, 0));
    let incident = by_tenant("acme")["incident"].as_i64().expect("incident");
    let inc = alerts
        .incident(incident, now())
        .expect("incident")
        .expect("some");
    let log: Vec<String> = inc["log"]
        .as_array()
        .expect("log")
        .iter()
        .filter(|e| e["kind"] == "response")
        .map(|e| {
            format!(
                "{} {}",
                e["who"].as_str().unwrap_or(""),
                e["detail"]["step"].as_str().unwrap_or("")
            )
        })
        .collect();
    for want in [
        "playbook:contain-execution started",
        "playbook:contain-execution enriched",
        "playbook:contain-execution notified",
        "playbook:contain-execution requested",
        "playbook:contain-execution awaiting_approval",
        "acme-admin queued",
        "playbook:contain-execution asked",
        "playbook:contain-execution action ended",
        "playbook:contain-execution finished",
    ] {
        assert!(log.iter().any(|l| l == want), "no {want:?} in {log:#?}");
    }
    assert!(
        log.iter().any(|l| l.ends_with(" verified")),
        "the agent's verification is in the timeline: {log:#?}"
    );
    let audit = st.audit_log(Some("acme"), 500).expect("audit");
    assert!(
        audit.iter().any(|a| a.action == "action queued"
            && a.user == "acme-admin"
            && a.detail.contains("approved")),
        "the approval step is audited"
    );
    let (_, html) = console(
        &state,
        "GET",
        &format!("/incidents/{incident}"),
        &admin_cookie,
        None,
    )
    .await;
    assert!(
        html.contains("playbook contain-execution run") && html.contains("Isolating web-1"),
        "the incident page shows the playbook's steps"
    );
    // The other tenant's steps stay in its own incident.
    assert!(inc["log"]
        .as_array()
        .expect("log")
        .iter()
        .all(|e| !e.to_string().contains("db-1")));
}
