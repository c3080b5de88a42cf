//! Syslog headers: RFC 5424 (`<34>1 2003-10-11T22:14:15.003Z host app procid msgid
//! [sd] msg`), RFC 3164 (`<34>Oct 11 22:14:15 host app[pid]: msg`, priority optional)
//! and the variants devices really send: an RFC 3339 or `YYYY-MM-DD hh:mm:ss` stamp in
//! place of the BSD one (rsyslog, macOS), a year before the BSD stamp, a bare
//! `<pri>` before the message (FortiGate, CEF senders). The header only splits the
//! line; the message goes on to the per-format parsers.

use koban_event::parse_timestamp;

fn dash(s: &str) -> &str {
    if s == "-" {
        ""
    } else {
        s
    }
}

#[derive(Debug, Default)]
pub(crate) struct Header<'a> {
    pub pri: Option<u32>,
    pub timestamp: Option<i64>,
    /// The BSD stamp as written when it has no year (no absolute time can be made).
    pub time_text: Option<&'a str>,
    pub host: Option<&'a str>,
    /// The tag's program part (`sshd` of `sshd[42]:`), possibly empty.
    pub app: &'a str,
    pub pid: &'a str,
    pub msgid: &'a str,
    /// RFC 5424 structured data, brackets included (empty for none).
    pub sd: &'a str,
    pub msg: &'a str,
}

/// Splits a syslog line. `None` when the line has no recognisable syslog header.
pub(crate) fn parse(line: &str) -> Option<Header<'_>> {
    let line = line.trim_start();
    let (pri, rest) = match line.strip_prefix('<') {
        Some(r) => {
            let end = r.as_bytes().iter().take(4).position(|&b| b == b'>')?;
            let p = r[..end].parse::<u32>().ok().filter(|p| *p < 192)?;
            (Some(p), &r[end + 1..])
        }
        None => (None, line),
    };
    let b = rest.as_bytes();
    if b.len() > 2 && b[0] == b'1' && b[1] == b' ' && b[2].is_ascii_digit() {
        return rfc5424(pri, &rest[2..]);
    }
    if let Some(mut h) = bsd(rest).or_else(|| iso(rest)) {
        h.pri = pri;
        return Some(h);
    }
    // `<13>date=... devname=...`: a priority and nothing else of a header.
    pri.map(|p| Header {
        pri: Some(p),
        msg: rest,
        ..Header::default()
    })
}

fn rfc5424(pri: Option<u32>, r: &str) -> Option<Header<'_>> {
    let mut parts = r.splitn(6, ' ');
    let ts = parts.next()?;
    let host = parts.next()?;
    let app = dash(parts.next().unwrap_or("-"));
    let pid = dash(parts.next().unwrap_or("-"));
    let msgid = dash(parts.next().unwrap_or("-"));
    let tail = parts.next().unwrap_or_default();
    let (sd, msg) = split_structured_data(tail);
    Some(Header {
        pri,
        timestamp: parse_timestamp(ts),
        time_text: None,
        host: Some(host).filter(|h| *h != "-"),
        app,
        pid,
        msgid,
        sd,
        msg: msg.strip_prefix('\u{feff}').unwrap_or(msg),
    })
}

/// `Mmm dd hh:mm:ss`, optionally preceded by `YYYY `, then host and tag.
fn bsd(rest: &str) -> Option<Header<'_>> {
    let (year, r) = match rest.as_bytes() {
        [a, b, c, d, b' ', ..] if [a, b, c, d].iter().all(|x| x.is_ascii_digit()) => {
            (Some(&rest[..4]), &rest[5..])
        }
        _ => (None, rest),
    };
    let ts = r.get(..15)?;
    let tb = ts.as_bytes();
    if tb[3] != b' ' || tb[6] != b' ' || tb[9] != b':' || tb[12] != b':' {
        return None;
    }
    let month = crate::web::month_number(&ts[..3])?;
    let mut after = r[15..].trim_start();
    // Some senders repeat the year after the time (`Oct 11 22:14:15 2024 host`).
    let mut year = year;
    if after.len() > 5
        && after.as_bytes()[..4].iter().all(u8::is_ascii_digit)
        && after.as_bytes()[4] == b' '
    {
        year = Some(&after[..4]);
        after = &after[5..];
    }
    let timestamp = year.and_then(|y| {
        let day = ts[4..6].trim_start();
        parse_timestamp(&format!("{y}-{month:02}-{day:0>2}T{}Z", &ts[7..15]))
    });
    let mut h = host_and_tag(after, false)?;
    h.timestamp = timestamp;
    h.time_text = timestamp.is_none().then_some(ts);
    Some(h)
}

