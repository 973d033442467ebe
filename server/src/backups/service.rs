//! The edge of backups for the browser: a device's history and comparisons (any member of its
//! organisation), "back up now" and acknowledging a change made outside Mudmap (operators and
//! above, audited), secrets revealed and configurations downloaded (owners and admins, audited).

use std::sync::Arc;

use app::devices::backups::{
    Comparison, ConfigChange, ConfigFile, RawLine, Revision, RevisionRef, HISTORY_LIMIT,
    RAW_DIFF_LIMIT,
};
use app::devices::DeviceState;
use app::error::AppError;
use app::roles::Role;
use app::services::Caller;

use app::ui::format::utc_datetime;

use super::rows::RevisionKey;
use super::{revision_view, BackupError, BackupJob, Source};
use crate::audit;
use crate::jobs::Queue;
use crate::live::{Live, LiveEvent};
use crate::pfsense::{raw_diff, secrets};
use crate::services::{sql_failure, store_failure};
use crate::store::Store;

pub struct BackupService {
    store: Store,
    queue: Queue,
    backups: Arc<super::Backups>,
    live: Live,
}

impl BackupService {
    pub fn new(store: Store, queue: Queue, backups: Arc<super::Backups>, live: Live) -> Arc<Self> {
        Arc::new(Self {
            store,
            queue,
            backups,
            live,
        })
    }

    /// The name and state of a device of `org_id` (another organisation's is "not found").
    async fn device(&self, org_id: &str, id: &str) -> Result<(String, String), AppError> {
        sqlx::query_as("SELECT name, state FROM devices WHERE id = $1 AND org_id = $2")
            .bind(id)
            .bind(org_id)
            .fetch_optional(self.store.pool())
            .await
            .map_err(sql_failure)?
            .ok_or_else(|| AppError::NotFound("That device".to_owned()))
    }

    async fn device_name(&self, org_id: &str, id: &str) -> Result<String, AppError> {
        Ok(self.device(org_id, id).await?.0)
    }
}

/// `config-<device>-<yyyymmdd>-<hhmmss>.xml` (UTC), the device's name reduced to safe characters.
fn file_name(device: &str, taken_at_ms: i64) -> String {
    let safe: String = device
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' || c == '.' {
                c
            } else {
                '_'
            }
        })
        .take(64)
        .collect();
    // "YYYY-MM-DD HH:MM" → digits, then the seconds.
    let stamp: String = utc_datetime(taken_at_ms)
        .chars()
        .filter(char::is_ascii_digit)
        .collect();
    let (date, time) = stamp.split_at(stamp.len().min(8));
    let seconds = taken_at_ms.div_euclid(1000).rem_euclid(60);
    format!("config-{safe}-{date}-{time}{seconds:02}.xml")
}

#[async_trait::async_trait]
impl app::services::BackupService for BackupService {
    async fn revisions(
        &self,
        caller: &Caller,
        device_id: String,
    ) -> Result<Vec<Revision>, AppError> {
        let org = caller.org()?;
        self.device(&org.id, &device_id).await?;
        let rows = super::list(&self.store, &org.id, &device_id, HISTORY_LIMIT)
            .await
            .map_err(store_failure)?;
        Ok(rows.iter().map(revision_view).collect())
    }

    async fn compare(
        &self,
        caller: &Caller,
        from: Option<String>,
        to: String,
        reveal: bool,
    ) -> Result<Comparison, AppError> {
        let org = if reveal {
            caller.org_where(Role::can_administer)?
        } else {
            caller.org()?
        };
        let found = self
            .backups
            .compare(&org.id, from.as_deref(), &to)
            .await
            .map_err(|e| match e {
                BackupError::OtherDevice => AppError::Invalid(e.to_string()),
                e => {
                    tracing::error!(revision.id = %to, error = %e, "cannot compare revisions");
                    AppError::Internal("backup-diff".to_owned())
                }
            })?
            .ok_or_else(|| AppError::NotFound("That backup".to_owned()))?;
        if reveal {
            let name = self.device_name(&org.id, &found.to.device_id).await?;
            let mut tx = self.store.begin().await.map_err(store_failure)?;
            audit::by_caller(
                &mut tx,
                Some(&org.id),
                caller,
                "device.secrets_revealed",
                &name,
                format!(
                    "secrets shown in the comparison of backups of {} and {}",
                    found
                        .from
                        .as_ref()
                        .map_or_else(|| "(none)".to_owned(), |f| utc_datetime(f.taken_at)),
                    utc_datetime(found.to.taken_at)
                ),
            )
            .await?;
            tx.commit().await.map_err(sql_failure)?;
            tracing::info!(org.id = %org.id, revision.id = %found.to.id, "secrets revealed in a comparison");
        }
        // Masking and the line diff are CPU work on up to two 2 MB texts: off the async workers.
        let (before, after) = (found.before.clone(), found.after.clone());
        let has_from = found.from.is_some();
        let (raw, raw_truncated) = tokio::task::spawn_blocking(move || {
            let shown = |xml: &str, other: Option<&str>| {
                if reveal {
                    xml.to_owned()
                } else {
                    secrets::mask(xml, other)
                }
            };
            if !has_from {
                return (Vec::new(), false);
            }
            let older = before
                .as_deref()
                .map(|b| shown(b, Some(&after)))
                .unwrap_or_default();
            let newer = shown(&after, before.as_deref());
            raw_diff::lines(&older, &newer, RAW_DIFF_LIMIT)
        })
        .await
        .map_err(|e| {
            tracing::error!(error = %e, "the raw comparison failed");
            AppError::Internal("backup-diff".to_owned())
        })?;
        let reference = |r: &RevisionKey| RevisionRef {
            id: r.id.clone(),
            taken_at_ms: r.taken_at,
            source: r.source.clone(),
        };
        Ok(Comparison {
            from: found.from.as_ref().map(reference),
            to: reference(&found.to),
            changes: shown_changes(found.changes),
            raw: shown_lines(raw),
            raw_truncated,
            revealed: reveal,
        })
    }

