//! The SSH engine: one long-lived connection per device, owned by an actor task, with the agent
//! running in a resident channel so a request costs one round trip. Bounded everywhere (connects
//! in progress, requests in flight per device, command queues), timeouts on every step,
//! keepalives, reconnect with jittered exponential backoff, idle eviction, and pinned host keys.
//!
//! It owns SSH sessions and channels; it knows nothing of the database, users or pages. Callers
//! give it [`DeviceTarget`]s and a [`HostKeyStore`].

mod agent_channel;
mod connection;
mod engine;
mod error;
mod exec;
pub mod hostkeys;
mod session;

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use russh::keys::PrivateKey;

use crate::config::Secret;

pub use engine::{Engine, Fanout, FanoutResult};

/// Connect, authenticate, run one command on a fresh channel, and disconnect: the slow path that
/// bootstrap needs (and that the benchmark compares the resident channel against).
pub async fn one_shot_exec(
    target: &DeviceTarget,
    config: &EngineConfig,
    host_keys: Arc<dyn HostKeyStore>,
    command: &str,
    stdin: Option<Vec<u8>>,
) -> Result<ExecOutput, SshError> {
    let ssh = session::client_config(config);
    let session = session::establish(target, config, ssh, host_keys).await?;
    let result = exec::run(
        &session,
        command,
        stdin,
        config.channel_timeout,
        config.request_timeout,
    )
    .await;
    let _ = session
        .disconnect(russh::Disconnect::ByApplication, "done", "en")
        .await;
    result
}
/// A session outside the engine, for activation and removal: connect (host key checked against
/// `host_keys`), then log in, then run commands on fresh channels. Dropping it disconnects.
pub struct DirectSession {
    session: session::Session,
    config: EngineConfig,
}

impl DirectSession {
    /// TCP connect and SSH handshake; the host key must be `Valid` in `host_keys`.
    pub async fn connect(
        target: &DeviceTarget,
        config: &EngineConfig,
        host_keys: Arc<dyn HostKeyStore>,
    ) -> Result<Self, SshError> {
        let ssh = session::client_config(config);
        let session = session::handshake(target, config, ssh, host_keys).await?;
        Ok(Self {
            session,
            config: config.clone(),
        })
    }

    /// Authenticate with `target`'s credentials.
    pub async fn login(&mut self, target: &DeviceTarget) -> Result<(), SshError> {
        session::authenticate(&mut self.session, target, &self.config).await
    }

    /// Run `command` on a fresh channel (closed afterwards), with `stdin` if given.
    pub async fn exec(
        &self,
        command: &str,
        stdin: Option<Vec<u8>>,
    ) -> Result<ExecOutput, SshError> {
        exec::run(
            &self.session,
            command,
            stdin,
            self.config.channel_timeout,
            self.config.request_timeout,
        )
        .await
    }

    pub fn is_closed(&self) -> bool {
        self.session.is_closed()
    }

    pub async fn close(self) {
        let _ = self
            .session
            .disconnect(russh::Disconnect::ByApplication, "done", "en")
            .await;
    }
}

pub use error::{SshError, Stage};
pub use exec::ExecOutput;
pub use hostkeys::{fingerprint, ConfirmedFingerprint, HostKeyCheck, HostKeyStore, MemoryHostKeys};

/// A device's identity inside the engine.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct DeviceId(pub Arc<str>);

impl DeviceId {
    pub fn new(id: impl Into<Arc<str>>) -> Self {
        Self(id.into())
    }
}

impl fmt::Display for DeviceId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// How to log in.
#[derive(Clone)]
pub enum Credentials {
    /// The per-device service-account key (normal operation).
    Key(Arc<PrivateKey>),
    /// The admin password (activation only; never stored).
    Password(Secret),
}

impl fmt::Debug for Credentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Credentials::Key(key) => write!(f, "Key({})", fingerprint(key.public_key())),
            Credentials::Password(_) => f.write_str("Password([redacted])"),
        }
    }
}

impl PartialEq for Credentials {
    fn eq(&self, other: &Self) -> bool {
        match (self, other) {
            (Credentials::Key(a), Credentials::Key(b)) => {
                a.public_key().key_data() == b.public_key().key_data()
            }
            (Credentials::Password(a), Credentials::Password(b)) => a == b,
            _ => false,
        }
    }
}

