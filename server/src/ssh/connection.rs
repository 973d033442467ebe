//! One device's connection, owned by one task (an actor). Commands come in with a reply channel;
//! state changes go out as events. The explicit state machine:
//!
//! ```text
//!   Idle ──request──▶ Connecting ──ok──▶ Ready ──lost / idle──▶ Idle
//!                         │                 
//!                         ├──host key mismatch──▶ Quarantined (until the target is updated)
//!                         └──other failure──▶ Backoff(until) ──request after until──▶ Connecting
//! ```
//!
//! Requests never wait inside the actor: once Ready, callers use the shared agent channel
//! directly (the fast path), and the actor only handles connection life-cycle and one-shot execs.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::json;
use tokio::sync::{mpsc, oneshot, OwnedSemaphorePermit};
use tokio::time::Instant;
use tracing::Instrument;

use super::agent_channel::AgentChannel;
use super::engine::Shared;
use super::session::{establish, Session};
use super::{ConnState, DeviceTarget, EngineEvent, ExecOutput, SshError};
use crate::agent::protocol::{Hello, PROTOCOL_VERSION};

pub(crate) enum Command {
    /// Make sure the device is connected; reply with the agent channel.
    Acquire(oneshot::Sender<Result<Arc<AgentChannel>, SshError>>),
    /// Run one command on its own channel (boxed: it is the largest command, and every slot of
    /// every device's queue is as large as the largest variant).
    Exec(Box<ExecRequest>),
    /// New address or credentials (e.g. after an edit or a re-trusted host key).
    Retarget(Box<DeviceTarget>),
    /// Disconnect and stay idle.
    Disconnect(oneshot::Sender<()>),
}

pub(crate) struct ExecRequest {
    pub command: String,
    pub stdin: Option<Vec<u8>>,
    pub timeout: Duration,
    pub reply: oneshot::Sender<Result<ExecOutput, SshError>>,
}

/// What callers share with the actor.
pub(crate) struct DeviceShared {
    /// The live agent channel when Ready: the fast path for requests.
    pub agent: Mutex<Option<Arc<AgentChannel>>>,
    pub state: Mutex<ConnState>,
    pub hello: Mutex<Option<Hello>>,
    /// When a request last used the fast path (ms on the engine's clock).
    pub last_request_ms: std::sync::atomic::AtomicU64,
}

struct Live {
    session: Arc<Session>,
    agent: Arc<AgentChannel>,
}

pub(crate) struct Actor {
    target: DeviceTarget,
    engine: Arc<Shared>,
    shared: Arc<DeviceShared>,
    live: Option<Live>,
    backoff_attempt: u32,
    backoff_until: Option<(Instant, SshError)>,
    quarantined: Option<SshError>,
    last_used: Instant,
    exec_slots: Arc<tokio::sync::Semaphore>,
}

impl Actor {
    pub fn spawn(
        target: DeviceTarget,
        engine: Arc<Shared>,
    ) -> (
        mpsc::Sender<Command>,
        Arc<DeviceShared>,
        tokio::task::JoinHandle<()>,
    ) {
        let (tx, rx) = mpsc::channel(engine.config.queue_per_device);
        let shared = Arc::new(DeviceShared {
            agent: Mutex::new(None),
            state: Mutex::new(ConnState::Idle),
            hello: Mutex::new(None),
            last_request_ms: std::sync::atomic::AtomicU64::new(0),
        });
        let span = tracing::info_span!("device", device.id = %target.id);
        let actor = Actor {
            exec_slots: Arc::new(tokio::sync::Semaphore::new(
                engine.config.exec_channels_per_device,
            )),
            target,
            engine,
            shared: shared.clone(),
            live: None,
            backoff_attempt: 0,
            backoff_until: None,
            quarantined: None,
            last_used: Instant::now(),
        };
        let task = tokio::spawn(actor.run(rx).instrument(span));
        (tx, shared, task)
    }

    async fn run(mut self, mut rx: mpsc::Receiver<Command>) {
        loop {
            let mut closed = self.live.as_ref().map(|l| l.agent.closed());
            let idle_deadline = self.last_used + self.engine.config.idle_timeout;
            tokio::select! {
                command = rx.recv() => {
                    let Some(command) = command else { break };
                    self.last_used = Instant::now();
                    self.handle(command).await;
                }
                () = wait_closed(closed.as_mut()), if self.live.is_some() => {
                    tracing::info!("connection to the device lost");
                    Box::pin(self.drop_live()).await;
                    self.set_state(ConnState::Idle);
                }
                () = tokio::time::sleep_until(idle_deadline), if self.live.is_some() => {
                    // Requests on the fast path do not pass through here; check the agent's use.
                    if self.recently_busy() {
                        self.last_used = Instant::now();
                    } else {
                        tracing::debug!("idle: closing the connection");
                        Box::pin(self.drop_live()).await;
                        self.set_state(ConnState::Idle);
                    }
                }
            }
        }
        Box::pin(self.drop_live()).await;
        self.set_state(ConnState::Closed);
    }

