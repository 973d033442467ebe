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
