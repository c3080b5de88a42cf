//! ArcSight CEF: `CEF:Version|Vendor|Product|Version|SignatureID|Name|Severity|ext`.
//! Header fields escape `\|` and `\\`; the extension is `key=value` pairs separated
//! by spaces where a value runs to the next ` key=` and escapes `\=`, `\\`, `\n`, `\r`.
//! Extension keys stay as written (`src`, `suser`, `cs1`); the CEF dictionary's
//! common keys are mapped to ECS beside them.

use crate::out::{transport, Out};

/// Parses a CEF record (text from `CEF:` on).
pub(crate) fn parse(s: &str) -> Option<Out> {
    let body = s.strip_prefix("CEF:")?;
    let (header, ext) = split_header(body, 7)?;
    let version = header[0].trim();
    if version.is_empty() || !version.bytes().all(|b| b.is_ascii_digit() || b == b'.') {
        return None;
    }
    let mut o = Out::with_capacity(24);
    let names = [
        "cef.version",
        "deviceVendor",
        "deviceProduct",
        "deviceVersion",
        "deviceEventClassId",
        "name",
        "severity",
    ];
    for (n, v) in names.iter().zip(&header) {
        o.str(n, v);
    }
    o.observer(&header[1], &header[2]);
    o.str("observer.version", &header[3]);
    o.str("event.code", &header[4]);
    o.str("event.severity", &header[6]);
    let pairs = extension(ext);
    for (k, v) in &pairs {
        o.raw(k, v);
    }
    for (k, v) in &pairs {
        let v = v.as_str();
        match k.as_str() {
            "src" | "c6a2" => {
                o.ip("source.ip", v);
            }
            "dst" | "c6a3" => {
                o.ip("destination.ip", v);
            }
            "spt" => o.port("source.port", v),
            "dpt" => o.port("destination.port", v),
            "shost" => o.str("source.domain", v),
            "dhost" => o.str("destination.domain", v),
            "suser" => {
                o.str("source.user.name", v);
                o.str("user.name", v);
            }
            "duser" => {
                o.str("destination.user.name", v);
                o.str("user.name", v);
            }
            "proto" => {
                if let Some(t) = transport(v) {
                    o.str("network.transport", t);
                }
            }
            "app" => o.str("network.protocol", &v.to_ascii_lowercase()),
            "act" => o.str("event.action", v),
            "outcome" => o.str("event.outcome", &v.to_ascii_lowercase()),
            "request" => o.str("url.original", v),
            "requestMethod" => o.str("http.request.method", v),
            "requestClientApplication" => o.str("user_agent.original", v),
            "dvchost" => o.str("observer.hostname", v),
            "dvc" => {
                o.ip("observer.ip", v);
            }
            "sproc" => o.str("process.name", v),
            "spid" => o.port("process.pid", v),
            "fname" => o.str("file.name", v),
            "filePath" => o.str("file.path", v),
            "fileHash" => o.str("file.hash", v),
            "msg" => o.str("message", v),
            "rt" | "end" if o.timestamp.is_none() => o.timestamp = cef_time(v),
            _ => {}
        }
    }
    if !o.has("message") {
        o.str("message", &header[5]);
    }
    o.str("rule.name", &header[5]);
    Some(o)
}

/// Splits `n - 1` `|`-separated header fields (unescaping `\|` and `\\`) and
/// returns them with the rest (the extension).
pub(crate) fn split_header(s: &str, n: usize) -> Option<(Vec<String>, &str)> {
    let mut fields = Vec::with_capacity(n);
    let mut cur = String::new();
    let mut chars = s.char_indices();
    while let Some((i, c)) = chars.next() {
        match c {
            '\\' => match chars.next() {
                Some((_, '|')) => cur.push('|'),
                Some((_, '\\')) => cur.push('\\'),
                Some((_, other)) => {
                    cur.push('\\');
                    cur.push(other);
                }
                None => cur.push('\\'),
            },
            '|' => {
                fields.push(std::mem::take(&mut cur));
                if fields.len() == n {
                    return Some((fields, &s[i + 1..]));
                }
            }
            c => cur.push(c),
        }
    }
    // A record without an extension may end right after the last header field.
    if fields.len() == n - 1 {
        fields.push(cur);
        return Some((fields, ""));
    }
    None
}

