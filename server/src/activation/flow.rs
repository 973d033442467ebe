//! One activation run, step by step: connect (the password is only sent to the host key the
//! person confirmed), log in, check for pfSense, install the agent, add a fresh ed25519 key for
//! this device to the admin account's authorized keys (decision 0007), reconnect as root with that
//! key and check that the agent answers as root, remove the service account of agents before
//! 1.2.0 if the device had one, then save. Any failure undoes
//! what the run put on the device and ends with a sentence that says what happened and what to do.
//!
//! The password lives in this run's memory only: it is dropped (and wiped) when the run ends, and
//! no log line, error or progress text ever contains it.

use std::sync::Arc;

use russh::keys::ssh_key::private::Ed25519Keypair;
use russh::keys::{PrivateKey, PublicKey};
use serde_json::{json, Value};

use super::remote::{self, NotSupported};
use super::Tracker;
use crate::agent::keys;
use crate::agent::protocol::{AccessEnsured, Hello, PfSenseVersion, Request, Response};
use crate::config::Secret;
use crate::ssh::{
    fingerprint, ConfirmedFingerprint, Credentials, DeviceId, DeviceTarget, DirectSession,
    EngineConfig, SshError, Stage,
};

/// The device a run works on.
#[derive(Debug, Clone)]
pub struct Plan {
    pub device_id: String,
    pub host: String,
    pub port: u16,
    /// The admin account to log in with.
    pub username: String,
    /// The host key fingerprint the person confirmed.
    pub fingerprint: String,
    /// The comment of this device's key line: `mudmap:<instance>:<device>`.
    pub comment: String,
}

impl Plan {
    pub fn address(&self) -> String {
        if self.host.contains(':') {
            format!("[{}]:{}", self.host, self.port)
        } else {
            format!("{}:{}", self.host, self.port)
        }
    }

    pub fn target(&self, username: &str, credentials: Credentials) -> DeviceTarget {
        DeviceTarget {
            id: DeviceId::new(self.device_id.as_str()),
            host: self.host.clone(),
            port: self.port,
            username: username.to_owned(),
            credentials,
            agent_command: String::new(),
            self_heal: None,
        }
    }
}

/// What a successful run learned and created; saved by the caller's `commit`.
pub struct Activated {
    pub host_key: PublicKey,
    pub pfsense: PfSenseVersion,
    pub agent_version: String,
    pub service_user: String,
    pub service_key: PrivateKey,
}

/// A failed step: which, and the sentence for the person.
struct Failure {
    step: &'static str,
    message: String,
}

impl Failure {
    fn new(step: &'static str, message: impl Into<String>) -> Self {
        Self {
            step,
            message: message.into(),
        }
    }
}

/// What the run has put on the device so far (undone in reverse on failure).
#[derive(Default)]
struct Placed {
    agent: bool,
    /// The key line, once `access.ensure` was asked for.
    access: Option<String>,
    /// The line replaced an earlier one of this device (a re-activation): undoing it leaves none.
    replaced: bool,
}

/// Run the activation. `commit` saves the result (and may still fail, which undoes the run).
/// A failure is returned as the step and its first sentence (what the audit log keeps).
pub async fn run<F>(
    config: &EngineConfig,
    plan: Plan,
    password: Secret,
    tracker: &Tracker,
    commit: F,
) -> Result<(), String>
where
    F: AsyncFnOnce(Activated) -> Result<(), String>,
{
    let mut admin = None;
    let mut placed = Placed::default();
    let outcome = steps(config, &plan, &password, tracker, &mut admin, &mut placed).await;
    let outcome = match outcome {
        Ok(activated) => commit(activated)
            .await
            .map_err(|e| Failure::new("verify", format!("The activation could not be saved: {e}"))),
        Err(failure) => Err(failure),
    };
    let succeeded = match outcome {
        Ok(()) => {
            tracing::info!(device.id = %plan.device_id, "device activated");
            tracker.succeed();
            Ok(())
        }
        Err(failure) => {
            tracing::warn!(device.id = %plan.device_id, step = failure.step, "activation failed");
            let reason = format!("{}: {}", failure.step, first_sentence(&failure.message));
            tracker.failed(failure.step, first_sentence(&failure.message));
            let cleanup = undo(config, &plan, &password, tracker, &mut admin, &placed).await;
            tracker.fail(failure.message, cleanup);
            Err(reason)
        }
    };
    if let Some(session) = admin {
        session.close().await;
    }
    succeeded
}

