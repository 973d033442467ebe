//! Drift: a configuration changed outside Mudmap. When a backup taken because the polled hash
//! moved (source `drift`) differs in substance from the revision before it — pfSense's own
//! bookkeeping alone does not count — the device gets a "Changed outside Mudmap" mark, in the
//! backup's transaction, with an audit entry and a mail to owners and admins: one mail per person
//! for every mark made within the hold-down (the same habit as offline mails). Further outside
//! changes keep the mark (and its first time) and point it at the newest revision. Acknowledging
//! clears it (audited). A sweep on the backup schedule mails any mark a mail missed.

use std::time::Duration;

use sqlx::{Any, Transaction};

use super::Note;
use crate::audit;
use crate::jobs::Queue;
use crate::notify::{admins_of, MailJob};
use crate::store::{now_ms, Store, StoreError};

/// An outside change, as a backup found it.
pub(super) struct Outside<'a> {
    pub org_id: &'a str,
    pub device_id: &'a str,
    /// The revision before the change (what Mudmap last knew).
    pub base_revision_id: &'a str,
    /// The drift revision just stored.
    pub revision_id: &'a str,
    pub note: &'a Note,
    /// Differences in words.
    pub changes: usize,
}

/// Mark the device in `tx` (or keep its mark, pointing at the newest revision). Returns whether
/// the mark is new (the caller announces it once committed).
pub(super) async fn mark(
    tx: &mut Transaction<'static, Any>,
    queue: &Queue,
    outside: Outside<'_>,
    hold_down: Duration,
) -> Result<bool, StoreError> {
    let now = now_ms();
    let kept = sqlx::query(
        "UPDATE config_drift SET revision_id = $2, seen_at = $3, pf_username = $4, \
         pf_description = $5 WHERE device_id = $1",
    )
    .bind(outside.device_id)
    .bind(outside.revision_id)
    .bind(now)
    .bind(&outside.note.username)
    .bind(&outside.note.description)
    .execute(&mut **tx)
    .await?;
    let by = if outside.note.username.is_empty() {
        "someone".to_owned()
    } else {
        outside.note.username.clone()
    };
    if kept.rows_affected() == 1 {
        tracing::info!(device.id = %outside.device_id, "configuration changed outside Mudmap again");
        return Ok(false);
    }
    sqlx::query(
        "INSERT INTO config_drift (device_id, org_id, base_revision_id, revision_id, since, \
         seen_at, pf_username, pf_description) VALUES ($1, $2, $3, $4, $5, $5, $6, $7)",
    )
    .bind(outside.device_id)
    .bind(outside.org_id)
    .bind(outside.base_revision_id)
    .bind(outside.revision_id)
    .bind(now)
    .bind(&outside.note.username)
    .bind(&outside.note.description)
    .execute(&mut **tx)
    .await?;
    let (name,): (String,) = sqlx::query_as("SELECT name FROM devices WHERE id = $1")
        .bind(outside.device_id)
        .fetch_one(&mut **tx)
        .await?;
    audit::record(
        tx,
        audit::Entry {
            org_id: Some(outside.org_id),
            actor_id: None,
            action: "device.drift",
            subject: &name,
            detail: format!(
                "configuration changed outside Mudmap by {by} ({} change(s))",
                outside.changes
            ),
        },
    )
    .await?;
    mail(tx, queue, outside.org_id, now, hold_down, false).await?;
    tracing::info!(device.id = %outside.device_id, changes = outside.changes, "configuration changed outside Mudmap: marked");
    Ok(true)
}

/// A drift mail to every owner and admin, after the hold-down, for marks made since `since_ms`
/// (marks made while one is pending join it).
async fn mail(
    tx: &mut Transaction<'static, Any>,
    queue: &Queue,
    org_id: &str,
    since_ms: i64,
    hold_down: Duration,
    unmailed_only: bool,
) -> Result<(), StoreError> {
    for recipient_id in admins_of(tx, org_id).await? {
        MailJob::ConfigDrift {
            org_id: org_id.to_owned(),
            recipient_id,
            since_ms,
            unmailed_only,
        }
        .enqueue_after(queue, tx, Some(org_id), hold_down)
        .await?;
    }
    Ok(())
}

/// Clear a device's mark in `tx`; returns whether there was one.
pub async fn acknowledge(
    tx: &mut Transaction<'static, Any>,
    org_id: &str,
    device_id: &str,
) -> Result<bool, StoreError> {
    let cleared = sqlx::query("DELETE FROM config_drift WHERE device_id = $1 AND org_id = $2")
        .bind(device_id)
        .bind(org_id)
        .execute(&mut **tx)
        .await?;
    Ok(cleared.rows_affected() == 1)
}

/// Mail marks no mail covered (made while that organisation's drift mail was being sent): any
/// mark unmailed for longer than twice the hold-down gets its mail now. Returns how many
/// organisations were mailed.
pub async fn sweep(store: &Store, queue: &Queue, hold_down: Duration) -> Result<usize, StoreError> {
    let before = now_ms() - i64::try_from(hold_down.as_millis() * 2).unwrap_or(i64::MAX / 2);
    let missed: Vec<(String, i64)> = sqlx::query_as(
        "SELECT org_id, MIN(since) FROM config_drift WHERE mailed_at IS NULL AND since < $1 \
         GROUP BY org_id",
    )
    .bind(before)
    .fetch_all(store.pool())
    .await?;
    if missed.is_empty() {
        return Ok(0);
    }
    let mut tx = store.begin().await?;
    for (org_id, since) in &missed {
        mail(&mut tx, queue, org_id, *since, Duration::ZERO, true).await?;
    }
    queue.commit(tx).await?;
    tracing::info!(
        orgs = missed.len(),
        "drift marks without a mail: mailed now"
    );
    Ok(missed.len())
}

/// A device's mark, for its page.
pub async fn of_device(
    store: &Store,
    org_id: &str,
    device_id: &str,
) -> Result<Option<app::devices::detail::DriftMark>, StoreError> {
    let row: Option<(Option<String>, String, i64, i64, String, String)> = sqlx::query_as(
        "SELECT base_revision_id, revision_id, since, seen_at, pf_username, pf_description \
         FROM config_drift WHERE device_id = $1 AND org_id = $2",
    )
    .bind(device_id)
    .bind(org_id)
    .fetch_optional(store.pool())
    .await?;
    Ok(row.map(
        |(base_revision_id, revision_id, since_ms, seen_ms, pf_username, pf_description)| {
            app::devices::detail::DriftMark {
                base_revision_id,
                revision_id,
                since_ms,
                seen_ms,
                pf_username,
                pf_description,
            }
        },
    ))
}
