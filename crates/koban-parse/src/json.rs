//! JSON records one at a time: which kind each is (Windows, journald, CloudTrail,
//! Zeek, Suricata, Entra ID sign-in, Microsoft 365 audit, a shipper envelope around
//! a text line) and the ECS names added beside the source's own, which stay: Sigma
//! rules for these sources use the native names (`eventName`, `id.orig_h`).

use std::sync::OnceLock;

use koban_event::{parse_timestamp, Event, LogSource, Value};

use crate::out::{is_ip, Out};
use crate::sources::{self, SourceHint};
use crate::windows::{self, WindowsMap};
use crate::Parsed;

fn windows_map() -> Option<&'static WindowsMap> {
    static MAP: OnceLock<Option<WindowsMap>> = OnceLock::new();
    // The embedded map is checked by a unit test; if it ever failed to load, Windows
    // records would still be kept, classified as generic JSON.
    MAP.get_or_init(|| WindowsMap::embedded().ok()).as_ref()
}

fn has(fields: &[(String, Value)], key: &str) -> bool {
    fields.iter().any(|(k, _)| k == key)
}

/// Classifies flattened JSON fields and adds ECS names.
pub(crate) fn classify(fields: Vec<(String, Value)>, hint: &SourceHint) -> Parsed {
    if windows::is_windows(&fields) {
        if let Some(map) = windows_map() {
            // Windows events keep exactly today's fields: rules and the prefilter are
            // tuned to them, and extra names would cost matching time.
            return Parsed::ok(windows::normalise(fields, map), "windows");
        }
    }
    if has(&fields, "__REALTIME_TIMESTAMP") || has(&fields, "_HOSTNAME") && has(&fields, "MESSAGE")
    {
        return journald(fields);
    }
    if let Some(p) = envelope(&fields, hint) {
        return p;
    }
    let m365 =
        has(&fields, "Workload") && has(&fields, "Operation") && has(&fields, "CreationTime");
    let graph_signin = has(&fields, "userPrincipalName") && has(&fields, "createdDateTime");
    let mut e = sources::normalise(fields, hint);
    let format = if m365 {
        m365_audit(&mut e);
        "m365"
    } else if graph_signin {
        entra_signin(&mut e, "userPrincipalName", "ipAddress", "createdDateTime");
        "entra_signin"
    } else {
        match e.logsource.product.as_deref() {
            Some("aws") => {
                cloudtrail(&mut e);
                "cloudtrail"
            }
            Some("zeek") => {
                zeek(&mut e);
                "zeek"
            }
            Some("suricata") => {
                suricata(&mut e);
                "suricata"
            }
            Some("azure") if e.logsource.services.iter().any(|s| &**s == "signinlogs") => {
                entra_signin(
                    &mut e,
                    "properties.userPrincipalName",
                    "callerIpAddress",
                    "time",
                );
                "entra_signin"
            }
            Some("azure") => "azure",
            _ => "json",
        }
    };
    Parsed::ok(e, format)
}

fn copy(e: &mut Event, from: &str, to: &str) {
    if let Some(v) = e.get(from).cloned() {
        if !matches!(v, Value::Null) {
            e.insert(to, v);
        }
    }
}

fn copy_ip(e: &mut Event, from: &str, to: &str) {
    if let Some(s) = e.get_str(from) {
        let (host, _) = crate::web::split_host_port(&s);
        if is_ip(&s) {
            e.insert(to, Value::from(s.as_str()));
        } else if is_ip(host) {
            e.insert(to, Value::from(host));
        }
    }
}

fn set(e: &mut Event, name: &str, value: &str) {
    e.insert(name, Value::from(value));
}

fn lower_copy(e: &mut Event, from: &str, to: &str) {
    if let Some(s) = e.get_str(from) {
        e.insert(to, Value::from(s.to_ascii_lowercase()));
    }
}

