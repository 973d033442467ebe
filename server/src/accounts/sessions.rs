//! Server-side sessions behind an HttpOnly, SameSite=Lax cookie (Secure when the public URL is
//! https). The cookie holds 256 random bits; the table holds only their SHA-256, so reading the
//! database grants no session. A session lasts 7 days from its last use and 30 days at most; one
//! that still owes a second factor lasts 10 minutes.

use app::roles::Role;
use app::services::{Caller, OrgAccess, SessionStage};
use sqlx::{Any, Row, Transaction};

use crate::crypto::{random_secret_token, sha256_hex};
use crate::store::{now_ms, Store, StoreError};

/// The cookie's name.
pub const COOKIE: &str = "mudmap_session";

const IDLE_MS: i64 = 7 * 24 * 3_600_000;
const ABSOLUTE_MS: i64 = 30 * 24 * 3_600_000;
const SECOND_FACTOR_MS: i64 = 10 * 60_000;
/// `last_seen_at` is written at most this often per session.
const TOUCH_EVERY_MS: i64 = 60_000;

#[derive(Clone, Debug)]
pub struct Sessions {
    store: Store,
    secure: bool,
}

impl Sessions {
    pub fn new(store: Store, secure: bool) -> Self {
        Self { store, secure }
    }

    /// Start a session in `tx`; returns the cookie token.
    pub async fn create(
        &self,
        tx: &mut Transaction<'static, Any>,
        user_id: &str,
        org_id: Option<&str>,
        stage: SessionStage,
        client_addr: &str,
    ) -> Result<String, StoreError> {
        let token = random_secret_token();
        let now = now_ms();
        let (stage, expires) = match stage {
            SessionStage::Full => ("full", now + IDLE_MS),
            SessionStage::SecondFactor => ("mfa", now + SECOND_FACTOR_MS),
        };
        sqlx::query(
            "INSERT INTO sessions (id_hash, user_id, org_id, stage, created_at, last_seen_at, expires_at, client_addr) \
             VALUES ($1, $2, $3, $4, $5, $5, $6, $7)",
        )
        .bind(sha256_hex(token.as_bytes()))
        .bind(user_id)
        .bind(org_id)
        .bind(stage)
        .bind(now)
        .bind(expires)
        .bind(client_addr)
        .execute(&mut **tx)
        .await?;
        Ok(token)
    }

    /// The `Set-Cookie` value that hands `token` to the browser.
    pub fn cookie(&self, token: &str) -> String {
        format!(
            "{COOKIE}={token}; Path=/; HttpOnly; SameSite=Lax; Max-Age={}{}",
            ABSOLUTE_MS / 1000,
            if self.secure { "; Secure" } else { "" }
        )
    }

    /// The `Set-Cookie` value that removes the cookie.
    pub fn clear_cookie(&self) -> String {
        format!(
            "{COOKIE}=; Path=/; HttpOnly; SameSite=Lax; Max-Age=0{}",
            if self.secure { "; Secure" } else { "" }
        )
    }

