//! One simulated device: identity (host key, credentials), configuration model, latency and the
//! faults that can be switched on and off while it runs.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::atomic::AtomicUsize;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use russh::keys::ssh_key::private::Ed25519Keypair;
use russh::keys::{PrivateKey, PublicKey};
use serde::{Deserialize, Serialize};
use tokio::sync::watch;

use super::latency::Latency;
use super::model::{derive_bytes, DeviceModel};
use crate::activation::remote;
use crate::agent::keys;

/// How a key logs in (see [`SimDevice::login_with_key`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyLogin {
    /// root, through a Mudmap line: the forced command, the agent as uid 0.
    Root,
    /// The pre-1.2.0 service account: the forced command, the agent as uid 2000.
    Legacy,
}

/// The admin's own key every simulated firewall starts with (it must survive every Mudmap change).
pub const ADMIN_OWN_KEY: &str =
    "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIBxrRPzBWx0aNj2TxQPiNLSDLxsdglm6rf0T3KP6ZXYD admin@laptop";

/// `access.*`'s refusal of a line that is not exactly Mudmap's template.
pub const INVALID_LINE: &str = "authorized_key must be exactly Mudmap's line: its forced command and restrictions, an ssh-ed25519 key and a mudmap:<instance>:<device> comment";

/// Failed password attempts from one address before it is locked out (pfSense's sshguard).
pub const LOCKOUT_THRESHOLD: u32 = 15;
/// Channels one connection may have open at once (OpenSSH's MaxSessions).
pub const MAX_SESSIONS: usize = 10;

/// Faults that can be switched at run time.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Faults {
    /// Nothing listens: connections are refused by the kernel.
    pub refuse: bool,
    /// Connections are accepted but no byte moves in either direction.
    pub stall: bool,
    /// The device presents a different host key (as after a reinstall, or an impostor).
    pub host_key_changed: bool,
    /// Bumped to drop every open connection of the device at once.
    pub drops: u64,
    /// sshd refuses passwords (pfSense's "SSHd Key Only").
    pub key_only: bool,
    /// The box is not pfSense (no /etc/platform).
    pub not_pfsense: bool,
    /// Writing the agent fails (a full or read-only file system).
    pub agent_install_fails: bool,
    /// The agent's `access.ensure` and `access.remove` fail (pfSense could not save the change).
    pub account_fails: bool,
    /// The WAN gateway's monitor IP stops answering (dpinger reports it down, 100 % loss).
    pub gateway_down: bool,
    /// Mudmap's key still logs in, but not as root (as if its line had moved to a normal account):
    /// the agent answers `not_root` and cannot be replaced.
    #[serde(default)]
    pub no_root: bool,
}

/// A partial update of [`Faults`]; absent fields keep their value.
#[derive(Debug, Clone, Copy, Default, Deserialize)]
pub struct FaultPatch {
    pub refuse: Option<bool>,
    pub stall: Option<bool>,
    pub host_key_changed: Option<bool>,
    /// `true` drops every open connection now.
    #[serde(default)]
    pub drop_connections: bool,
    /// `true` edits the configuration now, as an admin in pfSense's GUI would (an alias added).
    #[serde(default)]
    pub edit_config: bool,
    pub key_only: Option<bool>,
    pub not_pfsense: Option<bool>,
    pub agent_install_fails: Option<bool>,
    pub account_fails: Option<bool>,
    pub gateway_down: Option<bool>,
    pub no_root: Option<bool>,
}

impl Faults {
    pub fn apply(&mut self, patch: FaultPatch) {
        if let Some(v) = patch.refuse {
            self.refuse = v;
        }
        if let Some(v) = patch.stall {
            self.stall = v;
        }
        if let Some(v) = patch.host_key_changed {
            self.host_key_changed = v;
        }
        if patch.drop_connections {
            self.drops += 1;
        }
        for (field, value) in [
            (&mut self.key_only, patch.key_only),
            (&mut self.not_pfsense, patch.not_pfsense),
            (&mut self.agent_install_fails, patch.agent_install_fails),
            (&mut self.account_fails, patch.account_fails),
            (&mut self.gateway_down, patch.gateway_down),
            (&mut self.no_root, patch.no_root),
        ] {
            if let Some(v) = value {
                *field = v;
            }
        }
    }
}

#[derive(Debug, Default)]
struct Lockout {
    failures: u32,
    locked_until: Option<Instant>,
}

