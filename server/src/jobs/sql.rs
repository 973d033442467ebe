//! The queue's SQL. Every state change of a claimed job is fenced by `(id, lease_owner, attempts)`,
//! so a worker whose lease expired (and whose job another worker took over) cannot overwrite the
//! newer attempt's outcome.

use serde::Serialize;
use sqlx::{Any, AssertSqlSafe, Row, Transaction};

use super::{Enqueued, NewJob};
use crate::store::{Backend, Store, StoreError};

/// Where a job is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum JobState {
    Queued,
    Running,
    Done,
    Failed,
}

impl JobState {
    pub fn as_str(self) -> &'static str {
        match self {
            JobState::Queued => "queued",
            JobState::Running => "running",
            JobState::Done => "done",
            JobState::Failed => "failed",
        }
    }

    pub fn parse(text: &str) -> Option<Self> {
        Some(match text {
            "queued" => JobState::Queued,
            "running" => JobState::Running,
            "done" => JobState::Done,
            "failed" => JobState::Failed,
            _ => return None,
        })
    }
}

/// A job as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JobRow {
    pub id: String,
    pub kind: String,
    pub payload: String,
    pub org_id: Option<String>,
    pub dedup_key: Option<String>,
    pub state: JobState,
    pub attempts: i64,
    pub max_attempts: i64,
    pub run_at: i64,
    pub last_error: Option<String>,
    pub created_at: i64,
    pub updated_at: i64,
    pub finished_at: Option<i64>,
}

const COLUMNS: &str =
    "id, kind, payload, org_id, dedup_key, state, attempts, max_attempts, run_at, \
                       last_error, created_at, updated_at, finished_at";

fn row_to_job(row: &sqlx::any::AnyRow) -> Result<JobRow, sqlx::Error> {
    let state: String = row.try_get("state")?;
    Ok(JobRow {
        id: row.try_get("id")?,
        kind: row.try_get("kind")?,
        payload: row.try_get("payload")?,
        org_id: row.try_get("org_id")?,
        dedup_key: row.try_get("dedup_key")?,
        state: JobState::parse(&state).ok_or_else(|| sqlx::Error::ColumnDecode {
            index: "state".to_owned(),
            source: format!("unknown job state {state:?}").into(),
        })?,
        attempts: row.try_get("attempts")?,
        max_attempts: row.try_get("max_attempts")?,
        run_at: row.try_get("run_at")?,
        last_error: row.try_get("last_error")?,
        created_at: row.try_get("created_at")?,
        updated_at: row.try_get("updated_at")?,
        finished_at: row.try_get("finished_at")?,
    })
}

pub(super) async fn insert(
    tx: &mut Transaction<'static, Any>,
    job: &NewJob,
    now: i64,
) -> Result<Enqueued, StoreError> {
    let id = uuid::Uuid::now_v7().to_string();
    let delay_ms = i64::try_from(job.delay.as_millis()).unwrap_or(i64::MAX);
    // ON CONFLICT DO NOTHING: the only unique constraint a fresh id can hit is the partial
    // dedup index (one pending job per key).
    let result = sqlx::query(
        "INSERT INTO jobs (id, kind, payload, org_id, dedup_key, state, attempts, max_attempts, run_at, \
         created_at, updated_at) VALUES ($1, $2, $3, $4, $5, 'queued', 0, $6, $7, $8, $8) \
         ON CONFLICT DO NOTHING",
    )
    .bind(&id)
    .bind(job.kind)
    .bind(job.payload.to_string())
    .bind(job.org_id.as_deref())
    .bind(job.dedup_key.as_deref())
    .bind(i64::from(job.max_attempts))
    .bind(now.saturating_add(delay_ms))
    .bind(now)
    .execute(&mut **tx)
    .await?;
    Ok(if result.rows_affected() == 1 {
        Enqueued::New(id)
    } else {
        Enqueued::Duplicate
    })
}

