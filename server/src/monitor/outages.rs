//! Outages Mudmap causes on purpose — a reboot or a shutdown someone asked for. The device service
//! records them here; the monitor then shows the device as "rebooting" (not offline, no mail)
//! until it answers with a fresh uptime, or as offline without an "offline" mail after a
//! shutdown. A reboot that takes longer than [`REBOOT_WINDOW`] is an outage like any other.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::time::Instant;

use crate::ssh::DeviceId;

/// How long a rebooting device may stay silent before it counts as offline.
pub const REBOOT_WINDOW: Duration = Duration::from_secs(10 * 60);
/// How long a device may keep answering with its old uptime (pfSense stops its services before it
/// restarts) before Mudmap concludes the reboot did not happen and shows it as it is.
pub const STILL_UP_LIMIT: Duration = Duration::from_secs(3 * 60);

/// What was asked of the device.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outage {
    Reboot,
    Shutdown,
}

#[derive(Debug, Clone)]
struct Expected {
    kind: Outage,
    /// Who asked, for the reason shown ("Rebooting, requested by jane@…").
    by: String,
    announced: bool,
}

/// Expected outages by device, shared by the device service and the monitor. Cheap to clone.
#[derive(Debug, Clone, Default)]
pub struct Outages(Arc<Mutex<HashMap<DeviceId, Expected>>>);

impl Outages {
    /// The device was just asked to reboot or shut down by `by`.
    pub fn expect(&self, device: DeviceId, kind: Outage, by: &str) {
        if let Ok(mut map) = self.0.lock() {
            map.insert(
                device,
                Expected {
                    kind,
                    by: by.to_owned(),
                    announced: false,
                },
            );
        }
    }

    /// Outages recorded since the last call, with the reason to show.
    pub(super) fn take_new(&self) -> Vec<(DeviceId, Outage, String)> {
        let Ok(mut map) = self.0.lock() else {
            return Vec::new();
        };
        map.iter_mut()
            .filter(|(_, e)| !e.announced)
            .map(|(id, e)| {
                e.announced = true;
                let reason = match e.kind {
                    Outage::Reboot => format!("Rebooting, requested by {}", e.by),
                    Outage::Shutdown => format!("Shut down from Mudmap by {}", e.by),
                };
                (id.clone(), e.kind, reason)
            })
            .collect()
    }

    pub fn forget(&self, device: &DeviceId) {
        if let Ok(mut map) = self.0.lock() {
            map.remove(device);
        }
    }
}

/// The monitor's view of one device's expected outage.
#[derive(Debug, Clone, Copy)]
pub(super) struct Expecting {
    pub kind: Outage,
    /// A reboot is over when the device answers with an uptime below this (or after the window).
    pub uptime_before: Option<u64>,
    /// It has been silent since (the reboot began), for when `uptime_before` is unknown.
    pub went_silent: bool,
    pub asked: Instant,
    pub until: Instant,
}
