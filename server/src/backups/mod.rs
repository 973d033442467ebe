//! Configuration backups: each backup fetches a firewall's `config.xml` over its resident agent
//! channel (`config.get`), checks that the bytes match the hash the agent reported, and records a
//! revision (when, why, and pfSense's own note of the change that made it). The configuration is
//! stored once per organisation and content (deduplicated by hash), deflated and sealed with the
//! master key — it holds password hashes, pre-shared keys and private keys.
//!
//! Backups run as durable jobs ([`BACKUP_JOB`], one per device at a time), so they survive a
//! restart and share the worker's bounded concurrency instead of competing with polling. What
//! triggers them: activation, a person asking, and the monitor seeing a polled configuration hash
//! that differs from the newest backup (a change made outside Mudmap: source `drift`), and the
//! schedule ([`schedule`], daily by default, with retention). Backups around Mudmap's own changes
//! come with change sets.

mod rows;
pub mod schedule;
pub mod service;

use std::io::{Read, Write};
use std::sync::Arc;

use app::devices::backups::Revision;
use serde::{Deserialize, Serialize};
use sqlx::{Any, Transaction};

use crate::agent::protocol::ConfigDocument;
use crate::crypto::Sealer;
use crate::jobs::{Enqueued, JobContext, JobError, JobHandler, NewJob, Queue};
use crate::pfsense::Config;
use crate::ssh::{DeviceId, Engine, SshError};
use crate::store::{now_ms, Store, StoreError};

pub use rows::list;

/// The job kind of a backup.
pub const BACKUP_JOB: &str = "backup.take";

/// Why a backup was taken.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Source {
    Activation,
    Scheduled,
    BeforeChange,
    AfterChange,
    Drift,
    Manual,
}

impl Source {
    pub fn as_str(self) -> &'static str {
        match self {
            Source::Activation => "activation",
            Source::Scheduled => "scheduled",
            Source::BeforeChange => "before_change",
            Source::AfterChange => "after_change",
            Source::Drift => "drift",
            Source::Manual => "manual",
        }
    }
}

/// A backup job's payload: ids only.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct BackupJob {
    pub device_id: String,
    pub source: Source,
    /// Who asked (manual backups).
    #[serde(default)]
    pub actor_id: Option<String>,
}

impl BackupJob {
    /// Enqueue in `tx` (the outbox), to run `delay` after the commit: at most one pending
    /// backup per device.
    pub async fn enqueue(
        &self,
        queue: &Queue,
        tx: &mut Transaction<'static, Any>,
        org_id: &str,
        delay: std::time::Duration,
    ) -> Result<Enqueued, StoreError> {
        queue
            .enqueue(
                tx,
                NewJob::new(BACKUP_JOB, self)
                    .org(org_id)
                    .dedup(format!("backup:{}", self.device_id))
                    .delay(delay)
                    .max_attempts(5),
            )
            .await
    }
}

/// Why a backup could not be taken.
#[derive(Debug, thiserror::Error)]
pub enum BackupError {
    #[error("the device is gone or no longer active")]
    NotManaged,
    #[error("the firewall could not be asked for its configuration: {0}")]
    Device(#[from] SshError),
    #[error("the configuration the firewall sent does not match the hash it reported ({0}); nothing was stored")]
    HashMismatch(String),
    #[error("the stored configuration cannot be read: {0}")]
    Corrupt(String),
    #[error("the database failed: {0}")]
    Store(#[from] StoreError),
}

/// Takes, stores and reads backups.
pub struct Backups {
    store: Store,
    engine: Engine,
    sealer: Arc<Sealer>,
}

/// What one backup stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Taken {
    pub revision_id: String,
    pub config_hash: String,
    /// False when the same configuration was already stored (only the revision row is new).
    pub new_content: bool,
}

impl Backups {
    pub fn new(store: Store, engine: Engine, sealer: Arc<Sealer>) -> Arc<Self> {
        Arc::new(Self {
            store,
            engine,
            sealer,
        })
    }