/// The extension: a key is `[A-Za-z0-9_.\[\]-]+` followed by an unescaped `=`; the
/// value runs until the space before the next key.
fn extension(s: &str) -> Vec<(String, String)> {
    let b = s.as_bytes();
    // Positions of unescaped `=` that end a key preceded by a space (or the start).
    let mut keys: Vec<(usize, usize)> = Vec::new(); // (key start, index of '=')
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'\\' => i += 2,
            b'=' => {
                let mut k = i;
                while k > 0 && is_key_byte(b[k - 1]) {
                    k -= 1;
                }
                if k < i && (k == 0 || b[k - 1] == b' ') {
                    keys.push((k, i));
                }
                i += 1;
            }
            _ => i += 1,
        }
    }
    let mut out = Vec::with_capacity(keys.len());
    for (n, &(k, eq)) in keys.iter().enumerate() {
        let end = keys.get(n + 1).map_or(b.len(), |&(next, _)| next);
        let raw = s[eq + 1..end].trim_end_matches(' ');
        out.push((s[k..eq].to_owned(), unescape_value(raw)));
    }
    out
}

fn is_key_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"_.[]-".contains(&b)
}

fn unescape_value(s: &str) -> String {
    if !s.contains('\\') {
        return s.to_owned();
    }
    let mut out = String::with_capacity(s.len());
    let mut chars = s.chars();
    while let Some(c) = chars.next() {
        if c != '\\' {
            out.push(c);
            continue;
        }
        match chars.next() {
            Some('n') => out.push('\n'),
            Some('r') => out.push('\r'),
            Some(other) => out.push(other),
            None => out.push('\\'),
        }
    }
    out
}

/// `rt`: epoch milliseconds or `MMM dd yyyy HH:mm:ss` (with optional `.SSS` and zone).
fn cef_time(v: &str) -> Option<i64> {
    if let Ok(ms) = v.parse::<i64>() {
        return Some(ms);
    }
    let mut p = v.split_whitespace();
    let (mon, day, year, time) = (p.next()?, p.next()?, p.next()?, p.next()?);
    let month = crate::web::month_number(mon)?;
    koban_event::parse_timestamp(&format!("{year}-{month:02}-{day:0>2}T{time}Z"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use koban_event::Value;

    #[test]
    fn header_and_extension_escapes() -> Result<(), &'static str> {
        let e = parse(r"CEF:0|Security|threat\|manager|1.0|100|worm successfully stopped|10|src=10.0.0.1 dst=2.1.2.2 spt=1232 msg=a\=b c\\d\nnext suser=alice cs1Label=x y cs1=z")
            .ok_or("none")?
            .into_event();
        assert_eq!(
            e.get_str("deviceProduct").as_deref(),
            Some("threat|manager")
        );
        assert_eq!(e.get_str("msg").as_deref(), Some("a=b c\\d\nnext"));
        assert_eq!(e.get_str("cs1Label").as_deref(), Some("x y"));
        assert_eq!(e.get_str("source.ip").as_deref(), Some("10.0.0.1"));
        assert_eq!(e.get("source.port"), Some(&Value::Int(1232)));
        assert_eq!(e.get_str("user.name").as_deref(), Some("alice"));
        assert_eq!(e.get_str("observer.vendor").as_deref(), Some("Security"));
        Ok(())
    }

    #[test]
    fn no_extension_and_bad_version() {
        assert!(parse("CEF:0|V|P|1|id|name|5").is_some());
        assert!(parse("CEF:0|V|P|1|id|name|5|").is_some());
        assert!(parse("CEF:x|V|P|1|id|name|5|").is_none());
        assert!(parse("CEF:0|V|P").is_none());
    }
}
