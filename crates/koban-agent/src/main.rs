//! `koban-agent`: enrol once, then heartbeat, carry out signed commands, report.
//!
//! ```text
//! koban-agent enrol --server https://HOST:PORT --server-cert cert.pem --token kbe_… --state DIR
//! koban-agent run   --state DIR [--tail FILE]… [--journal] [--probe ADDR:PORT]… [--interval-ms 2000]
//! koban-agent verify --state DIR < command.json     (checks a signed command; acts on nothing)
//! ```

mod client;
mod exec;
mod hosts;
mod journal;
mod spool;
mod state;
mod tail;

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine;
use clap::{Parser, Subcommand};
use koban_respond::{CommandVerifier, SignedCommand};
use serde_json::json;

use client::Client;
use state::AgentState;

#[derive(Parser)]
#[command(
    name = "koban-agent",
    version,
    about = "The Koban endpoint agent: carries out signed response actions and reports what it observes"
)]
struct Cli {
    #[command(subcommand)]
    command: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    /// Enrol with a one-time token; writes the agent's identity to the state dir.
    Enrol {
        /// The server, https://HOST:PORT
        #[arg(long)]
        server: String,
        /// The server's certificate (PEM); the agent trusts exactly this one.
        #[arg(long, conflicts_with = "fingerprint")]
        server_cert: Option<PathBuf>,
        /// Or its SHA-256 fingerprint (hex, colons allowed).
        #[arg(long)]
        fingerprint: Option<String>,
        /// The one-time enrolment token (`POST /api/v1/agents/enrol-tokens`).
        #[arg(long)]
        token: String,
        /// Where the agent keeps its state (mode 0600).
        #[arg(long, default_value = "/var/lib/koban-agent")]
        state: PathBuf,
        /// The name this host is known by (default: the kernel's hostname).
        #[arg(long)]
        hostname: Option<String>,
    },
    /// Heartbeat, carry out commands, report; runs until killed.
    Run {
        #[arg(long, default_value = "/var/lib/koban-agent")]
        state: PathBuf,
        /// An address isolation must cut off (checked after isolating, to verify it).
        #[arg(long)]
        probe: Vec<SocketAddr>,
        /// A log file to ship (followed across rotation); spooled on disk while the
        /// server is away.
        #[arg(long)]
        tail: Vec<String>,
        /// Ship the systemd journal too (through journalctl, from its cursor).
        #[arg(long)]
        journal: bool,
        /// The hosts file domain blocks are written to.
        #[arg(long, default_value = "/etc/hosts")]
        hosts_file: PathBuf,
        #[arg(long, default_value_t = 2000)]
        interval_ms: u64,
    },
    /// Reads a signed command (JSON) on stdin and says whether this agent would accept
    /// it; nothing is carried out or remembered.
    Verify {
        #[arg(long, default_value = "/var/lib/koban-agent")]
        state: PathBuf,
    },
}

fn main() {
    let cli = Cli::parse();
    let r = match cli.command {
        Cmd::Enrol {
            server,
            server_cert,
            fingerprint,
            token,
            state,
            hostname,
        } => enrol(
            &server,
            server_cert.as_deref(),
            fingerprint.as_deref(),
            &token,
            &state,
            hostname,
        ),
        Cmd::Run {
            state,
            probe,
            tail,
            journal,
            hosts_file,
            interval_ms,
        } => run(
            &state,
            &probe,
            &Sources {
                files: tail,
                journal_since_s: journal.then(|| now_ms() / 1000),
                hosts_file,
            },
            Duration::from_millis(interval_ms.max(100)),
        ),
        Cmd::Verify { state } => verify(&state),
    };
    if let Err(e) = r {
        eprintln!("koban-agent: {e}");
        std::process::exit(1);
    }
}

fn pin(cert: Option<&Path>, fingerprint: Option<&str>) -> Result<[u8; 32], String> {
    use rustls_pki_types::pem::PemObject;
    match (cert, fingerprint) {
        (Some(p), _) => {
            let der = rustls_pki_types::CertificateDer::from_pem_file(p)
                .map_err(|e| format!("{}: {e}", p.display()))?;
            Ok(client::fingerprint(der.as_ref()))
        }
        (None, Some(f)) => client::parse_fingerprint(f)
            .ok_or_else(|| format!("--fingerprint {f:?}: 64 hex digits, colons allowed")),
        (None, None) => Err(
            "give --server-cert or --fingerprint: the agent pins the server's certificate".into(),
        ),
    }
}

