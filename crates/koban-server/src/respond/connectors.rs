//! Connectors: where `webhook` and `command` actions run — on the server, towards a
//! firewall, an identity provider, a ticketing system.
//!
//! A **webhook** POSTs JSON signed with HMAC-SHA256 over `"<timestamp>.<body>"`
//! (`X-Koban-Timestamp`, `X-Koban-Signature: sha256=<hex>`), so the receiver can tell
//! Koban's requests from anyone else's and refuse old ones. HTTPS checks the receiver's
//! certificate against `ca_file` (default: the system's bundle); plain HTTP only to a
//! loopback address. A **command** runs one configured program (absolute path, no
//! shell, a clean environment) with the configured arguments and then the action's.
//!
//! Verification is what the other side confirms: a 2xx answer whose JSON says
//! `"verified": true`, or a command's exit 0 with a line `verified` on its output. A
//! run the other side does not confirm is `unverified`, never `verified`. An action
//! interrupted by a crash stays `sent`: a webhook need not be idempotent, so it is not
//! sent again on its own.

use std::io::{Read, Write};
use std::net::{IpAddr, TcpStream, ToSocketAddrs};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use koban_respond::Action;
use serde_json::{json, Value};

use super::{Outcome, ResponseBook};

/// The keys of a `[[respond.connectors]]` table.
pub const CONNECTOR_KEYS: &[&str] = &[
    "name",
    "kind",
    "url",
    "secret_env",
    "ca_file",
    "program",
    "args",
    "timeout_secs",
];

const SYSTEM_CA: &str = "/etc/ssl/certs/ca-certificates.crt";
const MAX_ANSWER: usize = 64 << 10;

#[derive(Clone)]
pub struct ConnectorConfig {
    pub name: String,
    pub kind: ConnectorKind,
    pub timeout_ms: u64,
}

impl std::fmt::Debug for ConnectorConfig {
    // Never the secret.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let kind = match &self.kind {
            ConnectorKind::Webhook { url, .. } => format!("webhook {}", url.text),
            ConnectorKind::Command { program, .. } => format!("command {}", program.display()),
        };
        write!(f, "Connector({} {kind})", self.name)
    }
}

#[derive(Clone)]
pub enum ConnectorKind {
    Webhook {
        url: WebhookUrl,
        secret: String,
        ca_file: Option<PathBuf>,
    },
    Command {
        program: PathBuf,
        args: Vec<String>,
    },
}

/// `https://host[:port]/path`, or `http://` to a loopback address.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WebhookUrl {
    pub text: String,
    pub tls: bool,
    pub host: String,
    pub port: u16,
    pub path: String,
}

impl WebhookUrl {
    pub fn parse(s: &str) -> Result<WebhookUrl, String> {
        let (tls, rest) = if let Some(r) = s.strip_prefix("https://") {
            (true, r)
        } else if let Some(r) = s.strip_prefix("http://") {
            (false, r)
        } else {
            return Err(format!("{s:?}: a webhook URL starts with https://"));
        };
        let (authority, path) = match rest.find('/') {
            Some(i) => (&rest[..i], &rest[i..]),
            None => (rest, "/"),
        };
        let (host, port) = match authority.rsplit_once(':') {
            Some((h, p)) if !h.ends_with(']') || authority.starts_with('[') => (
                h.trim_start_matches('[').trim_end_matches(']'),
                p.parse::<u16>()
                    .map_err(|_| format!("{s:?}: port {p:?} is not a number"))?,
            ),
            _ => (authority, if tls { 443 } else { 80 }),
        };
        if host.is_empty() || host.contains(['@', ' ']) {
            return Err(format!("{s:?}: no host"));
        }
        if !tls && !host.parse::<IpAddr>().is_ok_and(|ip| ip.is_loopback()) && host != "localhost" {
            return Err(format!(
                "{s:?}: plain http only to a loopback address; use https"
            ));
        }
        Ok(WebhookUrl {
            text: s.to_owned(),
            tls,
            host: host.to_owned(),
            port,
            path: path.to_owned(),
        })
    }
}

