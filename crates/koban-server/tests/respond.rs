//! The response API end to end through the router: enrolment, the approval gate of
//! each service type, who may approve, signed commands on poll, reports, undo — and
//! another tenant's customers seeing none of it.

mod common;

use std::sync::Arc;

use axum::body::Body;
use axum::http::{Request, StatusCode};
use base64::Engine;
use common::*;
use koban_respond::{CommandVerifier, SignedCommand};
use koban_server::access::Role;
use koban_server::app;
use koban_server::respond::ResponseBook;
use serde_json::{json, Value};
use tower::ServiceExt;

struct World {
    t: TestApp,
    tokens: std::collections::HashMap<&'static str, String>,
}

fn world() -> World {
    let mut t = test_app("respond", default_limits());
    let st = &t.state.state;
    st.add_tenant("acme").expect("tenant");
    st.add_tenant("globex").expect("tenant");
    let mut tokens = std::collections::HashMap::new();
    for (name, role, tenant) in [
        ("pat", Role::ProviderAnalyst, None),
        ("acme-admin", Role::CustomerAdmin, Some("acme")),
        ("acme-analyst", Role::CustomerAnalyst, Some("acme")),
        ("acme-viewer", Role::CustomerViewer, Some("acme")),
        ("globex-admin", Role::CustomerAdmin, Some("globex")),
    ] {
        st.create_user(name, "a long enough password", role, tenant)
            .expect("user");
        tokens.insert(name, st.create_user_token(name).expect("token"));
    }
    let book = Arc::new(ResponseBook::open(&t.dir).expect("response book"));
    t.state = t.state.clone().with_respond(Some(book));
    World { t, tokens }
}

