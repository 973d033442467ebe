//! `mudmap bench dashboard`: the fleet dashboard at scale. A simulated fleet runs in one child
//! process and a real `mudmap serve` (SQLite) in another, with every device already activated
//! (written to its database with sealed keys, as activation would). Once every device has been
//! polled, it measures (one JSON line each):
//!
//! - `polling`: CPU the server spends polling the whole fleet (percent of one core, over a window
//!   with no HTTP load) and its resident memory;
//! - `fleet_page_ssr`: the fleet page rendered by the server (`GET /`), p50/p99 at N clients;
//! - `fleet_json`: the fleet server function (`POST /api/fleet/list`), p50/p99 at N clients;
//! - `after_load`: the server's resident memory after the HTTP load.

use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context;
use base64::Engine as _;
use serde_json::json;

use super::{percentiles, process_cpu_ms, process_rss_kib, round1, spawn_simulator};
use crate::config::Settings;
use crate::crypto::{MasterKey, Sealer};
use crate::sim::{host_key, service_key};
use crate::store::{now_ms, Store};

#[derive(Debug, Clone, clap::Args)]
pub struct DashboardArgs {
    /// Simulated devices, all activated.
    #[arg(long, default_value_t = 1000)]
    pub devices: u32,
    /// Seconds between two polls of a device.
    #[arg(long, default_value_t = 30)]
    pub poll_secs: u64,
    /// Seconds of polling over which the server's CPU is measured.
    #[arg(long, default_value_t = 60)]
    pub measure_secs: u64,
    /// Concurrent HTTP clients.
    #[arg(long, default_value_t = 50)]
    pub clients: usize,
    /// Requests per HTTP measurement.
    #[arg(long, default_value_t = 2000)]
    pub requests: usize,
    /// Simulated round-trip time to every device.
    #[arg(long, default_value = "20ms", value_parser = super::parse_duration)]
    pub rtt: Duration,
    /// First port of the simulated fleet.
    #[arg(long, default_value_t = 21000)]
    pub base_port: u16,
    /// Port of the server under test.
    #[arg(long, default_value_t = 3950)]
    pub port: u16,
}

pub(super) const SEED: u64 = 11;
const EMAIL: &str = "bench@mudmap.test";
const PASSWORD: &str = "bench-password-not-secret";

pub async fn run(args: DashboardArgs) -> anyhow::Result<()> {
    let bench = BenchServer::start(&Fleet {
        devices: args.devices,
        base_port: args.base_port,
        rtt: args.rtt,
        port: args.port,
        poll_secs: args.poll_secs,
        clients: args.clients,
    })
    .await?;
    let (client, base, cookie, pid) = (&bench.client, &bench.base, &bench.cookie, &bench.pid);

    let cpu_before = process_cpu_ms(pid);
    tokio::time::sleep(Duration::from_secs(args.measure_secs)).await;
    let cpu_ms = process_cpu_ms(pid).saturating_sub(cpu_before);
    println!(
        "{}",
        json!({
            "phase": "polling", "devices": args.devices, "interval_s": args.poll_secs,
            "window_s": args.measure_secs,
            "cpu_pct_of_one_core": round1(cpu_ms as f64 / (args.measure_secs as f64 * 1000.0) * 100.0),
            "server_rss_mib": round1(process_rss_kib(pid) as f64 / 1024.0),
        })
    );

    for phase in ["fleet_page_ssr", "fleet_json"] {
        let base = base.clone();
        let make: MakeRequest = if phase == "fleet_json" {
            Arc::new(move |c: &reqwest::Client| {
                c.post(format!("{base}/api/fleet/list"))
                    .form(&[("sort", "cpu"), ("descending", "true")])
            })
        } else {
            Arc::new(move |c: &reqwest::Client| c.get(format!("{base}/")))
        };
        let (mut samples, errors, wall) =
            load(client, cookie, args.clients, args.requests, make).await;
        let (p50, p99) = percentiles(&mut samples);
        println!(
            "{}",
            json!({
                "phase": phase, "devices": args.devices, "clients": args.clients,
                "requests": samples.len(), "errors": errors, "p50_ms": p50, "p99_ms": p99,
                "requests_per_s": round1(samples.len() as f64 / wall.as_secs_f64()),
            })
        );
    }
    println!(
        "{}",
        json!({ "phase": "after_load", "server_rss_mib": round1(process_rss_kib(pid) as f64 / 1024.0) })
    );
    bench.stop().await;
    Ok(())
}

/// What a benchmark's fleet and server are.
pub(super) struct Fleet {
    pub devices: u32,
    pub base_port: u16,
    pub rtt: Duration,
    /// Port of the server under test.
    pub port: u16,
    pub poll_secs: u64,
    /// Concurrent HTTP clients the benchmark will use.
    pub clients: usize,
}