/// journald's JSON export (`journalctl -o json`, Fluent Bit, the agent).
fn journald(fields: Vec<(String, Value)>) -> Parsed {
    let text = |k: &str| {
        fields
            .iter()
            .find(|(n, _)| n == k)
            .and_then(|(_, v)| v.to_display())
            .unwrap_or_default()
    };
    let host = text("_HOSTNAME");
    let program = {
        let id = text("SYSLOG_IDENTIFIER");
        if id.is_empty() {
            text("_COMM")
        } else {
            id
        }
    };
    let pid = text("_PID");
    let message = text("MESSAGE");
    let micros = text("__REALTIME_TIMESTAMP").parse::<i64>().ok();
    let mut o = Out::with_capacity(fields.len() + 12);
    o.str("host", &host);
    o.str("host.name", &host);
    o.str("program", &program);
    o.str("process.name", &program);
    o.str("pid", &pid);
    o.port("process.pid", &pid);
    o.str("process.executable", &text("_EXE"));
    o.str("process.command_line", &text("_CMDLINE"));
    o.port("user.id", &text("_UID"));
    o.str("systemd.unit", &text("_SYSTEMD_UNIT"));
    o.raw("message", &message);
    let specific = crate::linux::message(&program.to_lowercase(), &message, &mut o);
    o.fields.extend(fields);
    o.timestamp = micros.map(|us| us / 1000);
    let services = crate::linux::services(&program.to_lowercase());
    o.source(Some("linux"), services, &[]);
    let _ = specific;
    Parsed::ok(o.into_event(), "journald")
}

/// A shipper's envelope around one text line: Filebeat/Elastic Agent (`message` with
/// `agent.*`, `log.file.path`, `input.type`), Splunk HEC (`event` as a string). The
/// line is parsed as text; the envelope's fields are kept beside the line's.
fn envelope(fields: &[(String, Value)], hint: &SourceHint) -> Option<Parsed> {
    let shipper = fields.iter().any(|(k, _)| {
        k.starts_with("agent.") || k == "log.file.path" || k == "input.type" || k == "sourcetype"
    });
    if !shipper {
        return None;
    }
    let line = fields.iter().find_map(|(k, v)| match (k.as_str(), v) {
        ("message" | "event", Value::Str(t)) => Some(t.as_str()),
        _ => None,
    })?;
    // A line with its own structure (JSON inside JSON) is not unwrapped further.
    if line.starts_with('{') {
        return None;
    }
    let inner = crate::ingest::parse_text(line, hint);
    if !inner.parsed {
        return None;
    }
    let Parsed { event, format, .. } = inner;
    let mut merged: Vec<(String, Value)> = event
        .fields()
        .iter()
        .map(|f| (f.name.to_string(), f.value.clone()))
        .collect();
    let stamp = fields.iter().find_map(|(k, v)| match (k.as_str(), v) {
        ("@timestamp", Value::Str(t)) => parse_timestamp(t.as_str()),
        ("time", Value::Float(f)) => Some((f * 1000.0) as i64),
        ("time", Value::Int(i)) => crate::sources::epoch_int_ms(*i),
        _ => None,
    });
    merged.extend(
        fields
            .iter()
            .filter(|(k, _)| k != "message" && k != "event")
            .cloned(),
    );
    let mut e = Event::from_fields(merged);
    e.timestamp = event.timestamp.or(stamp);
    e.logsource = event.logsource.clone();
    Some(Parsed::ok(e, format))
}

fn cloudtrail(e: &mut Event) {
    copy(e, "eventName", "event.action");
    copy(e, "eventSource", "event.provider");
    copy_ip(e, "sourceIPAddress", "source.ip");
    copy(e, "userAgent", "user_agent.original");
    copy(e, "awsRegion", "cloud.region");
    copy(e, "recipientAccountId", "cloud.account.id");
    copy(e, "userIdentity.userName", "user.name");
    copy(e, "userIdentity.arn", "user.name");
    copy(e, "errorCode", "error.code");
    copy(e, "errorMessage", "error.message");
    let outcome = if e.get("errorCode").is_some() {
        "failure"
    } else {
        "success"
    };
    set(e, "event.outcome", outcome);
    set(e, "cloud.provider", "aws");
}

fn zeek(e: &mut Event) {
    copy_ip(e, "id.orig_h", "source.ip");
    copy(e, "id.orig_p", "source.port");
    copy_ip(e, "id.resp_h", "destination.ip");
    copy(e, "id.resp_p", "destination.port");
    lower_copy(e, "proto", "network.transport");
    copy(e, "service", "network.protocol");
    copy(e, "query", "dns.question.name");
    copy(e, "uri", "url.original");
    copy(e, "method", "http.request.method");
    copy(e, "status_code", "http.response.status_code");
    copy(e, "user_agent", "user_agent.original");
    copy(e, "host", "url.domain");
    copy(e, "uid", "zeek.session_id");
    set(e, "observer.product", "Zeek");
}

