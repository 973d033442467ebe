//! The database. One [`Store`] serves SQLite (the embedded default) and PostgreSQL (scale-out)
//! through sqlx's `Any` driver, so every query is written once with `$N` placeholders that both
//! engines accept; where the engines truly differ (migrations, job claiming later) the code
//! branches on [`Backend`]. Times are stored as Unix milliseconds (`BIGINT`) and ids as text, the
//! types both engines share. See `docs/decisions/0002-one-store-two-engines.md`.
//!
//! This module owns connections, migrations and SQL. It must not hold business rules: services
//! call its methods and decide.

mod meta;

use std::path::Path;
use std::time::Duration;

use sqlx::any::{AnyConnectOptions, AnyPoolOptions};
use sqlx::migrate::Migrator;
use sqlx::{AnyPool, Executor};

use crate::config::{DatabaseSettings, DatabaseUrl};

pub use meta::MetaKey;

static SQLITE_MIGRATIONS: Migrator = sqlx::migrate!("migrations/sqlite");
static POSTGRES_MIGRATIONS: Migrator = sqlx::migrate!("migrations/postgres");

/// Which engine a [`Store`] talks to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

impl Backend {
    pub fn name(self) -> &'static str {
        match self {
            Backend::Sqlite => "SQLite",
            Backend::Postgres => "PostgreSQL",
        }
    }
}

/// Store failures. `Connect` and `Migrate` carry sentences for the operator; `Query` is internal.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("cannot connect to the database at {url}: {reason} — {hint}")]
    Connect {
        url: String,
        reason: String,
        hint: &'static str,
    },
    #[error("database migration failed: {0} — the database may be from a newer Mudmap or edited by hand")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    #[error("database error: {0}")]
    Query(#[from] sqlx::Error),
}

/// The outcome of running migrations.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MigrationReport {
    /// Migrations applied by this run.
    pub applied: Vec<i64>,
    /// The newest migration version now in the database.
    pub version: i64,
}

/// A pooled connection to the configured database. Cheap to clone.
#[derive(Clone, Debug)]
pub struct Store {
    pool: AnyPool,
    backend: Backend,
    url: DatabaseUrl,
}

impl Store {
    /// Connect (creating the SQLite file and its directory if needed) and verify one connection.
    pub async fn connect(
        url: &DatabaseUrl,
        settings: &DatabaseSettings,
    ) -> Result<Self, StoreError> {
        sqlx::any::install_default_drivers();
        let backend = if url.is_postgres() {
            Backend::Postgres
        } else {
            Backend::Sqlite
        };
        let connect_error = |reason: String| {
            StoreError::Connect {
            url: url.redacted(),
            reason,
            hint: match backend {
                Backend::Postgres => {
                    "is PostgreSQL running and reachable, and are the user, password and database in database.url (MUDMAP_DATABASE_URL) right?"
                }
                Backend::Sqlite => {
                    "check that the data directory (data_dir / MUDMAP_DATA_DIR) exists and is writable"
                }
            },
        }
        };
        if backend == Backend::Sqlite {
            if let Some(dir) = sqlite_path(url.expose()).and_then(Path::parent) {
                if !dir.as_os_str().is_empty() {
                    std::fs::create_dir_all(dir).map_err(|e| {
                        connect_error(format!("cannot create {}: {e}", dir.display()))
                    })?;
                }
            }
        }
        let options: AnyConnectOptions = url
            .expose()
            .parse()
            .map_err(|e: sqlx::Error| connect_error(e.to_string()))?;
        let timeout = Duration::from_secs(settings.connect_timeout_secs.max(1));
        let pool = AnyPoolOptions::new()
            .max_connections(settings.pool_size(backend == Backend::Postgres))
            .min_connections(0)
            .acquire_timeout(timeout)
            .idle_timeout(Duration::from_secs(300))
            .after_connect(move |conn, _meta| {
                Box::pin(async move {
                    if backend == Backend::Sqlite {
                        // WAL is persistent in the file; synchronous=NORMAL is safe under WAL and
                        // avoids an fsync per commit. busy_timeout (5 s) and foreign_keys are sqlx
                        // defaults. Reads go through a memory map: each connection's own 2 MB page
                        // cache is smaller than one fleet scan at 10,000 devices, and refilling it
                        // (a pread, a copy and an allocation under SQLite's global mutexes per
                        // page) made concurrent scans contend; mapped pages are the kernel's page
                        // cache, shared by every connection.
                        conn.execute(
                            "PRAGMA journal_mode = WAL; PRAGMA synchronous = NORMAL; \
                             PRAGMA mmap_size = 268435456;",
                        )
                        .await?;
                    }
                    Ok(())
                })
            });
        let pool = tokio::time::timeout(timeout, pool.connect_with(options))
            .await
            .map_err(|_| connect_error(format!("no answer within {} s", timeout.as_secs())))?
            .map_err(|e| connect_error(e.to_string()))?;
        Ok(Self {
            pool,
            backend,
            url: url.clone(),
        })
    }