    /// Fetch the device's configuration now and store it as a revision.
    pub async fn take(&self, job: &BackupJob) -> Result<Taken, BackupError> {
        let Some(org_id) = rows::active_device_org(&self.store, &job.device_id).await? else {
            return Err(BackupError::NotManaged);
        };
        let document: ConfigDocument = self
            .engine
            .call(
                &DeviceId::new(job.device_id.as_str()),
                "config.get",
                serde_json::json!({}),
            )
            .await?;
        let actual = format!(
            "sha256:{}",
            crate::crypto::sha256_hex(document.xml.as_bytes())
        );
        if actual != document.hash {
            return Err(BackupError::HashMismatch(format!(
                "reported {}, received {actual}",
                document.hash
            )));
        }
        let note = Note::of(&document.xml);
        let sealed = self.seal(&org_id, &document.hash, document.xml.as_bytes())?;
        let revision_id = uuid::Uuid::now_v7().to_string();
        let new_content = rows::insert(
            &self.store,
            rows::NewRevision {
                id: &revision_id,
                org_id: &org_id,
                device_id: &job.device_id,
                source: job.source,
                config_hash: &document.hash,
                size: document.xml.len(),
                sealed: &sealed,
                note: &note,
                actor_id: job.actor_id.as_deref(),
                at: now_ms(),
            },
        )
        .await?;
        tracing::info!(
            device.id = %job.device_id,
            source = job.source.as_str(),
            bytes = document.xml.len(),
            stored = sealed.len(),
            new_content,
            "configuration backed up"
        );
        Ok(Taken {
            revision_id,
            config_hash: document.hash,
            new_content,
        })
    }

    /// A stored revision's configuration (of `org_id` only).
    pub async fn read(&self, org_id: &str, revision_id: &str) -> Result<String, BackupError> {
        let Some((hash, sealed)) = rows::sealed_of(&self.store, org_id, revision_id).await? else {
            return Err(BackupError::NotManaged);
        };
        self.open(org_id, &hash, &sealed)
    }

    /// What changed in a revision of `org_id` since the device's revision before it.
    pub async fn changes(
        &self,
        org_id: &str,
        revision_id: &str,
    ) -> Result<Option<(Option<i64>, Vec<crate::pfsense::diff::Change>)>, BackupError> {
        let Some(((hash, _), previous)) =
            rows::with_previous(&self.store, org_id, revision_id).await?
        else {
            return Ok(None);
        };
        let Some((previous_id, previous_hash, previous_at)) = previous else {
            return Ok(Some((None, Vec::new())));
        };
        if previous_hash == hash {
            return Ok(Some((Some(previous_at), Vec::new())));
        }
        let parse = |xml: String| {
            Config::parse(&xml)
                .map_err(|e| BackupError::Corrupt(format!("not a configuration: {e}")))
        };
        let before = parse(self.read(org_id, &previous_id).await?)?;
        let after = parse(self.read(org_id, revision_id).await?)?;
        Ok(Some((
            Some(previous_at),
            crate::pfsense::diff::diff(&before, &after),
        )))
    }

    /// Deflate, then seal; base64 for the text column.
    fn seal(&self, org_id: &str, hash: &str, xml: &[u8]) -> Result<String, BackupError> {
        use base64::Engine as _;
        let mut deflater =
            flate2::write::DeflateEncoder::new(Vec::new(), flate2::Compression::default());
        deflater
            .write_all(xml)
            .map_err(|e| BackupError::Corrupt(format!("compression failed: {e}")))?;
        let deflated = deflater
            .finish()
            .map_err(|e| BackupError::Corrupt(format!("compression failed: {e}")))?;
        let sealed = self
            .sealer
            .seal(&deflated, aad(org_id, hash).as_bytes())
            .map_err(|e| BackupError::Corrupt(format!("sealing failed: {e}")))?;
        Ok(base64::engine::general_purpose::STANDARD.encode(sealed))
    }

