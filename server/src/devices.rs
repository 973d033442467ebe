//! The device service: the organisation's firewalls as records — add, edit, delete, list. Input
//! is checked with the same rules the browser shows (`app::devices::validate`); a second device
//! with the same host and port in one organisation is refused, naming the first. Operators and
//! above add and edit; admins and owners delete. Every change is audited. (Activation, which
//! reaches the firewall, is a separate flow.)

use app::devices::{validate, Device, DeviceInput, DeviceState, ValidDevice};
use app::error::AppError;
use app::roles::Role;
use app::services::Caller;
use sqlx::{Any, Row, Transaction};

use crate::accounts::rows::is_unique_violation;
use crate::audit;
use crate::services::{sql_failure, store_failure};
use crate::store::{now_ms, Store, StoreError};

pub struct DeviceService {
    store: Store,
}

impl DeviceService {
    pub fn new(store: Store) -> Self {
        Self { store }
    }
}

const COLUMNS: &str =
    "id, name, host, port, tags, notes, state, pfsense_version, pfsense_edition, created_at";

fn to_device(row: &sqlx::any::AnyRow) -> Result<Device, sqlx::Error> {
    let tags: String = row.try_get("tags")?;
    let state: String = row.try_get("state")?;
    let version: Option<String> = row.try_get("pfsense_version")?;
    let edition: Option<String> = row.try_get("pfsense_edition")?;
    Ok(Device {
        id: row.try_get("id")?,
        name: row.try_get("name")?,
        host: row.try_get("host")?,
        port: u16::try_from(row.try_get::<i64, _>("port")?).unwrap_or(22),
        tags: tags
            .split(',')
            .filter(|t| !t.is_empty())
            .map(str::to_owned)
            .collect(),
        notes: row.try_get("notes")?,
        state: DeviceState::parse(&state).unwrap_or(DeviceState::Inactive),
        pfsense: version.map(|v| match edition {
            Some(e) => format!("{e} {v}"),
            None => v,
        }),
        created_at_ms: row.try_get("created_at")?,
    })
}

fn invalid(errors: app::devices::FieldErrors) -> AppError {
    AppError::Invalid(errors.into_values().collect::<Vec<_>>().join(" "))
}

impl DeviceService {
    async fn get(
        &self,
        tx: &mut Transaction<'static, Any>,
        org_id: &str,
        id: &str,
    ) -> Result<Device, AppError> {
        let sql = format!("SELECT {COLUMNS} FROM devices WHERE id = $1 AND org_id = $2");
        let row = sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(id)
            .bind(org_id)
            .fetch_optional(&mut **tx)
            .await
            .map_err(sql_failure)?
            .ok_or_else(|| AppError::NotFound("That device".to_owned()))?;
        to_device(&row).map_err(sql_failure)
    }

    /// The error for a failed insert or update: a taken address names the device that has it
    /// (looked up after the failed transaction is dropped).
    async fn refused(
        &self,
        tx: Transaction<'static, Any>,
        error: StoreError,
        org_id: &str,
        valid: &ValidDevice,
    ) -> AppError {
        drop(tx);
        if is_unique_violation(&error) {
            self.duplicate(org_id, &valid.host, valid.port).await
        } else {
            store_failure(error)
        }
    }

    /// The sentence for a taken address, naming the device that has it.
    async fn duplicate(&self, org_id: &str, host: &str, port: u16) -> AppError {
        let existing: Option<(String,)> = sqlx::query_as(
            "SELECT name FROM devices WHERE org_id = $1 AND host = $2 AND port = $3",
        )
        .bind(org_id)
        .bind(host)
        .bind(i64::from(port))
        .fetch_optional(self.store.pool())
        .await
        .unwrap_or(None);
        let name = existing.map_or_else(|| "another device".to_owned(), |(n,)| n);
        AppError::Conflict(format!(
            "{name} already uses {host} port {port} in this organisation. Edit that device instead, or check the address."
        ))
    }
}

#[async_trait::async_trait]
impl app::services::DeviceService for DeviceService {
    async fn list(&self, caller: &Caller) -> Result<Vec<Device>, AppError> {
        let org = caller.org()?;
        let sql = format!("SELECT {COLUMNS} FROM devices WHERE org_id = $1 ORDER BY name, id");
        let rows = sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(&org.id)
            .fetch_all(self.store.pool())
            .await
            .map_err(sql_failure)?;
        rows.iter()
            .map(to_device)
            .collect::<Result<_, _>>()
            .map_err(sql_failure)
    }