async fn steps(
    config: &EngineConfig,
    plan: &Plan,
    password: &Secret,
    tracker: &Tracker,
    admin: &mut Option<DirectSession>,
    placed: &mut Placed,
) -> Result<Activated, Failure> {
    let pinned = Arc::new(ConfirmedFingerprint::new(plan.fingerprint.clone()));
    let target = plan.target(
        &plan.username,
        Credentials::Password(Secret::new(password.expose())),
    );

    tracker.running("connect");
    let mut session = DirectSession::connect(&target, config, pinned.clone())
        .await
        .map_err(|e| Failure::new("connect", connect_failure(plan, config, &e)))?;
    tracker.done(
        "connect",
        format!(
            "{} presented the confirmed key {}",
            plan.address(),
            plan.fingerprint
        ),
    );

    tracker.running("login");
    session
        .login(&target)
        .await
        .map_err(|e| Failure::new("login", login_failure(plan, &e)))?;
    let session = admin.insert(session);
    tracker.done("login", format!("Logged in as {}", plan.username));

    tracker.running("detect");
    let detect = session
        .exec(remote::DETECT, None)
        .await
        .map_err(|e| Failure::new("detect", lost("checking the system", &e)))?;
    let pfsense = remote::parse_detect(detect.exit_status, &detect.stdout_text()).map_err(|e| {
        Failure::new(
            "detect",
            match e {
                NotSupported::NotPfSense(seen) => format!(
                    "This is not a pfSense system ({seen}). Mudmap manages pfSense CE 2.6 or later and pfSense Plus; check the address."
                ),
                NotSupported::TooOld(version) => format!(
                    "This firewall runs pfSense {version}; Mudmap needs pfSense CE 2.6 or later (or pfSense Plus). Upgrade it, then activate again."
                ),
            },
        )
    })?;
    tracker.done(
        "detect",
        format!("pfSense {} {}", pfsense.edition, pfsense.version),
    );

    tracker.running("agent");
    placed.agent = true;
    let install = session
        .exec(
            remote::INSTALL_AGENT,
            Some(remote::AGENT_SOURCE.as_bytes().to_vec()),
        )
        .await
        .map_err(|e| Failure::new("agent", lost("installing the agent", &e)))?;
    if install.exit_status != Some(0) {
        return Err(Failure::new(
            "agent",
            format!(
                "The agent could not be installed: {}. Check that the firewall has free space and a writable file system, then activate again.",
                first_line(&install.stderr, "the copy failed")
            ),
        ));
    }
    let hello = call(session, "hello", json!({ "client": "mudmap", "protocols": [1] }))
        .await
        .map_err(|e| {
            Failure::new(
                "agent",
                format!("The agent was copied to the firewall but does not run: {e}. Check that {} exists there.", remote::PHP),
            )
        })?;
    let hello: Hello = serde_json::from_value(hello).map_err(|e| {
        Failure::new(
            "agent",
            format!("The agent's greeting was not understood: {e}."),
        )
    })?;
    tracker.done("agent", format!("Agent {} answers", hello.agent_version));

    tracker.running("access");
    let key = new_service_key()
        .map_err(|e| Failure::new("access", format!("Could not make a key: {e}.")))?;
    let public = key
        .public_key()
        .to_openssh()
        .map_err(|e| Failure::new("access", format!("Could not encode the key: {e}.")))?;
    let line = keys::line(&public, &plan.comment);
    placed.access = Some(line.clone());
    let ensured: AccessEnsured = call(
        session,
        "access.ensure",
        json!({ "authorized_key": line }),
    )
    .await
    .and_then(|v| serde_json::from_value(v).map_err(|e| format!("its answer was not understood ({e})")))
    .map_err(|e| {
        Failure::new(
            "access",
            format!(
                "Mudmap's key could not be added to the admin account: {e}. Check System → User Manager → admin on the firewall, then activate again."
            ),
        )
    })?;
    placed.replaced = !ensured.created;
    let mut detail = format!(
        "Key {} in admin's authorized keys (System → User Manager → admin)",
        fingerprint(key.public_key())
    );
    if !ensured.created {
        detail.push_str(", in place of this device's earlier key");
    }
    if !ensured.others.is_empty() {
        detail.push_str(&format!(
            ". Another Mudmap organisation or installation manages this firewall too ({}); its key is untouched",
            ensured.others.join(", ")
        ));
    }
    tracker.done("access", detail);

    tracker.running("verify");
    let service_target = plan.target(remote::ROOT_USER, Credentials::Key(Arc::new(key.clone())));
    let hello = verify(config, &service_target, pinned.clone()).await.map_err(|e| {
        Failure::new(
            "verify",
            format!("Mudmap's key was added but does not work: {e}. Check that SSH allows public-key login for root (System → Advanced → Admin Access)."),
        )
    })?;
    if let Some(uid) = hello.euid.filter(|uid| *uid != 0) {
        return Err(Failure::new(
            "verify",
            format!("Mudmap's key logs in, but the agent runs as uid {uid}, not root, so it could not change anything. Check that the firewall's root account is uid 0."),
        ));
    }
    let mut detail = format!("Agent {} answers as root", hello.agent_version);
    // The service account of agents before 1.2.0 had no root; a re-activation removes it.
    match call(
        session,
        "account.remove",
        json!({ "name": remote::LEGACY_USER }),
    )
    .await
    {
        Ok(removed) if removed.get("removed") == Some(&Value::Bool(true)) => {
            detail.push_str(&format!(
                "; removed the old service account \"{}\"",
                remote::LEGACY_USER
            ))
        }
        Ok(_) => {}
        Err(e) => detail.push_str(&format!(
            "; the old service account \"{}\" stays ({e}): remove it in System → User Manager",
            remote::LEGACY_USER
        )),
    }
    tracker.done("verify", detail);

    let host_key = pinned.key().ok_or_else(|| {
        Failure::new(
            "verify",
            "The host key was not recorded (an internal error). Start again.",
        )
    })?;
    Ok(Activated {
        host_key,
        pfsense,
        agent_version: hello.agent_version,
        service_user: remote::ROOT_USER.to_owned(),
        service_key: key,
    })
}

