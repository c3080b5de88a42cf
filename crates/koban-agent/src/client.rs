//! HTTPS to the Koban server, with its certificate pinned by SHA-256.
//!
//! Koban makes a self-signed certificate when none is configured, so there is no CA
//! to trust: the agent trusts exactly one certificate, given when it enrols (the
//! file, or its fingerprint). The handshake signature is still checked with that
//! certificate's key, so a copy of the certificate alone does not impersonate the
//! server. One blocking request per connection (`Connection: close`): an agent talks
//! to its server every few seconds, not thousands of times.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream, ToSocketAddrs};
use std::sync::Arc;
use std::time::Duration;

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::{verify_tls12_signature, verify_tls13_signature, CryptoProvider};
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{ClientConfig, ClientConnection, DigitallySignedStruct, SignatureScheme, StreamOwned};
use sha2::{Digest, Sha256};

#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    #[error("server address {0:?}: use https://HOST:PORT")]
    Url(String),
    #[error("cannot reach {addr}: {source}")]
    Connect {
        addr: String,
        source: std::io::Error,
    },
    #[error("talking to the server: {0}")]
    Io(#[from] std::io::Error),
    #[error("TLS: {0}")]
    Tls(#[from] rustls::Error),
    #[error("the server's answer is not HTTP: {0}")]
    Http(String),
    #[error("HTTP {status}: {body}")]
    Status { status: u16, body: String },
    #[error("the server's answer is not JSON: {0}")]
    Json(#[from] serde_json::Error),
}

/// The server's address and pinned certificate.
#[derive(Debug, Clone)]
pub struct Client {
    host: String,
    port: u16,
    config: Arc<ClientConfig>,
}

const TIMEOUT: Duration = Duration::from_secs(10);
const MAX_ANSWER: usize = 16 << 20;

impl Client {
    /// `url` is `https://host:port`; `fingerprint` the SHA-256 of the certificate (DER).
    pub fn new(url: &str, fingerprint: [u8; 32]) -> Result<Client, ClientError> {
        let rest = url
            .strip_prefix("https://")
            .ok_or_else(|| ClientError::Url(url.into()))?
            .trim_end_matches('/');
        let (host, port) = match rest.rsplit_once(':') {
            Some((h, p)) if !h.is_empty() => {
                (h, p.parse().map_err(|_| ClientError::Url(url.into()))?)
            }
            _ => (rest, 443),
        };
        let host = host
            .trim_start_matches('[')
            .trim_end_matches(']')
            .to_owned();
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let config = ClientConfig::builder_with_provider(Arc::clone(&provider))
            .with_safe_default_protocol_versions()?
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(Pinned {
                fingerprint,
                provider,
            }))
            .with_no_client_auth();
        Ok(Client {
            host,
            port,
            config: Arc::new(config),
        })
    }

    /// The server's socket addresses (isolation keeps exactly these reachable).
    pub fn server_addrs(&self) -> Result<Vec<SocketAddr>, ClientError> {
        let addr = format!("{}:{}", self.host, self.port);
        addr.to_socket_addrs()
            .map(Iterator::collect)
            .map_err(|source| ClientError::Connect { addr, source })
    }

    /// POSTs JSON and returns the JSON answer; a non-2xx status is an error with the
    /// server's message.
    pub fn post(
        &self,
        path: &str,
        auth: Option<&str>,
        body: &serde_json::Value,
    ) -> Result<serde_json::Value, ClientError> {
        let body = body.to_string();
        let addrs = self.server_addrs()?;
        let addr = addrs
            .first()
            .ok_or_else(|| ClientError::Url(self.host.clone()))?;
        let tcp =
            TcpStream::connect_timeout(addr, TIMEOUT).map_err(|source| ClientError::Connect {
                addr: addr.to_string(),
                source,
            })?;
        tcp.set_read_timeout(Some(TIMEOUT))?;
        tcp.set_write_timeout(Some(TIMEOUT))?;
        let name = ServerName::try_from(self.host.clone())
            .map_err(|_| ClientError::Url(self.host.clone()))?;
        let conn = ClientConnection::new(Arc::clone(&self.config), name)?;
        let mut tls = StreamOwned::new(conn, tcp);
        let mut head = format!(
            "POST {path} HTTP/1.1\r\nHost: {}:{}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n",
            self.host,
            self.port,
            body.len()
        );
        if let Some(a) = auth {
            head.push_str(&format!("Authorization: {a}\r\n"));
        }
        head.push_str("\r\n");
        tls.write_all(head.as_bytes())?;
        tls.write_all(body.as_bytes())?;
        tls.flush()?;
        let (status, answer) = read_response(&mut tls)?;
        let text = String::from_utf8_lossy(&answer).into_owned();
        if !(200..300).contains(&status) {
            return Err(ClientError::Status { status, body: text });
        }
        Ok(serde_json::from_str(&text)?)
    }
}

/// Reads one HTTP/1.1 response: the status and the body (Content-Length or chunked).
fn read_response(r: &mut impl Read) -> Result<(u16, Vec<u8>), ClientError> {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 8192];
    let head_end = loop {
        if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            break i;
        }
        let n = read_some(r, &mut chunk)?;
        if n == 0 {
            return Err(ClientError::Http(
                "the connection closed before the headers ended".into(),
            ));
        }
        buf.extend_from_slice(&chunk[..n]);
        if buf.len() > MAX_ANSWER {
            return Err(ClientError::Http("headers too long".into()));
        }
    };
    let head = String::from_utf8_lossy(&buf[..head_end]).into_owned();
    let mut lines = head.split("\r\n");
    let status: u16 = lines
        .next()
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| ClientError::Http(format!("status line {head:?}")))?;
    let mut length = None;
    let mut chunked = false;
    for l in lines {
        if let Some((k, v)) = l.split_once(':') {
            let (k, v) = (k.trim().to_ascii_lowercase(), v.trim());
            if k == "content-length" {
                length = v.parse::<usize>().ok();
            } else if k == "transfer-encoding" && v.eq_ignore_ascii_case("chunked") {
                chunked = true;
            }
        }
    }
    let mut body = buf[head_end + 4..].to_vec();
    if chunked {
        return Ok((status, read_chunked(r, body)?));
    }
    match length {
        Some(n) if n > MAX_ANSWER => Err(ClientError::Http("answer too large".into())),
        Some(n) => {
            while body.len() < n {
                let got = read_some(r, &mut chunk)?;
                if got == 0 {
                    return Err(ClientError::Http("the answer was cut short".into()));
                }
                body.extend_from_slice(&chunk[..got]);
            }
            body.truncate(n);
            Ok((status, body))
        }
        None => {
            // Until the server closes.
            loop {
                let got = read_some(r, &mut chunk)?;
                if got == 0 || body.len() > MAX_ANSWER {
                    return Ok((status, body));
                }
                body.extend_from_slice(&chunk[..got]);
            }
        }
    }
}

