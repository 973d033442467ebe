//! Establishing one SSH session: resolve, TCP connect (with TCP_NODELAY), handshake with a pinned
//! host-key check, authenticate — each step under its own timeout, each failure a typed error.

use std::borrow::Cow;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use russh::client::{self, AuthResult, Handle};
use russh::keys::{Algorithm, PrivateKeyWithHashAlg, PublicKey, PublicKeyOrCertificate};
use russh::{kex, MethodKind, Preferred};

use super::error::{io_error, Stage};
use super::hostkeys::{HostKeyCheck, HostKeyStore};
use super::{Credentials, DeviceId, DeviceTarget, EngineConfig, SshError};

/// Client settings: curve25519 key exchange (with the strict-kex and ext-info markers that guard
/// against Terrapin), ed25519 host keys only, keepalives so neither side's idle timeout reaps a
/// live session, and an inactivity backstop.
pub fn client_config(config: &EngineConfig) -> Arc<client::Config> {
    let preferred = Preferred {
        kex: Cow::Owned(vec![
            kex::CURVE25519,
            kex::CURVE25519_PRE_RFC_8731,
            kex::EXTENSION_SUPPORT_AS_CLIENT,
            kex::EXTENSION_OPENSSH_STRICT_KEX_AS_CLIENT,
        ]),
        key: Cow::Owned(vec![Algorithm::Ed25519]),
        // Agent JSON is small; zlib state would cost ~300 KB per connection.
        compression: Cow::Borrowed(&[russh::compression::NONE]),
        ..Preferred::default()
    };
    Arc::new(client::Config {
        preferred,
        keepalive_interval: Some(config.keepalive_interval),
        keepalive_max: config.keepalive_max,
        inactivity_timeout: Some(config.keepalive_interval * (config.keepalive_max as u32 + 2)),
        nodelay: true,
        // Small per-channel queues: the resident channel is drained continuously.
        channel_buffer_size: 32,
        // Caps the read buffer's high-water mark (it is kept for the connection's life); agent
        // answers are mostly a few KB.
        maximum_packet_size: 16 * 1024,
        ..Default::default()
    })
}

/// The russh client callbacks: only the host-key check matters.
pub struct ClientHandler {
    device: DeviceId,
    host_keys: Arc<dyn HostKeyStore>,
    verdict: Arc<Mutex<Option<(HostKeyCheck, PublicKey)>>>,
    /// `true` to record the key and refuse (used by [`probe_host_key`]).
    probe_only: bool,
}

impl client::Handler for ClientHandler {
    type Error = russh::Error;

    async fn check_server_key(
        &mut self,
        key: &PublicKeyOrCertificate,
    ) -> Result<bool, Self::Error> {
        let key = key.public_key();
        let check = self.host_keys.check(&self.device, &key).await;
        let accept = !self.probe_only && check == HostKeyCheck::Valid;
        if let Ok(mut slot) = self.verdict.lock() {
            *slot = Some((check, key));
        }
        Ok(accept)
    }
}

pub type Session = Handle<ClientHandler>;

/// Connect, verify the host key and authenticate.
pub async fn establish(
    target: &DeviceTarget,
    config: &EngineConfig,
    ssh: Arc<client::Config>,
    host_keys: Arc<dyn HostKeyStore>,
) -> Result<Session, SshError> {
    let mut session = handshake(target, config, ssh, host_keys).await?;
    authenticate(&mut session, target, config).await?;
    Ok(session)
}

/// What a handshake attempt produced, and the verdict on the key the device presented.
type Attempt = (
    Result<Result<Session, russh::Error>, tokio::time::error::Elapsed>,
    Option<(HostKeyCheck, PublicKey)>,
);

/// TCP connect and SSH handshake up to the host-key check, without interpreting the outcome.
async fn attempt_handshake(
    target: &DeviceTarget,
    config: &EngineConfig,
    ssh: Arc<client::Config>,
    host_keys: Arc<dyn HostKeyStore>,
    probe_only: bool,
) -> Result<Attempt, SshError> {
    let stream = tcp_connect(target, config.connect_timeout).await?;
    let verdict = Arc::new(Mutex::new(None));
    let handler = ClientHandler {
        device: target.id.clone(),
        host_keys,
        verdict: verdict.clone(),
        probe_only,
    };
    let outcome = tokio::time::timeout(
        config.handshake_timeout,
        client::connect_stream(ssh, stream, handler),
    )
    .await;
    let seen = verdict.lock().ok().and_then(|mut v| v.take());
    Ok((outcome, seen))
}

fn handshake_timeout(config: &EngineConfig) -> SshError {
    SshError::Timeout {
        stage: Stage::Handshake,
        after: config.handshake_timeout,
    }
}

