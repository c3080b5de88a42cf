//! Small SVG charts drawn by the server: bars over days, and the ATT&CK heat map as a
//! table whose cells darken with their count.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write;

use super::html::esc;
use koban_detect::assess::KILL_CHAIN;

/// Bars for `(day start ms, count)` pairs, oldest first.
pub fn bars(points: &[(i64, i64)], label: &str) -> String {
    if points.is_empty() {
        return String::from("<p class=\"muted\">-</p>");
    }
    let (w, h, pad) = (300.0_f64, 110.0_f64, 16.0_f64);
    let max = points.iter().map(|p| p.1).max().unwrap_or(1).max(1) as f64;
    let step = (w - pad) / points.len() as f64;
    let mut svg = format!(
        "<svg viewBox=\"0 0 {w} {h}\" width=\"100%\" role=\"img\" aria-label=\"{}\">",
        esc(label)
    );
    for (i, (day, n)) in points.iter().enumerate() {
        let bh = (*n as f64 / max) * (h - 2.0 * pad);
        let x = pad + i as f64 * step;
        let y = h - pad - bh;
        let date = koban_event::format_rfc3339(*day);
        let _ = write!(
            svg,
            "<rect x=\"{x:.1}\" y=\"{y:.1}\" width=\"{:.1}\" height=\"{bh:.1}\" fill=\"#1f5fa8\"><title>{} {n}</title></rect>",
            (step * 0.8).clamp(1.0, 24.0),
            esc(date.get(..10).unwrap_or(&date)),
        );
    }
    let first = koban_event::format_rfc3339(points[0].0);
    let last = koban_event::format_rfc3339(points[points.len() - 1].0);
    let _ = write!(
        svg,
        "<text x=\"{pad}\" y=\"{}\" font-size=\"11\" fill=\"#5b6675\">{}</text>\
<text x=\"{}\" y=\"{}\" font-size=\"11\" fill=\"#5b6675\" text-anchor=\"end\">{}</text>\
<text x=\"{pad}\" y=\"12\" font-size=\"11\" fill=\"#5b6675\">max {max}</text></svg>",
        h - 6.0,
        esc(first.get(..10).unwrap_or(&first)),
        w - 4.0,
        h - 6.0,
        esc(last.get(..10).unwrap_or(&last)),
    );
    svg
}

/// Rows: tactics in kill-chain order; cells: the techniques seen under each.
pub fn heat(cells: &[(String, String, i64)]) -> String {
    if cells.is_empty() {
        return String::from("<p class=\"muted\">-</p>");
    }
    let mut by: BTreeMap<&str, Vec<(&str, i64)>> = BTreeMap::new();
    let max = cells.iter().map(|c| c.2).max().unwrap_or(1).max(1) as f64;
    let mut tactics: BTreeSet<&str> = BTreeSet::new();
    for (ta, te, n) in cells {
        by.entry(ta).or_default().push((te, *n));
        tactics.insert(ta);
    }
    let mut order: Vec<&str> = tactics.into_iter().collect();
    order.sort_by_key(|t| KILL_CHAIN.iter().position(|k| k == t).unwrap_or(99));
    let mut out = String::from("<table class=\"heat\"><tbody>");
    for ta in order {
        let _ = write!(
            out,
            "<tr><th>{}</th><td style=\"text-align:left\">",
            esc(ta)
        );
        let mut techs = by.remove(ta).unwrap_or_default();
        techs.sort_by_key(|t| std::cmp::Reverse(t.1));
        for (te, n) in techs {
            let a = 0.15 + 0.85 * (n as f64 / max);
            let fg = if a > 0.55 { "#fff" } else { "#1d232b" };
            let _ = write!(
                out,
                "<span class=\"badge\" style=\"background:rgba(192,57,43,{a:.2});color:{fg};margin:1px\" title=\"{n}\">{} {n}</span>",
                esc(te)
            );
        }
        out.push_str("</td></tr>");
    }
    out.push_str("</tbody></table>");
    out
}
