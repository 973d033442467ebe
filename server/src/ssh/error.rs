//! What can go wrong talking to a device, as the UI needs to tell it: each variant maps to one
//! sentence that says what happened and what to do.

use std::time::Duration;

use crate::agent::protocol::ErrorCode;

/// The step that ran out of time.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stage {
    Connect,
    Handshake,
    Auth,
    ChannelOpen,
    Request,
}

impl Stage {
    pub fn as_str(self) -> &'static str {
        match self {
            Stage::Connect => "connecting",
            Stage::Handshake => "the SSH handshake",
            Stage::Auth => "authentication",
            Stage::ChannelOpen => "opening a channel",
            Stage::Request => "waiting for the agent's answer",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SshError {
    #[error("the device cannot be reached ({reason}); check the host, the port and the route from Mudmap to it")]
    Unreachable { reason: String },
    #[error("the device refused the connection; is SSH enabled on it and listening on this port?")]
    Refused,
    #[error("timed out after {} s while {}; the device or the path to it is slow or down", .after.as_secs(), .stage.as_str())]
    Timeout { stage: Stage, after: Duration },
    #[error("the device rejected the credentials{}", if *.password_allowed { "" } else { " (it accepts SSH keys only)" })]
    AuthFailed {
        /// Whether the device still offers password login.
        password_allowed: bool,
    },
    #[error("the device's host key changed: expected {expected}, got {got}; it is quarantined until an admin confirms the new key")]
    HostKeyMismatch { expected: String, got: String },
    #[error("the device's host key {fingerprint} is not trusted yet; confirm it to continue")]
    HostKeyUnknown { fingerprint: String },
    #[error("SSH protocol error: {0}")]
    ProtocolError(String),
    #[error("the Mudmap agent is not installed on the device (or does not start); reinstall it")]
    AgentMissing,
    #[error("the agent reported {code:?}: {message}")]
    AgentError { code: ErrorCode, message: String },
    /// The key logs in, but not as root (an account of agents before 1.2.0, or a key moved to
    /// another account): nothing can be changed until the device is re-activated.
    #[error("Mudmap's key on the device has no root access ({detail}); re-activate the device")]
    NoRoot { detail: String },
    /// The agent does not list the method in its `hello` (too old; self-heal updates it).
    #[error("the Mudmap agent on the device does not offer {method} yet; it is updated when Mudmap next connects")]
    Unsupported { method: String },
    #[error("too much work is queued for this device; try again shortly")]
    Busy,
    #[error("the connection to the device closed")]
    Closed,
    /// The engine does not hold this device (never handed over, or removed): not a connection
    /// problem, so never retried.
    #[error("Mudmap does not manage this device; activate it first")]
    NotManaged,
}

impl SshError {
    /// Errors worth retrying later without a person changing anything.
    pub fn is_transient(&self) -> bool {
        matches!(
            self,
            SshError::Unreachable { .. }
                | SshError::Refused
                | SshError::Timeout { .. }
                | SshError::Busy
                | SshError::Closed
        )
    }

    pub(crate) fn from_russh(error: russh::Error) -> Self {
        match error {
            russh::Error::ConnectionTimeout => SshError::Timeout {
                stage: Stage::Handshake,
                after: Duration::ZERO,
            },
            russh::Error::Disconnect | russh::Error::HUP | russh::Error::SendError => {
                SshError::Closed
            }
            russh::Error::IO(io) => io_error(&io),
            other => SshError::ProtocolError(other.to_string()),
        }
    }
}

pub(crate) fn io_error(io: &std::io::Error) -> SshError {
    use std::io::ErrorKind;
    match io.kind() {
        ErrorKind::ConnectionRefused => SshError::Refused,
        ErrorKind::ConnectionReset
        | ErrorKind::ConnectionAborted
        | ErrorKind::BrokenPipe
        | ErrorKind::UnexpectedEof => SshError::Closed,
        _ => SshError::Unreachable {
            reason: io.to_string(),
        },
    }
}
