//! What a device's `status` says about its health, as figures for the fleet table and the history:
//! online, or degraded with the reason (a gateway down or degraded, heavy packet loss, a nearly
//! full disk). Offline is not judged from a status but from its absence (see the monitor).

use crate::agent::protocol::Status;

/// Packet loss at or above this on a gateway degrades the device.
pub const LOSS_DEGRADED_PCT: f64 = 20.0;
/// A file system at or above this fill degrades the device.
pub const DISK_DEGRADED_PCT: f64 = 90.0;

/// A device's health.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Health {
    Online,
    Degraded,
    Offline,
    /// Restarting on request (diag.reboot): not offline while it is expected back.
    Rebooting,
    /// Managed, not yet polled.
    Unknown,
    /// It answers, but Mudmap's key has no root access there (re-activate it).
    NoAccess,
}

impl Health {
    pub fn as_str(self) -> &'static str {
        match self {
            Health::Online => "online",
            Health::Degraded => "degraded",
            Health::Offline => "offline",
            Health::Rebooting => "rebooting",
            Health::Unknown => "unknown",
            Health::NoAccess => "no_access",
        }
    }

    pub fn parse(text: &str) -> Health {
        match text {
            "online" => Health::Online,
            "degraded" => Health::Degraded,
            "offline" => Health::Offline,
            "rebooting" => Health::Rebooting,
            "no_access" => Health::NoAccess,
            _ => Health::Unknown,
        }
    }
}

/// The figures one poll yields.
#[derive(Debug, Clone, PartialEq)]
pub struct Reading {
    pub health: Health,
    /// Why it is degraded ("" when online).
    pub reason: String,
    /// None when the firewall could not read it (the status says why).
    pub uptime_secs: Option<u64>,
    pub cpu_pct: Option<f64>,
    pub mem_pct: Option<f64>,
    /// The fullest file system.
    pub disk_pct: f64,
    /// The first (default) gateway's round-trip time and loss.
    pub rtt_ms: Option<f64>,
    pub loss_pct: Option<f64>,
    pub gateways_up: u32,
    pub gateways_total: u32,
    /// Bytes received and sent over all interfaces (counters; rates come from two readings).
    pub rx_bytes: u64,
    pub tx_bytes: u64,
}

fn pct(part: u64, whole: u64) -> f64 {
    if whole == 0 {
        0.0
    } else {
        (part as f64 / whole as f64 * 1000.0).round() / 10.0
    }
}

/// Judge one status.
pub fn judge(status: &Status) -> Reading {
    let mut reasons = Vec::new();
    for gateway in &status.gateways {
        match gateway.status.as_str() {
            "degraded" => reasons.push(format!("gateway {} degraded", gateway.name)),
            "down" => reasons.push(format!("gateway {} down", gateway.name)),
            // online; or unknown (no monitoring data yet): no alarm.
            _ => {}
        }
        if gateway.status == "online" && gateway.loss_pct >= LOSS_DEGRADED_PCT {
            reasons.push(format!(
                "gateway {} loses {:.0}%",
                gateway.name, gateway.loss_pct
            ));
        }
    }
    let disk_pct = status
        .disks
        .iter()
        .map(|d| pct(d.used_bytes, d.total_bytes))
        .fold(0.0, f64::max);
    if let Some(full) = status
        .disks
        .iter()
        .find(|d| pct(d.used_bytes, d.total_bytes) >= DISK_DEGRADED_PCT)
    {
        reasons.push(format!(
            "disk {} {:.0}% full",
            full.mount,
            pct(full.used_bytes, full.total_bytes)
        ));
    }
    let first = status.gateways.first();
    Reading {
        health: if reasons.is_empty() {
            Health::Online
        } else {
            Health::Degraded
        },
        reason: reasons.join("; "),
        uptime_secs: status.uptime_secs,
        cpu_pct: status.cpu.usage_pct.map(|c| (c * 10.0).round() / 10.0),
        mem_pct: status
            .memory
            .as_ref()
            .map(|m| pct(m.used_bytes, m.total_bytes)),
        disk_pct,
        rtt_ms: first.map(|g| g.rtt_ms),
        loss_pct: first.map(|g| g.loss_pct),
        gateways_up: u32::try_from(
            status
                .gateways
                .iter()
                .filter(|g| g.status == "online")
                .count(),
        )
        .unwrap_or(u32::MAX),
        gateways_total: u32::try_from(status.gateways.len()).unwrap_or(u32::MAX),
        rx_bytes: status
            .interfaces
            .iter()
            .map(|i| i.rx_bytes)
            .fold(0u64, u64::saturating_add),
        tx_bytes: status
            .interfaces
            .iter()
            .map(|i| i.tx_bytes)
            .fold(0u64, u64::saturating_add),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sim::model::DeviceModel;

    #[test]
    fn a_healthy_simulated_device_is_online() {
        let reading = judge(&DeviceModel::new(1, 0).status());
        assert_eq!(reading.health, Health::Online, "{reading:?}");
        assert_eq!(reading.reason, "");
        assert_eq!((reading.gateways_up, reading.gateways_total), (1, 1));
        assert!(reading.mem_pct.is_some_and(|m| m > 0.0 && m < 100.0));
        assert!(reading.rx_bytes > 0);
    }

    #[test]
    fn gateways_loss_and_disk_degrade_with_a_reason() {
        let mut status = DeviceModel::new(1, 0).status();
        status.gateways[0].status = "down".to_owned();
        status.disks[0].used_bytes = status.disks[0].total_bytes / 100 * 95;
        let reading = judge(&status);
        assert_eq!(reading.health, Health::Degraded);
        assert_eq!(reading.reason, "gateway WAN_GW down; disk / 95% full");
        assert_eq!(reading.gateways_up, 0);

        let mut status = DeviceModel::new(1, 0).status();
        status.gateways[0].loss_pct = 25.0;
        assert_eq!(judge(&status).reason, "gateway WAN_GW loses 25%");
        // No monitoring data yet (pfSense's "Pending"): not up, but no alarm either.
        let mut status = DeviceModel::new(1, 0).status();
        status.gateways[0].status = "unknown".to_owned();
        let reading = judge(&status);
        assert_eq!(
            (reading.health, reading.reason.as_str()),
            (Health::Online, "")
        );
        assert_eq!(reading.gateways_up, 0);
    }
}
