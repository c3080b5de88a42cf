//! Each console page's HTML, from what the guard handed out. Nothing here reads data:
//! it only renders, so a page can show no more than its handler was allowed to fetch.

use std::fmt::Write;

use koban_sigma::RuleSet;
use serde_json::Value;

use super::charts;
use super::html::{badge, esc, time, url};
use super::i18n::{t, Lang};
use crate::access::{Principal, Role, ROLES};

/// Values per entity kind shown in an incident's scope (the API has them all).
const SCOPE_SHOWN: usize = 6;
use crate::alerts::Policy;
use crate::identity::{AuditEntry, UserInfo};
use crate::metrics::SourceCounts;

fn s(v: &Value) -> &str {
    v.as_str().unwrap_or_default()
}

fn csrf_field(csrf: &str) -> String {
    format!(
        "<input type=\"hidden\" name=\"csrf\" value=\"{}\">",
        esc(csrf)
    )
}

pub fn login(lang: Lang, error: Option<&str>) -> String {
    let err = error.map_or(String::new(), |e| {
        format!("<p class=\"err\" id=\"error\">{}</p>", esc(e))
    });
    format!(
        "<form method=\"post\" action=\"/login\" class=\"login\"><h1>交番 Koban</h1>{err}\
<label>{u}<input name=\"user\" autocomplete=\"username\" autofocus required></label>\
<label>{p}<input name=\"password\" type=\"password\" autocomplete=\"current-password\" required></label>\
<button type=\"submit\">{l}</button></form>",
        u = t(lang, "user"),
        p = t(lang, "password"),
        l = t(lang, "login"),
    )
}

fn pairs(v: &Value) -> Vec<(String, i64)> {
    v.as_array()
        .into_iter()
        .flatten()
        .filter_map(|p| Some((p.get(0)?.as_str()?.to_owned(), p.get(1)?.as_i64()?)))
        .collect()
}

fn day_pairs(v: &Value) -> Vec<(i64, i64)> {
    v.as_array()
        .into_iter()
        .flatten()
        .filter_map(|p| Some((p.get(0)?.as_i64()?, p.get(1)?.as_i64()?)))
        .collect()
}

fn top_table(lang: Lang, key: &'static str, rows: &[(String, i64)]) -> String {
    let mut out = format!("<div class=\"card\"><h2>{}</h2>", t(lang, key));
    if rows.is_empty() {
        let _ = write!(out, "<p class=\"muted\">{}</p></div>", t(lang, "none"));
        return out;
    }
    out.push_str("<table><tbody>");
    for (name, n) in rows {
        let _ = write!(
            out,
            "<tr><td>{}</td><td class=\"num\">{n}</td></tr>",
            esc(name)
        );
    }
    out.push_str("</tbody></table></div>");
    out
}

