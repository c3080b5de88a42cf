//! Starting and stopping the whole intake: data dir, state, TLS, WAL, the pipeline
//! thread, and every listener.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use koban_wal::{Wal, WalError, WalOptions};
use tokio::net::{TcpListener, UdpSocket};
use tokio::sync::{watch, Semaphore};
use tokio::task::JoinHandle;
use tokio_rustls::TlsAcceptor;

use crate::config::{ServerConfig, SyslogListener};
use crate::http::{app, AppState};
use crate::intake::{Intake, Limits};
use crate::pipeline::{self, Pipeline};
use crate::state::{State, StateError};
use crate::syslog::{self, SyslogCtx};
use crate::tls::{self, TlsError};

#[derive(Debug, thiserror::Error)]
pub enum ServerError {
    #[error("cannot create data dir {path}: {source}")]
    DataDir {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("cannot listen on {what} {addr}: {source}")]
    Bind {
        what: &'static str,
        addr: SocketAddr,
        #[source]
        source: std::io::Error,
    },
    #[error(transparent)]
    Tls(#[from] TlsError),
    #[error(transparent)]
    State(#[from] StateError),
    #[error("wal: {0}")]
    Wal(#[from] WalError),
    #[error("the wal ends at {last} but the pipeline has applied up to {applied}: the wal or the store belongs to another data dir")]
    WalBehind { applied: u64, last: u64 },
    #[error("the pipeline thread panicked")]
    PipelineThread,
    #[error("{0}")]
    Alerts(String),
    #[error(transparent)]
    Respond(#[from] crate::respond::RespondError),
}

/// The addresses actually bound (ports chosen by the OS when configured as 0).
#[derive(Debug, Clone, Copy, Default)]
pub struct BoundAddrs {
    pub https: Option<SocketAddr>,
    pub syslog_udp: Option<SocketAddr>,
    pub syslog_tcp: Option<SocketAddr>,
    pub syslog_tls: Option<SocketAddr>,
}

/// A started server. `shutdown` stops it cleanly and hands the pipeline back.
pub struct RunningServer {
    pub addrs: BoundAddrs,
    /// The first admin's one-time password, when this start created the admin. The
    /// caller shows it once; the server never logs it.
    pub first_admin_password: Option<String>,
    pub intake: Arc<Intake>,
    pub state: Arc<State>,
    pub cert_path: PathBuf,
    shutdown: watch::Sender<bool>,
    tasks: Vec<JoinHandle<()>>,
    pipeline_stop: Arc<AtomicBool>,
    pipeline: Option<std::thread::JoinHandle<Box<dyn Pipeline>>>,
}

/// Creates the data dir, state and certificate, opens (recovers) the WAL, starts the
/// pipeline thread and every configured listener. Call inside a tokio runtime.
pub async fn start(
    config: ServerConfig,
    pipeline: Box<dyn Pipeline>,
) -> Result<RunningServer, ServerError> {
    start_with_search(config, pipeline, None).await
}

/// [`start`], with the event store's searcher serving `/api/v1/search`.
pub async fn start_with_search(
    config: ServerConfig,
    pipeline: Box<dyn Pipeline>,
    search: Option<koban_store::StoreSearcher>,
) -> Result<RunningServer, ServerError> {
    start_full(
        config,
        pipeline,
        Extras {
            search,
            rules: None,
        },
    )
    .await
}

/// What the integrated server adds to the intake: the store's read side and the rules
/// the pipeline's detection stage runs (which turns on the alert and incident API).
#[derive(Default)]
pub struct Extras {
    pub search: Option<koban_store::StoreSearcher>,
    pub rules: Option<Arc<crate::detection::RuleSource>>,
}

/// [`start`] with the store's searcher and the detection API.
pub async fn start_full(
    config: ServerConfig,
    pipeline: Box<dyn Pipeline>,
    extras: Extras,
) -> Result<RunningServer, ServerError> {
    let Extras { search, rules } = extras;
    let dir = config.data_dir.clone();
    std::fs::create_dir_all(&dir).map_err(|source| ServerError::DataDir {
        path: dir.clone(),
        source,
    })?;
    let state = Arc::new(State::open(&dir.join("state.db"))?);
    let first_admin_password = state.first_start()?;
    for l in [&config.syslog_udp, &config.syslog_tcp, &config.syslog_tls] {
        state.ensure_tenant(&l.tenant)?;
    }
    for r in &config.syslog_routes {
        state.ensure_tenant(&r.tenant)?;
    }
    let alerts = match &rules {
        Some(_) => Some(Arc::new(
            crate::alerts::AlertBook::open(&dir.join("alerts.db"))
                .map_err(|e| ServerError::Alerts(e.to_string()))?,
        )),
        None => None,
    };
    let connectors = config.connectors.clone();
    let respond = Arc::new(
        crate::respond::ResponseBook::open(&dir)?
            .with_connectors(connectors.iter().map(|c| c.name.clone()).collect()),
    );
    let (cert, key) =
        tls::ensure_cert(&dir, config.tls_cert.as_deref(), config.tls_key.as_deref())?;
    let wal = Wal::open(
        dir.join("wal"),
        WalOptions {
            segment_bytes: config.segment_bytes,
            fsync: config.fsync,
            max_record_bytes: config.max_evtx_bytes.max(config.max_body_bytes),
        },
    )?;
    let rec = wal.recovery();
    if rec.torn_tail {
        tracing::warn!(
            bytes = rec.truncated_bytes,
            "wal recovery cut a torn tail (a write interrupted by a crash)"
        );
    }
    if let Some(c) = &rec.corrupt {
        tracing::error!(detail = %c, bytes = rec.truncated_bytes, "wal recovery found a corrupt record; the tail was kept aside");
    }
    tracing::info!(
        last_seq = wal.last_seq(),
        segments = rec.segments,
        "wal opened"
    );
    let limits = Limits {
        max_backlog_records: config.max_backlog_records,
        max_backlog_bytes: config.max_backlog_bytes,
        retry_after_secs: config.retry_after_secs,
    };
    let applied = pipeline.applied_seq();
    if applied > wal.last_seq() {
        if wal.start_at(applied + 1)? {
            tracing::warn!(
                applied_seq = applied,
                "wal was empty behind the pipeline's position; numbering continues after it"
            );
        } else {
            // The pipeline would skip these records as already applied: refuse to start
            // rather than lose them silently.
            return Err(ServerError::WalBehind {
                applied,
                last: wal.last_seq(),
            });
        }
    }
    let intake = Intake::new(wal, limits, applied);
    let pipeline_stop = Arc::new(AtomicBool::new(false));
    let pipeline_thread = {
        let intake = Arc::clone(&intake);
        let stop = Arc::clone(&pipeline_stop);
        std::thread::Builder::new()
            .name("koban-pipeline".into())
            .spawn(move || pipeline::run(pipeline, intake, stop))
            .map_err(|source| ServerError::DataDir {
                path: dir.clone(),
                source,
            })?
    };
    let (shutdown, shutdown_rx) = watch::channel(false);
    let conns = Arc::new(Semaphore::new(config.max_connections));
    let routes = Arc::new(config.syslog_routes.clone());
    let mut addrs = BoundAddrs::default();
    let mut tasks = Vec::new();
    let bind = |what: &'static str, addr: SocketAddr| async move {
        TcpListener::bind(addr)
            .await
            .map_err(|source| ServerError::Bind { what, addr, source })
    };
    let ctx = |l: &SyslogListener, name| {
        Arc::new(SyslogCtx {
            intake: Arc::clone(&intake),
            listener: l.clone(),
            routes: Arc::clone(&routes),
            max_frame: config.max_frame_bytes,
            name,
        })
    };
    if let Some(addr) = config.syslog_udp.listen {
        let socket = UdpSocket::bind(addr)
            .await
            .map_err(|source| ServerError::Bind {
                what: "syslog udp",
                addr,
                source,
            })?;
        addrs.syslog_udp = socket.local_addr().ok();
        tasks.push(tokio::spawn(syslog::serve_udp(
            socket,
            ctx(&config.syslog_udp, "syslog-udp"),
            shutdown_rx.clone(),
        )));
    }
    if let Some(addr) = config.syslog_tcp.listen {
        let l = bind("syslog tcp", addr).await?;
        addrs.syslog_tcp = l.local_addr().ok();
        tasks.push(tokio::spawn(syslog::serve_stream(
            l,
            ctx(&config.syslog_tcp, "syslog-tcp"),
            None,
            Arc::clone(&conns),
            shutdown_rx.clone(),
        )));
    }
    if let Some(addr) = config.syslog_tls.listen {
        let l = bind("syslog tls", addr).await?;
        addrs.syslog_tls = l.local_addr().ok();
        let acceptor = TlsAcceptor::from(tls::server_config(&cert, &key, &[])?);
        tasks.push(tokio::spawn(syslog::serve_stream(
            l,
            ctx(&config.syslog_tls, "syslog-tls"),
            Some(acceptor),
            Arc::clone(&conns),
            shutdown_rx.clone(),
        )));
    }
    if let Some(addr) = config.https {
        let l = bind("https", addr).await?;
        addrs.https = l.local_addr().ok();
        let acceptor = TlsAcceptor::from(tls::server_config(&cert, &key, &[b"http/1.1"])?);
        let (listener, accept_task) =
            crate::https::TlsListener::spawn(l, acceptor, Arc::clone(&conns), Arc::clone(&intake))
                .map_err(|source| ServerError::Bind {
                    what: "https",
                    addr,
                    source,
                })?;
        let router = app(AppState::new(
            Arc::clone(&intake),
            Arc::clone(&state),
            config.max_body_bytes,
            config.max_evtx_bytes,
        )
        .with_max_inflight(config.max_inflight_requests)
        .with_search(search.clone())
        .with_detection(alerts.clone(), rules.clone())
        .with_grouping(config.detection.grouping())
        .with_respond(Some(Arc::clone(&respond))));
        let mut rx = shutdown_rx.clone();
        tasks.push(tokio::spawn(async move {
            let serve = axum::serve(
                listener,
                router.into_make_service_with_connect_info::<crate::http::PeerAddr>(),
            )
            .with_graceful_shutdown(async move {
                let _ = rx.changed().await;
            });
            if let Err(e) = serve.await {
                tracing::error!(error = %e, "https server failed");
            }
            accept_task.abort();
        }));
    }
    // Escalations, approval time-outs and expiring blocks; playbooks started and
    // walked; every step copied into incident timelines and the audit log.
    let mut rx = shutdown_rx.clone();
    let (tick_alerts, tick_state) = (alerts.clone(), Arc::clone(&state));
    tasks.push(tokio::spawn(async move {
        let mut every = tokio::time::interval(RESPONSE_TICK);
        loop {
            tokio::select! {
                _ = every.tick() => {}
                _ = rx.changed() => break,
            }
            let (book, alerts, state, connectors) = (
                Arc::clone(&respond),
                tick_alerts.clone(),
                Arc::clone(&tick_state),
                connectors.clone(),
            );
            let ticked = tokio::task::spawn_blocking(move || {
                response_tick(&book, alerts.as_deref(), &state, &connectors)
            })
            .await;
            if ticked.is_err() {
                tracing::error!("response tick panicked");
            }
        }
    }));
    tracing::info!(
        https = ?addrs.https, syslog_udp = ?addrs.syslog_udp, syslog_tcp = ?addrs.syslog_tcp,
        syslog_tls = ?addrs.syslog_tls, data_dir = %dir.display(), "koban intake listening"
    );
    Ok(RunningServer {
        addrs,
        first_admin_password,
        intake,
        state,
        cert_path: cert,
        shutdown,
        tasks,
        pipeline_stop,
        pipeline: Some(pipeline_thread),
    })
}

impl RunningServer {
    /// Stops the listeners, lets in-flight appends finish, syncs the WAL, lets the
    /// pipeline drain what is durable, and returns the pipeline.
    pub async fn shutdown(mut self) -> Result<Box<dyn Pipeline>, ServerError> {
        tracing::info!("shutting down: stopping listeners");
        self.intake.begin_shutdown();
        let _ = self.shutdown.send(true);
        for t in self.tasks.drain(..) {
            let _ = t.await;
        }
        // Connection tasks finish their current append before they look at shutdown.
        let mut waited = 0;
        while self.intake.metrics.open_connections() > 0 && waited < 100 {
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
            waited += 1;
        }
        let wal = self.intake.wal().clone();
        tokio::task::spawn_blocking(move || wal.sync())
            .await
            .map_err(|_| ServerError::PipelineThread)??;
        self.pipeline_stop.store(true, Ordering::Release);
        self.intake.wal().notify_readers();
        let handle = self.pipeline.take().ok_or(ServerError::PipelineThread)?;
        let pipeline = tokio::task::spawn_blocking(move || handle.join())
            .await
            .map_err(|_| ServerError::PipelineThread)?
            .map_err(|_| ServerError::PipelineThread)?;
        tracing::info!(applied_seq = self.intake.applied_seq(), "shutdown complete");
        Ok(pipeline)
    }
}

/// Runs until ctrl-c or SIGTERM, then shuts down cleanly.
/// Runs until SIGTERM or ctrl-c (`signal` from [`shutdown_signal`], installed before
/// the server announced itself), then shuts down gracefully.
pub async fn run_until_signal(
    server: RunningServer,
    signal: impl std::future::Future<Output = ()>,
) -> Result<(), ServerError> {
    signal.await;
    server.shutdown().await.map(|_| ())
}

/// Installs the SIGTERM handler now — a signal sent the moment the server says it
/// is listening must already find it — and returns the wait for it (or ctrl-c).
pub fn shutdown_signal() -> impl std::future::Future<Output = ()> {
    #[cfg(unix)]
    let term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()).ok();
    async move {
        #[cfg(unix)]
        if let Some(mut term) = term {
            tokio::select! {
                _ = tokio::signal::ctrl_c() => {}
                _ = term.recv() => {}
            }
            return;
        }
        let _ = tokio::signal::ctrl_c().await;
    }
}

/// How often escalations, expiries and playbooks are looked at.
const RESPONSE_TICK: std::time::Duration = std::time::Duration::from_secs(2);

fn response_tick(
    book: &crate::respond::ResponseBook,
    alerts: Option<&crate::alerts::AlertBook>,
    state: &State,
    connectors: &[crate::respond::ConnectorConfig],
) {
    let now = crate::state::now_ms();
    let contact = |tenant: &str| state.approval(tenant).ok().and_then(|a| a.1);
    match book.tick(now, &contact) {
        Ok(changed) => {
            for (id, what) in changed {
                tracing::info!(action = id, what, "response action");
            }
        }
        Err(e) => tracing::error!(error = %e, "response tick"),
    }
    if let Some(alerts) = alerts {
        match crate::respond::drive(book, alerts, state, now) {
            Ok(0) => {}
            Ok(n) => tracing::info!(runs = n, "playbook runs started"),
            Err(e) => tracing::error!(error = %e, "playbooks"),
        }
    }
    crate::respond::run_connectors(book, connectors, now);
    if let Err(e) = crate::respond::mirror(book, alerts, state) {
        tracing::error!(error = %e, "response log");
    }
}
