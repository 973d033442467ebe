//! The typed configuration model: the sections people manage on a pfSense firewall, read from
//! the order-preserving tree of [`super::xml`].
//!
//! The tree stays the source of truth: a [`Config`] is the tree plus typed readings of it, so every
//! element the model does not understand is kept, in order, and parse → serialise → parse gives an
//! equal model. The typed records ([`Rule`], [`Alias`], [`PortForward`], …) are what diff, search
//! and the editors work with; each carries its position so it can be found in the tree again.

use super::xml::{self, Element, XmlError};

/// A parsed `config.xml`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Config {
    pub root: Element,
}

/// Why a configuration could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ConfigError {
    #[error("the configuration is not well-formed XML: {0}")]
    Xml(#[from] XmlError),
    #[error("the document's root is <{0}>, not <pfsense>: this is not a pfSense configuration")]
    NotPfSense(String),
}

impl Config {
    /// Parse `config.xml`. Never panics; anything that is not a pfSense configuration is an error.
    pub fn parse(xml: &str) -> Result<Self, ConfigError> {
        let root = xml::parse(xml)?;
        if root.name != "pfsense" {
            return Err(ConfigError::NotPfSense(root.name));
        }
        Ok(Self { root })
    }

    /// The document as pfSense writes it (tab-indented, with the declaration).
    pub fn to_xml(&self) -> String {
        self.root.to_document()
    }

    /// The configuration schema version (`<version>`, e.g. "23.3").
    pub fn version(&self) -> &str {
        self.root.text_of("version")
    }

    /// The `item` children of the element at `path` (none when it is absent).
    fn items<'a>(&'a self, path: &str, item: &'a str) -> impl Iterator<Item = &'a Element> + 'a {
        self.root
            .at(path)
            .into_iter()
            .flat_map(move |s| s.all(item))
    }

    pub fn system(&self) -> System {
        System::from(self.root.child("system"))
    }

    /// Firewall rules in pfSense's order (which is evaluation order per interface).
    pub fn rules(&self) -> Vec<Rule> {
        self.items("filter", "rule")
            .enumerate()
            .map(Rule::from)
            .collect()
    }

    /// Rule separators (Firewall > Rules), per interface.
    pub fn separators(&self) -> Vec<Separator> {
        let Some(groups) = self.root.at("filter/separator") else {
            return Vec::new();
        };
        groups
            .children
            .iter()
            .flat_map(|interface| {
                interface.children.iter().map(move |sep| Separator {
                    interface: interface.name.clone(),
                    key: sep.name.clone(),
                    row: sep.text_of("row").to_owned(),
                    text: sep.text_of("text").to_owned(),
                    color: sep.text_of("color").to_owned(),
                })
            })
            .collect()
    }

    pub fn aliases(&self) -> Vec<Alias> {
        self.items("aliases", "alias")
            .enumerate()
            .map(Alias::from)
            .collect()
    }

    /// NAT port forwards (Firewall > NAT > Port Forward).
    pub fn port_forwards(&self) -> Vec<PortForward> {
        self.items("nat", "rule")
            .enumerate()
            .map(PortForward::from)
            .collect()
    }

    /// Outbound NAT: the mode and the manual rules.
    pub fn outbound_nat(&self) -> OutboundNat {
        let outbound = self.root.at("nat/outbound");
        OutboundNat {
            mode: outbound.map_or("", |o| o.text_of("mode")).to_owned(),
            rules: self
                .items("nat/outbound", "rule")
                .enumerate()
                .map(OutboundRule::from)
                .collect(),
        }
    }

    /// 1:1 NAT mappings.
    pub fn one_to_one(&self) -> Vec<OneToOne> {
        self.items("nat", "onetoone")
            .enumerate()
            .map(OneToOne::from)
            .collect()
    }

    /// Interface assignments, in the configuration's order (wan, lan, opt1, …).
    pub fn interfaces(&self) -> Vec<Interface> {
        self.root
            .child("interfaces")
            .map(|i| i.children.iter().map(Interface::from).collect())
            .unwrap_or_default()
    }

    pub fn vlans(&self) -> Vec<Vlan> {
        self.items("vlans", "vlan").map(Vlan::from).collect()
    }

    pub fn gateways(&self) -> Vec<GatewayItem> {
        self.items("gateways", "gateway_item")
            .map(GatewayItem::from)
            .collect()
    }

    pub fn static_routes(&self) -> Vec<StaticRoute> {
        self.items("staticroutes", "route")
            .map(StaticRoute::from)
            .collect()
    }

    pub fn users(&self) -> Vec<User> {
        self.items("system", "user").map(User::from).collect()
    }

    pub fn groups(&self) -> Vec<Group> {
        self.items("system", "group").map(Group::from).collect()
    }

    /// Installed packages (System > Package Manager).
    pub fn packages(&self) -> Vec<Package> {
        self.items("installedpackages", "package")
            .map(|e| Package {
                name: e.text_of("name").to_owned(),
                version: e.text_of("version").to_owned(),
                descr: e.text_of("descr").to_owned(),
            })
            .collect()
    }
}