/// Runs every queued connector action; returns how many ran.
pub fn run_connectors(book: &ResponseBook, connectors: &[ConnectorConfig], now: i64) -> usize {
    let queue = match book.connector_queue() {
        Ok(q) => q,
        Err(e) => {
            tracing::error!(error = %e, "connector queue");
            return 0;
        }
    };
    let mut ran = 0;
    for (id, tenant, action) in queue {
        let (name, payload) = match &action {
            Action::Webhook { connector, body } => (connector, Payload::Body(body)),
            Action::Command { connector, args } => (connector, Payload::Args(args)),
            _ => continue,
        };
        let outcome = match connectors.iter().find(|c| &c.name == name) {
            None => Outcome {
                number: 0,
                ran: false,
                verified: false,
                detail: format!("connector {name:?} is no longer configured"),
                observed: Value::Null,
            },
            Some(c) => {
                if let Err(e) = book.connector_sent(id, name, now) {
                    tracing::error!(action = id, error = %e, "connector");
                    continue;
                }
                run_one(c, id, &tenant, payload, now)
            }
        };
        if let Err(e) = book.connector_result(id, name, &outcome, crate::state::now_ms()) {
            tracing::error!(action = id, error = %e, "connector result");
        }
        tracing::info!(action = id, connector = %name, ran = outcome.ran, verified = outcome.verified, "connector");
        ran += 1;
    }
    ran
}

enum Payload<'a> {
    Body(&'a Value),
    Args(&'a [String]),
}

fn run_one(c: &ConnectorConfig, id: i64, tenant: &str, p: Payload<'_>, now: i64) -> Outcome {
    let timeout = Duration::from_millis(c.timeout_ms);
    let result = match (&c.kind, p) {
        (
            ConnectorKind::Webhook {
                url,
                secret,
                ca_file,
            },
            Payload::Body(body),
        ) => {
            let doc = json!({
                "action": id, "tenant": tenant, "connector": c.name, "body": body, "sent_ms": now,
            })
            .to_string();
            post(url, secret, ca_file.as_deref(), &doc, now, timeout).map(|(status, answer)| {
                let confirmed = serde_json::from_str::<Value>(&answer)
                    .ok()
                    .and_then(|v| v["verified"].as_bool())
                    .unwrap_or(false);
                let ok = (200..300).contains(&status);
                Outcome {
                    number: 0,
                    ran: ok,
                    verified: ok && confirmed,
                    detail: match (ok, confirmed) {
                        (true, true) => format!("{} answered {status}, verified", url.text),
                        (true, false) => format!("{} answered {status} without confirming the state", url.text),
                        (false, _) => format!("{} answered {status}", url.text),
                    },
                    observed: json!({ "status": status, "answer": answer.chars().take(2000).collect::<String>() }),
                }
            })
        }
        (ConnectorKind::Command { program, args }, Payload::Args(extra)) => {
            command(program, args, extra, id, tenant, timeout)
        }
        _ => Err("the action's kind does not fit this connector".to_owned()),
    };
    result.unwrap_or_else(|e| Outcome {
        number: 0,
        ran: false,
        verified: false,
        detail: e,
        observed: Value::Null,
    })
}

/// `sha256=<hex>` of HMAC-SHA256(secret, "<timestamp>.<body>").
pub fn signature(secret: &str, timestamp: i64, body: &str) -> String {
    let key = ring::hmac::Key::new(ring::hmac::HMAC_SHA256, secret.as_bytes());
    let tag = ring::hmac::sign(&key, format!("{timestamp}.{body}").as_bytes());
    let hex: String = tag.as_ref().iter().map(|b| format!("{b:02x}")).collect();
    format!("sha256={hex}")
}

fn post(
    url: &WebhookUrl,
    secret: &str,
    ca_file: Option<&std::path::Path>,
    body: &str,
    now: i64,
    timeout: Duration,
) -> Result<(u16, String), String> {
    let addr = (url.host.as_str(), url.port)
        .to_socket_addrs()
        .map_err(|e| format!("{}: {e}", url.host))?
        .next()
        .ok_or_else(|| format!("{}: no address", url.host))?;
    let tcp = TcpStream::connect_timeout(&addr, timeout).map_err(|e| format!("{addr}: {e}"))?;
    tcp.set_read_timeout(Some(timeout))
        .map_err(|e| e.to_string())?;
    tcp.set_write_timeout(Some(timeout))
        .map_err(|e| e.to_string())?;
    let request = format!(
        "POST {} HTTP/1.1\r\nHost: {}\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\
X-Koban-Timestamp: {now}\r\nX-Koban-Signature: {}\r\nConnection: close\r\nUser-Agent: koban\r\n\r\n{body}",
        url.path,
        url.host,
        body.len(),
        signature(secret, now, body),
    );
    let mut answer = Vec::new();
    if url.tls {
        let config = tls_config(ca_file)?;
        let name = rustls_pki_types::ServerName::try_from(url.host.clone())
            .map_err(|e| format!("{}: {e}", url.host))?;
        let conn = rustls::ClientConnection::new(config, name).map_err(|e| e.to_string())?;
        let mut s = rustls::StreamOwned::new(conn, tcp);
        s.write_all(request.as_bytes())
            .map_err(|e| format!("{}: {e}", url.text))?;
        read_capped(&mut s, &mut answer);
    } else {
        let mut s = tcp;
        s.write_all(request.as_bytes())
            .map_err(|e| format!("{}: {e}", url.text))?;
        read_capped(&mut s, &mut answer);
    }
    let text = String::from_utf8_lossy(&answer);
    let status = text
        .split(' ')
        .nth(1)
        .and_then(|c| c.parse::<u16>().ok())
        .ok_or_else(|| format!("{}: no HTTP answer", url.text))?;
    let body = text
        .split_once("\r\n\r\n")
        .map_or("", |(_, b)| b)
        .to_owned();
    Ok((status, body))
}

/// Reads until the peer closes, at most `MAX_ANSWER` bytes; an error ends the read
/// (a TLS peer that closes without close_notify still gave its answer).
fn read_capped(r: &mut impl Read, out: &mut Vec<u8>) {
    let mut buf = [0u8; 8192];
    while out.len() < MAX_ANSWER {
        match r.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => out.extend_from_slice(&buf[..n]),
        }
    }
}

