//! Plain lists (one value per line, `#` comments) and CSV with a header naming the
//! value column. The kind of each value is told by the caller or guessed from its
//! shape (address, network, hash length, URL, e-mail, domain).

use crate::indicator::{parse_net, Indicator, Kind};
use crate::ImportReport;

/// The kind a bare value looks like.
pub fn guess(v: &str) -> Option<Kind> {
    let v = v.trim();
    if parse_net(v).is_some() {
        return Some(Kind::Ip);
    }
    if v.contains("://") {
        return Some(Kind::Url);
    }
    if v.bytes().all(|b| b.is_ascii_hexdigit()) {
        return match v.len() {
            32 => Some(Kind::Md5),
            40 => Some(Kind::Sha1),
            64 => Some(Kind::Sha256),
            _ => None,
        };
    }
    if v.contains('@') {
        return Some(Kind::Email);
    }
    if v.contains('.') && !v.contains(' ') {
        return Some(Kind::Domain);
    }
    None
}

/// One value per line.
pub fn import_lines(
    text: &str,
    kind: Option<Kind>,
    source: &str,
    out: &mut Vec<Indicator>,
    report: &mut ImportReport,
) {
    for line in text.lines() {
        let v = line.split('#').next().unwrap_or_default().trim();
        if v.is_empty() {
            continue;
        }
        add(v, kind, source, out, report);
    }
}

/// CSV: the first row names the columns; `column` is the one holding values (else the
/// first of value, indicator, ioc, ip, domain, url, hash).
pub fn import_csv(
    text: &str,
    column: Option<&str>,
    kind: Option<Kind>,
    source: &str,
    out: &mut Vec<Indicator>,
    report: &mut ImportReport,
) -> Result<(), String> {
    let mut rows = text
        .lines()
        .filter(|l| !l.trim().is_empty() && !l.starts_with('#'));
    let header: Vec<String> = split_csv(rows.next().ok_or("an empty CSV")?)
        .into_iter()
        .map(|h| h.trim().to_ascii_lowercase())
        .collect();
    let wanted: Vec<&str> = match column {
        Some(c) => vec![c],
        None => vec!["value", "indicator", "ioc", "ip", "domain", "url", "hash"],
    };
    let col = wanted
        .iter()
        .find_map(|w| header.iter().position(|h| h == &w.to_ascii_lowercase()))
        .ok_or_else(|| format!("no column named {} in {header:?}", wanted.join(" or ")))?;
    for row in rows {
        let cells = split_csv(row);
        match cells.get(col) {
            Some(v) if !v.trim().is_empty() => add(v.trim(), kind, source, out, report),
            _ => report.skip("a CSV row without a value"),
        }
    }
    Ok(())
}

fn add(
    v: &str,
    kind: Option<Kind>,
    source: &str,
    out: &mut Vec<Indicator>,
    report: &mut ImportReport,
) {
    let Some(k) = kind.or_else(|| guess(v)) else {
        report.skip("a value of no kind Koban matches");
        return;
    };
    match Indicator::new(k, v, source) {
        Ok(i) => {
            out.push(i);
            report.imported += 1;
        }
        Err(e) => report.skip(format!("a bad {} value: {e}", k.as_str())),
    }
}

/// Splits one CSV line (double quotes, doubled quotes inside).
fn split_csv(line: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut cur = String::new();
    let mut quoted = false;
    let mut chars = line.chars().peekable();
    while let Some(c) = chars.next() {
        match (c, quoted) {
            ('"', true) if chars.peek() == Some(&'"') => {
                cur.push('"');
                chars.next();
            }
            ('"', _) => quoted = !quoted,
            (',', false) => out.push(std::mem::take(&mut cur)),
            (c, _) => cur.push(c),
        }
    }
    out.push(cur);
    out
}