fn enrol(
    server: &str,
    cert: Option<&Path>,
    fingerprint: Option<&str>,
    token: &str,
    dir: &Path,
    hostname: Option<String>,
) -> Result<(), String> {
    let pin = pin(cert, fingerprint)?;
    let client = Client::new(server, pin).map_err(|e| e.to_string())?;
    let hostname = match hostname {
        Some(h) => h,
        None => std::fs::read_to_string("/proc/sys/kernel/hostname")
            .map(|h| h.trim().to_owned())
            .map_err(|e| format!("hostname: {e}; give --hostname"))?,
    };
    let v = client
        .post(
            "/api/v1/agents/enrol",
            None,
            &json!({ "token": token, "hostname": hostname }),
        )
        .map_err(|e| format!("enrolment: {e}"))?;
    let field = |k: &str| -> Result<String, String> {
        v[k].as_str()
            .map(str::to_owned)
            .ok_or_else(|| format!("enrolment answer without {k:?}"))
    };
    let st = AgentState {
        server: server.to_owned(),
        fingerprint: client::hex(&pin),
        agent: field("agent")?,
        secret: field("secret")?,
        tenant: field("tenant")?,
        server_key: field("server_key")?,
        last_number: 0,
        isolated: false,
        blocked: Vec::new(),
        blocked_domains: Vec::new(),
        quarantine: Vec::new(),
    };
    state::save(dir, &st)?;
    println!("enrolled: agent {} of tenant {}", st.agent, st.tenant);
    Ok(())
}

fn verifier(st: &AgentState) -> Result<CommandVerifier, String> {
    let key = B64
        .decode(st.server_key.trim())
        .map_err(|e| format!("server key: {e}"))?;
    CommandVerifier::new(&key, &st.agent, st.last_number).map_err(|e| e.to_string())
}

fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}

/// Lines per spool append and per request to the server.
const BATCH: usize = 5000;
/// About this many bytes of lines per request (well under the server's body limit,
/// 32 MiB by default, even when JSON escaping doubles a line).
const SHIP_BYTES: usize = 1 << 20;

/// Spools what the tailed files gained, then ships the backlog until the server stops
/// answering. Returns whether the server took everything.
/// What the agent ships: files it tails, and the journal from a start time.
struct Sources {
    files: Vec<String>,
    /// Unix seconds to read the journal from before its first cursor; None: no journal.
    journal_since_s: Option<i64>,
    hosts_file: PathBuf,
}

fn ship(
    client: &Client,
    auth: &str,
    spool: &mut spool::Spool,
    sources: &Sources,
) -> Result<bool, String> {
    if let Some(since) = sources.journal_since_s {
        loop {
            let entries = journal::read_new(spool.cursor(journal::SOURCE), since, BATCH)?;
            if entries.is_empty() {
                break;
            }
            spool.append_journal(journal::SOURCE, &entries)?;
        }
    }
    for f in &sources.files {
        loop {
            let lines = tail::read_new(f, spool.position(f), BATCH)?;
            if lines.is_empty() {
                break;
            }
            spool.append(f, &lines)?;
        }
    }
    while spool.backlog() > 0 {
        let (first, lines) = spool.pending(BATCH, SHIP_BYTES)?;
        if lines.is_empty() {
            break;
        }
        let body = json!({ "first": first, "lines": lines });
        match client.post("/api/v1/agents/logs", Some(auth), &body) {
            Ok(v) => match v["acked"].as_u64() {
                Some(acked) => spool.ack(acked)?,
                None => {
                    return Err(format!(
                        "the server's answer to shipped logs has no \"acked\": {v}"
                    ))
                }
            },
            Err(_) => return Ok(false),
        }
    }
    Ok(true)
}

