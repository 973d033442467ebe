//! `mudmap bench backups`: configuration backups of a simulated fleet through the real path — a
//! real `mudmap serve` (SQLite) in a child process, its job queue, `config.get` over each
//! resident agent channel, hash check, parse, deflate, seal, store, search facts — and fleet-wide
//! search over the result. The fleet's configurations are of realistic, varied size (1 % of
//! firewalls carry 1,000–2,000 rules). One JSON line each:
//!
//! - `setup`: every device online;
//! - `polling`: the server's CPU while it only polls (the baseline the rounds are measured over);
//! - `round_1`: one full backup round: wall time, server CPU (raw, and net of polling), bytes of
//!   configuration read and stored, search facts written;
//! - `round_2`: the same again with every configuration unchanged: new configuration bytes stored
//!   (target: none — only revision rows), and the daily round's CPU-seconds ÷ 86,400 (target
//!   ≤ 1 % of one core at 1,000 devices);
//! - `search`: latency of typical searches (p50/p99 per query, at `--clients` concurrent clients)
//!   and the server's CPU per search.

use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::json;

use super::dashboard::{load, BenchServer, Fleet, MakeRequest, SEED};
use super::{percentiles, process_cpu_ms, process_rss_kib, round1};
use crate::backups::{BackupJob, Source};
use crate::jobs::Queue;
use crate::store::Store;

#[derive(Debug, Clone, clap::Args)]
pub struct BackupsArgs {
    /// Simulated devices, all activated.
    #[arg(long, default_value_t = 1000)]
    pub devices: u32,
    /// Simulated round-trip time to every device.
    #[arg(long, default_value = "20ms", value_parser = super::parse_duration)]
    pub rtt: Duration,
    /// Seconds of polling over which the baseline CPU is measured.
    #[arg(long, default_value_t = 20)]
    pub baseline_secs: u64,
    /// Concurrent clients of the search measurement.
    #[arg(long, default_value_t = 8)]
    pub clients: usize,
    /// Requests per search query.
    #[arg(long, default_value_t = 200)]
    pub searches: usize,
    /// First port of the simulated fleet.
    #[arg(long, default_value_t = 24000)]
    pub base_port: u16,
    /// Port of the server under test.
    #[arg(long, default_value_t = 3960)]
    pub port: u16,
}

/// Polls of the fleet (the product's default interval).
const POLL_SECS: u64 = 30;