fn suricata(e: &mut Event) {
    copy_ip(e, "src_ip", "source.ip");
    copy(e, "src_port", "source.port");
    copy_ip(e, "dest_ip", "destination.ip");
    copy(e, "dest_port", "destination.port");
    lower_copy(e, "proto", "network.transport");
    copy(e, "app_proto", "network.protocol");
    copy(e, "alert.signature", "rule.name");
    copy(e, "alert.signature_id", "rule.id");
    copy(e, "alert.category", "rule.category");
    copy(e, "alert.severity", "event.severity");
    copy(e, "alert.action", "event.action");
    copy(e, "http.url", "url.original");
    copy(e, "http.hostname", "url.domain");
    copy(e, "http.http_method", "http.request.method");
    copy(e, "http.status", "http.response.status_code");
    copy(e, "http.http_user_agent", "user_agent.original");
    copy(e, "dns.rrname", "dns.question.name");
    set(e, "observer.vendor", "OISF");
    set(e, "observer.product", "Suricata");
    if let Some(kind) = e.get_str("event_type") {
        let mut ls: LogSource = std::mem::take(&mut e.logsource);
        ls.services.push(kind.to_lowercase().into());
        e.logsource = ls;
    }
}

/// Entra ID (Azure AD) sign-ins: the diagnostic-settings export (`properties.*`,
/// `resultType`) and the Graph API `signIn` resource (`status.errorCode`).
fn entra_signin(e: &mut Event, user: &str, ip: &str, time: &str) {
    copy(e, user, "user.name");
    copy_ip(e, ip, "source.ip");
    copy_ip(e, "properties.ipAddress", "source.ip");
    copy(e, "properties.appDisplayName", "service.name");
    copy(e, "appDisplayName", "service.name");
    copy(e, "properties.userAgent", "user_agent.original");
    let code = e
        .get_str("resultType")
        .or_else(|| e.get_str("status.errorCode"))
        .or_else(|| e.get_str("properties.status.errorCode"));
    if let Some(c) = code {
        set(
            e,
            "event.outcome",
            if c == "0" { "success" } else { "failure" },
        );
    }
    set(e, "event.action", "sign-in");
    set(e, "event.category", "authentication");
    if e.timestamp.is_none() {
        e.timestamp = e.get_str(time).and_then(|t| parse_timestamp(&t));
    }
    e.logsource = LogSource {
        product: Some("azure".into()),
        services: vec!["signinlogs".into()],
        categories: Vec::new(),
    };
}

/// Microsoft 365 Management Activity API records (`Workload`, `Operation`, `UserId`).
fn m365_audit(e: &mut Event) {
    copy(e, "Operation", "event.action");
    copy(e, "Workload", "event.provider");
    copy(e, "UserId", "user.name");
    copy_ip(e, "ClientIP", "source.ip");
    if let Some(r) = e.get_str("ResultStatus") {
        let outcome = match r.to_ascii_lowercase().as_str() {
            "succeeded" | "success" | "true" => "success",
            "failed" | "failure" | "false" => "failure",
            _ => "unknown",
        };
        set(e, "event.outcome", outcome);
    }
    if e.timestamp.is_none() {
        e.timestamp = e.get_str("CreationTime").and_then(|t| parse_timestamp(&t));
    }
    let workload = e.get_str("Workload").unwrap_or_default().to_lowercase();
    let mut services: Vec<Box<str>> = vec!["audit".into()];
    if workload == "exchange" {
        services.push("exchange".into());
    }
    e.logsource = LogSource {
        product: Some("m365".into()),
        services,
        categories: Vec::new(),
    };
}

#[cfg(test)]
mod tests {
    use crate::{parse_json, parse_json_value, SourceHint};

    fn json(v: serde_json::Value) -> crate::Parsed {
        parse_json(v.to_string().as_bytes(), &SourceHint::default())
    }

    #[test]
    fn suricata_and_cloudtrail_get_ecs_beside_native_names() {
        let p = json(
            serde_json::json!({"timestamp":"2019-01-02T03:50:11.315110","event_type":"alert",
            "src_ip":"8.42.77.171","src_port":49678,"dest_ip":"138.68.3.71","dest_port":22,"proto":"TCP",
            "alert":{"action":"allowed","signature_id":2001219,"signature":"ET SCAN Potential SSH Scan","severity":2}}),
        );
        assert_eq!(p.format, "suricata");
        assert_eq!(
            p.event.get_str("rule.name").as_deref(),
            Some("ET SCAN Potential SSH Scan")
        );
        assert_eq!(p.event.get_str("rule.id").as_deref(), Some("2001219"));
        assert_eq!(p.event.get_str("network.transport").as_deref(), Some("tcp"));
        assert_eq!(p.event.get_str("dest_ip").as_deref(), Some("138.68.3.71"));
        let p = json(
            serde_json::json!({"eventSource":"iam.amazonaws.com","eventName":"CreateUser",
            "awsRegion":"us-east-1","eventTime":"2020-01-01T00:00:00Z","sourceIPAddress":"1.2.3.4",
            "errorCode":"AccessDenied","userIdentity":{"userName":"bob"}}),
        );
        assert_eq!(p.format, "cloudtrail");
        assert_eq!(
            p.event.get_str("event.action").as_deref(),
            Some("CreateUser")
        );
        assert_eq!(p.event.get_str("event.outcome").as_deref(), Some("failure"));
        assert_eq!(p.event.get_str("source.ip").as_deref(), Some("1.2.3.4"));
        assert_eq!(p.event.get_str("user.name").as_deref(), Some("bob"));
    }

