//! `koban serve`, `koban tenant`, `koban token`: the binary's side of koban-server.

use std::path::Path;

use anyhow::Context;
use koban_server::state::State;
use koban_server::{DetectStage, Extras, RuleSource, ServerConfig, StorePipeline};
use koban_store::StoreOptions;

use crate::config::Config;

/// The server configuration: the file's sections, then the command line's data dir.
pub fn server_config(config: &Config, data_dir: Option<&Path>) -> anyhow::Result<ServerConfig> {
    let mut sc = ServerConfig::from_table(&config.raw).map_err(|e| {
        let file = config
            .path
            .as_ref()
            .map_or("koban.toml".to_string(), |p| p.display().to_string());
        anyhow::anyhow!("{file}: {} configuration errors:\n{e}", e.0.len())
    })?;
    if let Some(d) = data_dir {
        sc.data_dir = d.to_path_buf();
    } else if let Some(p) = &config.path {
        // A data dir in the file is relative to the file.
        if sc.data_dir.is_relative()
            && config
                .raw
                .get("server")
                .and_then(|s| s.get("data_dir"))
                .is_some()
        {
            sc.data_dir = p.parent().unwrap_or(Path::new(".")).join(&sc.data_dir);
        }
    }
    if let Some(p) = &config.path {
        // Rule folders in the file are relative to the file, too.
        let base = p.parent().unwrap_or(Path::new("."));
        for r in &mut sc.detection.rules {
            if r.is_relative() {
                *r = base.join(&*r);
            }
        }
    }
    Ok(sc)
}

pub fn serve(sc: ServerConfig) -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("KOBAN_LOG")
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .with_writer(std::io::stderr)
        .with_ansi(false)
        .init();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .thread_name("koban-io")
        .build()
        .context("cannot start the async runtime")?;
    runtime.block_on(async move {
        // Accepted records are parsed and stored in the embedded event store, and every
        // stored event goes through the rules.
        std::fs::create_dir_all(&sc.data_dir)
            .with_context(|| format!("cannot create data dir {}", sc.data_dir.display()))?;
        let mut pipeline =
            StorePipeline::open(&sc.data_dir.join("events"), StoreOptions::default())
                .map_err(|e| anyhow::anyhow!("{e}"))?;
        let searcher = pipeline.searcher();
        let mut rules = None;
        if sc.detection.enabled {
            let d = &sc.detection;
            let src = RuleSource::load(&d.rules).map_err(|e| anyhow::anyhow!("{e}"))?;
            if d.rules_poll_secs > 0 {
                src.watch(std::time::Duration::from_secs(d.rules_poll_secs));
            }
            let mut stage =
                DetectStage::open(&sc.data_dir.join("alerts.db"), src.clone(), d.grouping())
                    .map_err(|e| anyhow::anyhow!("{e}"))?;
            if !sc.intel_files.is_empty() {
                let intel =
                    koban_server::intel::Intel::load(&sc.intel_files, &sc.intel_warninglists)
                        .map_err(|e| anyhow::anyhow!("intel: {e}"))?;
                println!(
                    "intel: {} indicators from {} files ({} KiB)",
                    intel.indicators(),
                    intel.reports.len(),
                    intel.memory_bytes() / 1024
                );
                stage = stage.with_intel(std::sync::Arc::new(intel));
            }
            println!(
                "detection: {}",
                src.summary.read().unwrap_or_else(|p| p.into_inner())
            );
            pipeline = pipeline.with_detection(stage);
            rules = Some(src);
        }
        let extras = Extras {
            search: Some(searcher),
            rules,
        };
        let server = koban_server::start_full(sc, Box::new(pipeline), extras).await?;
        let stop = koban_server::shutdown_signal();
        if let Some(pw) = &server.first_admin_password {
            // Shown once, on stdout only; only its argon2 hash is kept.
            println!("first start: admin user `admin`, one-time password: {pw}");
        }
        let a = server.addrs;
        let show = |x: Option<std::net::SocketAddr>| x.map_or("off".to_string(), |a| a.to_string());
        println!(
            "listening: https {} | syslog udp {} tcp {} tls {}",
            show(a.https),
            show(a.syslog_udp),
            show(a.syslog_tcp),
            show(a.syslog_tls)
        );
        koban_server::run_until_signal(server, stop).await?;
        Ok::<_, anyhow::Error>(())
    })
}

fn open_state(data_dir: &Path) -> anyhow::Result<State> {
    std::fs::create_dir_all(data_dir)
        .with_context(|| format!("cannot create data dir {}", data_dir.display()))?;
    let st = State::open(&data_dir.join("state.db"))?;
    if let Some(pw) = st.first_start()? {
        println!("first start: admin user `admin`, one-time password: {pw}");
    }
    Ok(st)
}

pub fn tenant_add(data_dir: &Path, name: &str) -> anyhow::Result<()> {
    open_state(data_dir)?.add_tenant(name)?;
    println!("tenant {name} added");
    Ok(())
}

pub fn tenant_list(data_dir: &Path) -> anyhow::Result<()> {
    for t in open_state(data_dir)?.tenants()? {
        println!("{}", t.name);
    }
    Ok(())
}

pub fn token_create(
    data_dir: &Path,
    tenant: Option<&str>,
    source: Option<&str>,
    admin: bool,
) -> anyhow::Result<()> {
    let st = open_state(data_dir)?;
    let token = if admin {
        st.create_admin_token()?
    } else {
        let (Some(t), Some(s)) = (tenant, source) else {
            anyhow::bail!(
                "an ingest token needs --tenant and --source (or --admin for an API token)"
            );
        };
        st.create_ingest_token(t, s)?
    };
    // Printed once; only its hash is stored.
    println!("{token}");
    Ok(())
}
