//! `koban serve`: the intake. Everything from the socket to the durable WAL, and the
//! thread that hands WAL records to the pipeline (parse + store).
//!
//! - `config.rs`: the server's sections of `koban.toml`, every error at once
//! - `tls.rs`: the certificate (configured or self-signed) and rustls on ring
//! - `state.rs`: SQLite state: tenants, tokens, users
//! - `intake.rs`: admission (backpressure, disk full) and the durable append
//! - `framing.rs` + `syslog.rs`: syslog over UDP, TCP, TLS
//! - `http/`: NDJSON, Elasticsearch `_bulk`, Splunk HEC, EVTX, admin API, metrics
//! - `pipeline.rs`: the [`Pipeline`] seam and the thread that drives it
//! - `store_pipeline.rs`: parse + store; `detection.rs`: the streaming detection stage
//!   inside it; `alerts/`: alerts, incidents and cases in SQLite
//! - `server.rs`: start and graceful shutdown

pub mod access;
pub mod alerts;
pub mod config;
pub mod console;
pub mod detection;
pub mod framing;
pub mod guard;
pub mod http;
mod https;
pub mod hunt;
pub mod identity;
pub mod intake;
pub mod intel;
pub mod metrics;
pub mod pipeline;
pub mod respond;
pub mod server;
pub mod state;
pub mod store_pipeline;
mod syslog;
pub mod tls;

pub use config::{ConfigError, ConfigErrors, ServerConfig};
pub use detection::{DetectStage, RuleSource};
pub use http::{app, AppState};
pub use intake::{Intake, IntakeError};
pub use koban_wal::{Record, RecordKind, WalRecord};
pub use pipeline::{CountingPipeline, Pipeline, PipelineError};
pub use server::{
    run_until_signal, shutdown_signal, start, start_full, start_with_search, BoundAddrs, Extras,
    RunningServer, ServerError,
};
pub use store_pipeline::StorePipeline;