fn read_chunked(r: &mut impl Read, mut have: Vec<u8>) -> Result<Vec<u8>, ClientError> {
    let mut out = Vec::new();
    let mut chunk = [0u8; 8192];
    loop {
        // Enough bytes for the size line?
        let Some(eol) = have.windows(2).position(|w| w == b"\r\n") else {
            let n = read_some(r, &mut chunk)?;
            if n == 0 {
                return Err(ClientError::Http("chunked answer cut short".into()));
            }
            have.extend_from_slice(&chunk[..n]);
            continue;
        };
        let size_text = String::from_utf8_lossy(&have[..eol]).into_owned();
        let size = usize::from_str_radix(size_text.split(';').next().unwrap_or("").trim(), 16)
            .map_err(|_| ClientError::Http(format!("chunk size {size_text:?}")))?;
        if size == 0 {
            return Ok(out);
        }
        if out.len() + size > MAX_ANSWER {
            return Err(ClientError::Http("answer too large".into()));
        }
        while have.len() < eol + 2 + size + 2 {
            let n = read_some(r, &mut chunk)?;
            if n == 0 {
                return Err(ClientError::Http("chunked answer cut short".into()));
            }
            have.extend_from_slice(&chunk[..n]);
        }
        out.extend_from_slice(&have[eol + 2..eol + 2 + size]);
        have.drain(..eol + 2 + size + 2);
    }
}

/// A read where a TLS close without close_notify counts as the end.
fn read_some(r: &mut impl Read, buf: &mut [u8]) -> Result<usize, ClientError> {
    match r.read(buf) {
        Ok(n) => Ok(n),
        Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => Ok(0),
        Err(e) => Err(e.into()),
    }
}

/// SHA-256 of a certificate's DER bytes.
pub fn fingerprint(der: &[u8]) -> [u8; 32] {
    Sha256::digest(der).into()
}

/// Hex with or without colons, as `openssl x509 -fingerprint -sha256` prints it.
pub fn parse_fingerprint(text: &str) -> Option<[u8; 32]> {
    let hex: String = text.chars().filter(|c| *c != ':').collect();
    if hex.len() != 64 {
        return None;
    }
    let mut out = [0u8; 32];
    for (i, b) in out.iter_mut().enumerate() {
        *b = u8::from_str_radix(&hex[2 * i..2 * i + 2], 16).ok()?;
    }
    Some(out)
}

pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[derive(Debug)]
struct Pinned {
    fingerprint: [u8; 32],
    provider: Arc<CryptoProvider>,
}

impl ServerCertVerifier for Pinned {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        if fingerprint(end_entity.as_ref()) == self.fingerprint {
            Ok(ServerCertVerified::assertion())
        } else {
            Err(rustls::Error::General(
                "the server's certificate is not the one this agent enrolled with".into(),
            ))
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        verify_tls12_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        verify_tls13_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.provider
            .signature_verification_algorithms
            .supported_schemes()
    }
}
