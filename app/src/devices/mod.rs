//! Devices (pfSense firewalls) of the current organisation: add, edit, delete, list. Types, the
//! input rules (shared: the browser shows them inline, the server enforces them) and the server
//! functions live here; the page in [`page`].

pub mod activate_dialog;
pub mod activation;
pub mod backups;
pub mod detail;
pub mod detail_page;
pub mod history_tab;
pub mod page;
pub mod power;
pub mod status;
pub mod status_tab;

use std::collections::BTreeMap;
use std::net::{Ipv4Addr, Ipv6Addr};

use leptos::prelude::*;
use serde::{Deserialize, Serialize};

use crate::error::AppError;

/// Where a device is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DeviceState {
    /// Registered, not yet activated: Mudmap has no access to it.
    Inactive,
    Activating,
    Active,
    /// Its host key changed: refused until someone looks.
    Quarantined,
}

impl DeviceState {
    pub fn as_str(self) -> &'static str {
        match self {
            DeviceState::Inactive => "inactive",
            DeviceState::Activating => "activating",
            DeviceState::Active => "active",
            DeviceState::Quarantined => "quarantined",
        }
    }

    pub fn parse(text: &str) -> Option<Self> {
        [
            DeviceState::Inactive,
            DeviceState::Activating,
            DeviceState::Active,
            DeviceState::Quarantined,
        ]
        .into_iter()
        .find(|s| s.as_str() == text)
    }

    pub fn label(self) -> &'static str {
        match self {
            DeviceState::Inactive => "Inactive",
            DeviceState::Activating => "Activating",
            DeviceState::Active => "Active",
            DeviceState::Quarantined => "Quarantined",
        }
    }
}

/// A device as lists show it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Device {
    pub id: String,
    pub name: String,
    pub host: String,
    pub port: u16,
    pub tags: Vec<String>,
    pub notes: String,
    pub state: DeviceState,
    /// e.g. "CE 2.7.2", once known.
    pub pfsense: Option<String>,
    /// The pinned host key's fingerprint (`SHA256:…`), once activated.
    pub fingerprint: Option<String>,
    /// When quarantined: the fingerprint of the key the device presented instead.
    pub presented_fingerprint: Option<String>,
    pub agent_version: Option<String>,
    pub created_at_ms: i64,
}

/// What the add and edit forms send (as typed).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeviceInput {
    pub name: String,
    pub host: String,
    pub port: String,
    pub tags: String,
    pub notes: String,
}

/// A [`DeviceInput`] that passed [`validate`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ValidDevice {
    pub name: String,
    /// Lowercased; IPv6 without brackets.
    pub host: String,
    pub port: u16,
    pub tags: Vec<String>,
    pub notes: String,
}

/// Problems by field name (`name`, `host`, `port`, `tags`, `notes`), as sentences.
pub type FieldErrors = BTreeMap<&'static str, String>;

/// Check a device form. The same rules run in the browser (inline errors) and on the server.
pub fn validate(input: &DeviceInput) -> Result<ValidDevice, FieldErrors> {
    let mut errors = FieldErrors::new();
    let name = input.name.trim().to_owned();
    if name.is_empty() {
        errors.insert(
            "name",
            "Enter a name, e.g. the customer and site: \"acme-hq\".".to_owned(),
        );
    } else if name.chars().count() > 64 || name.chars().any(char::is_control) {
        errors.insert(
            "name",
            "Use at most 64 characters, without control characters.".to_owned(),
        );
    }
    let host = normalize_host(&input.host);
    if let Err(problem) = &host {
        errors.insert("host", problem.clone());
    }
    let port = match input.port.trim() {
        "" => Ok(22),
        text => text.parse::<u16>().ok().filter(|p| *p > 0).ok_or_else(|| {
            "The SSH port is a number from 1 to 65535 (pfSense uses 22).".to_owned()
        }),
    };
    if let Err(problem) = &port {
        errors.insert("port", problem.clone());
    }
    let mut tags: Vec<String> = Vec::new();
    for tag in input
        .tags
        .split(',')
        .map(|t| t.trim().to_lowercase())
        .filter(|t| !t.is_empty())
    {
        let ok = tag.len() <= 32
            && tag
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.' | ' '));
        if !ok {
            errors.insert(
                "tags",
                format!("\"{tag}\" is not a tag: use letters, digits, - _ . and spaces, at most 32 characters; separate tags with commas."),
            );
        } else if !tags.contains(&tag) {
            tags.push(tag);
        }
    }
    if tags.len() > 20 {
        errors.insert("tags", "Use at most 20 tags.".to_owned());
    }
    let notes = input.notes.trim().to_owned();
    if notes.chars().count() > 2000 {
        errors.insert("notes", "Keep notes to 2,000 characters.".to_owned());
    }
    match (host, port) {
        (Ok(host), Ok(port)) if errors.is_empty() => Ok(ValidDevice {
            name,
            host,
            port,
            tags,
            notes,
        }),
        _ => Err(errors),
    }
}

