//! The edge of backups for the browser: a device's history (any member of its organisation) and
//! "back up now" (operators and above, audited, queued as a job).

use std::sync::Arc;

use app::devices::backups::{ConfigChange, Revision, RevisionChanges, HISTORY_LIMIT};
use app::devices::DeviceState;
use app::error::AppError;
use app::roles::Role;
use app::services::Caller;

use super::{revision_view, BackupJob, Source};
use crate::audit;
use crate::jobs::Queue;
use crate::services::{sql_failure, store_failure};
use crate::store::Store;

pub struct BackupService {
    store: Store,
    queue: Queue,
    backups: Arc<super::Backups>,
}

impl BackupService {
    pub fn new(store: Store, queue: Queue, backups: Arc<super::Backups>) -> Arc<Self> {
        Arc::new(Self {
            store,
            queue,
            backups,
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

    async fn changes(
        &self,
        caller: &Caller,
        revision_id: String,
    ) -> Result<RevisionChanges, AppError> {
        let org = caller.org()?;
        let found = self
            .backups
            .changes(&org.id, &revision_id)
            .await
            .map_err(|e| {
                tracing::error!(revision.id = %revision_id, error = %e, "cannot compare revisions");
                AppError::Internal("backup-diff".to_owned())
            })?;
        let (previous_at_ms, changes) =
            found.ok_or_else(|| AppError::NotFound("That backup".to_owned()))?;
        Ok(RevisionChanges {
            previous_at_ms,
            changes: changes
                .into_iter()
                .map(|c| ConfigChange {
                    section: c.section,
                    text: c.text,
                })
                .collect(),
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
