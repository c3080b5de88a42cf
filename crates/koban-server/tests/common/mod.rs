//! Shared by the server tests: temp dirs, a real file-backed pipeline, an in-process
//! app, and a small HTTPS client over tokio-rustls.
#![allow(dead_code)]

use std::io::{BufRead, Write};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use koban_server::state::State;
use koban_server::{AppState, Intake, Pipeline, PipelineError, WalRecord};
use koban_wal::{FsyncPolicy, Wal, WalOptions};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

pub fn temp_dir(name: &str) -> PathBuf {
    static N: AtomicU64 = AtomicU64::new(0);
    let dir = std::env::temp_dir().join(format!(
        "koban-server-{name}-{}-{}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    ));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("temp dir");
    dir
}

/// A real consumer: appends each record as a line to a file and fsyncs it. Its applied
/// seq is the last line's seq, so it is exactly as durable as what it stored.
pub struct FilePipeline {
    path: PathBuf,
    applied: u64,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Stored {
    pub seq: u64,
    pub tenant: String,
    pub source: String,
    pub kind: String,
    pub payload: String,
}

impl FilePipeline {
    pub fn open(path: &Path) -> FilePipeline {
        let applied = read_stored(path).last().map_or(0, |s| s.seq);
        FilePipeline {
            path: path.to_path_buf(),
            applied,
        }
    }
}

pub fn read_stored(path: &Path) -> Vec<Stored> {
    let Ok(f) = std::fs::File::open(path) else {
        return Vec::new();
    };
    std::io::BufReader::new(f)
        .lines()
        .map_while(Result::ok)
        .filter_map(|l| {
            let mut p = l.splitn(5, '\t');
            Some(Stored {
                seq: p.next()?.parse().ok()?,
                tenant: p.next()?.into(),
                source: p.next()?.into(),
                kind: p.next()?.into(),
                payload: p.next()?.replace("\\n", "\n"),
            })
        })
        .collect()
}

impl Pipeline for FilePipeline {
    fn applied_seq(&self) -> u64 {
        self.applied
    }

    fn apply(&mut self, records: &[WalRecord]) -> Result<u64, PipelineError> {
        let mut f = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.path)
            .map_err(|e| PipelineError(e.to_string()))?;
        let mut buf = String::new();
        for r in records {
            assert_eq!(r.seq, self.applied + 1, "records arrive in order, once");
            self.applied = r.seq;
            let payload = String::from_utf8_lossy(&r.record.payload).replace('\n', "\\n");
            buf.push_str(&format!(
                "{}\t{}\t{}\t{}\t{}\n",
                r.seq,
                r.record.tenant,
                r.record.source,
                r.record.kind.as_str(),
                payload
            ));
        }
        f.write_all(buf.as_bytes())
            .and_then(|_| f.sync_data())
            .map_err(|e| PipelineError(e.to_string()))?;
        Ok(self.applied)
    }
}

/// A pipeline that never gets anywhere: the consumer is stopped.
pub struct StuckPipeline;

impl Pipeline for StuckPipeline {
    fn applied_seq(&self) -> u64 {
        0
    }
    fn apply(&mut self, _: &[WalRecord]) -> Result<u64, PipelineError> {
        Err(PipelineError("stopped for the test".into()))
    }
}

/// An app over a fresh WAL and state, with no pipeline (nothing is applied).
pub struct TestApp {
    pub dir: PathBuf,
    pub state: AppState,
    pub wal: Wal,
    pub admin_password: String,
}

pub fn test_app(name: &str, limits: koban_server::intake::Limits) -> TestApp {
    let dir = temp_dir(name);
    let wal = Wal::open(
        dir.join("wal"),
        WalOptions {
            fsync: FsyncPolicy::Always,
            ..WalOptions::default()
        },
    )
    .expect("wal");
    let st = Arc::new(State::open(&dir.join("state.db")).expect("state"));
    let admin_password = st.first_start().expect("first start").expect("admin");
    let intake = Intake::new(wal.clone(), limits, 0);
    TestApp {
        dir,
        state: AppState::new(intake, st, 1 << 20, 4 << 20),
        wal,
        admin_password,
    }
}

pub fn default_limits() -> koban_server::intake::Limits {
    koban_server::intake::Limits {
        max_backlog_records: 1_000_000,
        max_backlog_bytes: 1 << 30,
        retry_after_secs: 2,
    }
}

pub fn all_records(wal: &Wal) -> Vec<WalRecord> {
    let mut r = wal.reader(1);
    let mut out = Vec::new();
    loop {
        let b = r.read_batch(10_000, usize::MAX).expect("read wal");
        if b.is_empty() {
            return out;
        }
        out.extend(b);
    }
}

/// A TLS client config that trusts exactly the server's certificate.
pub fn client_tls(cert: &Path) -> Arc<rustls::ClientConfig> {
    use rustls::pki_types::pem::PemObject;
    let mut roots = rustls::RootCertStore::empty();
    for c in rustls::pki_types::CertificateDer::pem_file_iter(cert).expect("cert") {
        roots.add(c.expect("pem")).expect("add root");
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    Arc::new(
        rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .expect("versions")
            .with_root_certificates(roots)
            .with_no_client_auth(),
    )
}

pub async fn tls_connect(
    addr: SocketAddr,
    cert: &Path,
) -> tokio_rustls::client::TlsStream<tokio::net::TcpStream> {
    let tcp = tokio::net::TcpStream::connect(addr).await.expect("connect");
    let connector = tokio_rustls::TlsConnector::from(client_tls(cert));
    let name = rustls::pki_types::ServerName::try_from("127.0.0.1").expect("name");
    connector.connect(name, tcp).await.expect("tls handshake")
}

/// One HTTP/1.1 request over HTTPS; returns status, headers (lowercased) and body.
pub async fn https(
    addr: SocketAddr,
    cert: &Path,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &[u8],
) -> (u16, String, String) {
    let mut s = tls_connect(addr, cert).await;
    let mut req = format!(
        "{method} {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\nContent-Length: {}\r\n",
        body.len()
    );
    for (k, v) in headers {
        req.push_str(&format!("{k}: {v}\r\n"));
    }
    req.push_str("\r\n");
    s.write_all(req.as_bytes()).await.expect("write");
    s.write_all(body).await.expect("write body");
    let mut out = Vec::new();
    let _ = s.read_to_end(&mut out).await;
    let text = String::from_utf8_lossy(&out).into_owned();
    let (head, body) = text.split_once("\r\n\r\n").expect("http response");
    let status = head
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .expect("status");
    (status, head.to_ascii_lowercase(), body.to_owned())
}

pub async fn wait_until(mut f: impl FnMut() -> bool, what: &str) {
    for _ in 0..500 {
        if f() {
            return;
        }
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
    panic!("timed out waiting for {what}");
}
