//! One device in depth: its record, health, the latest status the monitor stored (shown as it
//! came, with its age when the device is offline) and the last 24 hours of figures for the charts.

use leptos::prelude::*;
use serde::{Deserialize, Serialize};

use super::status::Status;
use super::Device;
use crate::error::AppError;
use crate::ui::badge::Health;

/// Points a chart gets at most (24 h in 5-minute steps).
pub const HISTORY_POINTS: usize = 288;

/// One point of history (averages over its step).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Sample {
    pub at_ms: i64,
    pub cpu_pct: Option<f64>,
    pub mem_pct: Option<f64>,
    pub disk_pct: Option<f64>,
    pub rtt_ms: Option<f64>,
    pub loss_pct: Option<f64>,
    pub rx_bps: Option<f64>,
    pub tx_bps: Option<f64>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DeviceDetail {
    pub device: Device,
    pub health: Health,
    pub reason: String,
    pub since_ms: Option<i64>,
    pub last_seen_ms: Option<i64>,
    /// The server's clock when this was read.
    pub now_ms: i64,
    /// The latest status (None before the first poll).
    pub status: Option<Status>,
    /// Oldest first.
    pub history: Vec<Sample>,
    /// Set while the configuration has changed outside Mudmap and nobody has acknowledged it.
    pub drift: Option<DriftMark>,
}

/// "Changed outside Mudmap": the configuration changed behind Mudmap's back (in pfSense's own
/// GUI, say) since Mudmap last knew it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DriftMark {
    /// The revision Mudmap last knew (none if retention has removed it since).
    pub base_revision_id: Option<String>,
    /// The newest revision with outside changes.
    pub revision_id: String,
    /// When the first outside change was seen, and the newest.
    pub since_ms: i64,
    pub seen_ms: i64,
    /// pfSense's record of who made the newest change and how it described it.
    pub pf_username: String,
    pub pf_description: String,
}

/// Acknowledge that the configuration changed outside Mudmap (operators and above; audited):
/// clears the mark. The backups stay.
#[server(prefix = "/api", endpoint = "devices/acknowledge-drift")]
pub async fn acknowledge_drift(id: String) -> Result<(), AppError> {
    use crate::services::{caller, respond, services};
    let caller = respond(caller())?;
    respond(services()?.backups.acknowledge_drift(&caller, id).await)
}

/// A device of the caller's organisation, in depth.
#[server(prefix = "/api", endpoint = "devices/detail")]
pub async fn fetch_device_detail(id: String) -> Result<DeviceDetail, AppError> {
    use crate::services::{caller, respond, services};
    let caller = respond(caller())?;
    respond(services()?.devices.detail(&caller, id).await)
}

/// What a service action may be.
pub const SERVICE_ACTIONS: [&str; 3] = ["start", "stop", "restart"];

/// Start, stop or restart one service on a device (operators and above); returns the service as
/// the firewall reports it afterwards.
#[server(prefix = "/api", endpoint = "devices/service")]
pub async fn control_service(
    id: String,
    service: String,
    action: String,
) -> Result<super::status::Service, AppError> {
    use crate::services::{caller, respond, services};
    let caller = respond(caller())?;
    if !SERVICE_ACTIONS.contains(&action.as_str()) {
        return respond(Err(AppError::Invalid(format!(
            "\"{action}\" is not start, stop or restart."
        ))));
    }
    respond(
        services()?
            .devices
            .control_service(&caller, id, service, action)
            .await,
    )
}

/// Status > DHCP Leases, Diagnostics > ARP Table and the installed packages, read live from the
/// firewall (they are not polled: only the device page asks for them).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StatusTables {
    pub leases: Vec<super::status::DhcpLease>,
    pub arp: Vec<super::status::ArpEntry>,
    pub packages: Vec<super::status::Package>,
    /// When the firewall answered (ms since the epoch).
    pub read_at_ms: i64,
}

/// DHCP leases, ARP table and packages of an active device, read from it now.
#[server(prefix = "/api", endpoint = "devices/tables")]
pub async fn fetch_status_tables(id: String) -> Result<StatusTables, AppError> {
    use crate::services::{caller, respond, services};
    let caller = respond(caller())?;
    respond(services()?.devices.tables(&caller, id).await)
}

/// What a power action may be.
pub const POWER_ACTIONS: [&str; 2] = ["reboot", "shutdown"];

/// Reboot or shut down a firewall (owners and admins). `confirm` must be the device's name, typed
/// by the person, so a slip of the mouse cannot take a site offline.
#[server(prefix = "/api", endpoint = "devices/power")]
pub async fn power_device(id: String, action: String, confirm: String) -> Result<(), AppError> {
    use crate::services::{caller, respond, services};
    let caller = respond(caller())?;
    if !POWER_ACTIONS.contains(&action.as_str()) {
        return respond(Err(AppError::Invalid(format!(
            "\"{action}\" is not reboot or shutdown."
        ))));
    }
    respond(
        services()?
            .devices
            .power(&caller, id, action, confirm)
            .await,
    )
}

/// Average `samples` (oldest first) down to at most `points`, each the mean of its slice.
pub fn thin(samples: Vec<Sample>, points: usize) -> Vec<Sample> {
    if samples.len() <= points || points == 0 {
        return samples;
    }
    let per = samples.len().div_ceil(points);
    samples
        .chunks(per)
        .map(|chunk| {
            let mean = |f: fn(&Sample) -> Option<f64>| {
                let values: Vec<f64> = chunk.iter().filter_map(f).collect();
                (!values.is_empty()).then(|| values.iter().sum::<f64>() / values.len() as f64)
            };
            Sample {
                at_ms: chunk[chunk.len() - 1].at_ms,
                cpu_pct: mean(|s| s.cpu_pct),
                mem_pct: mean(|s| s.mem_pct),
                disk_pct: mean(|s| s.disk_pct),
                rtt_ms: mean(|s| s.rtt_ms),
                loss_pct: mean(|s| s.loss_pct),
                rx_bps: mean(|s| s.rx_bps),
                tx_bps: mean(|s| s.tx_bps),
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample(at_ms: i64, cpu: Option<f64>) -> Sample {
        Sample {
            at_ms,
            cpu_pct: cpu,
            mem_pct: None,
            disk_pct: None,
            rtt_ms: None,
            loss_pct: None,
            rx_bps: None,
            tx_bps: None,
        }
    }

    #[test]
    fn history_is_thinned_to_averages() {
        let samples: Vec<Sample> = (0..10).map(|i| sample(i, Some(i as f64))).collect();
        let thinned = thin(samples, 5);
        assert_eq!(thinned.len(), 5);
        assert_eq!(thinned[0].cpu_pct, Some(0.5));
        assert_eq!(thinned[4].at_ms, 9);
        let gaps = thin(
            vec![sample(0, None), sample(1, Some(4.0)), sample(2, None)],
            1,
        );
        assert_eq!(gaps[0].cpu_pct, Some(4.0));
        assert_eq!(thin(vec![sample(0, None)], 0).len(), 1);
    }
}
