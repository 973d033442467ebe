//! A simulated pfSense device's configuration (in config.xml's schema) and its live figures.
//! Everything is derived from the fleet seed and the device index, so a restarted simulator serves
//! the same fleet. Live figures are computed from the clock when asked, not ticked by timers, so a
//! fleet of 10,000 costs nothing while idle.

use std::fmt::Write as _;
use std::time::Instant;

use sha2::{Digest, Sha256};

use super::layout::Layout;

use crate::agent::protocol::{
    ArpEntry, ArpTable, ConfigDocument, Cpu, DhcpLease, DhcpLeases, Disk, Gateway, Interface,
    Memory, Package, Packages, PfSenseVersion, Service, Status,
};

/// Host names the simulated LAN clients send.
const CLIENTS: [&str; 6] = [
    "laptop-ana",
    "desk-07",
    "phone-ben",
    "nas",
    "tv-lounge",
    "voip-12",
];

/// The pfSense releases the simulated fleet is drawn from.
const VERSIONS: [(&str, &str); 4] = [
    ("2.6.0", "CE"),
    ("2.7.2", "CE"),
    ("23.09.1", "Plus"),
    ("24.03", "Plus"),
];

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FilterRule {
    pub tracker: u64,
    pub action: &'static str,
    pub interface: &'static str,
    pub protocol: &'static str,
    pub source: String,
    pub destination: String,
    pub port: Option<String>,
    pub description: String,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Alias {
    pub name: String,
    pub kind: &'static str,
    pub addresses: Vec<String>,
    pub description: String,
}

/// Why `service.control` was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ServiceError {
    NotFound,
    BadAction,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServiceState {
    pub name: &'static str,
    pub description: &'static str,
    pub running: bool,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InterfaceConfig {
    pub name: &'static str,
    pub device: &'static str,
    pub description: &'static str,
    pub ipv4: String,
    pub ipv6: Option<String>,
}

/// One device's configuration model.
#[derive(Debug, Clone)]
pub struct DeviceModel {
    pub index: u32,
    pub hostname: String,
    pub domain: String,
    pub version: PfSenseVersion,
    pub dns_servers: Vec<String>,
    pub interfaces: Vec<InterfaceConfig>,
    pub rules: Vec<FilterRule>,
    pub aliases: Vec<Alias>,
    pub services: Vec<ServiceState>,
    /// Monotonic clock origin of the device's uptime.
    pub booted: Instant,
    /// Uptime the device already had when the simulator started (seconds).
    pub uptime_offset: u64,
    /// A per-device phase so figures do not move in lockstep.
    pub phase: f64,
    /// The WAN gateway does not answer (a fault switched by the control API).
    pub gateway_down: bool,
    /// The generated sections (VLANs, NAT, routes, many rules), rendered on demand.
    pub layout: Layout,
    /// Changes an admin made in pfSense's own GUI (the control API's `edit_config`).
    pub admin_edits: u32,
    /// Hash of [`DeviceModel::config_xml`], kept current by [`DeviceModel::changed`].
    hash: String,
}

impl DeviceModel {
    pub fn new(seed: u64, index: u32) -> Self {
        let noise = derive(seed, index, "model");
        let (version, edition) = VERSIONS[index as usize % VERSIONS.len()];
        let octet = index % 250 + 1;
        let third = index / 250 % 250;
        let wan = format!("198.18.{third}.{octet}");
        let interfaces = vec![
            InterfaceConfig {
                name: "wan",
                device: "igb0",
                description: "WAN",
                ipv4: format!("{wan}/24"),
                ipv6: Some(format!("2001:db8:{index:x}::1/64")),
            },
            InterfaceConfig {
                name: "lan",
                device: "igb1",
                description: "LAN",
                ipv4: format!("10.{}.{}.1/24", index / 256 % 256, index % 256),
                ipv6: None,
            },
            InterfaceConfig {
                name: "opt1",
                device: "igb2",
                description: "DMZ",
                ipv4: format!("172.16.{}.1/24", index % 256),
                ipv6: None,
            },
        ];
        let rules = vec![
            FilterRule {
                tracker: 1_000_000_100,
                action: "pass",
                interface: "lan",
                protocol: "any",
                source: "lan".to_owned(),
                destination: "any".to_owned(),
                port: None,
                description: "Default allow LAN to any rule".to_owned(),
            },
            FilterRule {
                tracker: 1_000_000_101,
                action: "pass",
                interface: "wan",
                protocol: "tcp",
                source: "mudmap_managers".to_owned(),
                destination: "(self)".to_owned(),
                port: Some("22".to_owned()),
                description: "Mudmap management SSH".to_owned(),
            },
            FilterRule {
                tracker: 1_000_000_102,
                action: "block",
                interface: "wan",
                protocol: "any",
                source: "blocklist".to_owned(),
                destination: "any".to_owned(),
                port: None,
                description: "Block known bad hosts".to_owned(),
            },
        ];
        let aliases = vec![
            Alias {
                name: "mudmap_managers".to_owned(),
                kind: "host",
                addresses: vec!["127.0.0.1".to_owned()],
                description: "Mudmap servers".to_owned(),
            },
            Alias {
                name: "blocklist".to_owned(),
                kind: "network",
                addresses: vec!["203.0.113.0/24".to_owned(), "192.0.2.128/25".to_owned()],
                description: "Networks to block".to_owned(),
            },
        ];
        let services = vec![
            ServiceState {
                name: "unbound",
                description: "DNS Resolver",
                running: true,
            },
            ServiceState {
                name: "dhcpd",
                description: "DHCP Service",
                running: true,
            },
            ServiceState {
                name: "ntpd",
                description: "NTP clock sync",
                running: true,
            },
            ServiceState {
                name: "sshd",
                description: "Secure Shell Daemon",
                running: true,
            },
            ServiceState {
                name: "dpinger",
                description: "Gateway Monitoring Daemon",
                running: true,
            },
            ServiceState {
                name: "openvpn",
                description: "OpenVPN server: Remote access",
                running: !noise.is_multiple_of(3),
            },
        ];
        let mut model = Self {
            index,
            hostname: format!("fw-{index:04}"),
            domain: "sim.mudmap.test".to_owned(),
            version: PfSenseVersion {
                version: version.to_owned(),
                edition: edition.to_owned(),
            },
            dns_servers: vec!["1.1.1.1".to_owned(), "9.9.9.9".to_owned()],
            interfaces,
            rules,
            aliases,
            services,
            booted: Instant::now(),
            uptime_offset: 3_600 + noise % (40 * 86_400),
            phase: (noise % 6_283) as f64 / 1_000.0,
            gateway_down: false,
            layout: Layout::new(seed, index),
            admin_edits: 0,
            hash: String::new(),
        };
        model.changed();
        model
    }

    /// Call after any change to the configuration: recomputes the config hash once, so every
    /// `status` poll does not re-render and re-hash the whole config.
    pub fn changed(&mut self) {
        self.hash = config_hash(&self.config_xml());
    }

    /// The configuration as pfSense writes `/cf/conf/config.xml`.
    pub fn config_xml(&self) -> String {
        let mut x = String::with_capacity(4096);
        let _ = writeln!(x, "<?xml version=\"1.0\"?>");
        let _ = writeln!(x, "<pfsense>");
        let _ = writeln!(x, "\t<version>23.3</version>");
        let _ = writeln!(x, "\t<system>");
        let _ = writeln!(x, "\t\t<hostname>{}</hostname>", esc(&self.hostname));
        let _ = writeln!(x, "\t\t<domain>{}</domain>", esc(&self.domain));
        for dns in &self.dns_servers {
            let _ = writeln!(x, "\t\t<dnsserver>{}</dnsserver>", esc(dns));
        }
        let _ = writeln!(x, "\t\t<timezone>Etc/UTC</timezone>");
        // pfSense's admin account, with a password hash like pfSense's (a secret to mask).
        let _ = writeln!(x, "\t\t<group>\n\t\t\t<name>admins</name>\n\t\t\t<scope>system</scope>\n\t\t\t<gid>1999</gid>\n\t\t\t<member>0</member>\n\t\t\t<priv>page-all</priv>\n\t\t</group>");
        let _ = writeln!(x, "\t\t<user>\n\t\t\t<name>admin</name>\n\t\t\t<descr><![CDATA[System Administrator]]></descr>\n\t\t\t<scope>system</scope>\n\t\t\t<groupname>admins</groupname>");
        let _ = writeln!(
            x,
            "\t\t\t<bcrypt-hash>$2y$10${:0>53}</bcrypt-hash>",
            format!("simulatedhash{}", self.index)
        );
        let _ = writeln!(
            x,
            "\t\t\t<uid>0</uid>\n\t\t\t<priv>user-shell-access</priv>\n\t\t</user>"
        );
        let _ = writeln!(x, "\t</system>");
        let _ = writeln!(x, "\t<interfaces>");
        for i in &self.interfaces {
            let (addr, bits) = i.ipv4.split_once('/').unwrap_or((&i.ipv4, "24"));
            let _ = writeln!(x, "\t\t<{}>", i.name);
            let _ = writeln!(x, "\t\t\t<enable></enable>");
            let _ = writeln!(x, "\t\t\t<if>{}</if>", i.device);
            let _ = writeln!(x, "\t\t\t<descr><![CDATA[{}]]></descr>", i.description);
            let _ = writeln!(x, "\t\t\t<ipaddr>{}</ipaddr>", esc(addr));
            let _ = writeln!(x, "\t\t\t<subnet>{}</subnet>", esc(bits));
            if let Some(v6) = &i.ipv6 {
                let (addr, bits) = v6.split_once('/').unwrap_or((v6, "64"));
                let _ = writeln!(x, "\t\t\t<ipaddrv6>{}</ipaddrv6>", esc(addr));
                let _ = writeln!(x, "\t\t\t<subnetv6>{}</subnetv6>", esc(bits));
            }
            let _ = writeln!(x, "\t\t</{}>", i.name);
        }
        self.layout.write_vlan_interfaces(&mut x, self.index);
        let _ = writeln!(x, "\t</interfaces>");
        self.layout.write_vlans(&mut x);
        let _ = writeln!(x, "\t<gateways>");
        let _ = writeln!(x, "\t\t<gateway_item>");
        let _ = writeln!(x, "\t\t\t<interface>wan</interface>");
        let _ = writeln!(x, "\t\t\t<gateway>{}</gateway>", esc(&self.wan_gateway()));
        let _ = writeln!(x, "\t\t\t<name>WAN_GW</name>");
        let _ = writeln!(x, "\t\t\t<ipprotocol>inet</ipprotocol>");
        let _ = writeln!(x, "\t\t</gateway_item>");
        self.layout.write_gateways(&mut x, self.index);
        let _ = writeln!(x, "\t</gateways>");
        self.layout.write_routes(&mut x);
        self.layout.write_nat(&mut x, self.index);
        let _ = writeln!(x, "\t<aliases>");
        for a in &self.aliases {
            let _ = writeln!(x, "\t\t<alias>");
            let _ = writeln!(x, "\t\t\t<name>{}</name>", esc(&a.name));
            let _ = writeln!(x, "\t\t\t<type>{}</type>", a.kind);
            let _ = writeln!(
                x,
                "\t\t\t<address>{}</address>",
                esc(&a.addresses.join(" "))
            );
            let _ = writeln!(x, "\t\t\t<descr><![CDATA[{}]]></descr>", a.description);
            let _ = writeln!(x, "\t\t</alias>");
        }
        let _ = writeln!(x, "\t</aliases>");
        let _ = writeln!(x, "\t<filter>");
        for r in &self.rules {
            let _ = writeln!(x, "\t\t<rule>");
            let _ = writeln!(x, "\t\t\t<tracker>{}</tracker>", r.tracker);
            let _ = writeln!(x, "\t\t\t<type>{}</type>", r.action);
            let _ = writeln!(x, "\t\t\t<interface>{}</interface>", r.interface);
            let _ = writeln!(x, "\t\t\t<ipprotocol>inet</ipprotocol>");
            if r.protocol != "any" {
                let _ = writeln!(x, "\t\t\t<protocol>{}</protocol>", r.protocol);
            }
            let _ = writeln!(x, "\t\t\t<source>{}</source>", endpoint(&r.source, None));
            let _ = writeln!(
                x,
                "\t\t\t<destination>{}</destination>",
                endpoint(&r.destination, r.port.as_deref())
            );
            let _ = writeln!(x, "\t\t\t<descr><![CDATA[{}]]></descr>", r.description);
            let _ = writeln!(x, "\t\t</rule>");
        }
        self.layout.write_rules(&mut x);
        let _ = writeln!(x, "\t</filter>");
        let (time, what, who) = if self.admin_edits == 0 {
            (
                1_700_000_000,
                "Initial setup",
                "admin@10.0.0.2 (Local Database)",
            )
        } else {
            (
                1_700_000_000 + u64::from(self.admin_edits) * 60,
                "Firewall: Aliases - saved",
                "admin@10.0.0.9 (Local Database)",
            )
        };
        let _ = writeln!(x, "\t<revision>");
        let _ = writeln!(x, "\t\t<time>{time}</time>");
        let _ = writeln!(
            x,
            "\t\t<description><![CDATA[{who}: {what}]]></description>"
        );
        let _ = writeln!(x, "\t\t<username><![CDATA[{who}]]></username>");
        let _ = writeln!(x, "\t</revision>");
        let _ = writeln!(x, "</pfsense>");
        x
    }

    /// An admin edits the configuration in pfSense's GUI (outside Mudmap): an alias is added and
    /// pfSense records who saved it.
    pub fn admin_edit(&mut self) {
        self.admin_edits += 1;
        self.aliases.push(Alias {
            name: format!("added_by_admin_{}", self.admin_edits),
            kind: "host",
            addresses: vec![format!("192.0.2.{}", self.admin_edits % 250 + 1)],
            description: "Added in the pfSense GUI".to_owned(),
        });
        self.changed();
    }

    /// The current config hash (`sha256:…`).
    pub fn hash(&self) -> &str {
        &self.hash
    }

    pub fn config_document(&self) -> ConfigDocument {
        let xml = self.config_xml();
        ConfigDocument {
            hash: config_hash(&xml),
            xml,
        }
    }

    fn wan_gateway(&self) -> String {
        let wan = self
            .interfaces
            .first()
            .map(|i| i.ipv4.as_str())
            .unwrap_or("198.18.0.2/24");
        let addr = wan.split('/').next().unwrap_or(wan);
        match addr.rsplit_once('.') {
            Some((net, _)) => format!("{net}.254"),
            None => addr.to_owned(),
        }
    }

    /// The device came back from a reboot: uptime starts again from zero.
    pub fn rebooted(&mut self) {
        self.booted = Instant::now();
        self.uptime_offset = 0;
    }

    /// Status > DHCP Leases: a few dynamic leases on LAN (one of them expired) and one static
    /// mapping, stable per device.
    pub fn dhcp_leases(&self) -> DhcpLeases {
        let lan = self.lan_prefix();
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
            .unwrap_or(0);
        let count = 3 + self.index % 4;
        let mut leases: Vec<DhcpLease> = (0..count)
            .map(|n| {
                let expired = n + 1 == count;
                DhcpLease {
                    ip: format!("{lan}.{}", 100 + n),
                    mac: self.mac(n),
                    hostname: CLIENTS[(self.index + n) as usize % CLIENTS.len()].to_owned(),
                    interface: "lan".to_owned(),
                    kind: "dynamic".to_owned(),
                    state: if expired { "expired" } else { "active" }.to_owned(),
                    online: !expired,
                    ends_at: Some(if expired {
                        now - 600
                    } else {
                        now + 3_600 + i64::from(n) * 300
                    }),
                }
            })
            .collect();
        leases.push(DhcpLease {
            ip: format!("{lan}.10"),
            mac: self.mac(99),
            hostname: "printer".to_owned(),
            interface: "lan".to_owned(),
            kind: "static".to_owned(),
            state: "static".to_owned(),
            online: true,
            ends_at: None,
        });
        leases.sort_by_key(|l| l.ip.rsplit('.').next().and_then(|o| o.parse::<u8>().ok()));
        DhcpLeases { leases }
    }

    /// Diagnostics > ARP Table: the WAN gateway (permanent) and every online LAN client.
    pub fn arp_table(&self) -> ArpTable {
        let mut entries = vec![ArpEntry {
            ip: self.wan_gateway(),
            mac: self.mac(200),
            interface: "igb0".to_owned(),
            hostname: String::new(),
            expires_secs: None,
        }];
        entries.extend(
            self.dhcp_leases()
                .leases
                .into_iter()
                .filter(|l| l.online)
                .enumerate()
                .map(|(n, l)| ArpEntry {
                    ip: l.ip,
                    mac: l.mac,
                    interface: "igb1".to_owned(),
                    hostname: format!("{}.{}", l.hostname, self.domain),
                    expires_secs: Some(1_200 - 37 * n as u64),
                }),
        );
        ArpTable { entries }
    }

    /// System > Package Manager > Installed Packages.
    pub fn packages(&self) -> Packages {
        let mut packages = vec![Package {
            name: "openvpn-client-export".to_owned(),
            version: "1.9.2".to_owned(),
            description: "Exports pre-configured OpenVPN Client configurations".to_owned(),
        }];
        if self.index.is_multiple_of(2) {
            packages.push(Package {
                name: "pfBlockerNG".to_owned(),
                version: "3.2.0_8".to_owned(),
                description: "IP and DNSBL blocking".to_owned(),
            });
        }
        if self.index.is_multiple_of(3) {
            packages.push(Package {
                name: "acme".to_owned(),
                version: "0.8".to_owned(),
                description: "Automated Certificate Management Environment".to_owned(),
            });
        }
        packages.sort_by_key(|p| p.name.to_lowercase());
        Packages { packages }
    }

    /// "10.x.y" of the LAN's /24.
    fn lan_prefix(&self) -> String {
        let lan = self
            .interfaces
            .iter()
            .find(|i| i.name == "lan")
            .map(|i| i.ipv4.as_str())
            .unwrap_or("10.0.0.1/24");
        let addr = lan.split('/').next().unwrap_or(lan);
        addr.rsplit_once('.')
            .map(|(net, _)| net.to_owned())
            .unwrap_or_else(|| addr.to_owned())
    }

    /// A stable, locally administered MAC address for client `n` of this device.
    fn mac(&self, n: u32) -> String {
        let [_, _, c, d] = self.index.to_be_bytes();
        format!(
            "02:6d:{c:02x}:{d:02x}:{:02x}:{:02x}",
            n / 256 % 256,
            n % 256
        )
    }

    /// Live figures as of now.
    /// `service.control`: start, stop or restart a service; returns it as `status` lists it.
    pub fn control_service(&mut self, name: &str, action: &str) -> Result<Service, ServiceError> {
        let service = self
            .services
            .iter_mut()
            .find(|s| s.name == name)
            .ok_or(ServiceError::NotFound)?;
        service.running = match action {
            "start" | "restart" => true,
            "stop" => false,
            _ => return Err(ServiceError::BadAction),
        };
        Ok(Service {
            name: service.name.to_owned(),
            description: service.description.to_owned(),
            status: if service.running {
                "running"
            } else {
                "stopped"
            }
            .to_owned(),
        })
    }

    pub fn status(&self) -> Status {
        let elapsed = self.booted.elapsed().as_secs_f64();
        let t = elapsed / 60.0 + self.phase;
        let wave = |period: f64, shift: f64| ((t / period + shift).sin() + 1.0) / 2.0;
        let cpu = 4.0 + 30.0 * wave(7.0, 0.0) * wave(3.0, 1.0);
        let total_mem: u64 = 4 << 30;
        let used_mem = (total_mem as f64 * (0.25 + 0.2 * wave(11.0, 2.0))) as u64;
        let rtt = 3.0 + 6.0 * wave(5.0, 0.5) + f64::from(self.index % 7);
        let traffic = |base: f64| (base * elapsed + base * 3_600.0) as u64;
        Status {
            uptime_secs: Some(self.uptime_offset + elapsed as u64),
            cpu: Cpu {
                usage_pct: Some(round2(cpu)),
                load: [round2(cpu / 25.0), round2(cpu / 30.0), round2(cpu / 35.0)],
                cores: Some(4),
            },
            memory: Some(Memory {
                total_bytes: total_mem,
                used_bytes: used_mem,
            }),
            disks: vec![Disk {
                mount: "/".to_owned(),
                total_bytes: 16_000_000_000,
                used_bytes: 3_200_000_000 + u64::from(self.index % 50) * 100_000_000,
            }],
            interfaces: self
                .interfaces
                .iter()
                .enumerate()
                .map(|(n, i)| Interface {
                    name: i.name.to_owned(),
                    device: i.device.to_owned(),
                    description: i.description.to_owned(),
                    status: "up".to_owned(),
                    media: "1000baseT <full-duplex>".to_owned(),
                    ipv4: Some(i.ipv4.clone()),
                    ipv6: i.ipv6.clone(),
                    rx_bytes: traffic(120_000.0 / (n as f64 + 1.0)),
                    tx_bytes: traffic(40_000.0 / (n as f64 + 1.0)),
                })
                .collect(),
            gateways: vec![Gateway {
                name: "WAN_GW".to_owned(),
                address: self.wan_gateway(),
                monitor: self.wan_gateway(),
                status: if self.gateway_down { "down" } else { "online" }.to_owned(),
                rtt_ms: if self.gateway_down { 0.0 } else { round2(rtt) },
                rttsd_ms: if self.gateway_down {
                    0.0
                } else {
                    round2(rtt / 10.0)
                },
                loss_pct: if self.gateway_down { 100.0 } else { 0.0 },
            }],
            services: self
                .services
                .iter()
                .map(|s| Service {
                    name: s.name.to_owned(),
                    description: s.description.to_owned(),
                    status: if s.running { "running" } else { "stopped" }.to_owned(),
                })
                .collect(),
            hostname: format!("{}.{}", self.hostname, self.domain),
            platform: "pfSense".to_owned(),
            dns_servers: self.dns_servers.clone(),
            config_hash: self.hash.clone(),
            errors: Vec::new(),
        }
    }
}

/// `sha256:<hex>` of the exact bytes.
pub fn config_hash(xml: &str) -> String {
    let digest = Sha256::digest(xml.as_bytes());
    let mut out = String::with_capacity(71);
    out.push_str("sha256:");
    for b in digest {
        let _ = write!(out, "{b:02x}");
    }
    out
}

/// A stable per-device number derived from the seed, the index and a purpose label.
pub fn derive(seed: u64, index: u32, purpose: &str) -> u64 {
    let bytes = derive_bytes(seed, index, purpose);
    u64::from_le_bytes([
        bytes[0], bytes[1], bytes[2], bytes[3], bytes[4], bytes[5], bytes[6], bytes[7],
    ])
}

/// 32 stable bytes derived from the seed, the index and a purpose label (e.g. key seeds).
pub fn derive_bytes(seed: u64, index: u32, purpose: &str) -> [u8; 32] {
    let mut h = Sha256::new();
    h.update(b"mudmap-sim/v1/");
    h.update(purpose.as_bytes());
    h.update(seed.to_le_bytes());
    h.update(index.to_le_bytes());
    h.finalize().into()
}

fn endpoint(value: &str, port: Option<&str>) -> String {
    let inner = match value {
        "any" => "<any></any>".to_owned(),
        "(self)" => "<network>(self)</network>".to_owned(),
        "lan" | "wan" | "opt1" => format!("<network>{value}</network>"),
        other => format!("<address>{}</address>", esc(other)),
    };
    match port {
        Some(p) => format!("{inner}<port>{}</port>", esc(p)),
        None => inner,
    }
}

fn esc(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

fn round2(v: f64) -> f64 {
    (v * 100.0).round() / 100.0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_same_seed_gives_the_same_device() {
        let (a, b) = (DeviceModel::new(7, 3), DeviceModel::new(7, 3));
        assert_eq!(a.config_xml(), b.config_xml());
        assert_eq!(a.uptime_offset, b.uptime_offset);
        assert_ne!(DeviceModel::new(8, 3).uptime_offset, a.uptime_offset);
    }

    #[test]
    fn the_fleet_mixes_editions_and_versions() {
        let versions: std::collections::HashSet<String> = (0..8)
            .map(|i| {
                let m = DeviceModel::new(1, i);
                format!("{} {}", m.version.edition, m.version.version)
            })
            .collect();
        assert_eq!(versions.len(), 4, "{versions:?}");
    }

    #[test]
    fn config_xml_has_the_pfsense_sections_and_a_stable_hash() {
        let m = DeviceModel::new(1, 42);
        let xml = m.config_xml();
        for tag in [
            "<pfsense>",
            "<system>",
            "<hostname>fw-0042</hostname>",
            "<interfaces>",
            "<wan>",
            "<lan>",
            "<opt1>",
            "<filter>",
            "<aliases>",
            "<gateways>",
        ] {
            assert!(xml.contains(tag), "missing {tag}");
        }
        let doc = m.config_document();
        assert!(doc.hash.starts_with("sha256:") && doc.hash.len() == 71);
        assert_eq!(doc.hash, m.status().config_hash);
    }

    #[test]
    fn status_is_plausible() {
        let s = DeviceModel::new(1, 5).status();
        assert!(s.cpu.usage_pct.is_some_and(|c| (0.0..=100.0).contains(&c)));
        assert!(s.memory.is_some_and(|m| m.used_bytes < m.total_bytes));
        assert_eq!(s.interfaces.len(), 3);
        assert_eq!(s.gateways[0].status, "online");
        assert!(s
            .services
            .iter()
            .any(|svc| svc.name == "unbound" && svc.status == "running"));
    }
}
