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

/// Two revisions of one device compared: what changed in people's words, and the raw XML diff.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Comparison {
    /// The older side; none when `to` is the device's first backup (nothing to compare with).
    pub from: Option<RevisionRef>,
    pub to: RevisionRef,
    /// In people's words, grouped by section (secrets never spelled out).
    pub changes: Vec<ConfigChange>,
    /// The line diff of the two `config.xml` files (three lines of context), secrets masked
    /// unless revealed.
    pub raw: Vec<RawLine>,
    /// The raw diff had more lines than [`RAW_DIFF_LIMIT`]; the rest is left out.
    pub raw_truncated: bool,
    /// Whether the raw diff shows secrets (owners and admins who asked; audited).
    pub revealed: bool,
}

/// One side of a comparison.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RevisionRef {
    pub id: String,
    pub taken_at_ms: i64,
    pub source: String,
}

/// Lines of raw diff a comparison carries at most.
pub const RAW_DIFF_LIMIT: usize = 4_000;

/// One line of a raw diff.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RawLine {
    /// '+' added, '-' removed, ' ' context, '@' a hunk header ("lines 10–16").
    pub kind: char,
    pub text: String,
}

/// One difference, in people's words (secrets are never spelled out).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ConfigChange {
    /// rules, aliases, nat, interfaces, users, packages, system, or another section's name.
    pub section: String,
    pub text: String,
}

/// A revision's configuration file, for download.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ConfigFile {
    /// e.g. `config-fw1-20261207-210500.xml`
    pub file_name: String,
    pub xml: String,
}

/// Compare two revisions of one device: `from` (older; none = the revision before `to`) with
/// `to`. `reveal` shows secrets in the raw diff: owners and admins only, and audited.
#[server(prefix = "/api", endpoint = "devices/compare")]
pub async fn compare_revisions(
    from: Option<String>,
    to: String,
    reveal: bool,
) -> Result<Comparison, AppError> {
    use crate::services::{caller, respond, services};
    let caller = respond(caller())?;
    respond(services()?.backups.compare(&caller, from, to, reveal).await)
}

/// A revision's `config.xml` as pfSense wrote it, secrets included (owners and admins; audited):
/// what pfSense's Diagnostics > Backup & Restore takes back.
#[server(prefix = "/api", endpoint = "devices/revision-download")]
pub async fn download_revision(id: String) -> Result<ConfigFile, AppError> {
    use crate::services::{caller, respond, services};
    let caller = respond(caller())?;
    respond(services()?.backups.download(&caller, id).await)
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
