//! The resident agent channel: one exec channel running the agent in serve mode for the life of
//! the connection. Requests are framed JSON lines with ids; many can be in flight at once, and
//! each costs one round trip. A reader task routes answers to waiting callers by id.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use russh::client::Msg;
use russh::{ChannelMsg, ChannelWriteHalf};
use serde_json::Value;
use tokio::sync::{oneshot, watch, Semaphore};

use super::error::Stage;
use super::session::{open_channel, Session};
use super::SshError;
use crate::agent::protocol::{RawResult, Request, Response, MAX_FRAME};

type Waiter = oneshot::Sender<Result<Response, SshError>>;

pub struct AgentChannel {
    writer: tokio::sync::Mutex<ChannelWriteHalf<Msg>>,
    pending: Mutex<HashMap<u64, Waiter>>,
    next_id: AtomicU64,
    inflight: Semaphore,
    closed: AtomicBool,
    closed_tx: watch::Sender<bool>,
}

impl AgentChannel {
    /// Open the channel and start the agent. The caller should send `hello` next.
    pub async fn open(
        session: &Session,
        command: &str,
        channel_timeout: Duration,
        max_inflight: usize,
    ) -> Result<Arc<Self>, SshError> {
        let channel = open_channel(session, channel_timeout).await?;
        channel
            .exec(false, command)
            .await
            .map_err(SshError::from_russh)?;
        let (reader, writer) = channel.split();
        let (closed_tx, _) = watch::channel(false);
        let agent = Arc::new(Self {
            writer: tokio::sync::Mutex::new(writer),
            pending: Mutex::new(HashMap::new()),
            next_id: AtomicU64::new(1),
            inflight: Semaphore::new(max_inflight),
            closed: AtomicBool::new(false),
            closed_tx,
        });
        tokio::spawn(read_loop(reader, Arc::downgrade(&agent)));
        Ok(agent)
    }

    pub fn is_closed(&self) -> bool {
        self.closed.load(Ordering::Acquire)
    }

    /// Resolves when the channel has closed.
    pub fn closed(&self) -> watch::Receiver<bool> {
        self.closed_tx.subscribe()
    }

    /// Send one request and wait for its answer (the result as JSON text).
    pub async fn call(
        &self,
        method: &str,
        params: Value,
        timeout: Duration,
    ) -> Result<RawResult, SshError> {
        if self.is_closed() {
            return Err(SshError::Closed);
        }
        let _permit = self.inflight.try_acquire().map_err(|_| SshError::Busy)?;
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        let (tx, rx) = oneshot::channel();
        self.pending
            .lock()
            .map_err(|_| SshError::Closed)?
            .insert(id, tx);
        // Removes the waiter however this call ends (answer, timeout, or the caller giving up).
        let _guard = PendingGuard { agent: self, id };
        let frame = Request::new(id, method, params).to_frame();
        {
            let writer = self.writer.lock().await;
            writer
                .data_bytes(bytes::Bytes::from(frame))
                .await
                .map_err(SshError::from_russh)?;
        }
        let response = tokio::time::timeout(timeout, rx)
            .await
            .map_err(|_| SshError::Timeout {
                stage: Stage::Request,
                after: timeout,
            })?
            .map_err(|_| SshError::Closed)??;
        response.into_result().map_err(|e| match e.code {
            crate::agent::protocol::ErrorCode::NotRoot => SshError::NoRoot { detail: e.message },
            code => SshError::AgentError {
                code,
                message: e.message,
            },
        })
    }

    /// Close the channel (sends EOF and CLOSE); waiting callers get `Closed`.
    pub async fn close(&self) {
        let writer = self.writer.lock().await;
        let _ = writer.eof().await;
        let _ = writer.close().await;
        drop(writer);
        self.mark_closed(SshError::Closed);
    }

    fn mark_closed(&self, reason: SshError) {
        self.closed.store(true, Ordering::Release);
        let waiters: Vec<Waiter> = match self.pending.lock() {
            Ok(mut map) => map.drain().map(|(_, w)| w).collect(),
            Err(_) => Vec::new(),
        };
        for waiter in waiters {
            let _ = waiter.send(Err(reason.clone()));
        }
        let _ = self.closed_tx.send(true);
    }

    fn deliver(&self, response: Response) {
        let Some(id) = response.id else {
            tracing::warn!("agent answered a request it could not parse");
            return;
        };
        let waiter = self.pending.lock().ok().and_then(|mut m| m.remove(&id));
        if let Some(waiter) = waiter {
            let _ = waiter.send(Ok(response));
        }
    }

    pub fn pending(&self) -> usize {
        self.pending.lock().map(|m| m.len()).unwrap_or(0)
    }
}

struct PendingGuard<'a> {
    agent: &'a AgentChannel,
    id: u64,
}

impl Drop for PendingGuard<'_> {
    fn drop(&mut self) {
        if let Ok(mut map) = self.agent.pending.lock() {
            map.remove(&self.id);
        }
    }
}

async fn read_loop(mut reader: russh::ChannelReadHalf, agent: std::sync::Weak<AgentChannel>) {
    // The start of an unfinished line (never holds a newline): only new bytes are searched, so a
    // long frame arriving in many chunks is scanned once.
    let mut buf: Vec<u8> = Vec::new();
    let mut exit_status = None;
    let mut answered_any = false;
    while let Some(msg) = reader.wait().await {
        match msg {
            ChannelMsg::Data { data } => {
                let Some(agent) = agent.upgrade() else { return };
                // Most chunks hold whole lines: parse them straight from the chunk.
                let mut rest: &[u8] = &data;
                while let Some(pos) = rest.iter().position(|b| *b == b'\n') {
                    let line = if buf.is_empty() {
                        &rest[..pos]
                    } else {
                        buf.extend_from_slice(&rest[..pos]);
                        &buf[..]
                    };
                    match serde_json::from_slice::<Response>(line) {
                        Ok(response) => {
                            answered_any = true;
                            agent.deliver(response);
                        }
                        Err(e) => {
                            tracing::warn!(error = %e, "agent sent a line that is not a response");
                        }
                    }
                    buf.clear();
                    rest = &rest[pos + 1..];
                }
                buf.extend_from_slice(rest);
                if buf.is_empty() && buf.capacity() > 64 * 1024 {
                    // A large answer went by: do not keep its buffer for the connection's life.
                    buf = Vec::new();
                }
                if buf.len() > MAX_FRAME {
                    agent.mark_closed(SshError::ProtocolError(
                        "agent sent a message over 16 MiB".to_owned(),
                    ));
                    Box::pin(agent.close()).await;
                    return;
                }
            }
            ChannelMsg::ExtendedData { data, .. } => {
                let text = String::from_utf8_lossy(&data);
                tracing::debug!(stderr = %text.trim_end(), "agent stderr");
            }
            ChannelMsg::ExitStatus { exit_status: code } => exit_status = Some(code),
            ChannelMsg::Eof | ChannelMsg::Close => break,
            _ => {}
        }
    }
    if let Some(agent) = agent.upgrade() {
        // 126/127: the shell could not find or run the agent.
        let reason = match exit_status {
            Some(126 | 127) if !answered_any => SshError::AgentMissing,
            _ => SshError::Closed,
        };
        agent.mark_closed(reason);
    }
}
