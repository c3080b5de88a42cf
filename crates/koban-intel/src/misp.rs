//! MISP event JSON (`{"Event": {…}}`, as exported and as served by MISP feeds): the
//! event's attributes and those of its objects. Each attribute of a type Koban matches
//! becomes an indicator (both halves of `filename|md5`-style pairs give the hash;
//! `ip-dst|port` gives the address); every other attribute is counted under its type.

use serde_json::Value;

use crate::indicator::{Indicator, Kind, Tlp};
use crate::ImportReport;

/// The kind an attribute type gives, and which `|` part of the value holds it.
fn kind_of(t: &str) -> Option<(Kind, usize)> {
    Some(match t {
        "ip-src" | "ip-dst" => (Kind::Ip, 0),
        "ip-src|port" | "ip-dst|port" => (Kind::Ip, 0),
        "domain" | "hostname" => (Kind::Domain, 0),
        "domain|ip" => (Kind::Domain, 0),
        "url" | "uri" | "link" => (Kind::Url, 0),
        "md5" => (Kind::Md5, 0),
        "sha1" => (Kind::Sha1, 0),
        "sha256" => (Kind::Sha256, 0),
        "filename|md5" => (Kind::Md5, 1),
        "filename|sha1" => (Kind::Sha1, 1),
        "filename|sha256" => (Kind::Sha256, 1),
        "email-src" | "email-dst" | "email" => (Kind::Email, 0),
        _ => return None,
    })
}

/// Imports one MISP event document.
pub fn import_event(
    doc: &Value,
    source: &str,
    out: &mut Vec<Indicator>,
    report: &mut ImportReport,
) {
    let e = doc.get("Event").unwrap_or(doc);
    let info = e["info"].as_str().unwrap_or_default().to_owned();
    let event_tlp = tlp_of(&e["Tag"]);
    let mut attrs: Vec<&Value> = e["Attribute"].as_array().into_iter().flatten().collect();
    for o in e["Object"].as_array().into_iter().flatten() {
        attrs.extend(o["Attribute"].as_array().into_iter().flatten());
    }
    for a in attrs {
        if a["deleted"].as_bool() == Some(true) {
            report.skip("deleted attribute");
            continue;
        }
        let t = a["type"].as_str().unwrap_or("(no type)");
        let Some((kind, part)) = kind_of(t) else {
            report.skip(format!("attribute type {t}"));
            continue;
        };
        let raw = a["value"].as_str().unwrap_or_default();
        // `link` attributes are references (reports, blogs), not indicators, unless
        // MISP marks them for detection.
        if t == "link" && a["to_ids"].as_bool() != Some(true) {
            report.skip("link attribute (a reference, not for detection)");
            continue;
        }
        let value = raw.split('|').nth(part).unwrap_or(raw);
        match Indicator::new(kind, value, source) {
            Ok(mut ind) => {
                ind.id = a["uuid"].as_str().map(str::to_owned);
                ind.tlp = tlp_of(&a["Tag"]).or(event_tlp);
                ind.first_seen_ms = a["first_seen"]
                    .as_str()
                    .and_then(crate::indicator::time_ms)
                    .or_else(|| a["timestamp"].as_str().and_then(crate::indicator::time_ms));
                ind.last_seen_ms = a["last_seen"].as_str().and_then(crate::indicator::time_ms);
                // MISP's `to_ids` says whether the value is meant for detection.
                ind.confidence = Some(if a["to_ids"].as_bool() == Some(true) {
                    80
                } else {
                    40
                });
                ind.context = info.chars().take(300).collect();
                out.push(ind);
                report.imported += 1;
            }
            Err(e) => report.skip(format!("a bad {t} value: {e}")),
        }
    }
}

fn tlp_of(tags: &Value) -> Option<Tlp> {
    tags.as_array()
        .into_iter()
        .flatten()
        .filter_map(|t| t["name"].as_str())
        .filter(|n| n.to_ascii_lowercase().starts_with("tlp:"))
        .filter_map(Tlp::parse)
        .max()
}
