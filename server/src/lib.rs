//! Mudmap's server: configuration, the database store, the HTTP edge and the services behind it.
//! The binary (`main.rs`) only parses the command line and calls into here; integration tests call
//! [`run`] directly with a listener on port 0, so they boot exactly what production boots.

pub mod accounts;
pub mod activation;
pub mod agent;
pub mod audit;
pub mod backups;
pub mod bench;
pub mod changes;
pub mod cli;
pub mod config;
pub mod crypto;
pub mod demo;
pub mod devices;
pub mod fleet;
pub mod groups;
pub mod http;
pub mod jobs;
pub mod live;
pub mod mail;
pub mod monitor;
pub mod notify;
pub mod operate;
pub mod orgs;
pub mod pfsense;
pub mod search;
pub mod services;
pub mod shutdown;
pub mod sim;
pub mod ssh;
pub mod state;
pub mod store;
pub mod telemetry;

use std::future::{Future, IntoFuture};
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use leptos::config::LeptosOptions;
use tokio::net::TcpListener;

use crate::config::Settings;
use crate::http::assets::SiteAssets;
use crate::state::AppState;
use crate::store::{MetaKey, Store};

/// The version of this build.
pub const VERSION: &str = env!("CARGO_PKG_VERSION");

/// Open the database, migrate, and serve on `listener` until `shutdown` resolves. In-flight
/// requests then get `settings.shutdown_grace_secs` to finish before they are cut off.
pub async fn run(
    settings: Settings,
    listener: TcpListener,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
    let addr = listener
        .local_addr()
        .context("reading the listener address")?;
    let store = Store::connect(&settings.database_url(), &settings.database).await?;
    let report = store.migrate().await?;
    if !report.applied.is_empty() {
        tracing::info!(migrations = ?report.applied, schema.version = report.version, "database migrated");
    }
    let instance_id = store
        .meta_get_or_init(MetaKey::InstanceId, &uuid::Uuid::new_v4().to_string())
        .await?;
    store
        .meta_get_or_init(MetaKey::InitializedAt, &store::now_ms().to_string())
        .await?;

    let assets = SiteAssets::discover();
    if !assets.complete {
        tracing::warn!(
            "the web front end is not built into this binary: pages render but stay static; run `make site` and rebuild"
        );
    }
    let leptos = LeptosOptions::builder()
        .output_name(assets.output_name.clone())
        .site_pkg_dir("pkg")
        .site_addr(addr)
        .build();
    let master_key = crypto::MasterKey::load_or_create(&settings.master_key_file())?;
    let sealer = Arc::new(crypto::Sealer::new(&master_key));
    let minter = Arc::new(crypto::TokenMinter::new(&master_key));
    drop(master_key);
    let public_url = settings.public_url(addr);
    let mailer = mail::Mailer::from_settings(&settings.smtp, &settings.data_dir)?;
    let engine = ssh::Engine::new(
        ssh::EngineConfig::default(),
        Arc::new(ssh::MemoryHostKeys::new()),
    );
    let queue = jobs::Queue::new(store.clone());
    let mut registry = jobs::worker::Registry::new();
    let live = live::Live::default();
    let config_backups = backups::Backups::new(backups::BackupDeps {
        store: store.clone(),
        engine: engine.clone(),
        sealer: sealer.clone(),
        queue: queue.clone(),
        live: live.clone(),
        mail_hold_down: Duration::from_secs(settings.poll.offline_mail_after_secs),
    });
    registry.register(
        backups::BACKUP_JOB,
        backups::BackupHandler::new(config_backups.clone()),
    );
    registry.register(
        notify::MAIL_JOB,
        Arc::new(notify::MailHandler::new(
            store.clone(),
            mailer.clone(),
            minter.clone(),
            public_url.clone(),
        )),
    );
    let worker = jobs::Worker::start(
        queue.clone(),
        registry,
        jobs::WorkerConfig {
            concurrency: usize::try_from(settings.jobs.concurrency).unwrap_or(16),
            ..jobs::WorkerConfig::default()
        },
    );
    let sessions =
        accounts::sessions::Sessions::new(store.clone(), public_url.starts_with("https://"));
    let account_deps = accounts::service::AccountDeps {
        store: store.clone(),
        queue: queue.clone(),
        sessions: sessions.clone(),
        throttle: accounts::throttle::Throttle::new(
            store.clone(),
            accounts::throttle::Limits::default(),
        ),
        sealer: sealer.clone(),
        minter,
    };
    let demo = if settings.demo.devices > 0 {
        let org_id = demo::ensure_account(&store, settings.demo.password.as_ref()).await?;
        let control = match settings.demo.control.as_deref().map(str::trim) {
            None | Some("") => None,
            Some(addr) => Some(addr.parse().with_context(|| {
                format!("demo.control {addr:?} is not an address such as 127.0.0.1:22199")
            })?),
        };
        Some(
            demo::start(
                &store,
                &org_id,
                settings.demo.devices,
                settings.demo.base_port,
                control,
            )
            .await?,
        )
    } else {
        None
    };
    let outages = monitor::outages::Outages::default();
    let devices = Arc::new(devices::DeviceService::new(devices::DeviceDeps {
        store: store.clone(),
        queue: queue.clone(),
        sealer,
        engine: engine.clone(),
        activations: activation::Activations::new(),
        outages: outages.clone(),
        instance_id: instance_id.clone(),
    }));
    let managed = devices.manage_fleet().await?;
    tracing::info!(devices = managed, "active devices handed to the SSH engine");
    let monitor = monitor::Monitor::start(
        store.clone(),
        engine.clone(),
        queue.clone(),
        monitor::MonitorConfig {
            mail_hold_down: Duration::from_secs(settings.poll.offline_mail_after_secs),
            ..monitor::MonitorConfig::every(Duration::from_secs(settings.poll.interval_secs))
        },
        outages,
        live.clone(),
    );
    let audit_retention = tokio::spawn(audit::retention::run(
        store.clone(),
        settings.audit.keep_days,
    ));
    let backup_schedule = tokio::spawn(backups::schedule::run(
        store.clone(),
        queue.clone(),
        settings.backups.clone(),
        Duration::from_secs(settings.poll.offline_mail_after_secs),
    ));
    let services = app::services::Services {
        system: Arc::new(services::system::SystemService::new(
            store.clone(),
            engine.clone(),
            instance_id.clone(),
        )),
        accounts: Arc::new(accounts::service::AccountService::new(account_deps.clone())),
        orgs: Arc::new(orgs::OrgService::new(account_deps)),
        devices: devices.clone(),
        groups: Arc::new(groups::GroupService::new(store.clone())),
        backups: backups::service::BackupService::new(
            store.clone(),
            queue.clone(),
            config_backups.clone(),
            live.clone(),
        ),
        search: search::SearchService::new(store.clone()),
        audit: audit::service::AuditService::new(store.clone()),
        changes: changes::service::ChangeService::new(store.clone(), config_backups),
    };
    let state = AppState {
        leptos,
        store: store.clone(),
        services,
        assets: Arc::new(assets),
        sessions,
        public_origin: origin_of(&public_url),
        live: live.clone(),
    };
    let router = http::router(state);

    tracing::info!(
        listen = %addr,
        database = store.backend().name(),
        schema.version = report.version,
        instance.id = %instance_id,
        version = VERSION,
        mail = %mailer.describe(),
        "Mudmap is serving on http://{addr}"
    );

    let (stopping_tx, mut stopping_rx) = tokio::sync::watch::channel(false);
    let grace = Duration::from_secs(settings.shutdown_grace_secs);
    // The job worker stops claiming the moment shutdown begins, and its running jobs use the same
    // grace period as the HTTP requests, concurrently (not one after the other).
    let stop_worker = worker.shutdown_trigger();
    let serve = axum::serve(
        listener,
        router.into_make_service_with_connect_info::<std::net::SocketAddr>(),
    )
    .with_graceful_shutdown(async move {
        shutdown.await;
        tracing::info!(
            "shutting down: no new connections, finishing in-flight requests and running jobs"
        );
        stop_worker.begin(grace);
        let _ = stopping_tx.send(true);
    })
    .into_future();
    let deadline = async move {
        // Resolves only once shutdown has begun and the grace period has passed.
        while !*stopping_rx.borrow_and_update() {
            if stopping_rx.changed().await.is_err() {
                std::future::pending::<()>().await;
            }
        }
        tokio::time::sleep(grace).await;
    };
    tokio::select! {
        result = serve => result.context("HTTP server failed")?,
        () = deadline => {
            tracing::warn!(grace_secs = grace.as_secs(), "shutdown deadline passed: dropping requests still in flight");
        }
    }
    // Waits only for what is left of the grace the worker was given when shutdown began.
    backup_schedule.abort();
    audit_retention.abort();
    worker.shutdown(grace).await;
    monitor.stop();
    engine.shutdown().await;
    if let Some(demo) = demo {
        demo.stop().await;
    }
    store.close().await;
    tracing::info!("stopped");
    Ok(())
}

/// `scheme://host[:port]` of a URL.
fn origin_of(url: &str) -> String {
    match url.split_once("://") {
        Some((scheme, rest)) => {
            let host = rest.split(['/', '?', '#']).next().unwrap_or_default();
            format!("{scheme}://{host}")
        }
        None => url.to_owned(),
    }
}

/// Bind the listen address, turning the usual failures into advice.
pub async fn bind(addr: std::net::SocketAddr) -> anyhow::Result<TcpListener> {
    TcpListener::bind(addr).await.map_err(|e| {
        let advice = match e.kind() {
            std::io::ErrorKind::AddrInUse => {
                "another process is using it: stop that process or choose another address with `listen` / MUDMAP_LISTEN (e.g. 127.0.0.1:3001)"
            }
            std::io::ErrorKind::PermissionDenied => {
                "ports below 1024 need privileges: use a port such as 3000, or run behind a reverse proxy"
            }
            std::io::ErrorKind::AddrNotAvailable => {
                "this machine has no such address: use 127.0.0.1, 0.0.0.0 or one of its own addresses"
            }
            _ => "check `listen` / MUDMAP_LISTEN",
        };
        anyhow::anyhow!("cannot listen on {addr}: {e} — {advice}")
    })
}
