//! The hunting pages: `/hunt` (a query box whose results stream in from
//! `POST /api/v1/hunt`, with the user's saved searches and history) and `/timeline`
//! (one entity's events and alerts in time order, with pivots and exports).

use std::fmt::Write;

use axum::extract::{Query, State};
use axum::http::header;
use axum::response::{Html, IntoResponse, Redirect, Response};
use serde::Deserialize;
use serde_json::Value;

use super::html::{esc, page, url};
use super::i18n::t;
use super::{tenants_in_scope, Viewer};
use crate::guard::GuardError;
use crate::http::AppState;
use crate::hunt::timeline;

/// The tenant a page is about: the one asked for, else the customer's own, else the
/// first the viewer may see.
fn chosen_tenant(asked: Option<&str>, v: &Viewer, tenants: &[String]) -> String {
    asked
        .filter(|t| !t.is_empty())
        .map(str::to_owned)
        .or_else(|| v.who.tenant.clone())
        .or_else(|| tenants.first().cloned())
        .unwrap_or_default()
}

fn tenant_options(tenants: &[String], chosen: &str) -> String {
    tenants
        .iter()
        .map(|n| {
            format!(
                "<option{}>{}</option>",
                if n == chosen { " selected" } else { "" },
                esc(n)
            )
        })
        .collect()
}

#[derive(Deserialize, Default)]
pub(super) struct HuntQuery {
    q: Option<String>,
    tenant: Option<String>,
    from: Option<String>,
    to: Option<String>,
}

pub(super) async fn hunt_page(
    State(st): State<AppState>,
    v: Viewer,
    Query(q): Query<HuntQuery>,
) -> Response {
    let g = v.guard(&st);
    let tenant = q.tenant.clone().filter(|t| !t.is_empty());
    let (saved, history) = match super::run(move || {
        Ok::<_, GuardError>((
            g.saved_searches(tenant.clone())?,
            g.query_history(tenant, 20)?,
        ))
    })
    .await
    {
        Ok(x) => x,
        Err(e) => return v.failure(e),
    };
    let tenants = tenants_in_scope(&st, &v.who);
    let chosen = chosen_tenant(q.tenant.as_deref(), &v, &tenants);
    let mut b = String::new();
    let _ = write!(
        b,
        "<div class=\"side\"><div><form id=\"hunt\" class=\"card\">\
<label>{query}<textarea class=\"q\" name=\"q\" rows=\"3\" spellcheck=\"false\" autofocus>{qtext}</textarea></label>\
<p class=\"muted\">{help}</p><div class=\"bar\" style=\"display:flex;gap:.5rem;align-items:end;flex-wrap:wrap\">\
<label>{tenant_l}<select name=\"tenant\">{options}</select></label>\
<label>{from_l}<input name=\"from\" value=\"{from}\" placeholder=\"2026-11-01T00:00:00Z\"></label>\
<label>{until_l}<input name=\"to\" value=\"{to}\" placeholder=\"now\"></label>\
<button type=\"submit\">{run}</button></div></form>\
<progress id=\"hunt-progress\" value=\"0\" max=\"1\" hidden></progress>\
<div id=\"hunt-error\" class=\"qerr\" hidden></div><p id=\"hunt-summary\" class=\"muted\"></p>\
<div id=\"hunt-results\"></div></div><div>",
        query = t(v.lang, "query"),
        qtext = esc(q.q.as_deref().unwrap_or_default()),
        help = esc(t(v.lang, "hunt_help")),
        tenant_l = t(v.lang, "tenant"),
        options = tenant_options(&tenants, &chosen),
        from_l = t(v.lang, "from"),
        from = esc(q.from.as_deref().unwrap_or_default()),
        until_l = t(v.lang, "until"),
        to = esc(q.to.as_deref().unwrap_or_default()),
        run = t(v.lang, "run"),
    );
    let _ = write!(
        b,
        "<div class=\"card\"><h2>{}</h2><form method=\"post\" action=\"/hunt/save\" id=\"save-search\">\
<input type=\"hidden\" name=\"csrf\" value=\"{}\"><input type=\"hidden\" name=\"tenant\" value=\"{}\">\
<input type=\"hidden\" name=\"query\" value=\"{}\">\
<label>{}<input name=\"name\" required maxlength=\"200\"></label> <button>{}</button></form><ul>",
        t(v.lang, "saved_searches"),
        esc(&v.csrf),
        esc(&chosen),
        esc(q.q.as_deref().unwrap_or_default()),
        t(v.lang, "save_as"),
        t(v.lang, "save"),
    );
    for s in &saved {
        let _ = write!(
            b,
            "<li><a href=\"/hunt?tenant={}&q={}\">{}</a> <span class=\"muted\">{}</span></li>",
            url(s["tenant"].as_str().unwrap_or_default()),
            url(s["query"].as_str().unwrap_or_default()),
            esc(s["name"].as_str().unwrap_or_default()),
            esc(s["tenant"].as_str().unwrap_or_default()),
        );
    }
    let _ = write!(
        b,
        "</ul></div><div class=\"card\"><h2>{}</h2><ol class=\"log\">",
        t(v.lang, "history")
    );
    for h in &history {
        let outcome = match (&h["error"], &h["matched"]) {
            (Value::String(e), _) => format!("<span class=\"clock-bad\">{}</span>", esc(e)),
            (_, Value::Number(n)) => format!("{n} {} · {} ms", t(v.lang, "matched"), h["took_ms"]),
            _ => String::new(),
        };
        let _ = write!(
            b,
            "<li><a href=\"/hunt?tenant={}&q={}\"><code>{}</code></a><br><span class=\"muted\">{}</span></li>",
            url(h["tenant"].as_str().unwrap_or_default()),
            url(h["query"].as_str().unwrap_or_default()),
            esc(h["query"].as_str().unwrap_or_default()),
            outcome
        );
    }
    b.push_str("</ol></div></div></div><script src=\"/console/hunt.js\" defer></script>");
    Html(page(&v.frame("hunt", t(v.lang, "hunt").into()), &b)).into_response()
}

