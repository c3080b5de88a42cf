//! The `koban` command.

use std::io::{BufWriter, Write};
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use clap::{Parser, Subcommand};
use koban::config::Config;
use koban::hunt;
use koban::output::{self, Format};
use koban::rules::{display_path, load_rules};
use koban::serve;
use koban_sigma::{CompileOptions, Level, Routing};

/// mimalloc instead of glibc malloc: ingest makes and frees many small strings per
/// event, across threads (parsed on the pipeline thread, dropped by tantivy's indexing
/// threads); with glibc, malloc/free/consolidate took about a third of the pipeline.
#[global_allocator]
static ALLOC: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[derive(Parser)]
#[command(
    name = "koban",
    version,
    about = "Koban: detection, hunting and response for a 24/7 SOC"
)]
struct Cli {
    /// Configuration file (default: ./koban.toml when present).
    #[arg(long, global = true)]
    config: Option<PathBuf>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run Sigma rules over log files and folders (EVTX, JSON/NDJSON, zip, syslog).
    Hunt(HuntArgs),
    /// Work with Sigma rules.
    Rules {
        #[command(subcommand)]
        command: RulesCommand,
    },
    /// Work with response playbooks.
    Playbook {
        #[command(subcommand)]
        command: PlaybookCommand,
    },
    /// Run the intake server: syslog (UDP/TCP/TLS), HTTPS NDJSON, Elasticsearch _bulk,
    /// Splunk HEC and EVTX upload, every record durable in the WAL before it is acked.
    ///
    /// Listens on loopback only unless `koban.toml` says otherwise ([server], [syslog],
    /// [wal], [backpressure]). On first start it creates the data dir, a self-signed
    /// certificate, the tenant `default` and the admin account, whose one-time password
    /// is printed once. Stops cleanly on SIGTERM or ctrl-c.
    Serve(ServeArgs),
    /// Manage tenants (in the data dir's state database).
    Tenant {
        #[command(subcommand)]
        command: TenantCommand,
    },
    /// Create tokens: ingest tokens bound to a tenant and source, or admin API tokens.
    Token {
        #[command(subcommand)]
        command: TokenCommand,
    },
}

#[derive(clap::Args)]
struct ServeArgs {
    /// Data directory (WAL, state database, certificate); created on first start.
    /// Overrides `server.data_dir`. Default: ./koban-data
    #[arg(long)]
    data_dir: Option<PathBuf>,
}

#[derive(clap::Args)]
struct DataDirArg {
    /// Data directory of the server (default: `server.data_dir`, else ./koban-data).
    #[arg(long)]
    data_dir: Option<PathBuf>,
}

#[derive(Subcommand)]
enum TenantCommand {
    /// Add a tenant.
    Add {
        /// Letters, digits, `-`, `_`, `.` (1-64).
        name: String,
        #[command(flatten)]
        dir: DataDirArg,
    },
    /// List tenants.
    List {
        #[command(flatten)]
        dir: DataDirArg,
    },
}

#[derive(Subcommand)]
enum TokenCommand {
    /// Create a token and print it once (only its hash is kept).
    Create {
        /// The tenant the ingest token's records belong to.
        #[arg(long, required_unless_present = "admin")]
        tenant: Option<String>,
        /// The source name the ingest token's records carry.
        #[arg(long, required_unless_present = "admin")]
        source: Option<String>,
        /// An admin API token (for /api/v1/tenants and /api/v1/tokens) instead.
        #[arg(long, conflicts_with_all = ["tenant", "source"])]
        admin: bool,
        #[command(flatten)]
        dir: DataDirArg,
    },
}

