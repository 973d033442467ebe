//! The simulated device's SSH server (russh): password login for root/admin, key login for root
//! through Mudmap's lines in the admin account's authorized keys (agent only, as the forced
//! command), and for the `mudmap` account of agents before 1.2.0 (agent without root), at most ten
//! channels per connection, and an sshguard-style lockout after fifteen bad passwords.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use russh::keys::PublicKey;
use russh::server::{Auth, ChannelOpenHandle, Msg, Session};
use russh::{Channel, ChannelId, ChannelOpenFailure, MethodKind, MethodSet};

use super::agent::handle_device_line;
use super::device::{KeyLogin, SimDevice, MAX_SESSIONS};
use crate::activation::remote;
use crate::agent::protocol::MAX_FRAME;

/// russh server settings for one device identity.
pub fn server_config(host_key: russh::keys::PrivateKey) -> Arc<russh::server::Config> {
    Arc::new(russh::server::Config {
        keys: vec![host_key],
        auth_rejection_time: Duration::from_millis(100),
        auth_rejection_time_initial: Some(Duration::ZERO),
        // As OpenSSH: no server-side idle timeout; clients keep sessions alive.
        inactivity_timeout: None,
        nodelay: true,
        ..Default::default()
    })
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Principal {
    /// root or admin, logged in with the password: may run anything.
    Admin,
    /// root through a Mudmap key: may run only the agent (forced command).
    Service,
    /// The pre-1.2.0 `mudmap` account: the forced command, but the agent has no root (and the
    /// agent's directory, root's, is not writable).
    Legacy,
}

#[derive(Debug)]
enum Mode {
    /// Opened, no exec yet.
    Idle,
    /// Resident agent: answers every line until the client closes.
    Serve(Lines),
    /// One request, one response, then exit.
    Call(Lines),
    /// Receiving the agent's bytes (install or self-heal) until end of input.
    Install(usize),
}

/// Input not yet answered. `scanned` bytes are known to hold no newline, so each chunk is
/// searched once (a 16 MiB line costs linear time, not quadratic); a line over
/// [`MAX_FRAME`] is answered `frame_too_large` once and its remainder skipped, as the real
/// agent does.
#[derive(Debug, Default)]
struct Lines {
    buf: Vec<u8>,
    scanned: usize,
    skipping: bool,
}

/// What the next step of a [`Lines`] buffer is.
enum Next {
    Line(Vec<u8>),
    TooLarge,
    Wait,
}

impl Lines {
    fn next(&mut self) -> Next {
        loop {
            match self.buf[self.scanned..].iter().position(|b| *b == b'\n') {
                Some(rel) => {
                    let end = self.scanned + rel;
                    let line: Vec<u8> = self.buf.drain(..=end).collect();
                    self.scanned = 0;
                    if std::mem::take(&mut self.skipping) {
                        continue;
                    }
                    if end > MAX_FRAME {
                        return Next::TooLarge;
                    }
                    return Next::Line(line);
                }
                None => {
                    if self.skipping {
                        self.buf.clear();
                        self.scanned = 0;
                        return Next::Wait;
                    }
                    self.scanned = self.buf.len();
                    if self.buf.len() > MAX_FRAME {
                        self.buf.clear();
                        self.scanned = 0;
                        self.skipping = true;
                        return Next::TooLarge;
                    }
                    return Next::Wait;
                }
            }
        }
    }
}

pub struct DeviceSession {
    device: Arc<SimDevice>,
    peer: IpAddr,
    principal: Option<Principal>,
    channels: HashMap<ChannelId, Mode>,
}

impl DeviceSession {
    pub fn new(device: Arc<SimDevice>, peer: IpAddr) -> Self {
        device.sessions_started.fetch_add(1, Ordering::Relaxed);
        Self {
            device,
            peer,
            principal: None,
            channels: HashMap::new(),
        }
    }

    fn finish(
        &mut self,
        channel: ChannelId,
        status: u32,
        session: &mut Session,
    ) -> Result<(), russh::Error> {
        session.exit_status_request(channel, status)?;
        session.eof(channel)?;
        session.close(channel)?;
        // Closing first means russh will not call channel_close for it.
        self.channels.remove(&channel);
        Ok(())
    }

    /// Answer every complete line in the buffer; returns the exit status once a one-shot call
    /// is done: 0, or 2 when its input was not a request at all (as the real agent does).
    fn drain_lines(
        &mut self,
        channel: ChannelId,
        session: &mut Session,
    ) -> Result<Option<u32>, russh::Error> {
        let device = self.device.clone();
        let root = self.principal != Some(Principal::Legacy);
        let Some(mode) = self.channels.get_mut(&channel) else {
            return Ok(None);
        };
        let (buf, one_shot) = match mode {
            Mode::Serve(buf) => (buf, false),
            Mode::Call(buf) => (buf, true),
            Mode::Idle | Mode::Install(_) => return Ok(None),
        };
        let mut answered = None;
        loop {
            let response = match buf.next() {
                Next::Wait => break,
                Next::TooLarge => crate::agent::protocol::Response::failure(
                    None,
                    crate::agent::protocol::ErrorCode::FrameTooLarge,
                    "message exceeds 16 MiB",
                ),
                Next::Line(line) => handle_device_line(&device, &line[..line.len() - 1], root),
            };
            session.data(channel, response.to_frame())?;
            answered = Some(if response.id.is_none() { 2 } else { 0 });
            if one_shot {
                break;
            }
        }
        Ok(answered.filter(|_| one_shot))
    }
}

/// Refuse this attempt; as a pfSense sshd does, keep offering both password and key login (keys
/// only with "SSHd Key Only" set).
fn reject(key_only: bool) -> Auth {
    let methods: &[MethodKind] = if key_only {
        &[MethodKind::PublicKey]
    } else {
        &[MethodKind::Password, MethodKind::PublicKey]
    };
    Auth::Reject {
        proceed_with_methods: Some(MethodSet::from(methods)),
        partial_success: false,
    }
}

impl russh::server::Handler for DeviceSession {
    type Error = russh::Error;

    async fn auth_none(&mut self, _user: &str) -> Result<Auth, Self::Error> {
        Ok(reject(self.device.faults().key_only))
    }

    async fn auth_password(&mut self, user: &str, password: &str) -> Result<Auth, Self::Error> {
        if self.device.faults().key_only {
            return Ok(reject(true));
        }
        let allowed = matches!(user, "root" | "admin");
        if allowed && password == self.device.password {
            self.device.record_good_password(self.peer);
            self.principal = Some(Principal::Admin);
            return Ok(Auth::Accept);
        }
        self.device.record_failed_password(self.peer);
        Ok(reject(false))
    }

    async fn auth_publickey_offered(
        &mut self,
        user: &str,
        offer: russh::server::PublicKeyOffer<'_>,
    ) -> Result<Auth, Self::Error> {
        Ok(
            if self.device.login_with_key(user, offer.public_key).is_some() {
                Auth::Accept
            } else {
                reject(self.device.faults().key_only)
            },
        )
    }

    async fn auth_publickey(
        &mut self,
        user: &str,
        key: russh::server::VerifiedPublicKey<'_>,
    ) -> Result<Auth, Self::Error> {
        let key: &PublicKey = key.public_key;
        if let Some(login) = self.device.login_with_key(user, key) {
            self.principal = Some(match login {
                KeyLogin::Root if !self.device.faults().no_root => Principal::Service,
                KeyLogin::Root | KeyLogin::Legacy => Principal::Legacy,
            });
            return Ok(Auth::Accept);
        }
        Ok(reject(self.device.faults().key_only))
    }

    async fn channel_open_session(
        &mut self,
        channel: Channel<Msg>,
        reply: ChannelOpenHandle,
        _session: &mut Session,
    ) -> Result<(), Self::Error> {
        if self.channels.len() >= MAX_SESSIONS {
            self.device.channels_refused.fetch_add(1, Ordering::Relaxed);
            reply.reject(ChannelOpenFailure::ResourceShortage).await;
            return Ok(());
        }
        self.channels.insert(channel.id(), Mode::Idle);
        self.device
            .max_channels_seen
            .fetch_max(self.channels.len(), Ordering::Relaxed);
        // Only the callbacks are used; an unread Channel would stall the connection.
        drop(channel);
        reply.accept().await;
        Ok(())
    }

    async fn exec_request(
        &mut self,
        channel: ChannelId,
        data: &[u8],
        session: &mut Session,
    ) -> Result<(), Self::Error> {
        let command = String::from_utf8_lossy(data).trim().to_owned();
        session.channel_success(channel)?;
        let install = match self.principal {
            Some(Principal::Service | Principal::Legacy) => command == remote::SELF_HEAL,
            Some(Principal::Admin) => command == remote::INSTALL_AGENT,
            None => false,
        };
        let is_agent = match self.principal {
            // Forced command: whatever else the key's account asks for, it gets the agent.
            Some(Principal::Service | Principal::Legacy) => !install,
            Some(Principal::Admin) => command.contains("agent") && !install,
            None => false,
        };
        let mode = match self.principal {
            None => return self.finish(channel, 126, session),
            Some(Principal::Legacy) if install => {
                // The agent's directory is root's: the old account cannot replace the agent.
                let message = "/bin/sh: cannot create /usr/local/share/mudmap/agent.php.new: Permission denied\n";
                session.extended_data(channel, 1, message.as_bytes().to_vec())?;
                return self.finish(channel, 1, session);
            }
            Some(_) if install => Mode::Install(0),
            Some(principal) if is_agent => {
                if !self.device.has_agent() {
                    // As the forced command's dispatcher (127) or php without its script (1).
                    let (message, status) = match principal {
                        Principal::Service | Principal::Legacy => ("", 127),
                        Principal::Admin => (
                            "Could not open input file: /usr/local/share/mudmap/agent.php\n",
                            1,
                        ),
                    };
                    session.extended_data(channel, 1, message.as_bytes().to_vec())?;
                    return self.finish(channel, status, session);
                }
                if command.ends_with("call") {
                    Mode::Call(Lines::default())
                } else {
                    Mode::Serve(Lines::default())
                }
            }
            Some(_) => {
                let (out, err, status) = self.shell(&command);
                session.data(channel, out.into_bytes())?;
                if !err.is_empty() {
                    session.extended_data(channel, 1, err.into_bytes())?;
                }
                return self.finish(channel, status, session);
            }
        };
        self.channels.insert(channel, mode);
        Ok(())
    }

    async fn data(
        &mut self,
        channel: ChannelId,
        data: &[u8],
        session: &mut Session,
    ) -> Result<(), Self::Error> {
        match self.channels.get_mut(&channel) {
            Some(Mode::Serve(lines) | Mode::Call(lines))
                if !lines.skipping || data.contains(&b'\n') =>
            {
                lines.buf.extend_from_slice(data);
            }
            Some(Mode::Install(received)) => *received += data.len(),
            _ => {}
        }
        if let Some(status) = self.drain_lines(channel, session)? {
            self.finish(channel, status, session)?;
        }
        Ok(())
    }

    async fn channel_eof(
        &mut self,
        channel: ChannelId,
        session: &mut Session,
    ) -> Result<(), Self::Error> {
        // End of input: the agent exits (serve mode's normal end; a call without a request line).
        let status = match self.channels.get(&channel) {
            Some(Mode::Call(_)) => 2,
            Some(Mode::Install(received)) => {
                if self.device.faults().agent_install_fails {
                    let message = "mkdir: /usr/local/share/mudmap: Read-only file system\n";
                    session.extended_data(channel, 1, message.as_bytes().to_vec())?;
                    1
                } else if *received == 0 {
                    0
                } else {
                    self.device.agent_installed.store(true, Ordering::Relaxed);
                    0
                }
            }
            Some(_) => 0,
            None => return Ok(()),
        };
        self.finish(channel, status, session)
    }

    async fn channel_close(
        &mut self,
        channel: ChannelId,
        _session: &mut Session,
    ) -> Result<(), Self::Error> {
        self.channels.remove(&channel);
        Ok(())
    }
}

impl DeviceSession {
    /// The shell commands activation and removal run (and a few to look around): stdout,
    /// stderr, exit status.
    fn shell(&self, command: &str) -> (String, String, u32) {
        let Ok(model) = self.device.model.lock() else {
            return (String::new(), "internal error\n".to_owned(), 1);
        };
        let faults = self.device.faults();
        if command == remote::DETECT {
            return if faults.not_pfsense {
                (
                    String::new(),
                    "cat: /etc/platform: No such file or directory\ncat: /etc/version: No such file or directory\n".to_owned(),
                    1,
                )
            } else {
                (
                    format!("pfSense\n{}-RELEASE\n", model.version.version),
                    String::new(),
                    0,
                )
            };
        }
        if command == remote::REMOVE_AGENT {
            if self.device.has_mudmap_key() {
                return ("kept\n".to_owned(), String::new(), 0);
            }
            self.device.agent_installed.store(false, Ordering::Relaxed);
            return (String::new(), String::new(), 0);
        }
        let (out, status) = match command {
            "cat /etc/version" => (format!("{}-RELEASE\n", model.version.version), 0),
            "cat /etc/platform" => ("pfSense\n".to_owned(), 0),
            "uname -s" => ("FreeBSD\n".to_owned(), 0),
            "uname -a" => (
                format!(
                    "FreeBSD {} 14.0-CURRENT FreeBSD 14.0-CURRENT amd64\n",
                    model.hostname
                ),
                0,
            ),
            "id -u" => ("0\n".to_owned(), 0),
            "hostname" => (format!("{}.{}\n", model.hostname, model.domain), 0),
            "true" => (String::new(), 0),
            _ => {
                let name = command.split_whitespace().next().unwrap_or("");
                return (String::new(), format!("sh: {name}: not found\n"), 127);
            }
        };
        (out, String::new(), status)
    }
}
