//! The backup schedule and retention, in one loop of the server process: every `check_secs` it
//! queues a scheduled backup for each active device whose newest backup is older than
//! `interval_secs` or that has no search facts (at most [`BATCH`] a round, so a large fleet is spread over several rounds and
//! the job queue's bounded concurrency paces them), then deletes revisions past retention (older
//! than `keep_days`, beyond each device's newest `keep_at_least`) and the stored configurations no
//! revision refers to any more; and mails any drift mark a drift mail missed.

use std::time::Duration;

use sqlx::Row;

use super::{BackupJob, Source};
use crate::config::BackupSettings;
use crate::jobs::Queue;
use crate::store::{now_ms, Store, StoreError};

/// Devices queued at most per round.
pub const BATCH: i64 = 500;

/// Run the schedule until the task is dropped.
pub async fn run(store: Store, queue: Queue, settings: BackupSettings, mail_hold_down: Duration) {
    let mut ticker = tokio::time::interval(Duration::from_secs(settings.check_secs.max(1)));
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        ticker.tick().await;
        if settings.interval_secs > 0 {
            match queue_due(&store, &queue, settings.interval_secs).await {
                Ok(0) => {}
                Ok(n) => tracing::info!(devices = n, "scheduled backups queued"),
                Err(e) => tracing::error!(error = %e, "cannot queue scheduled backups"),
            }
        }
        match prune(&store, settings.keep_days, settings.keep_at_least).await {
            Ok((0, _)) => {}
            Ok((revisions, blobs)) => {
                tracing::info!(revisions, blobs, "backups past retention deleted")
            }
            Err(e) => tracing::error!(error = %e, "cannot apply backup retention"),
        }
        if let Err(e) = super::drift::sweep(&store, &queue, mail_hold_down).await {
            tracing::error!(error = %e, "cannot check drift mails");
        }
    }
}

/// Queue a scheduled backup for every active device without one newer than `interval_secs`, or
/// whose search facts were never read (a device backed up before search was rebuilt).
pub async fn queue_due(
    store: &Store,
    queue: &Queue,
    interval_secs: u64,
) -> Result<usize, StoreError> {
    let since = now_ms() - i64::try_from(interval_secs.saturating_mul(1000)).unwrap_or(i64::MAX);
    let rows = sqlx::query(
        "SELECT d.id, d.org_id FROM devices d WHERE d.state = 'active' AND (NOT EXISTS \
         (SELECT 1 FROM config_revisions r WHERE r.device_id = d.id AND r.taken_at > $1) \
         OR NOT EXISTS (SELECT 1 FROM config_fact_sources s WHERE s.device_id = d.id)) \
         ORDER BY d.id LIMIT $2",
    )
    .bind(since)
    .bind(BATCH)
    .fetch_all(store.pool())
    .await?;
    if rows.is_empty() {
        return Ok(0);
    }
    let mut tx = store.begin().await?;
    let mut queued = 0;
    for row in &rows {
        let device_id: String = row.try_get("id")?;
        let org_id: String = row.try_get("org_id")?;
        let job = BackupJob {
            device_id,
            source: Source::Scheduled,
            actor_id: None,
        };
        if matches!(
            job.enqueue(queue, &mut tx, &org_id, Duration::ZERO).await?,
            crate::jobs::Enqueued::New(_)
        ) {
            queued += 1;
        }
    }
    queue.commit(tx).await?;
    Ok(queued)
}

/// Delete revisions past retention and the configurations nothing refers to; (revisions, blobs).
pub async fn prune(
    store: &Store,
    keep_days: u64,
    keep_at_least: u64,
) -> Result<(u64, u64), StoreError> {
    let cutoff = now_ms() - i64::try_from(keep_days.saturating_mul(86_400_000)).unwrap_or(i64::MAX);
    let keep = i64::try_from(keep_at_least.max(1)).unwrap_or(i64::MAX);
    let mut tx = store.begin().await?;
    let revisions = sqlx::query(
        "DELETE FROM config_revisions WHERE id IN (SELECT id FROM (SELECT id, taken_at, \
         ROW_NUMBER() OVER (PARTITION BY device_id ORDER BY taken_at DESC, id DESC) AS n \
         FROM config_revisions) ranked WHERE n > $1 AND taken_at < $2)",
    )
    .bind(keep)
    .bind(cutoff)
    .execute(&mut *tx)
    .await?
    .rows_affected();
    // Also the configurations of deleted devices (their revisions went with them).
    let blobs = sqlx::query(
        "DELETE FROM config_blobs WHERE NOT EXISTS (SELECT 1 FROM config_revisions r \
         WHERE r.org_id = config_blobs.org_id AND r.config_hash = config_blobs.config_hash)",
    )
    .execute(&mut *tx)
    .await?
    .rows_affected();
    tx.commit().await?;
    Ok((revisions, blobs))
}
