//! The console: server-rendered pages embedded in the binary, for provider analysts and
//! customers alike. A page is a session (secure cookie) + a [`Guard`] — the same one
//! the API uses, so a page can show or change nothing the API would refuse. Forms
//! carry the session's CSRF token; live updates come over server-sent events.
//!
//! - `i18n.rs`: English and Japanese; `html.rs`: escaping, the frame, CSS and script;
//!   `charts.rs`: SVG bars and the ATT&CK heat map; `pages.rs`: each page's HTML;
//!   `hunting.rs` the hunt and timeline pages; `response.rs` actions, approvals, runs.

mod charts;
mod html;
mod hunting;
pub mod i18n;
mod pages;
mod response;

use std::convert::Infallible;
use std::time::Duration;

use axum::extract::{FromRequestParts, Path, Query, State};
use axum::http::request::Parts;
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{Html, IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use axum::Router;

use crate::access::{Principal, Role};
use crate::alerts::{AlertFilter, Annotation, IncidentFilter};
use crate::guard::{Guard, GuardError};
use crate::http::caller::{cookie, SESSION_COOKIE};
use crate::http::AppState;
use crate::identity::Login;
use crate::state::now_ms;
use html::{bare, esc, page, Frame};
use i18n::{t, Lang};

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/login", get(login_page).post(login))
        .route("/logout", post(logout))
        .route("/lang", post(set_lang))
        .route("/dashboard", get(dashboard))
        .route("/alerts", get(alerts))
        .route("/alerts/triage", post(bulk_triage))
        .route("/incidents", get(incidents))
        .route("/incidents/{id}", get(incident))
        .route("/incidents/{id}/state", post(incident_state))
        .route("/incidents/{id}/comment", post(incident_comment))
        .route("/rules", get(rules))
        .route("/rules/toggle", post(rule_toggle))
        .route("/hunt", get(hunting::hunt_page))
        .route("/hunt/save", post(hunting::save_search))
        .route("/timeline", get(hunting::timeline_page))
        .route("/console/hunt.js", get(hunting::hunt_js))
        .route("/actions", get(response::actions_page))
        .route("/actions/{id}", get(response::action_page))
        .route("/actions/{id}/decide", post(response::decide))
        .route("/sources", get(sources))
        .route("/sources/token", post(source_token))
        .route("/admin", get(admin))
        .route("/admin/user", post(admin_user))
        .route("/console/app.css", get(css))
        .route("/console/app.js", get(js))
        .route("/console/events", get(events))
}

/// A logged-in console user; without a valid session, pages redirect to `/login`.
pub struct Viewer {
    pub who: Principal,
    pub csrf: String,
    pub lang: Lang,
    pub remote: Option<String>,
}

impl FromRequestParts<AppState> for Viewer {
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, st: &AppState) -> Result<Self, Response> {
        let to_login = || Redirect::to("/login").into_response();
        let Some(token) = cookie(&parts.headers, SESSION_COOKIE) else {
            return Err(to_login());
        };
        let Ok(Some((who, csrf))) = st.state.session(&token, now_ms()) else {
            return Err(to_login());
        };
        let lang = who
            .lang
            .as_deref()
            .and_then(Lang::parse)
            .unwrap_or_else(|| Lang::from_accept(accept_language(&parts.headers)));
        let remote = parts
            .extensions
            .get::<axum::extract::ConnectInfo<crate::http::PeerAddr>>()
            .map(|c| c.0 .0.to_string());
        Ok(Viewer {
            who,
            csrf,
            lang,
            remote,
        })
    }
}

fn accept_language(h: &HeaderMap) -> Option<&str> {
    h.get(header::ACCEPT_LANGUAGE).and_then(|v| v.to_str().ok())
}

impl Viewer {
    fn guard(&self, st: &AppState) -> Guard {
        Guard::new(
            st.alerts.clone(),
            st.state.clone(),
            self.who.clone(),
            self.remote.clone(),
        )
    }