pub fn dashboard(
    lang: Lang,
    d: &Value,
    events: &[(String, i64, u64)],
    silent: &[(String, String, i64)],
) -> String {
    let mut per_day: std::collections::BTreeMap<i64, i64> = Default::default();
    let mut total = 0u64;
    for (_, day, n) in events {
        *per_day.entry(*day).or_default() += *n as i64;
        total += n;
    }
    let events_days: Vec<(i64, i64)> = per_day.into_iter().rev().take(30).rev().collect();
    let mut out = String::from("<div class=\"grid\">");
    let _ = write!(
        out,
        "<div class=\"card\"><h2>{}</h2><div class=\"big\" id=\"events-total\">{total}</div>{}</div>",
        t(lang, "events_total"),
        charts::bars(&events_days, t(lang, "events_total"))
    );
    let _ = write!(
        out,
        "<div class=\"card\"><h2>{}</h2>{}</div>",
        t(lang, "alerts_over_time"),
        charts::bars(
            &day_pairs(&d["alerts_per_day"]),
            t(lang, "alerts_over_time")
        )
    );
    let _ = write!(
        out,
        "<div class=\"card\"><h2>{}</h2>{}</div>",
        t(lang, "incidents"),
        charts::bars(&day_pairs(&d["incidents_per_day"]), t(lang, "incidents"))
    );
    let mut sev = pairs(&d["open_by_severity"]);
    sev.sort_by_key(|(g, _)| match g.as_str() {
        "critical" => 0,
        "high" => 1,
        "medium" => 2,
        _ => 3,
    });
    let _ = write!(
        out,
        "<div class=\"card\"><h2>{}</h2>",
        t(lang, "incidents_by_severity")
    );
    if sev.is_empty() {
        let _ = write!(out, "<p class=\"muted\">{}</p>", t(lang, "none"));
    }
    for (g, n) in &sev {
        let _ = write!(
            out,
            "<p><a href=\"/incidents?state=\">{}</a> <span class=\"big\">{n}</span></p>",
            badge(g)
        );
    }
    out.push_str("</div>");
    out.push_str(&top_table(lang, "top_rules", &pairs(&d["top_rules"])));
    out.push_str(&top_table(lang, "top_hosts", &pairs(&d["top_hosts"])));
    out.push_str(&top_table(lang, "top_users", &pairs(&d["top_users"])));
    let _ = write!(out, "<div class=\"card\"><h2>{}</h2>", t(lang, "silent"));
    if silent.is_empty() {
        let _ = write!(out, "<p class=\"muted\">{}</p>", t(lang, "none"));
    } else {
        out.push_str("<table><tbody>");
        for (tenant, source, last) in silent {
            let _ = write!(
                out,
                "<tr><td>{}</td><td>{}</td><td>{}</td></tr>",
                esc(tenant),
                esc(source),
                time(Some(*last))
            );
        }
        out.push_str("</tbody></table>");
    }
    out.push_str("</div></div>");
    let heat: Vec<(String, String, i64)> = d["heat"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|c| {
            Some((
                c.get(0)?.as_str()?.to_owned(),
                c.get(1)?.as_str()?.to_owned(),
                c.get(2)?.as_i64()?,
            ))
        })
        .collect();
    let _ = write!(
        out,
        "<h2>{}</h2><div class=\"card\">{}</div>",
        t(lang, "heatmap"),
        charts::heat(&heat)
    );
    out
}

fn entities_line(e: &Value) -> String {
    let mut parts = Vec::new();
    if let Some(m) = e.as_object() {
        for (k, v) in m {
            parts.push(format!("{}={}", esc(k), esc(s(v))));
        }
    }
    parts.join(" · ")
}

