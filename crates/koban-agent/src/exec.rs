//! Carrying out an action on this host, then looking at what is actually there.
//!
//! Each action is done with the host's own tools (nft, kill, usermod) and then
//! *observed* separately: the nft table read back, the server and the probe addresses
//! connected to, `/proc` and `/etc/shadow` read. The report says what was seen; the
//! action is `verified` only when that is what was asked for.

use std::io::Write;
use std::net::{SocketAddr, TcpStream};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

use ipnet::IpNet;
use koban_respond::{nft, Action};
use serde_json::{json, Value};

use crate::state::AgentState;

/// What the agent tells the server.
#[derive(Debug, Clone)]
pub struct Report {
    pub ran: bool,
    pub verified: bool,
    pub detail: String,
    pub observed: Value,
}

impl Report {
    fn failed(detail: impl Into<String>) -> Report {
        Report {
            ran: false,
            verified: false,
            detail: detail.into(),
            observed: Value::Null,
        }
    }
}

/// Where the agent is: its servers (kept reachable), the addresses it probes to show
/// isolation holds, its state dir.
pub struct Host<'a> {
    pub servers: &'a [SocketAddr],
    pub probes: &'a [SocketAddr],
    pub dir: &'a Path,
    /// Where domain blocks go (`/etc/hosts`).
    pub hosts_file: &'a Path,
}

pub fn run(action: &Action, st: &mut AgentState, host: &Host<'_>) -> Report {
    match action {
        Action::IsolateHost {} => {
            if let Err(e) = nft_load(&nft::isolation_script(host.servers)) {
                return Report::failed(e);
            }
            st.isolated = true;
            observe_isolation(host, true)
        }
        Action::ReleaseHost {} => {
            if let Err(e) = nft_load(&nft::release_script()) {
                return Report::failed(e);
            }
            st.isolated = false;
            observe_isolation(host, false)
        }
        Action::BlockIp { ip } => {
            if let Err(server) = nft::blockable(ip, host.servers) {
                return Report::failed(format!(
                    "{ip} holds the Koban server {server}: not blocked"
                ));
            }
            let mut want = st.blocked.clone();
            if !want.contains(ip) {
                want.push(*ip);
            }
            if let Err(e) = nft_load(&nft::block_script(&want)) {
                return Report::failed(e);
            }
            st.blocked = want;
            observe_block(host, ip, true)
        }
        Action::UnblockIp { ip } => {
            let want: Vec<IpNet> = st.blocked.iter().filter(|n| *n != ip).copied().collect();
            if let Err(e) = nft_load(&nft::block_script(&want)) {
                return Report::failed(e);
            }
            st.blocked = want;
            observe_block(host, ip, false)
        }
        Action::KillProcess { pid } => kill(*pid),
        Action::DisableAccount { user } => account(user, true),
        Action::EnableAccount { user } => account(user, false),
        Action::QuarantineFile { path } => quarantine(st, host.dir, path),
        Action::RestoreFile { path } => restore(st, path),
        Action::BlockDomain { domain } => {
            crate::hosts::set(host.hosts_file, &mut st.blocked_domains, domain, true)
        }
        Action::UnblockDomain { domain } => {
            crate::hosts::set(host.hosts_file, &mut st.blocked_domains, domain, false)
        }
        Action::CollectFiles { .. } => Report::failed(
            "collect_files is carried out by the agent's upload step, not here".to_owned(),
        ),
        Action::Webhook { .. } | Action::Command { .. } => Report::failed(format!(
            "{} runs on the server, not on an agent",
            action.kind()
        )),
    }
}

/// Re-applies the containment the state holds (after a restart or a reboot).
pub fn reapply(st: &AgentState, host: &Host<'_>) -> Result<(), String> {
    if st.isolated {
        nft_load(&nft::isolation_script(host.servers))?;
    }
    if !st.blocked.is_empty() {
        nft_load(&nft::block_script(&st.blocked))?;
    }
    if !st.blocked_domains.is_empty() {
        crate::hosts::apply(host.hosts_file, &st.blocked_domains)?;
    }
    Ok(())
}

