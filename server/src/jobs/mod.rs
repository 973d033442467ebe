//! The durable job queue: background work (mail now; polling, backups and rollouts later) that
//! runs inside the server process and survives a crash.
//!
//! - A job is a row in the `jobs` table of the same database, inserted with [`Queue::enqueue`]
//!   inside the transaction of the write that causes it (an outbox): both happen or neither.
//! - [`worker::Worker`] claims due jobs in batches, runs their [`JobHandler`] under a lease that it
//!   renews, and records the outcome. A failed attempt is retried with exponential backoff until
//!   `max_attempts`; then the job is `failed`, keeps its last error and can be retried by hand.
//! - A worker that dies leaves its jobs `running` with a lease that expires; any worker then claims
//!   them again. Handlers must therefore be idempotent, and payloads carry ids, not copies of data.
//! - PostgreSQL: several instances share the queue (`FOR UPDATE SKIP LOCKED`), woken by
//!   `LISTEN/NOTIFY`; SQLite: one process, woken in-process. Both poll as a fallback.
//!
//! See `docs/decisions/0005-durable-job-queue.md`.

mod listen;
mod sql;
pub mod worker;

use std::sync::Arc;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use sqlx::{Any, Transaction};
use tokio::sync::Notify;

use crate::store::{now_ms, Backend, Store, StoreError};

pub use sql::{JobRow, JobState};
pub use worker::{Worker, WorkerConfig};

/// The PostgreSQL notification channel that wakes workers.
pub const NOTIFY_CHANNEL: &str = "mudmap_jobs";

/// Default attempts before a job is marked failed.
pub const DEFAULT_MAX_ATTEMPTS: u32 = 8;

/// A job to insert.
#[derive(Debug, Clone)]
pub struct NewJob {
    kind: &'static str,
    payload: serde_json::Value,
    org_id: Option<String>,
    dedup_key: Option<String>,
    delay: Duration,
    max_attempts: u32,
}

impl NewJob {
    /// A job of `kind` whose handler receives `payload` (ids, never copies of data or secrets).
    pub fn new(kind: &'static str, payload: &impl Serialize) -> Self {
        Self {
            kind,
            payload: serde_json::to_value(payload).unwrap_or(serde_json::Value::Null),
            org_id: None,
            dedup_key: None,
            delay: Duration::ZERO,
            max_attempts: DEFAULT_MAX_ATTEMPTS,
        }
    }

    /// The organisation whose admins may see and retry this job.
    pub fn org(mut self, org_id: &str) -> Self {
        self.org_id = Some(org_id.to_owned());
        self
    }

    /// While a job with this key is queued or running, enqueueing another is a no-op.
    pub fn dedup(mut self, key: impl Into<String>) -> Self {
        self.dedup_key = Some(key.into());
        self
    }

    /// Run no earlier than `delay` from now.
    pub fn delay(mut self, delay: Duration) -> Self {
        self.delay = delay;
        self
    }

    pub fn max_attempts(mut self, attempts: u32) -> Self {
        self.max_attempts = attempts.max(1);
        self
    }
}

/// What [`Queue::enqueue`] did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Enqueued {
    /// Inserted under this id.
    New(String),
    /// A job with the same deduplication key is already pending; nothing was inserted.
    Duplicate,
}

/// Why a job attempt did not succeed.
#[derive(Debug, thiserror::Error)]
pub enum JobError {
    /// Worth another attempt later (a dependency is down, a timeout).
    #[error("{0}")]
    Retry(String),
    /// Will never succeed; fail the job now.
    #[error("{0}")]
    Permanent(String),
}

/// One claimed attempt, as a handler sees it.
#[derive(Debug, Clone)]
pub struct JobContext {
    pub id: String,
    pub kind: String,
    pub payload: serde_json::Value,
    /// 1 on the first attempt.
    pub attempt: u32,
    pub max_attempts: u32,
    pub org_id: Option<String>,
}

impl JobContext {
    /// The payload as the handler's type; a payload that does not fit is a permanent failure.
    pub fn payload<T: for<'de> Deserialize<'de>>(&self) -> Result<T, JobError> {
        serde_json::from_value(self.payload.clone()).map_err(|e| {
            JobError::Permanent(format!(
                "the payload of this {} job is not understood ({e}); it was probably written by another Mudmap version",
                self.kind
            ))
        })
    }
}

/// Runs the jobs of one kind. Must be idempotent: after a crash an attempt may run again.
#[async_trait::async_trait]
pub trait JobHandler: Send + Sync {
    async fn run(&self, job: &JobContext) -> Result<(), JobError>;
}

/// The queue: enqueue, wake, inspect and retry. Cheap to clone.
#[derive(Clone)]
pub struct Queue {
    store: Store,
    wake: Arc<Notify>,
}