    async fn add(&self, caller: &Caller, input: DeviceInput) -> Result<Device, AppError> {
        let org = caller.org_where(Role::can_operate)?;
        let valid = validate(&input).map_err(invalid)?;
        let id = uuid::Uuid::now_v7().to_string();
        let now = now_ms();
        let mut tx = self.store.begin().await.map_err(store_failure)?;
        let inserted = sqlx::query(
            "INSERT INTO devices (id, org_id, name, host, port, tags, notes, state, created_at, updated_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, 'inactive', $8, $8)",
        )
        .bind(&id)
        .bind(&org.id)
        .bind(&valid.name)
        .bind(&valid.host)
        .bind(i64::from(valid.port))
        .bind(valid.tags.join(","))
        .bind(&valid.notes)
        .bind(now)
        .execute(&mut *tx)
        .await
        .map_err(StoreError::from);
        if let Err(error) = inserted {
            return Err(self.refused(tx, error, &org.id, &valid).await);
        }
        audit::by_caller(
            &mut tx,
            Some(&org.id),
            caller,
            "device.added",
            &valid.name,
            format!("{} port {}", valid.host, valid.port),
        )
        .await?;
        let device = self.get(&mut tx, &org.id, &id).await?;
        tx.commit().await.map_err(sql_failure)?;
        tracing::info!(device.id = %id, org.id = %org.id, "device added");
        Ok(device)
    }

    async fn update(
        &self,
        caller: &Caller,
        id: String,
        input: DeviceInput,
    ) -> Result<Device, AppError> {
        let org = caller.org_where(Role::can_operate)?;
        let valid = validate(&input).map_err(invalid)?;
        let mut tx = self.store.begin().await.map_err(store_failure)?;
        let before = self.get(&mut tx, &org.id, &id).await?;
        let moved = before.host != valid.host || before.port != valid.port;
        // A new address may be a different machine: its host key must be confirmed again.
        let updated = sqlx::query(
            "UPDATE devices SET name = $3, host = $4, port = $5, tags = $6, notes = $7, updated_at = $8, \
             host_key = CASE WHEN $9 = 1 THEN NULL ELSE host_key END, \
             host_key_fingerprint = CASE WHEN $9 = 1 THEN NULL ELSE host_key_fingerprint END \
             WHERE id = $1 AND org_id = $2",
        )
        .bind(&id)
        .bind(&org.id)
        .bind(&valid.name)
        .bind(&valid.host)
        .bind(i64::from(valid.port))
        .bind(valid.tags.join(","))
        .bind(&valid.notes)
        .bind(now_ms())
        .bind(i64::from(moved))
        .execute(&mut *tx)
        .await
        .map_err(StoreError::from);
        if let Err(error) = updated {
            return Err(self.refused(tx, error, &org.id, &valid).await);
        }
        let detail = if moved {
            format!(
                "address {} port {} -> {} port {}; host key to be confirmed again",
                before.host, before.port, valid.host, valid.port
            )
        } else {
            "details".to_owned()
        };
        audit::by_caller(
            &mut tx,
            Some(&org.id),
            caller,
            "device.updated",
            &valid.name,
            detail,
        )
        .await?;
        let device = self.get(&mut tx, &org.id, &id).await?;
        tx.commit().await.map_err(sql_failure)?;
        Ok(device)
    }

    async fn delete(&self, caller: &Caller, id: String) -> Result<(), AppError> {
        let org = caller.org_where(Role::can_administer)?;
        let mut tx = self.store.begin().await.map_err(store_failure)?;
        let device = self.get(&mut tx, &org.id, &id).await?;
        sqlx::query("DELETE FROM devices WHERE id = $1 AND org_id = $2")
            .bind(&id)
            .bind(&org.id)
            .execute(&mut *tx)
            .await
            .map_err(sql_failure)?;
        audit::by_caller(
            &mut tx,
            Some(&org.id),
            caller,
            "device.deleted",
            &device.name,
            format!("{} port {}", device.host, device.port),
        )
        .await?;
        tx.commit().await.map_err(sql_failure)?;
        tracing::info!(device.id = %id, org.id = %org.id, "device deleted");
        Ok(())
    }
}