/// Log in with the device's key and say hello through the forced command.
async fn verify(
    config: &EngineConfig,
    target: &DeviceTarget,
    pinned: Arc<ConfirmedFingerprint>,
) -> Result<Hello, String> {
    let hello = as_service(
        config,
        target,
        pinned,
        "hello",
        json!({ "client": "mudmap", "protocols": [1] }),
    )
    .await?;
    serde_json::from_value::<Hello>(hello).map_err(|e| e.to_string())
}

/// One agent request on a connection of its own, logged in with `target`'s credentials (the
/// device's key, whose forced command runs the agent), accepting only the `pinned` host key.
pub async fn as_service(
    config: &EngineConfig,
    target: &DeviceTarget,
    pinned: Arc<ConfirmedFingerprint>,
    method: &str,
    params: Value,
) -> Result<Value, String> {
    let mut session = DirectSession::connect(target, config, pinned)
        .await
        .map_err(|e| e.to_string())?;
    let result = async {
        session.login(target).await.map_err(|e| e.to_string())?;
        let frame = Request::new(1, method, params).to_frame();
        let out = session
            .exec(crate::ssh::PFSENSE_AGENT_COMMAND, Some(frame))
            .await
            .map_err(|e| e.to_string())?;
        first_response(&out.stdout)
    }
    .await;
    session.close().await;
    result
}

/// One agent request in call mode over the admin session.
async fn call(session: &DirectSession, method: &str, params: Value) -> Result<Value, String> {
    let frame = Request::new(1, method, params).to_frame();
    let out = session
        .exec(remote::AGENT_CALL, Some(frame))
        .await
        .map_err(|e| e.to_string())?;
    first_response(&out.stdout).map_err(|e| {
        if out.stdout.is_empty() {
            first_line(&out.stderr, &e)
        } else {
            e
        }
    })
}

fn first_response(stdout: &[u8]) -> Result<Value, String> {
    let line = stdout.split(|b| *b == b'\n').next().unwrap_or_default();
    if line.is_empty() {
        return Err("the agent printed nothing".to_owned());
    }
    let response: Response = serde_json::from_slice(line)
        .map_err(|e| format!("the agent's answer was not understood ({e})"))?;
    response
        .into_result()
        .map_err(|e| format!("{} ({})", e.message, e.code.as_str()))?
        .decode()
        .map_err(|e| format!("the agent's answer was not understood ({e})"))
}

