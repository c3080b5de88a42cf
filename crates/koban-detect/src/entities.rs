//! Who and what an event is about: host, user, addresses, process, file hash, domain —
//! read from the field names the common formats use (Windows/Sysmon, ECS, Zeek,
//! CloudTrail, the firewall parsers). Alerts carry them, dedup keys on them, incidents
//! group by them.

use koban_event::{Event, Value};
use serde::{Deserialize, Serialize};

/// The entities of one event; empty strings never appear (absent is `None`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Entities {
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub host: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub user: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub src_ip: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub dst_ip: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub process: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub hash: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub domain: Option<String>,
}

/// The event fields that name an entity of `kind` (`host`, `user`, `src_ip`,
/// `dst_ip`, `process`, `hash`, `domain`), in the order they are tried.
pub fn fields_of(kind: &str) -> Option<&'static [&'static str]> {
    Some(match kind {
        "host" => HOST,
        "user" => USER,
        "src_ip" => SRC_IP,
        "dst_ip" => DST_IP,
        "process" => PROCESS,
        "hash" => HASH,
        "domain" => DOMAIN,
        _ => return None,
    })
}

const HOST: &[&str] = &[
    "Computer",
    "Hostname",
    "host.name",
    "hostname",
    "host",
    "ComputerName",
    "DeviceName",
];
// The account acted *on* (logons) before the one acting, then the generic names.
const USER: &[&str] = &[
    "TargetUserName",
    "User",
    "SubjectUserName",
    "user.name",
    "AccountName",
    "UserName",
    "userIdentity.userName",
    "userIdentity.arn",
    "userPrincipalName",
    "user",
    "usrName",
    "suser",
];
const SRC_IP: &[&str] = &[
    "IpAddress",
    "SourceIp",
    "source.ip",
    "src_ip",
    "id.orig_h",
    "sourceIPAddress",
    "SourceAddress",
    "src",
    "srcip",
    "ipAddress",
];
const DST_IP: &[&str] = &[
    "DestinationIp",
    "destination.ip",
    "dest_ip",
    "id.resp_h",
    "DestAddress",
    "dst",
    "dstip",
];
const PROCESS: &[&str] = &[
    "Image",
    "NewProcessName",
    "process.executable",
    "ProcessName",
    "exe",
    "process.name",
];
const HASH: &[&str] = &[
    "sha256",
    "file.hash.sha256",
    "hash.sha256",
    "md5",
    "file.hash.md5",
];
const DOMAIN: &[&str] = &[
    "QueryName",
    "query",
    "dns.question.name",
    "DestinationHostname",
    "url.domain",
    "server_name",
    "cs-host",
];

/// Values that name nobody: Windows writes `-` for an absent field.
fn meaningful(s: &str) -> bool {
    !(s.is_empty() || s == "-" || s == "::" || s == "0.0.0.0" || s.eq_ignore_ascii_case("n/a"))
}

fn first(e: &Event, names: &[&str]) -> Option<String> {
    names.iter().find_map(|k| match e.get(k) {
        Some(Value::Str(s)) if meaningful(s.as_str()) => Some(s.as_str().to_owned()),
        Some(Value::Int(i)) => Some(i.to_string()),
        _ => None,
    })
}

/// The SHA-256 (else MD5, else SHA-1) out of Sysmon's `Hashes` list
/// (`SHA1=..,MD5=..,SHA256=..`).
fn sysmon_hash(e: &Event) -> Option<String> {
    let list = e.get_str("Hashes")?;
    let mut best: Option<(u8, String)> = None;
    for part in list.split(',') {
        let Some((alg, value)) = part.split_once('=') else {
            continue;
        };
        let rank = match alg.trim().to_ascii_uppercase().as_str() {
            "SHA256" => 3,
            "MD5" => 2,
            "SHA1" => 1,
            _ => 0,
        };
        if rank > 0 && best.as_ref().is_none_or(|(r, _)| rank > *r) {
            best = Some((rank, value.trim().to_ascii_lowercase()));
        }
    }
    best.map(|(_, v)| v)
}

/// The host an event is about.
pub fn host_of(e: &Event) -> Option<String> {
    first(e, HOST)
}