/// A simulated fleet and a real `mudmap serve` (SQLite, every device already activated, no
/// scheduled backups), both in child processes, with a signed-in HTTP client; every device has
/// answered a poll once `start` returns.
pub(super) struct BenchServer {
    pub settings: Settings,
    pub base: String,
    pub client: reqwest::Client,
    pub cookie: String,
    /// The server's process id (for its CPU and memory figures).
    pub pid: String,
    server: tokio::process::Child,
    _sim: tokio::process::Child,
    _dir: tempfile::TempDir,
}

impl BenchServer {
    pub async fn start(fleet: &Fleet) -> anyhow::Result<Self> {
        let dir = tempfile::tempdir().context("creating a data directory")?;
        let sim = spawn_simulator(fleet.devices, fleet.base_port, fleet.rtt, SEED).await?;
        let settings = Settings::for_data_dir(dir.path());
        seed_database(&settings, fleet.devices, fleet.base_port).await?;
        let exe = std::env::current_exe().context("finding the mudmap binary")?;
        let base = format!("http://127.0.0.1:{}", fleet.port);
        let server = tokio::process::Command::new(exe)
            .arg("serve")
            .env("MUDMAP_DATA_DIR", dir.path())
            .env("MUDMAP_LISTEN", format!("127.0.0.1:{}", fleet.port))
            .env("MUDMAP_PUBLIC_URL", &base)
            .env("MUDMAP_POLL_INTERVAL_SECS", fleet.poll_secs.to_string())
            // What is measured is started by the benchmark: no scheduled backup round at start.
            .env("MUDMAP_BACKUPS_INTERVAL_SECS", "0")
            .env("MUDMAP_LOG_LEVEL", "warn")
            .kill_on_drop(true)
            .spawn()
            .context("starting the server")?;
        let pid = server.id().map(|p| p.to_string()).unwrap_or_default();
        let client = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .pool_max_idle_per_host(fleet.clients)
            .build()?;
        wait_ready(&client, &base).await?;
        let cookie = sign_in(&client, &base).await?;
        wait_all_polled(&client, &base, &cookie, fleet.devices, fleet.poll_secs).await?;
        Ok(Self {
            settings,
            base,
            client,
            cookie,
            pid,
            server,
            _sim: sim,
            _dir: dir,
        })
    }

    pub async fn stop(mut self) {
        let _ = self.server.kill().await;
    }
}

/// The bench account, its organisation, and every simulated device as an activated device.
async fn seed_database(settings: &Settings, devices: u32, base_port: u16) -> anyhow::Result<()> {
    let store = Store::connect(&settings.database_url(), &settings.database).await?;
    store.migrate().await?;
    let master = MasterKey::load_or_create(&settings.master_key_file())?;
    let sealer = Sealer::new(&master);
    drop(master);
    let hash = crate::accounts::password::hash_blocking(PASSWORD.to_owned())
        .await
        .map_err(|e| anyhow::anyhow!("hashing the bench password: {e}"))?;
    let mut tx = store.begin().await?;
    let user = crate::accounts::rows::insert_user(&mut tx, EMAIL, &hash, true).await?;
    let org = crate::accounts::rows::insert_org_with_owner(&mut tx, "Bench MSP", &user).await?;
    let now = now_ms();
    for i in 0..devices {
        let id = uuid::Uuid::now_v7().to_string();
        let key = service_key(SEED, i);
        let pem = key.to_openssh(russh::keys::ssh_key::LineEnding::LF)?;
        let sealed = sealer.seal(pem.as_bytes(), id.as_bytes())?;
        let host = host_key(SEED, i);
        let version = crate::sim::model::DeviceModel::new(SEED, i).version;
        sqlx::query(
            "INSERT INTO devices (id, org_id, name, host, port, tags, notes, state, host_key, \
             host_key_fingerprint, pfsense_version, pfsense_edition, agent_version, service_user, \
             service_key, service_public_key, created_at, updated_at, activated_at) \
             VALUES ($1, $2, $3, '127.0.0.1', $4, $5, '', 'active', $6, $7, $11, $12, $13, \
             'root', $8, $9, $10, $10, $10)",
        )
        .bind(&id)
        .bind(&org)
        .bind(format!("fw-{i:05}"))
        .bind(i64::from(base_port) + i64::from(i))
        .bind(format!("customer-{:02}", i % 40))
        .bind(host.public_key().to_openssh()?)
        .bind(crate::ssh::fingerprint(host.public_key()))
        .bind(base64::engine::general_purpose::STANDARD.encode(&sealed))
        .bind(key.public_key().to_openssh()?)
        .bind(now)
        // As the simulated firewall's agent will report them (no version changes to record).
        .bind(&version.version)
        .bind(&version.edition)
        .bind(crate::sim::agent::SIM_AGENT_VERSION)
        .execute(&mut *tx)
        .await?;
    }
    tx.commit().await?;
    store.close().await;
    Ok(())
}