fn texts(element: &Element, name: &str) -> Vec<String> {
    element.all(name).map(|e| e.text.clone()).collect()
}

/// System > General Setup and the settings around it.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct System {
    pub hostname: String,
    pub domain: String,
    pub dns_servers: Vec<String>,
    pub timezone: String,
    pub timeservers: String,
    /// System > Advanced > Admin Access: the web GUI's protocol and port ("" = default).
    pub webgui_protocol: String,
    pub webgui_port: String,
    pub ssh_enabled: bool,
    pub ssh_port: String,
}

impl From<Option<&Element>> for System {
    fn from(system: Option<&Element>) -> Self {
        let Some(s) = system else {
            return Self::default();
        };
        Self {
            hostname: s.text_of("hostname").to_owned(),
            domain: s.text_of("domain").to_owned(),
            dns_servers: texts(s, "dnsserver")
                .into_iter()
                .filter(|d| !d.is_empty())
                .collect(),
            timezone: s.text_of("timezone").to_owned(),
            timeservers: s.text_of("timeservers").to_owned(),
            webgui_protocol: s.at("webgui/protocol").map_or("", |e| &e.text).to_owned(),
            webgui_port: s.at("webgui/port").map_or("", |e| &e.text).to_owned(),
            ssh_enabled: s.at("ssh/enable").is_some(),
            ssh_port: s.at("ssh/port").map_or("", |e| &e.text).to_owned(),
        }
    }
}

/// A rule's source or destination.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Endpoint {
    /// `<any/>`.
    pub any: bool,
    /// An interface network or macro: "lan", "wanip", "(self)", "opt1ip".
    pub network: String,
    /// An address, subnet or alias name.
    pub address: String,
    /// A port, range ("1000-2000" or "1000:2000") or port alias.
    pub port: String,
    /// `<not/>`: everything but this.
    pub not: bool,
}

impl From<Option<&Element>> for Endpoint {
    fn from(element: Option<&Element>) -> Self {
        let Some(e) = element else {
            return Self::default();
        };
        Self {
            any: e.has("any"),
            network: e.text_of("network").to_owned(),
            address: e.text_of("address").to_owned(),
            port: e.text_of("port").to_owned(),
            not: e.has("not"),
        }
    }
}

/// One firewall rule (Firewall > Rules).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Rule {
    /// Its position among all `filter/rule` elements.
    pub index: usize,
    /// pfSense's stable id of the rule.
    pub tracker: String,
    /// pass, block, reject (floating: also match).
    pub kind: String,
    /// The interface(s): "lan", or a comma-separated list on floating rules.
    pub interface: String,
    pub floating: bool,
    /// inet, inet6, inet46.
    pub ipprotocol: String,
    /// "" (any), tcp, udp, tcp/udp, icmp, …
    pub protocol: String,
    pub source: Endpoint,
    pub destination: Endpoint,
    pub gateway: String,
    pub disabled: bool,
    pub log: bool,
    pub descr: String,
    /// The NAT port forward this rule belongs to, if any.
    pub associated_rule_id: String,
}

impl From<(usize, &Element)> for Rule {
    fn from((index, e): (usize, &Element)) -> Self {
        Self {
            index,
            tracker: e.text_of("tracker").to_owned(),
            kind: e.text_of("type").to_owned(),
            interface: e.text_of("interface").to_owned(),
            floating: e.text_of("floating") == "yes",
            ipprotocol: e.text_of("ipprotocol").to_owned(),
            protocol: e.text_of("protocol").to_owned(),
            source: Endpoint::from(e.child("source")),
            destination: Endpoint::from(e.child("destination")),
            gateway: e.text_of("gateway").to_owned(),
            disabled: e.has("disabled"),
            log: e.has("log"),
            descr: e.text_of("descr").to_owned(),
            associated_rule_id: e.text_of("associated-rule-id").to_owned(),
        }
    }
}

