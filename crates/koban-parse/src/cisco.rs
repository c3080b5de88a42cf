//! Cisco ASA / FTD (`%ASA-6-302013: Built inbound TCP connection ...`) and IOS
//! (`%SEC-6-IPACCESSLOGP: list 102 denied tcp 10.0.6.56(3067) -> 172.36.4.7(139)`).
//! Message ids are too many to describe one by one; their texts share a small
//! vocabulary instead: endpoints written `[iface:]ip[/port]` after `from`/`src`/`for`
//! and `to`/`dst`, users after `user`/`Uname:`/`User`. That vocabulary is read here.

use crate::out::{is_ip, transport, Out, FAILURE, SUCCESS};

/// `%ASA-6-302013: text` (also `%FTD-`, `%FWSM-`, `%PIX-`), bare or after a syslog header.
pub(crate) fn asa(s: &str) -> Option<Out> {
    let rest = s.strip_prefix('%')?;
    let (facility, rest) = rest.split_once('-')?;
    let product = match facility {
        "ASA" => "ASA",
        "FTD" => "FTD",
        "FWSM" => "FWSM",
        "PIX" => "PIX",
        _ => return ios(facility, rest),
    };
    let (sev, rest) = rest.split_once('-')?;
    let id_len = rest.bytes().take_while(u8::is_ascii_digit).count();
    if id_len != 6 || !sev.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let id = &rest[..id_len];
    let msg = rest[id_len..].trim_start_matches(':').trim_start();
    let mut o = Out::with_capacity(16);
    o.str("event.code", id);
    o.num("cisco.severity", sev);
    o.raw("message", msg);
    o.observer("Cisco", product);
    endpoints(msg, id, &mut o);
    users(msg, &mut o);
    outcome(msg, id, &mut o);
    let words: Vec<&str> = msg.split_ascii_whitespace().take(8).collect();
    if let Some(t) = words
        .iter()
        .find_map(|w| transport(w.trim_end_matches(',')))
    {
        o.str("network.transport", t);
    }
    o.source(Some("cisco"), &["asa"], &["firewall"]);
    Some(o)
}

/// IOS-style `%FAC-SEV-MNEMONIC: text`, e.g. the ACL log `%SEC-6-IPACCESSLOGP`.
fn ios(facility: &str, rest: &str) -> Option<Out> {
    if facility.is_empty()
        || !facility
            .bytes()
            .all(|b| b.is_ascii_uppercase() || b == b'_')
    {
        return None;
    }
    let (sev, rest) = rest.split_once('-')?;
    let (mnemonic, msg) = rest.split_once(':')?;
    if sev.len() != 1
        || !mnemonic
            .bytes()
            .all(|b| b.is_ascii_uppercase() || b == b'_' || b.is_ascii_digit())
    {
        return None;
    }
    let msg = msg.trim_start();
    let mut o = Out::with_capacity(12);
    o.str("event.code", &format!("{facility}-{sev}-{mnemonic}"));
    o.num("cisco.severity", sev);
    o.raw("message", msg);
    o.observer("Cisco", "IOS");
    // `10.0.6.56(3067) -> 172.36.4.7(139)` or `[192.168.100.11:51654 -> 10.10.10.10:4444]`.
    if let Some(arrow) = msg.find(" -> ") {
        let left = msg[..arrow].rsplit([' ', '[']).next().unwrap_or_default();
        let right = msg[arrow + 4..]
            .split([' ', ']', ','])
            .next()
            .unwrap_or_default();
        for (side, text) in [("source", left), ("destination", right)] {
            let (ip, port) = match text.split_once('(') {
                Some((ip, p)) => (ip, p.trim_end_matches(')')),
                None => crate::web::split_host_port(text),
            };
            if o.ip(&format!("{side}.ip"), ip) {
                o.port(&format!("{side}.port"), port);
            }
        }
    }
    if msg.contains(" denied ") {
        o.str("event.action", "deny");
    } else if msg.contains(" permitted ") {
        o.str("event.action", "allow");
    }
    o.source(Some("cisco"), &[&facility.to_ascii_lowercase()], &[]);
    Some(o)
}

/// `iface:ip/port`, `ip/port`, `ip` → (ip, port).
fn address(word: &str) -> Option<(&str, &str)> {
    let w = word
        .trim_end_matches([',', ';', '.', ')'])
        .trim_start_matches('(');
    let w = w
        .rsplit_once(':')
        .filter(|(_, r)| !r.contains(':'))
        .map_or(w, |(l, r)| {
            // `outside:1.2.3.4/80`: an interface name before the colon; IPv6 has many colons.
            if l.contains(':') || is_ip(w.split('/').next().unwrap_or(w)) {
                w
            } else {
                r
            }
        });
    let (ip, port) = w.split_once('/').unwrap_or((w, ""));
    is_ip(ip).then_some((ip, port))
}

