//! The command line: `mudmap [--config FILE] [serve|migrate|check-config|default-config]`.
//! Each command loads configuration the same way and reports failures as one line on stderr.

use std::path::PathBuf;

use anyhow::Context;
use clap::{Parser, Subcommand};

use crate::config::{Loaded, Settings, DEFAULT_CONFIG};
use crate::store::Store;

#[derive(Debug, Parser)]
#[command(
    name = "mudmap",
    version,
    about = "Mudmap: register pfSense firewalls once, then monitor and change all of them safely over SSH.",
    long_about = None,
)]
pub struct Cli {
    /// Configuration file (TOML). Also read from MUDMAP_CONFIG. Environment variables MUDMAP_* override it.
    #[arg(long, short = 'c', global = true, value_name = "FILE")]
    pub config: Option<PathBuf>,

    #[command(subcommand)]
    pub command: Option<Command>,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Serve the web application (the default). Creates the SQLite database on first start and
    /// applies pending migrations. Stops gracefully on SIGINT/SIGTERM.
    Serve,
    /// Create the database if needed, apply pending migrations, and exit.
    Migrate,
    /// Check the configuration file and environment, the database connection and the listen
    /// address, then print the effective settings (secrets redacted). Exits non-zero on any
    /// problem, including unknown keys.
    CheckConfig,
    /// Print a commented example configuration listing every key with its default and its
    /// environment variable.
    DefaultConfig,
    /// Run a fleet of simulated pfSense firewalls on loopback (demo, tests, benchmarks). Prints
    /// one JSON line when ready; stops on SIGINT/SIGTERM.
    Sim(SimArgs),
    /// A mail sink for development and tests: accepts every message over SMTP on loopback and
    /// writes it to DIR. Prints one JSON line when ready; stops on SIGINT/SIGTERM.
    MailSink(MailSinkArgs),
    /// Background jobs of the whole instance (the operator's view; org admins have Settings → Jobs).
    #[command(subcommand)]
    Jobs(JobsCommand),
    /// Run a benchmark and print its figures as JSON lines.
    #[command(subcommand)]
    Bench(BenchCommand),
}

#[derive(Debug, Subcommand)]
pub enum JobsCommand {
    /// List jobs, most recently changed first, one JSON object per line.
    List {
        /// Only jobs in this state: queued, running, done or failed.
        #[arg(long)]
        state: Option<String>,
        #[arg(long, default_value_t = 50)]
        limit: u32,
    },
    /// Put a failed job back in the queue with a fresh set of attempts.
    Retry {
        /// The job's id (from `mudmap jobs list --state failed`).
        id: String,
    },
}

#[derive(Debug, Subcommand)]
pub enum BenchCommand {
    /// SSH engine fan-out against a simulated fleet in a separate process: cold connect, warm
    /// rounds over held connections, and a fresh-connection-per-request comparison.
    Fanout(crate::bench::fanout::FanoutArgs),
    /// The durable job queue on SQLite and PostgreSQL: enqueue-to-delivered mail latency to an
    /// SMTP sink on loopback, and queue throughput.
    Jobs(crate::bench::jobs::JobsArgs),
    /// The fleet dashboard at scale: a real server polling a simulated fleet (both in child
    /// processes); polling CPU and memory, fleet page and fleet JSON latency under concurrent load.
    Dashboard(crate::bench::dashboard::DashboardArgs),
    /// Configuration backups: a full round, a second round of unchanged configurations, and
    /// fleet-wide search latency.
    Backups(crate::bench::backups::BackupsArgs),
}

#[derive(Debug, clap::Args)]
pub struct SimArgs {
    /// Number of simulated devices.
    #[arg(long, default_value_t = 10)]
    pub devices: u32,
    /// Port of device 0; device i listens on base-port + i.
    #[arg(long, default_value_t = 10022)]
    pub base_port: u16,
    /// Loopback address to listen on.
    #[arg(long, default_value = "127.0.0.1")]
    pub bind: std::net::IpAddr,
    /// Identity seed: the same seed gives the same host keys, credentials and configs.
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// Simulated round-trip time per device, e.g. 50ms (half each way, on every packet).
    #[arg(long, default_value = "0ms", value_parser = crate::bench::parse_duration)]
    pub rtt: std::time::Duration,
    /// Random extra delay per packet, up to this much.
    #[arg(long, default_value = "0ms", value_parser = crate::bench::parse_duration)]
    pub jitter: std::time::Duration,
    /// Password of root and admin on every device.
    #[arg(long, default_value = "pfsense")]
    pub password: String,
    /// Address of the control API for switching faults, e.g. 127.0.0.1:9922.
    #[arg(long)]
    pub control: Option<std::net::SocketAddr>,
    /// Start the devices un-activated (no agent, no service account), as new firewalls are;
    /// without it they start as the demo fleet and the benchmarks expect: already activated.
    #[arg(long)]
    pub fresh: bool,
    /// How long a device stays down after a reboot from Mudmap, e.g. 8s.
    #[arg(long, default_value = "8s", value_parser = crate::bench::parse_duration)]
    pub reboot_time: std::time::Duration,
}

