//! One conformance suite for agent protocol v1 (docs/agent-protocol.md), run against both agents:
//! the device simulator (`mudmap sim`'s russh server) and the real PHP agent for pfSense, started
//! by a real OpenSSH server over a stub pfSense root (server/tests/fixtures/pfsense-root, see its
//! README for what the stub stands in for). Both are driven through Mudmap's own SSH client:
//! one-shot `call` mode for the exact bytes, and the engine's resident `serve` channel.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use mudmap::agent::protocol::{
    ArpTable, ConfigDocument, DhcpLeases, Hello, Packages, PowerAccepted, Status, MAX_FRAME,
};
use mudmap::sim::{service_key, SimOptions, Simulator};
use mudmap::ssh::{
    one_shot_exec, Credentials, DeviceId, DeviceTarget, Engine, EngineConfig, HostKeyStore,
    MemoryHostKeys,
};
use russh::keys::{Algorithm, PrivateKey};
use serde_json::{json, Value};

/// An agent behind SSH, and how to reach it.
struct Subject {
    name: &'static str,
    target: DeviceTarget,
    /// The command that runs the agent in `call` mode.
    call_command: String,
    keys: Arc<MemoryHostKeys>,
    _keep: Box<dyn std::any::Any + Send>,
}

fn config() -> EngineConfig {
    EngineConfig {
        request_timeout: Duration::from_secs(20),
        channel_timeout: Duration::from_secs(10),
        ..EngineConfig::default()
    }
}

async fn simulator() -> Subject {
    let sim = Simulator::start(SimOptions {
        devices: 1,
        ..SimOptions::default()
    })
    .await
    .unwrap();
    let id = DeviceId::new("sim");
    let keys = Arc::new(MemoryHostKeys::new());
    keys.pin(&id, sim.device(0).unwrap().host_key.public_key())
        .await;
    let target = DeviceTarget {
        id,
        host: "127.0.0.1".to_owned(),
        port: sim.addr(0).unwrap().port(),
        username: "mudmap".to_owned(),
        credentials: Credentials::Key(service_key(sim.options.seed, 0)),
        agent_command: mudmap::ssh::PFSENSE_AGENT_COMMAND.to_owned(),
        self_heal: None,
    };
    Subject {
        name: "simulator",
        target,
        call_command: mudmap::ssh::PFSENSE_AGENT_COMMAND.replace(" serve", " call"),
        keys,
        _keep: Box::new(sim),
    }
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let dest = to.join(entry.file_name());
        if entry.file_type().unwrap().is_dir() {
            copy_dir(&entry.path(), &dest);
        } else {
            std::fs::copy(entry.path(), &dest).unwrap();
        }
    }
}

async fn php_agent() -> Subject {
    let manifest = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let agent = manifest.join("src/agent/php/agent.php");
    let root = tempfile::tempdir().unwrap();
    copy_dir(&manifest.join("tests/fixtures/pfsense-root"), root.path());
    let php = ["/usr/local/bin/php", "/usr/bin/php"]
        .into_iter()
        .find(|p| Path::new(p).exists())
        .expect("php is missing: install php-cli and php-xml (scripts/tools.sh test does)");
    let key = Arc::new(
        PrivateKey::random(&mut russh::keys::key::safe_rng(), Algorithm::Ed25519).unwrap(),
    );
    let sshd = crate::support::sshd::start_sshd(key.public_key(), false);
    let id = DeviceId::new("php");
    let keys = Arc::new(MemoryHostKeys::new());
    keys.pin(&id, &sshd.host_key).await;
    let command = format!(
        "MUDMAP_AGENT_ROOT={} {php} {}",
        root.path().display(),
        agent.display()
    );
    let target = DeviceTarget {
        id,
        host: "127.0.0.1".to_owned(),
        port: sshd.port,
        username: "root".to_owned(),
        credentials: Credentials::Key(key),
        agent_command: format!("{command} serve"),
        self_heal: None,
    };
    Subject {
        name: "php agent",
        target,
        call_command: format!("{command} call"),
        keys,
        _keep: Box::new((sshd, root)),
    }
}

impl Subject {
    /// Send `input` to the agent in call mode; the response lines, parsed.
    async fn call_raw(&self, input: Vec<u8>) -> Vec<Value> {
        self.call_with_status(input).await.1
    }

