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
//! schedule ([`schedule`], daily by default, with retention). A drift backup that differs in
//! substance marks the device "Changed outside Mudmap" ([`drift`]). Backups around Mudmap's own
//! changes come with change sets.

pub mod drift;
pub mod rows;
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
use crate::live::{Live, LiveEvent};
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
    #[error("those two backups are of different firewalls: compare backups of one firewall")]
    OtherDevice,
    #[error("the stored configuration cannot be read: {0}")]
    Corrupt(String),
    #[error("the database failed: {0}")]
    Store(#[from] StoreError),
}

/// Takes, stores and reads backups.
pub struct Backups {
    deps: BackupDeps,
}

/// What backups work with.
pub struct BackupDeps {
    pub store: Store,
    pub engine: Engine,
    /// Seals configurations at rest.
    pub sealer: Arc<Sealer>,
    /// Drift mails, in the backup's transaction.
    pub queue: Queue,
    /// Drift marks, announced to open pages.
    pub live: Live,
    /// How long drift mails wait to gather more marks (the offline mails' hold-down).
    pub mail_hold_down: std::time::Duration,
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
    pub fn new(deps: BackupDeps) -> Arc<Self> {
        Arc::new(Self { deps })
    }

    /// Fetch the device's configuration now and store it as a revision.
    pub async fn take(&self, job: &BackupJob) -> Result<Taken, BackupError> {
        let Some(org_id) = rows::active_device_org(&self.deps.store, &job.device_id).await? else {
            return Err(BackupError::NotManaged);
        };
        let document: ConfigDocument = self
            .deps
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
        // Parsed once: for pfSense's note, the drift comparison and the search facts.
        let parsed = Config::parse(&document.xml).ok();
        let note = parsed.as_ref().map(Note::from_config).unwrap_or_default();
        let sealed = self.seal(&org_id, &document.hash, document.xml.as_bytes())?;
        let revision_id = uuid::Uuid::now_v7().to_string();
        // A backup that is not Mudmap's own (drift, scheduled, on request) is compared with the
        // revision before it: a change in substance (not pfSense's bookkeeping alone) that Mudmap
        // did not make marks the device. (Mudmap's own changes are followed by their own backup,
        // so the revision before already has them.)
        let outside = if matches!(
            job.source,
            Source::Drift | Source::Scheduled | Source::Manual
        ) {
            self.outside_changes(&org_id, &job.device_id, parsed.as_ref(), &document.hash)
                .await?
        } else {
            None
        };
        let mut tx = self.deps.store.begin().await?;
        let new_content = rows::insert(
            &mut tx,
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
        crate::search::facts::refresh(
            &mut tx,
            &org_id,
            &job.device_id,
            &revision_id,
            &document.hash,
            parsed.as_ref(),
        )
        .await?;
        let newly_marked = match &outside {
            Some((base_revision_id, changes)) => {
                drift::mark(
                    &mut tx,
                    &self.deps.queue,
                    drift::Outside {
                        org_id: &org_id,
                        device_id: &job.device_id,
                        base_revision_id,
                        revision_id: &revision_id,
                        note: &note,
                        changes: *changes,
                    },
                    self.deps.mail_hold_down,
                )
                .await?
            }
            None => false,
        };
        self.deps.queue.commit(tx).await?;
        if newly_marked {
            self.deps.live.send(LiveEvent::Drift {
                org_id: org_id.clone(),
                device_id: job.device_id.clone(),
                marked: true,
                at_ms: now_ms(),
            });
        }
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

    /// The newest revision's id and the number of differences in words, when `xml` differs in
    /// substance from the device's newest revision.
    async fn outside_changes(
        &self,
        org_id: &str,
        device_id: &str,
        after: Option<&Config>,
        hash: &str,
    ) -> Result<Option<(String, usize)>, BackupError> {
        let Some(base) = rows::newest(&self.deps.store, org_id, device_id).await? else {
            return Ok(None);
        };
        if base.config_hash == hash {
            return Ok(None);
        }
        // Not comparable (the older one cannot be opened or read): a person should look — and
        // the new configuration is stored all the same.
        let Ok(before) = self.read(org_id, &base.id).await else {
            return Ok(Some((base.id, 1)));
        };
        let (Ok(before), Some(after)) = (Config::parse(&before), after) else {
            return Ok(Some((base.id, 1)));
        };
        let changes = crate::pfsense::diff::diff(&before, after).len();
        Ok((changes > 0).then_some((base.id, changes)))
    }

    /// A device's newest revision and its configuration (of `org_id` only; None: no backup yet).
    pub async fn newest(
        &self,
        org_id: &str,
        device_id: &str,
    ) -> Result<Option<(rows::RevisionKey, String)>, BackupError> {
        let Some(key) = rows::newest(&self.deps.store, org_id, device_id).await? else {
            return Ok(None);
        };
        let xml = self.read(org_id, &key.id).await?;
        Ok(Some((key, xml)))
    }

    /// A stored revision's configuration (of `org_id` only).
    pub async fn read(&self, org_id: &str, revision_id: &str) -> Result<String, BackupError> {
        let Some((hash, sealed)) = rows::sealed_of(&self.deps.store, org_id, revision_id).await?
        else {
            return Err(BackupError::NotManaged);
        };
        self.open(org_id, &hash, &sealed)
    }

    /// A revision of `org_id` compared with `from` (another revision of the same device), or
    /// with the device's revision before it. None when a revision is not the organisation's.
    pub async fn compare(
        &self,
        org_id: &str,
        from: Option<&str>,
        to: &str,
    ) -> Result<Option<Compared>, BackupError> {
        let Some(to) = rows::revision(&self.deps.store, org_id, to).await? else {
            return Ok(None);
        };
        let from = match from {
            Some(id) => match rows::revision(&self.deps.store, org_id, id).await? {
                Some(from) if from.device_id == to.device_id => Some(from),
                Some(_) => return Err(BackupError::OtherDevice),
                None => return Ok(None),
            },
            None => rows::previous(&self.deps.store, org_id, &to).await?,
        };
        let after = self.read(org_id, &to.id).await?;
        let Some(from) = from else {
            return Ok(Some(Compared {
                from: None,
                to,
                before: None,
                after,
                changes: Vec::new(),
            }));
        };
        let before = self.read(org_id, &from.id).await?;
        if from.config_hash == to.config_hash {
            return Ok(Some(Compared {
                from: Some(from),
                to,
                before: Some(before),
                after,
                changes: Vec::new(),
            }));
        }
        // Parsing and comparing two large configurations is CPU work: off the async workers.
        let (before, after, changes) = tokio::task::spawn_blocking(move || {
            let parse = |xml: &str| {
                Config::parse(xml)
                    .map_err(|e| BackupError::Corrupt(format!("not a configuration: {e}")))
            };
            let changes = crate::pfsense::diff::diff(&parse(&before)?, &parse(&after)?);
            Ok::<_, BackupError>((before, after, changes))
        })
        .await
        .map_err(|e| BackupError::Corrupt(format!("the comparison failed: {e}")))??;
        Ok(Some(Compared {
            from: Some(from),
            to,
            before: Some(before),
            after,
            changes,
        }))
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
            .deps
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
            .deps
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

/// Two revisions of one device and what changed between them.
pub struct Compared {
    pub from: Option<rows::RevisionKey>,
    pub to: rows::RevisionKey,
    /// The older configuration (none: `to` is the device's first backup).
    pub before: Option<String>,
    pub after: String,
    pub changes: Vec<crate::pfsense::diff::Change>,
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
        Config::parse(xml)
            .map(|c| Self::from_config(&c))
            .unwrap_or_default()
    }

    pub fn from_config(config: &Config) -> Self {
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