/// `2014-05-23T10:25:58.681222-04:00 host tag: msg` or `2020-03-23 06:47:42.8-0700  host tag:`.
fn iso(rest: &str) -> Option<Header<'_>> {
    let b = rest.as_bytes();
    if b.len() < 20 || b[4] != b'-' || b[7] != b'-' || !b[0].is_ascii_digit() {
        return None;
    }
    let end = if b[10] == b' ' {
        // The date and time are two words; the stamp ends at the next space after them.
        rest[11..].find(' ').map(|i| i + 11)?
    } else {
        rest.find(' ')?
    };
    let timestamp = parse_timestamp(&rest[..end]);
    timestamp?;
    // With a space inside the stamp this is as likely an application log
    // (`2017-01-23 03:44:14 text`): only a real tag makes it syslog.
    let mut h = host_and_tag(rest[end..].trim_start(), b[10] == b' ')?;
    h.timestamp = timestamp;
    Some(h)
}

/// `host tag[pid]: msg`, `host msg` or `tag: msg` (no host).
fn host_and_tag(s: &str, need_tag: bool) -> Option<Header<'_>> {
    let (first, rest) = s.split_once(' ').unwrap_or((s, ""));
    if first.is_empty() {
        return None;
    }
    if let Some((app, pid)) = tag(first) {
        // `Jun 23 15:04:05 Info: imap-login: ...`: the first word is the tag.
        if first.ends_with(':') {
            return Some(Header {
                app,
                pid,
                msg: rest.trim_start(),
                ..Header::default()
            });
        }
    }
    let (second, msg) = rest.split_once(' ').unwrap_or((rest, ""));
    match tag(second) {
        Some((app, pid)) => Some(Header {
            host: Some(first),
            app,
            pid,
            msg: msg.trim_start(),
            ..Header::default()
        }),
        None if need_tag => None,
        None => Some(Header {
            host: Some(first),
            msg: rest.trim_start(),
            ..Header::default()
        }),
    }
}

/// `sshd[42]:`, `sshd:`, `postfix/smtpd[1]:`, `proftpd[26169]` → (program, pid).
/// Words that are message content (`%ASA-6-302013:`, `CEF:0|…`, `key=value`) are not tags.
fn tag(word: &str) -> Option<(&str, &str)> {
    let w = word.strip_suffix(':').unwrap_or(word);
    let b = w.as_bytes();
    if b.is_empty() || b[0] == b'%' || !(b[0].is_ascii_alphanumeric() || b[0] == b'_') {
        return None;
    }
    if let Some(open) = w.find('[') {
        let close = w.rfind(']')?;
        if close != w.len() - 1 || close < open {
            return None;
        }
        let name = &w[..open];
        return plain_name(name).then_some((name, &w[open + 1..close]));
    }
    if w.len() == word.len() {
        return None; // neither `:` nor `[pid]`: an ordinary word
    }
    plain_name(w).then_some((w, ""))
}

fn plain_name(s: &str) -> bool {
    !s.is_empty()
        && s.bytes()
            .all(|c| c.is_ascii_alphanumeric() || b"-_./()@".contains(&c))
}

/// Splits `[id k="v"][id2 ...] msg` into the structured data and the message.
fn split_structured_data(s: &str) -> (&str, &str) {
    if let Some(rest) = s.strip_prefix("- ") {
        return ("", rest);
    }
    if s == "-" || !s.starts_with('[') {
        return ("", s);
    }
    let b = s.as_bytes();
    let (mut in_quotes, mut escaped) = (false, false);
    for (i, &c) in b.iter().enumerate() {
        if escaped {
            escaped = false;
            continue;
        }
        match c {
            b'\\' => escaped = true,
            b'"' => in_quotes = !in_quotes,
            b']' if !in_quotes && b.get(i + 1) != Some(&b'[') => {
                return (&s[..=i], s[i + 1..].trim_start());
            }
            _ => {}
        }
    }
    (s, "")
}

