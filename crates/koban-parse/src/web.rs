//! Web server logs: Apache/nginx access lines (common and combined) and their error
//! logs. Access lines keep the W3C names Sigma's `webserver` rules use (`c-uri`,
//! `cs-method`, `sc-status`, ...) and get the ECS names beside them.

use koban_event::{parse_timestamp, Value};

use crate::out::Out;

/// Common/combined access log: `ip ident user [time] "request" status size "ref" "ua"`.
pub(crate) fn access_log(line: &str) -> Option<Out> {
    let line = line.trim_matches('"');
    let (client, rest) = line.split_once(' ')?;
    if !crate::out::is_ip(client) && !client.contains('.') {
        return None;
    }
    let open = rest.find('[')?;
    let close = rest[open..].find(']')? + open;
    let mut ids = rest[..open].split_whitespace();
    let _ident = ids.next();
    let user = ids.next().unwrap_or("-");
    let time_text = &rest[open + 1..close];
    let after = rest[close + 1..].trim_start().strip_prefix('"')?;
    let req_end = after.find('"')?;
    let request = &after[..req_end];
    let tail_text = &after[req_end + 1..];
    let mut tail = tail_text.split_whitespace();
    let status = tail.next()?;
    if !status.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let size = tail.next().unwrap_or("-");
    let mut quoted = tail_text.split('"').skip(1).step_by(2);
    let referer = quoted.next();
    let agent = quoted.next();
    let mut parts = request.splitn(3, ' ');
    let method = parts.next().unwrap_or_default();
    let target = parts.next().unwrap_or_default();
    let version = parts.next().unwrap_or_default();
    let (path, query) = target.split_once('?').unwrap_or((target, ""));
    let mut o = Out::with_capacity(24);
    o.raw("c-ip", client);
    o.raw("cs-method", method);
    o.raw("c-uri", target);
    o.raw("cs-uri-stem", path);
    o.raw("cs-uri-query", query);
    o.raw("cs-version", version);
    o.num("sc-status", status);
    o.value(
        "sc-bytes",
        size.parse::<i64>()
            .map(Value::Int)
            .unwrap_or(Value::from(size)),
    );
    if !o.ip("source.ip", client) {
        o.str("source.address", client);
    }
    o.str("user.name", user);
    o.str("http.request.method", method);
    o.str("url.original", target);
    o.str("url.path", path);
    o.str("url.query", query);
    o.str(
        "http.version",
        version.strip_prefix("HTTP/").unwrap_or(version),
    );
    o.port("http.response.status_code", status);
    o.port("http.response.body.bytes", size);
    if let Some(r) = referer {
        o.raw("cs-referer", r);
        o.str("http.request.referrer", r);
    }
    if let Some(ua) = agent {
        o.raw("cs-user-agent", ua);
        o.str("user_agent.original", ua);
    }
    o.timestamp = clf_time(time_text);
    o.source(None, &[], &["webserver"]);
    Some(o)
}

/// `22/Dec/2016:22:32:31 +0300`
fn clf_time(s: &str) -> Option<i64> {
    let (date, zone) = s.split_once(' ').unwrap_or((s, "+0000"));
    let mut p = date.splitn(4, [':', '/']);
    let (day, mon, year, time) = (p.next()?, p.next()?, p.next()?, p.next()?);
    let month = month_number(mon)?;
    let zone = if zone.len() == 5 && zone.is_ascii() {
        format!("{}:{}", &zone[..3], &zone[3..])
    } else {
        "Z".into()
    };
    parse_timestamp(&format!("{year}-{month:02}-{day:0>2}T{time}{zone}"))
}

pub(crate) fn month_number(m: &str) -> Option<u32> {
    const MONTHS: [&[u8; 3]; 12] = [
        b"jan", b"feb", b"mar", b"apr", b"may", b"jun", b"jul", b"aug", b"sep", b"oct", b"nov",
        b"dec",
    ];
    let m = m.as_bytes().get(..3)?;
    let lower = [
        m[0].to_ascii_lowercase(),
        m[1].to_ascii_lowercase(),
        m[2].to_ascii_lowercase(),
    ];
    MONTHS
        .iter()
        .position(|x| **x == lower)
        .map(|i| i as u32 + 1)
}

const LEVELS: [&str; 9] = [
    "emerg", "alert", "crit", "error", "warn", "notice", "info", "debug", "trace",
];

/// Apache 2.2/2.4 error log: `[Tue Sep 30 11:30:13.262255 2014] [core:error] [pid 20101]
/// [client 99.47.227.95:34567] AH00037: message`; the leading time may be missing
/// (some shippers strip it).
pub(crate) fn apache_error(line: &str) -> Option<Out> {
    let mut rest = line;
    let mut o = Out::with_capacity(10);
    let mut level_seen = false;
    while let Some(r) = rest.strip_prefix('[') {
        let end = r.find(']')?;
        let item = &r[..end];
        rest = r[end + 1..].trim_start();
        if let Some(pid) = item.strip_prefix("pid ") {
            let pid = pid.split(':').next().unwrap_or_default();
            o.port("process.pid", pid);
        } else if let Some(client) = item.strip_prefix("client ") {
            let (ip, port) = split_host_port(client);
            o.ip("source.ip", ip);
            o.port("source.port", port);
        } else if !level_seen && is_level(item.rsplit(':').next().unwrap_or_default()) {
            level_seen = true;
            let (module, level) = item.rsplit_once(':').unwrap_or(("", item));
            o.str("log.level", level);
            o.str("apache.module", module);
        } else if o.timestamp.is_none() && !level_seen {
            o.timestamp = apache_time(item);
            o.timestamp?;
        } else {
            // `[hostname "x"] [uri "/y"]` trailers (mod_security) stay in the message.
            rest = &line[line.len() - r.len() - 1..];
            break;
        }
    }
    if !level_seen {
        return None;
    }
    if let Some((code, _)) = rest.split_once(": ") {
        if code.starts_with("AH") && code.len() == 7 {
            o.str("error.code", code);
        }
    }
    o.raw("message", rest);
    o.source(None, &["apache"], &[]);
    Some(o)
}

