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
    /// The agent's `account.ensure` fails.
    pub account_fails: bool,
    /// The WAN gateway's monitor IP stops answering (dpinger reports it down, 100 % loss).
    pub gateway_down: bool,
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
    pub key_only: Option<bool>,
    pub not_pfsense: Option<bool>,
    pub agent_install_fails: Option<bool>,
    pub account_fails: Option<bool>,
    pub gateway_down: Option<bool>,
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
    /// Keys accepted for the service account.
    pub authorized_keys: Mutex<Vec<PublicKey>>,
    /// The service account's `authorized_keys` line as `account.ensure` wrote it (options included).
    pub service_account: Mutex<Option<String>>,
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
            authorized_keys: Mutex::new(Vec::new()),
            service_account: Mutex::new(None),
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
    }

    pub fn authorize(&self, key: PublicKey) {
        if let Ok(mut keys) = self.authorized_keys.lock() {
            if !keys.iter().any(|k| k.key_data() == key.key_data()) {
                keys.push(key);
            }
        }
    }

    pub fn is_authorized(&self, key: &PublicKey) -> bool {
        self.authorized_keys
            .lock()
            .map(|keys| keys.iter().any(|k| k.key_data() == key.key_data()))
            .unwrap_or(false)
    }

    /// `account.ensure`: the service account now has exactly this key (an `authorized_keys` line,
    /// options first). Returns whether the account is new.
    pub fn ensure_account(&self, line: &str) -> Result<bool, String> {
        let key_part = line
            .find("ssh-ed25519 ")
            .map(|at| &line[at..])
            .ok_or_else(|| "authorized_key holds no ssh-ed25519 key".to_owned())?;
        let key = PublicKey::from_openssh(key_part).map_err(|e| format!("bad key: {e}"))?;
        let mut keys = self.authorized_keys.lock().map_err(|_| "lock".to_owned())?;
        *keys = vec![key];
        let mut account = self.service_account.lock().map_err(|_| "lock".to_owned())?;
        Ok(account.replace(line.to_owned()).is_none())
    }

    /// `account.remove`: the service account and its keys are gone. Returns whether it existed.
    pub fn remove_account(&self) -> bool {
        if let Ok(mut keys) = self.authorized_keys.lock() {
            keys.clear();
        }
        self.service_account
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
