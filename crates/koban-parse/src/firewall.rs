//! Firewall logs that are key=value or CSV text: FortiGate (`date= time= devname=
//! ... srcip= dstip= action=`), Palo Alto (the CSV syslog format of TRAFFIC, THREAT,
//! SYSTEM and CONFIG logs) and iptables/nftables kernel lines (`IN= OUT= SRC= DST=`).
//! Source-native names stay (Sigma's FortiGate rules test `action` and `cfgpath`);
//! the ECS and Sigma `firewall` taxonomy names (`src_ip`, `dst_port`) are added.

use koban_event::parse_timestamp;

use crate::kv::{map_common, pairs};
use crate::out::{transport, Out};

/// Adds Sigma's firewall taxonomy names from the ECS ones already present.
fn firewall_names(o: &mut Out) {
    let copies: Vec<(&str, koban_event::Value)> = o
        .fields
        .iter()
        .filter_map(|(k, v)| {
            let to = match k.as_str() {
                "source.ip" => "src_ip",
                "destination.ip" => "dst_ip",
                "source.port" => "src_port",
                "destination.port" => "dst_port",
                _ => return None,
            };
            Some((to, v.clone()))
        })
        .collect();
    for (k, v) in copies {
        o.value(k, v);
    }
}

/// FortiGate/FortiOS: needs `devname` or `devid`, and `logid` or `type`.
pub(crate) fn fortigate(s: &str) -> Option<Out> {
    if !(s.contains("devid=") || s.contains("devname=")) || !s.contains("logid=") {
        return None;
    }
    let kv = pairs(s);
    let mut o = Out::with_capacity(kv.len() + 12);
    let (mut date, mut time, mut tz, mut kind) = ("", "", "", "");
    for (k, v) in &kv {
        o.raw(k, v);
        match *k {
            "date" => date = v,
            "time" => time = v,
            "tz" => tz = v,
            "type" => kind = v,
            _ => {}
        }
    }
    map_common(&kv, &mut o);
    for (k, v) in &kv {
        match *k {
            "logid" => o.str("event.code", v),
            "devid" => o.str("observer.serial_number", v),
            "devname" => o.str("observer.name", v),
            "service" => o.str("network.protocol", &v.to_ascii_lowercase()),
            "url" => o.str("url.original", v),
            "level" => o.str("log.level", v),
            "attack" => o.str("rule.name", v),
            "policyid" => o.str("rule.id", v),
            _ => {}
        }
    }
    if !date.is_empty() && !time.is_empty() {
        let zone = match tz.as_bytes() {
            [s @ (b'+' | b'-'), ..] if tz.len() == 5 && tz.is_ascii() => {
                format!("{}{}:{}", *s as char, &tz[1..3], &tz[3..])
            }
            _ => "Z".into(),
        };
        o.timestamp = parse_timestamp(&format!("{date}T{time}{zone}"));
    }
    o.observer("Fortinet", "FortiGate");
    let service = kind.to_ascii_lowercase();
    let category: &[&str] = if service == "traffic" {
        &["firewall"]
    } else {
        &[]
    };
    o.source(Some("fortigate"), &[service.as_str()], category);
    firewall_names(&mut o);
    Some(o)
}

/// iptables / nftables `LOG` target lines: `[prefix] IN=eth0 OUT= SRC=.. DST=.. PROTO=TCP SPT= DPT=`.
pub(crate) fn iptables(s: &str) -> Option<Out> {
    let at = s.find("IN=")?;
    if !s.contains(" SRC=") || !s.contains(" DST=") {
        return None;
    }
    let prefix = s[..at].trim();
    let kv = pairs(&s[at..]);
    let mut o = Out::with_capacity(kv.len() + 12);
    for (k, v) in &kv {
        o.raw(k, v);
        match *k {
            "SRC" => {
                o.ip("source.ip", v);
            }
            "DST" => {
                o.ip("destination.ip", v);
            }
            "SPT" => o.port("source.port", v),
            "DPT" => o.port("destination.port", v),
            "PROTO" => {
                if let Some(t) = transport(v) {
                    o.str("network.transport", t);
                }
            }
            "IN" => o.str("observer.ingress.interface.name", v),
            "OUT" => o.str("observer.egress.interface.name", v),
            _ => {}
        }
    }
    // A prefix such as `[UFW BLOCK]` or `DROP-IN:` is the only statement of the verdict.
    let p = prefix.to_ascii_uppercase();
    if !prefix.is_empty() {
        o.str("rule.name", prefix.trim_matches(['[', ']', ':', ' ']));
    }
    let action = if p.contains("BLOCK")
        || p.contains("DROP")
        || p.contains("REJECT")
        || p.contains("DENY")
    {
        "deny"
    } else if p.contains("ACCEPT") || p.contains("ALLOW") || p.contains("PASS") {
        "allow"
    } else {
        ""
    };
    o.str("event.action", action);
    o.str("action", action);
    o.source(Some("linux"), &["iptables"], &["firewall"]);
    firewall_names(&mut o);
    Some(o)
}

