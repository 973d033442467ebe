//! Activation runs: giving Mudmap its own narrow access to a firewall with the admin password,
//! step by step, reported live, undone on failure. [`flow`] does the work; this module keeps each
//! run's progress in memory (the browser polls it) and stops two runs on one device at once.
//!
//! Runs live in memory on purpose: the password must not reach the database or a job payload, so
//! a run cannot outlive the process. A restart mid-run leaves the device as it was before the run
//! (its record is only changed by a successful run); anything the run had put on the firewall is
//! replaced by the next run (the install and `access.ensure` are idempotent: a line of the same
//! device replaces its earlier one).

pub mod flow;
pub mod remote;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use app::devices::activation::{ActivationView, Outcome, StepState, StepView};
use app::error::AppError;

/// How long a finished run stays readable.
const KEEP_FINISHED: Duration = Duration::from_secs(15 * 60);

/// The steps, in order: (key, label).
pub const STEPS: [(&str, &str); 6] = [
    ("connect", "Connect and check the host key"),
    ("login", "Log in with the admin password"),
    ("detect", "Check that it is pfSense"),
    ("agent", "Install the Mudmap agent"),
    ("access", "Add Mudmap's key to the admin account"),
    ("verify", "Reconnect as root with that key"),
];

struct Run {
    org_id: String,
    view: ActivationView,
    finished: Option<Instant>,
}

/// Every run of this process.
#[derive(Default)]
pub struct Activations {
    runs: Mutex<HashMap<String, Run>>,
}

impl Activations {
    pub fn new() -> Arc<Self> {
        Arc::new(Self::default())
    }

    /// Register a run for `device_id`, or refuse if one is still going.
    pub fn begin(
        self: &Arc<Self>,
        org_id: &str,
        device_id: &str,
        device_name: &str,
    ) -> Result<Tracker, AppError> {
        let mut runs = self.runs.lock().map_err(|_| poisoned())?;
        runs.retain(|_, r| r.finished.is_none_or(|at| at.elapsed() < KEEP_FINISHED));
        if runs
            .values()
            .any(|r| r.view.device_id == device_id && r.finished.is_none())
        {
            return Err(AppError::Conflict(format!(
                "{device_name} is being activated right now; wait for that run to finish."
            )));
        }
        let id = crate::crypto::random_id();
        let view = ActivationView {
            id: id.clone(),
            device_id: device_id.to_owned(),
            device_name: device_name.to_owned(),
            steps: STEPS
                .iter()
                .map(|(key, label)| StepView {
                    key: (*key).to_owned(),
                    label: (*label).to_owned(),
                    state: StepState::Pending,
                    detail: None,
                })
                .collect(),
            outcome: Outcome::Running,
            error: None,
            cleanup: None,
        };
        runs.insert(
            id.clone(),
            Run {
                org_id: org_id.to_owned(),
                view,
                finished: None,
            },
        );
        Ok(Tracker {
            runs: self.clone(),
            id,
        })
    }

    /// A run of `org_id` (another organisation's run is "not found").
    pub fn get(&self, org_id: &str, id: &str) -> Result<ActivationView, AppError> {
        let runs = self.runs.lock().map_err(|_| poisoned())?;
        runs.get(id)
            .filter(|r| r.org_id == org_id)
            .map(|r| r.view.clone())
            .ok_or_else(|| AppError::NotFound("That activation run".to_owned()))
    }

    fn update(&self, id: &str, change: impl FnOnce(&mut Run)) {
        if let Ok(mut runs) = self.runs.lock() {
            if let Some(run) = runs.get_mut(id) {
                change(run);
            }
        }
    }
}

fn poisoned() -> AppError {
    AppError::Internal("activation-registry".to_owned())
}

/// One run's handle: the flow reports through it.
pub struct Tracker {
    runs: Arc<Activations>,
    id: String,
}

impl Tracker {
    pub fn id(&self) -> &str {
        &self.id
    }

    fn step(&self, key: &str, state: StepState, detail: Option<String>) {
        self.runs.update(&self.id, |run| {
            if let Some(step) = run.view.steps.iter_mut().find(|s| s.key == key) {
                step.state = state;
                if detail.is_some() {
                    step.detail = detail;
                }
            }
        });
    }

    pub fn running(&self, key: &str) {
        self.step(key, StepState::Running, None);
    }

    pub fn done(&self, key: &str, detail: impl Into<String>) {
        self.step(key, StepState::Done, Some(detail.into()));
    }

    pub fn failed(&self, key: &str, detail: impl Into<String>) {
        self.step(key, StepState::Failed, Some(detail.into()));
    }

    /// A step that had succeeded was reverted (a failed step keeps showing that it failed).
    pub fn undone(&self, key: &str, detail: impl Into<String>) {
        let detail = detail.into();
        self.runs.update(&self.id, |run| {
            if let Some(step) = run.view.steps.iter_mut().find(|s| s.key == key) {
                if step.state == StepState::Done {
                    step.state = StepState::Undone;
                    step.detail = Some(detail);
                }
            }
        });
    }

    pub fn succeed(&self) {
        self.runs.update(&self.id, |run| {
            run.view.outcome = Outcome::Active;
            run.finished = Some(Instant::now());
        });
    }

    pub fn fail(&self, error: String, cleanup: Option<String>) {
        self.runs.update(&self.id, |run| {
            run.view.outcome = Outcome::Failed;
            run.view.error = Some(error);
            run.view.cleanup = cleanup;
            run.finished = Some(Instant::now());
        });
    }
}

impl Drop for Tracker {
    /// A run that ends without an outcome (a panic in the flow) must not block the device.
    fn drop(&mut self) {
        self.runs.update(&self.id, |run| {
            if run.finished.is_none() {
                run.view.outcome = Outcome::Failed;
                run.view.error = Some(
                    "The activation stopped unexpectedly (an internal error, logged). Start it again."
                        .to_owned(),
                );
                run.finished = Some(Instant::now());
            }
        });
    }
}