async fn send(
    w: &World,
    method: &str,
    uri: &str,
    auth: Option<String>,
    body: Option<Value>,
) -> (StatusCode, Value) {
    let mut req = Request::builder().method(method).uri(uri);
    if let Some(a) = auth {
        req = req.header("authorization", a);
    }
    let body = match body {
        Some(b) => {
            req = req.header("content-type", "application/json");
            Body::from(b.to_string())
        }
        None => Body::empty(),
    };
    let resp = app(w.t.state.clone())
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

fn user(w: &World, name: &str) -> Option<String> {
    Some(format!("Bearer {}", w.tokens[name]))
}

#[tokio::test]
async fn actions_pass_the_gate_reach_the_agent_signed_and_end_verified() {
    let owned = world();
    let w = &owned;
    // Enrolment: a customer admin makes the token; it works once.
    let (s, tok) = send(
        w,
        "POST",
        "/api/v1/agents/enrol-tokens",
        user(w, "acme-admin"),
        Some(json!({"tenant":"acme"})),
    )
    .await;
    assert_eq!(s, StatusCode::CREATED, "{tok}");
    let (s, _) = send(
        w,
        "POST",
        "/api/v1/agents/enrol-tokens",
        user(w, "acme-analyst"),
        Some(json!({"tenant":"acme"})),
    )
    .await;
    assert_eq!(s, StatusCode::FORBIDDEN, "an analyst does not enrol agents");
    let (s, _) = send(
        w,
        "POST",
        "/api/v1/agents/enrol-tokens",
        user(w, "globex-admin"),
        Some(json!({"tenant":"acme"})),
    )
    .await;
    assert_eq!(s, StatusCode::NOT_FOUND, "another tenant's admin");
    let token = tok["token"].as_str().expect("token").to_owned();
    let (s, enrolled) = send(
        w,
        "POST",
        "/api/v1/agents/enrol",
        None,
        Some(json!({"token": token, "hostname": "web-01"})),
    )
    .await;
    assert_eq!(s, StatusCode::OK, "{enrolled}");
    let (s, _) = send(
        w,
        "POST",
        "/api/v1/agents/enrol",
        None,
        Some(json!({"token": token, "hostname": "web-02"})),
    )
    .await;
    assert_eq!(s, StatusCode::UNAUTHORIZED, "a spent token");
    let agent = enrolled["agent"].as_str().expect("agent").to_owned();
    let agent_auth = Some(format!(
        "Agent {agent}:{}",
        enrolled["secret"].as_str().expect("secret")
    ));
    let (s, _) = send(
        w,
        "POST",
        "/api/v1/agents/poll",
        Some(format!("Agent {agent}:wrong")),
        Some(json!({})),
    )
    .await;
    assert_eq!(s, StatusCode::UNAUTHORIZED);

    // Fully managed: the provider's analyst acts at once.
    let ask = |who: &'static str, kind: Value| {
        let body = json!({"tenant": "acme", "agent": agent, "action": kind});
        let auth = user(w, who);
        async move { send(w, "POST", "/api/v1/actions", auth, Some(body)).await }
    };
    let (s, a) = ask("pat", json!({"kind": "block_ip", "ip": "203.0.113.7"})).await;
    assert_eq!(s, StatusCode::CREATED, "{a}");
    assert_eq!(a["state"], "queued");
    let (s, v) = ask("acme-viewer", json!({"kind": "isolate_host"})).await;
    assert_eq!(s, StatusCode::FORBIDDEN, "a viewer asks for nothing: {v}");
    let (s, v) = ask("pat", json!({"kind": "block_ip", "ip": "10.0.0.0/33"})).await;
    assert_eq!(s, StatusCode::BAD_REQUEST);
    assert!(v.to_string().contains("action"), "{v}");
    let (s, _) = send(
        w,
        "POST",
        "/api/v1/actions",
        user(w, "globex-admin"),
        Some(json!({"tenant": "globex", "agent": agent, "action": {"kind": "isolate_host"}})),
    )
    .await;
    assert_eq!(
        s,
        StatusCode::NOT_FOUND,
        "globex cannot aim at acme's agent"
    );

    // The agent's poll carries it, signed with the key it enrolled with.
    let key = base64::engine::general_purpose::STANDARD
        .decode(enrolled["server_key"].as_str().expect("key"))
        .expect("b64");
    let mut verifier = CommandVerifier::new(&key, &agent, 0).expect("verifier");
    let (s, polled) = send(
        w,
        "POST",
        "/api/v1/agents/poll",
        agent_auth.clone(),
        Some(json!({"status": {"isolated": false}})),
    )
    .await;
    assert_eq!(s, StatusCode::OK, "{polled}");
    let cmds: Vec<SignedCommand> =
        serde_json::from_value(polled["commands"].clone()).expect("commands");
    assert_eq!(cmds.len(), 1);
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock")
        .as_millis() as i64;
    let cmd = verifier.accept(&cmds[0], now).expect("a genuine command");
    assert_eq!(cmd.action_id, a["id"].as_i64().expect("id"));
    let (_, polled) = send(
        w,
        "POST",
        "/api/v1/agents/poll",
        agent_auth.clone(),
        Some(json!({})),
    )
    .await;
    assert_eq!(
        polled["commands"].as_array().map(Vec::len),
        Some(0),
        "sent once"
    );

    // An agent that reports success but whose observation differs stays unverified.
    let (s, r) = send(w, "POST", "/api/v1/agents/result", agent_auth.clone(),
        Some(json!({"number": cmd.number, "ran": true, "verified": false, "detail": "no element in the set", "observed": {"listed": false}}))).await;
    assert_eq!(s, StatusCode::OK, "{r}");
    assert_eq!(r["state"], "unverified");

    // Semi-managed: the provider waits for the customer admin; viewers and analysts
    // cannot approve, nor can the provider, nor another tenant's admin.
    w.t.state
        .state
        .set_service("acme", "semi_managed")
        .expect("service");
    let (_, a) = ask("pat", json!({"kind": "isolate_host"})).await;
    assert_eq!(a["state"], "awaiting_approval", "{a}");
    let id = a["id"].as_i64().expect("id");
    let approve = |who: &'static str| {
        let auth = user(w, who);
        async move {
            send(
                w,
                "POST",
                &format!("/api/v1/actions/{id}/approve"),
                auth,
                Some(json!({})),
            )
            .await
            .0
        }
    };
    assert_eq!(approve("acme-viewer").await, StatusCode::FORBIDDEN);
    assert_eq!(approve("acme-analyst").await, StatusCode::FORBIDDEN);
    assert_eq!(approve("pat").await, StatusCode::FORBIDDEN);
    assert_eq!(approve("globex-admin").await, StatusCode::NOT_FOUND);
    let (_, polled) = send(
        w,
        "POST",
        "/api/v1/agents/poll",
        agent_auth.clone(),
        Some(json!({})),
    )
    .await;
    assert_eq!(
        polled["commands"].as_array().map(Vec::len),
        Some(0),
        "nothing runs unapproved"
    );
    assert_eq!(approve("acme-admin").await, StatusCode::OK);
    let (_, polled) = send(
        w,
        "POST",
        "/api/v1/agents/poll",
        agent_auth.clone(),
        Some(json!({})),
    )
    .await;
    let cmds: Vec<SignedCommand> =
        serde_json::from_value(polled["commands"].clone()).expect("commands");
    let cmd = verifier.accept(&cmds[0], now).expect("approved command");
    assert!(matches!(cmd.action, koban_respond::Action::IsolateHost {}));
    let (_, r) = send(w, "POST", "/api/v1/agents/result", agent_auth.clone(),
        Some(json!({"number": cmd.number, "ran": true, "verified": true, "detail": "isolated", "observed": {"table_present": true}}))).await;
    assert_eq!(r["state"], "verified");
    // The customer admin's own request needs no one else; the undo closes the original.
    let (s, u) = send(
        w,
        "POST",
        &format!("/api/v1/actions/{id}/undo"),
        user(w, "acme-admin"),
        Some(json!({})),
    )
    .await;
    assert_eq!(s, StatusCode::OK, "{u}");
    assert_eq!(u["action"]["kind"], "release_host");
    let (_, polled) = send(
        w,
        "POST",
        "/api/v1/agents/poll",
        agent_auth.clone(),
        Some(json!({})),
    )
    .await;
    let cmds: Vec<SignedCommand> =
        serde_json::from_value(polled["commands"].clone()).expect("commands");
    let cmd = verifier.accept(&cmds[0], now).expect("undo command");
    send(
        w,
        "POST",
        "/api/v1/agents/result",
        agent_auth.clone(),
        Some(json!({"number": cmd.number, "ran": true, "verified": true, "detail": "released"})),
    )
    .await;
    let (_, orig) = send(
        w,
        "GET",
        &format!("/api/v1/actions/{id}"),
        user(w, "acme-viewer"),
        None,
    )
    .await;
    assert_eq!(orig["state"], "undone", "{orig}");
    let steps: Vec<&str> = orig["steps"]
        .as_array()
        .expect("steps")
        .iter()
        .filter_map(|s| s["step"].as_str())
        .collect();
    assert_eq!(
        steps,
        [
            "requested",
            "awaiting_approval",
            "queued",
            "sent",
            "verified",
            "undo requested",
            "undone"
        ],
        "{orig}"
    );

    // Shipped logs: a resend after a lost answer overlaps what the server holds; the
    // overlap is not stored twice.
    let before = all_records(&w.t.wal).len();
    let ship = |first: u64, lines: Vec<String>| {
        let auth = agent_auth.clone();
        async move {
            send(
                w,
                "POST",
                "/api/v1/agents/logs",
                auth,
                Some(json!({"first": first, "lines": lines})),
            )
            .await
        }
    };
    let batch = |from: u64, n: u64| {
        (from..from + n)
            .map(|i| format!("<38>Dec  3 10:00:00 web-01 sshd[1]: line {i}"))
            .collect::<Vec<_>>()
    };
    let (s, a) = ship(1, batch(1, 10)).await;
    assert_eq!((s, a["acked"].as_u64()), (StatusCode::OK, Some(10)), "{a}");
    let (_, a) = ship(6, batch(6, 10)).await;
    assert_eq!(a["acked"].as_u64(), Some(15));
    let (_, a) = ship(1, batch(1, 15)).await;
    assert_eq!(a["acked"].as_u64(), Some(15), "all held already");
    let recs = all_records(&w.t.wal);
    let got: Vec<String> = recs[before..]
        .iter()
        .map(|r| String::from_utf8_lossy(&r.record.payload).into_owned())
        .collect();
    assert_eq!(got, batch(1, 15), "each line once, in order");
    assert!(recs[before..]
        .iter()
        .all(|r| r.record.tenant == "acme" && r.record.source == "agent.web-01"));
    let (s, _) = send(
        w,
        "POST",
        "/api/v1/agents/logs",
        user(w, "acme-admin"),
        Some(json!({"first": 16, "lines": ["x"]})),
    )
    .await;
    assert_eq!(s, StatusCode::UNAUTHORIZED, "users do not ship as agents");

    // Lists: globex sees nothing of acme.
    let (_, list) = send(w, "GET", "/api/v1/actions", user(w, "globex-admin"), None).await;
    assert_eq!(list["actions"].as_array().map(Vec::len), Some(0), "{list}");
    let (_, list) = send(w, "GET", "/api/v1/agents", user(w, "globex-admin"), None).await;
    assert_eq!(list["agents"].as_array().map(Vec::len), Some(0), "{list}");
    let (s, _) = send(
        w,
        "GET",
        &format!("/api/v1/actions/{id}"),
        user(w, "globex-admin"),
        None,
    )
    .await;
    assert_eq!(s, StatusCode::NOT_FOUND);
    let (_, list) = send(w, "GET", "/api/v1/agents", user(w, "acme-viewer"), None).await;
    assert_eq!(list["agents"][0]["hostname"], "web-01");
}