/// Palo Alto PAN-OS CSV: `FUTURE_USE,receive time,serial,TYPE,subtype,...`. Field
/// positions follow the PAN-OS syslog field descriptions of each log type.
pub(crate) fn paloalto(s: &str) -> Option<Out> {
    let cols = csv(s);
    if cols.len() < 10 || !pan_time(&cols[1]) {
        return None;
    }
    let kind = cols[3].as_str();
    let names: &[&str] = match kind {
        "TRAFFIC" | "THREAT" => &[
            "future_use1",
            "receive_time",
            "serial",
            "type",
            "subtype",
            "future_use2",
            "generated_time",
            "src",
            "dst",
            "natsrc",
            "natdst",
            "rule",
            "srcuser",
            "dstuser",
            "app",
            "vsys",
            "from",
            "to",
            "inbound_if",
            "outbound_if",
            "logset",
            "future_use3",
            "sessionid",
            "repeatcnt",
            "sport",
            "dport",
            "natsport",
            "natdport",
            "flags",
            "proto",
            "action",
        ],
        "SYSTEM" => &[
            "future_use1",
            "receive_time",
            "serial",
            "type",
            "subtype",
            "future_use2",
            "generated_time",
            "vsys",
            "eventid",
            "object",
            "future_use3",
            "future_use4",
            "module",
            "severity",
            "opaque",
        ],
        "CONFIG" => &[
            "future_use1",
            "receive_time",
            "serial",
            "type",
            "subtype",
            "future_use2",
            "generated_time",
            "host",
            "vsys",
            "cmd",
            "admin",
            "client",
            "result",
            "configuration_path",
        ],
        "HIPMATCH" | "GLOBALPROTECT" | "USERID" | "AUTH" | "DECRYPTION" | "CORRELATION" => &[
            "future_use1",
            "receive_time",
            "serial",
            "type",
            "subtype",
            "future_use2",
            "generated_time",
        ],
        _ => return None,
    };
    let tail: &[&str] = match kind {
        "TRAFFIC" => &[
            "bytes",
            "bytes_sent",
            "bytes_received",
            "packets",
            "start",
            "elapsed",
            "category",
        ],
        "THREAT" => &["misc", "threatid", "category", "severity", "direction"],
        _ => &[],
    };
    let mut o = Out::with_capacity(cols.len() + 16);
    for (name, v) in names.iter().chain(tail).zip(&cols) {
        if !name.starts_with("future_use") {
            o.str(name, v);
        }
    }
    let col = |i: usize| cols.get(i).map(String::as_str).unwrap_or_default();
    if matches!(kind, "TRAFFIC" | "THREAT") {
        o.ip("source.ip", col(7));
        o.ip("destination.ip", col(8));
        o.port("source.port", col(24));
        o.port("destination.port", col(25));
        if let Some(t) = transport(col(29)) {
            o.str("network.transport", t);
        }
        o.str("event.action", col(30));
        o.str("rule.name", col(11));
        o.str("source.user.name", col(12));
        o.str("user.name", col(12));
        o.str("destination.user.name", col(13));
        o.str("network.application", col(14));
        if kind == "THREAT" {
            o.str("url.original", col(31));
            o.str("threat.name", col(32));
        }
        firewall_names(&mut o);
    } else if kind == "SYSTEM" {
        o.str("event.code", col(8));
        o.str("log.level", col(13));
        o.str("message", col(14));
    } else if kind == "CONFIG" {
        o.str("user.name", col(10));
        o.str("event.action", col(9));
        o.str("event.outcome", &col(12).to_ascii_lowercase());
    }
    o.str("observer.serial_number", col(2));
    o.observer("Palo Alto Networks", "PAN-OS");
    o.timestamp = parse_timestamp(&col(6).replace('/', "-"));
    let service = kind.to_ascii_lowercase();
    let category: &[&str] = if kind == "TRAFFIC" {
        &["firewall"]
    } else {
        &[]
    };
    o.source(Some("paloalto"), &[service.as_str()], category);
    Some(o)
}

