//! One record at a time, the way `koban serve` receives them: a text line from a
//! syslog listener or a JSON document from an HTTP endpoint. The format is found
//! from the content (the hint only helps formats whose records do not say what they
//! are). A record no parser understands still comes back, as `message`, with
//! `parsed: false`; the original text is always kept in `event.original`.

use koban_event::{Event, Value};

use crate::out::Out;
use crate::sources::SourceHint;
use crate::syslog::{self, Header};
use crate::{cef, cisco, firewall, kv, leef, linux, text, web};

/// A record turned into an event, and what it was taken for.
#[derive(Debug, Clone)]
pub struct Parsed {
    pub event: Event,
    /// The format recognised: `cef`, `leef`, `fortigate`, `paloalto`, `cisco_asa`,
    /// `iptables`, `kv`, `sshd`, `sudo`, `su`, `pam`, `syslog`, `auditd`,
    /// `apache_access`, `apache_error`, `nginx_error`, `journald`, `windows`,
    /// `cloudtrail`, `zeek`, `suricata`, `entra_signin`, `m365`, `azure`, `json`,
    /// or `raw` when nothing understood the record.
    pub format: &'static str,
    /// False only for `raw`: the event then holds just `message`.
    pub parsed: bool,
}

impl Parsed {
    pub(crate) fn ok(event: Event, format: &'static str) -> Parsed {
        Parsed {
            event,
            format,
            parsed: true,
        }
    }

    fn raw(message: &str) -> Parsed {
        let mut o = Out::with_capacity(1);
        o.raw("message", message);
        Parsed {
            event: o.into_event(),
            format: "raw",
            parsed: false,
        }
    }
}

/// Parses one text record (a syslog line, an appliance line, or a JSON object that
/// arrived as text). Never fails: unknown text comes back `raw`.
pub fn parse_text(line: &str, hint: &SourceHint) -> Parsed {
    let line = line.trim_end_matches(['\r', '\n', '\0']);
    let body = line.trim_start();
    let mut parsed = if body.starts_with('{') {
        parse_json(body.as_bytes(), hint)
    } else if let Some(columns) = hint.columns.as_deref() {
        let fields = crate::zeek::row(columns, line);
        crate::json::classify(fields, hint)
    } else {
        match text_record(body) {
            Some((o, format)) => Parsed::ok(o.into_event(), format),
            None => Parsed::raw(line),
        }
    };
    parsed.event.original = Some(line.into());
    parsed
}

/// Parses one JSON document (an object; anything else is kept `raw`).
pub fn parse_json(doc: &[u8], hint: &SourceHint) -> Parsed {
    let is_object = doc.iter().find(|b| !b.is_ascii_whitespace()) == Some(&b'{');
    let fields = if is_object {
        crate::flatten::flat_fields(doc).ok()
    } else {
        None
    };
    let mut parsed = match fields {
        Some(fields) if !fields.is_empty() => crate::json::classify(fields, hint),
        _ => Parsed::raw(&String::from_utf8_lossy(doc)),
    };
    parsed.event.original = Some(String::from_utf8_lossy(doc).into());
    parsed
}

/// Parses one JSON value already decoded (an Elasticsearch `_bulk` or HEC body item).
pub fn parse_json_value(value: serde_json::Value, hint: &SourceHint) -> Parsed {
    let original = value.to_string();
    let mut parsed = if value.is_object() {
        let mut fields = Vec::with_capacity(64);
        crate::flatten::flatten_into("", value, &mut fields);
        crate::json::classify(fields, hint)
    } else {
        match value {
            serde_json::Value::String(s) => return parse_text(&s, hint),
            _ => Parsed::raw(&original),
        }
    };
    parsed.event.original = Some(original.into());
    parsed
}

fn text_record(line: &str) -> Option<(Out, &'static str)> {
    if let Some(r) = standalone(line, true) {
        return Some(r);
    }
    let header = syslog::parse(line)?;
    Some(with_header(header))
}

