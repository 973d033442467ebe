//! The device service: the organisation's firewalls as records — add, edit, delete, list. Input
//! is checked with the same rules the browser shows (`app::devices::validate`); a second device
//! with the same host and port in one organisation is refused, naming the first. Operators and
//! above add, edit and activate; admins and owners delete. Every change is audited.
//!
//! Activation ([`crate::activation`]) runs in a task of its own; a successful run is saved here
//! ([`Access::commit`]): the device turns Active, its host key is pinned, its service key is
//! sealed under the master key, the owners and admins get a mail, and the SSH engine takes the
//! device on. Deleting an activated device first removes its service account and agent from it.

use std::sync::Arc;

use app::devices::activation::{ActivationView, HostKeyProbe};
use app::devices::{validate, Device, DeviceInput, DeviceState, ValidDevice};
use app::error::AppError;
use app::roles::Role;
use app::services::{ActivationRequest, Caller};
use base64::Engine as _;
use russh::keys::{PrivateKey, PublicKey};
use sqlx::{Any, Row, Transaction};

use crate::accounts::rows::is_unique_violation;
use crate::activation::flow::{self, Activated, Plan};
use crate::activation::{remote, Activations};
use crate::audit;
use crate::config::Secret;
use crate::crypto::Sealer;
use crate::jobs::Queue;
use crate::notify::{admins_of, MailJob};
use crate::services::{sql_failure, store_failure};
use crate::ssh::{fingerprint, Credentials, DeviceId, DeviceTarget, Engine, EngineEvent};
use crate::store::{now_ms, Store, StoreError};

/// What the device service works with.
#[derive(Clone)]
pub struct DeviceDeps {
    pub store: Store,
    pub queue: Queue,
    pub sealer: Arc<Sealer>,
    pub engine: Engine,
    pub activations: Arc<Activations>,
    /// Reboots and shutdowns asked for here, so the monitor expects them.
    pub outages: crate::monitor::outages::Outages,
    /// This installation's id: Mudmap's key lines on firewalls name it.
    pub instance_id: String,
}

pub struct DeviceService {
    store: Store,
    deps: DeviceDeps,
}

impl DeviceService {
    pub fn new(deps: DeviceDeps) -> Self {
        Self {
            store: deps.store.clone(),
            deps,
        }
    }
}

const COLUMNS: &str =
    "id, name, host, port, tags, notes, state, pfsense_version, pfsense_edition, \
     host_key_fingerprint, presented_fingerprint, agent_version, created_at";

/// One device of `org_id`, through a pool or a transaction.
async fn fetch_device<'e, E>(executor: E, org_id: &str, id: &str) -> Result<Device, AppError>
where
    E: sqlx::Executor<'e, Database = Any>,
{
    let sql = format!("SELECT {COLUMNS} FROM devices WHERE id = $1 AND org_id = $2");
    let row = sqlx::query(sqlx::AssertSqlSafe(sql))
        .bind(id)
        .bind(org_id)
        .fetch_optional(executor)
        .await
        .map_err(sql_failure)?
        .ok_or_else(|| AppError::NotFound("That device".to_owned()))?;
    to_device(&row).map_err(sql_failure)
}

/// Stored tags (comma-separated, lowercased) as a list.
pub(crate) fn tags_of(stored: &str) -> Vec<String> {
    stored
        .split(',')
        .filter(|t| !t.is_empty())
        .map(str::to_owned)
        .collect()
}

/// "CE 2.7.2" from the stored version and edition, once known.
pub(crate) fn pfsense_label(version: Option<String>, edition: Option<String>) -> Option<String> {
    version.map(|v| match edition {
        Some(e) => format!("{e} {v}"),
        None => v,
    })
}

/// A stored port (BIGINT) as a port number.
pub(crate) fn port_of(row: &sqlx::any::AnyRow) -> Result<u16, sqlx::Error> {
    Ok(u16::try_from(row.try_get::<i64, _>("port")?).unwrap_or(22))
}

