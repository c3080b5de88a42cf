//! HTML building: escaping, the page frame (navigation, user, language), and the
//! small pieces every page uses. Pages are plain server-rendered HTML; the script adds
//! keyboard shortcuts and the live "new alerts" notice, nothing a page needs to work.

use std::fmt::Write;

use super::i18n::{t, Lang};
use crate::access::{Principal, Role};

/// Escapes text for an HTML element or a quoted attribute.
pub fn esc(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// Percent-encodes a query value.
pub fn url(s: &str) -> String {
    let mut out = String::new();
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b"-_.~".contains(&b) {
            out.push(b as char);
        } else {
            let _ = write!(out, "%{b:02X}");
        }
    }
    out
}

/// A UTC time as `2026-11-30 10:00:05`.
pub fn time(ms: Option<i64>) -> String {
    match ms {
        Some(ms) => {
            let s = koban_event::format_rfc3339(ms);
            s.get(..19).unwrap_or(&s).replace('T', " ")
        }
        None => "-".into(),
    }
}

/// A coloured badge for a level or grade.
pub fn badge(level: &str) -> String {
    let class = match level {
        "critical" => "b-crit",
        "high" => "b-high",
        "medium" => "b-med",
        "low" | "informational" => "b-low",
        _ => "b-other",
    };
    format!("<span class=\"badge {class}\">{}</span>", esc(level))
}

pub struct Frame<'a> {
    pub lang: Lang,
    pub who: &'a Principal,
    pub csrf: &'a str,
    /// The navigation entry to mark as current.
    pub active: &'static str,
    pub title: String,
}

/// The whole page around `body`.
pub fn page(f: &Frame<'_>, body: &str) -> String {
    let mut nav = String::new();
    let mut items = vec![
        ("dashboard", "/dashboard"),
        ("alerts", "/alerts"),
        ("incidents", "/incidents"),
        ("rules", "/rules"),
        ("hunt", "/hunt"),
        ("actions", "/actions"),
        ("sources", "/sources"),
    ];
    if matches!(f.who.role, Role::ProviderAdmin | Role::CustomerAdmin) {
        items.push(("admin", "/admin"));
    }
    for (key, href) in items {
        let cur = if key == f.active {
            " aria-current=\"page\""
        } else {
            ""
        };
        let _ = write!(nav, "<a href=\"{href}\"{cur}>{}</a>", t(f.lang, key));
    }
    let scope = f
        .who
        .tenant
        .as_deref()
        .map_or_else(|| t(f.lang, "all_tenants").to_owned(), esc);
    let other = match f.lang {
        Lang::En => ("ja", "日本語"),
        Lang::Ja => ("en", "English"),
    };
    format!(
        "<!doctype html><html lang=\"{lang}\"><head><meta charset=\"utf-8\">\
<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\
<meta name=\"csrf\" content=\"{csrf}\"><title>{title} · Koban</title>\
<link rel=\"stylesheet\" href=\"/console/app.css\"></head><body>\
<header><span class=\"brand\">交番 Koban</span><nav>{nav}</nav>\
<span class=\"who\">{user} · {role} · {scope}</span>\
<form method=\"post\" action=\"/lang\" class=\"inline\"><input type=\"hidden\" name=\"csrf\" value=\"{csrf}\">\
<input type=\"hidden\" name=\"lang\" value=\"{olang}\"><button>{oname}</button></form>\
<form method=\"post\" action=\"/logout\" class=\"inline\"><input type=\"hidden\" name=\"csrf\" value=\"{csrf}\">\
<button>{logout}</button></form></header>\
<div id=\"live\" hidden></div><main><h1>{title}</h1>{body}</main>\
<script src=\"/console/app.js\" defer></script></body></html>",
        lang = f.lang.code(),
        csrf = esc(f.csrf),
        title = esc(&f.title),
        user = esc(&f.who.user),
        role = f.who.role.as_str(),
        olang = other.0,
        oname = other.1,
        logout = t(f.lang, "logout"),
    )
}

/// A page with no frame (login, errors before a session exists).
pub fn bare(lang: Lang, title: &str, body: &str) -> String {
    format!(
        "<!doctype html><html lang=\"{}\"><head><meta charset=\"utf-8\">\
<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\"><title>{} · Koban</title>\
<link rel=\"stylesheet\" href=\"/console/app.css\"></head><body class=\"bare\"><main>{body}</main></body></html>",
        lang.code(),
        esc(title)
    )
}

