//! Sign-in throttling, kept in the database so every instance sees the same counters. Failures
//! are counted per account and per client address within a window; reaching the limit locks that
//! key for a while, and the user is told so, with the time left.

use crate::store::{now_ms, Store, StoreError};

/// Limits. The defaults: 5 failures per account or 20 per address within 15 minutes lock that
/// account or address for 15 minutes.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    pub per_account: i64,
    pub per_addr: i64,
    pub window_ms: i64,
    pub lockout_ms: i64,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            per_account: 5,
            per_addr: 20,
            window_ms: 15 * 60_000,
            lockout_ms: 15 * 60_000,
        }
    }
}

/// Which counter a key belongs to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Key {
    Account(String),
    Addr(String),
}

impl Key {
    fn db_key(&self) -> String {
        match self {
            Key::Account(email) => format!("account:{email}"),
            Key::Addr(addr) => format!("addr:{addr}"),
        }
    }

    /// The sentence for a lockout with `minutes` left.
    pub fn message(&self, minutes: i64) -> String {
        let wait = if minutes <= 1 {
            "a minute".to_owned()
        } else {
            format!("{minutes} minutes")
        };
        match self {
            Key::Account(_) => format!(
                "Too many failed sign-ins for this account. Try again in {wait}, or reset your password."
            ),
            Key::Addr(_) => format!(
                "Too many failed sign-ins from your network address. Try again in {wait}."
            ),
        }
    }
}

#[derive(Clone, Debug)]
pub struct Throttle {
    store: Store,
    limits: Limits,
}

impl Throttle {
    pub fn new(store: Store, limits: Limits) -> Self {
        Self { store, limits }
    }

    /// The first locked key and its minutes left, if any.
    pub async fn locked(&self, keys: &[Key]) -> Result<Option<(Key, i64)>, StoreError> {
        let now = now_ms();
        for key in keys {
            let row: Option<(i64,)> =
                sqlx::query_as("SELECT locked_until FROM throttle WHERE key = $1")
                    .bind(key.db_key())
                    .fetch_optional(self.store.pool())
                    .await?;
            if let Some((until,)) = row {
                if until > now {
                    return Ok(Some((key.clone(), (until - now + 59_999) / 60_000)));
                }
            }
        }
        Ok(None)
    }

    /// Count a failure against each key; returns the first key this failure locked.
    pub async fn fail(&self, keys: &[Key]) -> Result<Option<(Key, i64)>, StoreError> {
        let now = now_ms();
        let mut locked = None;
        for key in keys {
            let limit = match key {
                Key::Account(_) => self.limits.per_account,
                Key::Addr(_) => self.limits.per_addr,
            };
            // One statement, so concurrent failures are all counted: a new window starts when
            // the old one is over; reaching the limit sets the lock and starts counting afresh.
            let (failures, until): (i64, i64) = sqlx::query_as(
                "INSERT INTO throttle (key, failures, window_start, locked_until) VALUES ($1, 1, $2, 0) \
                 ON CONFLICT (key) DO UPDATE SET \
                   failures = CASE WHEN throttle.window_start < $3 THEN 1 ELSE throttle.failures + 1 END, \
                   window_start = CASE WHEN throttle.window_start < $3 THEN $2 ELSE throttle.window_start END \
                 RETURNING failures, locked_until",
            )
            .bind(key.db_key())
            .bind(now)
            .bind(now - self.limits.window_ms)
            .fetch_one(self.store.pool())
            .await?;
            if failures >= limit && until <= now {
                let until = now + self.limits.lockout_ms;
                sqlx::query("UPDATE throttle SET locked_until = $2, failures = 0, window_start = $3 WHERE key = $1")
                    .bind(key.db_key())
                    .bind(until)
                    .bind(now)
                    .execute(self.store.pool())
                    .await?;
                tracing::warn!(
                    throttle.kind = match key {
                        Key::Account(_) => "account",
                        Key::Addr(_) => "address",
                    },
                    lockout_minutes = self.limits.lockout_ms / 60_000,
                    "sign-in locked after repeated failures"
                );
                if locked.is_none() {
                    locked = Some((key.clone(), self.limits.lockout_ms / 60_000));
                }
            }
        }
        Ok(locked)
    }

    /// Forget the failures of a key (after a successful sign-in or a password reset).
    pub async fn clear(&self, key: &Key) -> Result<(), StoreError> {
        sqlx::query("DELETE FROM throttle WHERE key = $1")
            .bind(key.db_key())
            .execute(self.store.pool())
            .await?;
        Ok(())
    }
}
