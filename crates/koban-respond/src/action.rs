//! What a response action is: a kind with typed parameters, checked once when the
//! action is asked for, and the action that undoes it.
//!
//! Parameters are validated here, not where the action runs: an analyst asking to
//! block `10.0.0.0/33` or to quarantine `../etc/passwd` learns so at once, by field,
//! rather than from an agent minutes later.

use std::fmt;

use ipnet::IpNet;
use serde::{Deserialize, Serialize};

use crate::error::ActionError;

/// A response action and its parameters. On the wire: `{"kind": "block_ip", "ip": "…"}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
pub enum Action {
    /// Cut the host off from every address but the Koban server.
    // `{}`, not unit variants: serde refuses unknown fields only on struct variants.
    IsolateHost {},
    ReleaseHost {},
    /// Drop traffic to and from an address or network, both directions.
    BlockIp {
        #[serde(with = "net")]
        ip: IpNet,
    },
    UnblockIp {
        #[serde(with = "net")]
        ip: IpNet,
    },
    /// Resolve a domain (and its sub-domains) to nowhere on the host.
    BlockDomain {
        domain: String,
    },
    UnblockDomain {
        domain: String,
    },
    /// Lock a local account: no password log-in, no new sessions.
    DisableAccount {
        user: String,
    },
    EnableAccount {
        user: String,
    },
    KillProcess {
        pid: u32,
    },
    /// Move a file into the agent's quarantine, unreadable and unexecutable.
    QuarantineFile {
        path: String,
    },
    RestoreFile {
        path: String,
    },
    /// Copy files (logs, binaries) to the server for forensics.
    CollectFiles {
        paths: Vec<String>,
    },
    /// POST a signed JSON body to a configured connector (a firewall, an IdP).
    Webhook {
        connector: String,
        #[serde(default)]
        body: serde_json::Value,
    },
    /// Run a configured connector's command with these arguments (never a shell).
    Command {
        connector: String,
        #[serde(default)]
        args: Vec<String>,
    },
}

/// Where an action runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Runner {
    /// On the endpoint, by `koban-agent`.
    Agent,
    /// On the server, by a connector.
    Connector,
}

const MAX_COLLECT: usize = 64;
const MAX_ARG: usize = 4096;

impl Action {
    /// Parses and validates an action from JSON.
    pub fn from_json(json: &str) -> Result<Action, ActionError> {
        let action: Action = serde_json::from_str(json).map_err(|e| ActionError {
            field: "action".into(),
            message: e.to_string(),
        })?;
        action.validate()?;
        Ok(action)
    }

    /// Checks the parameters beyond their types; the error names the field.
    pub fn validate(&self) -> Result<(), ActionError> {
        match self {
            Action::IsolateHost {} | Action::ReleaseHost {} => Ok(()),
            Action::BlockIp { ip } | Action::UnblockIp { ip } => check_net(ip),
            Action::BlockDomain { domain } | Action::UnblockDomain { domain } => {
                check_domain(domain)
            }
            Action::DisableAccount { user } | Action::EnableAccount { user } => check_user(user),
            Action::KillProcess { pid } => {
                if *pid <= 1 {
                    return Err(ActionError::new(
                        "pid",
                        format!("{pid} is not a process Koban may kill"),
                    ));
                }
                Ok(())
            }
            Action::QuarantineFile { path } | Action::RestoreFile { path } => {
                check_path("path", path)
            }
            Action::CollectFiles { paths } => {
                if paths.is_empty() || paths.len() > MAX_COLLECT {
                    return Err(ActionError::new(
                        "paths",
                        format!("give 1 to {MAX_COLLECT} files, not {}", paths.len()),
                    ));
                }
                for (i, p) in paths.iter().enumerate() {
                    check_path(&format!("paths[{i}]"), p)?;
                }
                Ok(())
            }
            Action::Webhook { connector, .. } => check_connector(connector),
            Action::Command { connector, args } => {
                check_connector(connector)?;
                for (i, a) in args.iter().enumerate() {
                    if a.len() > MAX_ARG || a.contains('\0') {
                        return Err(ActionError::new(
                            &format!("args[{i}]"),
                            "an argument is at most 4 KiB, without NUL bytes",
                        ));
                    }
                }
                Ok(())
            }
        }
    }