impl Entities {
    pub fn of(e: &Event) -> Entities {
        Entities {
            host: host_of(e),
            user: first(e, USER)
                .filter(|u| !is_machine_account(u))
                .or_else(|| {
                    // A machine account is still better than nothing when it is all there is.
                    first(e, USER)
                }),
            src_ip: first(e, SRC_IP),
            dst_ip: first(e, DST_IP),
            process: first(e, PROCESS),
            hash: sysmon_hash(e).or_else(|| first(e, HASH)),
            domain: first(e, DOMAIN),
        }
    }

    /// `(kind, value)` pairs, in a fixed order.
    pub fn pairs(&self) -> Vec<(&'static str, &str)> {
        [
            ("host", &self.host),
            ("user", &self.user),
            ("src_ip", &self.src_ip),
            ("dst_ip", &self.dst_ip),
            ("process", &self.process),
            ("hash", &self.hash),
            ("domain", &self.domain),
        ]
        .into_iter()
        .filter_map(|(k, v)| v.as_deref().map(|v| (k, v)))
        .collect()
    }

    /// The entities that tie alerts into one incident: the host, and the user when it
    /// is a person rather than a built-in account every machine has.
    pub fn grouping_keys(&self) -> Vec<(&'static str, String)> {
        let mut keys = Vec::new();
        if let Some(h) = &self.host {
            keys.push(("host", h.to_ascii_lowercase()));
        }
        if let Some(u) = &self.user {
            if !is_builtin_account(u) {
                keys.push(("user", user_key(u)));
            }
        }
        keys
    }
}

/// `DOMAIN\name`, `name@domain` and `name` name one account: the bare name, lowered.
pub fn user_key(u: &str) -> String {
    let bare = u.rsplit('\\').next().unwrap_or(u);
    let bare = bare.split('@').next().unwrap_or(bare);
    bare.to_ascii_lowercase()
}

pub fn is_machine_account(u: &str) -> bool {
    u.ends_with('$')
}

/// Accounts present on every Windows or Linux machine: grouping on them would tie
/// unrelated hosts together.
pub fn is_builtin_account(u: &str) -> bool {
    let k = user_key(u);
    is_machine_account(u)
        || matches!(
            k.as_str(),
            "system"
                | "local service"
                | "localservice"
                | "network service"
                | "networkservice"
                | "anonymous logon"
                | "dwm-1"
                | "dwm-2"
                | "umfd-0"
                | "umfd-1"
                | "font driver host"
                | "window manager"
        )
}

/// Accounts whose compromise means more: administrators, SYSTEM, root.
pub fn is_privileged_account(u: &str) -> bool {
    let k = user_key(u);
    k == "administrator"
        || k == "admin"
        || k == "root"
        || k == "system"
        || k.starts_with("adm-")
        || k.starts_with("admin_")
        || k.ends_with("-adm")
        || k.ends_with("_admin")
        || u.to_ascii_lowercase().contains("domain admins")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn event(fields: &[(&str, &str)]) -> Event {
        Event::from_fields(
            fields
                .iter()
                .map(|(k, v)| ((*k).into(), Value::from(*v)))
                .collect(),
        )
    }

    #[test]
    fn windows_logon_names_the_target_account_and_the_address() {
        let e = event(&[
            ("Computer", "DC01.corp.local"),
            ("SubjectUserName", "DC01$"),
            ("TargetUserName", "alice"),
            ("IpAddress", "10.0.0.5"),
        ]);
        let en = Entities::of(&e);
        assert_eq!(en.host.as_deref(), Some("DC01.corp.local"));
        assert_eq!(en.user.as_deref(), Some("alice"));
        assert_eq!(en.src_ip.as_deref(), Some("10.0.0.5"));
        assert_eq!(
            en.grouping_keys(),
            vec![("host", "dc01.corp.local".into()), ("user", "alice".into())]
        );
    }

    #[test]
    fn dashes_are_absent_and_built_in_accounts_do_not_group() {
        let e = event(&[
            ("Computer", "WS1"),
            ("User", "NT AUTHORITY\\SYSTEM"),
            ("IpAddress", "-"),
            ("Hashes", "SHA1=AA,MD5=BB,SHA256=CC"),
        ]);
        let en = Entities::of(&e);
        assert_eq!(en.src_ip, None);
        assert_eq!(en.hash.as_deref(), Some("cc"));
        assert_eq!(en.grouping_keys(), vec![("host", "ws1".into())]);
        assert!(is_privileged_account("NT AUTHORITY\\SYSTEM"));
        assert_eq!(user_key("CORP\\Bob"), "bob");
        assert_eq!(user_key("bob@corp.example"), "bob");
    }
}