    async fn acknowledge_drift(&self, caller: &Caller, device_id: String) -> Result<(), AppError> {
        let org = caller.org_where(Role::can_operate)?;
        let (name, _) = self.device(&org.id, &device_id).await?;
        let mut tx = self.store.begin().await.map_err(store_failure)?;
        if !super::drift::acknowledge(&mut tx, &org.id, &device_id)
            .await
            .map_err(store_failure)?
        {
            return Err(AppError::Conflict(format!(
                "{name} has no change outside Mudmap to acknowledge (someone may have just done it)."
            )));
        }
        audit::by_caller(
            &mut tx,
            Some(&org.id),
            caller,
            "device.drift_acknowledged",
            &name,
            "change outside Mudmap acknowledged".to_owned(),
        )
        .await?;
        tx.commit().await.map_err(sql_failure)?;
        self.live.send(LiveEvent::Drift {
            org_id: org.id.clone(),
            device_id: device_id.clone(),
            marked: false,
            at_ms: crate::store::now_ms(),
        });
        tracing::info!(device.id = %device_id, org.id = %org.id, "drift acknowledged");
        Ok(())
    }

    async fn download(&self, caller: &Caller, revision_id: String) -> Result<ConfigFile, AppError> {
        let org = caller.org_where(Role::can_administer)?;
        let found = super::rows::revision(&self.store, &org.id, &revision_id)
            .await
            .map_err(store_failure)?
            .ok_or_else(|| AppError::NotFound("That backup".to_owned()))?;
        let xml = self.backups.read(&org.id, &found.id).await.map_err(|e| {
            tracing::error!(revision.id = %found.id, error = %e, "cannot read a backup");
            AppError::Internal("backup-read".to_owned())
        })?;
        let name = self.device_name(&org.id, &found.device_id).await?;
        let mut tx = self.store.begin().await.map_err(store_failure)?;
        audit::by_caller(
            &mut tx,
            Some(&org.id),
            caller,
            "device.config_downloaded",
            &name,
            format!("backup of {} downloaded", utc_datetime(found.taken_at)),
        )
        .await?;
        tx.commit().await.map_err(sql_failure)?;
        tracing::info!(org.id = %org.id, revision.id = %found.id, "backup downloaded");
        Ok(ConfigFile {
            file_name: file_name(&name, found.taken_at),
            xml,
        })
    }

    async fn back_up(&self, caller: &Caller, device_id: String) -> Result<(), AppError> {
        let org = caller.org_where(Role::can_operate)?;
        let (name, state) = self.device(&org.id, &device_id).await?;
        if DeviceState::parse(&state) != Some(DeviceState::Active) {
            return Err(AppError::Invalid(format!(
                "{name} is not active: activate it before backing it up."
            )));
        }
        let mut tx = self.store.begin().await.map_err(store_failure)?;
        BackupJob {
            device_id: device_id.clone(),
            source: Source::Manual,
            actor_id: Some(caller.user_id.clone()),
        }
        .enqueue(&self.queue, &mut tx, &org.id, std::time::Duration::ZERO)
        .await
        .map_err(store_failure)?;
        audit::by_caller(
            &mut tx,
            Some(&org.id),
            caller,
            "device.backup",
            &name,
            "backup requested".to_owned(),
        )
        .await?;
        self.queue.commit(tx).await.map_err(store_failure)?;
        tracing::info!(device.id = %device_id, org.id = %org.id, "backup requested");
        Ok(())
    }
}

/// Differences as the browser shows them.
pub(crate) fn shown_changes(changes: Vec<crate::pfsense::diff::Change>) -> Vec<ConfigChange> {
    changes
        .into_iter()
        .map(|c| ConfigChange {
            section: c.section,
            text: c.text,
        })
        .collect()
}

/// Raw diff lines as the browser shows them.
pub(crate) fn shown_lines(raw: Vec<(char, String)>) -> Vec<RawLine> {
    raw.into_iter()
        .map(|(kind, text)| RawLine { kind, text })
        .collect()
}

#[cfg(test)]
mod tests {
    #[test]
    fn download_names_are_safe_and_stamped() {
        assert_eq!(
            super::file_name("fw 1/../x", 1_765_141_505_000),
            "config-fw_1_.._x-20251207-210505.xml"
        );
    }
}
