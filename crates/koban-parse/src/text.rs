//! Plain-text log lines: syslog (RFC 3164 and RFC 5424), Linux audit records,
//! Apache/nginx access logs. Anything else becomes an event with just `message`, which
//! keyword rules can still search.

use koban_event::{parse_timestamp, Event, LogSource, Value};

/// Parses one line (without its newline) into an event.
pub fn parse_line(line: &str) -> Event {
    let line = line.trim_end_matches(['\r', '\n']);
    let mut event = if line.starts_with("type=") {
        audit(line)
    } else if let Some(e) = access_log(line.trim_matches('"')) {
        e
    } else if let Some(e) = syslog(line) {
        e
    } else {
        Event::from_fields(vec![("message".into(), Value::from(line))])
    };
    event.original = Some(line.into());
    event
}

/// `type=EXECVE msg=audit(1675255174.901:30777): argc=2 a0="ls" a1="-la"`
fn audit(line: &str) -> Event {
    let mut fields = Vec::new();
    let mut timestamp = None;
    for (k, v) in key_values(line) {
        if k == "msg" {
            if let Some(inner) = v.strip_prefix("audit(").and_then(|s| s.split(')').next()) {
                let (time, serial) = inner.split_once(':').unwrap_or((inner, ""));
                timestamp = time.parse::<f64>().ok().map(|t| (t * 1000.0) as i64);
                fields.push(("serial".to_owned(), Value::from(serial)));
            }
        }
        fields.push((k, Value::from(v)));
    }
    let mut e = Event::from_fields(fields);
    e.timestamp = timestamp;
    e.logsource = LogSource {
        product: Some("linux".into()),
        services: vec!["auditd".into()],
        categories: Vec::new(),
    };
    e
}

/// `key=value` pairs; values may be double-quoted.
fn key_values(s: &str) -> Vec<(String, String)> {
    let mut out = Vec::new();
    let mut rest = s.trim();
    while !rest.is_empty() {
        let Some(eq) = rest.find('=') else { break };
        let key = rest[..eq].trim().trim_end_matches(':').to_owned();
        let after = &rest[eq + 1..];
        let (value, next) = if let Some(q) = after.strip_prefix('"') {
            match q.find('"') {
                Some(end) => (q[..end].to_owned(), &q[end + 1..]),
                None => (q.to_owned(), ""),
            }
        } else {
            match after.find(' ') {
                Some(end) => (after[..end].to_owned(), &after[end..]),
                None => (after.to_owned(), ""),
            }
        };
        // Keys never contain spaces; text before the last space is noise.
        let key = key.rsplit(' ').next().unwrap_or_default().to_owned();
        if !key.is_empty() {
            out.push((key, value.trim_end_matches(':').to_owned()));
        }
        rest = next.trim_start();
    }
    out
}

/// Common/combined access log: `ip ident user [time] "request" status size "ref" "ua"`.
fn access_log(line: &str) -> Option<Event> {
    let (client, rest) = line.split_once(' ')?;
    if client.parse::<std::net::IpAddr>().is_err() && !client.contains('.') {
        return None;
    }
    let open = rest.find('[')?;
    let close = rest[open..].find(']')? + open;
    let time_text = &rest[open + 1..close];
    let after = rest[close + 1..].trim_start().strip_prefix('"')?;
    let req_end = after.find('"')?;
    let request = &after[..req_end];
    let mut tail = after[req_end + 1..].split_whitespace();
    let status = tail.next()?;
    let size = tail.next().unwrap_or("-");
    let quoted: Vec<&str> = after[req_end + 1..].split('"').skip(1).step_by(2).collect();
    let mut parts = request.splitn(3, ' ');
    let method = parts.next().unwrap_or_default();
    let target = parts.next().unwrap_or_default();
    let version = parts.next().unwrap_or_default();
    let (path, query) = target.split_once('?').unwrap_or((target, ""));
    let mut fields = vec![
        ("c-ip".to_owned(), Value::from(client)),
        ("cs-method".to_owned(), Value::from(method)),
        ("c-uri".to_owned(), Value::from(target)),
        ("cs-uri-stem".to_owned(), Value::from(path)),
        ("cs-uri-query".to_owned(), Value::from(query)),
        ("cs-version".to_owned(), Value::from(version)),
        (
            "sc-status".to_owned(),
            status
                .parse::<i64>()
                .map(Value::Int)
                .unwrap_or(Value::from(status)),
        ),
        (
            "sc-bytes".to_owned(),
            size.parse::<i64>()
                .map(Value::Int)
                .unwrap_or(Value::from(size)),
        ),
    ];
    if let Some(r) = quoted.first() {
        fields.push(("cs-referer".to_owned(), Value::from(*r)));
    }
    if let Some(ua) = quoted.get(1) {
        fields.push(("cs-user-agent".to_owned(), Value::from(*ua)));
    }
    let mut e = Event::from_fields(fields);
    e.timestamp = clf_time(time_text);
    e.logsource = LogSource {
        product: None,
        services: Vec::new(),
        categories: vec!["webserver".into()],
    };
    Some(e)
}