    pub fn backend(&self) -> Backend {
        self.backend
    }

    /// The PostgreSQL URL, for the extra connection that `LISTEN`s (None on SQLite).
    pub(crate) fn url(&self) -> Option<&str> {
        (self.backend == Backend::Postgres).then(|| self.url.expose())
    }

    /// The pool, for modules of this crate that own their own SQL (jobs, later).
    pub fn pool(&self) -> &AnyPool {
        &self.pool
    }

    /// Begin a transaction that will write. On SQLite it takes the write lock up front
    /// (`BEGIN IMMEDIATE`): a deferred transaction that reads first and writes later fails at once
    /// with "database is locked" when another writer got in between, instead of waiting.
    pub async fn begin(&self) -> Result<sqlx::Transaction<'static, sqlx::Any>, StoreError> {
        Ok(match self.backend {
            Backend::Sqlite => self.pool.begin_with("BEGIN IMMEDIATE").await?,
            Backend::Postgres => self.pool.begin().await?,
        })
    }

    /// Apply pending migrations for this engine. Safe to run concurrently from several instances
    /// (sqlx takes an advisory lock on PostgreSQL) and idempotent.
    pub async fn migrate(&self) -> Result<MigrationReport, StoreError> {
        let migrator = match self.backend {
            Backend::Sqlite => &SQLITE_MIGRATIONS,
            Backend::Postgres => &POSTGRES_MIGRATIONS,
        };
        // sqlx locks PostgreSQL migrations itself; for a SQLite file, two processes starting at
        // once are serialised by an exclusive lock on a file next to the database.
        let _guard = match (self.backend, sqlite_path(self.url.expose())) {
            (Backend::Sqlite, Some(path)) => Some(lock_file(path).await?),
            _ => None,
        };
        let before = self.applied_versions().await.unwrap_or_default();
        migrator.run(&self.pool).await?;
        let after = self.applied_versions().await?;
        let applied = after
            .iter()
            .copied()
            .filter(|v| !before.contains(v))
            .collect();
        Ok(MigrationReport {
            applied,
            version: after.iter().copied().max().unwrap_or(0),
        })
    }

    /// Newest applied migration, or 0 on an empty database.
    pub async fn schema_version(&self) -> Result<i64, StoreError> {
        Ok(self
            .applied_versions()
            .await?
            .into_iter()
            .max()
            .unwrap_or(0))
    }

    async fn applied_versions(&self) -> Result<Vec<i64>, StoreError> {
        let rows: Vec<(i64,)> = sqlx::query_as(
            "SELECT version FROM _sqlx_migrations WHERE success = $1 ORDER BY version",
        )
        .bind(true)
        .fetch_all(&self.pool)
        .await?;
        Ok(rows.into_iter().map(|(v,)| v).collect())
    }

    /// A cheap round trip, for readiness checks.
    pub async fn ping(&self) -> Result<(), StoreError> {
        sqlx::query("SELECT 1").execute(&self.pool).await?;
        Ok(())
    }

    /// Close all connections (waits for checked-out ones to return).
    pub async fn close(&self) {
        self.pool.close().await;
    }
}

/// The file path inside a `sqlite:` URL, if it names a file.
fn sqlite_path(url: &str) -> Option<&Path> {
    let rest = url
        .strip_prefix("sqlite://")
        .or_else(|| url.strip_prefix("sqlite:"))?;
    let path = rest.split('?').next().unwrap_or_default();
    (!path.is_empty() && path != ":memory:").then(|| Path::new(path))
}

/// Take an exclusive lock on `<db>.migrate-lock` (waits for another process holding it). The
/// lock is released when the returned file is dropped.
async fn lock_file(db: &Path) -> Result<std::fs::File, StoreError> {
    let path = db.with_extension("migrate-lock");
    let failed = |e: std::io::Error| StoreError::Connect {
        url: path.display().to_string(),
        reason: format!("cannot lock for migration: {e}"),
        hint: "check that the data directory (data_dir / MUDMAP_DATA_DIR) exists and is writable",
    };
    let file = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&path)
        .map_err(failed)?;
    tokio::task::spawn_blocking(move || file.lock().map(|()| file))
        .await
        .map_err(|e| failed(std::io::Error::other(e)))?
        .map_err(failed)
}

/// Milliseconds since the Unix epoch, the time format of every table.
pub fn now_ms() -> i64 {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default();
    i64::try_from(now.as_millis()).unwrap_or(i64::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sqlite_paths_are_extracted() {
        assert_eq!(
            sqlite_path("sqlite://./data/m.db?mode=rwc"),
            Some(Path::new("./data/m.db"))
        );
        assert_eq!(
            sqlite_path("sqlite:///abs/m.db"),
            Some(Path::new("/abs/m.db"))
        );
        assert_eq!(sqlite_path("sqlite::memory:"), None);
        assert_eq!(sqlite_path("postgres://x"), None);
    }
}