/// The parameters of structured data: `k="v"` (RFC 5424) and Check Point's
/// `k:"v";` both give (`k`, `v`); `\"`, `\\` and `\]` are unescaped.
pub(crate) fn sd_params(sd: &str, mut f: impl FnMut(&str, String)) {
    let b = sd.as_bytes();
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'"' {
            // Find the key before this quote: back over `=` or `:` and the name.
            let mut k_end = i;
            if k_end > 0 && (b[k_end - 1] == b'=' || b[k_end - 1] == b':') {
                k_end -= 1;
            }
            let mut k_start = k_end;
            // Keys are short: a bounded look-back keeps hostile input (a line of
            // quotes without separators) linear.
            while k_start > 0 && k_end - k_start < 128 && !b" [;\t\"".contains(&b[k_start - 1]) {
                k_start -= 1;
            }
            // The bound may stop inside a multi-byte character (found by fuzzing).
            while !sd.is_char_boundary(k_start) {
                k_start += 1;
            }
            let mut value = String::new();
            let mut j = b.len();
            let mut chars = sd[i + 1..].char_indices();
            while let Some((at, c)) = chars.next() {
                match c {
                    '\\' => {
                        if let Some((_, n)) = chars.next() {
                            value.push(n);
                        }
                    }
                    '"' => {
                        j = i + 1 + at;
                        break;
                    }
                    c => value.push(c),
                }
            }
            if k_end > k_start && k_end < i {
                f(sd[k_start..k_end].trim_end_matches(':'), value);
            }
            i = j + 1;
        } else {
            i += 1;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bsd_with_tag_and_pid() -> Result<(), &'static str> {
        let h = parse("<38>Dec 10 06:55:46 LabSZ sshd[24200]: Invalid user x").ok_or("none")?;
        assert_eq!((h.host, h.app, h.pid), (Some("LabSZ"), "sshd", "24200"));
        assert_eq!(h.msg, "Invalid user x");
        assert_eq!(h.pri, Some(38));
        Ok(())
    }

    #[test]
    fn variants() -> Result<(), &'static str> {
        let h = parse("2015 Nov 13 13:40:01 ether rsyslogd-2177: imuxsock begins").ok_or("a")?;
        assert_eq!(h.app, "rsyslogd-2177");
        assert!(h.timestamp.is_some());
        let h =
            parse("2020-03-23 06:47:42.801612-0700  localhost sshd[3186]: error: x").ok_or("b")?;
        assert_eq!((h.app, h.msg), ("sshd", "error: x"));
        assert!(parse("2017-01-23 03:44:14 dovecot_login authenticator failed").is_none());
        let h = parse("Sep  1 10:25:29 10.10.10.1 %SEC-6-IPACCESSLOGP: list 102").ok_or("c")?;
        assert_eq!((h.app, h.msg), ("", "%SEC-6-IPACCESSLOGP: list 102"));
        let h = parse("<134>CEF:0|a|b|c|d|e|5|").ok_or("d")?;
        assert_eq!(h.msg, "CEF:0|a|b|c|d|e|5|");
        Ok(())
    }

    #[test]
    fn structured_data_params() -> Result<(), &'static str> {
        let h = parse(r#"<165>1 2003-10-11T22:14:15.003Z mymachine evntslog - ID47 [exampleSDID@32473 iut="3" eventSource="App\"x"] An application event"#).ok_or("none")?;
        assert_eq!(h.msg, "An application event");
        let mut got = Vec::new();
        sd_params(h.sd, |k, v| got.push((k.to_owned(), v)));
        assert_eq!(got[1], ("eventSource".to_owned(), "App\"x".to_owned()));
        let mut cp = Vec::new();
        sd_params(r#"[action:"Drop"; ifdir:"inbound"]"#, |k, v| {
            cp.push((k.to_owned(), v))
        });
        assert_eq!(cp[0], ("action".to_owned(), "Drop".to_owned()));
        // Regression (fuzz): a key longer than the look-back, ending in multi-byte text.
        let long = format!("[x@1 {}é=\"v\"]", "k".repeat(127));
        sd_params(&long, |_, _| {});
        Ok(())
    }
}