pub struct SimDevice {
    pub index: u32,
    pub port: u16,
    pub host_key: PrivateKey,
    pub changed_host_key: PrivateKey,
    /// Password of `root` and `admin`.
    pub password: String,
    /// The `admin` account's authorized keys (System → User Manager → admin), which pfSense
    /// writes to root's `authorized_keys`: the admin's own keys and Mudmap's lines.
    pub admin_keys: Mutex<String>,
    /// The key of the service account `mudmap` that agents before 1.2.0 created (a normal
    /// uid: its agent has no root).
    pub legacy_account: Mutex<Option<PublicKey>>,
    /// Whether the agent file is on the device.
    pub agent_installed: std::sync::atomic::AtomicBool,
    pub model: Mutex<DeviceModel>,
    pub latency: Latency,
    pub lockout_duration: Duration,
    /// Most channels any one connection had open at once (tests check the MaxSessions limit).
    pub max_channels_seen: AtomicUsize,
    /// Channel opens refused because a connection already had ten.
    pub channels_refused: AtomicUsize,
    /// SSH sessions accepted so far (tests count reconnects).
    pub sessions_started: AtomicUsize,
    /// How long the device is down after `diag.reboot`.
    pub reboot_duration: Duration,
    faults: watch::Sender<Faults>,
    lockouts: Mutex<HashMap<IpAddr, Lockout>>,
}

impl SimDevice {
    pub fn new(seed: u64, index: u32, port: u16, password: String, latency: Latency) -> Self {
        let (faults, _) = watch::channel(Faults::default());
        Self {
            index,
            port,
            host_key: ed25519_from(
                derive_bytes(seed, index, "host-key"),
                &format!("fw-{index:04}"),
            ),
            changed_host_key: ed25519_from(
                derive_bytes(seed, index, "host-key-changed"),
                "impostor",
            ),
            password,
            admin_keys: Mutex::new(format!("{ADMIN_OWN_KEY}\n")),
            legacy_account: Mutex::new(None),
            agent_installed: std::sync::atomic::AtomicBool::new(false),
            model: Mutex::new(DeviceModel::new(seed, index)),
            latency,
            lockout_duration: Duration::from_secs(3_600),
            max_channels_seen: AtomicUsize::new(0),
            channels_refused: AtomicUsize::new(0),
            sessions_started: AtomicUsize::new(0),
            reboot_duration: Duration::from_secs(8),
            faults,
            lockouts: Mutex::new(HashMap::new()),
        }
    }

    pub fn faults(&self) -> Faults {
        *self.faults.borrow()
    }

    pub fn watch_faults(&self) -> watch::Receiver<Faults> {
        self.faults.subscribe()
    }

    pub fn patch_faults(&self, patch: FaultPatch) {
        self.faults.send_modify(|f| f.apply(patch));
        if let (Some(down), Ok(mut model)) = (patch.gateway_down, self.model.lock()) {
            model.gateway_down = down;
        }
        if let (true, Ok(mut model)) = (patch.edit_config, self.model.lock()) {
            model.admin_edit();
        }
    }

    /// Pre-authorise `key` as Mudmap's line `comment` (the demo and benchmark fleets start out
    /// activated).
    pub fn authorize(&self, key: &PublicKey, comment: &str) {
        if let Ok(public) = key.to_openssh() {
            let line = keys::line(&public, comment);
            if let Some(parsed) = keys::parse(&line) {
                if let Ok(mut text) = self.admin_keys.lock() {
                    *text = keys::ensure(&text, &line, &parsed).text;
                }
            }
        }
    }

    /// Who logs in with `key` as `user`: root through a Mudmap line (forced command), or the
    /// legacy `mudmap` account. None: refused.
    pub fn login_with_key(&self, user: &str, key: &PublicKey) -> Option<KeyLogin> {
        let Ok(blob) = key.to_openssh() else {
            return None;
        };
        let wanted = blob.split_whitespace().nth(1)?;
        match user {
            remote::ROOT_USER => self.admin_keys.lock().ok().and_then(|text| {
                text.lines()
                    .filter_map(keys::parse)
                    .any(|line| line.key == wanted)
                    .then_some(KeyLogin::Root)
            }),
            remote::LEGACY_USER => self
                .legacy_account
                .lock()
                .ok()
                .and_then(|k| k.as_ref().map(|k| k.key_data() == key.key_data()))
                .and_then(|same| same.then_some(KeyLogin::Legacy)),
            _ => None,
        }
    }

    /// Whether any Mudmap line is on the device (the control API's `service_account`).
    pub fn has_mudmap_key(&self) -> bool {
        self.admin_keys
            .lock()
            .map(|text| text.lines().any(|l| l.contains(" mudmap:")))
            .unwrap_or(false)
    }

    /// `access.ensure` on the model: as the PHP agent on `config.xml`.
    pub fn access_ensure(&self, line: &str) -> Result<keys::Ensured, String> {
        let parsed = keys::parse(line).ok_or_else(|| INVALID_LINE.to_owned())?;
        let mut text = self.admin_keys.lock().map_err(|_| "lock".to_owned())?;
        let done = keys::ensure(&text, line, &parsed);
        text.clone_from(&done.text);
        Ok(done)
    }