fn run(
    dir: &Path,
    probes: &[SocketAddr],
    sources: &Sources,
    interval: Duration,
) -> Result<(), String> {
    let mut st = state::load(dir)?;
    let pin =
        client::parse_fingerprint(&st.fingerprint).ok_or("the state's fingerprint is damaged")?;
    let client = Client::new(&st.server, pin).map_err(|e| e.to_string())?;
    let servers = client.server_addrs().map_err(|e| e.to_string())?;
    let host = exec::Host {
        servers: &servers,
        probes,
        dir,
        hosts_file: &sources.hosts_file,
    };
    exec::reapply(&st, &host)?;
    let mut verifier = verifier(&st)?;
    let auth = format!("Agent {}:{}", st.agent, st.secret);
    let mut refused = 0u64;
    let mut spool = spool::Spool::open(&dir.join("spool"))?;
    let mut server_up = true;
    eprintln!(
        "koban-agent {} of {}: talking to {}",
        st.agent, st.tenant, st.server
    );
    loop {
        // Logs first: the spool fills whether or not the server answers.
        match ship(&client, &auth, &mut spool, sources) {
            Ok(true) => {
                if !server_up {
                    eprintln!("koban-agent: the server is back; spool drained");
                    server_up = true;
                }
            }
            Ok(false) => {
                if server_up {
                    eprintln!(
                        "koban-agent: the server does not answer; spooling ({} lines waiting)",
                        spool.backlog()
                    );
                    server_up = false;
                }
            }
            Err(e) => eprintln!("koban-agent: logs: {e}"),
        }
        let status = json!({
            "isolated": st.isolated,
            "blocked": st.blocked.iter().map(ToString::to_string).collect::<Vec<_>>(),
            "quarantined": st.quarantine.len(),
            "refused_commands": refused,
            "spooled_lines": spool.backlog(),
            "version": env!("CARGO_PKG_VERSION"),
        });
        let commands = match client.post(
            "/api/v1/agents/poll",
            Some(&auth),
            &json!({ "status": status }),
        ) {
            Ok(v) => v["commands"].as_array().cloned().unwrap_or_default(),
            Err(e) => {
                if server_up {
                    eprintln!("koban-agent: poll: {e}");
                }
                std::thread::sleep(interval);
                continue;
            }
        };
        for c in commands {
            let signed: SignedCommand = match serde_json::from_value(c) {
                Ok(s) => s,
                Err(e) => {
                    refused += 1;
                    eprintln!("koban-agent: refused a command: not a signed command: {e}");
                    continue;
                }
            };
            let command = match verifier.accept(&signed, now_ms()) {
                Ok(c) => c,
                Err(why) => {
                    refused += 1;
                    eprintln!("koban-agent: refused a command: {why}");
                    continue;
                }
            };
            // The number is on disk before anything is done: a crash now can never
            // lead to the same command being carried out twice from a replay.
            st.last_number = verifier.last_number();
            state::save(dir, &st)?;
            let report = match &command.action {
                koban_respond::Action::CollectFiles { paths } => {
                    collect(&client, &auth, command.number, paths)
                }
                action => exec::run(action, &mut st, &host),
            };
            state::save(dir, &st)?;
            eprintln!(
                "koban-agent: command {} ({}): ran {}, verified {}: {}",
                command.number, command.action, report.ran, report.verified, report.detail
            );
            let body = json!({
                "number": command.number,
                "ran": report.ran,
                "verified": report.verified,
                "detail": report.detail,
                "observed": report.observed,
            });
            // The server re-sends an unreported command under a new number, so a lost
            // report costs a repeat of an idempotent action, never a lost one.
            if let Err(e) = client.post("/api/v1/agents/result", Some(&auth), &body) {
                eprintln!("koban-agent: reporting command {}: {e}", command.number);
            }
        }
        std::thread::sleep(interval);
    }
}

fn verify(dir: &Path) -> Result<(), String> {
    let st = state::load(dir)?;
    let mut verifier = verifier(&st)?;
    let mut text = String::new();
    std::io::Read::read_to_string(&mut std::io::stdin(), &mut text).map_err(|e| e.to_string())?;
    let signed: SignedCommand =
        serde_json::from_str(&text).map_err(|e| format!("refused: not a signed command: {e}"))?;
    match verifier.accept(&signed, now_ms()) {
        Ok(c) => {
            println!("accepted: command {} ({})", c.number, c.action);
            Ok(())
        }
        Err(why) => Err(format!("refused: {why}")),
    }
}

/// The largest file the agent uploads for `collect_files`.
const MAX_COLLECT_BYTES: u64 = 16 << 20;

/// `collect_files`: each file read, hashed and uploaded for command `number`; verified
/// when the server kept every one with the same SHA-256.
fn collect(client: &Client, auth: &str, number: u64, paths: &[String]) -> exec::Report {
    let mut observed = Vec::new();
    let mut kept = 0;
    for p in paths {
        let entry = match std::fs::metadata(p) {
            Err(e) => json!({ "path": p, "kept": false, "why": e.to_string() }),
            Ok(m) if !m.is_file() => {
                json!({ "path": p, "kept": false, "why": "not a regular file" })
            }
            Ok(m) if m.len() > MAX_COLLECT_BYTES => json!({ "path": p, "kept": false,
                "why": format!("{} bytes, over the {MAX_COLLECT_BYTES}-byte limit", m.len()) }),
            Ok(_) => match std::fs::read(p) {
                Err(e) => json!({ "path": p, "kept": false, "why": e.to_string() }),
                Ok(data) => {
                    let sha = client::hex(&client::fingerprint(&data));
                    let body = json!({ "number": number, "path": p, "sha256": sha,
                                       "data": B64.encode(&data) });
                    match client.post("/api/v1/agents/files", Some(auth), &body) {
                        Ok(v) if v["matches"].as_bool() == Some(true) => {
                            kept += 1;
                            json!({ "path": p, "kept": true, "bytes": data.len(), "sha256": sha })
                        }
                        Ok(v) => json!({ "path": p, "kept": false, "sha256": sha,
                                         "why": format!("the server's hash differs: {v}") }),
                        Err(e) => json!({ "path": p, "kept": false, "why": e.to_string() }),
                    }
                }
            },
        };
        observed.push(entry);
    }
    exec::Report {
        ran: true,
        verified: kept == paths.len(),
        detail: format!(
            "{kept}/{} files kept on the server, SHA-256 checked on both sides",
            paths.len()
        ),
        observed: serde_json::Value::Array(observed),
    }
}
