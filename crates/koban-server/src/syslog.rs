//! Syslog listeners: UDP (one datagram, one record), TCP and TLS (RFC 6587 framing per
//! frame). For streams the acknowledgement is the TCP window: a connection reads, appends
//! what it framed, and reads again only once the append is durable; while the pipeline
//! is behind it stops reading, so the sender's window closes and memory stays bounded.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use koban_wal::{Record, RecordKind};
use tokio::io::{AsyncRead, AsyncReadExt};
use tokio::net::{TcpListener, UdpSocket};
use tokio::sync::{watch, Semaphore};
use tokio_rustls::TlsAcceptor;

use crate::config::{SyslogListener, SyslogRoute};
use crate::framing::Framer;
use crate::intake::{Intake, IntakeError};
use crate::metrics::ListenerName;
use crate::state::now_ms;

pub(crate) struct SyslogCtx {
    pub intake: Arc<Intake>,
    pub listener: SyslogListener,
    pub routes: Arc<Vec<SyslogRoute>>,
    pub max_frame: usize,
    pub name: ListenerName,
}

impl SyslogCtx {
    /// Tenant and source for a sender: the first matching route, else the listener's.
    fn route(&self, remote: SocketAddr) -> (String, String) {
        for r in self.routes.iter() {
            if r.cidr.contains(&remote.ip()) {
                return (
                    r.tenant.clone(),
                    r.source
                        .clone()
                        .unwrap_or_else(|| self.listener.source.clone()),
                );
            }
        }
        (self.listener.tenant.clone(), self.listener.source.clone())
    }

    fn record(&self, tenant: &str, source: &str, remote: SocketAddr, frame: &[u8]) -> Record {
        Record {
            tenant: tenant.to_owned(),
            source: source.to_owned(),
            kind: RecordKind::Syslog,
            received_ms: now_ms(),
            remote: Some(remote),
            payload: frame.to_vec(),
        }
    }
}

