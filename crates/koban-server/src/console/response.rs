//! The response pages: `/actions` (every action of the viewer's tenants with its state
//! and verification, the approve / reject / undo buttons the viewer may press, and the
//! playbook runs) and `/actions/{id}` (one action with every step — the page a
//! notification's link opens). Decisions go through `respond::decide_as`, the same
//! check the API makes.

use std::fmt::Write;

use axum::extract::{Path, Query, State};
use axum::response::{Html, IntoResponse, Redirect, Response};
use serde::Deserialize;
use serde_json::Value;

use super::html::{esc, page, time, url};
use super::i18n::{t, Lang};
use super::{field, parse_form, run, Viewer};
use crate::access::Action as Access;
use crate::alerts::TriageError;
use crate::guard::{Guard, GuardError};
use crate::http::AppState;
use crate::respond::{decide_as, may_decide, respond_error, ResponseBook};
use crate::state::State as Db;

#[derive(Deserialize, Default)]
pub(super) struct ListQuery {
    tenant: Option<String>,
    msg: Option<String>,
}

fn book(st: &AppState) -> Result<std::sync::Arc<ResponseBook>, GuardError> {
    st.respond
        .clone()
        .ok_or_else(|| TriageError::Invalid("response is off on this server".into()).into())
}

/// What a viewer may press on an action.
struct Buttons {
    decide: bool,
    undo: bool,
}

fn buttons(g: &Guard, db: &Db, a: &Value) -> Buttons {
    let tenant = a["tenant"].as_str().unwrap_or_default();
    let state = a["state"].as_str().unwrap_or_default();
    Buttons {
        decide: matches!(state, "awaiting_approval" | "escalated") && may_decide(g, db, tenant),
        undo: matches!(state, "verified" | "unverified")
            && !a["undo"].is_null()
            && g.who.allow(Some(tenant), Access::Respond).is_ok(),
    }
}

pub(super) async fn actions_page(
    State(st): State<AppState>,
    v: Viewer,
    Query(q): Query<ListQuery>,
) -> Response {
    let g = v.guard(&st);
    let db = st.state.clone();
    let asked = q.tenant.clone().filter(|t| !t.is_empty());
    let data = run(move || {
        let b = book(&st)?;
        let tenant = g.narrow(asked)?;
        g.allow(tenant.as_deref(), Access::Read, "actions", "")?;
        let actions = b.actions(tenant.as_deref(), 200).map_err(respond_error)?;
        let hosts = hostnames(&b, tenant.as_deref())?;
        let runs = b.runs(tenant.as_deref(), 50).map_err(respond_error)?;
        let with_buttons: Vec<(Value, Buttons)> = actions
            .into_iter()
            .map(|a| {
                let bt = buttons(&g, &db, &a);
                (a, bt)
            })
            .collect();
        Ok((with_buttons, hosts, runs))
    })
    .await;
    let (actions, hosts, runs) = match data {
        Ok(d) => d,
        Err(e) => return v.failure(e),
    };
    let mut body = String::new();
    if let Some(m) = &q.msg {
        let _ = write!(body, "<p class=\"ok\" id=\"msg\">{}</p>", esc(m));
    }
    let waiting = actions.iter().filter(|(_, b)| b.decide).count();
    let _ = write!(
        body,
        "<p id=\"waiting\">{}: <b>{waiting}</b></p>",
        t(v.lang, "awaiting_you")
    );
    body.push_str(&actions_table(v.lang, &v.csrf, &actions, &hosts));
    let _ = write!(body, "<h2>{}</h2>", t(v.lang, "playbook_runs"));
    body.push_str(&runs_table(v.lang, &runs));
    Html(page(
        &v.frame("actions", t(v.lang, "actions").into()),
        &body,
    ))
    .into_response()
}

fn hostnames(
    b: &ResponseBook,
    tenant: Option<&str>,
) -> Result<std::collections::HashMap<String, String>, GuardError> {
    Ok(b.agents(tenant)
        .map_err(respond_error)?
        .into_iter()
        .filter_map(|a| {
            Some((
                a["id"].as_str()?.to_owned(),
                a["hostname"].as_str()?.to_owned(),
            ))
        })
        .collect())
}

fn action_words(a: &Value) -> String {
    let action = &a["action"];
    let kind = action["kind"].as_str().unwrap_or("?");
    let params: Vec<String> = action
        .as_object()
        .into_iter()
        .flatten()
        .filter(|(k, _)| *k != "kind")
        .map(|(k, v)| {
            format!(
                "{k}={}",
                v.as_str().map_or_else(|| v.to_string(), str::to_owned)
            )
        })
        .collect();
    if params.is_empty() {
        kind.to_owned()
    } else {
        format!("{kind} {}", params.join(" "))
    }
}