fn nft_load(script: &str) -> Result<(), String> {
    let mut child = Command::new("nft")
        .args(["-f", "-"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| format!("cannot run nft: {e}"))?;
    if let Some(mut stdin) = child.stdin.take() {
        stdin
            .write_all(script.as_bytes())
            .map_err(|e| format!("nft: {e}"))?;
    }
    let out = child.wait_with_output().map_err(|e| format!("nft: {e}"))?;
    if out.status.success() {
        Ok(())
    } else {
        Err(format!(
            "nft refused the rules: {}",
            String::from_utf8_lossy(&out.stderr).trim()
        ))
    }
}

fn nft_listing(table: &str) -> Result<nft::Listing, String> {
    let out = Command::new("nft")
        .args(["-j", "list", "table", "inet", table])
        .output()
        .map_err(|e| format!("cannot run nft: {e}"))?;
    if !out.status.success() {
        // No such table.
        return Ok(nft::Listing::default());
    }
    nft::read_listing(&String::from_utf8_lossy(&out.stdout))
}

fn reachable(addr: &SocketAddr) -> bool {
    TcpStream::connect_timeout(addr, Duration::from_millis(1500)).is_ok()
}

fn probes_json(addrs: &[SocketAddr]) -> (Vec<Value>, Vec<bool>) {
    let seen: Vec<bool> = addrs.iter().map(reachable).collect();
    let json = addrs
        .iter()
        .zip(&seen)
        .map(|(a, ok)| json!({ "addr": a.to_string(), "reachable": ok }))
        .collect();
    (json, seen)
}

fn observe_isolation(host: &Host<'_>, want_isolated: bool) -> Report {
    let listing = match nft_listing(nft::ISOLATE_TABLE) {
        Ok(l) => l,
        Err(e) => return Report::failed(e),
    };
    let drops = listing.policies.iter().filter(|(_, p)| p == "drop").count();
    let (servers, server_ok) = probes_json(host.servers);
    let (probes, probe_ok) = probes_json(host.probes);
    let server_reachable = server_ok.iter().any(|b| *b);
    let verified = if want_isolated {
        listing.present && drops == 2 && server_reachable && probe_ok.iter().all(|b| !*b)
    } else {
        !listing.present && server_reachable
    };
    Report {
        ran: true,
        verified,
        detail: format!(
            "table {}: {}; server reachable: {server_reachable}; probes reachable: {}/{}",
            nft::ISOLATE_TABLE,
            if listing.present { "present" } else { "absent" },
            probe_ok.iter().filter(|b| **b).count(),
            probe_ok.len()
        ),
        observed: json!({
            "table_present": listing.present,
            "drop_policies": drops,
            "servers": servers,
            "probes": probes,
        }),
    }
}

fn observe_block(host: &Host<'_>, ip: &IpNet, want_blocked: bool) -> Report {
    let listing = match nft_listing(nft::BLOCK_TABLE) {
        Ok(l) => l,
        Err(e) => return Report::failed(e),
    };
    let listed = listing.elements.iter().any(|e| e == &ip.trunc());
    let inside: Vec<SocketAddr> = host
        .probes
        .iter()
        .filter(|p| ip.contains(&p.ip()))
        .copied()
        .collect();
    let (probes, ok) = probes_json(&inside);
    let verified = if want_blocked {
        listed && ok.iter().all(|b| !*b)
    } else {
        !listed
    };
    Report {
        ran: true,
        verified,
        detail: format!(
            "{ip} {} the kernel's block set; probes inside it reachable: {}/{}",
            if listed { "is in" } else { "is not in" },
            ok.iter().filter(|b| **b).count(),
            ok.len()
        ),
        observed: json!({ "listed": listed, "set": listing.elements.iter().map(ToString::to_string).collect::<Vec<_>>(), "probes": probes }),
    }
}

fn kill(pid: u32) -> Report {
    let proc_dir = format!("/proc/{pid}");
    if !Path::new(&proc_dir).exists() {
        return Report {
            ran: true,
            verified: true,
            detail: format!("process {pid} was not running"),
            observed: json!({ "running": false }),
        };
    }
    let out = Command::new("kill")
        .args(["-KILL", &pid.to_string()])
        .output();
    if let Err(e) = out {
        return Report::failed(format!("cannot run kill: {e}"));
    }
    // A killed process lingers as a zombie until its parent reaps it; wait a little.
    let mut running = true;
    for _ in 0..20 {
        running = match std::fs::read_to_string(format!("{proc_dir}/stat")) {
            Ok(stat) => !stat
                .rsplit(')')
                .next()
                .is_some_and(|rest| rest.trim_start().starts_with('Z')),
            Err(_) => false,
        };
        if !running {
            break;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    Report {
        ran: true,
        verified: !running,
        detail: format!(
            "process {pid} {}",
            if running { "still runs" } else { "is gone" }
        ),
        observed: json!({ "running": running }),
    }
}

fn account(user: &str, disable: bool) -> Report {
    let args: Vec<&str> = if disable {
        vec!["-L", "-e", "1", user]
    } else {
        vec!["-U", "-e", "", user]
    };
    match Command::new("usermod").args(&args).output() {
        Ok(o) if o.status.success() => {}
        Ok(o) => {
            return Report::failed(format!(
                "usermod: {}",
                String::from_utf8_lossy(&o.stderr).trim()
            ))
        }
        Err(e) => return Report::failed(format!("cannot run usermod: {e}")),
    }
    let locked = std::fs::read_to_string("/etc/shadow").ok().and_then(|s| {
        s.lines()
            .find(|l| l.split(':').next() == Some(user))
            .map(|l| l.split(':').nth(1).unwrap_or("").starts_with('!'))
    });
    Report {
        ran: true,
        verified: locked == Some(disable),
        detail: format!(
            "{user}'s password is {}",
            match locked {
                Some(true) => "locked",
                Some(false) => "unlocked",
                None => "not readable",
            }
        ),
        observed: json!({ "locked": locked }),
    }
}

fn quarantine(st: &mut AgentState, dir: &Path, path: &str) -> Report {
    use std::os::unix::fs::PermissionsExt;
    let qdir = dir.join("quarantine");
    if let Err(e) = std::fs::create_dir_all(&qdir) {
        return Report::failed(format!("{}: {e}", qdir.display()));
    }
    let name = crate::client::hex(&crate::client::fingerprint(path.as_bytes()));
    let kept = qdir.join(&name[..32]);
    if let Err(e) = std::fs::rename(path, &kept) {
        return Report::failed(format!("{path}: {e}"));
    }
    let _ = std::fs::set_permissions(&kept, std::fs::Permissions::from_mode(0o000));
    st.quarantine.retain(|(p, _)| p != path);
    st.quarantine
        .push((path.to_owned(), kept.display().to_string()));
    let gone = !Path::new(path).exists();
    Report {
        ran: true,
        verified: gone && kept.exists(),
        detail: format!(
            "{path} {} ; kept as {}",
            if gone { "is gone" } else { "is still there" },
            kept.display()
        ),
        observed: json!({ "original_present": !gone, "kept": kept.display().to_string() }),
    }
}

fn restore(st: &mut AgentState, path: &str) -> Report {
    use std::os::unix::fs::PermissionsExt;
    let Some(i) = st.quarantine.iter().position(|(p, _)| p == path) else {
        return Report::failed(format!("{path} is not in this agent's quarantine"));
    };
    let kept = st.quarantine[i].1.clone();
    if let Err(e) = std::fs::rename(&kept, path) {
        return Report::failed(format!("{kept} → {path}: {e}"));
    }
    // The original mode is not kept: owner read/write only, never executable.
    let _ = std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600));
    st.quarantine.remove(i);
    let back = Path::new(path).exists();
    Report {
        ran: true,
        verified: back,
        detail: format!(
            "{path} {}",
            if back {
                "is back (mode 0600)"
            } else {
                "is missing"
            }
        ),
        observed: json!({ "original_present": back }),
    }
}
