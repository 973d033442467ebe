//! The simulator's control API (HTTP on loopback), so tests and people can flip faults while the
//! fleet runs:
//!
//! - `GET  /devices` — every device: index, port, hostname, version, faults, and whether the
//!   agent and a Mudmap key line are on it (`service_account`), and which services run
//! - `PATCH /devices/{index}/faults` — `{"refuse":true}`, `{"stall":false}`, `{"host_key_changed":true}`,
//!   `{"drop_connections":true}`, `{"gateway_down":true}`, and the activation faults `key_only`,
//!   `not_pfsense`, `agent_install_fails`, `account_fails` (access.ensure and access.remove fail), `no_root` (the key logs in without root), `edit_config` (an admin edits the
//!   configuration in pfSense's GUI;
//!   fields optional). After a shutdown from
//!   Mudmap, `{"refuse":false}` powers the device on again.
//! - `PATCH /faults` — the same for every device
//! - `POST /devices/{index}/lockouts/clear` — lift sshguard-style lockouts

use std::sync::Arc;

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::routing::{get, patch, post};
use axum::{Json, Router};
use serde_json::{json, Value};

use super::{FaultPatch, Simulator};

pub fn router(sim: Arc<Simulator>) -> Router {
    Router::new()
        .route("/devices", get(list))
        .route("/devices/{index}/faults", patch(patch_device))
        .route("/devices/{index}/lockouts/clear", post(clear_lockouts))
        .route("/faults", patch(patch_fleet))
        .with_state(sim)
}

async fn list(State(sim): State<Arc<Simulator>>) -> Json<Value> {
    let devices: Vec<Value> = sim
        .devices()
        .iter()
        .map(|d| {
            let (hostname, version, services) = match d.model.lock() {
                Ok(m) => (
                    m.hostname.clone(),
                    format!("{} {}", m.version.edition, m.version.version),
                    m.services
                        .iter()
                        .map(|s| (s.name.to_owned(), json!(s.running)))
                        .collect::<serde_json::Map<_, _>>(),
                ),
                Err(_) => (String::new(), String::new(), serde_json::Map::new()),
            };
            json!({
                "index": d.index,
                "port": d.port,
                "hostname": hostname,
                "version": version,
                "faults": d.faults(),
                "agent_installed": d.has_agent(),
                "service_account": d.has_mudmap_key(),
                "services_running": services,
            })
        })
        .collect();
    Json(json!({ "devices": devices }))
}

async fn patch_device(
    State(sim): State<Arc<Simulator>>,
    Path(index): Path<u32>,
    Json(body): Json<FaultPatch>,
) -> Result<Json<Value>, (StatusCode, String)> {
    let device = sim.device(index).ok_or_else(|| {
        (
            StatusCode::NOT_FOUND,
            format!("no simulated device {index}"),
        )
    })?;
    device.patch_faults(body);
    Ok(Json(json!({ "index": index, "faults": device.faults() })))
}

async fn patch_fleet(
    State(sim): State<Arc<Simulator>>,
    Json(body): Json<FaultPatch>,
) -> Json<Value> {
    sim.patch_all(body);
    Json(json!({ "devices": sim.devices().len() }))
}

async fn clear_lockouts(
    State(sim): State<Arc<Simulator>>,
    Path(index): Path<u32>,
) -> Result<StatusCode, (StatusCode, String)> {
    let device = sim.device(index).ok_or_else(|| {
        (
            StatusCode::NOT_FOUND,
            format!("no simulated device {index}"),
        )
    })?;
    device.clear_lockouts();
    Ok(StatusCode::NO_CONTENT)
}