/// Undo what the run placed, newest first; returns the sentence for the person.
async fn undo(
    config: &EngineConfig,
    plan: &Plan,
    password: &Secret,
    tracker: &Tracker,
    admin: &mut Option<DirectSession>,
    placed: &Placed,
) -> Option<String> {
    if !placed.agent && placed.access.is_none() {
        return Some("Nothing was changed on the firewall.".to_owned());
    }
    if admin.as_ref().is_none_or(DirectSession::is_closed) {
        let target = plan.target(
            &plan.username,
            Credentials::Password(Secret::new(password.expose())),
        );
        let pinned = Arc::new(ConfirmedFingerprint::new(plan.fingerprint.clone()));
        let reconnected = async {
            let mut session = DirectSession::connect(&target, config, pinned).await?;
            session.login(&target).await?;
            Ok::<_, SshError>(session)
        }
        .await;
        match reconnected {
            Ok(session) => *admin = Some(session),
            Err(e) => {
                return Some(format!(
                    "Mudmap could not reach the firewall again to clean up ({e}). Remove the key line ending in \"{}\" from System → User Manager → admin → Authorized SSH Keys, and the directory {} if no other Mudmap key is there, by hand.",
                    plan.comment,
                    remote::AGENT_DIR
                ))
            }
        }
    }
    let session = admin.as_ref()?;
    let mut removed = Vec::new();
    let mut left = Vec::new();
    if let Some(line) = &placed.access {
        match call(
            session,
            "access.remove",
            json!({ "authorized_key": line, "agent": false }),
        )
        .await
        {
            Ok(_) => {
                tracker.undone("access", "Mudmap's key removed again");
                removed.push("removed Mudmap's key from the admin account".to_owned());
                if placed.replaced {
                    left.push(
                        "this device's earlier key had been replaced during the run, so Mudmap has no key on it now: activate it again".to_owned(),
                    );
                }
            }
            Err(e) => left.push(format!(
                "Mudmap's key could not be removed ({e}): delete the line ending in \"{}\" in System → User Manager → admin → Authorized SSH Keys",
                plan.comment
            )),
        }
    }
    if placed.agent {
        match session.exec(remote::REMOVE_AGENT, None).await {
            Ok(out) if out.exit_status == Some(0) && out.stdout_text().trim() == "kept" => {
                removed.push(
                    "kept the agent, which another Mudmap's key on the firewall uses".to_owned(),
                );
            }
            Ok(out) if out.exit_status == Some(0) => {
                tracker.undone("agent", "Agent removed again");
                removed.push("removed the agent".to_owned());
            }
            Ok(out) => left.push(format!(
                "the agent could not be removed ({}): delete {} by hand",
                first_line(&out.stderr, "it failed"),
                remote::AGENT_DIR
            )),
            Err(e) => left.push(format!(
                "the agent could not be removed ({e}): delete {} by hand",
                remote::AGENT_DIR
            )),
        }
    }
    let mut text = String::new();
    if !removed.is_empty() {
        text = format!("Undone on the firewall: {}.", removed.join(" and "));
    }
    if !left.is_empty() {
        if !text.is_empty() {
            text.push(' ');
        }
        text.push_str(&format!("Left on the firewall: {}.", left.join("; ")));
    }
    Some(text)
}

/// A fresh ed25519 key for one device (its line in admin's authorized keys).
fn new_service_key() -> Result<PrivateKey, String> {
    let mut seed = zeroize::Zeroizing::new([0u8; 32]);
    rand::fill(&mut seed[..]);
    let mut key = PrivateKey::from(Ed25519Keypair::from_seed(&seed));
    key.set_comment("mudmap");
    Ok(key)
}

pub fn connect_failure(plan: &Plan, config: &EngineConfig, error: &SshError) -> String {
    let address = plan.address();
    match error {
        SshError::HostKeyMismatch { got, .. } => format!(
            "The device presented host key {got}, not the {} you confirmed, so nothing was sent to it. If the firewall was reinstalled, start again and confirm its new key; otherwise something between Mudmap and the firewall may be intercepting the connection.",
            plan.fingerprint
        ),
        SshError::Refused => format!(
            "{address} refused the connection. Enable SSH on the firewall (System → Advanced → Admin Access → Secure Shell) and check the port."
        ),
        SshError::Timeout { stage: Stage::Connect, after } => format!(
            "No answer from {address} within {} s. Check the address, the port and the firewall rules between Mudmap and the device. If this address failed to log in many times recently, pfSense's sshguard may be blocking it for up to an hour.",
            after.as_secs()
        ),
        SshError::Timeout { .. } => format!(
            "{address} accepted the connection but never started SSH (waited {} s). pfSense's sshguard does this to an address after repeated failed logins and blocks it for up to an hour: wait, or remove Mudmap's address from the sshguard table on the firewall (Diagnostics → Tables).",
            config.handshake_timeout.as_secs()
        ),
        SshError::Unreachable { reason } => format!(
            "{address} cannot be reached ({reason}). Check the host name or address and the route from Mudmap to it."
        ),
        other => format!("Connecting to {address} failed: {other}."),
    }
}

