//! The cross-tenant sweep: for every API route (every path and method in the server's
//! OpenAPI document) and every console page and form, each customer role of tenant
//! `acme` tries to read and change tenant `globex`'s objects. It passes only if every
//! attempt is refused and globex's data is unchanged afterwards. Provider users doing
//! the same reads succeed (so a route that refuses everyone cannot pass for safe).

mod common;

use std::sync::Arc;

use axum::body::Body;
use axum::http::{Request, StatusCode};
use common::*;
use koban_detect::entities::Entities;
use koban_detect::stream::RuleRef;
use koban_detect::Found;
use koban_server::access::Role;
use koban_server::alerts::{AlertBook, Detected, EventRef, Grouping};
use koban_server::respond::{ActionRequest, ResponseBook};
use koban_server::{app, RuleSource};
use koban_sigma::Level;
use serde_json::Value;
use tower::ServiceExt;

const OPENAPI: &str = include_str!("../src/http/openapi.json");

struct World {
    t: TestApp,
    book: Arc<AlertBook>,
    alert: i64,
    incident: i64,
    task: i64,
    exception: i64,
    /// globex's agent and a queued action on it.
    respond: Arc<ResponseBook>,
    agent: String,
    action: i64,
}

fn detection(tenant: &str, host: &str) -> Detected {
    Detected {
        tenant: tenant.into(),
        level: Level::High,
        found: Found {
            rule: RuleRef {
                key: "sweep-rule".into(),
                title: "Sweep rule".into(),
                level: Level::High,
                tactics: vec!["execution".into()],
                techniques: vec!["T1059".into()],
            },
            time: Some(1_764_500_000_000),
            entities: Entities {
                host: Some(host.into()),
                user: Some(format!("{tenant}-user")),
                ..Entities::default()
            },
            why: "Image endswith \\x.exe".into(),
            correlation: false,
            count: 1,
            evidence: vec![EventRef {
                source: "sweep".into(),
                seq: 1,
                sub: 0,
                received_ms: 1_764_500_000_000,
            }],
        },
    }
}

fn world() -> World {
    let mut t = test_app("tenancy", default_limits());
    for tenant in ["acme", "globex"] {
        t.state.state.add_tenant(tenant).expect("tenant");
    }
    let book = Arc::new(AlertBook::open(&t.dir.join("alerts.db")).expect("book"));
    book.record(
        &[
            detection("globex", "gx-host"),
            detection("acme", "acme-host"),
        ],
        2,
        "[]",
        &Grouping::default(),
        1,
    )
    .expect("record");
    let globex_alerts = book
        .alerts(&koban_server::alerts::AlertFilter {
            tenant: Some("globex".into()),
            limit: 10,
            ..Default::default()
        })
        .expect("alerts");
    let alert = globex_alerts[0]["id"].as_i64().expect("alert id");
    let incident = globex_alerts[0]["incident"].as_i64().expect("incident id");
    let task = book
        .annotate(
            incident,
            koban_server::alerts::Annotation::Task {
                title: "image the disk",
            },
            "globex-admin",
            1,
        )
        .expect("task")
        .expect("task id");
    let exception = book
        .add_exception(
            &koban_server::alerts::ExceptionRequest {
                tenant: "globex".into(),
                rule: "sweep-rule".into(),
                field: "host".into(),
                value: "gx-build-*".into(),
                expires_ms: None,
                reason: "build farm".into(),
            },
            "globex-admin",
            1,
        )
        .expect("exception")
        .id;
    let rules = RuleSource::load(&[]).expect("rules");
    let respond = Arc::new(ResponseBook::open(&t.dir).expect("response book"));
    let enrol = respond.new_enrol_token("globex", 1).expect("enrol token");
    let agent = respond.enrol(&enrol, "gx-agent", 2).expect("enrol").agent;
    respond
        .put_playbook(
            "globex",
            "id: gx-playbook\nname: globex isolation\ntrigger: {on: alert}\nsteps: [{notify: gx-host}]\n",
            "globex-admin",
            3,
        )
        .expect("globex playbook");
    let action = respond
        .request(
            &ActionRequest {
                tenant: "globex".into(),
                agent: Some(agent.clone()),
                incident: None,
                action: koban_respond::Action::IsolateHost {},
                ttl_ms: None,
                by: "globex-admin".into(),
                run: None,
            },
            &koban_respond::Gate::AwaitApproval {
                escalate_at_ms: i64::MAX / 4,
                expire_at_ms: i64::MAX / 2,
            },
            3,
        )
        .expect("action")["id"]
        .as_i64()
        .expect("action id");
    t.state = t
        .state
        .clone()
        .with_detection(Some(book.clone()), Some(rules))
        .with_respond(Some(respond.clone()));
    World {
        respond,
        agent,
        action,
        t,
        book,
        alert,
        incident,
        task,
        exception,
    }
}