fn tls_config(ca_file: Option<&std::path::Path>) -> Result<Arc<rustls::ClientConfig>, String> {
    use rustls_pki_types::pem::PemObject;
    let path = ca_file.unwrap_or(std::path::Path::new(SYSTEM_CA));
    let mut roots = rustls::RootCertStore::empty();
    let certs = rustls_pki_types::CertificateDer::pem_file_iter(path)
        .map_err(|e| format!("{}: {e}", path.display()))?;
    for c in certs {
        let c = c.map_err(|e| format!("{}: {e}", path.display()))?;
        roots
            .add(c)
            .map_err(|e| format!("{}: {e}", path.display()))?;
    }
    let config = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .map_err(|e| e.to_string())?
    .with_root_certificates(roots)
    .with_no_client_auth();
    Ok(Arc::new(config))
}

fn command(
    program: &std::path::Path,
    args: &[String],
    extra: &[String],
    id: i64,
    tenant: &str,
    timeout: Duration,
) -> Result<Outcome, String> {
    let mut child = std::process::Command::new(program)
        .args(args)
        .args(extra)
        .env_clear()
        .env("PATH", "/usr/sbin:/usr/bin:/sbin:/bin")
        .env("KOBAN_ACTION", id.to_string())
        .env("KOBAN_TENANT", tenant)
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .map_err(|e| format!("{}: {e}", program.display()))?;
    let started = Instant::now();
    let status = loop {
        match child.try_wait() {
            Ok(Some(s)) => break s,
            Ok(None) if started.elapsed() > timeout => {
                let _ = child.kill();
                let _ = child.wait();
                return Err(format!(
                    "{} ran over {} s and was killed",
                    program.display(),
                    timeout.as_secs()
                ));
            }
            Ok(None) => std::thread::sleep(Duration::from_millis(50)),
            Err(e) => return Err(e.to_string()),
        }
    };
    let mut stdout = String::new();
    let mut stderr = String::new();
    if let Some(mut o) = child.stdout.take() {
        let _ = o
            .by_ref()
            .take(MAX_ANSWER as u64)
            .read_to_string(&mut stdout);
    }
    if let Some(mut e) = child.stderr.take() {
        let _ = e
            .by_ref()
            .take(MAX_ANSWER as u64)
            .read_to_string(&mut stderr);
    }
    let code = status.code();
    let confirmed = stdout
        .lines()
        .any(|l| l.trim().eq_ignore_ascii_case("verified"));
    let ok = status.success();
    Ok(Outcome {
        number: 0,
        ran: ok,
        verified: ok && confirmed,
        detail: match (ok, confirmed) {
            (true, true) => format!("{} exited 0, verified", program.display()),
            (true, false) => format!(
                "{} exited 0 without confirming the state",
                program.display()
            ),
            (false, _) => format!(
                "{} exited {code:?}: {}",
                program.display(),
                stderr.trim().chars().take(300).collect::<String>()
            ),
        },
        observed: json!({ "exit": code, "stdout": stdout.chars().take(2000).collect::<String>() }),
    })
}
