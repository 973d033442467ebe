//! One-shot commands on their own exec channel (bootstrap, agent install, diagnostics). The
//! channel is always closed when the command ends or times out, so a connection never
//! accumulates channels (OpenSSH allows ten).

use std::time::Duration;

use russh::ChannelMsg;

use super::error::Stage;
use super::session::{open_channel, Session};
use super::SshError;

/// Output of a finished command.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExecOutput {
    pub stdout: Vec<u8>,
    pub stderr: Vec<u8>,
    /// `None` when the command ended without reporting a status (e.g. killed by a signal).
    pub exit_status: Option<u32>,
}

impl ExecOutput {
    pub fn stdout_text(&self) -> String {
        String::from_utf8_lossy(&self.stdout).into_owned()
    }
}

/// Cap on collected output, so a runaway command cannot exhaust memory.
const MAX_OUTPUT: usize = 64 * 1024 * 1024;

pub async fn run(
    session: &Session,
    command: &str,
    stdin: Option<Vec<u8>>,
    channel_timeout: Duration,
    timeout: Duration,
) -> Result<ExecOutput, SshError> {
    let mut channel = open_channel(session, channel_timeout).await?;
    let work = async {
        channel
            .exec(true, command)
            .await
            .map_err(SshError::from_russh)?;
        if let Some(input) = stdin {
            channel
                .data_bytes(bytes::Bytes::from(input))
                .await
                .map_err(SshError::from_russh)?;
        }
        channel.eof().await.map_err(SshError::from_russh)?;
        let mut out = ExecOutput {
            stdout: Vec::new(),
            stderr: Vec::new(),
            exit_status: None,
        };
        while let Some(msg) = channel.wait().await {
            match msg {
                ChannelMsg::Data { data } if out.stdout.len() < MAX_OUTPUT => {
                    out.stdout.extend_from_slice(&data)
                }
                ChannelMsg::ExtendedData { data, .. } if out.stderr.len() < MAX_OUTPUT => {
                    out.stderr.extend_from_slice(&data)
                }
                ChannelMsg::ExitStatus { exit_status } => out.exit_status = Some(exit_status),
                ChannelMsg::Failure => {
                    return Err(SshError::ProtocolError(
                        "the device refused to run the command".to_owned(),
                    ))
                }
                ChannelMsg::Close => break,
                _ => {}
            }
        }
        Ok(out)
    };
    let result = tokio::time::timeout(timeout, work)
        .await
        .unwrap_or(Err(SshError::Timeout {
            stage: Stage::Request,
            after: timeout,
        }));
    // Always release the channel, whatever happened above.
    let _ = channel.close().await;
    result
}