/// A separator line between rules.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Separator {
    /// The interface ("lan", "floatingrules").
    pub interface: String,
    /// Its element name ("sep0").
    pub key: String,
    /// Where it stands: "fr3" (before the interface's fourth rule).
    pub row: String,
    pub text: String,
    pub color: String,
}

/// An alias (Firewall > Aliases).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Alias {
    pub index: usize,
    pub name: String,
    /// host, network, port, url, urltable, url_ports, urltable_ports.
    pub kind: String,
    /// Its entries, in order (space-separated in the configuration).
    pub entries: Vec<String>,
    /// Each entry's description, in order (`||`-separated in the configuration).
    pub details: Vec<String>,
    pub descr: String,
}

impl From<(usize, &Element)> for Alias {
    fn from((index, e): (usize, &Element)) -> Self {
        let detail = e.text_of("detail");
        Self {
            index,
            name: e.text_of("name").to_owned(),
            kind: e.text_of("type").to_owned(),
            entries: e
                .text_of("address")
                .split_whitespace()
                .map(str::to_owned)
                .collect(),
            details: if detail.is_empty() {
                Vec::new()
            } else {
                detail.split("||").map(str::to_owned).collect()
            },
            descr: e.text_of("descr").to_owned(),
        }
    }
}

/// A NAT port forward (Firewall > NAT > Port Forward).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PortForward {
    pub index: usize,
    pub interface: String,
    pub protocol: String,
    pub source: Endpoint,
    pub destination: Endpoint,
    /// The internal address traffic goes to.
    pub target: String,
    pub local_port: String,
    pub disabled: bool,
    pub descr: String,
    /// The tracker of the filter rule made for it ("pass" when passed without a rule).
    pub associated_rule_id: String,
}

impl From<(usize, &Element)> for PortForward {
    fn from((index, e): (usize, &Element)) -> Self {
        Self {
            index,
            interface: e.text_of("interface").to_owned(),
            protocol: e.text_of("protocol").to_owned(),
            source: Endpoint::from(e.child("source")),
            destination: Endpoint::from(e.child("destination")),
            target: e.text_of("target").to_owned(),
            local_port: e.text_of("local-port").to_owned(),
            disabled: e.has("disabled"),
            descr: e.text_of("descr").to_owned(),
            associated_rule_id: e.text_of("associated-rule-id").to_owned(),
        }
    }
}

/// Outbound NAT: automatic, hybrid, advanced (manual) or disabled, and the manual rules.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct OutboundNat {
    /// automatic, hybrid, advanced, disabled ("" = automatic).
    pub mode: String,
    pub rules: Vec<OutboundRule>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutboundRule {
    pub index: usize,
    pub interface: String,
    pub protocol: String,
    pub source: Endpoint,
    pub destination: Endpoint,
    /// The translation address ("" = the interface address).
    pub target: String,
    pub nonat: bool,
    pub disabled: bool,
    pub descr: String,
}

impl From<(usize, &Element)> for OutboundRule {
    fn from((index, e): (usize, &Element)) -> Self {
        Self {
            index,
            interface: e.text_of("interface").to_owned(),
            protocol: e.text_of("protocol").to_owned(),
            source: Endpoint::from(e.child("source")),
            destination: Endpoint::from(e.child("destination")),
            target: e.text_of("target").to_owned(),
            nonat: e.has("nonat"),
            disabled: e.has("disabled"),
            descr: e.text_of("descr").to_owned(),
        }
    }
}

/// A 1:1 NAT mapping.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OneToOne {
    pub index: usize,
    pub interface: String,
    /// The external address.
    pub external: String,
    pub source: Endpoint,
    pub destination: Endpoint,
    pub disabled: bool,
    pub descr: String,
}

impl From<(usize, &Element)> for OneToOne {
    fn from((index, e): (usize, &Element)) -> Self {
        Self {
            index,
            interface: e.text_of("interface").to_owned(),
            external: e.text_of("external").to_owned(),
            source: Endpoint::from(e.child("source")),
            destination: Endpoint::from(e.child("destination")),
            disabled: e.has("disabled"),
            descr: e.text_of("descr").to_owned(),
        }
    }
}

/// An interface assignment (Interfaces > Assignments).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Interface {
    /// pfSense's name: wan, lan, opt1, …
    pub name: String,
    /// The network device: igb0, em1, igb1.10 (a VLAN).
    pub device: String,
    pub descr: String,
    pub enabled: bool,
    /// An address, or dhcp / pppoe / …; "" when none.
    pub ipaddr: String,
    pub subnet: String,
    pub ipaddrv6: String,
    pub subnetv6: String,
    pub gateway: String,
}