fn to_device(row: &sqlx::any::AnyRow) -> Result<Device, sqlx::Error> {
    let tags: String = row.try_get("tags")?;
    let state: String = row.try_get("state")?;
    let version: Option<String> = row.try_get("pfsense_version")?;
    let edition: Option<String> = row.try_get("pfsense_edition")?;
    Ok(Device {
        id: row.try_get("id")?,
        name: row.try_get("name")?,
        host: row.try_get("host")?,
        port: port_of(row)?,
        tags: tags_of(&tags),
        notes: row.try_get("notes")?,
        state: DeviceState::parse(&state).unwrap_or(DeviceState::Inactive),
        pfsense: pfsense_label(version, edition),
        fingerprint: row.try_get("host_key_fingerprint")?,
        presented_fingerprint: row.try_get("presented_fingerprint")?,
        agent_version: row.try_get("agent_version")?,
        created_at_ms: row.try_get("created_at")?,
    })
}

fn invalid(errors: app::devices::FieldErrors) -> AppError {
    AppError::Invalid(errors.into_values().collect::<Vec<_>>().join(" "))
}

impl DeviceService {
    /// A device of `org_id`, read outside any transaction (no write lock on SQLite).
    async fn find(&self, org_id: &str, id: &str) -> Result<Device, AppError> {
        fetch_device(self.store.pool(), org_id, id).await
    }

    /// A device of `org_id`, read in `tx`.
    async fn get(
        &self,
        tx: &mut Transaction<'static, Any>,
        org_id: &str,
        id: &str,
    ) -> Result<Device, AppError> {
        fetch_device(&mut **tx, org_id, id).await
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
        // The owners and admins hear of it: in this transaction, so no mail without the device.
        for recipient_id in admins_of(&mut tx, &org.id).await.map_err(store_failure)? {
            MailJob::DeviceAdded {
                org_id: org.id.clone(),
                device_id: id.clone(),
                recipient_id,
            }
            .enqueue(&self.deps.queue, &mut tx, Some(&org.id))
            .await
            .map_err(store_failure)?;
        }
        self.deps.queue.commit(tx).await.map_err(store_failure)?;
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
             host_key_fingerprint = CASE WHEN $9 = 1 THEN NULL ELSE host_key_fingerprint END, \
             presented_fingerprint = CASE WHEN $9 = 1 THEN NULL ELSE presented_fingerprint END, \
             state = CASE WHEN $9 = 1 AND state IN ('active', 'quarantined') THEN 'quarantined' ELSE state END \
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
        if moved {
            // A managed device at a new address is not trusted until its key is confirmed again
            // (re-activation); the engine stops talking to it now.
            self.deps.engine.remove(&DeviceId::new(id.as_str())).await;
        }
        Ok(device)
    }

