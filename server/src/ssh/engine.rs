//! The engine: the set of device connections, the global limits, and the API the rest of Mudmap
//! uses — one request, one command, or one request fanned out to many devices with results
//! streamed as they arrive.

use std::collections::HashMap;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::Value;
use tokio::sync::{broadcast, mpsc, oneshot, Semaphore};
use tokio::task::JoinSet;
use tokio::time::Instant;

use super::connection::{Actor, Command, DeviceShared, ExecRequest};
use super::error::Stage;
use super::hostkeys::HostKeyStore;
use super::session::{client_config, probe_host_key};
use super::{ConnState, DeviceId, DeviceTarget, EngineConfig, EngineEvent, ExecOutput, SshError};
use crate::agent::protocol::{Hello, RawResult};

/// What the connection actors share with the engine.
pub(crate) struct Shared {
    pub config: EngineConfig,
    pub ssh: Arc<russh::client::Config>,
    pub host_keys: Arc<dyn HostKeyStore>,
    pub connect_permits: Arc<Semaphore>,
    events: broadcast::Sender<EngineEvent>,
    epoch: Instant,
}

impl Shared {
    pub fn emit(&self, event: EngineEvent) {
        // No subscriber is fine: events are advisory.
        let _ = self.events.send(event);
    }

    pub fn clock_ms(&self) -> u64 {
        u64::try_from(self.epoch.elapsed().as_millis()).unwrap_or(u64::MAX)
    }
}

struct DeviceEntry {
    target: DeviceTarget,
    tx: mpsc::Sender<Command>,
    shared: Arc<DeviceShared>,
    task: tokio::task::JoinHandle<()>,
}

/// The SSH engine. Cheap to clone.
#[derive(Clone)]
pub struct Engine {
    shared: Arc<Shared>,
    devices: Arc<Mutex<HashMap<DeviceId, DeviceEntry>>>,
}

/// One device's outcome in a fan-out.
#[derive(Debug)]
pub struct FanoutResult {
    pub device: DeviceId,
    /// The answer as JSON text (see [`RawResult::decode`]).
    pub result: Result<RawResult, SshError>,
    pub elapsed: Duration,
}

/// Results of a fan-out, in the order they complete. Dropping it cancels what is still running.
pub struct Fanout {
    tasks: JoinSet<FanoutResult>,
}

impl Fanout {
    /// The next result to complete, or `None` when all are in.
    pub async fn next(&mut self) -> Option<FanoutResult> {
        loop {
            match self.tasks.join_next().await? {
                Ok(result) => return Some(result),
                // A task can only fail by panicking or being aborted; skip it.
                Err(_) => continue,
            }
        }
    }

    pub fn remaining(&self) -> usize {
        self.tasks.len()
    }
}

impl Engine {
    pub fn new(config: EngineConfig, host_keys: Arc<dyn HostKeyStore>) -> Self {
        let (events, _) = broadcast::channel(1024);
        let shared = Arc::new(Shared {
            ssh: client_config(&config),
            connect_permits: Arc::new(Semaphore::new(config.max_connecting)),
            config,
            host_keys,
            events,
            epoch: Instant::now(),
        });
        Self {
            shared,
            devices: Arc::new(Mutex::new(HashMap::new())),
        }
    }

    pub fn config(&self) -> &EngineConfig {
        &self.shared.config
    }

    /// State changes and host-key alarms of every device.
    pub fn subscribe(&self) -> broadcast::Receiver<EngineEvent> {
        self.shared.events.subscribe()
    }

    /// Add a device, or update its address or credentials (its connection is re-established).
    pub fn upsert(&self, target: DeviceTarget) {
        let Ok(mut devices) = self.devices.lock() else {
            return;
        };
        if let Some(entry) = devices.get_mut(&target.id) {
            if entry.target != target {
                entry.target = target.clone();
                let command = Command::Retarget(Box::new(target));
                if let Err(mpsc::error::TrySendError::Full(command)) = entry.tx.try_send(command) {
                    // The actor is busy; deliver the new target as soon as its queue has room.
                    let tx = entry.tx.clone();
                    tokio::spawn(async move {
                        let _ = tx.send(command).await;
                    });
                }
            }
            return;
        }
        let (tx, shared, task) = Actor::spawn(target.clone(), self.shared.clone());
        devices.insert(
            target.id.clone(),
            DeviceEntry {
                target,
                tx,
                shared,
                task,
            },
        );
    }