pub fn alerts(
    lang: Lang,
    csrf: &str,
    list: &[Value],
    (tenant, verdict, rule): (Option<&str>, Option<&str>, Option<&str>),
    can_triage: bool,
    msg: Option<&str>,
) -> String {
    let mut out = String::new();
    if let Some(m) = msg {
        let _ = write!(out, "<p class=\"okmsg\" id=\"msg\">{}</p>", esc(m));
    }
    let sel = |v: &str| if verdict == Some(v) { " selected" } else { "" };
    let _ = write!(
        out,
        "<form class=\"bar\" method=\"get\"><label>{tl}<input name=\"tenant\" value=\"{tv}\"></label>\
<label>{rl}<input name=\"rule\" value=\"{rv}\"></label><label>{vl}<select name=\"verdict\">\
<option value=\"\">-</option><option value=\"none\"{s0}>{un}</option>\
<option value=\"true_positive\"{s1}>true_positive</option><option value=\"false_positive\"{s2}>false_positive</option>\
<option value=\"benign\"{s3}>benign</option><option value=\"duplicate\"{s4}>duplicate</option></select></label>\
<button>{f}</button></form>",
        tl = t(lang, "tenant"),
        tv = esc(tenant.unwrap_or_default()),
        rl = t(lang, "rule"),
        rv = esc(rule.unwrap_or_default()),
        vl = t(lang, "verdict"),
        un = t(lang, "untriaged"),
        s0 = sel("none"),
        s1 = sel("true_positive"),
        s2 = sel("false_positive"),
        s3 = sel("benign"),
        s4 = sel("duplicate"),
        f = t(lang, "filter"),
    );
    if can_triage {
        let _ = write!(
            out,
            "<form method=\"post\" action=\"/alerts/triage\" id=\"triage\">{}\
<div class=\"bar\"><label>{}<select name=\"verdict\"><option>true_positive</option><option>false_positive</option>\
<option>benign</option><option>duplicate</option></select></label><label>{}<input name=\"reason\"></label>\
<button>{} {}</button></div>",
            csrf_field(csrf),
            t(lang, "verdict"),
            t(lang, "reason"),
            t(lang, "apply"),
            t(lang, "selected")
        );
    }
    let _ = write!(
        out,
        "<table class=\"nav\" id=\"alerts\"><thead><tr>{}<th>{}</th><th>{}</th><th>{}</th><th>{}</th><th>{}</th><th>{}</th><th>{}</th><th>{}</th></tr></thead><tbody>",
        if can_triage { "<th><input type=\"checkbox\" id=\"all\" aria-label=\"all\"></th>" } else { "" },
        t(lang, "level"),
        t(lang, "title"),
        t(lang, "tenant"),
        t(lang, "entities"),
        t(lang, "count"),
        t(lang, "last_seen"),
        t(lang, "verdict"),
        t(lang, "incidents"),
    );
    for a in list {
        let id = a["id"].as_i64().unwrap_or_default();
        let inc = a["incident"].as_i64();
        let _ = write!(
            out,
            "<tr>{}<td>{}</td><td>{}<div class=\"why clip muted\">{}</div></td><td>{}</td><td>{}</td><td class=\"num\">{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
            if can_triage { format!("<td><input type=\"checkbox\" name=\"ids\" value=\"{id}\" aria-label=\"alert {id}\"></td>") } else { String::new() },
            badge(s(&a["level"])),
            esc(s(&a["title"])),
            esc(s(&a["why"]).get(..200).unwrap_or(s(&a["why"]))),
            esc(s(&a["tenant"])),
            entities_line(&a["entities"]),
            a["count"].as_i64().unwrap_or_default(),
            time(a["last_event_ms"].as_i64()),
            esc(a["verdict"].as_str().unwrap_or("-")),
            inc.map_or("-".into(), |i| format!("<a href=\"/incidents/{i}\">#{i}</a>")),
        );
    }
    out.push_str("</tbody></table>");
    if can_triage {
        out.push_str("</form>");
    }
    if let Some(last) = list.last().and_then(|a| a["id"].as_i64()) {
        if list.len() >= 100 {
            let _ = write!(
                out,
                "<p><a href=\"/alerts?before={last}&tenant={}&verdict={}&rule={}\">{} →</a></p>",
                url(tenant.unwrap_or_default()),
                url(verdict.unwrap_or_default()),
                url(rule.unwrap_or_default()),
                t(lang, "more")
            );
        }
    }
    out
}

pub fn incidents(
    lang: Lang,
    list: &[Value],
    (tenant, state): (Option<&str>, Option<&str>),
) -> String {
    let mut out = String::new();
    let mut opts = String::from("<option value=\"\">-</option>");
    for st in koban_detect::case::STATES {
        let sel = if state == Some(st.as_str()) {
            " selected"
        } else {
            ""
        };
        let _ = write!(opts, "<option{sel}>{}</option>", st.as_str());
    }
    let _ = write!(
        out,
        "<form class=\"bar\" method=\"get\"><label>{}<input name=\"tenant\" value=\"{}\"></label>\
<label>{}<select name=\"state\">{opts}</select></label><button>{}</button></form>",
        t(lang, "tenant"),
        esc(tenant.unwrap_or_default()),
        t(lang, "state"),
        t(lang, "filter")
    );
    let _ = write!(
        out,
        "<table class=\"nav\" id=\"incidents\"><thead><tr><th>#</th><th>{}</th><th>{}</th><th>{}</th><th>{}</th><th>{}</th><th>{}</th><th>{}</th><th>{}</th></tr></thead><tbody>",
        t(lang, "title"),
        t(lang, "severity"),
        t(lang, "impact"),
        t(lang, "urgency"),
        t(lang, "state"),
        t(lang, "tenant"),
        t(lang, "alerts"),
        t(lang, "last_seen"),
    );
    for i in list {
        let id = i["id"].as_i64().unwrap_or_default();
        let _ = write!(
            out,
            "<tr><td>{id}</td><td><a href=\"/incidents/{id}\">{}</a></td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td class=\"num\">{}</td><td>{}</td></tr>",
            esc(s(&i["title"])),
            badge(s(&i["severity"])),
            badge(s(&i["impact"])),
            badge(s(&i["urgency"])),
            esc(s(&i["state"])),
            esc(s(&i["tenant"])),
            i["alert_count"].as_i64().unwrap_or_default(),
            time(i["last_event_ms"].as_i64()),
        );
    }
    out.push_str("</tbody></table>");
    if list.is_empty() {
        let _ = write!(
            out,
            "<p class=\"muted\" id=\"empty\">{}</p>",
            t(lang, "none")
        );
    }
    out
}