/// Formats that say what they are in their first bytes, bare or as a syslog message.
/// `whole_line` is set before any header was taken off: key=value families must then
/// start at the first byte, so a syslog line is not misread as one.
fn standalone(s: &str, whole_line: bool) -> Option<(Out, &'static str)> {
    let b = s.as_bytes();
    let first = *b.first()?;
    match first {
        b'C' if s.starts_with("CEF:") => return cef::parse(s).map(|o| (o, "cef")),
        b'L' if s.starts_with("LEEF:") => return leef::parse(s).map(|o| (o, "leef")),
        b'%' => {
            let ios = !(s.starts_with("%ASA-")
                || s.starts_with("%FTD-")
                || s.starts_with("%PIX-")
                || s.starts_with("%FWSM-"));
            return cisco::asa(s).map(|o| (o, if ios { "cisco_ios" } else { "cisco_asa" }));
        }
        b't' if s.starts_with("type=") => return Some((text::audit(s), "auditd")),
        b'[' => {
            if let Some(o) = web::apache_error(s) {
                return Some((o, "apache_error"));
            }
        }
        b'0'..=b'9' => {
            if let Some(o) = web::nginx_error(s) {
                return Some((o, "nginx_error"));
            }
            if b.iter().take(4).any(|&c| c == b',') {
                if let Some(o) = firewall::paloalto(s) {
                    return Some((o, "paloalto"));
                }
            }
        }
        _ => {}
    }
    if first != b'[' && s.contains(" [") && s.contains('"') {
        if let Some(o) = web::access_log(s) {
            return Some((o, "apache_access"));
        }
    }
    if !s.contains('=') || (whole_line && kv::leading_pairs(s, 2) < 2 && !s.starts_with("IN=")) {
        return None;
    }
    if let Some(o) = firewall::fortigate(s) {
        return Some((o, "fortigate"));
    }
    if let Some(o) = firewall::iptables(s) {
        return Some((o, "iptables"));
    }
    if kv::leading_pairs(s, 3) >= 3 {
        return kv::generic(s).map(|o| (o, "kv"));
    }
    None
}

