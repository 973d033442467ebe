//! What a firewall reports in answer to the agent's `status` method (agent protocol v1,
//! docs/agent-protocol.md): shared by the server (the agent protocol, the simulator, the monitor)
//! and the browser (the device page shows it as it came).

use serde::{Deserialize, Serialize};

/// `status` result.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Status {
    pub uptime_secs: u64,
    pub cpu: Cpu,
    pub memory: Memory,
    pub disks: Vec<Disk>,
    pub interfaces: Vec<Interface>,
    pub gateways: Vec<Gateway>,
    pub services: Vec<Service>,
    pub config_hash: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Cpu {
    pub usage_pct: f64,
    pub load: [f64; 3],
    pub cores: u32,
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