pub(super) async fn handshake(
    target: &DeviceTarget,
    config: &EngineConfig,
    ssh: Arc<client::Config>,
    host_keys: Arc<dyn HostKeyStore>,
) -> Result<Session, SshError> {
    match attempt_handshake(target, config, ssh, host_keys, false).await? {
        (Err(_), _) => Err(handshake_timeout(config)),
        (Ok(Ok(session)), _) => Ok(session),
        (Ok(Err(russh::Error::UnknownKey)), seen) => match seen {
            Some((HostKeyCheck::Mismatch { expected, got }, _)) => {
                Err(SshError::HostKeyMismatch { expected, got })
            }
            Some((HostKeyCheck::Unknown { fingerprint }, _)) => {
                Err(SshError::HostKeyUnknown { fingerprint })
            }
            Some((HostKeyCheck::Valid, key)) => Err(SshError::HostKeyUnknown {
                fingerprint: super::hostkeys::fingerprint(&key),
            }),
            None => Err(SshError::ProtocolError("host key was rejected".to_owned())),
        },
        (Ok(Err(e)), _) => Err(SshError::from_russh(e)),
    }
}

/// Connect and return the key the device presents, without trusting it or authenticating: what
/// the activation flow shows the user for confirmation before pinning it.
pub async fn probe_host_key(
    target: &DeviceTarget,
    config: &EngineConfig,
    ssh: Arc<client::Config>,
) -> Result<PublicKey, SshError> {
    struct TrustNothing;
    #[async_trait::async_trait]
    impl HostKeyStore for TrustNothing {
        async fn check(&self, _: &DeviceId, key: &PublicKey) -> HostKeyCheck {
            HostKeyCheck::Unknown {
                fingerprint: super::hostkeys::fingerprint(key),
            }
        }
        async fn pin(&self, _: &DeviceId, _: &PublicKey) {}
    }
    match attempt_handshake(target, config, ssh, Arc::new(TrustNothing), true).await? {
        (_, Some((_, key))) => Ok(key),
        (Err(_), None) => Err(handshake_timeout(config)),
        (Ok(Err(e)), None) => Err(SshError::from_russh(e)),
        (Ok(Ok(_)), None) => Err(SshError::ProtocolError(
            "no host key was presented".to_owned(),
        )),
    }
}

async fn tcp_connect(
    target: &DeviceTarget,
    timeout: Duration,
) -> Result<tokio::net::TcpStream, SshError> {
    let timed_out = SshError::Timeout {
        stage: Stage::Connect,
        after: timeout,
    };
    let connect = async {
        let mut last = None;
        let addrs = tokio::net::lookup_host((target.host.as_str(), target.port))
            .await
            .map_err(|e| SshError::Unreachable {
                reason: format!("cannot resolve {}: {e}", target.host),
            })?;
        for addr in addrs {
            match tokio::net::TcpStream::connect(addr).await {
                Ok(stream) => return Ok(stream),
                Err(e) => last = Some(io_error(&e)),
            }
        }
        Err(last.unwrap_or_else(|| SshError::Unreachable {
            reason: format!("{} has no address", target.host),
        }))
    };
    let stream = tokio::time::timeout(timeout, connect)
        .await
        .map_err(|_| timed_out)??;
    let _ = stream.set_nodelay(true);
    Ok(stream)
}

pub(super) async fn authenticate(
    session: &mut Session,
    target: &DeviceTarget,
    config: &EngineConfig,
) -> Result<(), SshError> {
    let attempt = async {
        match &target.credentials {
            Credentials::Key(key) => {
                session
                    .authenticate_publickey(
                        target.username.clone(),
                        PrivateKeyWithHashAlg::new(key.clone(), None),
                    )
                    .await
            }
            Credentials::Password(password) => {
                session
                    .authenticate_password(target.username.clone(), password.expose().to_owned())
                    .await
            }
        }
    };
    let result = tokio::time::timeout(config.auth_timeout, attempt)
        .await
        .map_err(|_| SshError::Timeout {
            stage: Stage::Auth,
            after: config.auth_timeout,
        })?
        .map_err(SshError::from_russh)?;
    match result {
        AuthResult::Success => Ok(()),
        AuthResult::Failure { .. } if session.is_closed() => Err(SshError::Closed),
        AuthResult::Failure {
            remaining_methods, ..
        } => Err(SshError::AuthFailed {
            password_allowed: remaining_methods.contains(&MethodKind::Password),
        }),
    }
}

/// Open a session channel within `timeout`. A refusal (the device's channel limit) is `Busy`.
pub async fn open_channel(
    session: &Session,
    timeout: Duration,
) -> Result<russh::Channel<client::Msg>, SshError> {
    tokio::time::timeout(timeout, session.channel_open_session())
        .await
        .map_err(|_| SshError::Timeout {
            stage: Stage::ChannelOpen,
            after: timeout,
        })?
        .map_err(|e| match e {
            russh::Error::ChannelOpenFailure(_) => SshError::Busy,
            other => SshError::from_russh(other),
        })
}