    fn frame(&self, active: &'static str, title: String) -> Frame<'_> {
        Frame {
            lang: self.lang,
            who: &self.who,
            csrf: &self.csrf,
            active,
            title,
        }
    }

    /// A refusal or failure as a page with the right status.
    fn failure(&self, e: GuardError) -> Response {
        let (status, msg) = match &e {
            GuardError::Denied(crate::access::Denied::OtherTenant)
            | GuardError::Triage(crate::alerts::TriageError::NotFound(..)) => {
                (StatusCode::NOT_FOUND, t(self.lang, "not_found").to_owned())
            }
            GuardError::Denied(d) => (
                StatusCode::FORBIDDEN,
                format!("{}: {d}", t(self.lang, "refused")),
            ),
            GuardError::Triage(crate::alerts::TriageError::Invalid(m)) => {
                (StatusCode::BAD_REQUEST, m.clone())
            }
            GuardError::Triage(crate::alerts::TriageError::Db(err)) => {
                tracing::error!(error = %err, "console: alerts database");
                (StatusCode::INTERNAL_SERVER_ERROR, "internal error".into())
            }
        };
        let body = format!("<p class=\"err\" id=\"error\">{}</p>", esc(&msg));
        (
            status,
            Html(page(&self.frame("", t(self.lang, "refused").into()), &body)),
        )
            .into_response()
    }

    /// The refusal of a form whose CSRF token is not the session's.
    fn csrf_refusal(&self, form: &[(String, String)]) -> Option<Response> {
        (field(form, "csrf") != Some(self.csrf.as_str()))
            .then(|| (StatusCode::FORBIDDEN, "missing or wrong CSRF token").into_response())
    }
}

/// `application/x-www-form-urlencoded` pairs, repeated keys kept.
fn parse_form(body: &[u8]) -> Vec<(String, String)> {
    fn decode(s: &str) -> String {
        let bytes = s.as_bytes();
        let mut out = Vec::with_capacity(bytes.len());
        let mut i = 0;
        while i < bytes.len() {
            match bytes[i] {
                b'+' => out.push(b' '),
                b'%' if i + 2 < bytes.len() => {
                    match u8::from_str_radix(s.get(i + 1..i + 3).unwrap_or("zz"), 16) {
                        Ok(b) => {
                            out.push(b);
                            i += 2;
                        }
                        Err(_) => out.push(b'%'),
                    }
                }
                b => out.push(b),
            }
            i += 1;
        }
        String::from_utf8_lossy(&out).into_owned()
    }
    String::from_utf8_lossy(body)
        .split('&')
        .filter(|kv| !kv.is_empty())
        .map(|kv| {
            let (k, v) = kv.split_once('=').unwrap_or((kv, ""));
            (decode(k), decode(v))
        })
        .collect()
}

fn field<'a>(form: &'a [(String, String)], name: &str) -> Option<&'a str> {
    form.iter()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.as_str())
}

/// Runs guarded work off the async threads.
async fn run<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, GuardError> + Send + 'static,
) -> Result<T, GuardError> {
    tokio::task::spawn_blocking(f).await.unwrap_or_else(|_| {
        Err(crate::alerts::TriageError::Invalid("the request failed".into()).into())
    })
}

async fn login_page(headers: HeaderMap) -> Html<String> {
    let lang = Lang::from_accept(accept_language(&headers));
    Html(bare(lang, t(lang, "login"), &pages::login(lang, None)))
}

async fn login(
    State(st): State<AppState>,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> Response {
    let lang = Lang::from_accept(accept_language(&headers));
    let form = parse_form(&body);
    let user = field(&form, "user").unwrap_or_default().to_owned();
    let password = field(&form, "password").unwrap_or_default().to_owned();
    let state = st.state.clone();
    let outcome = tokio::task::spawn_blocking(move || {
        let login = state.login(&user, &password, now_ms())?;
        match login {
            Login::Ok(p) => {
                let (token, _) = state.create_session(&p.user, now_ms())?;
                Ok::<_, crate::state::StateError>((Login::Ok(p), Some(token)))
            }
            other => Ok((other, None)),
        }
    })
    .await;
    let refused = |key: &'static str| {
        (
            StatusCode::UNAUTHORIZED,
            Html(bare(
                lang,
                t(lang, "login"),
                &pages::login(lang, Some(t(lang, key))),
            )),
        )
            .into_response()
    };
    match outcome {
        Ok(Ok((Login::Ok(_), Some(token)))) => {
            let cookie = format!(
                "{SESSION_COOKIE}={token}; Path=/; Secure; HttpOnly; SameSite=Strict; Max-Age={}",
                crate::identity::SESSION_MS / 1000
            );
            let mut resp = Redirect::to("/dashboard").into_response();
            if let Ok(v) = HeaderValue::from_str(&cookie) {
                resp.headers_mut().insert(header::SET_COOKIE, v);
            }
            resp
        }
        Ok(Ok((Login::Locked(_), _))) => refused("locked"),
        Ok(Ok(_)) => refused("login_failed"),
        _ => (StatusCode::INTERNAL_SERVER_ERROR, "login failed").into_response(),
    }
}