    /// `access.remove`: Mudmap's lines of `line`'s key go; with `agent`, the agent too when no
    /// other Mudmap line remains. Returns (removed, others, agent removed).
    pub fn access_remove(
        &self,
        line: &str,
        agent: bool,
    ) -> Result<(bool, Vec<String>, bool), String> {
        let parsed = keys::parse(line).ok_or_else(|| INVALID_LINE.to_owned())?;
        let mut text = self.admin_keys.lock().map_err(|_| "lock".to_owned())?;
        let done = keys::remove(&text, &parsed.key);
        text.clone_from(&done.text);
        let agent_removed = agent && done.others.is_empty();
        if agent_removed {
            self.agent_installed
                .store(false, std::sync::atomic::Ordering::Relaxed);
        }
        Ok((done.removed, done.others, agent_removed))
    }

    /// The pre-1.2.0 service account `mudmap`, with `key` (tests of old activations).
    pub fn add_legacy_account(&self, key: PublicKey) {
        if let Ok(mut account) = self.legacy_account.lock() {
            *account = Some(key);
        }
    }

    /// `account.remove` of the legacy account: whether it existed.
    pub fn remove_legacy_account(&self) -> bool {
        self.legacy_account
            .lock()
            .map(|mut a| a.take().is_some())
            .unwrap_or(false)
    }

    pub fn has_agent(&self) -> bool {
        self.agent_installed
            .load(std::sync::atomic::Ordering::Relaxed)
    }

    /// Is this address locked out right now?
    pub fn is_locked_out(&self, peer: IpAddr) -> bool {
        let Ok(mut map) = self.lockouts.lock() else {
            return false;
        };
        match map.get_mut(&peer).and_then(|l| l.locked_until) {
            Some(until) if until > Instant::now() => true,
            Some(_) => {
                map.remove(&peer);
                false
            }
            None => false,
        }
    }

    /// Count a failed password; the 15th locks the address out.
    pub fn record_failed_password(&self, peer: IpAddr) {
        if let Ok(mut map) = self.lockouts.lock() {
            let entry = map.entry(peer).or_default();
            entry.failures += 1;
            if entry.failures >= LOCKOUT_THRESHOLD {
                entry.locked_until = Some(Instant::now() + self.lockout_duration);
            }
        }
    }

    pub fn record_good_password(&self, peer: IpAddr) {
        if let Ok(mut map) = self.lockouts.lock() {
            if map.get(&peer).is_some_and(|l| l.locked_until.is_none()) {
                map.remove(&peer);
            }
        }
    }

    /// `diag.reboot` / `diag.shutdown`, a second after the answer (as pfSense's rc.reboot runs in
    /// the background): every connection drops and sshd stops listening; after a reboot it
    /// listens again `reboot_duration` later with its uptime reset, after a shutdown only when
    /// powered on through the control API (`{"refuse": false}`).
    pub fn power(self: &Arc<Self>, reboot: bool) {
        let device = Arc::clone(self);
        tokio::spawn(async move {
            tokio::time::sleep(Duration::from_secs(1)).await;
            device.patch_faults(FaultPatch {
                refuse: Some(true),
                drop_connections: true,
                ..FaultPatch::default()
            });
            if let Ok(mut model) = device.model.lock() {
                model.rebooted();
            }
            tracing::info!(device = device.index, reboot, "simulated device went down");
            if reboot {
                tokio::time::sleep(device.reboot_duration).await;
                device.patch_faults(FaultPatch {
                    refuse: Some(false),
                    ..FaultPatch::default()
                });
                tracing::info!(device = device.index, "simulated device is back up");
            }
        });
    }

    /// Lift every lockout (control API).
    pub fn clear_lockouts(&self) {
        if let Ok(mut map) = self.lockouts.lock() {
            map.clear();
        }
    }
}

/// A deterministic ed25519 key from 32 seed bytes.
pub fn ed25519_from(seed: [u8; 32], comment: &str) -> PrivateKey {
    let mut key = PrivateKey::from(Ed25519Keypair::from_seed(&seed));
    key.set_comment(comment);
    key
}

/// Device `index`'s host key in fleet `seed` (so a client can pin the fleet without asking it).
pub fn host_key(seed: u64, index: u32) -> PrivateKey {
    ed25519_from(
        derive_bytes(seed, index, "host-key"),
        &format!("fw-{index:04}"),
    )
}

/// The service-account key the simulator pre-authorises for device `index` of fleet `seed`, so the
/// demo fleet and the benchmarks start out activated.
pub fn service_key(seed: u64, index: u32) -> Arc<PrivateKey> {
    Arc::new(ed25519_from(
        derive_bytes(seed, index, "service-key"),
        "mudmap",
    ))
}