pub(super) async fn save_search(
    State(st): State<AppState>,
    v: Viewer,
    body: axum::body::Bytes,
) -> Response {
    let form = super::parse_form(&body);
    if let Some(r) = v.csrf_refusal(&form) {
        return r;
    }
    let get = |k| super::field(&form, k).unwrap_or_default().to_owned();
    let (tenant, name, query) = (get("tenant"), get("name"), get("query"));
    if let Err(e) = koban_hunt::parse(&query) {
        return v.failure(GuardError::Triage(crate::alerts::TriageError::Invalid(
            format!("{e}\n{}", e.caret(&query)),
        )));
    }
    let g = v.guard(&st);
    let back = format!("/hunt?tenant={}&q={}", url(&tenant), url(&query));
    match super::run(move || g.save_search(&tenant, &name, &query)).await {
        Ok(_) => Redirect::to(&back).into_response(),
        Err(e) => v.failure(e),
    }
}

#[derive(Deserialize, Default)]
pub(super) struct TimelineQuery {
    tenant: Option<String>,
    kind: Option<String>,
    value: Option<String>,
    from: Option<String>,
    to: Option<String>,
}

fn millis(s: &Option<String>) -> Option<i64> {
    s.as_deref()
        .filter(|s| !s.is_empty())
        .and_then(koban_event::parse_timestamp)
}