/// Waits while the pipeline is behind; false if shutdown came first.
async fn wait_for_room(intake: &Intake, shutdown: &watch::Receiver<bool>) -> bool {
    while intake.overloaded() {
        if *shutdown.borrow() {
            return false;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    true
}

/// Appends, retrying on backpressure and disk full (the records stay in memory: at most
/// one read buffer's worth per connection).
async fn append_retrying(
    ctx: &SyslogCtx,
    records: Vec<Record>,
    shutdown: &watch::Receiver<bool>,
) -> bool {
    let mut records = records;
    loop {
        let (result, back) = ctx.intake.append_keep(records).await;
        records = back;
        match result {
            Ok(_) => return true,
            Err(IntakeError::Busy) | Err(IntakeError::DiskFull) if !*shutdown.borrow() => {
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            Err(e) => {
                tracing::warn!(listener = ctx.name, error = %e, records = records.len(), "syslog records not kept");
                return false;
            }
        }
    }
}

pub(crate) async fn serve_udp(
    socket: UdpSocket,
    ctx: Arc<SyslogCtx>,
    mut shutdown: watch::Receiver<bool>,
) {
    let mut buf = vec![0u8; 65536];
    loop {
        if !wait_for_room(&ctx.intake, &shutdown).await {
            return;
        }
        let (n, remote) = tokio::select! {
            r = socket.recv_from(&mut buf) => match r {
                Ok(x) => x,
                Err(e) => {
                    tracing::warn!(error = %e, "syslog udp receive failed");
                    continue;
                }
            },
            _ = shutdown.changed() => return,
        };
        // Take whatever else is already queued, so one append covers many datagrams.
        let mut batch: Vec<(SocketAddr, Vec<u8>)> = vec![(remote, trim(&buf[..n]).to_vec())];
        while batch.len() < 512 {
            match socket.try_recv_from(&mut buf) {
                Ok((n, remote)) => batch.push((remote, trim(&buf[..n]).to_vec())),
                Err(_) => break,
            }
        }
        let mut group: Vec<Record> = Vec::new();
        let mut key = (String::new(), String::new());
        for (remote, payload) in batch {
            if payload.is_empty() {
                continue;
            }
            let k = ctx.route(remote);
            if k != key && !group.is_empty() {
                append_retrying(&ctx, std::mem::take(&mut group), &shutdown).await;
            }
            group.push(ctx.record(&k.0, &k.1, remote, &payload));
            key = k;
        }
        if !group.is_empty() {
            append_retrying(&ctx, group, &shutdown).await;
        }
    }
}

fn trim(b: &[u8]) -> &[u8] {
    let end = b
        .iter()
        .rposition(|&c| c != b'\n' && c != b'\r' && c != 0)
        .map_or(0, |i| i + 1);
    &b[..end]
}

pub(crate) async fn serve_stream(
    listener: TcpListener,
    ctx: Arc<SyslogCtx>,
    tls: Option<TlsAcceptor>,
    conns: Arc<Semaphore>,
    mut shutdown: watch::Receiver<bool>,
) {
    loop {
        let (stream, remote) = tokio::select! {
            r = listener.accept() => match r {
                Ok(x) => x,
                Err(e) => {
                    tracing::warn!(listener = ctx.name, error = %e, "accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            _ = shutdown.changed() => return,
        };
        let Ok(permit) = Arc::clone(&conns).try_acquire_owned() else {
            tracing::warn!(listener = ctx.name, %remote, "connection refused: too many connections");
            continue;
        };
        let _ = stream.set_nodelay(true);
        let ctx = Arc::clone(&ctx);
        let tls = tls.clone();
        let shutdown = shutdown.clone();
        tokio::spawn(async move {
            let _permit = permit;
            ctx.intake.metrics.connection_opened(ctx.name);
            match tls {
                None => connection(stream, remote, &ctx, shutdown).await,
                Some(acceptor) => {
                    match tokio::time::timeout(Duration::from_secs(10), acceptor.accept(stream))
                        .await
                    {
                        Ok(Ok(s)) => connection(s, remote, &ctx, shutdown).await,
                        Ok(Err(e)) => {
                            tracing::warn!(listener = ctx.name, %remote, error = %e, "tls handshake failed")
                        }
                        Err(_) => {
                            tracing::warn!(listener = ctx.name, %remote, "tls handshake timed out")
                        }
                    }
                }
            }
            ctx.intake.metrics.connection_closed(ctx.name);
        });
    }
}

/// One stream: read → frame → append (durable) → read more.
async fn connection<S: AsyncRead + Unpin>(
    mut stream: S,
    remote: SocketAddr,
    ctx: &SyslogCtx,
    mut shutdown: watch::Receiver<bool>,
) {
    let (tenant, source) = ctx.route(remote);
    let mut framer = Framer::new(ctx.max_frame);
    let mut buf = vec![0u8; 64 << 10];
    loop {
        if !wait_for_room(&ctx.intake, &shutdown).await {
            return;
        }
        let n = tokio::select! {
            r = stream.read(&mut buf) => match r {
                Ok(n) => n,
                Err(e) => {
                    tracing::debug!(listener = ctx.name, %remote, error = %e, "syslog read failed");
                    0
                }
            },
            _ = shutdown.changed() => return,
        };
        let mut records = Vec::new();
        let mut failed = None;
        if n == 0 {
            if let Some(f) = framer.finish() {
                if !f.is_empty() {
                    records.push(ctx.record(&tenant, &source, remote, f));
                }
            }
        } else {
            framer.push(&buf[..n]);
            loop {
                match framer.next_frame() {
                    Ok(Some(f)) => records.push(ctx.record(&tenant, &source, remote, f)),
                    Ok(None) => break,
                    Err(e) => {
                        failed = Some(e);
                        break;
                    }
                }
            }
        }
        if !records.is_empty() && !append_retrying(ctx, records, &shutdown).await {
            return;
        }
        if let Some(e) = failed {
            // The frames before the bad one are kept; the stream cannot be resynchronised.
            tracing::warn!(listener = ctx.name, %remote, error = %e, "closing syslog connection");
            ctx.intake
                .metrics
                .add(&tenant, &source, |c| c.rejected += 1);
            return;
        }
        if n == 0 {
            return;
        }
    }
}
