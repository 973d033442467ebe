//! The group service: an organisation's named sets of devices. Every query is scoped to the
//! caller's organisation (a group or device of another one is "not found"); operators and above
//! change groups, and every change is audited. Names are unique per organisation whatever their
//! case (`name_key`).

use app::error::AppError;
use app::groups::{group_name, Group, GroupMembership};
use app::roles::Role;
use app::services::Caller;
use sqlx::{Any, Transaction};

use crate::accounts::rows::is_unique_violation;
use crate::audit;
use crate::services::{sql_failure, store_failure};
use crate::store::{now_ms, Store, StoreError};

pub struct GroupService {
    store: Store,
}

impl GroupService {
    pub fn new(store: Store) -> Self {
        Self { store }
    }
}

/// One group of `org_id` with its device count, through a pool or a transaction.
async fn fetch_group<'e, E>(executor: E, org_id: &str, id: &str) -> Result<Group, AppError>
where
    E: sqlx::Executor<'e, Database = Any>,
{
    let row: Option<(String, String, i64)> = sqlx::query_as(
        "SELECT g.id, g.name, (SELECT COUNT(*) FROM device_group_members m WHERE m.group_id = g.id) \
         FROM device_groups g WHERE g.id = $1 AND g.org_id = $2",
    )
    .bind(id)
    .bind(org_id)
    .fetch_optional(executor)
    .await
    .map_err(sql_failure)?;
    row.map(to_group)
        .ok_or_else(|| AppError::NotFound("The group".to_owned()))
}

fn to_group((id, name, devices): (String, String, i64)) -> Group {
    Group {
        id,
        name,
        devices: u64::try_from(devices).unwrap_or(0),
    }
}

/// Every group of `org_id`, by name (shared with the fleet page's filter).
pub async fn groups_of(store: &Store, org_id: &str) -> Result<Vec<Group>, AppError> {
    let rows: Vec<(String, String, i64)> = sqlx::query_as(
        "SELECT g.id, g.name, COUNT(m.device_id) FROM device_groups g \
         LEFT JOIN device_group_members m ON m.group_id = g.id \
         WHERE g.org_id = $1 GROUP BY g.id, g.name, g.name_key ORDER BY g.name_key, g.id",
    )
    .bind(org_id)
    .fetch_all(store.pool())
    .await
    .map_err(sql_failure)?;
    Ok(rows.into_iter().map(to_group).collect())
}

fn checked_name(input: &str) -> Result<String, AppError> {
    group_name(input).map_err(AppError::Invalid)
}

/// A failed insert or update of a group: a taken name in words, anything else as a store failure.
fn refused(error: sqlx::Error, name: &str) -> AppError {
    let error = StoreError::from(error);
    if is_unique_violation(&error) {
        AppError::Conflict(format!(
            "A group named \"{name}\" exists already. Choose another name, or use that group."
        ))
    } else {
        store_failure(error)
    }
}

impl GroupService {
    async fn audited(
        &self,
        mut tx: Transaction<'static, Any>,
        caller: &Caller,
        org_id: &str,
        action: &str,
        subject: &str,
        detail: String,
    ) -> Result<(), AppError> {
        audit::by_caller(&mut tx, Some(org_id), caller, action, subject, detail).await?;
        tx.commit().await.map_err(sql_failure)
    }
}

#[async_trait::async_trait]
impl app::services::GroupService for GroupService {
    async fn list(&self, caller: &Caller) -> Result<Vec<Group>, AppError> {
        let org = caller.org()?;
        groups_of(&self.store, &org.id).await
    }

    async fn get(&self, caller: &Caller, id: String) -> Result<GroupMembership, AppError> {
        let org = caller.org()?;
        let group = fetch_group(self.store.pool(), &org.id, &id).await?;
        let rows: Vec<(String,)> = sqlx::query_as(
            "SELECT m.device_id FROM device_group_members m JOIN devices d ON d.id = m.device_id \
             WHERE m.group_id = $1 AND d.org_id = $2 ORDER BY m.device_id",
        )
        .bind(&id)
        .bind(&org.id)
        .fetch_all(self.store.pool())
        .await
        .map_err(sql_failure)?;
        Ok(GroupMembership {
            group,
            device_ids: rows.into_iter().map(|(d,)| d).collect(),
        })
    }