    async fn delete(&self, caller: &Caller, id: String, force: bool) -> Result<(), AppError> {
        let org = caller.org_where(Role::can_administer)?;
        let access = self.access_of(&org.id, &id).await?;
        let cleanup = match (&access, force) {
            (None, _) => "nothing was installed on it".to_owned(),
            (Some(access), true) => format!(
                "deleted without removing Mudmap's access; left on the firewall: {}",
                access.what_stays(&self.deps.instance_id)
            ),
            (Some(access), false) => remove_from_device(&self.deps, access)
                .await
                .map_err(|e| {
                    AppError::Conflict(format!(
                        "Mudmap could not remove its access from the firewall: {e} Nothing was deleted. \
                         If you choose \"Delete anyway\", {} stay on the firewall until an admin removes \
                         them there.",
                        access.what_stays(&self.deps.instance_id)
                    ))
                })?,
        };
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
            format!("{} port {}; {cleanup}", device.host, device.port),
        )
        .await?;
        for recipient_id in admins_of(&mut tx, &org.id).await.map_err(store_failure)? {
            MailJob::DeviceDeleted {
                org_id: org.id.clone(),
                device_id: id.clone(),
                device_name: device.name.clone(),
                actor_id: caller.user_id.clone(),
                recipient_id,
            }
            .enqueue(&self.deps.queue, &mut tx, Some(&org.id))
            .await
            .map_err(store_failure)?;
        }
        self.deps.queue.commit(tx).await.map_err(store_failure)?;
        self.deps.engine.remove(&DeviceId::new(id.as_str())).await;
        tracing::info!(device.id = %id, org.id = %org.id, force, "device deleted");
        Ok(())
    }

    async fn probe(&self, caller: &Caller, id: String) -> Result<HostKeyProbe, AppError> {
        let org = caller.org_where(Role::can_operate)?;
        let device = self.find(&org.id, &id).await?;
        let plan = Plan {
            device_id: device.id.clone(),
            host: device.host.clone(),
            port: device.port,
            username: String::new(),
            fingerprint: String::new(),
            comment: String::new(),
        };
        let target = plan.target("probe", Credentials::Password(Secret::new("")));
        let key = self
            .deps
            .engine
            .probe_host_key(&target)
            .await
            .map_err(|e| {
                AppError::Unavailable(flow::connect_failure(&plan, self.deps.engine.config(), &e))
            })?;
        Ok(HostKeyProbe {
            device_id: device.id,
            device_name: device.name,
            address: plan.address(),
            fingerprint: fingerprint(&key),
            algorithm: key.algorithm().as_str().to_owned(),
        })
    }

    async fn activate(
        &self,
        caller: &Caller,
        request: ActivationRequest,
    ) -> Result<String, AppError> {
        let org = caller.org_where(Role::can_operate)?;
        let username = request.username.trim().to_owned();
        if username.is_empty()
            || username.len() > 32
            || !username
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.'))
        {
            return Err(AppError::Invalid(
                "Enter the firewall's admin account name (usually \"admin\").".to_owned(),
            ));
        }
        if request.password.expose().is_empty() {
            return Err(AppError::Invalid(
                "Enter the password of that account. It is used once and never stored.".to_owned(),
            ));
        }
        if !request.fingerprint.starts_with("SHA256:") {
            return Err(AppError::Invalid(
                "Confirm the firewall's host key fingerprint first.".to_owned(),
            ));
        }
        let device = self.find(&org.id, &request.device_id).await?;
        let tracker = self
            .deps
            .activations
            .begin(&org.id, &device.id, &device.name)?;
        let run_id = tracker.id().to_owned();
        let plan = Plan {
            device_id: device.id.clone(),
            host: device.host.clone(),
            port: device.port,
            username,
            fingerprint: request.fingerprint.clone(),
            comment: crate::agent::keys::comment(&self.deps.instance_id, &device.id),
        };
        let password = Secret::new(request.password.expose());
        drop(request);
        let access = Access {
            deps: self.deps.clone(),
            org_id: org.id.clone(),
            caller: caller.clone(),
            device_name: device.name.clone(),
        };
        let config = self.deps.engine.config().clone();
        tracing::info!(device.id = %device.id, org.id = %org.id, run = %run_id, "activation started");
        tokio::spawn(async move {
            let outcome = flow::run(
                &config,
                plan.clone(),
                password,
                &tracker,
                async |activated| access.commit(&plan, activated).await,
            )
            .await;
            if let Err(reason) = outcome {
                access.failed(&reason).await;
            }
        });
        Ok(run_id)
    }

    async fn activation(&self, caller: &Caller, id: String) -> Result<ActivationView, AppError> {
        let org = caller.org()?;
        self.deps.activations.get(&org.id, &id)
    }

    async fn detail(
        &self,
        caller: &Caller,
        id: String,
    ) -> Result<app::devices::detail::DeviceDetail, AppError> {
        let org = caller.org()?;
        let device = self.find(&org.id, &id).await?;
        crate::fleet::detail(&self.store, &org.id, device).await
    }

    async fn control_service(
        &self,
        caller: &Caller,
        id: String,
        service: String,
        action: String,
    ) -> Result<app::devices::status::Service, AppError> {
        let org = caller.org_where(Role::can_operate)?;
        let device = self.find(&org.id, &id).await?;
        crate::operate::control_service(
            &self.store,
            &self.deps.engine,
            caller,
            &org.id,
            &device,
            &service,
            &action,
        )
        .await
    }

    async fn tables(
        &self,
        caller: &Caller,
        id: String,
    ) -> Result<app::devices::detail::StatusTables, AppError> {
        let org = caller.org()?;
        let device = self.find(&org.id, &id).await?;
        crate::operate::tables(&self.deps.engine, &device).await
    }

    async fn power(
        &self,
        caller: &Caller,
        id: String,
        action: String,
        confirm: String,
    ) -> Result<(), AppError> {
        let org = caller.org_where(Role::can_administer)?;
        let device = self.find(&org.id, &id).await?;
        crate::operate::power(
            &self.store,
            &self.deps.engine,
            &self.deps.outages,
            caller,
            &org.id,
            &device,
            &action,
            &confirm,
        )
        .await
    }

    async fn fleet(
        &self,
        caller: &Caller,
        query: app::fleet::FleetQuery,
    ) -> Result<app::fleet::FleetPage, AppError> {
        let org = caller.org()?;
        crate::fleet::page(&self.store, &org.id, &query).await
    }
}