/// A claimed attempt.
#[derive(Debug, Clone)]
pub(super) struct Claimed {
    pub id: String,
    pub kind: String,
    pub payload: String,
    pub org_id: Option<String>,
    pub attempts: i64,
    pub max_attempts: i64,
}

/// Claim up to `limit` due jobs (queued and due, or running with an expired lease) for `owner`.
pub(super) async fn claim(
    store: &Store,
    owner: &str,
    limit: u32,
    lease_ms: i64,
    now: i64,
) -> Result<Vec<Claimed>, StoreError> {
    let lock = match store.backend() {
        Backend::Postgres => " FOR UPDATE SKIP LOCKED",
        Backend::Sqlite => "",
    };
    let sql = format!(
        "UPDATE jobs SET state = 'running', attempts = attempts + 1, lease_owner = $1, \
         lease_until = $2, updated_at = $3 \
         WHERE id IN (SELECT id FROM jobs WHERE (state = 'queued' AND run_at <= $3) \
                      OR (state = 'running' AND lease_until < $3) \
                      ORDER BY run_at LIMIT $4{lock}) \
         RETURNING id, kind, payload, org_id, attempts, max_attempts"
    );
    let rows = sqlx::query(AssertSqlSafe(sql))
        .bind(owner)
        .bind(now.saturating_add(lease_ms))
        .bind(now)
        .bind(i64::from(limit))
        .fetch_all(store.pool())
        .await?;
    rows.iter()
        .map(|row| {
            Ok(Claimed {
                id: row.try_get("id")?,
                kind: row.try_get("kind")?,
                payload: row.try_get("payload")?,
                org_id: row.try_get("org_id")?,
                attempts: row.try_get("attempts")?,
                max_attempts: row.try_get("max_attempts")?,
            })
        })
        .collect::<Result<Vec<_>, sqlx::Error>>()
        .map_err(StoreError::from)
}

const FENCE: &str = "id = $1 AND lease_owner = $2 AND attempts = $3 AND state = 'running'";

/// Extend the lease of a running attempt. False when the lease was lost.
pub(super) async fn renew(
    store: &Store,
    claimed: &Claimed,
    owner: &str,
    until: i64,
) -> Result<bool, StoreError> {
    let sql = format!("UPDATE jobs SET lease_until = $4 WHERE {FENCE}");
    let result = sqlx::query(AssertSqlSafe(sql))
        .bind(&claimed.id)
        .bind(owner)
        .bind(claimed.attempts)
        .bind(until)
        .execute(store.pool())
        .await?;
    Ok(result.rows_affected() == 1)
}

/// Record success. False when the lease was lost (another worker owns the job now).
pub(super) async fn complete(
    store: &Store,
    claimed: &Claimed,
    owner: &str,
    now: i64,
) -> Result<bool, StoreError> {
    let sql = format!(
        "UPDATE jobs SET state = 'done', lease_owner = NULL, lease_until = NULL, last_error = NULL, \
         updated_at = $4, finished_at = $4 WHERE {FENCE}"
    );
    let result = sqlx::query(AssertSqlSafe(sql))
        .bind(&claimed.id)
        .bind(owner)
        .bind(claimed.attempts)
        .bind(now)
        .execute(store.pool())
        .await?;
    Ok(result.rows_affected() == 1)
}

/// Record a failed attempt: back to `queued` at `retry_at`, or `failed` when `retry_at` is None.
pub(super) async fn fail(
    store: &Store,
    claimed: &Claimed,
    owner: &str,
    error: &str,
    retry_at: Option<i64>,
    now: i64,
) -> Result<bool, StoreError> {
    let (state, run_at, finished) = match retry_at {
        Some(at) => ("queued", at, None),
        None => ("failed", now, Some(now)),
    };
    let sql = format!(
        "UPDATE jobs SET state = $4, run_at = $5, last_error = $6, lease_owner = NULL, \
         lease_until = NULL, updated_at = $7, finished_at = $8 WHERE {FENCE}"
    );
    let result = sqlx::query(AssertSqlSafe(sql))
        .bind(&claimed.id)
        .bind(owner)
        .bind(claimed.attempts)
        .bind(state)
        .bind(run_at)
        .bind(error)
        .bind(now)
        .bind(finished)
        .execute(store.pool())
        .await?;
    Ok(result.rows_affected() == 1)
}

