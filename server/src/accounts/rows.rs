//! Rows every account path creates the same way — registration, registration through an
//! invitation, a new organisation, the demo account: a user, and an organisation with its owner.

use sqlx::{Any, Transaction};

use crate::store::{now_ms, StoreError};

/// Insert a user with an already hashed password; returns the new id. A taken address fails
/// with a unique violation ([`is_unique_violation`]).
pub async fn insert_user(
    tx: &mut Transaction<'static, Any>,
    email: &str,
    password_hash: &str,
    verified: bool,
) -> Result<String, StoreError> {
    let id = uuid::Uuid::now_v7().to_string();
    let now = now_ms();
    sqlx::query(
        "INSERT INTO users (id, email, password_hash, email_verified_at, created_at, updated_at) \
         VALUES ($1, $2, $3, $4, $5, $5)",
    )
    .bind(&id)
    .bind(email)
    .bind(password_hash)
    .bind(verified.then_some(now))
    .bind(now)
    .execute(&mut **tx)
    .await?;
    Ok(id)
}

/// Insert an organisation with `owner_id` as its owner; returns the new id.
pub async fn insert_org_with_owner(
    tx: &mut Transaction<'static, Any>,
    name: &str,
    owner_id: &str,
) -> Result<String, StoreError> {
    let id = uuid::Uuid::now_v7().to_string();
    let now = now_ms();
    sqlx::query(
        "INSERT INTO organisations (id, name, created_at, updated_at) VALUES ($1, $2, $3, $3)",
    )
    .bind(&id)
    .bind(name)
    .bind(now)
    .execute(&mut **tx)
    .await?;
    sqlx::query(
        "INSERT INTO memberships (org_id, user_id, role, created_at) VALUES ($1, $2, 'owner', $3)",
    )
    .bind(&id)
    .bind(owner_id)
    .bind(now)
    .execute(&mut **tx)
    .await?;
    Ok(id)
}

/// Did this fail on a unique constraint (e.g. an email address already registered)?
pub fn is_unique_violation(error: &StoreError) -> bool {
    match error {
        StoreError::Query(sqlx::Error::Database(db)) => db.is_unique_violation(),
        _ => false,
    }
}