/// What a successful run needs to save itself.
struct Access {
    deps: DeviceDeps,
    org_id: String,
    caller: Caller,
    device_name: String,
}

impl Access {
    /// Put a failed activation on the record (the device stays as it was).
    async fn failed(&self, reason: &str) {
        let recorded = async {
            let mut tx = self.deps.store.begin().await.map_err(store_failure)?;
            audit::by_caller(
                &mut tx,
                Some(&self.org_id),
                &self.caller,
                "device.activation_failed",
                &self.device_name,
                reason.to_owned(),
            )
            .await?;
            tx.commit().await.map_err(sql_failure)
        };
        if let Err(e) = recorded.await {
            tracing::error!(org.id = %self.org_id, error = %e, "cannot record a failed activation");
        }
    }

    async fn commit(&self, plan: &Plan, activated: Activated) -> Result<(), String> {
        let deps = &self.deps;
        let host_key = activated
            .host_key
            .to_openssh()
            .map_err(|e| format!("the host key cannot be encoded ({e})"))?;
        let host_fingerprint = fingerprint(&activated.host_key);
        let private = activated
            .service_key
            .to_openssh(russh::keys::ssh_key::LineEnding::LF)
            .map_err(|e| format!("the service key cannot be encoded ({e})"))?;
        let sealed = deps
            .sealer
            .seal(private.as_bytes(), plan.device_id.as_bytes())
            .map_err(|e| format!("the service key cannot be sealed ({e})"))?;
        let service_public = activated
            .service_key
            .public_key()
            .to_openssh()
            .map_err(|e| format!("the service key cannot be encoded ({e})"))?;
        let now = now_ms();
        let save = async {
            let mut tx = deps.store.begin().await?;
            let updated = sqlx::query(
                "UPDATE devices SET state = 'active', host_key = $3, host_key_fingerprint = $4, \
                 pfsense_version = $5, pfsense_edition = $6, agent_version = $7, service_user = $8, \
                 service_key = $9, service_public_key = $10, presented_fingerprint = NULL, \
                 activated_at = $11, updated_at = $11 WHERE id = $1 AND org_id = $2",
            )
            .bind(&plan.device_id)
            .bind(&self.org_id)
            .bind(&host_key)
            .bind(&host_fingerprint)
            .bind(&activated.pfsense.version)
            .bind(&activated.pfsense.edition)
            .bind(&activated.agent_version)
            .bind(&activated.service_user)
            .bind(base64::engine::general_purpose::STANDARD.encode(&sealed))
            .bind(&service_public)
            .bind(now)
            .execute(&mut *tx)
            .await?;
            if updated.rows_affected() == 0 {
                return Ok(false);
            }
            audit::record(
                &mut tx,
                audit::Entry {
                    org_id: Some(&self.org_id),
                    actor_id: Some(&self.caller.user_id),
                    action: "device.activated",
                    subject: &self.device_name,
                    detail: format!(
                        "pfSense {} {}; host key {host_fingerprint}; agent {}",
                        activated.pfsense.edition,
                        activated.pfsense.version,
                        activated.agent_version
                    ),
                },
            )
            .await?;
            // The first backup, once the engine has the device (it is handed over after this
            // commit).
            crate::backups::BackupJob {
                device_id: plan.device_id.clone(),
                source: crate::backups::Source::Activation,
                actor_id: Some(self.caller.user_id.clone()),
            }
            .enqueue(
                &deps.queue,
                &mut tx,
                &self.org_id,
                std::time::Duration::from_secs(2),
            )
            .await?;
            for recipient_id in admins_of(&mut tx, &self.org_id).await? {
                MailJob::DeviceActivated {
                    org_id: self.org_id.clone(),
                    device_id: plan.device_id.clone(),
                    recipient_id,
                }
                .enqueue(&deps.queue, &mut tx, Some(&self.org_id))
                .await?;
            }
            deps.queue.commit(tx).await?;
            Ok::<_, StoreError>(true)
        };
        match save.await {
            Ok(true) => {}
            Ok(false) => return Err("the device was deleted during the activation".to_owned()),
            Err(e) => {
                tracing::error!(device.id = %plan.device_id, error = %e, "cannot save an activation");
                return Err("the database did not accept it; try again".to_owned());
            }
        }
        manage(
            &deps.engine,
            &plan.device_id,
            &plan.host,
            plan.port,
            &activated.service_user,
            activated.service_key,
            &activated.host_key,
        )
        .await;
        Ok(())
    }
}

