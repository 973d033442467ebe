//! pfSense's own PHP code served over real OpenSSH (server/tests/fixtures/pfsense-host, README
//! there): each [`PfSenseHost`] is a fresh root — pfSense's `/etc/inc`, a stock `config.xml` — in
//! a private mount namespace whose `/etc`, `/usr/local`, `/home` and `/root` are overlays, so what
//! a test does to users, keys and files never reaches this machine; the overlays' upper
//! directories let the test read what changed.
//!
//! Needs root (mount namespaces), `unshare`, OpenSSH's sshd and Debian's PHP. Under CI
//! (`CI=true`) a test that cannot run fails; elsewhere it says why and what it needs, and skips.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use base64::Engine as _;
use russh::keys::PublicKey;

pub struct PfSenseHost {
    pub port: u16,
    pub host_key: PublicKey,
    root: PathBuf,
    child: Child,
    _dir: tempfile::TempDir,
}

impl Drop for PfSenseHost {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn fixture() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/pfsense-host")
}

/// Why the fixture cannot run here, if it cannot.
fn missing() -> Option<String> {
    let root = Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|o| o.stdout == b"0\n");
    if !root {
        return Some("it needs root (mount namespaces and overlays)".to_owned());
    }
    for (tool, package) in [
        ("/usr/sbin/sshd", "openssh-server"),
        ("/usr/bin/php", "php-cli php-xml php-mbstring php-pear"),
        ("/usr/bin/unshare", "util-linux"),
        ("/usr/bin/openssl", "openssl"),
    ] {
        if !Path::new(tool).exists() {
            return Some(format!("{tool} is missing (apt-get install {package})"));
        }
    }
    None
}

impl PfSenseHost {
    /// A fresh pfSense root served on a free loopback port, `admin` (uid 0) with `admin_password`
    /// and, if given, `admin_keys` as its own authorized keys (System → User Manager → admin).
    /// None when this machine cannot run it (outside CI only).
    pub fn start(admin_password: &str, admin_keys: Option<&str>) -> Option<Self> {
        if let Some(why) = missing() {
            assert!(
                std::env::var("CI").is_err(),
                "the pfSense fixture test cannot run: {why}"
            );
            eprintln!("SKIPPED: the pfSense fixture (pfSense's own PHP over OpenSSH) cannot run here: {why}. `make test` installs what it needs; run it as root.");
            return None;
        }
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("pf");
        let setup = Command::new(fixture().join("setup.sh"))
            .arg(&root)
            .stdout(Stdio::null())
            .output()
            .unwrap();
        assert!(
            setup.status.success(),
            "setup.sh failed: {}",
            String::from_utf8_lossy(&setup.stderr)
        );
        if let Some(keys) = admin_keys {
            let path = root.join("cf/conf/config.xml");
            let xml = std::fs::read_to_string(&path).unwrap();
            let encoded = base64::engine::general_purpose::STANDARD.encode(keys);
            let xml = xml.replacen(
                "<uid>0</uid>",
                &format!("<uid>0</uid>\n\t\t\t<authorizedkeys>{encoded}</authorizedkeys>"),
                1,
            );
            std::fs::write(&path, xml).unwrap();
        }
        let host_key_path = root.join("hostkey");
        let keygen = Command::new("ssh-keygen")
            .args(["-q", "-t", "ed25519", "-N", "", "-f"])
            .arg(&host_key_path)
            .status()
            .unwrap();
        assert!(keygen.success());
        let host_key = PublicKey::read_openssh_file(root.join("hostkey.pub")).unwrap();
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let child = Command::new(fixture().join("sshd.sh"))
            .arg(&root)
            .arg(port.to_string())
            .arg(admin_password)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let host = Self {
            port,
            host_key,
            root,
            child,
            _dir: dir,
        };
        for _ in 0..200 {
            if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
                return Some(host);
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        panic!("the pfSense fixture's sshd did not listen on {port}");
    }

    /// `/cf/conf/config.xml` as pfSense's `write_config()` left it.
    pub fn config_xml(&self) -> String {
        std::fs::read_to_string(self.root.join("cf/conf/config.xml")).unwrap()
    }

    /// The decoded `authorizedkeys` of the uid-0 user (admin) in `config.xml`.
    pub fn admin_keys(&self) -> String {
        let xml = self.config_xml();
        let Some(user) = xml
            .split("<user>")
            .skip(1)
            .map(|u| u.split("</user>").next().unwrap_or_default())
            .find(|u| u.contains("<uid>0</uid>"))
        else {
            return String::new();
        };
        let Some(encoded) = user
            .split("<authorizedkeys>")
            .nth(1)
            .and_then(|rest| rest.split("</authorizedkeys>").next())
        else {
            return String::new();
        };
        let encoded = encoded
            .trim()
            .trim_start_matches("<![CDATA[")
            .trim_end_matches("]]>");
        String::from_utf8(
            base64::engine::general_purpose::STANDARD
                .decode(encoded.trim())
                .unwrap(),
        )
        .unwrap()
    }

    /// `/root/.ssh/authorized_keys` inside the fixture (what sshd reads), if written.
    pub fn root_authorized_keys(&self) -> Option<String> {
        std::fs::read_to_string(self.root.join("ov/root/up/.ssh/authorized_keys")).ok()
    }

    /// Whether `/usr/local/share/mudmap/agent.php` exists inside the fixture.
    pub fn agent_installed(&self) -> bool {
        self.root
            .join("ov/usrlocal/up/share/mudmap/agent.php")
            .exists()
    }

    /// Whether `/home/<user>` exists inside the fixture.
    pub fn home_exists(&self, user: &str) -> bool {
        self.root.join("ov/home/up").join(user).exists()
    }
}
