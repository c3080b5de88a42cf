//! Plain-text log lines for the file reader, and the Linux audit record parser.
//! `parse_line` is [`crate::parse_text`] without a hint: every text format the
//! ingest path knows is recognised here too.

use koban_event::{Event, Value};

use crate::out::Out;

/// Parses one line (without its newline) into an event.
pub fn parse_line(line: &str) -> Event {
    crate::ingest::parse_text(line, &crate::SourceHint::default()).event
}

/// `type=EXECVE msg=audit(1675255174.901:30777): argc=2 a0="ls" a1="-la"`
pub(crate) fn audit(line: &str) -> Out {
    let mut o = Out::with_capacity(24);
    for (k, v) in key_values(line) {
        if k == "msg" {
            if let Some(inner) = v.strip_prefix("audit(").and_then(|s| s.split(')').next()) {
                let (time, serial) = inner.split_once(':').unwrap_or((inner, ""));
                o.timestamp = time.parse::<f64>().ok().map(|t| (t * 1000.0) as i64);
                o.fields.push(("serial".to_owned(), Value::from(serial)));
            }
        }
        o.fields.push((k, Value::from(v)));
    }
    o.source(Some("linux"), &["auditd"], &[]);
    o
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