fn is_level(s: &str) -> bool {
    LEVELS.contains(&s) || s.starts_with("trace")
}

/// `Tue Sep 30 11:30:13.262255 2014` (year last).
fn apache_time(s: &str) -> Option<i64> {
    let mut p = s.split_whitespace();
    let (_dow, mon, day, time, year) = (p.next()?, p.next()?, p.next()?, p.next()?, p.next()?);
    let month = month_number(mon)?;
    parse_timestamp(&format!("{year}-{month:02}-{day:0>2}T{time}Z"))
}

/// nginx error log: `2015/01/08 11:31:23 [error] 80#2: *1 message, client: 1.2.3.4, ...`.
pub(crate) fn nginx_error(line: &str) -> Option<Out> {
    let b = line.as_bytes();
    if b.len() < 22 || b[4] != b'/' || b[7] != b'/' || b[10] != b' ' || b[19] != b' ' {
        return None;
    }
    let rest = line[20..].strip_prefix('[')?;
    let (level, msg) = rest.split_once(']')?;
    let mut o = Out::with_capacity(8);
    o.timestamp = parse_timestamp(&format!(
        "{}-{}-{}T{}Z",
        &line[..4],
        &line[5..7],
        &line[8..10],
        &line[11..19]
    ));
    o.str("log.level", level);
    let msg = msg.trim_start();
    let (pid, msg) = match msg.split_once(": ") {
        Some((p, m))
            if p.bytes()
                .all(|c| c.is_ascii_digit() || c == b'#' || c == b':') =>
        {
            (p.split(['#', ':']).next().unwrap_or_default(), m)
        }
        _ => ("", msg),
    };
    o.port("process.pid", pid);
    if let Some(at) = msg.find(", client: ") {
        let ip = msg[at + 10..].split(',').next().unwrap_or_default();
        o.ip("source.ip", ip);
    }
    o.raw("message", msg);
    o.source(None, &["nginx"], &[]);
    Some(o)
}

/// `1.2.3.4:80`, `[::1]:80`, `::1` → (host, port).
pub(crate) fn split_host_port(s: &str) -> (&str, &str) {
    if let Some(r) = s.strip_prefix('[') {
        if let Some((h, p)) = r.split_once("]:") {
            return (h, p);
        }
    }
    match s.rsplit_once(':') {
        Some((h, p)) if !h.contains(':') => (h, p),
        _ => (s, ""),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn combined_access_line() -> Result<(), &'static str> {
        let e = access_log(r#"192.168.4.163 - bob [22/Dec/2016:22:32:31 +0300] "GET /a.php?id=1 HTTP/1.1" 200 3279 "-" "w3af.org""#)
            .ok_or("none")?
            .into_event();
        assert_eq!(e.get_str("cs-uri-query").as_deref(), Some("id=1"));
        assert_eq!(
            e.get_str("user_agent.original").as_deref(),
            Some("w3af.org")
        );
        assert_eq!(e.get("http.response.status_code"), Some(&Value::Int(200)));
        assert_eq!(e.get_str("user.name").as_deref(), Some("bob"));
        assert!(e.timestamp.is_some());
        assert!(access_log("10.0.0.1 - - [x] \"GET /\" abc").is_none());
        Ok(())
    }

    #[test]
    fn apache_error_lines() -> Result<(), &'static str> {
        let e = apache_error("[Tue Sep 30 11:30:13.262255 2014] [core:error] [pid 20101] [client 99.47.227.95:34567] AH00037: Symbolic link not allowed")
            .ok_or("24")?
            .into_event();
        assert_eq!(e.get_str("source.ip").as_deref(), Some("99.47.227.95"));
        assert_eq!(e.get("source.port"), Some(&Value::Int(34567)));
        assert_eq!(e.get_str("error.code").as_deref(), Some("AH00037"));
        assert!(e.timestamp.is_some());
        let e = apache_error("[error] [client 66.31.142.16] File does not exist: /x")
            .ok_or("bare")?
            .into_event();
        assert_eq!(e.get_str("log.level").as_deref(), Some("error"));
        assert!(apache_error("[10.30 16:49:06] chrome.exe - proxy").is_none());
        Ok(())
    }

    #[test]
    fn nginx_error_line() -> Result<(), &'static str> {
        let e = nginx_error(
            "2015/01/08 11:31:23 [error] 80#2: *5 open() failed, client: 10.1.2.3, server: x",
        )
        .ok_or("none")?
        .into_event();
        assert_eq!(e.get_str("source.ip").as_deref(), Some("10.1.2.3"));
        assert_eq!(e.get("process.pid"), Some(&Value::Int(80)));
        Ok(())
    }
}