    /// Like [`Subject::call_raw`], with the agent's exit status.
    async fn call_with_status(&self, input: Vec<u8>) -> (Option<u32>, Vec<Value>) {
        let keys: Arc<dyn HostKeyStore> = self.keys.clone();
        let out = one_shot_exec(
            &self.target,
            &config(),
            keys,
            &self.call_command,
            Some(input),
        )
        .await
        .unwrap_or_else(|e| panic!("{}: {e}", self.name));
        assert!(
            !out.stdout.is_empty(),
            "{}: no answer (stderr: {})",
            self.name,
            String::from_utf8_lossy(&out.stderr)
        );
        let lines: Vec<Value> = out
            .stdout_text()
            .lines()
            .map(|line| {
                serde_json::from_str(line)
                    .unwrap_or_else(|e| panic!("{}: not a JSON line ({e}): {line:.200}", self.name))
            })
            .collect();
        (out.exit_status, lines)
    }

    async fn call(&self, request: Value) -> Value {
        let mut line = serde_json::to_vec(&request).unwrap();
        line.push(b'\n');
        let mut answers = self.call_raw(line).await;
        assert_eq!(answers.len(), 1, "{}: one answer per request", self.name);
        answers.remove(0)
    }

    async fn result<T: serde::de::DeserializeOwned>(&self, method: &str) -> T {
        let answer = self
            .call(json!({"v": 1, "id": 7, "method": method, "params": {}}))
            .await;
        assert_eq!(answer["id"], 7, "{}: {answer}", self.name);
        assert_eq!(answer["ok"], true, "{}: {method}: {answer}", self.name);
        serde_json::from_value(answer["result"].clone()).unwrap_or_else(|e| {
            panic!(
                "{}: {method} result does not fit ({e}): {answer:.300}",
                self.name
            )
        })
    }

    fn error_code(&self, answer: &Value) -> String {
        assert_eq!(answer["ok"], false, "{}: {answer:.300}", self.name);
        answer["error"]["code"]
            .as_str()
            .unwrap_or_default()
            .to_owned()
    }
}

