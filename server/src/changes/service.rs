//! The change-set service: previews over real devices — each device of the caller's organisation
//! read from its newest backup, the operations tried on it off the async workers. Operators and
//! above; nothing is sent to a firewall.

use std::sync::Arc;

use app::changes::{DevicePreview, PreviewStep, MAX_OPERATIONS, MAX_PREVIEW_DEVICES};
use app::error::AppError;
use app::roles::Role;
use app::services::Caller;

use super::preview::preview;
use super::Operation;
use crate::backups::service::{shown_changes, shown_lines};
use crate::backups::Backups;
use crate::pfsense::edit::Stamp;
use crate::pfsense::Config;
use crate::services::sql_failure;
use crate::store::{now_ms, Store};

pub struct ChangeService {
    store: Store,
    backups: Arc<Backups>,
}

impl ChangeService {
    pub fn new(store: Store, backups: Arc<Backups>) -> Arc<Self> {
        Arc::new(Self { store, backups })
    }
}

/// The operations' JSON, read; a bad one is named.
fn operations(text: &str) -> Result<Vec<Operation>, AppError> {
    let operations: Vec<Operation> = serde_json::from_str(text).map_err(|e| {
        AppError::Invalid(format!(
            "The change set's operations are not understood ({e}). Reload the page and try again."
        ))
    })?;
    if operations.is_empty() {
        return Err(AppError::Invalid(
            "Add at least one change first.".to_owned(),
        ));
    }
    if operations.len() > MAX_OPERATIONS {
        return Err(AppError::Invalid(format!(
            "A change set holds at most {MAX_OPERATIONS} changes."
        )));
    }
    Ok(operations)
}

#[async_trait::async_trait]
impl app::services::ChangeService for ChangeService {
    async fn preview(
        &self,
        caller: &Caller,
        device_ids: Vec<String>,
        text: String,
    ) -> Result<Vec<DevicePreview>, AppError> {
        let org = caller.org_where(Role::can_operate)?;
        if device_ids.is_empty() {
            return Err(AppError::Invalid(
                "Choose at least one firewall.".to_owned(),
            ));
        }
        if device_ids.len() > MAX_PREVIEW_DEVICES {
            return Err(AppError::Invalid(format!(
                "A preview covers at most {MAX_PREVIEW_DEVICES} firewalls at a time."
            )));
        }
        let operations = Arc::new(operations(&text)?);
        let stamp = Stamp {
            by: format!("Mudmap: {}", caller.email),
            at_secs: now_ms() / 1000,
        };
        let mut out = Vec::with_capacity(device_ids.len());
        for id in device_ids {
            let found: Option<(String,)> =
                sqlx::query_as("SELECT name FROM devices WHERE id = $1 AND org_id = $2")
                    .bind(&id)
                    .bind(&org.id)
                    .fetch_optional(self.store.pool())
                    .await
                    .map_err(sql_failure)?;
            let Some((name,)) = found else {
                return Err(AppError::NotFound(format!("The firewall {id}")));
            };
            let newest = self.backups.newest(&org.id, &id).await.map_err(|e| {
                tracing::error!(device.id = %id, error = %e, "cannot read the newest backup for a preview");
                AppError::Internal("preview-read".to_owned())
            })?;
            let Some((base, xml)) = newest else {
                out.push(DevicePreview {
                    device_id: id,
                    device_name: name,
                    base_revision_id: None,
                    base_taken_at_ms: None,
                    problem: Some(
                        "Mudmap has no backup of this firewall yet: back it up first (History)."
                            .to_owned(),
                    ),
                    steps: Vec::new(),
                    changes: Vec::new(),
                    raw: Vec::new(),
                    raw_truncated: false,
                });
                continue;
            };
            let (ops, stamp) = (operations.clone(), stamp.clone());
            let result = tokio::task::spawn_blocking(move || {
                Config::parse(&xml).map(|config| preview(&config, &ops, &stamp))
            })
            .await
            .map_err(|e| AppError::Internal(format!("preview-{e}")))?;
            let device = match result {
                Ok(p) => DevicePreview {
                    device_id: id,
                    device_name: name,
                    base_revision_id: Some(base.id),
                    base_taken_at_ms: Some(base.taken_at),
                    problem: None,
                    steps: p
                        .steps
                        .into_iter()
                        .map(|s| PreviewStep {
                            words: s.words,
                            conflict: s.conflict,
                        })
                        .collect(),
                    changes: shown_changes(p.changes),
                    raw: shown_lines(p.raw.0),
                    raw_truncated: p.raw.1,
                },
                Err(e) => DevicePreview {
                    device_id: id,
                    device_name: name,
                    base_revision_id: Some(base.id),
                    base_taken_at_ms: Some(base.taken_at),
                    problem: Some(format!(
                        "The newest backup cannot be read as a pfSense configuration ({e})."
                    )),
                    steps: Vec::new(),
                    changes: Vec::new(),
                    raw: Vec::new(),
                    raw_truncated: false,
                },
            };
            out.push(device);
        }
        Ok(out)
    }
}