pub(super) async fn timeline_page(
    State(st): State<AppState>,
    v: Viewer,
    Query(q): Query<TimelineQuery>,
) -> Response {
    let tenants = tenants_in_scope(&st, &v.who);
    let tenant = chosen_tenant(q.tenant.as_deref(), &v, &tenants);
    let kind = q.kind.clone().unwrap_or_else(|| "host".into());
    let value = q.value.clone().unwrap_or_default();
    let (from_ms, to_ms) = (millis(&q.from), millis(&q.to));
    let mut b = String::new();
    let _ = write!(
        b,
        "<form method=\"get\" action=\"/timeline\" class=\"bar\">\
<label>{}<select name=\"tenant\">{}</select></label><label>{}<select name=\"kind\">{}</select></label>\
<label>{}<input name=\"value\" value=\"{}\" required></label>\
<label>{}<input name=\"from\" value=\"{}\"></label><label>{}<input name=\"to\" value=\"{}\"></label>\
<button>{}</button></form>",
        t(v.lang, "tenant"),
        tenant_options(&tenants, &tenant),
        t(v.lang, "kind"),
        timeline::KINDS
            .iter()
            .map(|(k, _)| format!(
                "<option{}>{k}</option>",
                if *k == kind { " selected" } else { "" }
            ))
            .collect::<String>(),
        t(v.lang, "value"),
        esc(&value),
        t(v.lang, "from"),
        esc(q.from.as_deref().unwrap_or_default()),
        t(v.lang, "until"),
        esc(q.to.as_deref().unwrap_or_default()),
        t(v.lang, "run"),
    );
    if !value.is_empty() {
        let Some(kinds) = timeline::entity_kinds(&kind) else {
            return v.failure(GuardError::Triage(crate::alerts::TriageError::Invalid(
                format!("no timeline kind {kind:?}"),
            )));
        };
        let searcher = st.search.clone();
        let g = v.guard(&st);
        let with_alerts = st.alerts.is_some();
        let (tn, kd, vl) = (tenant.clone(), kind.clone(), value.clone());
        let got = super::run(move || {
            g.hunt(&tn, &format!("timeline {kd}={vl}"))?;
            let searcher = searcher.ok_or_else(|| {
                GuardError::Triage(crate::alerts::TriageError::Invalid(
                    "this server has no event store".into(),
                ))
            })?;
            let (total, events) = timeline::events(&searcher, &tn, &kd, &vl, from_ms, to_ms, 2000)
                .map_err(|e| {
                    GuardError::Triage(crate::alerts::TriageError::Invalid(e.to_string()))
                })?;
            let alerts = if with_alerts {
                g.entity_alerts(&tn, kinds, &vl, (from_ms, to_ms), 2000)?
            } else {
                Vec::new()
            };
            Ok((total, timeline::merge(events, alerts)))
        })
        .await;
        let (total, entries) = match got {
            Ok(x) => x,
            Err(e) => return v.failure(e),
        };
        let export = format!(
            "/api/v1/timeline?tenant={}&kind={}&value={}&from={}&to={}&limit={}",
            url(&tenant),
            url(&kind),
            url(&value),
            url(q.from.as_deref().unwrap_or_default()),
            url(q.to.as_deref().unwrap_or_default()),
            timeline::MAX_ENTRIES
        );
        let _ = write!(
            b,
            "<p class=\"muted\">{} {} · {}: <a href=\"{export}&format=csv\">CSV</a> · <a href=\"{export}&format=json\">JSON</a></p>\
<table class=\"nav\"><thead><tr><th>{}</th><th>{}</th><th>{}</th><th>{}</th></tr></thead><tbody>",
            total,
            t(v.lang, "matched"),
            t(v.lang, "export"),
            t(v.lang, "time"),
            t(v.lang, "kind"),
            t(v.lang, "source"),
            t(v.lang, "summary"),
        );
        for e in &entries {
            timeline_row(&mut b, &tenant, e);
        }
        b.push_str("</tbody></table>");
    }
    Html(page(&v.frame("hunt", t(v.lang, "timeline").into()), &b)).into_response()
}

/// One timeline entry: an alert links to its incident; an event's fields are pivots
/// (a click hunts for that value in the same tenant).
fn timeline_row(b: &mut String, tenant: &str, e: &Value) {
    let at = e["at"].as_str().unwrap_or_default();
    if e["kind"] == "alert" {
        let a = &e["alert"];
        let incident = a["incident_id"]
            .as_i64()
            .map(|i| format!(" <a href=\"/incidents/{i}\">#{i}</a>"))
            .unwrap_or_default();
        let _ = write!(
            b,
            "<tr class=\"alert\"><td>{}</td><td>{}</td><td>{}</td><td><strong>{}</strong>{incident}</td></tr>",
            esc(at),
            super::html::badge(a["level"].as_str().unwrap_or_default()),
            esc(a["source"].as_str().unwrap_or_default()),
            esc(a["title"].as_str().unwrap_or_default()),
        );
        return;
    }
    let ev = &e["event"];
    let mut fields = String::new();
    if let Some(m) = ev["fields"].as_object() {
        for (k, v) in m {
            let text = match v {
                Value::String(s) => s.clone(),
                other => other.to_string(),
            };
            let shown: String = text.chars().take(200).collect();
            let _ = write!(
                fields,
                "{}=<a class=\"pivot\" href=\"/hunt?tenant={}&q={}\">{}</a> ",
                esc(k),
                url(tenant),
                url(&pivot(k, &text)),
                esc(&shown)
            );
        }
    }
    let _ = write!(
        b,
        "<tr><td>{}</td><td>event</td><td>{}</td><td class=\"fields\">{fields}</td></tr>",
        esc(at),
        esc(ev["source"].as_str().unwrap_or_default()),
    );
}

/// The query that filters on one field value, quoted and escaped for the language.
pub fn pivot(field: &str, value: &str) -> String {
    let mut q = String::with_capacity(field.len() + value.len() + 3);
    q.push_str(field);
    q.push_str("=\"");
    for c in value.chars() {
        if matches!(c, '"' | '\\' | '*' | '?') {
            q.push('\\');
        }
        q.push(c);
    }
    q.push('"');
    q
}

pub(super) async fn hunt_js() -> impl IntoResponse {
    (
        [(header::CONTENT_TYPE, "text/javascript; charset=utf-8")],
        HUNT_JS,
    )
}

