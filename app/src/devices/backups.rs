//! A device's configuration history: the revisions Mudmap backed up (at activation, on request,
//! and later on a schedule, on drift and around changes), newest first, and "back up now".

use leptos::prelude::*;
use serde::{Deserialize, Serialize};

use crate::error::AppError;

/// Revisions a history lists at most.
pub const HISTORY_LIMIT: i64 = 200;

/// One backup of a device's configuration.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Revision {
    pub id: String,
    pub taken_at_ms: i64,
    /// activation, scheduled, before_change, after_change, drift or manual.
    pub source: String,
    /// `sha256:…` of the exact configuration.
    pub config_hash: String,
    /// Bytes of config.xml.
    pub size: u64,
    /// pfSense's own note of the change that made this configuration.
    pub pf_time_ms: Option<i64>,
    pub pf_description: String,
    pub pf_username: String,
}

impl Revision {
    /// The source in people's words.
    pub fn source_label(&self) -> &'static str {
        match self.source.as_str() {
            "activation" => "At activation",
            "scheduled" => "Scheduled",
            "before_change" => "Before a change",
            "after_change" => "After a change",
            "drift" => "Changed outside Mudmap",
            "manual" => "On request",
            _ => "Other",
        }
    }
}

/// What changed in a revision, compared with the device's revision before it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RevisionChanges {
    /// When the revision compared with was taken; none for a device's first backup.
    pub previous_at_ms: Option<i64>,
    pub changes: Vec<ConfigChange>,
}

/// One difference, in people's words (secrets are never spelled out).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ConfigChange {
    /// rules, aliases, nat, interfaces, users, packages, system, or another section's name.
    pub section: String,
    pub text: String,
}

/// What changed in a revision since the one before it (noise such as revision stamps ignored).
#[server(prefix = "/api", endpoint = "devices/revision-changes")]
pub async fn fetch_revision_changes(id: String) -> Result<RevisionChanges, AppError> {
    use crate::services::{caller, respond, services};
    let caller = respond(caller())?;
    respond(services()?.backups.changes(&caller, id).await)
}

/// The device's configuration revisions, newest first.
#[server(prefix = "/api", endpoint = "devices/revisions")]
pub async fn fetch_revisions(id: String) -> Result<Vec<Revision>, AppError> {
    use crate::services::{caller, respond, services};
    let caller = respond(caller())?;
    respond(services()?.backups.revisions(&caller, id).await)
}

/// Back the device's configuration up now (operators and above): queued as a job, it appears in
/// the history within seconds.
#[server(prefix = "/api", endpoint = "devices/backup")]
pub async fn back_up_now(id: String) -> Result<(), AppError> {
    use crate::services::{caller, respond, services};
    let caller = respond(caller())?;
    respond(services()?.backups.back_up(&caller, id).await)
}