#[derive(Debug, clap::Args)]
pub struct MailSinkArgs {
    /// Loopback address to listen on (port 0 picks a free port, printed when ready).
    #[arg(long, default_value = "127.0.0.1:2525")]
    pub listen: std::net::SocketAddr,
    /// Directory to write each message to as `<n>-<unix-ms>.eml` (created if missing); without
    /// it, messages are only counted in the log.
    #[arg(long, value_name = "DIR")]
    pub dir: Option<PathBuf>,
}

/// Run the parsed command. Errors bubble up to `main`, which prints them as one line.
pub async fn execute(cli: Cli) -> anyhow::Result<()> {
    match cli.command.unwrap_or(Command::Serve) {
        Command::DefaultConfig => {
            print!("{DEFAULT_CONFIG}");
            Ok(())
        }
        Command::Serve => serve(cli.config).await,
        Command::Migrate => migrate(cli.config).await,
        Command::CheckConfig => check_config(cli.config).await,
        Command::Sim(args) => sim(cli.config, args).await,
        Command::MailSink(args) => mail_sink(cli.config, args).await,
        Command::Jobs(command) => jobs(cli.config, command).await,
        Command::Bench(BenchCommand::Fanout(args)) => crate::bench::fanout::run(args).await,
        Command::Bench(BenchCommand::Jobs(args)) => crate::bench::jobs::run(args).await,
        Command::Bench(BenchCommand::Dashboard(args)) => crate::bench::dashboard::run(args).await,
        Command::Bench(BenchCommand::Backups(args)) => crate::bench::backups::run(args).await,
    }
}

async fn sim(config: Option<PathBuf>, args: SimArgs) -> anyhow::Result<()> {
    let loaded = load(config)?;
    crate::telemetry::init(&loaded.settings.log)?;
    let options = crate::sim::SimOptions {
        devices: args.devices,
        base_port: args.base_port,
        bind: args.bind,
        seed: args.seed,
        latency: crate::sim::Latency {
            rtt: args.rtt,
            jitter: args.jitter,
        },
        password: args.password,
        authorize_service_keys: !args.fresh,
        reboot_duration: args.reboot_time,
    };
    let started = std::time::Instant::now();
    let sim = std::sync::Arc::new(crate::sim::Simulator::start(options).await?);
    let control = match args.control {
        Some(addr) => {
            if !addr.ip().is_loopback() {
                anyhow::bail!("--control {addr}: the control API only listens on loopback");
            }
            let listener = crate::bind(addr).await?;
            let router = crate::sim::control::router(sim.clone());
            tokio::spawn(async move { axum::serve(listener, router).await });
            Some(addr)
        }
        None => None,
    };
    let first = sim.devices().first().map(|d| d.port).unwrap_or(0);
    println!(
        "{}",
        serde_json::json!({
            "ready": true,
            "devices": sim.devices().len(),
            "base_port": first,
            "control": control.map(|a| a.to_string()),
            "startup_ms": started.elapsed().as_millis() as u64,
        })
    );
    tracing::info!(
        devices = sim.devices().len(),
        base_port = first,
        "simulated fleet is up"
    );
    crate::shutdown::signal().await;
    Ok(())
}

async fn mail_sink(config: Option<PathBuf>, args: MailSinkArgs) -> anyhow::Result<()> {
    let loaded = load(config)?;
    crate::telemetry::init(&loaded.settings.log)?;
    if !args.listen.ip().is_loopback() {
        anyhow::bail!(
            "--listen {}: the mail sink only listens on loopback",
            args.listen
        );
    }
    let sink = crate::mail::sink::SmtpSink::start(args.listen, args.dir.clone()).await?;
    println!(
        "{}",
        serde_json::json!({
            "listen": sink.addr().to_string(),
            "dir": args.dir.as_ref().map(|d| d.display().to_string()),
        })
    );
    tracing::info!(listen = %sink.addr(), "mail sink is up");
    crate::shutdown::signal().await;
    sink.stop().await;
    Ok(())
}