/// `22/Dec/2016:22:32:31 +0300`
fn clf_time(s: &str) -> Option<i64> {
    let (date, zone) = s.split_once(' ').unwrap_or((s, "+0000"));
    let mut p = date.splitn(4, [':', '/']);
    let (day, mon, year, time) = (p.next()?, p.next()?, p.next()?, p.next()?);
    let month = month_number(mon)?;
    let zone = if zone.len() == 5 {
        format!("{}:{}", &zone[..3], &zone[3..])
    } else {
        "Z".into()
    };
    parse_timestamp(&format!("{year}-{month:02}-{day:0>2}T{time}{zone}"))
}

fn month_number(m: &str) -> Option<u32> {
    const MONTHS: [&str; 12] = [
        "jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec",
    ];
    let m = m.get(..3)?.to_ascii_lowercase();
    MONTHS.iter().position(|x| *x == m).map(|i| i as u32 + 1)
}

/// RFC 5424 (`<34>1 2003-10-11T22:14:15.003Z host app procid msgid - msg`) or
/// RFC 3164 (`<34>Oct 11 22:14:15 host app[pid]: msg`, priority optional).
fn syslog(line: &str) -> Option<Event> {
    let (pri, rest) = match line.strip_prefix('<') {
        Some(r) => {
            let end = r.find('>')?;
            (r[..end].parse::<u32>().ok(), &r[end + 1..])
        }
        None => (None, line),
    };
    let mut fields: Vec<(String, Value)> = Vec::new();
    if let Some(p) = pri {
        fields.push(("facility".into(), Value::Int(i64::from(p / 8))));
        fields.push(("severity".into(), Value::Int(i64::from(p % 8))));
    }
    let timestamp;
    let (host, app, pid, msg);
    if let Some(r) = rest.strip_prefix("1 ") {
        let mut parts = r.splitn(6, ' ');
        let ts = parts.next()?;
        timestamp = parse_timestamp(ts);
        host = parts.next()?.to_owned();
        app = parts.next().unwrap_or("-").to_owned();
        pid = parts.next().unwrap_or("-").to_owned();
        let _msgid = parts.next();
        let tail = parts.next().unwrap_or_default();
        msg = skip_structured_data(tail).to_owned();
    } else {
        // `Mmm dd hh:mm:ss host tag: msg`
        month_number(rest.get(..3)?)?;
        let ts_len = 15;
        let ts = rest.get(..ts_len)?;
        if ts.as_bytes().get(6) != Some(&b' ') || ts.as_bytes().get(9) != Some(&b':') {
            return None;
        }
        // No year in RFC 3164: the event keeps its text time but no absolute one.
        timestamp = None;
        fields.push(("timestamp".into(), Value::from(ts)));
        let r = rest[ts_len..].trim_start();
        let (h, r) = r.split_once(' ')?;
        host = h.to_owned();
        let (tag, m) = r.split_once(": ").unwrap_or(("", r));
        msg = m.to_owned();
        let (a, p) = match tag.find('[') {
            Some(i) => (&tag[..i], tag[i + 1..].trim_end_matches(']')),
            None => (tag, ""),
        };
        app = a.to_owned();
        pid = p.to_owned();
    }
    let program = app.split('(').next().unwrap_or_default().to_lowercase();
    let mut services: Vec<Box<str>> = Vec::new();
    match program.as_str() {
        "sshd" => services.extend(["sshd".into(), "auth".into()]),
        "sudo" => services.extend(["sudo".into(), "auth".into()]),
        "su" | "login" | "passwd" | "useradd" | "groupadd" | "usermod" | "systemd-logind" => {
            services.push("auth".into())
        }
        "cron" | "crond" => services.push("cron".into()),
        "vsftpd" => services.push("vsftpd".into()),
        "clamd" | "freshclam" => services.push("clamav".into()),
        _ => {}
    }
    services.push("syslog".into());
    fields.push(("host".into(), Value::from(host)));
    fields.push(("program".into(), Value::from(app)));
    if !pid.is_empty() && pid != "-" {
        fields.push(("pid".into(), Value::from(pid)));
    }
    fields.push(("message".into(), Value::from(msg)));
    let mut e = Event::from_fields(fields);
    e.timestamp = timestamp;
    e.logsource = LogSource {
        product: Some("linux".into()),
        services,
        categories: Vec::new(),
    };
    Some(e)
}