/// A syslog line: the message goes to the format parsers, then to the per-program
/// ones; the header's fields are added to whatever they made.
fn with_header(h: Header<'_>) -> (Out, &'static str) {
    let msg = h.msg;
    let program_lower = h.app.to_ascii_lowercase();
    let program = program_lower.split('(').next().unwrap_or_default();
    let (mut o, format) = match standalone(msg, false) {
        Some(r) => r,
        None => {
            let mut o = Out::with_capacity(16);
            let mut format = linux::message(&program_lower, msg, &mut o).unwrap_or("syslog");
            if program == "kernel" {
                // `kernel: [12.3] audit: type=1400 audit(...)`: AppArmor/SELinux via audit.
                if let Some(at) = msg.find("type=") {
                    if msg[at..].contains("audit(") {
                        let mut a = text::audit(&msg[at..]);
                        o.fields.append(&mut a.fields);
                        o.timestamp = a.timestamp;
                        format = "auditd";
                        o.source(Some("linux"), &["auditd"], &[]);
                    }
                }
            }
            let services = linux::services(program);
            o.source(Some("linux"), services, &[]);
            (o, format)
        }
    };
    if let Some(p) = h.pri {
        o.value("facility", Value::Int(i64::from(p / 8)));
        o.value("severity", Value::Int(i64::from(p % 8)));
        o.value("log.syslog.priority", Value::Int(i64::from(p)));
    }
    if let Some(t) = h.time_text {
        o.raw("timestamp", t);
    }
    if let Some(host) = h.host {
        o.raw("host", host);
        o.str("host.name", host);
    }
    if !h.app.is_empty() {
        o.raw("program", h.app);
        o.str("process.name", program);
    }
    if !h.pid.is_empty() {
        o.raw("pid", h.pid);
        o.port("process.pid", h.pid);
    }
    o.str("log.syslog.msgid", h.msgid);
    // Structured data: the RFC 5424 element, or one inside the message of a relayed
    // line (Junos: `junos-flow: 2017-09-23T13:54:54Z host RT_FLOW - ID [junos@2636 k="v"]`).
    let mut sd_text = h.sd;
    if sd_text.is_empty() && format == "syslog" {
        if let Some(at) = msg.find(" [") {
            let tail = &msg[at + 1..];
            if tail.split(' ').next().is_some_and(|id| id.contains('@')) && tail.contains("=\"") {
                sd_text = tail;
            }
        }
    }
    let format = match format {
        "syslog" if program == "checkpoint" && !sd_text.is_empty() => {
            o.observer("Check Point", "Firewall");
            o.logsource = Default::default();
            o.source(Some("checkpoint"), &["firewall"], &["firewall"]);
            "checkpoint"
        }
        "syslog" if program.starts_with("junos") || sd_text.starts_with("[junos@") => {
            o.observer("Juniper", "Junos");
            o.logsource = Default::default();
            o.source(Some("juniper"), &[], &[]);
            "junos"
        }
        f => f,
    };
    if !sd_text.is_empty() {
        let mut sd = Vec::new();
        syslog::sd_params(sd_text, |k, v| sd.push((k.to_owned(), v)));
        let borrowed: Vec<(&str, std::borrow::Cow<'_, str>)> = sd
            .iter()
            .map(|(k, v)| (k.as_str(), std::borrow::Cow::Borrowed(v.as_str())))
            .collect();
        for (k, v) in &sd {
            o.raw(k, v);
        }
        kv::map_common(&borrowed, &mut o);
    }
    // The message text stays searchable even when a format parser took it apart.
    o.raw("message", msg);
    if o.timestamp.is_none() {
        o.timestamp = h.timestamp;
    }
    (o, format)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn text(line: &str) -> Parsed {
        parse_text(line, &SourceHint::default())
    }

    #[test]
    fn unknown_text_is_raw_and_kept() {
        let p = text("just some words");
        assert!(!p.parsed);
        assert_eq!(p.format, "raw");
        assert_eq!(
            p.event.get_str("message").as_deref(),
            Some("just some words")
        );
        assert_eq!(p.event.original.as_deref(), Some("just some words"));
        assert!(!parse_json(b"[1,2]", &SourceHint::default()).parsed);
        assert!(!parse_json(b"{broken", &SourceHint::default()).parsed);
    }

    #[test]
    fn sshd_behind_syslog() {
        let p = text("<38>Dec 10 06:55:46 LabSZ sshd[24200]: Failed password for root from 1.2.3.4 port 22 ssh2");
        assert_eq!(p.format, "sshd");
        assert_eq!(p.event.get_str("user.name").as_deref(), Some("root"));
        assert_eq!(p.event.get_str("host.name").as_deref(), Some("LabSZ"));
        assert_eq!(p.event.get_str("program").as_deref(), Some("sshd"));
        assert!(p.event.logsource.services.contains(&"auth".into()));
    }

    #[test]
    fn formats_behind_syslog() {
        assert_eq!(
            text("<134>Oct 11 22:14:15 fw CEF:0|V|P|1|100|x|5|src=10.0.0.1").format,
            "cef"
        );
        assert_eq!(text("<189>date=2019-05-10 time=11:50:48 devname=FG devid=F1 logid=1 type=traffic srcip=1.1.1.1").format, "fortigate");
        let p = text("Jun  1 10:00:00 gw kernel: [UFW BLOCK] IN=eth0 OUT= SRC=1.2.3.4 DST=10.0.0.1 PROTO=TCP SPT=1 DPT=22");
        assert_eq!(p.format, "iptables");
        assert_eq!(p.event.get_str("host.name").as_deref(), Some("gw"));
        assert_eq!(text("Sep  1 10:25:29 10.10.10.1 %ASA-6-302013: Built inbound TCP connection 1 for outside:1.2.3.4/5 (1.2.3.4/5) to inside:10.0.0.1/80 (10.0.0.1/80)").format, "cisco_asa");
        let p = text(
            r#"1 2019-05-15T16:25:50Z HOST CheckPoint 19710 - [action:"Drop"; src:"10.0.0.1"; dst:"10.0.0.2"] msg"#,
        );
        assert_eq!(p.event.get_str("action").as_deref(), Some("Drop"));
        assert_eq!(p.format, "checkpoint");

        assert_eq!(
            p.event.get_str("destination.ip").as_deref(),
            Some("10.0.0.2")
        );
        let p = text(
            r#"Sep 23 13:54:55 192.168.1.1 junos-flow: 2017-09-23T13:54:54.803Z srx RT_FLOW - RT_FLOW_SESSION_DENY [junos@2636.1.1.1.2.39 source-address="192.168.1.1" source-port="1080" destination-address="192.168.1.2" username="N/A"] session denied"#,
        );
        assert_eq!(p.format, "junos");
        assert_eq!(
            p.event.get_str("destination.ip").as_deref(),
            Some("192.168.1.2")
        );
        assert!(p.event.get("user.name").is_none());
    }

    #[test]
    fn json_text_and_journald() {
        let p = text(
            r#"{"__REALTIME_TIMESTAMP":"1700000000000000","_HOSTNAME":"h","SYSLOG_IDENTIFIER":"sshd","_PID":"7","MESSAGE":"Accepted password for bob from 10.0.0.9 port 2222 ssh2"}"#,
        );
        assert_eq!(p.format, "journald");
        assert_eq!(p.event.get_str("user.name").as_deref(), Some("bob"));
        assert_eq!(p.event.timestamp, Some(1_700_000_000_000));
        assert!(p.event.logsource.services.contains(&"sshd".into()));
    }
}