/// At most this many alerts on the incident page's timeline.
const TIMELINE_ROWS: usize = 500;

pub fn incident(lang: Lang, csrf: &str, i: &Value, can_triage: bool, can_comment: bool) -> String {
    let id = i["id"].as_i64().unwrap_or_default();
    let mut out = String::from("<div class=\"grid\">");
    let a = &i["assessment"];
    let _ = write!(
        out,
        "<div class=\"card\" id=\"assessment\"><h2>{} · {} · {}</h2>",
        t(lang, "severity"),
        t(lang, "impact"),
        t(lang, "urgency")
    );
    for (key, label) in [
        ("severity", "severity"),
        ("impact", "impact"),
        ("urgency", "urgency"),
    ] {
        let _ = write!(
            out,
            "<p><b>{}</b> {} <span class=\"muted\">{}</span></p>",
            t(lang, label),
            badge(s(&a[key]["grade"])),
            esc(s(&a[key]["reason"]))
        );
    }
    let _ = write!(
        out,
        "<p><b>{}</b> <span id=\"state\">{}</span> · <b>{}</b> {} · <b>{}</b> {}</p></div>",
        t(lang, "state"),
        esc(s(&i["state"])),
        t(lang, "assignee"),
        esc(i["assignee"].as_str().unwrap_or("-")),
        t(lang, "tenant"),
        esc(s(&i["tenant"]))
    );
    let tactics: Vec<String> = i["tactics"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|x| x.as_str().map(esc))
        .collect();
    let _ = write!(
        out,
        "<div class=\"card\"><h2>{}</h2><p>{}</p><h2>{}</h2><table><tbody>",
        t(lang, "tactics"),
        if tactics.is_empty() {
            "-".into()
        } else {
            tactics.join(" → ")
        },
        t(lang, "scope")
    );
    if let Some(m) = i["scope"].as_object() {
        for (k, v) in m {
            let all: Vec<&str> = v
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(|x| x.as_str())
                .collect();
            // At a glance: the first few values, each on its own line; the rest counted.
            let mut vals: Vec<String> = all
                .iter()
                .take(SCOPE_SHOWN)
                .map(|x| format!("<span title=\"{0}\">{0}</span>", esc(x)))
                .collect();
            if all.len() > SCOPE_SHOWN {
                vals.push(format!(
                    "<span class=\"muted\">+{}</span>",
                    all.len() - SCOPE_SHOWN
                ));
            }
            let _ = write!(
                out,
                "<tr><th>{}</th><td class=\"scope\">{}</td></tr>",
                esc(k),
                vals.join("")
            );
        }
    }
    out.push_str("</tbody></table></div>");
    let _ = write!(
        out,
        "<div class=\"card\" id=\"sla\"><h2>{}</h2><table><tbody>",
        t(lang, "sla")
    );
    for c in i["sla"]["clocks"].as_array().into_iter().flatten() {
        let breached = c["breached"].as_bool().unwrap_or(false);
        let took = c["took_s"]
            .as_i64()
            .map(|x| format!("{} {}", t(lang, "took"), dur(x)));
        let running = c["running_s"]
            .as_i64()
            .map(|x| format!("{} {}", t(lang, "running"), dur(x)));
        let _ = write!(
            out,
            "<tr><th>{}</th><td>{}</td><td>{} {}</td><td class=\"{}\">{}</td></tr>",
            esc(s(&c["name"])),
            took.or(running).unwrap_or_else(|| "-".into()),
            t(lang, "target"),
            dur(c["target_s"].as_i64().unwrap_or_default()),
            if breached { "clock-bad" } else { "" },
            if breached {
                t(lang, "breached")
            } else {
                t(lang, "ok")
            }
        );
    }
    out.push_str("</tbody></table></div></div>");

    if can_triage {
        let mut opts = String::new();
        for st in koban_detect::case::STATES {
            let _ = write!(opts, "<option>{}</option>", st.as_str());
        }
        let _ = write!(
            out,
            "<h2>{}</h2><form method=\"post\" action=\"/incidents/{id}/state\" class=\"bar\" id=\"state-form\">{}\
<label>{}<select name=\"state\">{opts}</select></label><label>{}<input name=\"note\"></label><button>{}</button></form>",
            t(lang, "change_state"),
            csrf_field(csrf),
            t(lang, "state"),
            t(lang, "note"),
            t(lang, "apply")
        );
    } else {
        let _ = write!(
            out,
            "<p class=\"muted\" id=\"read-only\">{}</p>",
            t(lang, "read_only")
        );
    }

    let _ = write!(
        out,
        "<h2>{}</h2><table class=\"nav\" id=\"timeline\"><thead><tr><th>{}</th><th>{}</th><th>{}</th><th>{}</th><th>{}</th><th>{}</th></tr></thead><tbody>",
        t(lang, "timeline"),
        t(lang, "first_seen"),
        t(lang, "level"),
        t(lang, "title"),
        t(lang, "entities"),
        t(lang, "count"),
        t(lang, "why"),
    );
    let alerts = i["alerts"].as_array().cloned().unwrap_or_default();
    for a in alerts.iter().take(TIMELINE_ROWS) {
        let _ = write!(
            out,
            "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td class=\"num\">{}</td><td class=\"why\">{}</td></tr>",
            time(a["first_event_ms"].as_i64()),
            badge(s(&a["level"])),
            esc(s(&a["title"])),
            entities_line(&a["entities"]),
            a["count"].as_i64().unwrap_or_default(),
            esc(s(&a["why"]).get(..300).unwrap_or(s(&a["why"]))),
        );
    }
    out.push_str("</tbody></table>");
    if alerts.len() > TIMELINE_ROWS {
        let _ = write!(
            out,
            "<p><a href=\"/alerts?incident={id}\">{} ({})</a></p>",
            t(lang, "more"),
            alerts.len() - TIMELINE_ROWS
        );
    }

    let _ = write!(
        out,
        "<h2>{}</h2><ol class=\"log\" id=\"log\">",
        t(lang, "comments")
    );
    for e in i["log"].as_array().into_iter().flatten() {
        let d = &e["detail"];
        let what = match s(&e["kind"]) {
            "comment" => format!(
                "<b>{}</b> ({}): {}",
                t(lang, "comment"),
                esc(s(&d["side"])),
                esc(s(&d["text"]))
            ),
            "state" => format!(
                "{} → {} {}",
                esc(s(&d["from"])),
                esc(s(&d["to"])),
                esc(s(&d["note"]))
            ),
            "response" => format!(
                "<b>{}</b> {} — {}",
                esc(s(&d["object"])),
                esc(s(&d["step"])),
                esc(if d["text"].is_string() {
                    s(&d["text"])
                } else {
                    s(&d["detail"])
                })
            ),
            other => format!("{} {}", esc(other), esc(&d.to_string())),
        };
        let _ = write!(
            out,
            "<li class=\"log-{}\"><span class=\"muted\">{} · {}</span> {what}</li>",
            esc(s(&e["kind"])),
            time(e["at_ms"].as_i64()),
            esc(s(&e["who"]))
        );
    }
    out.push_str("</ol>");
    if can_comment {
        let _ = write!(
            out,
            "<form method=\"post\" action=\"/incidents/{id}/comment\" class=\"bar\" id=\"comment-form\">{}\
<label style=\"flex:1\">{}<textarea name=\"text\" rows=\"2\" required></textarea></label><button>{}</button></form>",
            csrf_field(csrf),
            t(lang, "comment"),
            t(lang, "add_comment")
        );
    }
    out
}