/// Where and how to reach one device.
#[derive(Debug, Clone, PartialEq)]
pub struct DeviceTarget {
    pub id: DeviceId,
    /// IPv4, IPv6 or DNS name.
    pub host: String,
    pub port: u16,
    pub username: String,
    pub credentials: Credentials,
    /// The command that starts the agent in serve mode.
    pub agent_command: String,
    /// How to reinstall the agent when it is missing or of another version (None: never).
    pub self_heal: Option<Arc<SelfHeal>>,
}

/// Reinstalling the agent without a person: run `command` with the agent's bytes on standard
/// input, on the device's own connection (the service key's forced command allows exactly this).
#[derive(Clone, PartialEq, Eq)]
pub struct SelfHeal {
    pub command: String,
    pub agent: &'static [u8],
    /// The version the installed agent must report.
    pub version: String,
}

impl fmt::Debug for SelfHeal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SelfHeal")
            .field("command", &self.command)
            .field("agent_bytes", &self.agent.len())
            .field("version", &self.version)
            .finish()
    }
}

/// The agent command on a real pfSense box (serve mode).
pub const PFSENSE_AGENT_COMMAND: &str =
    "/usr/local/bin/php /usr/local/share/mudmap/agent.php serve";

/// A device connection's state.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ConnState {
    Idle,
    Connecting,
    Ready,
    /// The last connect failed; the next attempt waits for the backoff to pass.
    Backoff,
    /// The host key changed; nothing is sent until an admin trusts the new key.
    Quarantined,
    Closed,
}

/// What the engine tells its subscribers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EngineEvent {
    State {
        device: DeviceId,
        state: ConnState,
    },
    HostKeyMismatch {
        device: DeviceId,
        expected: String,
        got: String,
    },
    /// A connection was made and the agent said hello (after any self-heal): its versions, for
    /// the records to follow upgrades.
    Connected {
        device: DeviceId,
        hello: Box<crate::agent::protocol::Hello>,
    },
}

/// Limits and timeouts.
#[derive(Debug, Clone)]
pub struct EngineConfig {
    pub connect_timeout: Duration,
    pub handshake_timeout: Duration,
    pub auth_timeout: Duration,
    pub channel_timeout: Duration,
    pub request_timeout: Duration,
    /// SSH keepalive period; with `keepalive_max` misses the connection is declared dead.
    pub keepalive_interval: Duration,
    pub keepalive_max: usize,
    /// Close a connection nobody used for this long.
    pub idle_timeout: Duration,
    /// Connects in progress across all devices.
    pub max_connecting: usize,
    /// Agent requests in flight per device; more get `Busy`.
    pub max_inflight_per_device: usize,
    /// One-shot exec channels per device (the resident agent channel takes one more; OpenSSH allows 10).
    pub exec_channels_per_device: usize,
    /// Commands queued per device actor; more get `Busy`.
    pub queue_per_device: usize,
    pub backoff_initial: Duration,
    pub backoff_max: Duration,
}

impl Default for EngineConfig {
    fn default() -> Self {
        Self {
            connect_timeout: Duration::from_secs(10),
            handshake_timeout: Duration::from_secs(15),
            auth_timeout: Duration::from_secs(10),
            channel_timeout: Duration::from_secs(10),
            request_timeout: Duration::from_secs(30),
            keepalive_interval: Duration::from_secs(15),
            keepalive_max: 3,
            idle_timeout: Duration::from_secs(600),
            max_connecting: 256,
            max_inflight_per_device: 32,
            exec_channels_per_device: 8,
            queue_per_device: 64,
            backoff_initial: Duration::from_secs(1),
            backoff_max: Duration::from_secs(60),
        }
    }
}

impl EngineConfig {
    /// Exponential backoff with full jitter in [50%, 100%] of the step.
    pub fn backoff(&self, attempt: u32) -> Duration {
        let step = self
            .backoff_initial
            .saturating_mul(1u32 << attempt.min(16))
            .min(self.backoff_max);
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.subsec_nanos())
            .unwrap_or(0);
        let jitter = 0.5 + f64::from(nanos % 1000) / 2000.0;
        step.mul_f64(jitter)
    }
}