/// Wait until every device has answered a poll (online, or degraded with a reason), then print
/// the `setup` line.
async fn wait_all_polled(
    client: &reqwest::Client,
    base: &str,
    cookie: &str,
    devices: u32,
    poll_secs: u64,
) -> anyhow::Result<()> {
    let started = Instant::now();
    let deadline = Duration::from_secs(poll_secs * 4 + 120);
    loop {
        let page = fleet_json(client, base, cookie).await?;
        let polled = page["counts"]["online"].as_u64().unwrap_or(0)
            + page["counts"]["degraded"].as_u64().unwrap_or(0);
        if polled >= u64::from(devices) {
            break;
        }
        anyhow::ensure!(
            started.elapsed() < deadline,
            "only {polled} of {devices} devices came online within {} s",
            deadline.as_secs()
        );
        tokio::time::sleep(Duration::from_secs(2)).await;
    }
    println!(
        "{}",
        json!({ "phase": "setup", "devices": devices, "all_online_after_s": round1(started.elapsed().as_secs_f64()) })
    );
    Ok(())
}

async fn wait_ready(client: &reqwest::Client, base: &str) -> anyhow::Result<()> {
    for _ in 0..600 {
        if let Ok(r) = client.get(format!("{base}/readyz")).send().await {
            if r.status().is_success() {
                return Ok(());
            }
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    anyhow::bail!("the server did not become ready within 60 s")
}

async fn sign_in(client: &reqwest::Client, base: &str) -> anyhow::Result<String> {
    let response = client
        .post(format!("{base}/api/auth/login"))
        .form(&[("email", EMAIL), ("password", PASSWORD)])
        .send()
        .await?;
    anyhow::ensure!(
        response.status().is_success(),
        "signing in failed: {}",
        response.status()
    );
    response
        .headers()
        .get_all("set-cookie")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .filter_map(|v| v.split(';').next())
        .find(|pair| pair.starts_with("mudmap_session="))
        .map(str::to_owned)
        .context("no session cookie after signing in")
}

async fn fleet_json(
    client: &reqwest::Client,
    base: &str,
    cookie: &str,
) -> anyhow::Result<serde_json::Value> {
    let response = client
        .post(format!("{base}/api/fleet/list"))
        .header("cookie", cookie)
        .form(&[("sort", "name")])
        .send()
        .await?;
    anyhow::ensure!(
        response.status().is_success(),
        "fleet/list: {}",
        response.status()
    );
    Ok(response.json().await?)
}

/// Builds one request of a load (the cookie is added by [`load`]).
pub(super) type MakeRequest =
    Arc<dyn Fn(&reqwest::Client) -> reqwest::RequestBuilder + Send + Sync>;

/// `requests` requests made by `make` from `clients` concurrent clients: each one's latency, the
/// number that failed, and the wall time.
pub(super) async fn load(
    client: &reqwest::Client,
    cookie: &str,
    clients: usize,
    requests: usize,
    make: MakeRequest,
) -> (Vec<Duration>, usize, Duration) {
    let remaining = Arc::new(std::sync::atomic::AtomicUsize::new(requests));
    let started = Instant::now();
    let mut tasks = tokio::task::JoinSet::new();
    for _ in 0..clients {
        let (client, cookie, remaining, make) = (
            client.clone(),
            cookie.to_owned(),
            remaining.clone(),
            make.clone(),
        );
        tasks.spawn(async move {
            let mut samples = Vec::new();
            let mut errors = 0usize;
            while remaining
                .fetch_update(
                    std::sync::atomic::Ordering::Relaxed,
                    std::sync::atomic::Ordering::Relaxed,
                    |n| n.checked_sub(1),
                )
                .is_ok()
            {
                let t = Instant::now();
                let ok = match make(&client).header("cookie", &cookie).send().await {
                    Ok(r) => r.status().is_success() && r.bytes().await.is_ok(),
                    Err(_) => false,
                };
                samples.push(t.elapsed());
                if !ok {
                    errors += 1;
                }
            }
            (samples, errors)
        });
    }
    let mut samples = Vec::with_capacity(requests);
    let mut errors = 0;
    while let Some(Ok((s, e))) = tasks.join_next().await {
        samples.extend(s);
        errors += e;
    }
    (samples, errors, started.elapsed())
}