    /// The snake_case name, as on the wire.
    pub fn kind(&self) -> &'static str {
        match self {
            Action::IsolateHost {} => "isolate_host",
            Action::ReleaseHost {} => "release_host",
            Action::BlockIp { .. } => "block_ip",
            Action::UnblockIp { .. } => "unblock_ip",
            Action::BlockDomain { .. } => "block_domain",
            Action::UnblockDomain { .. } => "unblock_domain",
            Action::DisableAccount { .. } => "disable_account",
            Action::EnableAccount { .. } => "enable_account",
            Action::KillProcess { .. } => "kill_process",
            Action::QuarantineFile { .. } => "quarantine_file",
            Action::RestoreFile { .. } => "restore_file",
            Action::CollectFiles { .. } => "collect_files",
            Action::Webhook { .. } => "webhook",
            Action::Command { .. } => "command",
        }
    }

    pub fn runner(&self) -> Runner {
        match self {
            Action::Webhook { .. } | Action::Command { .. } => Runner::Connector,
            _ => Runner::Agent,
        }
    }

    /// The action that reverses this one, when there is one. A killed process or a
    /// sent webhook cannot be taken back.
    pub fn undo(&self) -> Option<Action> {
        Some(match self {
            Action::IsolateHost {} => Action::ReleaseHost {},
            Action::ReleaseHost {} => Action::IsolateHost {},
            Action::BlockIp { ip } => Action::UnblockIp { ip: *ip },
            Action::UnblockIp { ip } => Action::BlockIp { ip: *ip },
            Action::BlockDomain { domain } => Action::UnblockDomain {
                domain: domain.clone(),
            },
            Action::UnblockDomain { domain } => Action::BlockDomain {
                domain: domain.clone(),
            },
            Action::DisableAccount { user } => Action::EnableAccount { user: user.clone() },
            Action::EnableAccount { user } => Action::DisableAccount { user: user.clone() },
            Action::QuarantineFile { path } => Action::RestoreFile { path: path.clone() },
            Action::RestoreFile { path } => Action::QuarantineFile { path: path.clone() },
            Action::KillProcess { .. }
            | Action::CollectFiles { .. }
            | Action::Webhook { .. }
            | Action::Command { .. } => return None,
        })
    }

    /// Whether the action contains something (isolation, a block, a lock) and so is
    /// worth an expiry that undoes it.
    pub fn contains(&self) -> bool {
        matches!(
            self,
            Action::IsolateHost {}
                | Action::BlockIp { .. }
                | Action::BlockDomain { .. }
                | Action::DisableAccount { .. }
                | Action::QuarantineFile { .. }
        )
    }
}

impl fmt::Display for Action {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Action::IsolateHost {} | Action::ReleaseHost {} => f.write_str(self.kind()),
            Action::BlockIp { ip } | Action::UnblockIp { ip } => write!(f, "{} {ip}", self.kind()),
            Action::BlockDomain { domain } | Action::UnblockDomain { domain } => {
                write!(f, "{} {domain}", self.kind())
            }
            Action::DisableAccount { user } | Action::EnableAccount { user } => {
                write!(f, "{} {user}", self.kind())
            }
            Action::KillProcess { pid } => write!(f, "kill_process {pid}"),
            Action::QuarantineFile { path } | Action::RestoreFile { path } => {
                write!(f, "{} {path}", self.kind())
            }
            Action::CollectFiles { paths } => write!(f, "collect_files ({} files)", paths.len()),
            Action::Webhook { connector, .. } => write!(f, "webhook {connector}"),
            Action::Command { connector, args } => {
                write!(f, "command {connector} {}", args.join(" "))
            }
        }
    }
}