/// An IPv4 or IPv6 address or a DNS name, lowercased; or why it is not one.
pub fn normalize_host(input: &str) -> Result<String, String> {
    let host = input.trim().to_lowercase();
    if host.is_empty() {
        return Err(
            "Enter the firewall's address: an IPv4 or IPv6 address or a DNS name.".to_owned(),
        );
    }
    if host.contains("://") || host.contains('/') || host.contains('@') {
        return Err("Enter only the host (e.g. 192.0.2.1 or fw.example.com), without http://, a user or a path.".to_owned());
    }
    let unbracketed = host
        .strip_prefix('[')
        .and_then(|h| h.strip_suffix(']'))
        .unwrap_or(&host);
    if unbracketed.parse::<Ipv6Addr>().is_ok() {
        return Ok(unbracketed.to_owned());
    }
    if host.parse::<Ipv4Addr>().is_ok() {
        return Ok(host);
    }
    let looks_numeric = host.chars().all(|c| c.is_ascii_digit() || c == '.');
    let labels_ok = host.len() <= 253
        && host.trim_end_matches('.').split('.').all(|label| {
            !label.is_empty()
                && label.len() <= 63
                && !label.starts_with('-')
                && !label.ends_with('-')
                && label.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
        });
    if looks_numeric || !labels_ok {
        return Err(format!(
            "\"{}\" is not an IP address or a DNS name. Check for typos; a port goes in the SSH port field.",
            input.trim()
        ));
    }
    Ok(host.trim_end_matches('.').to_owned())
}

/// The current organisation's devices.
#[server(prefix = "/api", endpoint = "devices/list")]
pub async fn list_devices() -> Result<Vec<Device>, AppError> {
    use crate::services::{caller, respond, services};
    let caller = respond(caller())?;
    respond(services()?.devices.list(&caller).await)
}

/// Register a device (inactive until activated). Fields as typed; see [`validate`].
#[server(prefix = "/api", endpoint = "devices/add")]
pub async fn add_device(
    name: String,
    host: String,
    port: String,
    tags: String,
    notes: String,
) -> Result<Device, AppError> {
    use crate::services::{caller, respond, services};
    let caller = respond(caller())?;
    let input = DeviceInput {
        name,
        host,
        port,
        tags,
        notes,
    };
    respond(services()?.devices.add(&caller, input).await)
}

/// Change a device's name, address, tags or notes. A new address forgets the pinned host key.
#[server(prefix = "/api", endpoint = "devices/update")]
pub async fn update_device(
    id: String,
    name: String,
    host: String,
    port: String,
    tags: String,
    notes: String,
) -> Result<Device, AppError> {
    use crate::services::{caller, respond, services};
    let caller = respond(caller())?;
    let input = DeviceInput {
        name,
        host,
        port,
        tags,
        notes,
    };
    respond(services()?.devices.update(&caller, id, input).await)
}

/// Delete a device. An activated device's key line and agent are removed from it first, and the
/// removal proven; when that fails the error says what stays, and `force` deletes the record anyway.
#[server(prefix = "/api", endpoint = "devices/delete")]
pub async fn delete_device(id: String, #[server(default)] force: bool) -> Result<(), AppError> {
    use crate::services::{caller, respond, services};
    let caller = respond(caller())?;
    respond(services()?.devices.delete(&caller, id, force).await)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn input(host: &str, port: &str) -> DeviceInput {
        DeviceInput {
            name: "acme-hq".into(),
            host: host.into(),
            port: port.into(),
            tags: "Acme, hq , acme".into(),
            notes: String::new(),
        }
    }

    #[test]
    fn hosts_ports_and_tags_are_checked_and_normalised() {
        let ok = validate(&input("FW.Example.com.", "")).unwrap();
        assert_eq!((ok.host.as_str(), ok.port), ("fw.example.com", 22));
        assert_eq!(ok.tags, vec!["acme", "hq"]);
        assert_eq!(
            validate(&input("[2001:DB8::1]", "2222")).unwrap().host,
            "2001:db8::1"
        );
        assert_eq!(
            validate(&input("192.0.2.10", "22")).unwrap().host,
            "192.0.2.10"
        );
        for bad in [
            "",
            "https://fw.example.com",
            "fw.example.com/x",
            "999.1.1.1",
            "-bad.example",
            "a b",
            "root@fw",
        ] {
            let errors = validate(&input(bad, "22")).unwrap_err();
            assert!(errors.contains_key("host"), "{bad:?}");
        }
        for bad in ["0", "65536", "ssh", "-1"] {
            assert!(
                validate(&input("fw", bad))
                    .unwrap_err()
                    .contains_key("port"),
                "{bad}"
            );
        }
        let mut bad_tags = input("fw", "22");
        bad_tags.tags = "ok, not/ok".into();
        assert!(validate(&bad_tags).unwrap_err().contains_key("tags"));
        let mut no_name = input("fw", "22");
        no_name.name = "  ".into();
        assert!(validate(&no_name).unwrap_err().contains_key("name"));
    }
}