    fn recently_busy(&self) -> bool {
        let last = self
            .shared
            .last_request_ms
            .load(std::sync::atomic::Ordering::Relaxed);
        let idle_ms =
            u64::try_from(self.engine.config.idle_timeout.as_millis()).unwrap_or(u64::MAX);
        self.live.as_ref().is_some_and(|l| l.agent.pending() > 0)
            || self.engine.clock_ms().saturating_sub(last) < idle_ms
    }

    async fn handle(&mut self, command: Command) {
        match command {
            Command::Acquire(reply) => {
                let result = self.ensure_ready().await.map(|live| live.agent.clone());
                let _ = reply.send(result);
            }
            Command::Exec(request) => {
                let ExecRequest {
                    command,
                    stdin,
                    timeout,
                    reply,
                } = *request;
                let session = match self.ensure_ready().await {
                    Ok(live) => live.session.clone(),
                    Err(e) => {
                        let _ = reply.send(Err(e));
                        return;
                    }
                };
                let Ok(permit) = self.exec_slots.clone().try_acquire_owned() else {
                    let _ = reply.send(Err(SshError::Busy));
                    return;
                };
                let channel_timeout = self.engine.config.channel_timeout;
                tokio::spawn(
                    async move {
                        let result =
                            super::exec::run(&session, &command, stdin, channel_timeout, timeout)
                                .await;
                        drop(permit);
                        let _ = reply.send(result);
                    }
                    .in_current_span(),
                );
            }
            Command::Retarget(target) => {
                Box::pin(self.drop_live()).await;
                self.target = *target;
                self.quarantined = None;
                self.backoff_until = None;
                self.backoff_attempt = 0;
                self.set_state(ConnState::Idle);
            }
            Command::Disconnect(reply) => {
                Box::pin(self.drop_live()).await;
                self.set_state(ConnState::Idle);
                let _ = reply.send(());
            }
        }
    }

    async fn ensure_ready(&mut self) -> Result<&Live, SshError> {
        if self.live.as_ref().is_some_and(|l| !l.agent.is_closed()) {
            return self.live.as_ref().ok_or(SshError::Closed);
        }
        Box::pin(self.drop_live()).await;
        if let Some(error) = &self.quarantined {
            return Err(error.clone());
        }
        if let Some((until, error)) = &self.backoff_until {
            if Instant::now() < *until {
                return Err(error.clone());
            }
        }
        self.set_state(ConnState::Connecting);
        // Boxed: the connect future is large, and an idle actor should not carry its size.
        match Box::pin(self.connect()).await {
            Ok(live) => {
                self.backoff_attempt = 0;
                self.backoff_until = None;
                if let Ok(mut slot) = self.shared.agent.lock() {
                    *slot = Some(live.agent.clone());
                }
                self.live = Some(live);
                self.set_state(ConnState::Ready);
                self.live.as_ref().ok_or(SshError::Closed)
            }
            Err(error) => {
                if let SshError::HostKeyMismatch { expected, got } = &error {
                    tracing::warn!(expected = %expected, got = %got, "host key mismatch: device quarantined");
                    self.quarantined = Some(error.clone());
                    self.engine.emit(EngineEvent::HostKeyMismatch {
                        device: self.target.id.clone(),
                        expected: expected.clone(),
                        got: got.clone(),
                    });
                    self.set_state(ConnState::Quarantined);
                } else {
                    let delay = self.engine.config.backoff(self.backoff_attempt);
                    self.backoff_attempt = self.backoff_attempt.saturating_add(1);
                    tracing::info!(error = %error, retry_in_ms = delay.as_millis() as u64, "connect failed");
                    self.backoff_until = Some((Instant::now() + delay, error.clone()));
                    self.set_state(ConnState::Backoff);
                }
                Err(error)
            }
        }
    }

