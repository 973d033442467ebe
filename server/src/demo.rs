//! The demo fleet: simulated firewalls running inside the server (`demo.devices`), registered
//! with the SSH engine and polled, so a newcomer sees a live fleet without owning a pfSense box.
//! Never enabled by default.

use std::time::Duration;

use serde_json::json;

use crate::sim::{service_key, SimOptions, Simulator};
use crate::ssh::{Credentials, DeviceId, DeviceTarget, Engine};

/// How often the demo fleet is polled.
const POLL_EVERY: Duration = Duration::from_secs(30);

pub struct Demo {
    sim: Simulator,
    poller: tokio::task::JoinHandle<()>,
}

impl Demo {
    pub async fn stop(self) {
        self.poller.abort();
        self.sim.shutdown().await;
    }
}

/// Start `devices` simulated firewalls on free loopback ports and register them with `engine`.
pub async fn start(engine: &Engine, devices: u32) -> anyhow::Result<Demo> {
    let sim = Simulator::start(SimOptions {
        devices,
        ..SimOptions::default()
    })
    .await?;
    // The demo trusts its own simulator's keys; real devices are pinned at activation.
    let mut ids = Vec::new();
    for device in sim.devices() {
        let id = DeviceId::new(format!("demo-{}", device.index));
        engine
            .trust_host_key(&id, device.host_key.public_key())
            .await;
        engine.upsert(DeviceTarget {
            id: id.clone(),
            host: sim.options.bind.to_string(),
            port: device.port,
            username: crate::sim::ssh::SERVICE_USER.to_owned(),
            credentials: Credentials::Key(service_key(sim.options.seed, device.index)),
            agent_command: "mudmap-agent serve".to_owned(),
        });
        ids.push(id);
    }
    let poll_engine = engine.clone();
    let poller = tokio::spawn(async move {
        loop {
            let mut round = poll_engine.fanout(&ids, "status", json!({}));
            let mut failed = 0;
            while let Some(result) = round.next().await {
                if result.result.is_err() {
                    failed += 1;
                }
            }
            tracing::debug!(devices = ids.len(), failed, "demo fleet polled");
            tokio::time::sleep(POLL_EVERY).await;
        }
    });
    tracing::info!(devices, "demo fleet of simulated firewalls started");
    Ok(Demo { sim, poller })
}

/// The demo account's address.
pub const DEMO_EMAIL: &str = "demo@mudmap.test";

/// Make sure the demo account exists (verified, owner of "Demo MSP") with `password` (or a fresh
/// random one), and print its credentials on standard output — never to the log.
pub async fn ensure_account(
    store: &crate::store::Store,
    password: Option<&crate::config::Secret>,
) -> anyhow::Result<()> {
    use crate::store::now_ms;
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
    if let Some((id,)) = existing {
        sqlx::query("UPDATE users SET password_hash = $2, updated_at = $3 WHERE id = $1")
            .bind(&id)
            .bind(&hash)
            .bind(now)
            .execute(&mut *tx)
            .await?;
    } else {
        let user_id = crate::accounts::rows::insert_user(&mut tx, DEMO_EMAIL, &hash, true).await?;
        crate::accounts::rows::insert_org_with_owner(&mut tx, "Demo MSP", &user_id).await?;
    }
    tx.commit().await?;
    println!("Demo account: {DEMO_EMAIL} / {password}  (demo mode: never use it in production)");
    Ok(())
}