    /// Forget a device: close its connection and stop its task.
    pub async fn remove(&self, device: &DeviceId) {
        let entry = self.devices.lock().ok().and_then(|mut d| d.remove(device));
        if let Some(entry) = entry {
            let (tx, rx) = oneshot::channel();
            if entry.tx.send(Command::Disconnect(tx)).await.is_ok() {
                let _ = tokio::time::timeout(Duration::from_secs(5), rx).await;
            }
            entry.task.abort();
        }
    }

    pub fn state(&self, device: &DeviceId) -> Option<ConnState> {
        let devices = self.devices.lock().ok()?;
        let entry = devices.get(device)?;
        entry.shared.state.lock().ok().map(|s| *s)
    }

    /// What the device's agent said in its last `hello`.
    pub fn hello(&self, device: &DeviceId) -> Option<Hello> {
        let devices = self.devices.lock().ok()?;
        let entry = devices.get(device)?;
        entry.shared.hello.lock().ok().and_then(|h| h.clone())
    }

    /// Every device the engine manages.
    pub fn device_ids(&self) -> Vec<DeviceId> {
        self.devices
            .lock()
            .map(|d| d.keys().cloned().collect())
            .unwrap_or_default()
    }

    pub fn device_count(&self) -> usize {
        self.devices.lock().map(|d| d.len()).unwrap_or(0)
    }

    /// Number of devices currently connected.
    pub fn connected_count(&self) -> usize {
        self.devices
            .lock()
            .map(|d| {
                d.values()
                    .filter(|e| e.shared.state.lock().is_ok_and(|s| *s == ConnState::Ready))
                    .count()
            })
            .unwrap_or(0)
    }

    /// One agent request, connecting first if needed; the whole call is bounded by the request timeout.
    pub async fn request(
        &self,
        device: &DeviceId,
        method: &str,
        params: Value,
    ) -> Result<Value, SshError> {
        let raw = self.request_raw(device, method, params).await?;
        raw.decode()
            .map_err(|e| SshError::ProtocolError(format!("unexpected answer to {method}: {e}")))
    }

    /// [`Engine::request`] with the result as JSON text, for callers that decode it themselves.
    pub async fn request_raw(
        &self,
        device: &DeviceId,
        method: &str,
        params: Value,
    ) -> Result<RawResult, SshError> {
        let timeout = self.shared.config.request_timeout;
        tokio::time::timeout(timeout, self.request_inner(device, method, params, timeout))
            .await
            .unwrap_or(Err(SshError::Timeout {
                stage: Stage::Request,
                after: timeout,
            }))
    }

    /// [`Engine::request`] with the result decoded into `T`.
    pub async fn call<T: serde::de::DeserializeOwned>(
        &self,
        device: &DeviceId,
        method: &str,
        params: Value,
    ) -> Result<T, SshError> {
        // Decoded once, straight from the text into `T`.
        let raw = self.request_raw(device, method, params).await?;
        raw.decode()
            .map_err(|e| SshError::ProtocolError(format!("unexpected answer to {method}: {e}")))
    }

    async fn request_inner(
        &self,
        device: &DeviceId,
        method: &str,
        params: Value,
        timeout: Duration,
    ) -> Result<RawResult, SshError> {
        let (tx, shared) = self.handle(device)?;
        shared
            .last_request_ms
            .store(self.shared.clock_ms(), Ordering::Relaxed);
        // Fast path: connected, so go straight to the agent channel.
        let live = shared
            .agent
            .lock()
            .ok()
            .and_then(|a| a.clone())
            .filter(|a| !a.is_closed());
        let agent = match live {
            Some(agent) => agent,
            None => {
                let (reply, rx) = oneshot::channel();
                tx.try_send(Command::Acquire(reply)).map_err(|e| match e {
                    mpsc::error::TrySendError::Full(_) => SshError::Busy,
                    mpsc::error::TrySendError::Closed(_) => SshError::Closed,
                })?;
                rx.await.map_err(|_| SshError::Closed)??
            }
        };
        // The protocol: a method is only called when the agent's hello lists it.
        let offered = shared
            .hello
            .lock()
            .ok()
            .and_then(|h| h.as_ref().map(|h| h.can(method)));
        if method != "hello" && offered == Some(false) {
            return Err(SshError::Unsupported {
                method: method.to_owned(),
            });
        }
        agent.call(method, params, timeout).await
    }