fn state_badge(state: &str) -> String {
    let class = match state {
        "verified" | "undone" => "b-low",
        "awaiting_approval" | "escalated" => "b-high",
        "failed" | "unverified" | "rejected" | "timed_out" => "b-crit",
        _ => "b-other",
    };
    format!(
        "<span class=\"badge {class} state\" data-state=\"{s}\">{s}</span>",
        s = esc(state)
    )
}

fn decision_forms(lang: Lang, csrf: &str, id: i64, b: &Buttons) -> String {
    let mut out = String::new();
    let form = |decision: &str, label: &str| {
        format!(
            "<form method=\"post\" action=\"/actions/{id}/decide\" class=\"inline\">\
<input type=\"hidden\" name=\"csrf\" value=\"{}\"><input type=\"hidden\" name=\"decision\" value=\"{decision}\">\
<button id=\"{decision}-{id}\">{}</button></form>",
            esc(csrf),
            esc(label)
        )
    };
    if b.decide {
        out.push_str(&form("approve", t(lang, "approve")));
        out.push_str(&form("reject", t(lang, "reject")));
    }
    if b.undo {
        out.push_str(&form("undo", t(lang, "undo")));
    }
    out
}

fn actions_table(
    lang: Lang,
    csrf: &str,
    actions: &[(Value, Buttons)],
    hosts: &std::collections::HashMap<String, String>,
) -> String {
    if actions.is_empty() {
        return format!("<p class=\"muted\">{}</p>", t(lang, "no_actions"));
    }
    let mut out = format!(
        "<table id=\"actions\"><thead><tr><th>#</th><th>{}</th><th>{}</th><th>{}</th><th>{}</th>\
<th>{}</th><th>{}</th><th>{}</th><th></th></tr></thead><tbody>",
        t(lang, "tenant"),
        t(lang, "host"),
        t(lang, "action"),
        t(lang, "state"),
        t(lang, "requested_by"),
        t(lang, "approved_by"),
        t(lang, "verification"),
    );
    for (a, b) in actions {
        let id = a["id"].as_i64().unwrap_or_default();
        let agent = a["agent"].as_str().unwrap_or_default();
        let host = hosts.get(agent).map_or(agent, String::as_str);
        let incident = a["incident"]
            .as_i64()
            .map(|i| format!(" · <a href=\"/incidents/{i}\">#{i}</a>"))
            .unwrap_or_default();
        let _ = write!(
            out,
            "<tr id=\"action-{id}\"><td><a href=\"/actions/{id}\">{id}</a>{incident}</td><td>{}</td><td>{}</td>\
<td>{}</td><td>{}</td><td>{} <span class=\"muted\">{}</span></td><td>{}</td><td class=\"why\">{}</td><td>{}</td></tr>",
            esc(a["tenant"].as_str().unwrap_or_default()),
            esc(host),
            esc(&action_words(a)),
            state_badge(a["state"].as_str().unwrap_or_default()),
            esc(a["requested_by"].as_str().unwrap_or_default()),
            time(a["requested_ms"].as_i64()),
            esc(a["decided_by"].as_str().unwrap_or("-")),
            esc(a["detail"].as_str().unwrap_or_default()),
            decision_forms(lang, csrf, id, b),
        );
    }
    out.push_str("</tbody></table>");
    out
}

fn runs_table(lang: Lang, runs: &[Value]) -> String {
    if runs.is_empty() {
        return format!("<p class=\"muted\">{}</p>", t(lang, "no_runs"));
    }
    let mut out = format!(
        "<table id=\"runs\"><thead><tr><th>#</th><th>{}</th><th>{}</th><th>{}</th><th>{}</th><th>{}</th></tr></thead><tbody>",
        t(lang, "playbook"),
        t(lang, "trigger"),
        t(lang, "state"),
        t(lang, "outcomes"),
        t(lang, "last_step"),
    );
    for r in runs {
        let subject = &r["subject"];
        let kind = subject["kind"].as_str().unwrap_or_default();
        let sid = subject["id"].as_i64().unwrap_or_default();
        let link = if kind == "incident" {
            format!("<a href=\"/incidents/{sid}\">incident #{sid}</a>")
        } else {
            match r["incident"].as_i64() {
                Some(i) => format!("alert {sid} · <a href=\"/incidents/{i}\">#{i}</a>"),
                None => format!("alert {sid}"),
            }
        };
        let outcomes: Vec<String> = r["outcomes"]
            .as_object()
            .into_iter()
            .flatten()
            .map(|(k, o)| format!("{k}: {}", o.as_str().unwrap_or_default()))
            .collect();
        let _ = write!(
            out,
            "<tr><td>{}</td><td>{}</td><td>{link}</td><td>{}</td><td>{}</td><td class=\"why\">{}</td></tr>",
            r["id"].as_i64().unwrap_or_default(),
            esc(r["playbook"].as_str().unwrap_or_default()),
            state_badge(r["state"].as_str().unwrap_or_default()),
            esc(&outcomes.join(", ")),
            esc(r["detail"].as_str().unwrap_or_default()),
        );
    }
    out.push_str("</tbody></table>");
    out
}

