//! The engine's client against a real OpenSSH server on loopback: proof that it works with a real
//! peer, not only with our own simulator. Each test starts its own `sshd` (own config, host key and
//! port) and stops it at the end. Needs `openssh-server` (installed by scripts/tools.sh) and root,
//! which CI has: sshd only runs as root, and password login needs a local account.

use std::sync::Arc;
use std::time::Duration;

use crate::support::sshd::{start_sshd, Sshd, TEST_PASSWORD, TEST_USER};
use mudmap::config::Secret;
use mudmap::ssh::{
    one_shot_exec, Credentials, DeviceId, DeviceTarget, EngineConfig, HostKeyStore, MemoryHostKeys,
    SshError,
};
use russh::keys::{Algorithm, PrivateKey};

fn config() -> EngineConfig {
    EngineConfig {
        request_timeout: Duration::from_secs(10),
        ..EngineConfig::default()
    }
}

async fn pinned(sshd: &Sshd) -> Arc<dyn HostKeyStore> {
    let keys = Arc::new(MemoryHostKeys::new());
    keys.pin(&DeviceId::new("openssh"), &sshd.host_key).await;
    keys
}

fn target(port: u16, username: &str, credentials: Credentials) -> DeviceTarget {
    DeviceTarget {
        id: DeviceId::new("openssh"),
        host: "127.0.0.1".to_owned(),
        port,
        username: username.to_owned(),
        credentials,
        agent_command: mudmap::ssh::PFSENSE_AGENT_COMMAND.to_owned(),
        self_heal: None,
    }
}

fn new_key() -> Arc<PrivateKey> {
    Arc::new(PrivateKey::random(&mut russh::keys::key::safe_rng(), Algorithm::Ed25519).unwrap())
}

#[tokio::test]
async fn key_auth_and_one_shot_exec_against_openssh() {
    let key = new_key();
    let sshd = start_sshd(key.public_key(), true);
    let keys = pinned(&sshd).await;
    let t = target(sshd.port, "root", Credentials::Key(key.clone()));
    let out = one_shot_exec(
        &t,
        &config(),
        keys.clone(),
        "echo hello; id -u; cat",
        Some(b"from stdin".to_vec()),
    )
    .await
    .unwrap();
    assert_eq!(out.exit_status, Some(0));
    assert_eq!(out.stdout_text(), "hello\n0\nfrom stdin");
    let failing = one_shot_exec(&t, &config(), keys, "echo oops >&2; exit 3", None)
        .await
        .unwrap();
    assert_eq!(failing.exit_status, Some(3));
    assert_eq!(String::from_utf8_lossy(&failing.stderr), "oops\n");
}

#[tokio::test]
async fn password_auth_against_openssh() {
    let sshd = start_sshd(new_key().public_key(), true);
    let keys = pinned(&sshd).await;
    let good = target(
        sshd.port,
        TEST_USER,
        Credentials::Password(Secret::new(TEST_PASSWORD)),
    );
    let out = one_shot_exec(&good, &config(), keys.clone(), "id -un", None)
        .await
        .unwrap();
    assert_eq!(out.stdout_text().trim(), TEST_USER);
    let bad = target(
        sshd.port,
        TEST_USER,
        Credentials::Password(Secret::new("wrong")),
    );
    let err = one_shot_exec(&bad, &config(), keys, "true", None)
        .await
        .unwrap_err();
    assert_eq!(
        err,
        SshError::AuthFailed {
            password_allowed: true
        }
    );
}

#[tokio::test]
async fn a_key_only_server_says_so() {
    let sshd = start_sshd(new_key().public_key(), false);
    let keys = pinned(&sshd).await;
    let t = target(
        sshd.port,
        TEST_USER,
        Credentials::Password(Secret::new(TEST_PASSWORD)),
    );
    let err = one_shot_exec(&t, &config(), keys, "true", None)
        .await
        .unwrap_err();
    assert_eq!(
        err,
        SshError::AuthFailed {
            password_allowed: false
        }
    );
    assert!(err.to_string().contains("SSH keys only"), "{err}");
}

#[tokio::test]
async fn openssh_host_keys_are_pinned() {
    let key = new_key();
    let sshd = start_sshd(key.public_key(), true);
    let wrong = Arc::new(MemoryHostKeys::new());
    wrong
        .pin(&DeviceId::new("openssh"), new_key().public_key())
        .await;
    let t = target(sshd.port, "root", Credentials::Key(key));
    let err = one_shot_exec(&t, &config(), wrong, "true", None)
        .await
        .unwrap_err();
    let SshError::HostKeyMismatch { got, .. } = err else {
        panic!("{err:?}")
    };
    assert_eq!(got, mudmap::ssh::fingerprint(&sshd.host_key));
}
