//! The monitor: polls every device the SSH engine manages for its `status` (over the resident
//! agent channel, so a poll is one round trip), each on its own jittered schedule so polls do not
//! all fire at once; keeps the latest status and a bounded history in the database; judges health
//! (online, degraded with a reason, offline after a grace period without an answer) and announces
//! every change on a broadcast channel that browsers follow (server-sent events).
//!
//! Writes are batched: every tick's results go to the database in one transaction, so 1,000
//! devices polled every 30 s cost about 33 small row writes a second, not 33 transactions.

pub mod health;
pub mod outages;

use std::collections::HashMap;
use std::hash::{Hash, Hasher};
use std::time::Duration;

use serde::Serialize;
use serde_json::json;
use tokio::sync::broadcast;
use tokio::task::JoinSet;
use tokio::time::Instant;

use crate::agent::protocol::Status;
use crate::jobs::Queue;
use crate::live::{Live, LiveEvent};
use crate::notify::{admins_of, MailJob};
use crate::ssh::{DeviceId, Engine, SshError};
use crate::store::{now_ms, Store, StoreError};
use health::{judge, Health, Reading};
use outages::{Expecting, Outage, Outages, REBOOT_WINDOW, STILL_UP_LIMIT};

/// How the monitor paces itself.
#[derive(Debug, Clone)]
pub struct MonitorConfig {
    /// Time between two polls of one device.
    pub interval: Duration,
    /// A device that has not answered for this long is offline.
    pub offline_after: Duration,
    /// History older than this is dropped.
    pub keep_history: Duration,
    /// Polls in flight at once.
    pub max_inflight: usize,
    /// How long a device must stay offline before its "offline" mail goes out (a device that
    /// flaps does not mail on every blip).
    pub mail_hold_down: Duration,
}

impl MonitorConfig {
    /// Defaults around a poll interval: offline after two missed polls and 5 s of slack (65 s at
    /// the default 30 s), 24 h of history.
    pub fn every(interval: Duration) -> Self {
        let interval = interval.max(Duration::from_secs(1));
        Self {
            interval,
            offline_after: interval * 2 + Duration::from_secs(5),
            keep_history: Duration::from_secs(24 * 3600),
            max_inflight: 512,
            mail_hold_down: Duration::from_secs(120),
        }
    }
}

/// A device's health changed.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct HealthEvent {
    pub org_id: String,
    pub device_id: String,
    pub health: &'static str,
    pub reason: String,
    pub at_ms: i64,
}

/// The running monitor. Dropping it stops polling.
pub struct Monitor {
    events: Live,
    task: tokio::task::JoinHandle<()>,
}

impl Monitor {
    /// Start polling; offline and back-online mails go through `queue`; outages recorded in
    /// `outages` (reboots, shutdowns from Mudmap) are expected, not alarms.
    pub fn start(
        store: Store,
        engine: Engine,
        queue: Queue,
        config: MonitorConfig,
        outages: Outages,
        events: Live,
    ) -> Self {
        let task = tokio::spawn(run(store, engine, queue, config, outages, events.clone()));
        Self { events, task }
    }

    /// Live events of every organisation (subscribers filter by their own).
    pub fn subscribe(&self) -> broadcast::Receiver<LiveEvent> {
        self.events.subscribe()
    }

    pub fn stop(self) {
        self.task.abort();
    }
}