#[derive(clap::Args)]
struct HuntArgs {
    /// A Sigma rule file or folder; repeat for several. Default: `hunt.rules` in the config.
    #[arg(long = "rules", short = 'r')]
    rules: Vec<PathBuf>,
    /// Report only detections at or above this level.
    #[arg(long, value_parser = parse_level)]
    min_level: Option<Level>,
    #[arg(long, value_enum, default_value = "table")]
    format: Format,
    /// Write detections here instead of standard output.
    #[arg(long, short = 'o')]
    output: Option<PathBuf>,
    /// Test every rule against every event, ignoring log sources.
    #[arg(long)]
    all_rules_all_events: bool,
    /// Fold repeats of one rule on one host within the same second into one
    /// detection with a count (default: every match is its own detection).
    #[arg(long)]
    fold_repeats: bool,
    /// Print each unreadable file or record (otherwise only their count and the first few).
    #[arg(long)]
    show_errors: bool,
    /// Worker threads (default: one per core).
    #[arg(long)]
    threads: Option<usize>,
    /// Log files or folders to hunt through.
    #[arg(required = true)]
    paths: Vec<PathBuf>,
}

#[derive(Subcommand)]
enum RulesCommand {
    /// Load rules and report every one that fails, with file, line and reason.
    Check {
        /// Rule files or folders.
        #[arg(required = true)]
        paths: Vec<PathBuf>,
    },
}

#[derive(Subcommand)]
enum PlaybookCommand {
    /// Check playbook files (YAML) and report every error of each, by path, as the
    /// server would on upload; exits 1 when one fails.
    Check {
        /// Playbook files.
        #[arg(required = true)]
        paths: Vec<PathBuf>,
    },
}

fn parse_level(s: &str) -> Result<Level, String> {
    Level::parse(s)
        .ok_or_else(|| format!("`{s}` is not one of informational, low, medium, high, critical"))
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match run(cli) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("koban: {e:#}");
            ExitCode::from(2)
        }
    }
}

fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    let config = Config::load(cli.config.as_deref())?;
    let options = CompileOptions {
        placeholders: config.sigma.placeholders.clone(),
    };
    match cli.command {
        Command::Rules {
            command: RulesCommand::Check { paths },
        } => rules_check(&paths, &options),
        Command::Playbook {
            command: PlaybookCommand::Check { paths },
        } => Ok(playbook_check(&paths)),
        Command::Hunt(args) => hunt_cmd(args, &config, &options),
        Command::Serve(args) => {
            let sc = serve::server_config(&config, args.data_dir.as_deref())?;
            serve::serve(sc)?;
            Ok(ExitCode::SUCCESS)
        }
        Command::Tenant { command } => {
            match command {
                TenantCommand::Add { name, dir } => {
                    let sc = serve::server_config(&config, dir.data_dir.as_deref())?;
                    serve::tenant_add(&sc.data_dir, &name)?
                }
                TenantCommand::List { dir } => {
                    let sc = serve::server_config(&config, dir.data_dir.as_deref())?;
                    serve::tenant_list(&sc.data_dir)?
                }
            }
            Ok(ExitCode::SUCCESS)
        }
        Command::Token {
            command:
                TokenCommand::Create {
                    tenant,
                    source,
                    admin,
                    dir,
                },
        } => {
            let sc = serve::server_config(&config, dir.data_dir.as_deref())?;
            serve::token_create(&sc.data_dir, tenant.as_deref(), source.as_deref(), admin)?;
            Ok(ExitCode::SUCCESS)
        }
    }
}

