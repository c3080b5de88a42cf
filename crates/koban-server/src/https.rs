//! HTTPS for axum: TCP accept, TLS handshakes in their own tasks (a slow client cannot
//! stall the accept loop), finished streams handed to `axum::serve` through a bounded
//! channel.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{mpsc, Semaphore};
use tokio_rustls::server::TlsStream;
use tokio_rustls::TlsAcceptor;

use std::pin::Pin;
use std::task::{Context, Poll};

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::sync::OwnedSemaphorePermit;

use crate::intake::Intake;

/// A TLS connection that holds its connection-limit permit and keeps the open
/// connection gauge right for as long as axum keeps it.
pub(crate) struct Counted {
    inner: TlsStream<TcpStream>,
    _permit: OwnedSemaphorePermit,
    intake: Arc<Intake>,
}

impl Drop for Counted {
    fn drop(&mut self) {
        self.intake.metrics.connection_closed("https");
    }
}

impl AsyncRead for Counted {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_read(cx, buf)
    }
}

impl AsyncWrite for Counted {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write(cx, buf)
    }
    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }
    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

pub(crate) struct TlsListener {
    rx: mpsc::Receiver<(Counted, SocketAddr)>,
    local: SocketAddr,
}

impl TlsListener {
    pub fn spawn(
        listener: TcpListener,
        acceptor: TlsAcceptor,
        conns: Arc<Semaphore>,
        intake: Arc<Intake>,
    ) -> std::io::Result<(TlsListener, tokio::task::JoinHandle<()>)> {
        let local = listener.local_addr()?;
        let (tx, rx) = mpsc::channel(64);
        let task = tokio::spawn(async move {
            loop {
                let (stream, remote) = match listener.accept().await {
                    Ok(x) => x,
                    Err(e) => {
                        tracing::warn!(error = %e, "https accept failed");
                        tokio::time::sleep(Duration::from_millis(50)).await;
                        continue;
                    }
                };
                let Ok(permit) = Arc::clone(&conns).try_acquire_owned() else {
                    tracing::warn!(%remote, "https connection refused: too many connections");
                    continue;
                };
                let acceptor = acceptor.clone();
                let tx = tx.clone();
                let intake = Arc::clone(&intake);
                tokio::spawn(async move {
                    match tokio::time::timeout(Duration::from_secs(10), acceptor.accept(stream))
                        .await
                    {
                        Ok(Ok(s)) => {
                            intake.metrics.connection_opened("https");
                            let counted = Counted {
                                inner: s,
                                _permit: permit,
                                intake,
                            };
                            let _ = tx.send((counted, remote)).await;
                        }
                        Ok(Err(e)) => {
                            tracing::debug!(%remote, error = %e, "https handshake failed")
                        }
                        Err(_) => tracing::debug!(%remote, "https handshake timed out"),
                    }
                });
            }
        });
        Ok((TlsListener { rx, local }, task))
    }
}

impl axum::serve::Listener for TlsListener {
    type Io = Counted;
    type Addr = SocketAddr;

    async fn accept(&mut self) -> (Self::Io, Self::Addr) {
        match self.rx.recv().await {
            Some(x) => x,
            // The accept task is gone (shutdown): wait for graceful shutdown to end us.
            None => std::future::pending().await,
        }
    }

    fn local_addr(&self) -> std::io::Result<Self::Addr> {
        Ok(self.local)
    }
}