async fn conforms(subject: Subject) {
    let name = subject.name;
    let (exit, _) = subject
        .call_with_status(b"{\"v\":1,\"id\":1,\"method\":\"hello\"}\n".to_vec())
        .await;
    assert_eq!(exit, Some(0), "{name}: call mode exits 0 after answering");
    let hello: Hello = subject.result("hello").await;
    assert_eq!(hello.protocol, 1, "{name}");
    assert!(!hello.hostname.is_empty(), "{name}");
    assert!(
        ["CE", "Plus"].contains(&hello.pfsense.edition.as_str()),
        "{name}: {hello:?}"
    );

    assert_eq!(
        hello.capabilities,
        mudmap::sim::agent::CAPABILITIES,
        "{name}: both agents implement the same methods"
    );

    let status: Status = subject.result("status").await;
    assert!(!status.interfaces.is_empty(), "{name}: {status:?}");
    assert!(
        status.hostname.contains('.')
            && status.platform == "pfSense"
            && !status.dns_servers.is_empty(),
        "{name}: hostname, platform and DNS servers: {status:?}"
    );
    let before: ConfigDocument = subject.result("config.get").await;
    assert!(before.xml.contains("<pfsense>"), "{name}");
    assert_eq!(
        before.hash,
        format!(
            "sha256:{}",
            mudmap::crypto::sha256_hex(before.xml.as_bytes())
        ),
        "{name}: the hash is of the exact bytes"
    );
    assert_eq!(status.config_hash, before.hash, "{name}");

    // The Status tab's tables, in the same shapes from both agents.
    let leases: DhcpLeases = subject.result("dhcp.leases").await;
    assert!(
        leases
            .leases
            .iter()
            .any(|l| l.kind == "static" && l.ends_at.is_none()),
        "{name}: {leases:?}"
    );
    assert!(
        leases
            .leases
            .iter()
            .all(|l| l.mac.chars().all(|c| !c.is_ascii_uppercase())),
        "{name}: MAC addresses are lower-case: {leases:?}"
    );
    let arp: ArpTable = subject.result("arp.table").await;
    assert!(!arp.entries.is_empty(), "{name}");
    assert!(
        arp.entries.iter().any(|e| e.expires_secs.is_none()),
        "{name}: a permanent entry: {arp:?}"
    );
    let packages: Packages = subject.result("packages.list").await;
    assert!(!packages.packages.is_empty(), "{name}");
    let mut sorted = packages.packages.clone();
    sorted.sort_by_key(|p| p.name.to_lowercase());
    assert_eq!(sorted, packages.packages, "{name}: sorted by name");

    // Each bad request gets its typed error.
    let (exit, malformed) = subject
        .call_with_status(b"{\"v\":1,\"id\":3,\"method\"\n".to_vec())
        .await;
    assert_eq!(
        exit,
        Some(2),
        "{name}: call mode exits 2 when the input is not a request"
    );
    assert_eq!(subject.error_code(&malformed[0]), "bad_request", "{name}");
    assert!(malformed[0]["id"].is_null(), "{name}: {}", malformed[0]);
    let unknown = subject
        .call(json!({"v": 1, "id": 4, "method": "config.shred", "params": {}}))
        .await;
    assert_eq!(subject.error_code(&unknown), "unknown_method", "{name}");
    assert_eq!(unknown["id"], 4, "{name}");
    // The account methods manage Mudmap's own account only, from one well-formed key line.
    for params in [
        json!({"name": "admin", "authorized_key": "command=\"x\" ssh-ed25519 AAAA k"}),
        json!({"name": "mudmap", "authorized_key": "ssh-ed25519 AAAA no-forced-command"}),
        json!({"name": "mudmap", "authorized_key": "command=\"x\" ssh-ed25519 AAAA k\nssh-ed25519 BBBB k"}),
    ] {
        let refused = subject
            .call(json!({"v": 1, "id": 7, "method": "account.ensure", "params": params}))
            .await;
        assert_eq!(
            subject.error_code(&refused),
            "invalid_params",
            "{name}: {refused}"
        );
    }
    let refused = subject
        .call(json!({"v": 1, "id": 8, "method": "account.remove", "params": {"name": "root"}}))
        .await;
    assert_eq!(
        subject.error_code(&refused),
        "invalid_params",
        "{name}: {refused}"
    );
    let version = subject
        .call(json!({"v": 2, "id": 5, "method": "hello", "params": {}}))
        .await;
    assert_eq!(
        subject.error_code(&version),
        "unsupported_version",
        "{name}"
    );
    assert_eq!(version["id"], 5, "{name}");
    let mut oversized = format!(
        "{{\"v\":1,\"id\":6,\"method\":\"hello\",\"params\":{{\"pad\":\"{}\"}}}}",
        "x".repeat(MAX_FRAME)
    )
    .into_bytes();
    oversized.push(b'\n');
    let too_large = subject.call_raw(oversized).await;
    assert_eq!(
        subject.error_code(&too_large[0]),
        "frame_too_large",
        "{name}"
    );

    // None of it changed the configuration.
    let after: ConfigDocument = subject.result("config.get").await;
    assert_eq!(
        after.hash, before.hash,
        "{name}: bad requests change nothing"
    );

    // Serve mode through the engine's resident channel: many requests in flight on one channel.
    let engine = Engine::new(config(), subject.keys.clone());
    engine.upsert(subject.target.clone());
    let id = subject.target.id.clone();
    let (a, b, c) = tokio::join!(
        engine.call::<Status>(&id, "status", json!({})),
        engine.call::<Hello>(&id, "hello", json!({})),
        engine.call::<ConfigDocument>(&id, "config.get", json!({})),
    );
    assert!(!a
        .unwrap_or_else(|e| panic!("{name}: {e}"))
        .interfaces
        .is_empty());
    assert_eq!(b.unwrap().protocol, 1);
    assert_eq!(c.unwrap().hash, before.hash);
    let err = engine
        .request(&id, "config.shred", json!({}))
        .await
        .unwrap_err();
    assert!(
        err.to_string().contains("unknown_method") || format!("{err:?}").contains("UnknownMethod"),
        "{name}: {err:?}"
    );
    // The channel survives the error.
    engine.call::<Hello>(&id, "hello", json!({})).await.unwrap();
    // Last, as it takes the device down: a reboot is answered before it happens.
    let accepted: PowerAccepted = engine
        .call(&id, "diag.reboot", json!({}))
        .await
        .unwrap_or_else(|e| panic!("{name}: {e}"));
    assert_eq!(accepted.action, "reboot", "{name}");
    engine.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_simulator_conforms() {
    conforms(simulator().await).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_php_agent_under_openssh_conforms() {
    conforms(php_agent().await).await;
}

/// The PHP agent's own checks (server/src/agent/php/tests/agent_test.php): every error path,
/// pfSense API variants 2.6 / 2.7 / 2.8, noise from pfSense code kept off stdout, exit codes.
#[test]
fn the_php_agents_own_checks_pass() {
    let manifest = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let out = std::process::Command::new("php")
        .arg(manifest.join("src/agent/php/tests/agent_test.php"))
        .output()
        .expect("php is missing: install php-cli and php-xml (scripts/tools.sh test does)");
    assert!(
        out.status.success(),
        "{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}