#[derive(Deserialize, Default)]
pub(super) struct OneQuery {
    msg: Option<String>,
}

pub(super) async fn action_page(
    State(st): State<AppState>,
    v: Viewer,
    Path(id): Path<i64>,
    Query(q): Query<OneQuery>,
) -> Response {
    let g = v.guard(&st);
    let db = st.state.clone();
    let data = run(move || {
        let b = book(&st)?;
        let (tenant, a) = b.action(id).map_err(respond_error)?;
        g.allow(Some(&tenant), Access::Read, &format!("action {id}"), "")?;
        let hosts = hostnames(&b, Some(&tenant))?;
        let bt = buttons(&g, &db, &a);
        Ok((a, bt, hosts))
    })
    .await;
    let (a, bt, hosts) = match data {
        Ok(d) => d,
        Err(e) => return v.failure(e),
    };
    let mut body = String::new();
    if let Some(m) = &q.msg {
        let _ = write!(body, "<p class=\"ok\" id=\"msg\">{}</p>", esc(m));
    }
    let agent = a["agent"].as_str().unwrap_or_default();
    let _ = write!(
        body,
        "<dl class=\"facts\"><dt>{}</dt><dd>{}</dd><dt>{}</dt><dd>{}</dd><dt>{}</dt><dd>{}</dd>\
<dt>{}</dt><dd id=\"state\">{}</dd><dt>{}</dt><dd id=\"verification\">{}</dd></dl>",
        t(v.lang, "tenant"),
        esc(a["tenant"].as_str().unwrap_or_default()),
        t(v.lang, "host"),
        esc(hosts.get(agent).map_or(agent, String::as_str)),
        t(v.lang, "action"),
        esc(&action_words(&a)),
        t(v.lang, "state"),
        state_badge(a["state"].as_str().unwrap_or_default()),
        t(v.lang, "verification"),
        esc(a["detail"].as_str().unwrap_or("-")),
    );
    body.push_str(&decision_forms(
        v.lang,
        &v.csrf,
        a["id"].as_i64().unwrap_or(id),
        &bt,
    ));
    let _ = write!(
        body,
        "<h2>{}</h2><ol class=\"log\" id=\"steps\">",
        t(v.lang, "steps")
    );
    for s in a["steps"].as_array().into_iter().flatten() {
        let _ = write!(
            body,
            "<li><span class=\"muted\">{} · {}</span> <b>{}</b> {}</li>",
            time(s["at_ms"].as_i64()),
            esc(s["by"].as_str().unwrap_or_default()),
            esc(s["step"].as_str().unwrap_or_default()),
            esc(s["detail"].as_str().unwrap_or_default()),
        );
    }
    body.push_str("</ol>");
    if !a["observed"].is_null() {
        let _ = write!(
            body,
            "<h2>{}</h2><pre id=\"observed\">{}</pre>",
            t(v.lang, "observed"),
            esc(&serde_json::to_string_pretty(&a["observed"]).unwrap_or_default())
        );
    }
    let title = format!("{} {id}", t(v.lang, "action"));
    Html(page(&v.frame("actions", title), &body)).into_response()
}

pub(super) async fn decide(
    State(st): State<AppState>,
    v: Viewer,
    Path(id): Path<i64>,
    body: axum::body::Bytes,
) -> Response {
    let form = parse_form(&body);
    if let Some(r) = v.csrf_refusal(&form) {
        return r;
    }
    let decision = field(&form, "decision").unwrap_or_default().to_owned();
    let g = v.guard(&st);
    let db = st.state.clone();
    let said = decision.clone();
    let done = run(move || {
        let b = book(&st)?;
        decide_as(&g, &db, &b, id, &decision)
    })
    .await;
    match done {
        Ok(a) => {
            let msg = format!("{said}: {}", a["state"].as_str().unwrap_or_default());
            Redirect::to(&format!("/actions/{id}?msg={}", url(&msg))).into_response()
        }
        Err(e) => v.failure(e),
    }
}