    async fn connect(&self) -> Result<Live, SshError> {
        let config = &self.engine.config;
        // Bounded connects in progress across the engine: a cold start of thousands of devices
        // neither exhausts sockets nor starves the runtime.
        let _permit: OwnedSemaphorePermit = tokio::time::timeout(
            config.request_timeout,
            self.engine.connect_permits.clone().acquire_owned(),
        )
        .await
        .map_err(|_| SshError::Busy)?
        .map_err(|_| SshError::Closed)?;
        let started = Instant::now();
        let session = establish(
            &self.target,
            config,
            self.engine.ssh.clone(),
            self.engine.host_keys.clone(),
        )
        .await?;
        let session = Arc::new(session);
        let (agent, hello) = match self.open_agent(&session).await {
            Ok((agent, hello)) if self.agent_is_current(&hello) => (agent, hello),
            Ok((agent, hello)) => {
                agent.close().await;
                self.reinstall_agent(&session, &format!("version {}", hello.agent_version))
                    .await?
            }
            Err(SshError::AgentMissing) if self.target.self_heal.is_some() => {
                self.reinstall_agent(&session, "missing").await?
            }
            Err(error) => return Err(error),
        };
        // A key on a non-root account reaches a working agent that can change nothing.
        if let Some(uid) = hello.euid.filter(|uid| *uid != 0) {
            agent.close().await;
            return Err(SshError::NoRoot {
                detail: format!("the agent runs as uid {uid}"),
            });
        }
        tracing::info!(
            duration_ms = started.elapsed().as_millis() as u64,
            agent.version = %hello.agent_version,
            pfsense.version = %hello.pfsense.version,
            "connected"
        );
        if let Ok(mut slot) = self.shared.hello.lock() {
            *slot = Some(hello.clone());
        }
        self.engine.emit(EngineEvent::Connected {
            device: self.target.id.clone(),
            hello: Box::new(hello),
        });
        Ok(Live { session, agent })
    }

    /// Open the resident agent channel and say hello.
    async fn open_agent(&self, session: &Session) -> Result<(Arc<AgentChannel>, Hello), SshError> {
        let config = &self.engine.config;
        let agent = AgentChannel::open(
            session,
            &self.target.agent_command,
            config.channel_timeout,
            config.max_inflight_per_device,
        )
        .await?;
        let hello = agent
            .call(
                "hello",
                json!({ "client": format!("mudmap/{}", crate::VERSION), "protocols": [PROTOCOL_VERSION] }),
                config.request_timeout,
            )
            .await
            .map_err(|e| match e {
                SshError::Closed => SshError::AgentMissing,
                other => other,
            })?;
        let hello: Hello = hello
            .decode()
            .map_err(|e| SshError::ProtocolError(format!("agent's hello is malformed: {e}")))?;
        Ok((agent, hello))
    }

    /// Whether the agent is the one this server ships (always, when self-heal is off).
    fn agent_is_current(&self, hello: &Hello) -> bool {
        self.target
            .self_heal
            .as_ref()
            .is_none_or(|heal| heal.version == hello.agent_version)
    }

    /// Self-heal: write the shipped agent through the device's key (its forced command allows
    /// exactly this), then open it again.
    async fn reinstall_agent(
        &self,
        session: &Session,
        was: &str,
    ) -> Result<(Arc<AgentChannel>, Hello), SshError> {
        let Some(heal) = self.target.self_heal.clone() else {
            return Err(SshError::AgentMissing);
        };
        let config = &self.engine.config;
        let out = super::exec::run(
            session,
            &heal.command,
            Some(heal.agent.to_vec()),
            config.channel_timeout,
            config.request_timeout,
        )
        .await?;
        if out.exit_status != Some(0) {
            tracing::warn!(agent.was = was, exit = ?out.exit_status, "agent reinstall failed");
            // The agent's directory is root's: a key that may not write it has no root.
            let stderr = String::from_utf8_lossy(&out.stderr);
            if stderr.contains("Permission denied") || stderr.contains("Operation not permitted") {
                return Err(SshError::NoRoot {
                    detail: "it may not replace the agent (permission denied)".to_owned(),
                });
            }
            return Err(SshError::AgentMissing);
        }
        let (agent, hello) = self.open_agent(session).await?;
        tracing::info!(agent.was = was, agent.version = %hello.agent_version, "agent reinstalled (self-heal)");
        Ok((agent, hello))
    }

    async fn drop_live(&mut self) {
        if let Ok(mut slot) = self.shared.agent.lock() {
            *slot = None;
        }
        if let Some(live) = self.live.take() {
            live.agent.close().await;
            let _ = live
                .session
                .disconnect(russh::Disconnect::ByApplication, "closing", "en")
                .await;
        }
    }

    fn set_state(&self, state: ConnState) {
        let changed = match self.shared.state.lock() {
            Ok(mut current) if *current != state => {
                *current = state;
                true
            }
            _ => false,
        };
        if changed {
            self.engine.emit(EngineEvent::State {
                device: self.target.id.clone(),
                state,
            });
        }
    }
}

async fn wait_closed(rx: Option<&mut tokio::sync::watch::Receiver<bool>>) {
    match rx {
        Some(rx) => {
            let _ = rx.wait_for(|closed| *closed).await;
        }
        None => std::future::pending().await,
    }
}
