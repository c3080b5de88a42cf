//! What the agent keeps on disk (`<state dir>/agent.json`, mode 0600): its identity,
//! the server's key and certificate pin, the last command number it accepted, and the
//! containment it holds (so a restart re-applies it and never forgets a block).
//!
//! Written to a temporary file, synced, and renamed over the old one: a crash leaves
//! the old state or the new, never half of one.

use std::path::{Path, PathBuf};

use ipnet::IpNet;
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AgentState {
    pub server: String,
    /// SHA-256 of the server's certificate, hex.
    pub fingerprint: String,
    pub agent: String,
    pub secret: String,
    pub tenant: String,
    /// The server's command key, base64.
    pub server_key: String,
    pub last_number: u64,
    #[serde(default)]
    pub isolated: bool,
    #[serde(default, with = "koban_respond::action::net::list")]
    pub blocked: Vec<IpNet>,
    #[serde(default)]
    pub blocked_domains: Vec<String>,
    /// Quarantined files: original path → where the file is kept now.
    #[serde(default)]
    pub quarantine: Vec<(String, String)>,
}

pub fn path(dir: &Path) -> PathBuf {
    dir.join("agent.json")
}

pub fn load(dir: &Path) -> Result<AgentState, String> {
    let p = path(dir);
    let text =
        std::fs::read_to_string(&p).map_err(|e| format!("{}: {e} (enrol first)", p.display()))?;
    serde_json::from_str(&text).map_err(|e| format!("{}: {e}", p.display()))
}

pub fn save(dir: &Path, s: &AgentState) -> Result<(), String> {
    use std::io::Write;
    let p = path(dir);
    let tmp = dir.join("agent.json.tmp");
    let write = || -> std::io::Result<()> {
        std::fs::create_dir_all(dir)?;
        let mut opts = std::fs::OpenOptions::new();
        opts.write(true).create(true).truncate(true);
        {
            use std::os::unix::fs::OpenOptionsExt;
            opts.mode(0o600);
        }
        let mut f = opts.open(&tmp)?;
        f.write_all(
            serde_json::to_string_pretty(s)
                .unwrap_or_default()
                .as_bytes(),
        )?;
        f.sync_all()?;
        std::fs::rename(&tmp, &p)?;
        std::fs::File::open(dir)?.sync_all()
    };
    write().map_err(|e| format!("{}: {e}", p.display()))
}
