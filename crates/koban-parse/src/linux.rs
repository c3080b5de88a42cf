//! Linux authentication messages once the syslog header is off: sshd, sudo, su and
//! PAM (`pam_unix(sshd:auth): authentication failure; ... rhost=1.2.3.4 user=root`).
//! They fill `user.name`, `source.ip`/`source.port`, `event.action` and
//! `event.outcome`; the message itself stays in `message` for keyword rules.

use crate::kv::pairs;
use crate::out::{Out, FAILURE, SUCCESS};

/// The Sigma services of a program (`sshd` → `sshd` + `auth`), `syslog` always last.
pub(crate) fn services(program: &str) -> &'static [&'static str] {
    match program {
        "sshd" => &["sshd", "auth", "syslog"],
        "sudo" => &["sudo", "auth", "syslog"],
        "su" | "login" | "passwd" | "useradd" | "groupadd" | "usermod" | "userdel"
        | "systemd-logind" | "doas" | "chpasswd" | "chage" => &["auth", "syslog"],
        "cron" | "crond" | "cron.d" => &["cron", "syslog"],
        "vsftpd" => &["vsftpd", "syslog"],
        "clamd" | "freshclam" => &["clamav", "syslog"],
        _ => &["syslog"],
    }
}

/// Parses the message of a known program. Returns the format name when it did.
pub(crate) fn message(program: &str, msg: &str, o: &mut Out) -> Option<&'static str> {
    // `sshd(pam_unix)` (old PAM) and `pam_unix(sshd:auth):` (new) are both PAM.
    if program.ends_with("(pam_unix)") || msg.starts_with("pam_unix(") || msg.starts_with("pam_") {
        pam(msg, o);
        return Some("pam");
    }
    match program {
        "sshd" => {
            sshd(msg, o);
            Some("sshd")
        }
        "sudo" => {
            sudo(msg, o);
            Some("sudo")
        }
        "su" => {
            su(msg, o);
            Some("su")
        }
        _ => None,
    }
}

/// Reads the usual auth vocabulary: `from IP`, `port N`, `user X`, `for X from`,
/// `[IP]`, `rhost=`/`user=`.
fn auth_words(msg: &str, o: &mut Out) {
    let words: Vec<&str> = msg.split_ascii_whitespace().collect();
    let (mut ip, mut port, mut user) = (false, false, false);
    for (i, w) in words.iter().enumerate() {
        let next = words.get(i + 1).copied().unwrap_or_default();
        match *w {
            "from" | "by" if !ip => ip = o.ip("source.ip", next.trim_end_matches([',', ':'])),
            "port" if !port && next.bytes().all(|b| b.is_ascii_digit()) && !next.is_empty() => {
                o.port("source.port", next);
                port = true;
            }
            "user" if !user && !matches!(next, "from" | "unknown" | "" | "by") => {
                o.str("user.name", next.trim_matches(['<', '>', '\'', '"']));
                user = true;
            }
            "for"
                if !user
                    && words.get(i + 2) == Some(&"from")
                    && !matches!(next, "invalid" | "illegal") =>
            {
                o.str("user.name", next);
                user = true;
            }
            _ => {
                if !ip {
                    if let Some(inner) = w.strip_prefix('[').and_then(|x| x.strip_suffix(']')) {
                        ip = o.ip("source.ip", inner);
                    }
                }
            }
        }
    }
    if !ip || !user {
        for (k, v) in pairs(msg) {
            match k {
                "rhost" if !ip => ip = o.ip("source.ip", &v),
                "user" | "ruser" if !user && !v.is_empty() => {
                    o.str("user.name", &v);
                    user = true;
                }
                _ => {}
            }
        }
    }
}

fn sshd(msg: &str, o: &mut Out) {
    auth_words(msg, o);
    let (action, outcome) = if msg.starts_with("Accepted ") {
        ("logged-in", SUCCESS)
    } else if msg.starts_with("Failed ") || msg.contains("authentication failure") {
        ("logon-failed", FAILURE)
    } else if msg.starts_with("Invalid user") || msg.starts_with("Illegal user") {
        ("invalid-user", FAILURE)
    } else if msg.contains("maximum authentication attempts exceeded") {
        ("logon-failed", FAILURE)
    } else if msg.starts_with("Connection closed")
        || msg.starts_with("Disconnected from")
        || msg.starts_with("Received disconnect")
    {
        ("disconnected", "")
    } else if msg.contains("POSSIBLE BREAK-IN ATTEMPT") {
        ("reverse-mapping-failed", "")
    } else {
        ("", "")
    };
    o.str("event.action", action);
    o.str("event.outcome", outcome);
    if !outcome.is_empty() {
        o.str("event.category", "authentication");
    }
}