/// Hand an unfinished attempt back (graceful shutdown): queued again, the attempt not counted.
pub(super) async fn release(
    store: &Store,
    claimed: &Claimed,
    owner: &str,
    now: i64,
) -> Result<bool, StoreError> {
    let sql = format!(
        "UPDATE jobs SET state = 'queued', attempts = attempts - 1, lease_owner = NULL, \
         lease_until = NULL, run_at = $4, updated_at = $4 WHERE {FENCE}"
    );
    let result = sqlx::query(AssertSqlSafe(sql))
        .bind(&claimed.id)
        .bind(owner)
        .bind(claimed.attempts)
        .bind(now)
        .execute(store.pool())
        .await?;
    Ok(result.rows_affected() == 1)
}

pub(super) async fn retry(
    tx: &mut Transaction<'static, Any>,
    id: &str,
    org_id: Option<&str>,
    now: i64,
) -> Result<bool, StoreError> {
    let result = sqlx::query(
        "UPDATE jobs SET state = 'queued', attempts = 0, run_at = $3, updated_at = $3, finished_at = NULL \
         WHERE id = $1 AND state = 'failed' AND ($2 IS NULL OR org_id = $2)",
    )
    .bind(id)
    .bind(org_id)
    .bind(now)
    .execute(&mut **tx)
    .await?;
    Ok(result.rows_affected() == 1)
}

pub(super) async fn list(
    store: &Store,
    org_id: Option<&str>,
    state: Option<super::JobState>,
    limit: u32,
) -> Result<Vec<JobRow>, StoreError> {
    let sql = format!(
        "SELECT {COLUMNS} FROM jobs WHERE ($1 IS NULL OR org_id = $1) AND ($2 IS NULL OR state = $2) \
         ORDER BY updated_at DESC, id DESC LIMIT $3"
    );
    let rows = sqlx::query(AssertSqlSafe(sql))
        .bind(org_id)
        .bind(state.map(JobState::as_str))
        .bind(i64::from(limit))
        .fetch_all(store.pool())
        .await?;
    rows.iter()
        .map(row_to_job)
        .collect::<Result<_, _>>()
        .map_err(StoreError::from)
}

pub(super) async fn get(
    store: &Store,
    id: &str,
    org_id: Option<&str>,
) -> Result<Option<JobRow>, StoreError> {
    let sql = format!("SELECT {COLUMNS} FROM jobs WHERE id = $1 AND ($2 IS NULL OR org_id = $2)");
    let row = sqlx::query(AssertSqlSafe(sql))
        .bind(id)
        .bind(org_id)
        .fetch_optional(store.pool())
        .await?;
    row.as_ref()
        .map(row_to_job)
        .transpose()
        .map_err(StoreError::from)
}

pub(super) async fn counts(store: &Store) -> Result<Vec<(JobState, i64)>, StoreError> {
    let rows: Vec<(String, i64)> =
        sqlx::query_as("SELECT state, COUNT(*) FROM jobs GROUP BY state ORDER BY state")
            .fetch_all(store.pool())
            .await?;
    Ok(rows
        .into_iter()
        .filter_map(|(state, n)| JobState::parse(&state).map(|s| (s, n)))
        .collect())
}

/// Delete finished jobs older than `before` (failed ones stay until retried or their org goes).
pub(super) async fn prune(store: &Store, before: i64) -> Result<u64, StoreError> {
    let result = sqlx::query("DELETE FROM jobs WHERE state = 'done' AND finished_at < $1")
        .bind(before)
        .execute(store.pool())
        .await?;
    Ok(result.rows_affected())
}