impl Drop for Monitor {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// What the monitor remembers of one device between polls.
struct Tracked {
    next: Instant,
    /// When it last answered (or when tracking began, for the offline grace period).
    last_answer: Instant,
    health: Health,
    /// The previous counters, for traffic rates.
    counters: Option<(Instant, u64, u64)>,
    polling: bool,
    /// The last uptime it reported.
    uptime: Option<u64>,
    /// A reboot or shutdown Mudmap asked for.
    expecting: Option<Expecting>,
    /// Gateways it last reported down (None until its first answer since the monitor started:
    /// then the database's record of down gateways is the "before").
    gateways_down: Option<Vec<String>>,
    /// The configuration hash known to be backed up (or whose backup is queued); a poll reporting
    /// another one means the configuration changed, and a backup is queued (drift).
    config_hash: Option<String>,
}

/// The first poll of a device lands at a stable point inside the interval (a hash of its id), so
/// a thousand devices registered at once spread evenly instead of firing together.
fn phase(id: &DeviceId, interval: Duration) -> Duration {
    let mut hasher = std::collections::hash_map::DefaultHasher::new();
    id.hash(&mut hasher);
    let millis = u64::try_from(interval.as_millis())
        .unwrap_or(u64::MAX)
        .max(1);
    Duration::from_millis(hasher.finish() % millis)
}

/// One row to write.
enum Write {
    Answered {
        device: DeviceId,
        reading: Box<Reading>,
        status: String,
        rx_bps: Option<f64>,
        tx_bps: Option<f64>,
        /// The health before this poll, when it changed.
        was: Option<Health>,
        /// Gateways down now, and before this poll (None: read the database).
        gateways_down: Vec<String>,
        gateways_before: Option<Vec<String>>,
        /// The configuration hash, when it differs from the one known to be backed up.
        config_changed: Option<String>,
    },
    Offline {
        device: DeviceId,
        error: String,
    },
    /// A health that is announced but never mailed: a reboot or shutdown Mudmap asked for has
    /// begun, or the device answers without root (no access until it is re-activated: shown at
    /// once, not after the offline grace period).
    Quiet {
        device: DeviceId,
        health: Health,
        reason: String,
    },
}

async fn run(
    store: Store,
    engine: Engine,
    queue: Queue,
    config: MonitorConfig,
    outages: Outages,
    events: Live,
) {
    let mut tracked: HashMap<DeviceId, Tracked> = HashMap::new();
    // Devices already offline when the monitor starts (a server restart): their episode (and its
    // mail, or a shutdown from Mudmap) goes on; it is not announced or mailed again.
    let mut offline_at_start = offline_devices(&store).await;
    let mut polls: JoinSet<(DeviceId, Instant, Result<Status, SshError>)> = JoinSet::new();
    let mut ticker = tokio::time::interval(Duration::from_millis(250));
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut last_prune = Instant::now();
    loop {
        ticker.tick().await;
        let now = Instant::now();
        // A set, so forgetting removed devices stays linear at thousands of devices.
        let managed: std::collections::HashSet<DeviceId> =
            engine.device_ids().into_iter().collect();
        tracked.retain(|id, _| managed.contains(id));
        for id in managed {
            tracked.entry(id.clone()).or_insert_with(|| Tracked {
                next: now + phase(&id, config.interval),
                last_answer: now,
                health: if offline_at_start.remove(&*id.0) {
                    Health::Offline
                } else {
                    Health::Unknown
                },
                counters: None,
                polling: false,
                uptime: None,
                expecting: None,
                gateways_down: None,
                config_hash: None,
            });
        }
        let mut writes = Vec::new();
        for (id, kind, reason) in outages.take_new() {
            let Some(device) = tracked.get_mut(&id) else {
                outages.forget(&id);
                continue;
            };
            device.expecting = Some(Expecting {
                kind,
                uptime_before: device.uptime,
                went_silent: false,
                asked: now,
                until: now + REBOOT_WINDOW,
            });
            device.health = match kind {
                Outage::Reboot => Health::Rebooting,
                Outage::Shutdown => Health::Offline,
            };
            device.counters = None;
            writes.push(Write::Quiet {
                device: id,
                health: device.health,
                reason,
            });
        }
        for (id, device) in tracked.iter_mut() {
            if device.polling || device.next > now || polls.len() >= config.max_inflight {
                continue;
            }
            device.polling = true;
            device.next = now + config.interval;
            let engine = engine.clone();
            let id = id.clone();
            polls.spawn(async move {
                let result = engine.call::<Status>(&id, "status", json!({})).await;
                (id, Instant::now(), result)
            });
        }
        while let Some(done) = polls.try_join_next() {
            let Ok((id, at, result)) = done else { continue };
            let Some(device) = tracked.get_mut(&id) else {
                continue;
            };
            device.polling = false;
            if let Some(write) = settle(&id, device, at, result, &config, &outages) {
                writes.push(write);
            }
        }
        if !writes.is_empty() {
            match save(&store, &queue, &writes, config.mail_hold_down).await {
                Ok((changes, backed_up)) => {
                    for event in changes {
                        events.send(LiveEvent::Health(event));
                    }
                    for (device, hash) in backed_up {
                        if let Some(tracked) = tracked.get_mut(&device) {
                            tracked.config_hash = Some(hash);
                        }
                    }
                }
                Err(e) => {
                    tracing::error!(error = %e, rows = writes.len(), "cannot save poll results");
                    // What was not saved must be compared again next time (gateway episodes).
                    for write in &writes {
                        if let Write::Answered { device, .. } = write {
                            if let Some(tracked) = tracked.get_mut(device) {
                                tracked.gateways_down = None;
                            }
                        }
                    }
                }
            }
        }
        if last_prune.elapsed() >= Duration::from_secs(600) {
            last_prune = Instant::now();
            prune(&store, config.keep_history).await;
        }
    }
}

/// Fold one poll's outcome into the device's state; returns what to write, if anything.
fn settle(
    id: &DeviceId,
    device: &mut Tracked,
    at: Instant,
    result: Result<Status, SshError>,
    config: &MonitorConfig,
    outages: &Outages,
) -> Option<Write> {
    if let Some(expecting) = device.expecting.as_mut() {
        if result.is_err() {
            expecting.went_silent = true;
        }
        let expecting = *expecting;
        let over = at >= expecting.until;
        let ends = match (&result, expecting.kind) {
            // Back from the reboot when it answers with a fresh uptime (judged below as usual);
            // an answer with the old uptime means the reboot has not begun yet (for a while: after
            // STILL_UP_LIMIT it did not happen, and the device shows as it is).
            (Ok(status), Outage::Reboot) => {
                over || at.duration_since(expecting.asked) >= STILL_UP_LIMIT
                    || match expecting.uptime_before {
                        Some(before) => status.uptime_secs.is_some_and(|now| now < before),
                        // Asked before its first answer: back once it answers after a silence.
                        None => expecting.went_silent,
                    }
            }
            // Powered on again after a shutdown.
            (Ok(_), Outage::Shutdown) => true,
            // Silent past the window: from here on an outage like any other.
            (Err(_), Outage::Reboot) => over,
            (Err(_), Outage::Shutdown) => false,
        };
        if !ends {
            return None;
        }
        device.expecting = None;
        outages.forget(id);
    }
    match result {
        Ok(status) => {
            device.uptime = status.uptime_secs;
            let reading = judge(&status);
            let rates = device.counters.and_then(|(then, rx, tx)| {
                let secs = at.duration_since(then).as_secs_f64();
                (secs > 0.0 && reading.rx_bytes >= rx && reading.tx_bytes >= tx).then(|| {
                    (
                        (reading.rx_bytes - rx) as f64 * 8.0 / secs,
                        (reading.tx_bytes - tx) as f64 * 8.0 / secs,
                    )
                })
            });
            device.counters = Some((at, reading.rx_bytes, reading.tx_bytes));
            device.last_answer = at;
            let was = (device.health != reading.health).then_some(device.health);
            device.health = reading.health;
            let mut gateways_down: Vec<String> = status
                .gateways
                .iter()
                .filter(|g| g.status == "down")
                .map(|g| g.name.clone())
                .collect();
            gateways_down.sort();
            let gateways_before = device.gateways_down.replace(gateways_down.clone());
            let config_changed = (device.config_hash.as_deref() != Some(&status.config_hash))
                .then(|| status.config_hash.clone());
            Some(Write::Answered {
                device: id.clone(),
                status: serde_json::to_string(&status).unwrap_or_default(),
                rx_bps: rates.map(|r| r.0),
                tx_bps: rates.map(|r| r.1),
                reading: Box::new(reading),
                was,
                gateways_down,
                gateways_before,
                config_changed,
            })
        }
        // A changed host key is the quarantine's business, not an outage.
        Err(SshError::HostKeyMismatch { .. }) => None,
        Err(SshError::NoRoot { detail }) => {
            device.last_answer = at;
            device.counters = None;
            (device.health != Health::NoAccess).then(|| {
                device.health = Health::NoAccess;
                Write::Quiet {
                    device: id.clone(),
                    health: Health::NoAccess,
                    reason: format!(
                        "Mudmap's key has no root access ({detail}): re-activate the device"
                    ),
                }
            })
        }
        Err(error) => {
            let silent = at.duration_since(device.last_answer);
            if silent >= config.offline_after && device.health != Health::Offline {
                device.health = Health::Offline;
                device.counters = None;
                Some(Write::Offline {
                    device: id.clone(),
                    error: error.to_string(),
                })
            } else {
                None
            }
        }
    }
}

/// Write one tick's results in one transaction; returns the health changes to announce, and the
/// configuration hashes now known to be backed up (or queued for a backup).
async fn save(
    store: &Store,
    queue: &Queue,
    writes: &[Write],
    hold_down: Duration,
) -> Result<(Vec<HealthEvent>, Vec<(DeviceId, String)>), StoreError> {
    let now = now_ms();
    let mut tx = store.begin().await?;
    let mut changed = Vec::new();
    let mut backed_up = Vec::new();
    // Outages Mudmap caused, and no root access: announced, never mailed.
    let mut quiet = Vec::new();
    for write in writes {
        match write {
            Write::Answered {
                device,
                reading,
                status,
                rx_bps,
                tx_bps,
                was,
                gateways_down,
                gateways_before,
                config_changed,
            } => {
                if let Some(hash) = config_changed {
                    drift(queue, &mut tx, device, hash).await?;
                    backed_up.push((device.clone(), hash.clone()));
                }
                if gateways_before.as_ref() != Some(gateways_down) {
                    gateway_changes(queue, &mut tx, device, gateways_down, now, hold_down).await?;
                }
                sqlx::query(
                    "INSERT INTO device_status (device_id, org_id, health, health_reason, health_since, \
                     last_seen_at, last_error, uptime_secs, cpu_pct, mem_pct, disk_pct, rtt_ms, \
                     loss_pct, gateways_up, gateways_total, updated_at) \
                     SELECT id, org_id, $2, $3, $4, $4, NULL, $5, $6, $7, $8, $9, $10, $11, $12, $4 \
                     FROM devices WHERE id = $1 \
                     ON CONFLICT (device_id) DO UPDATE SET health = excluded.health, \
                     health_reason = excluded.health_reason, \
                     health_since = CASE WHEN device_status.health = excluded.health \
                         THEN device_status.health_since ELSE excluded.health_since END, \
                     last_seen_at = excluded.last_seen_at, last_error = NULL, \
                     uptime_secs = excluded.uptime_secs, cpu_pct = excluded.cpu_pct, \
                     mem_pct = excluded.mem_pct, disk_pct = excluded.disk_pct, rtt_ms = excluded.rtt_ms, \
                     loss_pct = excluded.loss_pct, gateways_up = excluded.gateways_up, \
                     gateways_total = excluded.gateways_total, updated_at = excluded.updated_at",
                )
                .bind(&*device.0)
                .bind(reading.health.as_str())
                .bind(&reading.reason)
                .bind(now)
                .bind(reading.uptime_secs.map(|u| i64::try_from(u).unwrap_or(i64::MAX)))
                .bind(reading.cpu_pct)
                .bind(reading.mem_pct)
                .bind(reading.disk_pct)
                .bind(reading.rtt_ms)
                .bind(reading.loss_pct)
                .bind(i64::from(reading.gateways_up))
                .bind(i64::from(reading.gateways_total))
                .execute(&mut *tx)
                .await?;
                sqlx::query(
                    "INSERT INTO device_status_docs (device_id, status, updated_at) \
                     SELECT id, $2, $3 FROM devices WHERE id = $1 \
                     ON CONFLICT (device_id) DO UPDATE SET status = excluded.status, \
                     updated_at = excluded.updated_at",
                )
                .bind(&*device.0)
                .bind(status)
                .bind(now)
                .execute(&mut *tx)
                .await?;
                sqlx::query(
                    "INSERT INTO device_samples (device_id, at, cpu_pct, mem_pct, disk_pct, rtt_ms, \
                     loss_pct, rx_bps, tx_bps) SELECT id, $2, $3, $4, $5, $6, $7, $8, $9 \
                     FROM devices WHERE id = $1 ON CONFLICT (device_id, at) DO NOTHING",
                )
                .bind(&*device.0)
                .bind(now)
                .bind(reading.cpu_pct)
                .bind(reading.mem_pct)
                .bind(reading.disk_pct)
                .bind(reading.rtt_ms)
                .bind(reading.loss_pct)
                .bind(*rx_bps)
                .bind(*tx_bps)
                .execute(&mut *tx)
                .await?;
                if let Some(was) = was {
                    changed.push((device, reading.health, reading.reason.clone(), Some(*was)));
                }
            }
            Write::Quiet {
                device,
                health,
                reason,
            } => {
                sqlx::query(
                    "INSERT INTO device_status (device_id, org_id, health, health_reason, health_since, \
                     updated_at) SELECT id, org_id, $2, $3, $4, $4 FROM devices WHERE id = $1 \
                     ON CONFLICT (device_id) DO UPDATE SET health = excluded.health, \
                     health_reason = excluded.health_reason, health_since = excluded.health_since, \
                     offline_mailed = NULL, updated_at = excluded.updated_at",
                )
                .bind(&*device.0)
                .bind(health.as_str())
                .bind(reason)
                .bind(now)
                .execute(&mut *tx)
                .await?;
                quiet.push((device, *health, reason.clone()));
            }
            Write::Offline { device, error } => {
                sqlx::query(
                    "INSERT INTO device_status (device_id, org_id, health, health_reason, health_since, \
                     last_error, updated_at) SELECT id, org_id, 'offline', $2, $3, $2, $3 \
                     FROM devices WHERE id = $1 \
                     ON CONFLICT (device_id) DO UPDATE SET health = 'offline', \
                     health_reason = excluded.health_reason, health_since = excluded.health_since, \
                     last_error = excluded.last_error, offline_mailed = NULL, \
                     updated_at = excluded.updated_at",
                )
                .bind(&*device.0)
                .bind(error)
                .bind(now)
                .execute(&mut *tx)
                .await?;
                changed.push((device, Health::Offline, error.clone(), None));
            }
        }
    }
    let mut events = Vec::with_capacity(changed.len() + quiet.len());
    let changed = changed
        .into_iter()
        .map(|(device, health, reason, was)| (device, health, reason, was, true))
        .chain(
            quiet
                .into_iter()
                .map(|(device, health, reason)| (device, health, reason, None, false)),
        );
    for (device, health, reason, was, mail) in changed {
        let row: Option<(String, i64)> = sqlx::query_as(
            "SELECT d.org_id, s.health_since FROM devices d \
             JOIN device_status s ON s.device_id = d.id WHERE d.id = $1",
        )
        .bind(&*device.0)
        .fetch_optional(&mut *tx)
        .await?;
        if let Some((org_id, since)) = row {
            if mail {
                notify(
                    queue, &mut tx, &org_id, device, health, was, since, hold_down,
                )
                .await?;
            }
            tracing::info!(device.id = %device, health = health.as_str(), reason = %reason, "device health changed");
            events.push(HealthEvent {
                org_id,
                device_id: device.0.to_string(),
                health: health.as_str(),
                reason,
                at_ms: now,
            });
        }
    }
    // Committing through the queue wakes its worker for the mails enqueued above.
    queue.commit(tx).await?;
    Ok((events, backed_up))
}

/// A polled configuration hash that differs from the monitor's last known one: compared with the
/// newest backup, and a backup queued when they differ (the configuration changed since). A
/// device with no backup yet is left to its activation's backup and the schedule.
async fn drift(
    queue: &Queue,
    tx: &mut sqlx::Transaction<'static, sqlx::Any>,
    device: &DeviceId,
    hash: &str,
) -> Result<(), StoreError> {
    let newest: Option<(String, String)> = sqlx::query_as(
        "SELECT config_hash, org_id FROM config_revisions WHERE device_id = $1 \
         ORDER BY taken_at DESC, id DESC LIMIT 1",
    )
    .bind(&*device.0)
    .fetch_optional(&mut **tx)
    .await?;
    let Some((stored, org_id)) = newest else {
        return Ok(());
    };
    if stored != hash {
        crate::backups::BackupJob {
            device_id: device.0.to_string(),
            source: crate::backups::Source::Drift,
            actor_id: None,
        }
        .enqueue(queue, tx, &org_id, Duration::ZERO)
        .await?;
        tracing::info!(device.id = %device, "configuration changed since the last backup: backup queued");
    }
    Ok(())
}

/// The mails a health change calls for, enqueued with the change: "offline" after the hold-down
/// (the handler skips it if the device answered meanwhile), "back" when a device that was offline
/// answers (the handler sends it only if that episode's "offline" mail went out).
#[allow(clippy::too_many_arguments)]
async fn notify(
    queue: &Queue,
    tx: &mut sqlx::Transaction<'static, sqlx::Any>,
    org_id: &str,
    device: &DeviceId,
    health: Health,
    was: Option<Health>,
    since: i64,
    hold_down: Duration,
) -> Result<(), StoreError> {
    let offline_since = if health == Health::Offline {
        None
    } else if was == Some(Health::Offline) {
        let previous: Option<(Option<i64>,)> =
            sqlx::query_as("SELECT offline_mailed FROM device_status WHERE device_id = $1")
                .bind(&*device.0)
                .fetch_optional(&mut **tx)
                .await?;
        match previous.and_then(|(m,)| m) {
            Some(mailed) => Some(mailed),
            None => return Ok(()),
        }
    } else {
        return Ok(());
    };
    for recipient_id in admins_of(tx, org_id).await? {
        let (mail, delay) = match offline_since {
            None => (
                MailJob::DeviceOffline {
                    org_id: org_id.to_owned(),
                    device_id: device.0.to_string(),
                    recipient_id,
                    since_ms: since,
                },
                hold_down,
            ),
            Some(since_ms) => (
                MailJob::DeviceBack {
                    org_id: org_id.to_owned(),
                    device_id: device.0.to_string(),
                    recipient_id,
                    since_ms,
                },
                Duration::ZERO,
            ),
        };
        mail.enqueue_after(queue, tx, Some(org_id), delay).await?;
    }
    Ok(())
}

/// Gateway down / back up mails for one device whose set of down gateways may have changed (or is
/// seen for the first time since the monitor started), against the recorded episodes:
/// "down" after the hold-down (skipped by its handler if the gateway came back meanwhile), "back
/// up" only for an episode whose "down" mail went out. The episodes live in `gateway_alerts`, so
/// they survive a restart of the server.
async fn gateway_changes(
    queue: &Queue,
    tx: &mut sqlx::Transaction<'static, sqlx::Any>,
    device: &DeviceId,
    down: &[String],
    now: i64,
    hold_down: Duration,
) -> Result<(), StoreError> {
    let recorded: Vec<(String, i64, Option<i64>)> = sqlx::query_as(
        "SELECT gateway, down_since, mailed_at FROM gateway_alerts WHERE device_id = $1",
    )
    .bind(&*device.0)
    .fetch_all(&mut **tx)
    .await?;
    let went_down: Vec<&String> = down
        .iter()
        .filter(|g| !recorded.iter().any(|(r, _, _)| r == *g))
        .collect();
    let came_up: Vec<&(String, i64, Option<i64>)> = recorded
        .iter()
        .filter(|(g, _, _)| !down.contains(g))
        .collect();
    if went_down.is_empty() && came_up.is_empty() {
        return Ok(());
    }
    let org: Option<(String,)> = sqlx::query_as("SELECT org_id FROM devices WHERE id = $1")
        .bind(&*device.0)
        .fetch_optional(&mut **tx)
        .await?;
    let Some((org_id,)) = org else {
        return Ok(());
    };
    let admins = admins_of(tx, &org_id).await?;
    for gateway in went_down {
        let inserted = sqlx::query(
            "INSERT INTO gateway_alerts (device_id, gateway, down_since) VALUES ($1, $2, $3) \
             ON CONFLICT (device_id, gateway) DO NOTHING",
        )
        .bind(&*device.0)
        .bind(gateway)
        .bind(now)
        .execute(&mut **tx)
        .await?;
        if inserted.rows_affected() == 0 {
            continue;
        }
        tracing::info!(device.id = %device, gateway = %gateway, "gateway down");
        for recipient_id in &admins {
            MailJob::GatewayDown {
                org_id: org_id.clone(),
                device_id: device.0.to_string(),
                gateway: gateway.clone(),
                recipient_id: recipient_id.clone(),
                since_ms: now,
            }
            .enqueue_after(queue, tx, Some(&org_id), hold_down)
            .await?;
        }
    }
    for (gateway, since_ms, _) in came_up {
        // Whether the "down" mail went out is read by the delete itself: the mail job may have
        // marked it since the SELECT above (on PostgreSQL the two do not block each other).
        let mailed: Option<(Option<i64>,)> = sqlx::query_as(
            "DELETE FROM gateway_alerts WHERE device_id = $1 AND gateway = $2 RETURNING mailed_at",
        )
        .bind(&*device.0)
        .bind(gateway)
        .fetch_optional(&mut **tx)
        .await?;
        tracing::info!(device.id = %device, gateway = %gateway, "gateway up");
        if !matches!(mailed, Some((Some(_),))) {
            continue; // Back within the hold-down: nobody was told it was down.
        }
        for recipient_id in &admins {
            MailJob::GatewayUp {
                org_id: org_id.clone(),
                device_id: device.0.to_string(),
                gateway: gateway.clone(),
                recipient_id: recipient_id.clone(),
                since_ms: *since_ms,
            }
            .enqueue_after(queue, tx, Some(&org_id), Duration::ZERO)
            .await?;
        }
    }
    Ok(())
}

/// Ids of the devices stored as offline.
async fn offline_devices(store: &Store) -> std::collections::HashSet<String> {
    match sqlx::query_as::<_, (String,)>(
        "SELECT device_id FROM device_status WHERE health = 'offline'",
    )
    .fetch_all(store.pool())
    .await
    {
        Ok(rows) => rows.into_iter().map(|(id,)| id).collect(),
        Err(e) => {
            tracing::warn!(error = %e, "cannot read which devices were offline");
            Default::default()
        }
    }
}

/// Drop history older than `keep`.
async fn prune(store: &Store, keep: Duration) {
    let cutoff = now_ms() - i64::try_from(keep.as_millis()).unwrap_or(i64::MAX);
    match sqlx::query("DELETE FROM device_samples WHERE at < $1")
        .bind(cutoff)
        .execute(store.pool())
        .await
    {
        Ok(done) => tracing::debug!(rows = done.rows_affected(), "old history dropped"),
        Err(e) => tracing::warn!(error = %e, "cannot drop old history"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rebooting(now: Instant, uptime: u64) -> Tracked {
        Tracked {
            next: now,
            last_answer: now,
            health: Health::Rebooting,
            counters: None,
            polling: false,
            uptime: Some(uptime),
            expecting: Some(Expecting {
                kind: Outage::Reboot,
                uptime_before: Some(uptime),
                went_silent: false,
                asked: now,
                until: now + REBOOT_WINDOW,
            }),
            gateways_down: None,
            config_hash: None,
        }
    }

    #[test]
    fn a_reboot_ends_with_a_fresh_uptime_or_when_it_clearly_did_not_happen() {
        let config = MonitorConfig::every(Duration::from_secs(30));
        let outages = Outages::default();
        let id = DeviceId::new("d");
        let now = Instant::now();
        let status = crate::sim::model::DeviceModel::new(1, 0).status();
        let old = status.uptime_secs.unwrap();

        // Still up with the old uptime (services stopping): no change yet.
        let mut device = rebooting(now, old);
        let answer = settle(
            &id,
            &mut device,
            now + Duration::from_secs(5),
            Ok(status.clone()),
            &config,
            &outages,
        );
        assert!(answer.is_none());
        assert_eq!(device.health, Health::Rebooting);
        // Silent while it restarts: still rebooting, not offline.
        let silent = settle(
            &id,
            &mut device,
            now + Duration::from_secs(200),
            Err(SshError::Closed),
            &config,
            &outages,
        );
        assert!(silent.is_none());
        assert_eq!(device.health, Health::Rebooting);

        // Back with a fresh uptime: judged as usual, and the change is announced.
        let mut fresh = status.clone();
        fresh.uptime_secs = Some(12);
        let back = settle(
            &id,
            &mut device,
            now + Duration::from_secs(210),
            Ok(fresh),
            &config,
            &outages,
        );
        assert!(matches!(
            back,
            Some(Write::Answered {
                was: Some(Health::Rebooting),
                ..
            })
        ));
        assert!(device.expecting.is_none());

        // Still answering with the old uptime long after the request: the reboot did not happen.
        let mut device = rebooting(now, old);
        let late = settle(
            &id,
            &mut device,
            now + STILL_UP_LIMIT,
            Ok(status.clone()),
            &config,
            &outages,
        );
        assert!(matches!(late, Some(Write::Answered { .. })));
        assert_ne!(device.health, Health::Rebooting);

        // Asked before its first answer (uptime unknown): back once it answers after a silence.
        let mut device = rebooting(now, old);
        device.expecting = device.expecting.map(|e| Expecting {
            uptime_before: None,
            ..e
        });
        let first = settle(
            &id,
            &mut device,
            now + Duration::from_secs(1),
            Ok(status.clone()),
            &config,
            &outages,
        );
        assert!(first.is_none(), "not back before it went down");
        let down = settle(
            &id,
            &mut device,
            now + Duration::from_secs(20),
            Err(SshError::Closed),
            &config,
            &outages,
        );
        assert!(down.is_none());
        let up = settle(
            &id,
            &mut device,
            now + Duration::from_secs(60),
            Ok(status.clone()),
            &config,
            &outages,
        );
        assert!(matches!(up, Some(Write::Answered { .. })));

        // Silent past the window: an outage like any other.
        let mut device = rebooting(now, old);
        let gone = settle(
            &id,
            &mut device,
            now + REBOOT_WINDOW,
            Err(SshError::Closed),
            &config,
            &outages,
        );
        assert!(matches!(gone, Some(Write::Offline { .. })));
    }
}
