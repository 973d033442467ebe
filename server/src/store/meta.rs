//! Instance-wide facts in the `meta` table: a tiny typed key/value store.

use super::{now_ms, Store, StoreError};

/// The keys that exist. A closed set, so a typo is a compile error.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MetaKey {
    /// A random id minted on first start; identifies this installation.
    InstanceId,
    /// When the database was first initialised (Unix ms, as text).
    InitializedAt,
}

impl MetaKey {
    fn as_str(self) -> &'static str {
        match self {
            MetaKey::InstanceId => "instance_id",
            MetaKey::InitializedAt => "initialized_at",
        }
    }
}

impl Store {
    pub async fn meta_get(&self, key: MetaKey) -> Result<Option<String>, StoreError> {
        let row: Option<(String,)> = sqlx::query_as("SELECT value FROM meta WHERE key = $1")
            .bind(key.as_str())
            .fetch_optional(self.pool())
            .await?;
        Ok(row.map(|(v,)| v))
    }

    /// Insert or replace.
    pub async fn meta_set(&self, key: MetaKey, value: &str) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO meta (key, value, updated_at) VALUES ($1, $2, $3) \
             ON CONFLICT (key) DO UPDATE SET value = excluded.value, updated_at = excluded.updated_at",
        )
        .bind(key.as_str())
        .bind(value)
        .bind(now_ms())
        .execute(self.pool())
        .await?;
        Ok(())
    }

    /// Insert only if absent, then return what is stored: the first writer wins, even when several
    /// instances start at once against one PostgreSQL.
    pub async fn meta_get_or_init(&self, key: MetaKey, value: &str) -> Result<String, StoreError> {
        sqlx::query(
            "INSERT INTO meta (key, value, updated_at) VALUES ($1, $2, $3) ON CONFLICT (key) DO NOTHING",
        )
        .bind(key.as_str())
        .bind(value)
        .bind(now_ms())
        .execute(self.pool())
        .await?;
        self.meta_get(key)
            .await?
            .ok_or_else(|| StoreError::Query(sqlx::Error::RowNotFound))
    }
}