fn dur(secs: i64) -> String {
    if secs >= 86_400 {
        format!("{:.1} d", secs as f64 / 86_400.0)
    } else if secs >= 3600 {
        format!("{:.1} h", secs as f64 / 3600.0)
    } else if secs >= 60 {
        format!("{} min", secs / 60)
    } else {
        format!("{secs} s")
    }
}

pub fn rules(
    lang: Lang,
    csrf: &str,
    set: &RuleSet,
    policy: &Policy,
    tenant: Option<&str>,
    q: Option<&str>,
    can_tune: bool,
) -> String {
    let words: Vec<String> = q
        .unwrap_or_default()
        .split_whitespace()
        .map(str::to_lowercase)
        .collect();
    let mut out = format!(
        "<form class=\"bar\" method=\"get\"><label>{}<input name=\"tenant\" value=\"{}\"></label>\
<label>{}<input name=\"q\" value=\"{}\"></label><button>{}</button></form>",
        t(lang, "tenant"),
        esc(tenant.unwrap_or_default()),
        t(lang, "search_rules"),
        esc(q.unwrap_or_default()),
        t(lang, "filter")
    );
    let _ = write!(
        out,
        "<table class=\"nav\" id=\"rules\"><thead><tr><th>{}</th><th>{}</th><th>{}</th><th></th></tr></thead><tbody>",
        t(lang, "title"),
        t(lang, "level"),
        t(lang, "state"),
    );
    let mut shown = 0;
    for r in set.rules() {
        let key = r.meta.key();
        let hay = format!("{} {key}", r.meta.title).to_lowercase();
        if !words.iter().all(|w| hay.contains(w)) {
            continue;
        }
        shown += 1;
        if shown > 200 {
            break;
        }
        let default = r.meta.level.unwrap_or(koban_sigma::Level::Medium);
        let (enabled, level) = match tenant {
            Some(t) => (policy.enabled(t, key), policy.level(t, key, default)),
            None => (true, default),
        };
        let toggle = match (can_tune, tenant) {
            (true, Some(tn)) => format!(
                "<form method=\"post\" action=\"/rules/toggle\" class=\"inline\">{}<input type=\"hidden\" name=\"tenant\" value=\"{}\">\
<input type=\"hidden\" name=\"rule\" value=\"{}\"><input type=\"hidden\" name=\"enabled\" value=\"{}\"><button>{}</button></form>",
                csrf_field(csrf),
                esc(tn),
                esc(key),
                !enabled,
                if enabled { t(lang, "disable") } else { t(lang, "enable") }
            ),
            _ => String::new(),
        };
        let _ = write!(
            out,
            "<tr><td>{}<div class=\"muted why\">{}</div></td><td>{}</td><td>{}</td><td>{toggle}</td></tr>",
            esc(&r.meta.title),
            esc(key),
            badge(level.as_str()),
            if enabled { t(lang, "enabled") } else { t(lang, "disabled") },
        );
    }
    out.push_str("</tbody></table>");
    out
}