impl From<&Element> for Interface {
    fn from(e: &Element) -> Self {
        Self {
            name: e.name.clone(),
            device: e.text_of("if").to_owned(),
            descr: e.text_of("descr").to_owned(),
            enabled: e.has("enable"),
            ipaddr: e.text_of("ipaddr").to_owned(),
            subnet: e.text_of("subnet").to_owned(),
            ipaddrv6: e.text_of("ipaddrv6").to_owned(),
            subnetv6: e.text_of("subnetv6").to_owned(),
            gateway: e.text_of("gateway").to_owned(),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Vlan {
    /// The parent device (igb1).
    pub parent: String,
    pub tag: String,
    pub pcp: String,
    pub descr: String,
    /// The VLAN's device (igb1.10).
    pub device: String,
}

impl From<&Element> for Vlan {
    fn from(e: &Element) -> Self {
        Self {
            parent: e.text_of("if").to_owned(),
            tag: e.text_of("tag").to_owned(),
            pcp: e.text_of("pcp").to_owned(),
            descr: e.text_of("descr").to_owned(),
            device: e.text_of("vlanif").to_owned(),
        }
    }
}

/// A configured gateway (System > Routing > Gateways).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GatewayItem {
    pub name: String,
    pub interface: String,
    /// Its address ("dynamic" for DHCP gateways).
    pub address: String,
    pub ipprotocol: String,
    pub monitor: String,
    pub monitor_disabled: bool,
    pub weight: String,
    pub descr: String,
}

impl From<&Element> for GatewayItem {
    fn from(e: &Element) -> Self {
        Self {
            name: e.text_of("name").to_owned(),
            interface: e.text_of("interface").to_owned(),
            address: e.text_of("gateway").to_owned(),
            ipprotocol: e.text_of("ipprotocol").to_owned(),
            monitor: e.text_of("monitor").to_owned(),
            monitor_disabled: e.has("monitor_disable"),
            weight: e.text_of("weight").to_owned(),
            descr: e.text_of("descr").to_owned(),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StaticRoute {
    pub network: String,
    pub gateway: String,
    pub disabled: bool,
    pub descr: String,
}

impl From<&Element> for StaticRoute {
    fn from(e: &Element) -> Self {
        Self {
            network: e.text_of("network").to_owned(),
            gateway: e.text_of("gateway").to_owned(),
            disabled: e.has("disabled"),
            descr: e.text_of("descr").to_owned(),
        }
    }
}

/// A user (System > User Manager). Password hashes and keys are secrets: they are not part of
/// this reading (they stay in the tree, and only revealed views show them).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct User {
    pub name: String,
    pub uid: String,
    pub descr: String,
    /// system (admin) or user.
    pub scope: String,
    pub groups: Vec<String>,
    pub privileges: Vec<String>,
    pub disabled: bool,
    pub expires: String,
    /// How many authorized SSH keys it has (the keys themselves are in the tree).
    pub authorized_keys: usize,
}

impl From<&Element> for User {
    fn from(e: &Element) -> Self {
        use base64::Engine as _;
        let keys = base64::engine::general_purpose::STANDARD
            .decode(e.text_of("authorizedkeys").trim())
            .map(|k| {
                String::from_utf8_lossy(&k)
                    .lines()
                    .filter(|l| !l.trim().is_empty() && !l.trim_start().starts_with('#'))
                    .count()
            })
            .unwrap_or(0);
        Self {
            name: e.text_of("name").to_owned(),
            uid: e.text_of("uid").to_owned(),
            descr: e.text_of("descr").to_owned(),
            scope: e.text_of("scope").to_owned(),
            groups: texts(e, "groupname"),
            privileges: texts(e, "priv"),
            disabled: e.has("disabled"),
            expires: e.text_of("expires").to_owned(),
            authorized_keys: keys,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Group {
    pub name: String,
    pub gid: String,
    pub descr: String,
    pub scope: String,
    /// Member uids.
    pub members: Vec<String>,
    pub privileges: Vec<String>,
}

impl From<&Element> for Group {
    fn from(e: &Element) -> Self {
        Self {
            name: e.text_of("name").to_owned(),
            gid: e.text_of("gid").to_owned(),
            descr: e.text_of("description").to_owned(),
            scope: e.text_of("scope").to_owned(),
            members: texts(e, "member"),
            privileges: texts(e, "priv"),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Package {
    pub name: String,
    pub version: String,
    pub descr: String,
}
