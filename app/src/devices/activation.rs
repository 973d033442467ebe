//! Activation: the flow that gives Mudmap its own, narrow access to a firewall. The browser first
//! asks for the host key the device presents ([`probe_host_key`]), the person compares its
//! fingerprint with the one the firewall shows and types the admin password; [`activate`] starts
//! the run on the server and [`activation`] reports its steps as they happen. The password is used
//! for this run only and is never stored.

use leptos::prelude::*;
use serde::{Deserialize, Serialize};

use crate::error::AppError;

/// The host key a device presents, for the person to confirm before any password is sent.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HostKeyProbe {
    pub device_id: String,
    pub device_name: String,
    /// `host:port` as dialled.
    pub address: String,
    /// `SHA256:…`, as `ssh` prints it.
    pub fingerprint: String,
    /// e.g. `ssh-ed25519`.
    pub algorithm: String,
}

/// Where one step of a run is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum StepState {
    Pending,
    Running,
    Done,
    Failed,
    /// Done, then reverted because a later step failed.
    Undone,
}

impl StepState {
    pub fn as_str(self) -> &'static str {
        match self {
            StepState::Pending => "pending",
            StepState::Running => "running",
            StepState::Done => "done",
            StepState::Failed => "failed",
            StepState::Undone => "undone",
        }
    }
}

/// One step as the browser shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StepView {
    /// Stable name (`connect`, `login`, `detect`, `agent`, `account`, `verify`).
    pub key: String,
    pub label: String,
    pub state: StepState,
    /// What the step found or why it failed.
    pub detail: Option<String>,
}

/// How a run ended, or that it has not yet.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    Running,
    Active,
    Failed,
}

/// A run as the browser shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ActivationView {
    pub id: String,
    pub device_id: String,
    pub device_name: String,
    pub steps: Vec<StepView>,
    pub outcome: Outcome,
    /// On failure: what went wrong and what to do, in one or two sentences.
    pub error: Option<String>,
    /// On failure: what was undone on the device, or what could not be and must be removed by hand.
    pub cleanup: Option<String>,
}

/// Connect to the device and return the host key it presents, trusting nothing and sending no
/// credentials. Operators and above.
#[server(prefix = "/api", endpoint = "devices/probe")]
pub async fn probe_host_key(id: String) -> Result<HostKeyProbe, AppError> {
    use crate::services::{caller, respond, services};
    let caller = respond(caller())?;
    respond(services()?.devices.probe(&caller, id).await)
}

/// Start activating a device with the admin account's password and the fingerprint the person
/// confirmed; returns the run's id for [`activation`]. The password is used by this run only.
#[server(prefix = "/api", endpoint = "devices/activate")]
pub async fn activate(
    id: String,
    username: String,
    password: String,
    fingerprint: String,
) -> Result<String, AppError> {
    use crate::services::{caller, respond, services, ActivationRequest};
    let caller = respond(caller())?;
    let request = ActivationRequest {
        device_id: id,
        username,
        password: crate::services::Password::new(password),
        fingerprint,
    };
    respond(services()?.devices.activate(&caller, request).await)
}

/// A run's progress (of the caller's organisation).
#[server(prefix = "/api", endpoint = "devices/activation")]
pub async fn activation(id: String) -> Result<ActivationView, AppError> {
    use crate::services::{caller, respond, services};
    let caller = respond(caller())?;
    respond(services()?.devices.activation(&caller, id).await)
}