pub fn sources(
    lang: Lang,
    csrf: &str,
    rows: &[((String, String), SourceCounts)],
    tenants: &[String],
    token: Option<Result<&str, String>>,
    now: i64,
) -> String {
    let mut out = String::new();
    match token {
        Some(Ok(tok)) => {
            let _ = write!(
                out,
                "<p class=\"okmsg\">{} <code id=\"token\">{}</code></p>",
                t(lang, "token_once"),
                esc(tok)
            );
        }
        Some(Err(e)) => {
            let _ = write!(out, "<p class=\"err\">{}</p>", esc(&e));
        }
        None => {}
    }
    let _ = write!(
        out,
        "<table class=\"nav\" id=\"sources\"><thead><tr><th>{}</th><th>{}</th><th>{}</th><th>{}</th><th>{}</th><th>{}</th></tr></thead><tbody>",
        t(lang, "tenant"),
        t(lang, "source"),
        t(lang, "received"),
        t(lang, "stored"),
        t(lang, "last_seen"),
        t(lang, "rate"),
    );
    for ((tenant, source), c) in rows {
        let rate = if now - c.last_ms > 120_000 {
            0.0
        } else {
            c.rate
        };
        let _ = write!(
            out,
            "<tr><td>{}</td><td>{}</td><td class=\"num\">{}</td><td class=\"num\">{}</td><td>{}</td><td class=\"num\">{rate:.1}</td></tr>",
            esc(tenant),
            esc(source),
            c.received,
            c.stored,
            time((c.last_ms > 0).then_some(c.last_ms)),
        );
    }
    out.push_str("</tbody></table>");
    let mut opts = String::new();
    for tn in tenants {
        let _ = write!(opts, "<option>{}</option>", esc(tn));
    }
    let _ = write!(
        out,
        "<h2>{}</h2><form method=\"post\" action=\"/sources/token\" class=\"bar\">{}\
<label>{}<select name=\"tenant\">{opts}</select></label><label>{}<input name=\"source\" required pattern=\"[A-Za-z0-9._-]{{1,64}}\"></label>\
<button>{}</button></form>",
        t(lang, "new_token"),
        csrf_field(csrf),
        t(lang, "tenant"),
        t(lang, "source"),
        t(lang, "new_token")
    );
    out
}