/// Hand an activated device to the SSH engine: pin its host key, give it the service key, and let
/// it reinstall a missing or outdated agent through that key (self-heal).
async fn manage(
    engine: &Engine,
    device_id: &str,
    host: &str,
    port: u16,
    user: &str,
    key: PrivateKey,
    host_key: &PublicKey,
) {
    let id = DeviceId::new(device_id);
    engine.trust_host_key(&id, host_key).await;
    engine.upsert(DeviceTarget {
        id,
        host: host.to_owned(),
        port,
        username: user.to_owned(),
        credentials: Credentials::Key(Arc::new(key)),
        agent_command: crate::ssh::PFSENSE_AGENT_COMMAND.to_owned(),
        self_heal: Some(Arc::new(crate::ssh::SelfHeal {
            command: remote::SELF_HEAL.to_owned(),
            agent: remote::AGENT_SOURCE.as_bytes(),
            version: remote::shipped_agent_version().to_owned(),
        })),
    });
}

/// An activated device's way in, read back from the database.
struct StoredAccess {
    device_id: String,
    host: String,
    port: u16,
    user: String,
    key: PrivateKey,
    host_key: PublicKey,
}

impl DeviceService {
    /// The stored access of an activated device (None for one never activated).
    async fn access_of(&self, org_id: &str, id: &str) -> Result<Option<StoredAccess>, AppError> {
        let row = sqlx::query(
            "SELECT id, host, port, service_user, service_key, host_key FROM devices \
             WHERE id = $1 AND org_id = $2",
        )
        .bind(id)
        .bind(org_id)
        .fetch_optional(self.store.pool())
        .await
        .map_err(sql_failure)?
        .ok_or_else(|| AppError::NotFound("That device".to_owned()))?;
        stored_access(&self.deps.sealer, &row).map_err(|e| {
            tracing::error!(device.id = %id, error = %e, "cannot read a device's stored access");
            AppError::Internal("device-access".to_owned())
        })
    }