/// `user : TTY=pts/4 ; PWD=/home/u ; USER=root ; COMMAND=/bin/ls`, possibly with a
/// reason part (`3 incorrect password attempts`, `user NOT in sudoers`).
fn sudo(msg: &str, o: &mut Out) {
    let Some((user, rest)) = msg.split_once(" : ") else {
        auth_words(msg, o);
        return;
    };
    o.str("user.name", user.trim());
    let mut failed = false;
    for part in rest.split(" ; ") {
        match part.split_once('=') {
            Some(("TTY", v)) => o.str("process.tty.name", v),
            Some(("PWD", v)) => o.str("process.working_directory", v),
            Some(("USER", v)) => o.str("user.effective.name", v),
            Some(("COMMAND", v)) => o.str("process.command_line", v),
            Some(_) => {}
            None => {
                failed = true;
                o.str("event.reason", part.trim());
            }
        }
    }
    o.str("event.action", "sudo");
    o.str("event.outcome", if failed { FAILURE } else { SUCCESS });
}

/// `(to root) alice on pts/0`, `FAILED su for root by alice`, `BAD SU alice to root
/// on /dev/ttyp0`, `alice to root on /dev/ttyp1`, `Successful su for root by alice`.
fn su(msg: &str, o: &mut Out) {
    let w: Vec<&str> = msg.split_ascii_whitespace().collect();
    let (user, target, ok) = match w.as_slice() {
        ["(to", target, user, ..] => (*user, target.trim_end_matches(')'), Some(true)),
        ["FAILED", "su", "for", target, "by", user, ..] => (*user, *target, Some(false)),
        ["Successful", "su", "for", target, "by", user, ..] => (*user, *target, Some(true)),
        ["BAD", "SU", user, "to", target, ..] => (*user, *target, Some(false)),
        [user, "to", target, "on", ..] => (*user, *target, Some(true)),
        _ => ("", "", msg.starts_with("failed").then_some(false)),
    };
    o.str("user.name", user);
    o.str("user.effective.name", target);
    o.str("event.action", "su");
    if let Some(ok) = ok {
        o.str("event.outcome", if ok { SUCCESS } else { FAILURE });
    }
}

fn pam(msg: &str, o: &mut Out) {
    auth_words(msg, o);
    if let Some(module) = msg
        .split_once(':')
        .map(|(m, _)| m)
        .filter(|m| m.ends_with(')'))
    {
        o.str("pam.module", module);
    }
    let (action, outcome) =
        if msg.contains("authentication failure") || msg.contains("check pass; user unknown") {
            ("logon-failed", FAILURE)
        } else if msg.contains("session opened") {
            ("session-opened", SUCCESS)
        } else if msg.contains("session closed") {
            ("session-closed", "")
        } else {
            ("", "")
        };
    o.str("event.action", action);
    o.str("event.outcome", outcome);
}

#[cfg(test)]
mod tests {
    use super::*;
    use koban_event::Value;

    fn run(program: &str, msg: &str) -> koban_event::Event {
        let mut o = Out::default();
        let _ = message(program, msg, &mut o);
        o.into_event()
    }

    #[test]
    fn sshd_messages() {
        let e = run(
            "sshd",
            "Failed password for invalid user admin from 1.2.3.4 port 4242 ssh2",
        );
        assert_eq!(e.get_str("user.name").as_deref(), Some("admin"));
        assert_eq!(e.get_str("source.ip").as_deref(), Some("1.2.3.4"));
        assert_eq!(e.get("source.port"), Some(&Value::Int(4242)));
        assert_eq!(e.get_str("event.outcome").as_deref(), Some("failure"));
        let e = run(
            "sshd",
            "Accepted publickey for root from 10.0.0.1 port 22 ssh2: RSA SHA256:x",
        );
        assert_eq!(e.get_str("user.name").as_deref(), Some("root"));
        assert_eq!(e.get_str("event.outcome").as_deref(), Some("success"));
        let e = run("sshd", "reverse mapping checking getaddrinfo for ns.x.com [173.234.31.186] failed - POSSIBLE BREAK-IN ATTEMPT!");
        assert_eq!(e.get_str("source.ip").as_deref(), Some("173.234.31.186"));
    }

    #[test]
    fn pam_sudo_su() {
        let e = run("sshd(pam_unix)", "authentication failure; logname= uid=0 euid=0 tty=NODEVssh ruser= rhost=218.188.2.4  user=root");
        assert_eq!(e.get_str("source.ip").as_deref(), Some("218.188.2.4"));
        assert_eq!(e.get_str("user.name").as_deref(), Some("root"));
        assert_eq!(e.get_str("event.outcome").as_deref(), Some("failure"));
        let e = run("sudo", "    mike : 3 incorrect password attempts ; TTY=pts/0 ; PWD=/root ; USER=root ; COMMAND=/bin/ls");
        assert_eq!(e.get_str("user.name").as_deref(), Some("mike"));
        assert_eq!(
            e.get_str("process.command_line").as_deref(),
            Some("/bin/ls")
        );
        assert_eq!(e.get_str("event.outcome").as_deref(), Some("failure"));
        let e = run("su", "BAD SU ger to fwmaster on /dev/ttyp0");
        assert_eq!(
            e.get_str("user.effective.name").as_deref(),
            Some("fwmaster")
        );
        assert_eq!(e.get_str("event.outcome").as_deref(), Some("failure"));
    }
}
