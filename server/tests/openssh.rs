//! The engine's client against a real OpenSSH server on loopback: proof that it works with a real
//! peer, not only with our own simulator. Each test starts its own `sshd` (own config, host key and
//! port) and stops it at the end. Needs `openssh-server` (installed by scripts/tools.sh) and root,
//! which CI has: sshd only runs as root, and password login needs a local account.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::Duration;

use mudmap::config::Secret;
use mudmap::ssh::{
    one_shot_exec, Credentials, DeviceId, DeviceTarget, EngineConfig, HostKeyStore, MemoryHostKeys,
    SshError,
};
use russh::keys::{Algorithm, PrivateKey, PublicKey};

const SSHD: &str = "/usr/sbin/sshd";
/// A local account for password logins, created on first use.
const TEST_USER: &str = "mudmap-sshtest";
const TEST_PASSWORD: &str = "correct horse battery staple";

struct Sshd {
    child: Child,
    port: u16,
    host_key: PublicKey,
    _dir: tempfile::TempDir,
}

impl Drop for Sshd {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn run(cmd: &str, args: &[&str]) {
    let status = Command::new(cmd)
        .args(args)
        .stdout(Stdio::null())
        .status()
        .unwrap_or_else(|e| panic!("{cmd}: {e}"));
    assert!(status.success(), "{cmd} {args:?} failed");
}

fn ensure_test_user() {
    let exists = Command::new("id")
        .arg(TEST_USER)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .unwrap()
        .success();
    if !exists {
        run(
            "useradd",
            &["--no-create-home", "--shell", "/bin/sh", TEST_USER],
        );
    }
    let mut chpasswd = Command::new("chpasswd")
        .stdin(Stdio::piped())
        .spawn()
        .unwrap();
    use std::io::Write;
    chpasswd
        .stdin
        .as_mut()
        .unwrap()
        .write_all(format!("{TEST_USER}:{TEST_PASSWORD}\n").as_bytes())
        .unwrap();
    assert!(chpasswd.wait().unwrap().success());
}

/// Start sshd on a free port with its own host key, accepting `authorized` for root.
fn start_sshd(authorized: &PublicKey, password_auth: bool) -> Sshd {
    assert!(
        Path::new(SSHD).exists(),
        "{SSHD} is missing: install openssh-server (scripts/tools.sh test does)"
    );
    assert_eq!(
        Command::new("id").arg("-u").output().unwrap().stdout,
        b"0\n",
        "the OpenSSH tests start sshd and need root"
    );
    ensure_test_user();
    std::fs::create_dir_all("/run/sshd").unwrap();
    let dir = tempfile::tempdir().unwrap();
    let host_key_path = dir.path().join("host_ed25519");
    run(
        "ssh-keygen",
        &[
            "-q",
            "-t",
            "ed25519",
            "-N",
            "",
            "-f",
            host_key_path.to_str().unwrap(),
        ],
    );
    let authorized_path = dir.path().join("authorized_keys");
    std::fs::write(
        &authorized_path,
        format!("{}\n", authorized.to_openssh().unwrap()),
    )
    .unwrap();
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let config_path = dir.path().join("sshd_config");
    std::fs::write(
        &config_path,
        format!(
            "ListenAddress 127.0.0.1\nPort {port}\nHostKey {}\nAuthorizedKeysFile {}\nPidFile {}\n\
             PermitRootLogin prohibit-password\nPasswordAuthentication {}\nKbdInteractiveAuthentication no\n\
             UsePAM no\nStrictModes no\nMaxSessions 10\nLogLevel ERROR\n",
            host_key_path.display(),
            authorized_path.display(),
            dir.path().join("sshd.pid").display(),
            if password_auth { "yes" } else { "no" },
        ),
    )
    .unwrap();
    let child = Command::new(SSHD)
        .args(["-D", "-e", "-f", config_path.to_str().unwrap()])
        .stdout(Stdio::null())
        .stderr(Stdio::inherit())
        .spawn()
        .unwrap();
    for _ in 0..100 {
        if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
            break;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let host_key = PublicKey::read_openssh_file(host_key_path.with_extension("pub")).unwrap();
    Sshd {
        child,
        port,
        host_key,
        _dir: dir,
    }
}

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