    /// At start: every active device goes to the engine (which the monitor polls); host-key
    /// alarms quarantine devices.
    pub async fn manage_fleet(&self) -> Result<usize, StoreError> {
        let rows = sqlx::query(
            "SELECT id, host, port, service_user, service_key, host_key FROM devices \
             WHERE state = 'active'",
        )
        .fetch_all(self.store.pool())
        .await?;
        let mut managed = 0;
        for row in &rows {
            match stored_access(&self.deps.sealer, row) {
                Ok(Some(a)) => {
                    manage(
                        &self.deps.engine,
                        &a.device_id,
                        &a.host,
                        a.port,
                        &a.user,
                        a.key,
                        &a.host_key,
                    )
                    .await;
                    managed += 1;
                }
                Ok(None) => {}
                Err(e) => {
                    tracing::error!(error = %e, "an active device's access cannot be read; it stays unmanaged")
                }
            }
        }
        tokio::spawn(watch_engine(self.store.clone(), self.deps.engine.clone()));
        Ok(managed)
    }
}

fn stored_access(sealer: &Sealer, row: &sqlx::any::AnyRow) -> Result<Option<StoredAccess>, String> {
    let id: String = row.try_get("id").map_err(|e| e.to_string())?;
    let user: Option<String> = row.try_get("service_user").map_err(|e| e.to_string())?;
    let sealed: Option<String> = row.try_get("service_key").map_err(|e| e.to_string())?;
    let host_key: Option<String> = row.try_get("host_key").map_err(|e| e.to_string())?;
    let (Some(user), Some(sealed), Some(host_key)) = (user, sealed, host_key) else {
        return Ok(None);
    };
    let sealed = base64::engine::general_purpose::STANDARD
        .decode(sealed)
        .map_err(|e| format!("service key is not base64: {e}"))?;
    let pem = zeroize::Zeroizing::new(
        sealer
            .open(&sealed, id.as_bytes())
            .map_err(|e| format!("service key cannot be opened: {e}"))?,
    );
    let pem = std::str::from_utf8(&pem).map_err(|e| format!("service key: {e}"))?;
    let key = PrivateKey::from_openssh(pem).map_err(|e| format!("service key: {e}"))?;
    let host_key = PublicKey::from_openssh(&host_key).map_err(|e| format!("host key: {e}"))?;
    Ok(Some(StoredAccess {
        device_id: id,
        host: row.try_get("host").map_err(|e| e.to_string())?,
        port: u16::try_from(row.try_get::<i64, _>("port").map_err(|e| e.to_string())?)
            .unwrap_or(22),
        user,
        key,
        host_key,
    }))
}

impl StoredAccess {
    /// Whether this device was activated the old way: the `mudmap` account of agents before 1.2.0.
    fn is_legacy(&self) -> bool {
        self.user == remote::LEGACY_USER
    }

    /// Its key line on the firewall (the template of `crate::agent::keys`).
    fn line(&self, instance_id: &str) -> Result<String, String> {
        let public = self
            .key
            .public_key()
            .to_openssh()
            .map_err(|e| format!("the stored key cannot be encoded ({e})"))?;
        Ok(crate::agent::keys::line(
            &public,
            &crate::agent::keys::comment(instance_id, &self.device_id),
        ))
    }

    /// What stays on the firewall when Mudmap does not remove its access, and where an admin
    /// removes it.
    fn what_stays(&self, instance_id: &str) -> String {
        if self.is_legacy() {
            format!(
                "the user \"{}\" with Mudmap's key (System → User Manager) and the agent in {}",
                remote::LEGACY_USER,
                remote::AGENT_DIR
            )
        } else {
            format!(
                "the key line ending in \"{}\" in System → User Manager → admin → Authorized SSH Keys, \
                 and the agent in {} (delete it if no other line ending in \"mudmap:…\" remains)",
                crate::agent::keys::comment(instance_id, &self.device_id),
                remote::AGENT_DIR
            )
        }
    }

