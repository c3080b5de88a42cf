//! IBM QRadar LEEF: `LEEF:1.0|Vendor|Product|Version|EventID|k=v<TAB>k=v` and LEEF 2.0,
//! which adds a delimiter field after the event id (`^`, `x09`, `0x7C`...; tab when
//! empty or absent). Attribute names stay as written; the predefined LEEF keys
//! (`src`, `dst`, `srcPort`, `usrName`, `devTime`, ...) are mapped to ECS beside them.

use crate::out::{transport, Out};

pub(crate) fn parse(s: &str) -> Option<Out> {
    let body = s.strip_prefix("LEEF:")?;
    let (header, rest) = crate::cef::split_header(body, 5)?;
    let version = header[0].trim();
    if !version.starts_with('1') && !version.starts_with('2') {
        return None;
    }
    let mut attrs = rest;
    let mut delim = '\t';
    if version.starts_with('2') {
        if let Some((spec, after)) = rest.split_once('|') {
            if spec.len() <= 6 && !spec.contains('=') {
                delim = delimiter(spec).unwrap_or('\t');
                attrs = after;
            }
        }
    }
    let mut o = Out::with_capacity(24);
    for (n, v) in [
        "leef.version",
        "devVendor",
        "devProduct",
        "devVersion",
        "devEventId",
    ]
    .iter()
    .zip(&header)
    {
        o.str(n, v);
    }
    o.observer(&header[1], &header[2]);
    o.str("observer.version", &header[3]);
    o.str("event.code", &header[4]);
    o.str("event.action", &header[4]);
    let pairs: Vec<(&str, &str)> = attrs
        .split(delim)
        .filter_map(|p| p.split_once('='))
        .map(|(k, v)| (k.trim(), v.trim_end_matches(['\r', '\n'])))
        .filter(|(k, _)| !k.is_empty())
        .collect();
    for (k, v) in &pairs {
        o.raw(k, v);
    }
    let (mut dev_time, mut dev_fmt) = ("", "");
    for &(k, v) in &pairs {
        match k {
            "src" | "srcPreNAT" => {
                o.ip("source.ip", v);
            }
            "dst" | "dstPreNAT" => {
                o.ip("destination.ip", v);
            }
            "srcPort" => o.port("source.port", v),
            "dstPort" => o.port("destination.port", v),
            "usrName" | "accountName" => o.str("user.name", v),
            "proto" => {
                if let Some(t) = transport(v) {
                    o.str("network.transport", t);
                }
            }
            "sev" => o.str("event.severity", v),
            "identHostName" | "HostName" => o.str("host.name", v),
            "url" => o.str("url.original", v),
            "action" => o.str("event.action", v),
            "devTime" => dev_time = v,
            "devTimeFormat" => dev_fmt = v,
            _ => {}
        }
    }
    o.timestamp = leef_time(dev_time, dev_fmt);
    Some(o)
}

/// `^`, `x09`, `0x09`, `\t` → the delimiter character.
fn delimiter(spec: &str) -> Option<char> {
    let hex = spec
        .strip_prefix("0x")
        .or_else(|| spec.strip_prefix("x"))
        .or_else(|| spec.strip_prefix("\\x"));
    match hex {
        Some(h) if !h.is_empty() => u32::from_str_radix(h, 16).ok().and_then(char::from_u32),
        _ if spec == "\\t" => Some('\t'),
        _ => spec.chars().next(),
    }
}

/// `devTime` in the ISO-like form most senders use, or epoch milliseconds.
fn leef_time(v: &str, _format: &str) -> Option<i64> {
    if v.is_empty() {
        return None;
    }
    if let Ok(ms) = v.parse::<i64>() {
        return Some(ms);
    }
    koban_event::parse_timestamp(v)
}

#[cfg(test)]
mod tests {
    use super::*;
    use koban_event::Value;

    #[test]
    fn leef1_tabs() -> Result<(), &'static str> {
        let e = parse("LEEF:1.0|Panda Security|paps|02.47|registrym|sev=1\tdevTime=2019-05-09 22:03:58.692466\tusrName=SYSTEM\tsrc=192.168.0.8\tsrcPort=80")
            .ok_or("none")?
            .into_event();
        assert_eq!(e.get_str("user.name").as_deref(), Some("SYSTEM"));
        assert_eq!(e.get_str("source.ip").as_deref(), Some("192.168.0.8"));
        assert_eq!(e.get("source.port"), Some(&Value::Int(80)));
        assert!(e.timestamp.is_some());
        Ok(())
    }

    #[test]
    fn leef2_custom_delimiter() -> Result<(), &'static str> {
        let e = parse(
            "LEEF:2.0|Lancope|StealthWatch|1.0|41|^|src=10.0.1.8^dst=10.0.0.5^sev=5^usrName=joe",
        )
        .ok_or("caret")?
        .into_event();
        assert_eq!(e.get_str("destination.ip").as_deref(), Some("10.0.0.5"));
        assert_eq!(e.get_str("usrName").as_deref(), Some("joe"));
        let e = parse("LEEF:2.0|V|P|1|id|0x7C|src=10.0.0.1|dst=10.0.0.2")
            .ok_or("hex")?
            .into_event();
        assert_eq!(e.get_str("dst").as_deref(), Some("10.0.0.2"));
        assert!(parse("LEEF:3.0|V|P|1|id|a=b").is_none());
        Ok(())
    }
}
