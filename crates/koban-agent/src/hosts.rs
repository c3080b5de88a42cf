//! Domain blocks through the hosts file: a block of lines Koban owns, between two
//! marker comments, mapping each blocked domain (and its `www.`) to `0.0.0.0` and
//! `::`. The rest of the file is left exactly as it was. Verification asks the
//! resolver (`getent hosts`, the same NSS path programs use) where the domain goes.
//!
//! The hosts file has no wildcards: other sub-domains are not covered, and the detail
//! says so; a resolver that ignores the hosts file is seen in the verification.

use std::path::Path;

use serde_json::json;

use crate::exec::Report;

const BEGIN: &str = "# BEGIN koban-agent blocked domains (managed; do not edit)";
const END: &str = "# END koban-agent blocked domains";

/// The hosts file with Koban's block replaced by one for `domains`.
pub fn render(current: &str, domains: &[String]) -> String {
    let mut out = String::new();
    let mut inside = false;
    for line in current.lines() {
        if line == BEGIN {
            inside = true;
            continue;
        }
        if line == END {
            inside = false;
            continue;
        }
        if !inside {
            out.push_str(line);
            out.push('\n');
        }
    }
    if !domains.is_empty() {
        out.push_str(BEGIN);
        out.push('\n');
        for d in domains {
            let names = format!("{d} www.{d}");
            out.push_str(&format!("0.0.0.0 {names}\n:: {names}\n"));
        }
        out.push_str(END);
        out.push('\n');
    }
    out
}

/// Writes the block for `domains` (atomically: temp file, fsync, rename).
pub fn apply(path: &Path, domains: &[String]) -> Result<(), String> {
    let current = match std::fs::read_to_string(path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => String::new(),
        Err(e) => return Err(format!("{}: {e}", path.display())),
    };
    let next = render(&current, domains);
    let tmp = path.with_extension("koban-tmp");
    std::fs::write(&tmp, &next).map_err(|e| format!("{}: {e}", tmp.display()))?;
    if let Ok(meta) = std::fs::metadata(path) {
        let _ = std::fs::set_permissions(&tmp, meta.permissions());
    }
    std::fs::File::open(&tmp)
        .and_then(|f| f.sync_all())
        .map_err(|e| format!("{}: {e}", tmp.display()))?;
    // /etc/hosts may be a bind mount (containers): rename fails there, write in place.
    if std::fs::rename(&tmp, path).is_err() {
        let _ = std::fs::remove_file(&tmp);
        std::fs::write(path, &next).map_err(|e| format!("{}: {e}", path.display()))?;
    }
    Ok(())
}

/// Where `domain` resolves now (`getent hosts`), when the hosts file is the system's.
fn resolves(domain: &str) -> Vec<String> {
    let Ok(out) = std::process::Command::new("getent")
        .args(["ahosts", domain])
        .output()
    else {
        return Vec::new();
    };
    let mut addrs: Vec<String> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| l.split_whitespace().next().map(str::to_owned))
        .collect();
    addrs.sort();
    addrs.dedup();
    addrs
}

/// Blocks or unblocks `domain`, updating `blocked`; reports what the file and the
/// resolver then say.
pub fn set(path: &Path, blocked: &mut Vec<String>, domain: &str, block: bool) -> Report {
    let domain = domain.trim_end_matches('.').to_ascii_lowercase();
    let mut want: Vec<String> = blocked.iter().filter(|d| **d != domain).cloned().collect();
    if block {
        want.push(domain.clone());
    }
    if let Err(e) = apply(path, &want) {
        return Report {
            ran: false,
            verified: false,
            detail: e,
            observed: serde_json::Value::Null,
        };
    }
    *blocked = want;
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let in_file = text
        .lines()
        .any(|l| l == format!("0.0.0.0 {domain} www.{domain}"));
    let system = path == Path::new("/etc/hosts");
    let addrs = if system {
        resolves(&domain)
    } else {
        Vec::new()
    };
    let sinkholed = !addrs.is_empty() && addrs.iter().all(|a| a == "0.0.0.0" || a == "::");
    let verified = if block {
        in_file && (!system || sinkholed)
    } else {
        !in_file && (!system || !sinkholed)
    };
    Report {
        ran: true,
        verified,
        detail: format!(
            "{domain} {} in {}{}; resolves to {}; other sub-domains than www are not covered",
            if in_file {
                "is sinkholed"
            } else {
                "is not listed"
            },
            path.display(),
            if system {
                ""
            } else {
                " (not the system's hosts file)"
            },
            if addrs.is_empty() {
                "nothing".to_owned()
            } else {
                addrs.join(", ")
            },
        ),
        observed: json!({ "in_hosts_file": in_file, "resolves_to": addrs }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_block_is_replaced_and_the_rest_kept() {
        let base = "127.0.0.1 localhost\n::1 localhost\n";
        let one = render(base, &["evil.example".into()]);
        assert!(one.starts_with(base));
        assert!(one.contains("0.0.0.0 evil.example www.evil.example\n"));
        let two = render(&one, &["evil.example".into(), "bad.test".into()]);
        assert_eq!(two.matches(BEGIN).count(), 1);
        assert!(two.contains(":: bad.test www.bad.test\n"));
        assert_eq!(render(&two, &[]), base);
    }

    #[test]
    fn set_reports_the_file_state() {
        let dir = std::env::temp_dir().join(format!("koban-hosts-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("dir");
        let p = dir.join("hosts");
        std::fs::write(&p, "127.0.0.1 localhost\n").expect("write");
        let mut blocked = Vec::new();
        let r = set(&p, &mut blocked, "Evil.Example.", true);
        assert!(r.ran && r.verified, "{r:?}");
        assert_eq!(blocked, ["evil.example"]);
        let r = set(&p, &mut blocked, "evil.example", false);
        assert!(r.ran && r.verified, "{r:?}");
        assert_eq!(
            std::fs::read_to_string(&p).expect("read"),
            "127.0.0.1 localhost\n"
        );
        let _ = std::fs::remove_dir_all(dir);
    }
}