    fn target(&self) -> DeviceTarget {
        DeviceTarget {
            id: DeviceId::new(self.device_id.as_str()),
            host: self.host.clone(),
            port: self.port,
            username: self.user.clone(),
            credentials: Credentials::Key(Arc::new(self.key.clone())),
            agent_command: crate::ssh::PFSENSE_AGENT_COMMAND.to_owned(),
            self_heal: None,
        }
    }
}

/// Remove the device's key line (and the agent, when no other Mudmap's key is left) through the
/// key itself, then prove it: the key must no longer log in. Returns what was done, for the audit
/// log; an error says why nothing can be reported done.
async fn remove_from_device(deps: &DeviceDeps, access: &StoredAccess) -> Result<String, String> {
    if access.is_legacy() {
        return Err(format!(
            "it was activated before Mudmap gave its agent root, and the old account \"{}\" cannot \
             remove itself. Re-activate it first (that removes the old account), then delete it.",
            remote::LEGACY_USER
        ));
    }
    let line = access.line(&deps.instance_id)?;
    let target = access.target();
    let pinned = || {
        Arc::new(crate::ssh::ConfirmedFingerprint::new(fingerprint(
            &access.host_key,
        )))
    };
    let answer = flow::as_service(
        deps.engine.config(),
        &target,
        pinned(),
        "access.remove",
        serde_json::json!({ "authorized_key": line, "agent": true }),
    )
    .await
    .map_err(|e| format!("{e}. Check that the firewall is reachable and try again."))?;
    let removed: crate::agent::protocol::AccessRemoved = serde_json::from_value(answer)
        .map_err(|e| format!("the firewall's answer was not understood ({e})."))?;
    // The proof: the key no longer logs in (sshd reads root's authorized_keys at every login).
    match crate::ssh::DirectSession::connect(&target, deps.engine.config(), pinned()).await {
        Ok(mut session) => {
            let login = session.login(&target).await;
            session.close().await;
            match login {
                Err(crate::ssh::SshError::AuthFailed { .. }) => {}
                Ok(()) => {
                    return Err(
                        "the firewall said the key was removed, yet it still logs in. Check System → User Manager → admin on the firewall.".to_owned(),
                    )
                }
                Err(e) => {
                    return Err(format!(
                        "removing the key could not be verified ({e}). Try again."
                    ))
                }
            }
        }
        Err(e) => {
            return Err(format!(
                "removing the key could not be verified ({e}). Try again."
            ))
        }
    }
    let agent = if removed.agent_removed {
        format!("the agent ({}) removed", remote::AGENT_DIR)
    } else {
        format!(
            "the agent kept for the other Mudmap key(s) on it ({})",
            removed.others.join(", ")
        )
    };
    Ok(format!(
        "Mudmap's key line removed from admin's authorized keys (verified: the key no longer logs in); {agent}"
    ))
}

/// Follow the engine: quarantine a device whose host key changed; keep each device's agent and
/// pfSense versions as its agent last reported them (self-heals and pfSense upgrades change them).
async fn watch_engine(store: Store, engine: Engine) {
    let mut events = engine.subscribe();
    loop {
        let event = match events.recv().await {
            Ok(event) => event,
            Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => continue,
            Err(tokio::sync::broadcast::error::RecvError::Closed) => return,
        };
        match event {
            EngineEvent::HostKeyMismatch { device, got, .. } => {
                quarantine(&store, &device, &got).await;
            }
            EngineEvent::Connected { device, hello } => {
                if let Err(e) = record_versions(&store, &device, &hello).await {
                    tracing::error!(device.id = %device, error = %e, "cannot record the agent's versions");
                }
            }
            EngineEvent::State { .. } => {}
        }
    }
}