    /// The caller behind a cookie token, with their role in their current organisation (which
    /// is re-read on every request, so a removed member loses access at once).
    pub async fn resolve(&self, token: &str) -> Result<Option<Caller>, StoreError> {
        if token.is_empty() || token.len() > 128 {
            return Ok(None);
        }
        let hash = sha256_hex(token.as_bytes());
        let now = now_ms();
        let row = sqlx::query(
            "SELECT s.user_id, s.org_id, s.stage, s.created_at, s.last_seen_at, u.email, \
                    m.role, o.name AS org_name \
             FROM sessions s JOIN users u ON u.id = s.user_id \
             LEFT JOIN memberships m ON m.org_id = s.org_id AND m.user_id = s.user_id \
             LEFT JOIN organisations o ON o.id = m.org_id \
             WHERE s.id_hash = $1 AND s.expires_at > $2",
        )
        .bind(&hash)
        .bind(now)
        .fetch_optional(self.store.pool())
        .await?;
        let Some(row) = row else { return Ok(None) };
        let user_id: String = row.try_get("user_id")?;
        let stage: String = row.try_get("stage")?;
        let created_at: i64 = row.try_get("created_at")?;
        let last_seen_at: i64 = row.try_get("last_seen_at")?;
        let role: Option<String> = row.try_get("role")?;
        let mut org = match (row.try_get::<Option<String>, _>("org_id")?, role) {
            (Some(id), Some(role)) => Role::parse(&role).map(|role| OrgAccess {
                id,
                name: row.try_get("org_name").unwrap_or_default(),
                role,
            }),
            _ => None,
        };
        let stage = if stage == "full" {
            SessionStage::Full
        } else {
            SessionStage::SecondFactor
        };
        if org.is_none() && stage == SessionStage::Full {
            // No current organisation (never chosen, or membership removed): fall back to the
            // user's oldest membership and remember it (nothing to write for a user in none).
            org = first_membership(&self.store, &user_id).await?;
            if let Some(found) = &org {
                self.set_org(&hash, &found.id).await?;
            }
        }
        if stage == SessionStage::Full && now - last_seen_at > TOUCH_EVERY_MS {
            sqlx::query(
                "UPDATE sessions SET last_seen_at = $2, expires_at = $3 WHERE id_hash = $1",
            )
            .bind(&hash)
            .bind(now)
            .bind((now + IDLE_MS).min(created_at + ABSOLUTE_MS))
            .execute(self.store.pool())
            .await?;
        }
        Ok(Some(Caller {
            session: hash,
            user_id,
            email: row.try_get("email")?,
            stage,
            org,
        }))
    }

    /// End one session (by its hash).
    pub async fn revoke(&self, hash: &str) -> Result<(), StoreError> {
        sqlx::query("DELETE FROM sessions WHERE id_hash = $1")
            .bind(hash)
            .execute(self.store.pool())
            .await?;
        Ok(())
    }

    /// Make `org_id` the session's current organisation.
    pub async fn set_org(&self, hash: &str, org_id: &str) -> Result<(), StoreError> {
        sqlx::query("UPDATE sessions SET org_id = $2 WHERE id_hash = $1")
            .bind(hash)
            .bind(org_id)
            .execute(self.store.pool())
            .await?;
        Ok(())
    }
}

/// End every session of a user except `keep` (after a password change or reset).
pub async fn revoke_all(
    tx: &mut Transaction<'static, Any>,
    user_id: &str,
    keep: Option<&str>,
) -> Result<u64, StoreError> {
    let result =
        sqlx::query("DELETE FROM sessions WHERE user_id = $1 AND ($2 IS NULL OR id_hash <> $2)")
            .bind(user_id)
            .bind(keep)
            .execute(&mut **tx)
            .await?;
    Ok(result.rows_affected())
}

/// The user's oldest membership.
pub async fn first_membership(
    store: &Store,
    user_id: &str,
) -> Result<Option<OrgAccess>, StoreError> {
    let row: Option<(String, String, String)> = sqlx::query_as(
        "SELECT o.id, o.name, m.role FROM memberships m JOIN organisations o ON o.id = m.org_id \
         WHERE m.user_id = $1 ORDER BY m.created_at, o.id LIMIT 1",
    )
    .bind(user_id)
    .fetch_optional(store.pool())
    .await?;
    Ok(
        row.and_then(|(id, name, role)| {
            Role::parse(&role).map(|role| OrgAccess { id, name, role })
        }),
    )
}

/// The session token in a `Cookie` header, if present.
pub fn token_from_cookies(header: &str) -> Option<&str> {
    header
        .split(';')
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(name, _)| *name == COOKIE)
        .map(|(_, value)| value.trim())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_session_cookie_is_found_among_others() {
        assert_eq!(
            token_from_cookies("a=1; mudmap_session=abc; b=2"),
            Some("abc")
        );
        assert_eq!(token_from_cookies("mudmap_sessionx=abc"), None);
        assert_eq!(token_from_cookies(""), None);
    }
}