    #[test]
    fn entra_and_m365() {
        let p = json(
            serde_json::json!({"time":"2024-01-01T10:00:00Z","operationName":"Sign-in activity",
            "category":"SignInLogs","resultType":"50126","callerIpAddress":"203.0.113.9",
            "properties":{"userPrincipalName":"a@example.com","appDisplayName":"Azure Portal"}}),
        );
        assert_eq!(p.format, "entra_signin");
        assert_eq!(p.event.logsource.services, vec!["signinlogs".into()]);
        assert_eq!(p.event.get_str("event.outcome").as_deref(), Some("failure"));
        assert_eq!(
            p.event.get_str("user.name").as_deref(),
            Some("a@example.com")
        );
        let p = json(
            serde_json::json!({"id":"1","createdDateTime":"2024-01-01T10:00:00Z",
            "userPrincipalName":"b@example.com","ipAddress":"198.51.100.4","status":{"errorCode":0}}),
        );
        assert_eq!(p.format, "entra_signin");
        assert_eq!(p.event.get_str("event.outcome").as_deref(), Some("success"));
        assert!(p.event.timestamp.is_some());
        let p = json(
            serde_json::json!({"CreationTime":"2024-01-01T10:00:00","Id":"x","Operation":"MailItemsAccessed",
            "Workload":"Exchange","UserId":"c@example.com","ClientIP":"[2001:db8::1]:443","ResultStatus":"Succeeded"}),
        );
        assert_eq!(p.format, "m365");
        assert_eq!(p.event.logsource.product.as_deref(), Some("m365"));
        assert_eq!(p.event.get_str("source.ip").as_deref(), Some("2001:db8::1"));
        assert_eq!(p.event.get_str("event.outcome").as_deref(), Some("success"));
    }

    #[test]
    fn windows_events_keep_exactly_their_fields() -> Result<(), crate::MapError> {
        let doc = serde_json::json!({"winlog":{"channel":"Microsoft-Windows-Sysmon/Operational","event_id":1,
            "provider_name":"Microsoft-Windows-Sysmon","computer_name":"ws1",
            "event_data":{"Image":"C:\\Windows\\cmd.exe","CommandLine":"cmd /c whoami"}},
            "@timestamp":"2024-01-01T00:00:00Z","agent":{"type":"winlogbeat"},"message":"Process Create"});
        let p = parse_json_value(doc.clone(), &SourceHint::default());
        assert_eq!(p.format, "windows");
        let reader = crate::Reader::new()?;
        let direct = reader.normalise_json(doc, &SourceHint::default());
        let names = |e: &koban_event::Event| -> Vec<String> {
            e.fields().iter().map(|f| f.name.to_string()).collect()
        };
        assert_eq!(Some(names(&p.event)), direct.as_ref().map(names));
        assert_eq!(
            p.event.get_str("Image").as_deref(),
            Some("C:\\Windows\\cmd.exe")
        );
        Ok(())
    }

    #[test]
    fn shipper_envelope_is_unwrapped() {
        let p = json(
            serde_json::json!({"@timestamp":"2024-01-01T00:00:00Z","agent":{"type":"filebeat"},
            "log":{"file":{"path":"/var/log/auth.log"}},
            "message":"Jan  1 00:00:00 h1 sshd[5]: Invalid user eve from 192.0.2.1 port 4000"}),
        );
        assert_eq!(p.format, "sshd");
        assert_eq!(p.event.get_str("user.name").as_deref(), Some("eve"));
        assert_eq!(
            p.event.get_str("log.file.path").as_deref(),
            Some("/var/log/auth.log")
        );
        assert!(p.event.logsource.services.contains(&"sshd".into()));
        assert!(p.event.timestamp.is_some());
    }
}