fn rules_check(paths: &[PathBuf], options: &CompileOptions) -> anyhow::Result<ExitCode> {
    let loaded = load_rules(paths, options, Routing::LogSource)?;
    let mut out = std::io::stdout().lock();
    for e in &loaded.errors {
        writeln!(out, "error: {e}")?;
    }
    for w in &loaded.warnings {
        writeln!(
            out,
            "warning: {} [{}]: {}",
            display_path(&w.file),
            w.rule,
            w.message
        )?;
    }
    let (rules, filters, correlations) = loaded.kinds;
    writeln!(
        out,
        "{} files: {} rules, {} filters, {} correlations loaded; {} errors, {} warnings",
        loaded.files,
        rules,
        filters,
        correlations,
        loaded.errors.len(),
        loaded.warnings.len()
    )?;
    Ok(if loaded.errors.is_empty() {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}

fn hunt_cmd(args: HuntArgs, config: &Config, options: &CompileOptions) -> anyhow::Result<ExitCode> {
    if let Some(n) = args.threads {
        rayon::ThreadPoolBuilder::new()
            .num_threads(n)
            .build_global()
            .context("cannot start worker threads")?;
    }
    let rule_paths = if args.rules.is_empty() {
        config.hunt.rules.clone()
    } else {
        args.rules.clone()
    };
    if rule_paths.is_empty() {
        anyhow::bail!("no rules: pass --rules DIR or set hunt.rules in koban.toml");
    }
    let min_level = match (args.min_level, &config.hunt.min_level) {
        (Some(l), _) => l,
        (None, Some(s)) => parse_level(s).map_err(|e| anyhow::anyhow!("hunt.min_level: {e}"))?,
        (None, None) => Level::Informational,
    };
    let routing = if args.all_rules_all_events {
        Routing::All
    } else {
        Routing::LogSource
    };
    let started = std::time::Instant::now();
    let loaded = load_rules(&rule_paths, options, routing)?;
    let load_time = started.elapsed();
    for e in loaded
        .errors
        .iter()
        .take(if args.show_errors { usize::MAX } else { 5 })
    {
        eprintln!("rule error: {e}");
    }
    let reader = koban_parse::Reader::new()?;
    let (files, skipped, walk_errors) = hunt::input_files(&args.paths);
    for e in &walk_errors {
        eprintln!("input error: {e}");
    }
    let options = hunt::HuntOptions {
        min_level,
        fold_repeats: args.fold_repeats,
    };
    let mut result = hunt::run(&loaded.set, &reader, &files, options);
    result.stats.skipped_files = skipped;
    for e in result
        .errors
        .iter()
        .take(if args.show_errors { usize::MAX } else { 10 })
    {
        eprintln!("read error: {e}");
    }
    {
        let mut sink: Box<dyn Write> = match &args.output {
            Some(p) => Box::new(BufWriter::new(
                std::fs::File::create(p)
                    .with_context(|| format!("cannot create {}", p.display()))?,
            )),
            None => Box::new(BufWriter::new(std::io::stdout().lock())),
        };
        output::write(args.format, &result.detections, &mut *sink)?;
        sink.flush()?;
    }
    summary(&loaded, &result, load_time);
    Ok(ExitCode::SUCCESS)
}

fn summary(
    loaded: &koban::rules::LoadedRules,
    result: &hunt::HuntOutput,
    load_time: std::time::Duration,
) {
    let s = &result.stats;
    let mut by_level = [0usize; 5];
    for d in &result.detections {
        by_level[d.level as usize] += 1;
    }
    let secs = s.elapsed.as_secs_f64().max(1e-9);
    eprintln!(
        "summary: {} rules ({} correlations, {} rule errors) loaded in {:.2}s; {} files ({} skipped as not logs, {} read errors), {} events in {:.2}s ({:.0} events/s)",
        loaded.set.rules().len(),
        loaded.set.correlations().len(),
        loaded.errors.len(),
        load_time.as_secs_f64(),
        s.files,
        s.skipped_files,
        s.errors,
        s.events,
        secs,
        s.events as f64 / secs
    );
    eprintln!(
        "detections: {} (critical {}, high {}, medium {}, low {}, informational {})",
        result.detections.len(),
        by_level[4],
        by_level[3],
        by_level[2],
        by_level[1],
        by_level[0]
    );
}

/// `koban playbook check`: each file loaded as the server loads an upload.
fn playbook_check(paths: &[PathBuf]) -> ExitCode {
    let mut failed = 0;
    for p in paths {
        let text = match std::fs::read_to_string(p) {
            Ok(t) => t,
            Err(e) => {
                println!("{}: {e}", p.display());
                failed += 1;
                continue;
            }
        };
        match koban_respond::Playbook::parse(&text) {
            Ok(pb) => {
                let steps = pb.steps().count();
                println!("{}: ok — {} ({steps} steps)", p.display(), pb.id);
            }
            Err(errors) => {
                failed += 1;
                println!("{}: {} errors", p.display(), errors.len());
                for e in errors {
                    println!("  {e}");
                }
            }
        }
    }
    if failed == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    }
}
