//! What a firewall reports in answer to the agent's `status` method (agent protocol v1,
//! docs/agent-protocol.md): shared by the server (the agent protocol, the simulator, the monitor)
//! and the browser (the device page shows it as it came).

use serde::{Deserialize, Serialize};

/// `status` result. A section the firewall could not read is empty (`None`, or an empty list) and
/// named in `errors` with its cause: a figure is never invented (agent 1.2.0 on).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Status {
    pub uptime_secs: Option<u64>,
    pub cpu: Cpu,
    pub memory: Option<Memory>,
    pub disks: Vec<Disk>,
    pub interfaces: Vec<Interface>,
    pub gateways: Vec<Gateway>,
    pub services: Vec<Service>,
    /// hostname.domain (absent from agents before 1.1: empty).
    #[serde(default)]
    pub hostname: String,
    /// "pfSense".
    #[serde(default)]
    pub platform: String,
    /// System > General Setup's DNS servers, in order.
    #[serde(default)]
    pub dns_servers: Vec<String>,
    pub config_hash: String,
    /// The sections that could not be read, and why.
    #[serde(default)]
    pub errors: Vec<SectionError>,
}

impl Status {
    /// Why `section` (`uptime`, `cpu`, `memory`, `disks`, `interfaces`, `gateways`, `services`)
    /// could not be read, if it could not.
    pub fn error(&self, section: &str) -> Option<&str> {
        self.errors
            .iter()
            .find(|e| e.section == section)
            .map(|e| e.message.as_str())
    }
}

/// A status section the firewall could not read.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SectionError {
    pub section: String,
    pub message: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Cpu {
    pub usage_pct: Option<f64>,
    pub load: [f64; 3],
    pub cores: Option<u32>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Memory {
    pub total_bytes: u64,
    pub used_bytes: u64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Disk {
    pub mount: String,
    pub total_bytes: u64,
    pub used_bytes: u64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Interface {
    pub name: String,
    pub device: String,
    pub description: String,
    pub status: String,
    pub media: String,
    pub ipv4: Option<String>,
    pub ipv6: Option<String>,
    pub rx_bytes: u64,
    pub tx_bytes: u64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Gateway {
    pub name: String,
    pub address: String,
    pub monitor: String,
    pub status: String,
    pub rtt_ms: f64,
    pub rttsd_ms: f64,
    pub loss_pct: f64,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Service {
    pub name: String,
    pub description: String,
    pub status: String,
}

/// `dhcp.leases` result: Status > DHCP Leases.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DhcpLeases {
    pub leases: Vec<DhcpLease>,
}

/// One DHCP lease or static mapping.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DhcpLease {
    pub ip: String,
    /// Lower-case, colon-separated.
    pub mac: String,
    /// "" when the client sent none.
    pub hostname: String,
    /// pfSense's interface name ("lan", "opt1"), "" when unknown.
    pub interface: String,
    /// "dynamic" or "static".
    pub kind: String,
    /// "active", "expired" or "static".
    pub state: String,
    /// Whether the client answers in the ARP table now.
    pub online: bool,
    /// When the lease ends (seconds since the epoch); none for static mappings.
    pub ends_at: Option<i64>,
}

/// `arp.table` result: Diagnostics > ARP Table.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ArpTable {
    pub entries: Vec<ArpEntry>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ArpEntry {
    pub ip: String,
    pub mac: String,
    /// The network device ("igb1").
    pub interface: String,
    /// Reverse name, "" when none.
    pub hostname: String,
    /// Seconds until the entry expires; none for permanent entries.
    pub expires_secs: Option<u64>,
}

/// `packages.list` result: System > Package Manager > Installed Packages.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Packages {
    pub packages: Vec<Package>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Package {
    pub name: String,
    pub version: String,
    pub description: String,
}

/// `diag.reboot` / `diag.shutdown` result: the firewall accepted the request and acts on it about
/// a second later (after the answer has left), so the caller then sees the connection drop.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PowerAccepted {
    /// "reboot" or "shutdown".
    pub action: String,
}