async fn logout(
    State(st): State<AppState>,
    headers: HeaderMap,
    v: Viewer,
    body: axum::body::Bytes,
) -> Response {
    let form = parse_form(&body);
    if let Some(r) = v.csrf_refusal(&form) {
        return r;
    }
    if let Some(token) = cookie(&headers, SESSION_COOKIE) {
        let _ = st.state.end_session(&token);
    }
    let mut resp = Redirect::to("/login").into_response();
    resp.headers_mut().insert(
        header::SET_COOKIE,
        HeaderValue::from_static(
            "koban_session=; Path=/; Secure; HttpOnly; SameSite=Strict; Max-Age=0",
        ),
    );
    resp
}

async fn set_lang(
    State(st): State<AppState>,
    v: Viewer,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> Response {
    let form = parse_form(&body);
    if let Some(r) = v.csrf_refusal(&form) {
        return r;
    }
    if let Some(lang) = field(&form, "lang").and_then(Lang::parse) {
        let _ = st.state.set_lang(&v.who.user, lang.code());
    }
    let back = headers
        .get(header::REFERER)
        .and_then(|r| r.to_str().ok())
        .and_then(|r| {
            r.find("://")
                .and_then(|i| r[i + 3..].find('/').map(|j| r[i + 3 + j..].to_owned()))
        })
        .unwrap_or_else(|| "/dashboard".into());
    Redirect::to(&back).into_response()
}

#[derive(serde::Deserialize, Default)]
struct TenantQuery {
    tenant: Option<String>,
}

async fn dashboard(
    State(st): State<AppState>,
    v: Viewer,
    Query(q): Query<TenantQuery>,
) -> Response {
    let g = v.guard(&st);
    let tenant = q.tenant.filter(|t| !t.is_empty());
    let scope = match g.narrow(tenant.clone()) {
        Ok(s) => s,
        Err(e) => return v.failure(e),
    };
    let data = match run(move || g.dashboard(tenant)).await {
        Ok(d) => d,
        Err(e) => return v.failure(e),
    };
    let events = st
        .search
        .as_ref()
        .map(|s| s.daily_counts(scope.as_deref()))
        .unwrap_or_default();
    let silent = silent_sources(&st, scope.as_deref());
    let body = pages::dashboard(v.lang, &data, &events, &silent);
    Html(page(
        &v.frame("dashboard", t(v.lang, "dashboard").into()),
        &body,
    ))
    .into_response()
}

/// Sources in scope that sent nothing for an hour, with when they last did.
fn silent_sources(st: &AppState, scope: Option<&str>) -> Vec<(String, String, i64)> {
    let now = now_ms();
    st.intake
        .metrics
        .all_sources()
        .into_iter()
        .filter(|((tenant, _), c)| {
            scope.is_none_or(|s| s == tenant) && c.last_ms > 0 && now - c.last_ms > 3_600_000
        })
        .map(|((tenant, source), c)| (tenant, source, c.last_ms))
        .collect()
}

#[derive(serde::Deserialize, Default)]
struct AlertQuery {
    tenant: Option<String>,
    verdict: Option<String>,
    rule: Option<String>,
    before: Option<i64>,
    msg: Option<String>,
}

async fn alerts(State(st): State<AppState>, v: Viewer, Query(q): Query<AlertQuery>) -> Response {
    let g = v.guard(&st);
    let f = AlertFilter {
        tenant: q.tenant.clone().filter(|t| !t.is_empty()),
        verdict: q.verdict.clone().filter(|t| !t.is_empty()),
        rule: q.rule.clone().filter(|t| !t.is_empty()),
        before_id: q.before,
        limit: 100,
        incident: None,
    };
    let list = match run(move || g.alerts(f)).await {
        Ok(l) => l,
        Err(e) => return v.failure(e),
    };
    let can_triage = v
        .who
        .allow(
            v.who.tenant.as_deref().or(Some("")),
            crate::access::Action::Triage,
        )
        .is_ok()
        || v.who.role.is_provider();
    let body = pages::alerts(
        v.lang,
        &v.csrf,
        &list,
        (q.tenant.as_deref(), q.verdict.as_deref(), q.rule.as_deref()),
        can_triage,
        q.msg.as_deref(),
    );
    Html(page(&v.frame("alerts", t(v.lang, "alerts").into()), &body)).into_response()
}

async fn bulk_triage(State(st): State<AppState>, v: Viewer, body: axum::body::Bytes) -> Response {
    let form = parse_form(&body);
    if let Some(r) = v.csrf_refusal(&form) {
        return r;
    }
    let Some(verdict) = field(&form, "verdict").and_then(koban_detect::Verdict::parse) else {
        return v.failure(crate::alerts::TriageError::Invalid("choose a verdict".into()).into());
    };
    let reason = field(&form, "reason").unwrap_or_default().to_owned();
    let ids: Vec<i64> = form
        .iter()
        .filter(|(k, _)| k == "ids")
        .filter_map(|(_, v)| v.parse().ok())
        .collect();
    let g = v.guard(&st);
    let n = ids.len();
    let done = run(move || {
        for id in ids {
            g.verdict(id, verdict, &reason, None)?;
        }
        Ok(())
    })
    .await;
    match done {
        Ok(()) => Redirect::to(&format!(
            "/alerts?msg={}",
            html::url(&format!("{n} × {}", verdict.as_str()))
        ))
        .into_response(),
        Err(e) => v.failure(e),
    }
}

#[derive(serde::Deserialize, Default)]
struct IncidentQuery {
    tenant: Option<String>,
    state: Option<String>,
    before: Option<i64>,
}

async fn incidents(
    State(st): State<AppState>,
    v: Viewer,
    Query(q): Query<IncidentQuery>,
) -> Response {
    let g = v.guard(&st);
    let f = IncidentFilter {
        tenant: q.tenant.clone().filter(|t| !t.is_empty()),
        state: q.state.clone().filter(|t| !t.is_empty()),
        before_id: q.before,
        limit: 100,
    };
    let list = match run(move || g.incidents(f)).await {
        Ok(l) => l,
        Err(e) => return v.failure(e),
    };
    let body = pages::incidents(v.lang, &list, (q.tenant.as_deref(), q.state.as_deref()));
    Html(page(
        &v.frame("incidents", t(v.lang, "incidents").into()),
        &body,
    ))
    .into_response()
}

async fn incident(State(st): State<AppState>, v: Viewer, Path(id): Path<i64>) -> Response {
    let g = v.guard(&st);
    let inc = match run(move || g.incident(id)).await {
        Ok(i) => i,
        Err(e) => return v.failure(e),
    };
    let tenant = inc["tenant"].as_str().unwrap_or_default().to_owned();
    let can_triage = v
        .who
        .allow(Some(&tenant), crate::access::Action::Triage)
        .is_ok();
    let can_comment = v
        .who
        .allow(Some(&tenant), crate::access::Action::Comment)
        .is_ok();
    let title = format!("#{id} {}", inc["title"].as_str().unwrap_or_default());
    let body = pages::incident(v.lang, &v.csrf, &inc, can_triage, can_comment);
    Html(page(&v.frame("incidents", title), &body)).into_response()
}

async fn incident_state(
    State(st): State<AppState>,
    v: Viewer,
    Path(id): Path<i64>,
    body: axum::body::Bytes,
) -> Response {
    let form = parse_form(&body);
    if let Some(r) = v.csrf_refusal(&form) {
        return r;
    }
    let Some(to) = field(&form, "state").and_then(koban_detect::CaseState::parse) else {
        return v.failure(crate::alerts::TriageError::Invalid("choose a state".into()).into());
    };
    let note = field(&form, "note").unwrap_or_default().to_owned();
    let g = v.guard(&st);
    match run(move || g.transition(id, to, &note)).await {
        Ok(()) => Redirect::to(&format!("/incidents/{id}")).into_response(),
        Err(e) => v.failure(e),
    }
}

async fn incident_comment(
    State(st): State<AppState>,
    v: Viewer,
    Path(id): Path<i64>,
    body: axum::body::Bytes,
) -> Response {
    let form = parse_form(&body);
    if let Some(r) = v.csrf_refusal(&form) {
        return r;
    }
    let text = field(&form, "text").unwrap_or_default().to_owned();
    let g = v.guard(&st);
    let done = run(move || {
        let side = g.side();
        g.annotate(id, Annotation::Comment { text: &text, side })
    })
    .await;
    match done {
        Ok(_) => Redirect::to(&format!("/incidents/{id}")).into_response(),
        Err(e) => v.failure(e),
    }
}

#[derive(serde::Deserialize, Default)]
struct RulesQuery {
    tenant: Option<String>,
    q: Option<String>,
}

async fn rules(State(st): State<AppState>, v: Viewer, Query(q): Query<RulesQuery>) -> Response {
    let g = v.guard(&st);
    let tenant = match g.narrow(q.tenant.clone().filter(|t| !t.is_empty())) {
        Ok(t) => t,
        Err(e) => return v.failure(e),
    };
    let t2 = tenant.clone();
    let policy = match run(move || g.policy(t2.as_deref())).await {
        Ok(p) => p,
        Err(e) => return v.failure(e),
    };
    let Some(src) = st.rules.clone() else {
        return v.failure(crate::alerts::TriageError::Invalid("detection is off".into()).into());
    };
    let set = src.current();
    let can_tune = tenant
        .as_deref()
        .is_some_and(|t| v.who.allow(Some(t), crate::access::Action::Tune).is_ok());
    let body = pages::rules(
        v.lang,
        &v.csrf,
        &set,
        &policy,
        tenant.as_deref(),
        q.q.as_deref(),
        can_tune,
    );
    Html(page(&v.frame("rules", t(v.lang, "rules").into()), &body)).into_response()
}

async fn rule_toggle(State(st): State<AppState>, v: Viewer, body: axum::body::Bytes) -> Response {
    let form = parse_form(&body);
    if let Some(r) = v.csrf_refusal(&form) {
        return r;
    }
    let tenant = field(&form, "tenant").unwrap_or_default().to_owned();
    let rule = field(&form, "rule").unwrap_or_default().to_owned();
    let enabled = field(&form, "enabled") == Some("true");
    let g = v.guard(&st);
    let (t2, r2) = (tenant.clone(), rule.clone());
    match run(move || g.set_override(&t2, &r2, enabled, None)).await {
        Ok(()) => Redirect::to(&format!(
            "/rules?tenant={}&q={}",
            html::url(&tenant),
            html::url(&rule)
        ))
        .into_response(),
        Err(e) => v.failure(e),
    }
}

async fn sources(State(st): State<AppState>, v: Viewer) -> Response {
    if v.who.role.is_provider() {
        let _ = v
            .guard(&st)
            .allow(None, crate::access::Action::Read, "sources", "");
    }
    sources_page(&st, &v, None)
}

/// The sources page; `token` is a token just made (shown once) or why it was not.
fn sources_page(st: &AppState, v: &Viewer, token: Option<Result<&str, String>>) -> Response {
    let scope = v.who.scope();
    let rows: Vec<_> = st
        .intake
        .metrics
        .all_sources()
        .into_iter()
        .filter(|((tenant, _), _)| scope.is_none_or(|s| s == tenant))
        .collect();
    let tenants = tenants_in_scope(st, &v.who);
    let body = pages::sources(v.lang, &v.csrf, &rows, &tenants, token, now_ms());
    Html(page(
        &v.frame("sources", t(v.lang, "sources").into()),
        &body,
    ))
    .into_response()
}

fn tenants_in_scope(st: &AppState, who: &Principal) -> Vec<String> {
    st.state
        .tenants()
        .unwrap_or_default()
        .into_iter()
        .map(|t| t.name)
        .filter(|n| who.scope().is_none_or(|s| s == n))
        .collect()
}

async fn source_token(State(st): State<AppState>, v: Viewer, body: axum::body::Bytes) -> Response {
    let form = parse_form(&body);
    if let Some(r) = v.csrf_refusal(&form) {
        return r;
    }
    let tenant = field(&form, "tenant").unwrap_or_default().to_owned();
    let source = field(&form, "source").unwrap_or_default().to_owned();
    let g = v.guard(&st);
    if let Err(e) = g.allow(
        Some(&tenant),
        crate::access::Action::Administer,
        "ingest token",
        &source,
    ) {
        return v.failure(e);
    }
    let made = st.state.create_ingest_token(&tenant, &source);
    let shown = match &made {
        Ok(tok) => Ok(tok.as_str()),
        Err(e) => Err(e.to_string()),
    };
    sources_page(&st, &v, Some(shown))
}

async fn admin(State(st): State<AppState>, v: Viewer) -> Response {
    if !matches!(v.who.role, Role::ProviderAdmin | Role::CustomerAdmin) {
        return v.failure(
            crate::access::Denied::Role {
                role: v.who.role,
                action: "administer",
            }
            .into(),
        );
    }
    if let Err(e) = v.guard(&st).administer(None, "users", "") {
        return v.failure(e);
    }
    admin_page(&st, &v, None)
}

/// Tenants, users and the latest audit entries in the viewer's scope; `made` says how
/// creating a user just went.
fn admin_page(st: &AppState, v: &Viewer, made: Option<Result<(), String>>) -> Response {
    let scope = v.who.scope();
    let users = st.state.users(scope).unwrap_or_default();
    let tenants: Vec<(String, String)> = tenants_in_scope(st, &v.who)
        .into_iter()
        .map(|n| {
            let s = st.state.service(&n).ok().flatten().unwrap_or_default();
            (n, s)
        })
        .collect();
    let audit = st.state.audit_log(scope, 50).unwrap_or_default();
    let body = pages::admin(v.lang, &v.csrf, &v.who, &tenants, &users, &audit, made);
    Html(page(&v.frame("admin", t(v.lang, "admin").into()), &body)).into_response()
}

async fn admin_user(State(st): State<AppState>, v: Viewer, body: axum::body::Bytes) -> Response {
    let form = parse_form(&body);
    if let Some(r) = v.csrf_refusal(&form) {
        return r;
    }
    let name = field(&form, "name").unwrap_or_default().to_owned();
    let password = field(&form, "password").unwrap_or_default().to_owned();
    let Some(role) = field(&form, "role").and_then(Role::parse) else {
        return v.failure(crate::alerts::TriageError::Invalid("choose a role".into()).into());
    };
    let tenant = field(&form, "tenant")
        .filter(|t| !t.is_empty())
        .map(str::to_owned);
    if let Err(e) = v.guard(&st).allow_new_user(&name, role, tenant.as_deref()) {
        return v.failure(e);
    }
    let state = st.state.clone();
    let made = tokio::task::spawn_blocking(move || {
        state.create_user(&name, &password, role, tenant.as_deref())
    })
    .await
    .map_err(|e| e.to_string())
    .and_then(|r| r.map_err(|e| e.to_string()));
    admin_page(&st, &v, Some(made))
}

async fn css() -> impl IntoResponse {
    (
        [(header::CONTENT_TYPE, "text/css; charset=utf-8")],
        html::CSS,
    )
}

async fn js() -> impl IntoResponse {
    (
        [(header::CONTENT_TYPE, "text/javascript; charset=utf-8")],
        html::JS,
    )
}

/// Every 5 s, the number of alerts the viewer can see (the page shows a notice when it
/// grows).
async fn events(
    State(st): State<AppState>,
    v: Viewer,
) -> Sse<impl futures_util::Stream<Item = Result<Event, Infallible>>> {
    let stream = futures_util::stream::unfold((st, v, true), |(st, v, first)| async move {
        if !first {
            tokio::time::sleep(Duration::from_secs(5)).await;
        }
        let book = st.alerts.clone();
        let scope = v.who.scope().map(str::to_owned);
        let n = tokio::task::spawn_blocking(move || {
            book.and_then(|b| b.alert_count(scope.as_deref()).ok())
                .unwrap_or(0)
        })
        .await
        .unwrap_or(0);
        Some((
            Ok(Event::default().event("alerts").data(n.to_string())),
            (st, v, false),
        ))
    });
    Sse::new(stream).keep_alive(KeepAlive::default())
}