pub fn admin(
    lang: Lang,
    csrf: &str,
    who: &Principal,
    tenants: &[(String, String)],
    users: &[UserInfo],
    audit: &[AuditEntry],
    made: Option<Result<(), String>>,
) -> String {
    let mut out = String::new();
    match made {
        Some(Ok(())) => out.push_str("<p class=\"okmsg\" id=\"msg\">✓</p>"),
        Some(Err(e)) => {
            let _ = write!(out, "<p class=\"err\" id=\"error\">{}</p>", esc(&e));
        }
        None => {}
    }
    let _ = write!(
        out,
        "<h2>{}</h2><table><thead><tr><th>{}</th><th>{}</th></tr></thead><tbody>",
        t(lang, "tenant"),
        t(lang, "tenant"),
        t(lang, "service")
    );
    for (n, svc) in tenants {
        let _ = write!(out, "<tr><td>{}</td><td>{}</td></tr>", esc(n), esc(svc));
    }
    let _ = write!(
        out,
        "</tbody></table><h2>{}</h2><table id=\"users\"><thead><tr><th>{}</th><th>{}</th><th>{}</th><th></th></tr></thead><tbody>",
        t(lang, "user"),
        t(lang, "user"),
        t(lang, "role"),
        t(lang, "tenant")
    );
    for u in users {
        let _ = write!(
            out,
            "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
            esc(&u.name),
            u.role.as_str(),
            esc(u.tenant.as_deref().unwrap_or("-")),
            if u.locked { "🔒" } else { "" }
        );
    }
    out.push_str("</tbody></table>");
    let mut roles = String::new();
    for r in ROLES {
        if r.is_provider() && who.role != Role::ProviderAdmin {
            continue;
        }
        let _ = write!(roles, "<option>{}</option>", r.as_str());
    }
    let mut topts = String::from("<option value=\"\">-</option>");
    for (n, _) in tenants {
        let _ = write!(topts, "<option>{}</option>", esc(n));
    }
    let _ = write!(
        out,
        "<h2>{}</h2><form method=\"post\" action=\"/admin/user\" class=\"bar\">{}\
<label>{}<input name=\"name\" required></label><label>{}<input name=\"password\" type=\"password\" minlength=\"12\" required></label>\
<label>{}<select name=\"role\">{roles}</select></label><label>{}<select name=\"tenant\">{topts}</select></label><button>{}</button></form>",
        t(lang, "add_user"),
        csrf_field(csrf),
        t(lang, "user"),
        t(lang, "password"),
        t(lang, "role"),
        t(lang, "tenant"),
        t(lang, "add_user")
    );
    let _ = write!(
        out,
        "<h2>{}</h2><p><a href=\"/api/v1/audit?format=csv\">CSV</a></p><table id=\"audit\"><thead><tr><th>{}</th><th>{}</th><th>{}</th><th></th><th></th></tr></thead><tbody>",
        t(lang, "audit"),
        t(lang, "time"),
        t(lang, "user"),
        t(lang, "tenant")
    );
    for e in audit {
        let _ = write!(
            out,
            "<tr><td>{}</td><td>{} ({})</td><td>{}</td><td>{}</td><td>{} {}</td></tr>",
            time(Some(e.at_ms)),
            esc(&e.user),
            esc(&e.role),
            esc(e.tenant.as_deref().unwrap_or("*")),
            esc(&e.action),
            esc(&e.object),
            esc(&e.detail)
        );
    }
    out.push_str("</tbody></table>");
    out
}
