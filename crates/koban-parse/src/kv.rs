//! `key=value` text: the tokenizer the firewall and PAM parsers share, and the
//! generic key=value format (SonicWall, many appliances) with the common keys mapped
//! to ECS. Values may be double-quoted with `\"` inside; unquoted values end at
//! whitespace; words without `=` are skipped.

use std::borrow::Cow;

use crate::out::{transport, Out};
use crate::web::split_host_port;

/// The pairs of `s`, in order. Keys are the run of characters before `=`.
pub(crate) fn pairs(s: &str) -> Vec<(&str, Cow<'_, str>)> {
    let mut out = Vec::with_capacity(16);
    let b = s.as_bytes();
    let mut i = 0;
    while i < b.len() {
        while i < b.len() && b[i].is_ascii_whitespace() {
            i += 1;
        }
        let start = i;
        while i < b.len() && b[i] != b'=' && !b[i].is_ascii_whitespace() {
            i += 1;
        }
        if i >= b.len() || b[i] != b'=' {
            continue; // a bare word: not a pair
        }
        if i == start {
            // A stray `=` with no key: step over it (staying put would loop forever).
            i += 1;
            continue;
        }
        let key = &s[start..i];
        i += 1;
        if b.get(i) == Some(&b'"') {
            i += 1;
            let vstart = i;
            let mut escaped = false;
            while i < b.len() && b[i] != b'"' {
                if b[i] == b'\\' && i + 1 < b.len() {
                    escaped = true;
                    i += 1;
                }
                i += 1;
            }
            let raw = &s[vstart..i.min(b.len())];
            i += 1;
            let value = if escaped {
                Cow::Owned(unescape(raw))
            } else {
                Cow::Borrowed(raw)
            };
            out.push((key, value));
        } else {
            let vstart = i;
            while i < b.len() && !b[i].is_ascii_whitespace() {
                i += 1;
            }
            out.push((key, Cow::Borrowed(&s[vstart..i])));
        }
    }
    out
}

fn unescape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut chars = s.chars();
    while let Some(c) = chars.next() {
        if c == '\\' {
            if let Some(n) = chars.next() {
                out.push(n);
            }
        } else {
            out.push(c);
        }
    }
    out
}

/// How many leading words of `s` are `key=value` pairs (up to `max`): a cheap test for
/// "this message is key=value text" that stops early.
pub(crate) fn leading_pairs(s: &str, max: usize) -> usize {
    let mut n = 0;
    for word in s.split_ascii_whitespace().take(max) {
        match word.find('=') {
            Some(at) if at > 0 && word[..at].bytes().all(is_key_byte) => n += 1,
            _ => break,
        }
    }
    n
}

fn is_key_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"_.-:[]".contains(&b)
}

/// Generic key=value records: every pair kept under its own name, the usual keys
/// mapped to ECS. `None` when fewer than three pairs are present.
pub(crate) fn generic(s: &str) -> Option<Out> {
    let kv = pairs(s);
    if kv.len() < 3 || kv.iter().any(|(k, _)| !k.bytes().all(is_key_byte)) {
        return None;
    }
    let mut o = Out::with_capacity(kv.len() * 2);
    for (k, v) in &kv {
        o.raw(k, v);
    }
    map_common(&kv, &mut o);
    if has(&kv, "sn") && has(&kv, "fw") && has(&kv, "m") {
        o.observer("SonicWall", "SonicOS");
        o.source(Some("sonicwall"), &[], &["firewall"]);
    }
    Some(o)
}

fn has(kv: &[(&str, Cow<'_, str>)], key: &str) -> bool {
    kv.iter().any(|(k, _)| *k == key)
}

/// Common key spellings → ECS (first spelling present wins, later ones are skipped
/// by `Event::from_fields`).
pub(crate) fn map_common(kv: &[(&str, Cow<'_, str>)], o: &mut Out) {
    for (k, v) in kv {
        let v: &str = v;
        match k.to_ascii_lowercase().as_str() {
            "src" | "srcip" | "src_ip" | "source" | "source_ip" | "source-address" | "sip" => {
                endpoint(o, "source", v)
            }
            "dst"
            | "dstip"
            | "dst_ip"
            | "dest"
            | "dest_ip"
            | "destination"
            | "destination-address"
            | "dip" => endpoint(o, "destination", v),
            "spt" | "srcport" | "src_port" | "sport" | "source-port" | "s_port" => {
                o.port("source.port", v)
            }
            "dpt" | "dstport" | "dst_port" | "dport" | "destination-port" | "service_port" => {
                o.port("destination.port", v)
            }
            "proto" | "protocol" | "protocol-id" => {
                let name = v.split('/').next().unwrap_or(v);
                if let Some(t) = transport(name) {
                    o.str("network.transport", t);
                }
            }
            "user" | "usr" | "username" | "suser" | "usrname" | "user_name" => {
                o.str("user.name", v)
            }
            "action" | "act" => o.str("event.action", v),
            "msg" | "message" => o.str("message", v),
            "devname" | "hostname" | "host" | "dvchost" => o.str("host.name", v),
            _ => {}
        }
    }
}

/// `10.0.0.1`, `10.0.0.1:443`, SonicWall's `10.0.0.1:443:X0[:name]` → `.ip` and `.port`.
fn endpoint(o: &mut Out, side: &str, v: &str) {
    let ip_key = if side == "source" {
        "source.ip"
    } else {
        "destination.ip"
    };
    let port_key = if side == "source" {
        "source.port"
    } else {
        "destination.port"
    };
    if o.ip(ip_key, v) {
        return;
    }
    let mut parts = v.split(':');
    if let (Some(ip), Some(port)) = (parts.next(), parts.next()) {
        if o.ip(ip_key, ip) {
            o.port(port_key, port);
            return;
        }
    }
    let (h, p) = split_host_port(v);
    if o.ip(ip_key, h) {
        o.port(port_key, p);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quoted_and_empty_values() {
        let kv = pairs(r#"a=1 b="two words" c= d="say \"hi\"" bare e=x"#);
        let got: Vec<(&str, &str)> = kv.iter().map(|(k, v)| (*k, v.as_ref())).collect();
        assert_eq!(
            got,
            vec![
                ("a", "1"),
                ("b", "two words"),
                ("c", ""),
                ("d", "say \"hi\""),
                ("e", "x")
            ]
        );
        assert_eq!(leading_pairs("a=1 b=2 word c=3", 8), 2);
        // Regression: a `=` without a key once made the tokenizer spin.
        assert_eq!(pairs("= =x a==b ==").len(), 1);
    }

    #[test]
    fn sonicwall_line() -> Result<(), &'static str> {
        let e = generic(r#"id=firewall sn=000SERIAL time="2007-01-03 14:48:06" fw=1.1.1.1 pri=6 c=262144 m=98 msg="Connection Opened" n=23419 src=2.2.2.2:36701:WAN dst=1.1.1.1:50000:WAN proto=tcp/50000"#)
            .ok_or("none")?
            .into_event();
        assert_eq!(e.get_str("source.ip").as_deref(), Some("2.2.2.2"));
        assert_eq!(e.get_str("destination.port").as_deref(), Some("50000"));
        assert_eq!(e.get_str("network.transport").as_deref(), Some("tcp"));
        assert_eq!(e.get_str("message").as_deref(), Some("Connection Opened"));
        assert_eq!(e.logsource.product.as_deref(), Some("sonicwall"));
        Ok(())
    }
}
