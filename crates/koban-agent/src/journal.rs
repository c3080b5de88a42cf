//! Reading the systemd journal since a cursor, through `journalctl -o json` (the
//! journal's own reader; its file format is not ours to parse). Each entry is shipped
//! as the JSON journalctl prints — the server reads journald's field names — with its
//! `__CURSOR` kept in the spool, so a restart goes on after the last entry spooled.
//!
//! Without a cursor (before the first entry is spooled) reading begins at the time the
//! agent started: it ships what happens from then on, not the whole boot.

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};

/// The spool's source name for the journal.
pub const SOURCE: &str = "journal";

/// Up to `max` entries after `cursor` (or, without one, since `since_s`, Unix
/// seconds): (the entry's JSON, its cursor).
pub fn read_new(
    cursor: Option<&str>,
    since_s: i64,
    max: usize,
) -> Result<Vec<(String, String)>, String> {
    let mut cmd = Command::new("journalctl");
    cmd.args(["-o", "json", "--no-pager", "-q"]);
    match cursor {
        Some(c) => cmd.arg(format!("--after-cursor={c}")),
        None => cmd.arg(format!("--since=@{since_s}")),
    };
    let mut child = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .map_err(|e| format!("journalctl: {e}"))?;
    let mut out = Vec::new();
    if let Some(stdout) = child.stdout.take() {
        for line in BufReader::new(stdout).lines() {
            let line = line.map_err(|e| format!("journalctl: {e}"))?;
            let Some(c) = cursor_of(&line) else {
                continue;
            };
            out.push((line, c));
            if out.len() >= max {
                break;
            }
        }
    }
    // Stops journalctl when `max` cut the reading short.
    let _ = child.kill();
    let _ = child.wait();
    Ok(out)
}

fn cursor_of(line: &str) -> Option<String> {
    serde_json::from_str::<serde_json::Value>(line)
        .ok()?
        .get("__CURSOR")?
        .as_str()
        .map(str::to_owned)
}

#[cfg(test)]
mod tests {
    use super::cursor_of;

    #[test]
    fn the_cursor_is_read_from_each_entry() {
        assert_eq!(
            cursor_of(r#"{"__CURSOR":"s=1;i=2","MESSAGE":"hi"}"#).as_deref(),
            Some("s=1;i=2")
        );
        assert_eq!(cursor_of("not json"), None);
        assert_eq!(cursor_of(r#"{"MESSAGE":"no cursor"}"#), None);
    }
}
