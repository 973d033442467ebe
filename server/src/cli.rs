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
    }
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