fn endpoints(msg: &str, id: &str, o: &mut Out) {
    let words: Vec<&str> = msg.split_ascii_whitespace().collect();
    let mut src: Option<(&str, &str)> = None;
    let mut dst: Option<(&str, &str)> = None;
    for (i, w) in words.iter().enumerate() {
        let next = match words.get(i + 1) {
            Some(n) if *n == "=" => words.get(i + 2),
            n => n,
        };
        let Some(next) = next else { break };
        match w.trim_end_matches(':') {
            "from" | "src" | "for" | "SRC" | "laddr" | "remote-peer" if src.is_none() => {
                src = address(next)
            }
            "to" | "dst" | "DEST" | "dest" if dst.is_none() && src.is_some() => dst = address(next),
            "to" | "dst" | "DEST" | "dest" if dst.is_none() => dst = address(next),
            _ => {}
        }
    }
    // Built/Teardown "outbound": the `for` side is the outside responder.
    if matches!(id, "302013" | "302015") && msg.contains(" outbound ") {
        std::mem::swap(&mut src, &mut dst);
    }
    // `Accessed URL` and similar start with the client address itself.
    if src.is_none() {
        if let Some(first) = words.first().and_then(|w| address(w)) {
            src = Some(first);
        }
    }
    for (side, ep) in [("source", src), ("destination", dst)] {
        if let Some((ip, port)) = ep {
            o.ip(&format!("{side}.ip"), ip);
            o.port(&format!("{side}.port"), port);
        }
    }
}

fn users(msg: &str, o: &mut Out) {
    let words: Vec<&str> = msg.split_ascii_whitespace().collect();
    for (i, w) in words.iter().enumerate() {
        let key = w.trim_end_matches([':', ',']);
        if !matches!(key, "user" | "User" | "Uname" | "username" | "Username") {
            continue;
        }
        let mut value = words.get(i + 1).copied().unwrap_or_default();
        if value == "=" {
            value = words.get(i + 2).copied().unwrap_or_default();
        }
        let value = value
            .trim_end_matches([',', ':', ';'])
            .trim_matches(['"', '\'', '<', '>']);
        if !value.is_empty()
            && !matches!(
                value,
                "authentication" | "logged" | "priv" | "deleted" | "added"
            )
        {
            o.str("user.name", value);
            return;
        }
    }
}

fn outcome(msg: &str, id: &str, o: &mut Out) {
    let lower = msg.to_ascii_lowercase();
    let action = if lower.starts_with("deny")
        || lower.contains(" denied")
        || lower.contains("dropped")
        || lower.contains("drop ")
    {
        "deny"
    } else if lower.starts_with("built") && lower.contains(" connection ") {
        "allow"
    } else {
        ""
    };
    o.str("event.action", action);
    let auth = match id {
        "113004" | "605005" | "611101" | "716001" => SUCCESS,
        "113005" | "113006" | "605004" | "611102" | "308001" | "113015" => FAILURE,
        _ => "",
    };
    o.str("event.outcome", auth);
}

#[cfg(test)]
mod tests {
    use super::*;
    use koban_event::Value;

    #[test]
    fn asa_connection_messages() -> Result<(), &'static str> {
        let e = asa("%ASA-6-302013: Built outbound TCP connection 9 for outside:10.1.2.1/22 (10.1.2.1/22) to inside:10.1.1.2/53496 (10.1.1.2/53496)")
            .ok_or("302013")?
            .into_event();
        assert_eq!(e.get_str("source.ip").as_deref(), Some("10.1.1.2"));
        assert_eq!(e.get("destination.port"), Some(&Value::Int(22)));
        assert_eq!(e.get_str("network.transport").as_deref(), Some("tcp"));
        let e = asa("%ASA-4-106023: Deny tcp src inside:111.11.11.1/2143 dst YYY:172.11.1.11/139 by access-group \"inside_inbound\"")
            .ok_or("106023")?
            .into_event();
        assert_eq!(e.get_str("destination.ip").as_deref(), Some("172.11.1.11"));
        assert_eq!(e.get_str("event.action").as_deref(), Some("deny"));
        let e = asa("%ASA-6-605004: Login denied from 192.168.2.10/32597 to outside:192.168.2.14/ssh for user \"root\"")
            .ok_or("605004")?
            .into_event();
        assert_eq!(e.get_str("user.name").as_deref(), Some("root"));
        assert_eq!(e.get_str("event.outcome").as_deref(), Some("failure"));
        assert_eq!(e.get_str("source.ip").as_deref(), Some("192.168.2.10"));
        Ok(())
    }

    #[test]
    fn ios_acl_line() -> Result<(), &'static str> {
        let e = asa(
            "%SEC-6-IPACCESSLOGP: list 102 denied tcp 10.0.6.56(3067) -> 172.36.4.7(139), 1 packet",
        )
        .ok_or("ios")?
        .into_event();
        assert_eq!(e.get_str("source.ip").as_deref(), Some("10.0.6.56"));
        assert_eq!(e.get("destination.port"), Some(&Value::Int(139)));
        assert_eq!(e.get_str("event.action").as_deref(), Some("deny"));
        Ok(())
    }
}
