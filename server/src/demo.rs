//! The demo: simulated firewalls running inside the server (`demo.devices`) and a demo account
//! whose organisation, "Demo MSP", has one inactive device record per simulated firewall — so a
//! newcomer signs in and activates firewalls at once (their admin password is printed at start).
//! Never enabled by default.
//!
//! The simulator keeps its state in memory; at start the demo gives back to each simulated
//! firewall what an earlier activation installed on it (Mudmap's key line and the agent), as a real
//! firewall would still have them after Mudmap restarts.

use std::net::SocketAddr;
use std::sync::atomic::Ordering;
use std::sync::Arc;

use russh::keys::PublicKey;

use crate::sim::{SimOptions, Simulator};
use crate::store::{now_ms, Store};

/// Password of `admin` and `root` on every simulated firewall of the demo.
pub const DEVICE_PASSWORD: &str = "pfsense";

pub struct Demo {
    sim: Arc<Simulator>,
    control: Option<tokio::task::JoinHandle<()>>,
}

impl Demo {
    pub fn simulator(&self) -> &Simulator {
        &self.sim
    }

    pub async fn stop(self) {
        if let Some(control) = self.control {
            control.abort();
        }
        if let Ok(sim) = Arc::try_unwrap(self.sim) {
            sim.shutdown().await;
        }
    }
}

/// Start `devices` simulated firewalls on loopback from `base_port`, give them back what earlier
/// activations installed, make sure the demo organisation has a record for each, and serve the
/// fault-switching API on `control` if given.
pub async fn start(
    store: &Store,
    org_id: &str,
    devices: u32,
    base_port: u16,
    control: Option<SocketAddr>,
) -> anyhow::Result<Demo> {
    let sim = Arc::new(
        Simulator::start(SimOptions {
            devices,
            base_port,
            password: DEVICE_PASSWORD.to_owned(),
            authorize_service_keys: false,
            ..SimOptions::default()
        })
        .await?,
    );
    let bind = sim.options.bind.to_string();
    let now = now_ms();
    let instance = store
        .meta_get(crate::store::MetaKey::InstanceId)
        .await?
        .unwrap_or_default();
    for device in sim.devices() {
        let row: Option<(String, String, Option<String>, Option<String>)> = sqlx::query_as(
            "SELECT id, state, service_user, service_public_key FROM devices \
             WHERE org_id = $1 AND host = $2 AND port = $3",
        )
        .bind(org_id)
        .bind(&bind)
        .bind(i64::from(device.port))
        .fetch_optional(store.pool())
        .await?;
        match row {
            Some((id, state, user, Some(public))) if state != "inactive" => {
                if let Ok(key) = PublicKey::from_openssh(&public) {
                    // As the firewall kept it: a line in admin's keys, or (activated before
                    // agent 1.2.0) the old service account, which then asks for re-activation.
                    if user.as_deref() == Some(crate::activation::remote::LEGACY_USER) {
                        device.add_legacy_account(key);
                    } else {
                        device.authorize(&key, &crate::agent::keys::comment(&instance, &id));
                    }
                    device.agent_installed.store(true, Ordering::Relaxed);
                }
            }
            Some(_) => {}
            None => {
                sqlx::query(
                    "INSERT INTO devices (id, org_id, name, host, port, tags, notes, state, created_at, updated_at) \
                     VALUES ($1, $2, $3, $4, $5, 'demo', $6, 'inactive', $7, $7)",
                )
                .bind(uuid::Uuid::now_v7().to_string())
                .bind(org_id)
                .bind(format!("demo-fw-{:02}", device.index + 1))
                .bind(&bind)
                .bind(i64::from(device.port))
                .bind(format!("Simulated firewall. Activate it as admin / {DEVICE_PASSWORD}."))
                .bind(now)
                .execute(store.pool())
                .await?;
            }
        }
    }
    let control = match control {
        Some(addr) => {
            if !addr.ip().is_loopback() {
                anyhow::bail!(
                    "demo.control {addr}: the simulator's control API only listens on loopback"
                );
            }
            let listener = crate::bind(addr).await?;
            let router = crate::sim::control::router(sim.clone());
            Some(tokio::spawn(async move {
                let _ = axum::serve(listener, router).await;
            }))
        }
        None => None,
    };
    tracing::info!(
        devices,
        base_port,
        "demo fleet of simulated firewalls started"
    );
    println!(
        "Demo firewalls: {devices} simulated pfSense on 127.0.0.1:{base_port}.. (admin password: {DEVICE_PASSWORD})"
    );
    Ok(Demo { sim, control })
}

/// The demo account's address.
pub const DEMO_EMAIL: &str = "demo@mudmap.test";

/// Make sure the demo account exists (verified, owner of "Demo MSP") with `password` (or a fresh
/// random one), and print its credentials on standard output — never to the log. Returns the id
/// of its organisation.
pub async fn ensure_account(
    store: &Store,
    password: Option<&crate::config::Secret>,
) -> anyhow::Result<String> {
    let password = match password {
        Some(secret) if !secret.expose().is_empty() => secret.expose().to_owned(),
        _ => crate::crypto::random_id()[..16].to_owned(),
    };
    let hash = crate::accounts::password::hash_blocking(password.clone())
        .await
        .map_err(|e| anyhow::anyhow!("cannot hash the demo password: {e}"))?;
    let now = now_ms();
    let mut tx = store.begin().await?;
    let existing: Option<(String,)> = sqlx::query_as("SELECT id FROM users WHERE email = $1")
        .bind(DEMO_EMAIL)
        .fetch_optional(&mut *tx)
        .await?;
    let user_id = match existing {
        Some((id,)) => {
            sqlx::query("UPDATE users SET password_hash = $2, updated_at = $3 WHERE id = $1")
                .bind(&id)
                .bind(&hash)
                .bind(now)
                .execute(&mut *tx)
                .await?;
            id
        }
        None => crate::accounts::rows::insert_user(&mut tx, DEMO_EMAIL, &hash, true).await?,
    };
    let org: Option<(String,)> = sqlx::query_as(
        "SELECT o.id FROM organisations o JOIN memberships m ON m.org_id = o.id \
         WHERE m.user_id = $1 AND m.role = 'owner' AND o.name = $2 ORDER BY o.created_at LIMIT 1",
    )
    .bind(&user_id)
    .bind(DEMO_ORG)
    .fetch_optional(&mut *tx)
    .await?;
    let org_id = match org {
        Some((id,)) => id,
        None => crate::accounts::rows::insert_org_with_owner(&mut tx, DEMO_ORG, &user_id).await?,
    };
    tx.commit().await?;
    println!("Demo account: {DEMO_EMAIL} / {password}  (demo mode: never use it in production)");
    Ok(org_id)
}

/// The demo account's organisation.
const DEMO_ORG: &str = "Demo MSP";
