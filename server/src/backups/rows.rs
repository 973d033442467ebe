//! The SQL of backups: `config_revisions` (one row per backup) and `config_blobs` (one sealed
//! configuration per organisation and content hash). Every read is scoped to an organisation.

use sqlx::{Any, Row, Transaction};

use super::{Note, Source};
use crate::store::{Store, StoreError};

/// The organisation of an active device, if it is one.
pub(super) async fn active_device_org(
    store: &Store,
    device_id: &str,
) -> Result<Option<String>, StoreError> {
    let row: Option<(String,)> =
        sqlx::query_as("SELECT org_id FROM devices WHERE id = $1 AND state = 'active'")
            .bind(device_id)
            .fetch_optional(store.pool())
            .await?;
    Ok(row.map(|(org,)| org))
}

pub(super) struct NewRevision<'a> {
    pub id: &'a str,
    pub org_id: &'a str,
    pub device_id: &'a str,
    pub source: Source,
    pub config_hash: &'a str,
    pub size: usize,
    pub sealed: &'a str,
    pub note: &'a Note,
    pub actor_id: Option<&'a str>,
    pub at: i64,
}

/// Store a revision in `tx`, and its configuration unless the organisation has it already;
/// returns whether the configuration was new. One transaction: a revision never points at nothing.
pub(super) async fn insert(
    tx: &mut Transaction<'static, Any>,
    new: NewRevision<'_>,
) -> Result<bool, StoreError> {
    let size = i64::try_from(new.size).unwrap_or(i64::MAX);
    let stored = sqlx::query(
        "INSERT INTO config_blobs (org_id, config_hash, sealed, size, stored, created_at) \
         VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (org_id, config_hash) DO NOTHING",
    )
    .bind(new.org_id)
    .bind(new.config_hash)
    .bind(new.sealed)
    .bind(size)
    .bind(i64::try_from(new.sealed.len()).unwrap_or(i64::MAX))
    .bind(new.at)
    .execute(&mut **tx)
    .await?;
    sqlx::query(
        "INSERT INTO config_revisions (id, device_id, org_id, taken_at, source, config_hash, size, \
         pf_time, pf_description, pf_username, actor_id) \
         SELECT $1, id, org_id, $3, $4, $5, $6, $7, $8, $9, $10 FROM devices \
         WHERE id = $2 AND org_id = $11",
    )
    .bind(new.id)
    .bind(new.device_id)
    .bind(new.at)
    .bind(new.source.as_str())
    .bind(new.config_hash)
    .bind(size)
    .bind(new.note.time_ms)
    .bind(&new.note.description)
    .bind(&new.note.username)
    .bind(new.actor_id)
    .bind(new.org_id)
    .execute(&mut **tx)
    .await?;
    Ok(stored.rows_affected() == 1)
}

/// A revision row.
pub struct RevisionRow {
    pub id: String,
    pub taken_at: i64,
    pub source: String,
    pub config_hash: String,
    pub size: i64,
    pub pf_time: Option<i64>,
    pub pf_description: String,
    pub pf_username: String,
}

/// A device's revisions, newest first (at most `limit`).
pub async fn list(
    store: &Store,
    org_id: &str,
    device_id: &str,
    limit: i64,
) -> Result<Vec<RevisionRow>, StoreError> {
    let rows = sqlx::query(
        "SELECT id, taken_at, source, config_hash, size, pf_time, pf_description, pf_username \
         FROM config_revisions WHERE org_id = $1 AND device_id = $2 \
         ORDER BY taken_at DESC, id DESC LIMIT $3",
    )
    .bind(org_id)
    .bind(device_id)
    .bind(limit)
    .fetch_all(store.pool())
    .await?;
    rows.iter()
        .map(|r| {
            Ok(RevisionRow {
                id: r.try_get("id")?,
                taken_at: r.try_get("taken_at")?,
                source: r.try_get("source")?,
                config_hash: r.try_get("config_hash")?,
                size: r.try_get("size")?,
                pf_time: r.try_get("pf_time")?,
                pf_description: r.try_get("pf_description")?,
                pf_username: r.try_get("pf_username")?,
            })
        })
        .collect::<Result<_, sqlx::Error>>()
        .map_err(StoreError::from)
}

/// What identifies a revision and places it in its device's history.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct RevisionKey {
    pub id: String,
    pub device_id: String,
    pub config_hash: String,
    pub taken_at: i64,
    pub source: String,
}

/// A revision of `org_id` (another organisation's is not found).
pub(super) async fn revision(
    store: &Store,
    org_id: &str,
    revision_id: &str,
) -> Result<Option<RevisionKey>, StoreError> {
    Ok(sqlx::query_as(
        "SELECT id, device_id, config_hash, taken_at, source FROM config_revisions \
         WHERE id = $1 AND org_id = $2",
    )
    .bind(revision_id)
    .bind(org_id)
    .fetch_optional(store.pool())
    .await?)
}

/// The device's newest revision, if any.
pub(super) async fn newest(
    store: &Store,
    org_id: &str,
    device_id: &str,
) -> Result<Option<RevisionKey>, StoreError> {
    Ok(sqlx::query_as(
        "SELECT id, device_id, config_hash, taken_at, source FROM config_revisions \
         WHERE device_id = $1 AND org_id = $2 ORDER BY taken_at DESC, id DESC LIMIT 1",
    )
    .bind(device_id)
    .bind(org_id)
    .fetch_optional(store.pool())
    .await?)
}

/// The device's revision just before `this`, if any.
pub(super) async fn previous(
    store: &Store,
    org_id: &str,
    this: &RevisionKey,
) -> Result<Option<RevisionKey>, StoreError> {
    Ok(sqlx::query_as(
        "SELECT id, device_id, config_hash, taken_at, source FROM config_revisions \
         WHERE device_id = $1 AND org_id = $2 \
         AND (taken_at < $3 OR (taken_at = $3 AND id < $4)) ORDER BY taken_at DESC, id DESC LIMIT 1",
    )
    .bind(&this.device_id)
    .bind(org_id)
    .bind(this.taken_at)
    .bind(&this.id)
    .fetch_optional(store.pool())
    .await?)
}

/// The hash and sealed configuration of a revision of `org_id`.
pub(super) async fn sealed_of(
    store: &Store,
    org_id: &str,
    revision_id: &str,
) -> Result<Option<(String, String)>, StoreError> {
    let row: Option<(String, String)> = sqlx::query_as(
        "SELECT b.config_hash, b.sealed FROM config_revisions r \
         JOIN config_blobs b ON b.org_id = r.org_id AND b.config_hash = r.config_hash \
         WHERE r.org_id = $1 AND r.id = $2",
    )
    .bind(org_id)
    .bind(revision_id)
    .fetch_optional(store.pool())
    .await?;
    Ok(row)
}