/// Blocking everything (`0.0.0.0/0`) is isolation without the way back; refuse it.
fn check_net(ip: &IpNet) -> Result<(), ActionError> {
    if ip.prefix_len() == 0 {
        return Err(ActionError::new(
            "ip",
            format!("{ip} blocks every address: use isolate_host"),
        ));
    }
    let a = ip.addr();
    if a.is_loopback() || a.is_unspecified() {
        return Err(ActionError::new("ip", format!("{ip} is the host itself")));
    }
    Ok(())
}

/// A DNS name: labels of letters, digits and hyphens, 1–63 bytes each, 253 in all.
fn check_domain(d: &str) -> Result<(), ActionError> {
    let bad = |why: &str| Err(ActionError::new("domain", format!("{d:?}: {why}")));
    let d = d.strip_suffix('.').unwrap_or(d);
    if d.is_empty() || d.len() > 253 {
        return bad("a domain name is 1 to 253 characters");
    }
    for label in d.split('.') {
        if label.is_empty() || label.len() > 63 {
            return bad("each label is 1 to 63 characters");
        }
        if !label
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
            || label.starts_with('-')
            || label.ends_with('-')
        {
            return bad("labels are letters, digits and inner hyphens (IDNs in punycode)");
        }
    }
    if !d.contains('.') {
        return bad("give the whole name, such as evil.example");
    }
    Ok(())
}

/// A POSIX account name as useradd accepts it; root is never locked by Koban.
fn check_user(u: &str) -> Result<(), ActionError> {
    let ok = !u.is_empty()
        && u.len() <= 32
        && !u.starts_with('-')
        && u.bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'.' | b'$'));
    if !ok {
        return Err(ActionError::new(
            "user",
            format!("{u:?} is not an account name"),
        ));
    }
    if u == "root" {
        return Err(ActionError::new(
            "user",
            "root is never locked: isolate the host instead",
        ));
    }
    Ok(())
}

/// An absolute, normalised path: no `..`, no NUL, not the root.
fn check_path(field: &str, p: &str) -> Result<(), ActionError> {
    let why = if !p.starts_with('/') {
        "is not an absolute path"
    } else if p.contains('\0') {
        "contains a NUL byte"
    } else if p.split('/').any(|c| c == ".." || c == ".") {
        "has . or .. in it"
    } else if p.trim_end_matches('/').is_empty() {
        "is the root directory"
    } else if p.len() > 4096 {
        "is longer than 4096 bytes"
    } else {
        return Ok(());
    };
    Err(ActionError::new(field, format!("{p:?} {why}")))
}

fn check_connector(c: &str) -> Result<(), ActionError> {
    if c.is_empty()
        || c.len() > 64
        || !c
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
    {
        return Err(ActionError::new(
            "connector",
            format!("{c:?} is not a connector name"),
        ));
    }
    Ok(())
}

/// Networks on the wire as text; a bare address is its own /32 or /128. For
/// `#[serde(with = "koban_respond::action::net")]` (and `net::list` for a `Vec`).
pub mod net {
    use ipnet::IpNet;
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(n: &IpNet, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(n)
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<IpNet, D::Error> {
        let text = String::deserialize(d)?;
        parse(&text).ok_or_else(|| {
            serde::de::Error::custom(format!("{text:?} is not an IP address or network"))
        })
    }

    pub mod list {
        use ipnet::IpNet;
        use serde::{Deserialize, Deserializer, Serializer};

        pub fn serialize<S: Serializer>(nets: &[IpNet], s: S) -> Result<S::Ok, S::Error> {
            s.collect_seq(nets.iter().map(ToString::to_string))
        }

        pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<IpNet>, D::Error> {
            Vec::<String>::deserialize(d)?
                .iter()
                .map(|t| {
                    super::parse(t).ok_or_else(|| {
                        serde::de::Error::custom(format!("{t:?} is not an IP address or network"))
                    })
                })
                .collect()
        }
    }

    pub fn parse(text: &str) -> Option<IpNet> {
        let t = text.trim();
        t.parse::<IpNet>()
            .ok()
            .or_else(|| t.parse::<std::net::IpAddr>().ok().map(IpNet::from))
    }
}