fn skip_structured_data(s: &str) -> &str {
    if let Some(rest) = s.strip_prefix("- ") {
        return rest;
    }
    if s == "-" {
        return "";
    }
    if s.starts_with('[') {
        // Structured data elements end at the first `] ` outside quotes.
        let mut in_quotes = false;
        let mut prev = ' ';
        for (i, c) in s.char_indices() {
            match c {
                '"' if prev != '\\' => in_quotes = !in_quotes,
                ']' if !in_quotes && !s[i + 1..].starts_with('[') => {
                    return s[i + 1..].trim_start()
                }
                _ => {}
            }
            prev = c;
        }
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc3164_sshd() {
        let e = parse_line(
            "Dec 10 06:55:46 LabSZ sshd[24200]: Invalid user webmaster from 173.234.31.186",
        );
        assert_eq!(e.get_str("program").as_deref(), Some("sshd"));
        assert_eq!(e.get_str("pid").as_deref(), Some("24200"));
        assert_eq!(
            e.get_str("message").as_deref(),
            Some("Invalid user webmaster from 173.234.31.186")
        );
        assert!(e.logsource.services.contains(&"sshd".into()));
    }

    #[test]
    fn rfc5424_with_structured_data() {
        let e = parse_line(
            r#"<165>1 2003-10-11T22:14:15.003Z mymachine evntslog - ID47 [exampleSDID@32473 iut="3"] An application event"#,
        );
        assert_eq!(e.get_str("host").as_deref(), Some("mymachine"));
        assert_eq!(
            e.get_str("message").as_deref(),
            Some("An application event")
        );
        assert_eq!(e.get("facility"), Some(&Value::Int(20)));
        assert!(e.timestamp.is_some());
    }

    #[test]
    fn access_log_line() {
        let e = parse_line(
            r#""192.168.4.163 - - [22/Dec/2016:22:32:31 +0300] "GET /a.php?id=1 HTTP/1.1" 200 3279 "-" "w3af.org"""#,
        );
        assert_eq!(e.get_str("cs-uri-query").as_deref(), Some("id=1"));
        assert_eq!(e.get_str("cs-user-agent").as_deref(), Some("w3af.org"));
        assert_eq!(e.get("sc-status"), Some(&Value::Int(200)));
        assert!(e.timestamp.is_some());
    }

    #[test]
    fn audit_record() {
        let e =
            parse_line(r#"type=EXECVE msg=audit(1675255174.901:30777): argc=2 a0="ls" a1="-la""#);
        assert_eq!(e.get_str("type").as_deref(), Some("EXECVE"));
        assert_eq!(e.get_str("a1").as_deref(), Some("-la"));
        assert_eq!(e.timestamp, Some(1_675_255_174_901));
    }

    #[test]
    fn anything_else_is_a_message() {
        let e = parse_line("just some text");
        assert_eq!(e.get_str("message").as_deref(), Some("just some text"));
        assert!(e.logsource.product.is_none());
    }
}