fn login_failure(plan: &Plan, error: &SshError) -> String {
    match error {
        SshError::AuthFailed { password_allowed: true } => format!(
            "The firewall refused the password for \"{}\". Check it (it is the password of the pfSense admin user); after 15 failed logins pfSense's sshguard blocks this address for up to an hour.",
            plan.username
        ),
        SshError::AuthFailed { password_allowed: false } => "The firewall accepts SSH keys only, so the password cannot be used. On the firewall set System → Advanced → Admin Access → SSHd Key Only to \"Password or Public Key\" for the activation; you can set it back afterwards.".to_owned(),
        SshError::Closed => "The firewall closed the connection during login. If this address failed to log in many times recently, pfSense's sshguard may be blocking it for up to an hour.".to_owned(),
        other => format!("Logging in failed: {other}."),
    }
}

fn lost(doing: &str, error: &SshError) -> String {
    format!(
        "The connection failed while {doing}: {error}. Check the firewall, then activate again."
    )
}

fn first_line(bytes: &[u8], fallback: &str) -> String {
    String::from_utf8_lossy(bytes)
        .lines()
        .map(str::trim)
        .find(|l| !l.is_empty())
        .map(|l| l.chars().take(200).collect())
        .unwrap_or_else(|| fallback.to_owned())
}

fn first_sentence(message: &str) -> String {
    match message.find(". ") {
        Some(end) => message[..=end].to_owned(),
        None => message.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    fn plan() -> Plan {
        Plan {
            device_id: "d".to_owned(),
            host: "fw.example.net".to_owned(),
            port: 2222,
            username: "admin".to_owned(),
            fingerprint: "SHA256:confirmed".to_owned(),
            comment: "mudmap:i:d".to_owned(),
        }
    }

    #[test]
    fn each_connect_failure_says_what_happened_and_what_to_do() {
        let config = EngineConfig::default();
        let says = |e: SshError| connect_failure(&plan(), &config, &e);
        assert!(says(SshError::Refused)
            .starts_with("fw.example.net:2222 refused the connection. Enable SSH"));
        let timeout = says(SshError::Timeout {
            stage: Stage::Connect,
            after: Duration::from_secs(10),
        });
        assert!(
            timeout.starts_with("No answer from fw.example.net:2222 within 10 s"),
            "{timeout}"
        );
        let lockout = says(SshError::Timeout {
            stage: Stage::Handshake,
            after: Duration::from_secs(15),
        });
        assert!(
            lockout.contains("never started SSH") && lockout.contains("sshguard"),
            "{lockout}"
        );
        let unreachable = says(SshError::Unreachable {
            reason: "cannot resolve fw.example.net".to_owned(),
        });
        assert!(
            unreachable.contains("cannot be reached (cannot resolve"),
            "{unreachable}"
        );
        let mismatch = says(SshError::HostKeyMismatch {
            expected: "SHA256:confirmed".to_owned(),
            got: "SHA256:other".to_owned(),
        });
        assert!(mismatch.starts_with("The device presented host key SHA256:other, not the SHA256:confirmed you confirmed, so nothing was sent"), "{mismatch}");
    }

    #[test]
    fn login_failures_tell_a_wrong_password_from_key_only_ssh() {
        let wrong = login_failure(
            &plan(),
            &SshError::AuthFailed {
                password_allowed: true,
            },
        );
        assert!(
            wrong.starts_with("The firewall refused the password for \"admin\""),
            "{wrong}"
        );
        let key_only = login_failure(
            &plan(),
            &SshError::AuthFailed {
                password_allowed: false,
            },
        );
        assert!(
            key_only.starts_with("The firewall accepts SSH keys only"),
            "{key_only}"
        );
        assert!(login_failure(&plan(), &SshError::Closed).contains("sshguard"));
    }

    #[test]
    fn ipv6_addresses_are_bracketed() {
        let mut plan = plan();
        plan.host = "2001:db8::1".to_owned();
        assert_eq!(plan.address(), "[2001:db8::1]:2222");
    }

    #[test]
    fn a_progress_line_is_the_first_sentence() {
        assert_eq!(first_sentence("One. Two."), "One.");
        assert_eq!(first_sentence("No stop"), "No stop");
        assert_eq!(first_line(b"\n  mkdir: nope\nmore", "x"), "mkdir: nope");
        assert_eq!(first_line(b"", "fallback"), "fallback");
    }
}