    fn open(&self, org_id: &str, hash: &str, sealed: &str) -> Result<String, BackupError> {
        use base64::Engine as _;
        let bytes = base64::engine::general_purpose::STANDARD
            .decode(sealed)
            .map_err(|e| BackupError::Corrupt(format!("not base64: {e}")))?;
        let deflated = self
            .sealer
            .open(&bytes, aad(org_id, hash).as_bytes())
            .map_err(|e| BackupError::Corrupt(format!("cannot be opened: {e}")))?;
        let mut xml = String::new();
        flate2::read::DeflateDecoder::new(deflated.as_slice())
            .take(crate::pfsense::xml::MAX_BYTES as u64 + 1)
            .read_to_string(&mut xml)
            .map_err(|e| BackupError::Corrupt(format!("cannot be inflated: {e}")))?;
        let actual = format!("sha256:{}", crate::crypto::sha256_hex(xml.as_bytes()));
        if actual != hash {
            return Err(BackupError::Corrupt(format!(
                "its content hashes to {actual}, not {hash}"
            )));
        }
        Ok(xml)
    }
}

/// The associated data a blob is sealed with: it cannot be moved to another organisation or hash.
fn aad(org_id: &str, hash: &str) -> String {
    format!("config-backup\0{org_id}\0{hash}")
}

/// pfSense's own note of the change that made a configuration (`<revision>`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Note {
    pub time_ms: Option<i64>,
    pub description: String,
    pub username: String,
}

impl Note {
    /// Read from the configuration; an unreadable one has no note (the backup is kept anyway).
    pub fn of(xml: &str) -> Self {
        let Ok(config) = Config::parse(xml) else {
            return Self::default();
        };
        let Some(revision) = config.root.child("revision") else {
            return Self::default();
        };
        Self {
            time_ms: revision
                .text_of("time")
                .trim()
                .parse::<i64>()
                .ok()
                .map(|s| s.saturating_mul(1000)),
            description: revision.text_of("description").to_owned(),
            username: revision.text_of("username").to_owned(),
        }
    }
}

/// Runs [`BACKUP_JOB`]s.
pub struct BackupHandler {
    backups: Arc<Backups>,
}

impl BackupHandler {
    pub fn new(backups: Arc<Backups>) -> Arc<Self> {
        Arc::new(Self { backups })
    }
}

#[async_trait::async_trait]
impl JobHandler for BackupHandler {
    async fn run(&self, job: &JobContext) -> Result<(), JobError> {
        let backup: BackupJob = job.payload()?;
        match self.backups.take(&backup).await {
            Ok(_) => Ok(()),
            // Deleted or deactivated since: nothing to back up, nothing to retry.
            Err(BackupError::NotManaged) => {
                tracing::info!(device.id = %backup.device_id, "backup skipped: the device is gone or not active");
                Ok(())
            }
            // Not handed to the engine yet (just activated), or a passing network problem.
            Err(BackupError::Device(e)) if e.is_transient() || e == SshError::NotManaged => {
                Err(JobError::Retry(e.to_string()))
            }
            Err(BackupError::Store(e)) => Err(JobError::Retry(e.to_string())),
            Err(e) => Err(JobError::Permanent(e.to_string())),
        }
    }
}

/// A revision as the device page lists it.
pub(crate) fn revision_view(row: &rows::RevisionRow) -> Revision {
    Revision {
        id: row.id.clone(),
        taken_at_ms: row.taken_at,
        source: row.source.clone(),
        config_hash: row.config_hash.clone(),
        size: u64::try_from(row.size).unwrap_or(0),
        pf_time_ms: row.pf_time,
        pf_description: row.pf_description.clone(),
        pf_username: row.pf_username.clone(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pfsenses_note_is_read_from_the_revision() {
        let note = Note::of(
            "<pfsense><revision><time>1700000000</time><description><![CDATA[admin@10.0.0.2: Firewall: Rules - saved]]></description><username>admin@10.0.0.2 (Local Database)</username></revision></pfsense>",
        );
        assert_eq!(note.time_ms, Some(1_700_000_000_000));
        assert_eq!(note.description, "admin@10.0.0.2: Firewall: Rules - saved");
        assert!(note.username.starts_with("admin@"));
        assert_eq!(Note::of("not xml"), Note::default());
    }
}