impl std::fmt::Debug for Queue {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Queue").finish_non_exhaustive()
    }
}

impl Queue {
    pub fn new(store: Store) -> Self {
        Self {
            store,
            wake: Arc::new(Notify::new()),
        }
    }

    pub fn store(&self) -> &Store {
        &self.store
    }

    /// Insert `job` in `tx`. It becomes visible to workers when `tx` commits: use
    /// [`Queue::commit`] so the local worker is woken at once.
    pub async fn enqueue(
        &self,
        tx: &mut Transaction<'static, Any>,
        job: NewJob,
    ) -> Result<Enqueued, StoreError> {
        let outcome = sql::insert(tx, &job, now_ms()).await?;
        if self.store.backend() == Backend::Postgres && matches!(outcome, Enqueued::New(_)) {
            // Delivered to every listening instance when (and only if) the transaction commits.
            sqlx::query("SELECT pg_notify($1, '')")
                .bind(NOTIFY_CHANNEL)
                .execute(&mut **tx)
                .await?;
        }
        Ok(outcome)
    }

    /// Commit a transaction that enqueued jobs and wake this process's worker.
    pub async fn commit(&self, tx: Transaction<'static, Any>) -> Result<(), StoreError> {
        tx.commit().await?;
        self.wake();
        Ok(())
    }

    /// Enqueue one job in its own transaction.
    pub async fn enqueue_now(&self, job: NewJob) -> Result<Enqueued, StoreError> {
        let mut tx = self.store.begin().await?;
        let outcome = self.enqueue(&mut tx, job).await?;
        self.commit(tx).await?;
        Ok(outcome)
    }

    /// Wake the worker of this process (it also polls, so a lost wake-up only costs latency).
    pub fn wake(&self) {
        self.wake.notify_one();
    }

    pub(crate) fn wake_handle(&self) -> Arc<Notify> {
        self.wake.clone()
    }

    /// Jobs of an organisation (or of the whole instance when `org_id` is `None`), newest first.
    pub async fn list(
        &self,
        org_id: Option<&str>,
        state: Option<JobState>,
        limit: u32,
    ) -> Result<Vec<JobRow>, StoreError> {
        sql::list(&self.store, org_id, state, limit).await
    }

    /// One job, if it exists within `org_id` (any organisation when `None`).
    pub async fn get(&self, id: &str, org_id: Option<&str>) -> Result<Option<JobRow>, StoreError> {
        sql::get(&self.store, id, org_id).await
    }

    /// Put a failed job back in the queue with a fresh set of attempts. Returns false when no
    /// failed job with this id exists in `org_id`.
    pub async fn retry(&self, id: &str, org_id: Option<&str>) -> Result<bool, StoreError> {
        let mut tx = self.store.begin().await?;
        let retried = self.retry_in(&mut tx, id, org_id).await?;
        self.commit(tx).await?;
        Ok(retried)
    }

    /// [`Queue::retry`] in the caller's transaction (commit it with [`Queue::commit`]), so the
    /// retry and its audit entry land together.
    pub async fn retry_in(
        &self,
        tx: &mut sqlx::Transaction<'static, sqlx::Any>,
        id: &str,
        org_id: Option<&str>,
    ) -> Result<bool, StoreError> {
        let retried = sql::retry(tx, id, org_id, now_ms()).await?;
        if retried && self.store.backend() == Backend::Postgres {
            sqlx::query("SELECT pg_notify($1, '')")
                .bind(NOTIFY_CHANNEL)
                .execute(&mut **tx)
                .await?;
        }
        Ok(retried)
    }

    /// Counts by state, for status pages and benchmarks.
    pub async fn counts(&self) -> Result<Vec<(JobState, i64)>, StoreError> {
        sql::counts(&self.store).await
    }
}

/// The delay before attempt `attempt + 1` after `attempt` failed: `base × 2^(attempt-1)`, capped,
/// with ±20 % jitter so a burst of failures does not retry in lockstep.
pub fn backoff(attempt: u32, base: Duration, cap: Duration) -> Duration {
    let exponent = attempt.saturating_sub(1).min(20);
    let raw = base.saturating_mul(1u32 << exponent).min(cap);
    let jitter = 0.8 + 0.4 * rand::random::<f64>();
    raw.mul_f64(jitter)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_grows_and_is_capped() {
        let base = Duration::from_secs(5);
        let cap = Duration::from_secs(3600);
        let first = backoff(1, base, cap);
        assert!(first >= Duration::from_secs(4) && first <= Duration::from_secs(6));
        let fourth = backoff(4, base, cap);
        assert!(fourth >= Duration::from_secs(32) && fourth <= Duration::from_secs(48));
        let late = backoff(30, base, cap);
        assert!(late <= cap.mul_f64(1.2) && late >= cap.mul_f64(0.8));
    }
}