/// org, name, agent version, pfSense version and edition of a device.
type VersionsRow = (
    String,
    String,
    Option<String>,
    Option<String>,
    Option<String>,
);

/// Store what the agent reported, when it differs from the record (audited: an agent update or a
/// pfSense upgrade is something an admin wants to see).
async fn record_versions(
    store: &Store,
    device: &DeviceId,
    hello: &crate::agent::protocol::Hello,
) -> Result<(), StoreError> {
    let row: Option<VersionsRow> = sqlx::query_as(
        "SELECT org_id, name, agent_version, pfsense_version, pfsense_edition FROM devices \
             WHERE id = $1",
    )
    .bind(&*device.0)
    .fetch_optional(store.pool())
    .await?;
    let Some((org_id, name, agent, version, edition)) = row else {
        return Ok(());
    };
    let mut changes = Vec::new();
    if agent.as_deref() != Some(hello.agent_version.as_str()) {
        changes.push(format!(
            "agent {} -> {}",
            agent.as_deref().unwrap_or("unknown"),
            hello.agent_version
        ));
    }
    let (new_version, new_edition) = (&hello.pfsense.version, &hello.pfsense.edition);
    if version.as_deref() != Some(new_version.as_str())
        || edition.as_deref() != Some(new_edition.as_str())
    {
        changes.push(format!(
            "pfSense {} -> {new_edition} {new_version}",
            pfsense_label(version, edition).unwrap_or_else(|| "unknown".to_owned())
        ));
    }
    if changes.is_empty() {
        return Ok(());
    }
    let mut tx = store.begin().await?;
    sqlx::query(
        "UPDATE devices SET agent_version = $2, pfsense_version = $3, pfsense_edition = $4, \
         updated_at = $5 WHERE id = $1",
    )
    .bind(&*device.0)
    .bind(&hello.agent_version)
    .bind(new_version)
    .bind(new_edition)
    .bind(now_ms())
    .execute(&mut *tx)
    .await?;
    audit::record(
        &mut tx,
        audit::Entry {
            org_id: Some(&org_id),
            actor_id: None,
            action: "device.versions",
            subject: &name,
            detail: changes.join("; "),
        },
    )
    .await?;
    tx.commit().await?;
    tracing::info!(device.id = %device, changes = %changes.join("; "), "device versions changed");
    Ok(())
}

/// Quarantine a device whose host key changed, recording the key it presented.
async fn quarantine(store: &Store, device: &DeviceId, got: &str) {
    {
        let result = async {
            let mut tx = store.begin().await?;
            let row: Option<(String, String)> =
                sqlx::query_as("SELECT org_id, name FROM devices WHERE id = $1 AND state = 'active'")
                    .bind(&*device.0)
                    .fetch_optional(&mut *tx)
                    .await?;
            let Some((org_id, name)) = row else {
                return Ok::<_, StoreError>(());
            };
            sqlx::query(
                "UPDATE devices SET state = 'quarantined', presented_fingerprint = $2, updated_at = $3 \
                 WHERE id = $1",
            )
            .bind(&*device.0)
            .bind(got)
            .bind(now_ms())
            .execute(&mut *tx)
            .await?;
            audit::record(
                &mut tx,
                audit::Entry {
                    org_id: Some(&org_id),
                    actor_id: None,
                    action: "device.quarantined",
                    subject: &name,
                    detail: format!("host key changed: presented {got}"),
                },
            )
            .await?;
            tx.commit().await?;
            Ok(())
        }
        .await;
        match result {
            Ok(()) => {
                tracing::warn!(device.id = %device, presented = %got, "host key changed: device quarantined")
            }
            Err(e) => {
                tracing::error!(device.id = %device, error = %e, "cannot record a quarantine")
            }
        }
    }
}
