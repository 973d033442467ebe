//! Host-key pinning. Every connect asks the store whether the key the device presents is the one
//! pinned for it: Valid, Unknown (never seen: accepted only through an explicit [`HostKeyStore::pin`],
//! which activation does after the user confirms the fingerprint) or Mismatch (refused, and the
//! device is quarantined). No key is ever accepted silently.

use std::collections::HashMap;
use std::sync::Mutex;

use russh::keys::{HashAlg, PublicKey};

use super::DeviceId;

/// The verdict on a presented host key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HostKeyCheck {
    Valid,
    Unknown { fingerprint: String },
    Mismatch { expected: String, got: String },
}

/// Where pinned keys live (the database in production; memory in tests and benchmarks).
#[async_trait::async_trait]
pub trait HostKeyStore: Send + Sync {
    async fn check(&self, device: &DeviceId, key: &PublicKey) -> HostKeyCheck;
    /// Pin `key` for `device`, replacing any earlier key. Only call after a person confirmed it.
    async fn pin(&self, device: &DeviceId, key: &PublicKey);
}

/// `SHA256:…`, exactly as `ssh` prints it.
pub fn fingerprint(key: &PublicKey) -> String {
    key.fingerprint(HashAlg::Sha256).to_string()
}

/// Pinned keys held in memory.
#[derive(Default)]
pub struct MemoryHostKeys {
    pinned: Mutex<HashMap<DeviceId, PublicKey>>,
}

impl MemoryHostKeys {
    pub fn new() -> Self {
        Self::default()
    }
}

#[async_trait::async_trait]
impl HostKeyStore for MemoryHostKeys {
    async fn check(&self, device: &DeviceId, key: &PublicKey) -> HostKeyCheck {
        let Ok(pinned) = self.pinned.lock() else {
            return HostKeyCheck::Unknown {
                fingerprint: fingerprint(key),
            };
        };
        match pinned.get(device) {
            Some(known) if known.key_data() == key.key_data() => HostKeyCheck::Valid,
            Some(known) => HostKeyCheck::Mismatch {
                expected: fingerprint(known),
                got: fingerprint(key),
            },
            None => HostKeyCheck::Unknown {
                fingerprint: fingerprint(key),
            },
        }
    }

    async fn pin(&self, device: &DeviceId, key: &PublicKey) {
        if let Ok(mut pinned) = self.pinned.lock() {
            pinned.insert(device.clone(), key.clone());
        }
    }
}

/// Trusts exactly one key, named by the fingerprint a person confirmed (activation: the password
/// is only ever sent to the device whose key the person saw). Remembers the key once seen.
pub struct ConfirmedFingerprint {
    fingerprint: String,
    seen: Mutex<Option<PublicKey>>,
}

impl ConfirmedFingerprint {
    pub fn new(fingerprint: impl Into<String>) -> Self {
        Self {
            fingerprint: fingerprint.into(),
            seen: Mutex::new(None),
        }
    }

    /// The confirmed key, once a device presented it.
    pub fn key(&self) -> Option<PublicKey> {
        self.seen.lock().ok().and_then(|k| k.clone())
    }
}

#[async_trait::async_trait]
impl HostKeyStore for ConfirmedFingerprint {
    async fn check(&self, _device: &DeviceId, key: &PublicKey) -> HostKeyCheck {
        let got = fingerprint(key);
        if got != self.fingerprint {
            return HostKeyCheck::Mismatch {
                expected: self.fingerprint.clone(),
                got,
            };
        }
        if let Ok(mut seen) = self.seen.lock() {
            *seen = Some(key.clone());
        }
        HostKeyCheck::Valid
    }

    async fn pin(&self, _device: &DeviceId, _key: &PublicKey) {}
}