/// `2020/02/09 00:00:00` in shape (the samples hold dates like `2020/00/00`).
fn pan_time(s: &str) -> bool {
    let b = s.as_bytes();
    b.len() == 19 && b[4] == b'/' && b[7] == b'/' && b[10] == b' ' && b[13] == b':'
}

/// One CSV record: `,` separated, `"` quoted with `""` for a quote.
fn csv(s: &str) -> Vec<String> {
    let mut out = Vec::with_capacity(64);
    let mut cur = String::new();
    let mut quoted = false;
    let mut chars = s.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '"' if quoted && chars.peek() == Some(&'"') => {
                cur.push('"');
                chars.next();
            }
            '"' => quoted = !quoted,
            ',' if !quoted => out.push(std::mem::take(&mut cur)),
            c => cur.push(c),
        }
    }
    out.push(cur);
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use koban_event::Value;

    #[test]
    fn fortigate_traffic() -> Result<(), &'static str> {
        let e = fortigate(r#"date=2019-05-10 time=11:50:48 logid="0000000013" type="traffic" subtype="forward" level="notice" vd="root" devname="FG-1" devid="FGT60" srcip=10.1.1.2 srcport=51234 dstip=8.8.8.8 dstport=53 proto=17 action="accept" policyid=1 user="bob""#)
            .ok_or("none")?
            .into_event();
        assert_eq!(e.get_str("source.ip").as_deref(), Some("10.1.1.2"));
        assert_eq!(e.get("destination.port"), Some(&Value::Int(53)));
        assert_eq!(e.get_str("network.transport").as_deref(), Some("udp"));
        assert_eq!(e.get_str("action").as_deref(), Some("accept"));
        assert_eq!(e.get("dst_port"), Some(&Value::Int(53)));
        assert_eq!(e.logsource.product.as_deref(), Some("fortigate"));
        assert!(e.logsource.categories.contains(&"firewall".into()));
        assert!(e.timestamp.is_some());
        Ok(())
    }

    #[test]
    fn iptables_line() -> Result<(), &'static str> {
        let e = iptables("[UFW BLOCK] IN=eth0 OUT= MAC=00:11 SRC=203.0.113.5 DST=10.0.0.2 LEN=60 PROTO=TCP SPT=4444 DPT=22 WINDOW=29200 SYN")
            .ok_or("none")?
            .into_event();
        assert_eq!(e.get_str("destination.ip").as_deref(), Some("10.0.0.2"));
        assert_eq!(e.get("destination.port"), Some(&Value::Int(22)));
        assert_eq!(e.get_str("event.action").as_deref(), Some("deny"));
        assert_eq!(e.get_str("rule.name").as_deref(), Some("UFW BLOCK"));
        Ok(())
    }

    #[test]
    fn paloalto_traffic_and_system() -> Result<(), &'static str> {
        let t = "1,2020/06/01 10:00:00,001,TRAFFIC,end,2049,2020/06/01 10:00:00,10.0.0.5,1.2.3.4,0.0.0.0,0.0.0.0,allow-web,corp\\bob,,ssl,vsys1,trust,untrust,eth1,eth2,fwd,2020/06/01 10:00:00,123,1,50000,443,0,0,0x0,tcp,allow,5000,2000,3000,20";
        let e = paloalto(t).ok_or("traffic")?.into_event();
        assert_eq!(e.get_str("source.ip").as_deref(), Some("10.0.0.5"));
        assert_eq!(e.get("destination.port"), Some(&Value::Int(443)));
        assert_eq!(e.get_str("event.action").as_deref(), Some("allow"));
        assert_eq!(e.get_str("user.name").as_deref(), Some("corp\\bob"));
        let s = r#"1,2020/02/09 00:00:00,0001,SYSTEM,general,0,2020/02/09 00:00:00,,general,,0,0,general,high,"a, quoted text",1,0x0"#;
        let e = paloalto(s).ok_or("system")?.into_event();
        assert_eq!(e.get_str("message").as_deref(), Some("a, quoted text"));
        assert_eq!(e.get_str("severity").as_deref(), Some("high"));
        Ok(())
    }
}
