//! The audit log: who did what to which thing, written in the same transaction as the change.
//! Entries name ids and short facts, never secrets or raw device configuration, and keep the
//! actor's e-mail as it was. [`service`] reads them for owners and admins (`/audit`, CSV);
//! [`retention`] is the only deletion, and it is audited too.

pub mod retention;
pub mod service;

use app::error::AppError;
use app::services::Caller;
use sqlx::{Any, Transaction};

use crate::services::store_failure;
use crate::store::{now_ms, StoreError};

/// One audit entry. `org_id` is None for instance-level events (e.g. an organisation deleted).
pub struct Entry<'a> {
    pub org_id: Option<&'a str>,
    pub actor_id: Option<&'a str>,
    /// Dotted verb, e.g. `member.role_changed`.
    pub action: &'a str,
    /// What it was done to, e.g. a user's email or a device name.
    pub subject: &'a str,
    pub detail: String,
}

pub async fn record(
    tx: &mut Transaction<'static, Any>,
    entry: Entry<'_>,
) -> Result<(), StoreError> {
    sqlx::query(
        "INSERT INTO audit_log (id, org_id, actor_id, action, subject, detail, created_at, actor_email) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, COALESCE((SELECT email FROM users WHERE id = $3), ''))",
    )
    .bind(uuid::Uuid::now_v7().to_string())
    .bind(entry.org_id)
    .bind(entry.actor_id)
    .bind(entry.action)
    .bind(entry.subject)
    .bind(&entry.detail)
    .bind(now_ms())
    .execute(&mut **tx)
    .await?;
    tracing::info!(
        audit.action = entry.action,
        org.id = entry.org_id.unwrap_or("-"),
        actor.id = entry.actor_id.unwrap_or("-"),
        "audit"
    );
    Ok(())
}

/// Record an action the signed-in `caller` took, in `tx`; a failure is the user-facing error.
pub async fn by_caller(
    tx: &mut Transaction<'static, Any>,
    org_id: Option<&str>,
    caller: &Caller,
    action: &str,
    subject: &str,
    detail: String,
) -> Result<(), AppError> {
    record(
        tx,
        Entry {
            org_id,
            actor_id: Some(&caller.user_id),
            action,
            subject,
            detail,
        },
    )
    .await
    .map_err(store_failure)
}

/// Record an event of a user's own account (a sign-in, a password or two-factor change) in `tx`,
/// once in each organisation the user belongs to: an organisation's audit log shows what happened
/// to its members' accounts. The subject is the user's e-mail.
pub async fn account_event(
    tx: &mut Transaction<'static, Any>,
    user_id: &str,
    action: &str,
    detail: String,
) -> Result<(), StoreError> {
    let orgs: Vec<(String, String)> = sqlx::query_as(
        "SELECT m.org_id, u.email FROM memberships m JOIN users u ON u.id = m.user_id \
         WHERE m.user_id = $1 ORDER BY m.org_id",
    )
    .bind(user_id)
    .fetch_all(&mut **tx)
    .await?;
    for (org_id, email) in &orgs {
        record(
            tx,
            Entry {
                org_id: Some(org_id),
                actor_id: Some(user_id),
                action,
                subject: email,
                detail: detail.clone(),
            },
        )
        .await?;
    }
    Ok(())
}
