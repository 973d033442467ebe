//! A real OpenSSH server for tests: each call starts its own `sshd` (own config, host key and
//! port) that stops when dropped. Needs `openssh-server` (installed by scripts/tools.sh) and root,
//! which CI has: sshd only runs as root, and password login needs a local account.

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use russh::keys::PublicKey;

pub const SSHD: &str = "/usr/sbin/sshd";
/// A local account for password logins, created on first use.
pub const TEST_USER: &str = "mudmap-sshtest";
pub const TEST_PASSWORD: &str = "correct horse battery staple";

pub struct Sshd {
    child: Child,
    pub port: u16,
    pub host_key: PublicKey,
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
pub fn start_sshd(authorized: &PublicKey, password_auth: bool) -> Sshd {
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