/// Runs the query over `POST /api/v1/hunt`, reading its NDJSON as it arrives:
/// progress into the bar, events and rows into a table whose values are pivots.
const HUNT_JS: &str = r#"
(function(){
  var form=document.getElementById('hunt'); if(!form)return;
  var csrf=document.querySelector('meta[name=csrf]').content;
  var out=document.getElementById('hunt-results'), bar=document.getElementById('hunt-progress');
  var err=document.getElementById('hunt-error'), sum=document.getElementById('hunt-summary');
  function el(tag,text,cls){var e=document.createElement(tag);if(text!=null)e.textContent=text;if(cls)e.className=cls;return e;}
  function quote(v){return '"'+String(v).replace(/["\\*?]/g,'\\$&')+'"';}
  function pivot(field,value){var a=el('a',String(value).slice(0,200),'pivot');a.href='#';
    a.onclick=function(ev){ev.preventDefault();var q=form.q.value.split('|');q[0]=q[0].trim()+' '+field+'='+quote(value);form.q.value=q.join(' |').trim();run();};return a;}
  var table,tbody,columns;
  function start(cols){table=el('table');table.className='nav';var h=el('thead'),tr=el('tr');cols.forEach(function(c){tr.appendChild(el('th',c));});h.appendChild(tr);table.appendChild(h);tbody=el('tbody');table.appendChild(tbody);out.appendChild(table);columns=cols;}
  function events(list){if(!table)start(['time','source','fields']);list.forEach(function(e){var tr=el('tr');tr.appendChild(el('td',e.time));tr.appendChild(el('td',e.source));
    var td=el('td',null,'fields');Object.keys(e.fields||{}).forEach(function(k){td.appendChild(document.createTextNode(k+'='));td.appendChild(pivot(k,e.fields[k]));td.appendChild(document.createTextNode(' '));});tr.appendChild(td);tbody.appendChild(tr);});}
  function rows(list){list.forEach(function(r){var tr=el('tr');r.forEach(function(v,i){var td=el('td');var c=columns[i];
    if(i<columns.length-1&&c!=='_time'&&c!=='count'&&c!=='percent'&&v!==''&&v!=null){td.appendChild(pivot(c,v));}else{td.textContent=v==null?'':v;td.className='num';}tr.appendChild(td);});tbody.appendChild(tr);});}
  function line(m){if(m.progress){bar.hidden=false;bar.max=m.progress.total||1;bar.value=m.progress.done;}
    else if(m.events)events(m.events);else if(m.columns)start(m.columns);else if(m.rows)rows(m.rows);
    else if(m.summary){var s=m.summary;sum.textContent=s.matched+' matched · '+s.returned+' shown · '+m.took_ms+' ms'+(s.notes.length?' — '+s.notes.join('; '):'');bar.hidden=true;}
    else if(m.error){err.hidden=false;err.textContent=m.error+(m.caret?'\n'+m.caret:'');bar.hidden=true;}}
  function run(){out.textContent='';err.hidden=true;sum.textContent='';table=null;
    var body={tenant:form.tenant.value,query:form.q.value};if(form.from.value)body.from=form.from.value;if(form.to.value)body.to=form.to.value;
    var save=document.getElementById('save-search');if(save){save.query.value=form.q.value;save.tenant.value=form.tenant.value;}
    history.replaceState(null,'','/hunt?tenant='+encodeURIComponent(form.tenant.value)+'&q='+encodeURIComponent(form.q.value));
    fetch('/api/v1/hunt',{method:'POST',headers:{'content-type':'application/json','x-csrf-token':csrf},body:JSON.stringify(body),credentials:'same-origin'})
    .then(function(r){if(!r.ok){return r.json().then(function(j){line({error:j.error||j.message||('HTTP '+r.status),caret:j.caret});});}
      var rd=r.body.getReader(),dec=new TextDecoder(),buf='';
      function pump(){return rd.read().then(function(x){if(x.done){if(buf.trim())line(JSON.parse(buf));return;}buf+=dec.decode(x.value,{stream:true});var i;
        while((i=buf.indexOf('\n'))>=0){var l=buf.slice(0,i);buf=buf.slice(i+1);if(l.trim())line(JSON.parse(l));}return pump();});}
      return pump();}).catch(function(e){line({error:String(e)});});}
  form.addEventListener('submit',function(e){e.preventDefault();run();});
  form.q.addEventListener('keydown',function(e){if(e.key==='Enter'&&!e.shiftKey){e.preventDefault();run();}});
  if(form.q.value.trim())run();
})();
"#;