pub async fn run(args: BackupsArgs) -> anyhow::Result<()> {
    let bench = BenchServer::start(&Fleet {
        devices: args.devices,
        base_port: args.base_port,
        rtt: args.rtt,
        port: args.port,
        poll_secs: POLL_SECS,
        clients: args.clients,
    })
    .await?;
    let (client, base, cookie, pid) = (&bench.client, &bench.base, &bench.cookie, &bench.pid);

    let cpu_before = process_cpu_ms(pid);
    tokio::time::sleep(Duration::from_secs(args.baseline_secs)).await;
    let polling_ms_per_s =
        process_cpu_ms(pid).saturating_sub(cpu_before) as f64 / args.baseline_secs as f64;
    println!(
        "{}",
        json!({
            "phase": "polling", "devices": args.devices, "interval_s": POLL_SECS,
            "cpu_pct_of_one_core": round1(polling_ms_per_s / 10.0),
            "server_rss_mib": round1(process_rss_kib(pid) as f64 / 1024.0),
        })
    );

    let store = Store::connect(&bench.settings.database_url(), &bench.settings.database).await?;
    let queue = Queue::new(store.clone());
    let mut cpu_per_round = Vec::new();
    for round in 1..=2u32 {
        let before = totals(&store).await?;
        let cpu_before = process_cpu_ms(pid);
        let started = Instant::now();
        enqueue_round(&store, &queue).await?;
        let mut first = None;
        loop {
            let now = totals(&store).await?;
            if first.is_none() && now.revisions > before.revisions {
                first = Some(started.elapsed());
            }
            if now.revisions >= before.revisions + i64::from(args.devices) {
                break;
            }
            let failed: (i64,) = sqlx::query_as(
                "SELECT COUNT(*) FROM jobs WHERE kind = 'backup.take' AND state = 'failed'",
            )
            .fetch_one(store.pool())
            .await?;
            anyhow::ensure!(failed.0 == 0, "{} backups failed", failed.0);
            anyhow::ensure!(
                started.elapsed() < Duration::from_secs(3600),
                "round {round} did not finish within an hour"
            );
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        let wall = started.elapsed();
        let cpu_ms = process_cpu_ms(pid).saturating_sub(cpu_before) as f64;
        let net_ms = (cpu_ms - polling_ms_per_s * wall.as_secs_f64()).max(0.0);
        cpu_per_round.push(net_ms);
        let after = totals(&store).await?;
        println!(
            "{}",
            json!({
                "phase": format!("round_{round}"), "devices": args.devices,
                "wall_s": round1(wall.as_secs_f64()),
                "first_backup_after_s": round1(first.unwrap_or(wall).as_secs_f64()),
                "server_cpu_s": round1(cpu_ms / 1000.0),
                "server_cpu_s_net_of_polling": round1(net_ms / 1000.0),
                "cpu_ms_per_device": round1(net_ms / f64::from(args.devices)),
                "revisions_added": after.revisions - before.revisions,
                "configs_read_mib": round1(after.read_bytes.saturating_sub(before.read_bytes) as f64 / 1_048_576.0),
                "new_blobs": after.blobs - before.blobs,
                "new_config_bytes_stored": after.stored_bytes - before.stored_bytes,
                "search_records_written": after.records - before.records,
                "database_growth_kib": (after.db_bytes - before.db_bytes) / 1024,
                "server_rss_mib": round1(process_rss_kib(pid) as f64 / 1024.0),
            })
        );
    }
    let daily = cpu_per_round.last().copied().unwrap_or(0.0);
    let totals = totals(&store).await?;
    println!(
        "{}",
        json!({
            "phase": "daily", "devices": args.devices,
            "round_cpu_s": round1(daily / 1000.0),
            "pct_of_one_core": pct_of_day(daily),
            "at_1000_devices_pct_of_one_core": pct_of_day(daily / f64::from(args.devices) * 1000.0),
            "search_records_mib": round1(totals.record_bytes as f64 / 1_048_576.0),
            "database_mib": round1(totals.db_bytes as f64 / 1_048_576.0),
        })
    );

    let alias = crate::sim::model::DeviceModel::new(SEED, 0)
        .aliases
        .first()
        .map(|a| a.name.clone())
        .unwrap_or_else(|| "WEB".to_owned());
    let queries = [
        ("alias", format!("alias.name is {alias}")),
        (
            "pass_22_from_any",
            "rule.action is pass\nrule.source is any\nrule.port is 22".to_owned(),
        ),
        ("older_than_2_7", "pfsense.version < 2.7".to_owned()),
        ("user_everywhere", "user.name is admin".to_owned()),
        (
            "description_contains",
            "rule.description contains (udp/53)".to_owned(),
        ),
    ];
    // The first search loads the organisation's index from the database.
    let rss_before = process_rss_kib(pid);
    let started = Instant::now();
    let cold = client
        .post(format!("{base}/api/search/run"))
        .header("cookie", cookie)
        .form(&[("query", "user.name is nobody")])
        .send()
        .await?;
    anyhow::ensure!(
        cold.status().is_success(),
        "the first search failed: {}",
        cold.status()
    );
    println!(
        "{}",
        json!({
            "phase": "search_index", "devices": args.devices,
            "first_search_ms": round1(started.elapsed().as_secs_f64() * 1000.0),
            "server_rss_growth_mib": round1((process_rss_kib(pid) as f64 - rss_before as f64) / 1024.0),
        })
    );
    for (name, query) in queries {
        let (url, text) = (format!("{base}/api/search/run"), query.clone());
        let make: MakeRequest = Arc::new(move |c: &reqwest::Client| {
            c.post(url.as_str()).form(&[("query", text.as_str())])
        });
        let check = load(client, cookie, 1, 1, make.clone()).await;
        anyhow::ensure!(check.1 == 0, "search {name} failed");
        let cpu_before = process_cpu_ms(pid);
        let (mut samples, errors, wall) =
            load(client, cookie, args.clients, args.searches, make.clone()).await;
        let cpu_ms = process_cpu_ms(pid).saturating_sub(cpu_before) as f64
            - polling_ms_per_s * wall.as_secs_f64();
        let (p50, p99) = percentiles(&mut samples);
        let (mut alone, _, _) = load(client, cookie, 1, args.searches / 4, make).await;
        let (_, p99_alone) = percentiles(&mut alone);
        let answer: serde_json::Value = client
            .post(format!("{base}/api/search/run"))
            .header("cookie", cookie)
            .form(&[("query", query.as_str())])
            .send()
            .await?
            .json()
            .await?;
        println!(
            "{}",
            json!({
                "phase": "search", "query": name, "devices": args.devices,
                "clients": args.clients, "requests": samples.len(), "errors": errors,
                "p50_ms": p50, "p99_ms": p99, "p99_ms_one_client": p99_alone,
                "cpu_ms_per_search": round1(cpu_ms.max(0.0) / samples.len().max(1) as f64),
                "matching_devices": answer["devices"], "more": answer["more"],
            })
        );
    }
    store.close().await;
    bench.stop().await;
    Ok(())
}

/// CPU milliseconds spent once a day, as a percentage of one core (three decimals).
fn pct_of_day(cpu_ms: f64) -> f64 {
    (cpu_ms / 1000.0 / 86_400.0 * 100.0 * 1000.0).round() / 1000.0
}

/// Queue one backup of every active device, as the schedule does (one transaction).
async fn enqueue_round(store: &Store, queue: &Queue) -> anyhow::Result<()> {
    let devices: Vec<(String, String)> =
        sqlx::query_as("SELECT id, org_id FROM devices WHERE state = 'active'")
            .fetch_all(store.pool())
            .await?;
    let mut tx = store.begin().await?;
    for (device_id, org_id) in devices {
        BackupJob {
            device_id,
            source: Source::Scheduled,
            actor_id: None,
        }
        .enqueue(queue, &mut tx, &org_id, Duration::ZERO)
        .await?;
    }
    queue.commit(tx).await?;
    Ok(())
}

/// What the database holds of backups.
struct Totals {
    revisions: i64,
    blobs: i64,
    read_bytes: i64,
    stored_bytes: i64,
    /// Search records written, and the bytes of those held.
    records: i64,
    record_bytes: i64,
    db_bytes: i64,
}

async fn totals(store: &Store) -> anyhow::Result<Totals> {
    let pool = store.pool();
    let (revisions, read_bytes): (i64, Option<i64>) =
        sqlx::query_as("SELECT COUNT(*), SUM(size) FROM config_revisions")
            .fetch_one(pool)
            .await?;
    let (blobs, stored_bytes): (i64, Option<i64>) =
        sqlx::query_as("SELECT COUNT(*), SUM(stored) FROM config_blobs")
            .fetch_one(pool)
            .await?;
    // Every record written bumps its organisation's sequence.
    let (records,): (i64,) = sqlx::query_as("SELECT COALESCE(SUM(seq), 0) FROM search_generations")
        .fetch_one(pool)
        .await?;
    let (record_bytes,): (Option<i64>,) =
        sqlx::query_as("SELECT SUM(LENGTH(facts)) FROM config_fact_sources")
            .fetch_one(pool)
            .await?;
    let (pages,): (i64,) = sqlx::query_as(
        "SELECT page_count * page_size FROM pragma_page_count(), pragma_page_size()",
    )
    .fetch_one(pool)
    .await?;
    Ok(Totals {
        revisions,
        blobs,
        read_bytes: read_bytes.unwrap_or(0),
        stored_bytes: stored_bytes.unwrap_or(0),
        records,
        record_bytes: record_bytes.unwrap_or(0),
        db_bytes: pages,
    })
}