pub const CSS: &str = r#"
:root{--bg:#f6f7f9;--fg:#1d232b;--muted:#5b6675;--line:#d8dde3;--card:#fff;--acc:#1f5fa8;
--crit:#8e1b1b;--high:#c0392b;--med:#b9770e;--low:#4a6b8a}
*{box-sizing:border-box}body{margin:0;font:14px/1.45 system-ui,"Noto Sans CJK JP","Noto Sans JP",sans-serif;background:var(--bg);color:var(--fg)}
header{display:flex;gap:1rem;align-items:center;padding:.4rem 1rem;background:#17212e;color:#e8edf2;flex-wrap:wrap}
header a{color:#c9d6e3;text-decoration:none;padding:.2rem .5rem;border-radius:4px}
header a[aria-current]{background:#2d3f55;color:#fff}header nav{display:flex;gap:.2rem;flex:1}
.brand{font-weight:700;letter-spacing:.02em}.who{color:#a9b7c6;font-size:12px}
header button{background:#2d3f55;color:#e8edf2;border:0;border-radius:4px;padding:.2rem .6rem;cursor:pointer}
main{padding:1rem;max-width:1340px;margin:0 auto}h1{font-size:20px;margin:.2rem 0 1rem}h2{font-size:15px;margin:1.2rem 0 .5rem}
table{border-collapse:collapse;width:100%;background:var(--card);border:1px solid var(--line)}
th,td{text-align:left;padding:.35rem .5rem;border-bottom:1px solid var(--line);vertical-align:top}
th{background:#eef1f4;font-weight:600;font-size:12px;color:var(--muted)}tr.sel{outline:2px solid var(--acc)}
td.num{text-align:right;font-variant-numeric:tabular-nums}a{color:var(--acc)}
.badge{display:inline-block;padding:0 .45rem;border-radius:9px;color:#fff;font-size:12px}
.b-crit{background:var(--crit)}.b-high{background:var(--high)}.b-med{background:var(--med)}.b-low{background:var(--low)}.b-other{background:#777}
.grid{display:grid;grid-template-columns:repeat(auto-fit,minmax(300px,1fr));gap:1rem}
.card{background:var(--card);border:1px solid var(--line);border-radius:6px;padding:.7rem 1rem}
.card h2{margin-top:0}.muted{color:var(--muted)}.big{font-size:26px;font-weight:700}
form.inline{display:inline}form.bar{display:flex;gap:.5rem;align-items:end;flex-wrap:wrap;margin:.5rem 0}
label{display:flex;flex-direction:column;font-size:12px;color:var(--muted)}
input,select,textarea,button{font:inherit}input,select,textarea{padding:.25rem .4rem;border:1px solid var(--line);border-radius:4px;background:#fff}
main button{background:var(--acc);color:#fff;border:0;border-radius:4px;padding:.3rem .8rem;cursor:pointer}
.why{font-family:ui-monospace,monospace;font-size:12px;white-space:pre-wrap;word-break:break-word}
.why.clip{max-height:3.2em;overflow:hidden;white-space:normal;word-break:break-all}
td.scope span{display:block;overflow:hidden;text-overflow:ellipsis;white-space:nowrap;max-width:100%}td.scope{max-width:0;width:100%}
.err{background:#fdecea;border:1px solid #f5c2bd;padding:.5rem .8rem;border-radius:4px}
.okmsg{background:#e8f5e9;border:1px solid #b9dfbb;padding:.5rem .8rem;border-radius:4px}
#live{position:fixed;bottom:1rem;right:1rem;background:var(--acc);color:#fff;padding:.5rem 1rem;border-radius:6px;cursor:pointer}
body.bare main{max-width:360px;margin:12vh auto}.login{background:var(--card);border:1px solid var(--line);border-radius:8px;padding:1.5rem;display:flex;flex-direction:column;gap:.8rem}
.heat td{text-align:center;font-size:12px;min-width:2.2rem}.clock-bad{color:var(--high);font-weight:700}
ol.log{padding-left:1.2rem}ol.log li{margin:.3rem 0}
textarea.q{width:100%;font-family:ui-monospace,monospace;font-size:13px}.qerr{font-family:ui-monospace,monospace;white-space:pre;background:#fdecea;border:1px solid #f5c2bd;padding:.5rem .8rem;border-radius:4px;overflow-x:auto}
progress{width:100%;height:6px}a.pivot{color:inherit;text-decoration:none;border-bottom:1px dotted var(--muted)}a.pivot:hover{background:#eef3fa}
td.fields{font-family:ui-monospace,monospace;font-size:12px;word-break:break-all}.side{display:grid;grid-template-columns:3fr 1fr;gap:1rem}@media(max-width:1000px){.side{grid-template-columns:1fr}}
"#;

pub const JS: &str = r#"
(function(){
  // Keyboard: g d / g a / g i / g r / g s to move, j/k to walk table rows, Enter to open, / to filter.
  var g=false, rows=[], at=-1;
  function pick(i){rows=[].slice.call(document.querySelectorAll('table.nav tbody tr'));if(!rows.length)return;
    if(at>=0&&rows[at])rows[at].classList.remove('sel');at=Math.max(0,Math.min(rows.length-1,i));rows[at].classList.add('sel');rows[at].scrollIntoView({block:'nearest'});}
  document.addEventListener('keydown',function(e){
    var tag=(e.target.tagName||'').toLowerCase(); if(tag==='input'||tag==='textarea'||tag==='select')return;
    if(g){g=false;var to={d:'/dashboard',a:'/alerts',i:'/incidents',r:'/rules',s:'/sources'}[e.key];if(to){location.href=to;}return;}
    if(e.key==='g'){g=true;return;}
    if(e.key==='j'){pick(at+1);}else if(e.key==='k'){pick(at-1);}
    else if(e.key==='Enter'&&at>=0&&rows[at]){var a=rows[at].querySelector('a');if(a)location.href=a.href;}
    else if(e.key==='/'){var f=document.querySelector('form.bar input,form.bar select');if(f){e.preventDefault();f.focus();}}
  });
  // Live: the server says when new alerts arrive for this user's tenants.
  if(window.EventSource){var es=new EventSource('/console/events'),first=null,box=document.getElementById('live');
    es.addEventListener('alerts',function(ev){var n=parseInt(ev.data,10);if(first===null){first=n;return;}
      if(n>first&&box){box.hidden=false;box.textContent=(n-first)+' '+(document.documentElement.lang==='ja'?'件の新しいアラート — 再読み込み':'new alerts — reload');box.onclick=function(){location.reload();};}});}
  // Bulk triage: a header checkbox selects every row.
  var all=document.getElementById('all');if(all){all.addEventListener('change',function(){
    [].forEach.call(document.querySelectorAll('input[name=ids]'),function(c){c.checked=all.checked;});});}
})();
"#;
