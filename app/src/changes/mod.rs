//! Change sets (issue 13): what the browser and the server say about them. So far the preview:
//! the operations of a change set (their JSON form, as `server::changes::Operation` reads it)
//! tried on each chosen device's newest backup — each step's outcome, then the difference in
//! words and as raw XML (secrets masked). Nothing is sent to a firewall by a preview.

use leptos::prelude::*;
use serde::{Deserialize, Serialize};

use crate::devices::backups::{ConfigChange, RawLine};
use crate::error::AppError;

/// Devices one preview covers at most.
pub const MAX_PREVIEW_DEVICES: usize = 50;
/// Operations one change set holds at most.
pub const MAX_OPERATIONS: usize = 200;

/// One operation's outcome on a device.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PreviewStep {
    pub words: String,
    /// Why it does not apply to this device.
    pub conflict: Option<String>,
}

/// A change set's preview on one device.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DevicePreview {
    pub device_id: String,
    pub device_name: String,
    /// The backup the preview starts from (None: the device has none yet).
    pub base_revision_id: Option<String>,
    pub base_taken_at_ms: Option<i64>,
    /// Why the device cannot be previewed at all (no backup yet).
    pub problem: Option<String>,
    pub steps: Vec<PreviewStep>,
    pub changes: Vec<ConfigChange>,
    pub raw: Vec<RawLine>,
    pub raw_truncated: bool,
}

#[server(prefix = "/api", endpoint = "changes/preview")]
pub async fn preview_changes(
    device_ids: String,
    operations: String,
) -> Result<Vec<DevicePreview>, AppError> {
    use crate::services::{caller, respond, services};
    let caller = respond(caller())?;
    let ids: Vec<String> = device_ids
        .split([',', '\n', ' '])
        .map(str::trim)
        .filter(|id| !id.is_empty())
        .map(str::to_owned)
        .collect();
    respond(services()?.changes.preview(&caller, ids, operations).await)
}