    /// Run a one-shot command on its own channel.
    pub async fn exec(
        &self,
        device: &DeviceId,
        command: &str,
        stdin: Option<Vec<u8>>,
        timeout: Duration,
    ) -> Result<ExecOutput, SshError> {
        let (tx, _) = self.handle(device)?;
        let (reply, rx) = oneshot::channel();
        tx.try_send(Command::Exec(Box::new(ExecRequest {
            command: command.to_owned(),
            stdin,
            timeout,
            reply,
        })))
        .map_err(|_| SshError::Busy)?;
        let overall =
            timeout + self.shared.config.connect_timeout + self.shared.config.handshake_timeout;
        tokio::time::timeout(overall, rx)
            .await
            .map_err(|_| SshError::Timeout {
                stage: Stage::Request,
                after: overall,
            })?
            .map_err(|_| SshError::Closed)?
    }

    /// Run one request on many devices at once. Results arrive as each device answers; one slow
    /// or dead device never delays the others (each is bounded by the request timeout).
    pub fn fanout(&self, devices: &[DeviceId], method: &str, params: Value) -> Fanout {
        let mut tasks = JoinSet::new();
        for device in devices {
            let engine = self.clone();
            let device = device.clone();
            let method = method.to_owned();
            let params = params.clone();
            tasks.spawn(async move {
                let started = Instant::now();
                let result = engine.request_raw(&device, &method, params).await;
                FanoutResult {
                    device,
                    result,
                    elapsed: started.elapsed(),
                }
            });
        }
        Fanout { tasks }
    }

    /// Close one device's connection (it reconnects on the next request).
    pub async fn disconnect(&self, device: &DeviceId) {
        let Ok((tx, _)) = self.handle(device) else {
            return;
        };
        let (reply, rx) = oneshot::channel();
        if tx.send(Command::Disconnect(reply)).await.is_ok() {
            let _ = rx.await;
        }
    }

    /// Close every connection and stop every device task.
    pub async fn shutdown(&self) {
        let ids: Vec<DeviceId> = self
            .devices
            .lock()
            .map(|d| d.keys().cloned().collect())
            .unwrap_or_default();
        let mut closing = JoinSet::new();
        for id in ids {
            let engine = self.clone();
            closing.spawn(async move { engine.remove(&id).await });
        }
        while closing.join_next().await.is_some() {}
    }

    /// Connect to `target` and return the host key it presents, trusting nothing.
    pub async fn probe_host_key(
        &self,
        target: &DeviceTarget,
    ) -> Result<russh::keys::PublicKey, SshError> {
        probe_host_key(target, &self.shared.config, self.shared.ssh.clone()).await
    }

    /// Pin `key` for the device (after a person confirmed its fingerprint) and clear a quarantine.
    pub async fn trust_host_key(&self, device: &DeviceId, key: &russh::keys::PublicKey) {
        self.shared.host_keys.pin(device, key).await;
        let target = self
            .devices
            .lock()
            .ok()
            .and_then(|d| d.get(device).map(|e| e.target.clone()));
        if let Some(target) = target {
            let Ok((tx, _)) = self.handle(device) else {
                return;
            };
            let _ = tx.send(Command::Retarget(Box::new(target))).await;
        }
    }

    fn handle(
        &self,
        device: &DeviceId,
    ) -> Result<(mpsc::Sender<Command>, Arc<DeviceShared>), SshError> {
        let devices = self.devices.lock().map_err(|_| SshError::Closed)?;
        let entry = devices.get(device).ok_or(SshError::NotManaged)?;
        Ok((entry.tx.clone(), entry.shared.clone()))
    }
}