async fn send(
    w: &World,
    method: &str,
    uri: &str,
    auth: &Auth,
    body: Option<String>,
) -> (StatusCode, String) {
    let mut req = Request::builder().method(method).uri(uri);
    match auth {
        Auth::Token(tok) => req = req.header("authorization", format!("Bearer {tok}")),
        Auth::Session { cookie, csrf } => {
            req = req
                .header("cookie", format!("koban_session={cookie}"))
                .header("x-csrf-token", csrf);
        }
    }
    let body = match body {
        Some(b) => {
            req = req.header(
                "content-type",
                if uri.starts_with("/api/") {
                    "application/json"
                } else {
                    "application/x-www-form-urlencoded"
                },
            );
            Body::from(b)
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
    (status, String::from_utf8_lossy(&bytes).into_owned())
}

enum Auth {
    Token(String),
    Session { cookie: String, csrf: String },
}

/// A request body that is valid for the route, aimed at globex.
fn body_for(p: &str) -> String {
    if p.ends_with("/verdict") {
        r#"{"verdict":"false_positive","reason":"sweep","exception":{"field":"host","value":"gx-host"}}"#.to_string()
    } else if p.ends_with("/state") {
        r#"{"state":"triage","note":"sweep"}"#.into()
    } else if p.ends_with("/assign") {
        r#"{"assignee":"mallory"}"#.into()
    } else if p.ends_with("/comments") {
        r#"{"text":"sweep"}"#.into()
    } else if p.ends_with("/evidence") {
        r#"{"url":"https://evil.example/x"}"#.into()
    } else if p.ends_with("/tasks") {
        r#"{"title":"sweep"}"#.into()
    } else if p.contains("/rules/") && p.starts_with("/api/v1/tenants/") {
        r#"{"enabled":false}"#.into()
    } else if p.ends_with("/exceptions") || p.ends_with("/exceptions/preview") {
        r#"{"tenant":"globex","rule":"sweep-rule","field":"host","value":"*"}"#.into()
    } else if p.ends_with("/assets") {
        r#"[{"name":"x","kind":"host","patterns":["*"],"criticality":"low"}]"#.into()
    } else if p.contains("/sla/") {
        r#"{"detect_s":1,"acknowledge_s":1,"contain_s":1,"resolve_s":1}"#.into()
    } else if p.ends_with("/approval") {
        r#"{"timeout_s":60,"escalate_to":"mallory@evil.example"}"#.into()
    } else if p.ends_with("/service") {
        r#"{"service":"semi_managed"}"#.into()
    } else if p == "/api/v1/tenants" {
        r#"{"name":"evil"}"#.into()
    } else if p == "/api/v1/tokens" {
        r#"{"tenant":"globex","source":"evil"}"#.into()
    } else if p == "/api/v1/users" {
        r#"{"name":"mallory","password":"a long enough password","role":"customer_admin","tenant":"globex"}"#.into()
    } else if p == "/api/v1/search" {
        r#"{"tenant":"globex","limit":10}"#.into()
    } else if p == "/api/v1/hunt" {
        r#"{"tenant":"globex","query":"gx-host | head 5"}"#.into()
    } else if p == "/api/v1/retrohunt" {
        r#"{"tenant":"globex"}"#.into()
    } else if p == "/api/v1/actions" {
        r#"{"tenant":"globex","agent":"{agent}","action":{"kind":"isolate_host"}}"#.into()
    } else if p == "/api/v1/playbooks" {
        r#"{"tenant":"globex","yaml":"id: evil\ntrigger: {on: alert}\nsteps: [{notify: x}]\n"}"#
            .into()
    } else if p == "/api/v1/agents/enrol-tokens" {
        r#"{"tenant":"globex"}"#.into()
    } else if p == "/api/v1/agents/enrol" {
        r#"{"token":"kbe_not-a-token","hostname":"evil"}"#.into()
    } else if p == "/api/v1/agents/files" {
        r#"{"number":1,"path":"/etc/shadow","sha256":"00","data":"AA=="}"#.into()
    } else if p == "/api/v1/agents/logs" {
        r#"{"first":1,"lines":["forged line"]}"#.into()
    } else if p == "/api/v1/agents/result" {
        r#"{"number":1,"ran":true,"verified":true,"detail":"forged"}"#.into()
    } else if p == "/api/v1/searches" {
        r#"{"tenant":"globex","name":"sweep","query":"EventID=1"}"#.into()
    } else {
        "{}".into()
    }
}

fn fill(path: &str, w: &World) -> String {
    let id = if path.starts_with("/api/v1/alerts") {
        w.alert
    } else if path.contains("/exceptions/") {
        w.exception
    } else if path.starts_with("/api/v1/actions/") || path.starts_with("/api/v1/evidence/") {
        w.action
    } else {
        w.incident
    };
    path.replace("{id}", &id.to_string())
        .replace("{task}", &w.task.to_string())
        .replace("{tenant}", "globex")
        .replace("{rule}", "sweep-rule")
        .replace("{severity}", "high")
        .replace("{decision}", "approve")
        .replace("{index}", "0")
}

/// Is this answer a refusal (or, for a list, free of globex)?
fn refused(status: StatusCode, body: &str, list: bool) -> bool {
    if status == StatusCode::FORBIDDEN || status == StatusCode::NOT_FOUND {
        return true;
    }
    // A list narrowed to the caller's own tenant is fine as long as nothing of
    // globex is in it.
    list && status.is_success() && !body.contains("globex") && !body.contains("gx-host")
}

#[tokio::test]
async fn no_customer_role_reaches_another_tenant_through_any_route_or_page() {
    let w = world();
    let st = &w.t.state.state;
    let mut callers: Vec<(Role, Auth, Auth)> = Vec::new();
    for (name, role) in [
        ("acme-admin", Role::CustomerAdmin),
        ("acme-analyst", Role::CustomerAnalyst),
        ("acme-viewer", Role::CustomerViewer),
    ] {
        st.create_user(name, "a long enough password", role, Some("acme"))
            .expect("user");
        let token = st.create_user_token(name).expect("token");
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .expect("clock")
            .as_millis() as i64;
        let (cookie, csrf) = st.create_session(name, now).expect("session");
        callers.push((role, Auth::Token(token), Auth::Session { cookie, csrf }));
    }
    let doc: Value = serde_json::from_str(OPENAPI).expect("openapi");
    let mut api_routes: Vec<(String, String)> = Vec::new();
    for (path, ops) in doc["paths"].as_object().expect("paths") {
        for method in ops.as_object().expect("ops").keys() {
            api_routes.push((method.to_uppercase(), path.clone()));
        }
    }
    let console: Vec<(&str, String, Option<String>)> = vec![
        ("GET", "/dashboard?tenant=globex".into(), None),
        ("GET", "/alerts?tenant=globex".into(), None),
        ("GET", "/incidents?tenant=globex".into(), None),
        ("GET", format!("/incidents/{}", w.incident), None),
        ("GET", "/rules?tenant=globex".into(), None),
        ("GET", "/sources".into(), None),
        ("GET", "/admin".into(), None),
        ("GET", "/hunt?tenant=globex".into(), None),
        ("GET", "/actions?tenant=globex".into(), None),
        ("GET", format!("/actions/{}", w.action), None),
        (
            "POST",
            format!("/actions/{}/decide", w.action),
            Some("decision=approve".into()),
        ),
        (
            "POST",
            format!("/actions/{}/decide", w.action),
            Some("decision=reject".into()),
        ),
        (
            "GET",
            "/timeline?tenant=globex&kind=host&value=gx-host".into(),
            None,
        ),
        (
            "POST",
            "/hunt/save".into(),
            Some("tenant=globex&name=sweep&query=EventID%3D1".into()),
        ),
        (
            "POST",
            format!("/incidents/{}/state", w.incident),
            Some("state=triage".into()),
        ),
        (
            "POST",
            format!("/incidents/{}/comment", w.incident),
            Some("text=sweep".into()),
        ),
        (
            "POST",
            "/alerts/triage".into(),
            Some(format!("verdict=benign&ids={}", w.alert)),
        ),
        (
            "POST",
            "/rules/toggle".into(),
            Some("tenant=globex&rule=sweep-rule&enabled=false".into()),
        ),
        (
            "POST",
            "/sources/token".into(),
            Some("tenant=globex&source=evil".into()),
        ),
        (
            "POST",
            "/admin/user".into(),
            Some(
                "name=mallory&password=a+long+enough+password&role=customer_admin&tenant=globex"
                    .into(),
            ),
        ),
    ];
    let mut tried = 0;
    let mut leaks = Vec::new();
    for (role, token, session) in &callers {
        for (method, path) in &api_routes {
            let mut uri = fill(path, &w);
            let list = method == "GET" && !path.contains('{');
            if method == "GET" {
                uri.push_str(if uri.contains('?') { "&" } else { "?" });
                uri.push_str("tenant=globex");
            }
            let body = (method != "GET").then(|| body_for(path).replace("{agent}", &w.agent));
            for auth in [token, session] {
                let (status, text) = send(&w, method, &uri, auth, body.clone()).await;
                tried += 1;
                // `/api/v1/me` and `/api/v1/openapi.json` hold no tenant data.
                let harmless = path == "/api/v1/me" || path == "/api/v1/openapi.json";
                // The agents' own routes take agent credentials: a user's are refused.
                let agent_route = matches!(
                    path.as_str(),
                    "/api/v1/agents/enrol"
                        | "/api/v1/agents/poll"
                        | "/api/v1/agents/result"
                        | "/api/v1/agents/logs"
                        | "/api/v1/agents/files"
                );
                let refused = refused(status, &text, list)
                    || (agent_route && status == StatusCode::UNAUTHORIZED);
                if !harmless && !refused {
                    leaks.push(format!(
                        "{role} {method} {uri}: {status} {}",
                        &text[..text.len().min(160)]
                    ));
                }
            }
        }
        for (method, uri, form) in &console {
            let Auth::Session { csrf, .. } = session else {
                continue;
            };
            let body = form.as_ref().map(|f| format!("csrf={csrf}&{f}"));
            let (status, text) = send(&w, method, uri, session, body).await;
            tried += 1;
            let list = *method == "GET";
            if !refused(status, &text, list) {
                leaks.push(format!("{role} console {method} {uri}: {status}"));
            }
        }
    }
    let routes = api_routes.len() + console.len();
    println!(
        "cross-tenant sweep: {} API routes (token and session) + {} console pages/forms × {} customer roles = {tried} attempts, {} not refused",
        api_routes.len(),
        console.len(),
        callers.len(),
        leaks.len()
    );
    assert!(leaks.is_empty(), "refusals missing:\n{}", leaks.join("\n"));
    assert!(routes >= 40, "the sweep covers {routes} routes");

    // Nothing of globex changed.
    let inc = w
        .book
        .incident(w.incident, 2)
        .expect("read")
        .expect("incident");
    assert_eq!(inc["state"], "new");
    assert_eq!(inc["assignee"], Value::Null);
    let kinds: Vec<&str> = inc["log"]
        .as_array()
        .expect("log")
        .iter()
        .filter_map(|e| e["kind"].as_str())
        .collect();
    assert_eq!(
        kinds,
        ["created", "task"],
        "no comment, verdict, state change"
    );
    assert_eq!(w.book.exceptions("globex").expect("exceptions").len(), 1);
    let (_, action) = w.respond.action(w.action).expect("action");
    assert_eq!(action["state"], "awaiting_approval", "{action}");
    assert_eq!(
        w.respond
            .actions(Some("globex"), 10)
            .expect("actions")
            .len(),
        1,
        "no action added for globex"
    );
    let playbooks = w.respond.playbooks(Some("globex")).expect("playbooks");
    assert_eq!(
        playbooks.len(),
        1,
        "no playbook added or deleted for globex"
    );
    assert!(st.users(Some("globex")).expect("users").is_empty());
    let a = w.book.alert(w.alert).expect("alert").expect("alert");
    assert_eq!(a["verdict"], Value::Null);

    // Positive control: a provider analyst reads globex's incident and alert.
    st.create_user("pa", "a long enough password", Role::ProviderAnalyst, None)
        .expect("user");
    let pa = Auth::Token(st.create_user_token("pa").expect("token"));
    let (s1, _) = send(
        &w,
        "GET",
        &format!("/api/v1/incidents/{}", w.incident),
        &pa,
        None,
    )
    .await;
    let (s2, body) = send(&w, "GET", "/api/v1/alerts?tenant=globex", &pa, None).await;
    assert_eq!(s1, StatusCode::OK);
    assert_eq!(s2, StatusCode::OK);
    assert!(body.contains("gx-host"));
    // ... and that read is in globex's audit log.
    let audit = st.audit_log(Some("globex"), 100).expect("audit");
    assert!(
        audit.iter().any(|e| e.user == "pa" && e.action == "read"),
        "{audit:?}"
    );
}