fn load(config: Option<PathBuf>) -> anyhow::Result<Loaded> {
    Ok(Settings::load(config.as_deref())?)
}

async fn serve(config: Option<PathBuf>) -> anyhow::Result<()> {
    let loaded = load(config)?;
    crate::telemetry::init(&loaded.settings.log)?;
    for warning in &loaded.warnings {
        tracing::warn!("{warning}");
    }
    let settings = loaded.settings;
    std::fs::create_dir_all(&settings.data_dir).with_context(|| {
        format!(
            "cannot create the data directory {} (set data_dir / MUDMAP_DATA_DIR to a writable place)",
            settings.data_dir.display()
        )
    })?;
    let listener = crate::bind(settings.listen).await?;
    crate::run(settings, listener, crate::shutdown::signal()).await
}

async fn migrate(config: Option<PathBuf>) -> anyhow::Result<()> {
    let loaded = load(config)?;
    crate::telemetry::init(&loaded.settings.log)?;
    for warning in &loaded.warnings {
        tracing::warn!("{warning}");
    }
    let settings = loaded.settings;
    let url = settings.database_url();
    let store = Store::connect(&url, &settings.database).await?;
    let report = store.migrate().await?;
    println!(
        "{}: applied {} migration(s); schema version {}",
        url.redacted(),
        report.applied.len(),
        report.version
    );
    store.close().await;
    Ok(())
}

async fn jobs(config: Option<PathBuf>, command: JobsCommand) -> anyhow::Result<()> {
    let settings = load(config)?.settings;
    let store = Store::connect(&settings.database_url(), &settings.database).await?;
    store.migrate().await?;
    let queue = crate::jobs::Queue::new(store.clone());
    match command {
        JobsCommand::List { state, limit } => {
            let state = match state.as_deref() {
                None => None,
                Some(text) => Some(crate::jobs::JobState::parse(text).with_context(|| {
                    format!("--state {text:?}: use queued, running, done or failed")
                })?),
            };
            for job in queue.list(None, state, limit).await? {
                println!(
                    "{}",
                    serde_json::json!({
                        "id": job.id,
                        "title": crate::notify::job_title(&job.kind, &job.payload),
                        "kind": job.kind,
                        "state": job.state,
                        "attempts": job.attempts,
                        "max_attempts": job.max_attempts,
                        "last_error": job.last_error,
                        "org_id": job.org_id,
                        "updated_at_ms": job.updated_at,
                    })
                );
            }
        }
        JobsCommand::Retry { id } => {
            anyhow::ensure!(
                queue.retry(&id, None).await?,
                "no failed job {id}: list them with `mudmap jobs list --state failed`"
            );
            println!("job {id} is queued again; a running server picks it up within seconds");
        }
    }
    store.close().await;
    Ok(())
}

async fn check_config(config: Option<PathBuf>) -> anyhow::Result<()> {
    let loaded = load(config)?;
    match &loaded.source {
        Some(path) => println!("config file: {}", path.display()),
        None => println!("config file: none (defaults and environment only)"),
    }
    let mut problems = loaded.warnings.len();
    for warning in &loaded.warnings {
        println!("problem: {warning}");
    }
    let settings = &loaded.settings;
    println!("effective settings: {settings:#?}");

    match crate::bind(settings.listen).await {
        Ok(_) => println!("ok: listen address {} is free", settings.listen),
        Err(e) => {
            problems += 1;
            println!("problem: {e}");
        }
    }
    let url = settings.database_url();
    let sqlite_file_missing = !url.is_postgres()
        && !settings.data_dir.join("mudmap.db").exists()
        && settings.database.url.is_none();
    if sqlite_file_missing {
        println!(
            "ok: database {} will be created on first start",
            url.redacted()
        );
    } else {
        match Store::connect(&url, &settings.database).await {
            Ok(store) => {
                let version = store.schema_version().await.unwrap_or(0);
                println!(
                    "ok: database {} reachable ({}, schema version {version})",
                    url.redacted(),
                    store.backend().name()
                );
                store.close().await;
            }
            Err(e) => {
                problems += 1;
                println!("problem: {e}");
            }
        }
    }
    if problems > 0 {
        anyhow::bail!("{problems} problem(s) in the configuration; see above");
    }
    println!("configuration is valid");
    Ok(())
}