    async fn create(&self, caller: &Caller, name: String) -> Result<Group, AppError> {
        let org = caller.org_where(Role::can_operate)?;
        let name = checked_name(&name)?;
        let id = uuid::Uuid::now_v7().to_string();
        let mut tx = self.store.begin().await.map_err(store_failure)?;
        let inserted = sqlx::query(
            "INSERT INTO device_groups (id, org_id, name, name_key, created_at, updated_at) \
             VALUES ($1, $2, $3, $4, $5, $5)",
        )
        .bind(&id)
        .bind(&org.id)
        .bind(&name)
        .bind(name.to_lowercase())
        .bind(now_ms())
        .execute(&mut *tx)
        .await;
        inserted.map_err(|e| refused(e, &name))?;
        self.audited(tx, caller, &org.id, "group.created", &name, String::new())
            .await?;
        tracing::info!(group.id = %id, org.id = %org.id, "group created");
        Ok(Group {
            id,
            name,
            devices: 0,
        })
    }

    async fn rename(&self, caller: &Caller, id: String, name: String) -> Result<Group, AppError> {
        let org = caller.org_where(Role::can_operate)?;
        let name = checked_name(&name)?;
        let mut tx = self.store.begin().await.map_err(store_failure)?;
        let before = fetch_group(&mut *tx, &org.id, &id).await?;
        let updated = sqlx::query(
            "UPDATE device_groups SET name = $3, name_key = $4, updated_at = $5 \
             WHERE id = $1 AND org_id = $2",
        )
        .bind(&id)
        .bind(&org.id)
        .bind(&name)
        .bind(name.to_lowercase())
        .bind(now_ms())
        .execute(&mut *tx)
        .await;
        updated.map_err(|e| refused(e, &name))?;
        self.audited(
            tx,
            caller,
            &org.id,
            "group.renamed",
            &name,
            format!("was \"{}\"", before.name),
        )
        .await?;
        Ok(Group { name, ..before })
    }

    async fn delete(&self, caller: &Caller, id: String) -> Result<(), AppError> {
        let org = caller.org_where(Role::can_operate)?;
        let mut tx = self.store.begin().await.map_err(store_failure)?;
        let group = fetch_group(&mut *tx, &org.id, &id).await?;
        // Members go with the group (ON DELETE CASCADE); the devices stay.
        sqlx::query("DELETE FROM device_group_members WHERE group_id = $1")
            .bind(&id)
            .execute(&mut *tx)
            .await
            .map_err(sql_failure)?;
        sqlx::query("DELETE FROM device_groups WHERE id = $1 AND org_id = $2")
            .bind(&id)
            .bind(&org.id)
            .execute(&mut *tx)
            .await
            .map_err(sql_failure)?;
        self.audited(
            tx,
            caller,
            &org.id,
            "group.deleted",
            &group.name,
            format!("{} devices ungrouped", group.devices),
        )
        .await?;
        tracing::info!(group.id = %id, org.id = %org.id, "group deleted");
        Ok(())
    }

    async fn set_member(
        &self,
        caller: &Caller,
        id: String,
        device_id: String,
        member: bool,
    ) -> Result<Group, AppError> {
        let org = caller.org_where(Role::can_operate)?;
        let mut tx = self.store.begin().await.map_err(store_failure)?;
        let group = fetch_group(&mut *tx, &org.id, &id).await?;
        let device: Option<(String,)> =
            sqlx::query_as("SELECT name FROM devices WHERE id = $1 AND org_id = $2")
                .bind(&device_id)
                .bind(&org.id)
                .fetch_optional(&mut *tx)
                .await
                .map_err(sql_failure)?;
        let Some((device_name,)) = device else {
            return Err(AppError::NotFound("The device".to_owned()));
        };
        let changed = if member {
            sqlx::query(
                "INSERT INTO device_group_members (group_id, device_id) VALUES ($1, $2) \
                 ON CONFLICT (group_id, device_id) DO NOTHING",
            )
        } else {
            sqlx::query("DELETE FROM device_group_members WHERE group_id = $1 AND device_id = $2")
        }
        .bind(&id)
        .bind(&device_id)
        .execute(&mut *tx)
        .await
        .map_err(sql_failure)?
        .rows_affected();
        let group = fetch_group(&mut *tx, &org.id, &group.id).await?;
        if changed == 0 {
            // Already so: nothing to record.
            tx.commit().await.map_err(sql_failure)?;
            return Ok(group);
        }
        let (action, detail) = if member {
            ("group.device_added", format!("added {device_name}"))
        } else {
            ("group.device_removed", format!("removed {device_name}"))
        };
        self.audited(tx, caller, &org.id, action, &group.name, detail)
            .await?;
        Ok(group)
    }
}
