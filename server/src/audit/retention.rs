//! The audit log's retention: the only way an entry ever leaves it. With `audit.keep_days` set
//! (0, the default, keeps everything), entries older than that are deleted once an hour, and each
//! organisation that lost some gets an `audit.purged` entry saying how many, in the same
//! transaction — so the purge is itself on the record.

use std::time::Duration;

use super::{record, Entry};
use crate::store::{now_ms, Store, StoreError};

/// Seconds between two purges.
const EVERY_SECS: u64 = 3_600;

/// Purge on schedule until the task is dropped (returns at once when nothing is ever purged).
pub async fn run(store: Store, keep_days: u64) {
    if keep_days == 0 {
        return;
    }
    let mut ticker = tokio::time::interval(Duration::from_secs(EVERY_SECS));
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        ticker.tick().await;
        match purge(&store, keep_days).await {
            Ok(0) => {}
            Ok(entries) => {
                tracing::info!(entries, keep_days, "audit entries past retention deleted")
            }
            Err(e) => tracing::error!(error = %e, "cannot apply audit retention"),
        }
    }
}

/// Delete entries older than `keep_days` days; each organisation affected gets an
/// `audit.purged` entry. Returns the entries deleted.
pub async fn purge(store: &Store, keep_days: u64) -> Result<u64, StoreError> {
    let cutoff = now_ms() - i64::try_from(keep_days.saturating_mul(86_400_000)).unwrap_or(i64::MAX);
    let mut tx = store.begin().await?;
    let counts: Vec<(String, i64)> = sqlx::query_as(
        "SELECT org_id, COUNT(*) FROM audit_log WHERE created_at < $1 AND org_id IS NOT NULL \
         GROUP BY org_id ORDER BY org_id",
    )
    .bind(cutoff)
    .fetch_all(&mut *tx)
    .await?;
    let deleted = sqlx::query("DELETE FROM audit_log WHERE created_at < $1")
        .bind(cutoff)
        .execute(&mut *tx)
        .await?
        .rows_affected();
    for (org_id, count) in &counts {
        record(
            &mut tx,
            Entry {
                org_id: Some(org_id),
                actor_id: None,
                action: "audit.purged",
                subject: "audit log",
                detail: format!("{count} entries older than {keep_days} days deleted"),
            },
        )
        .await?;
    }
    tx.commit().await?;
    Ok(deleted)
}
