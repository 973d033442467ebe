//! One conformance suite for agent protocol v1 (docs/agent-protocol.md), run against both agents:
//! the device simulator (`mudmap sim`'s russh server) and the real PHP agent for pfSense — started
//! by a real OpenSSH server over a stub pfSense root (server/tests/fixtures/pfsense-root, canned
//! FreeBSD figures), and over pfSense's own PHP code (server/tests/fixtures/pfsense-host: real
//! `write_config()`, real user API; no FreeBSD, so no live figures). All are driven through
//! Mudmap's own SSH client: one-shot `call` mode for the exact bytes, and the engine's resident
//! `serve` channel.

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
    /// It reports canned live figures (leases, ARP entries, packages, DNS servers); pfSense's own
    /// code on Linux has none to report, and cannot reboot.
    canned: bool,
    /// The same agent without root, if the subject can run it so: where, and the call command.
    non_root: Option<(DeviceTarget, String)>,
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
        username: "root".to_owned(),
        credentials: Credentials::Key(service_key(sim.options.seed, 0)),
        agent_command: mudmap::ssh::PFSENSE_AGENT_COMMAND.to_owned(),
        self_heal: None,
    };
    // The service account of agents before 1.2.0: its agent has no root.
    let legacy = Arc::new(
        PrivateKey::random(&mut russh::keys::key::safe_rng(), Algorithm::Ed25519).unwrap(),
    );
    sim.device(0)
        .unwrap()
        .add_legacy_account(legacy.public_key().clone());
    let call_command = mudmap::ssh::PFSENSE_AGENT_COMMAND.replace(" serve", " call");
    let non_root = DeviceTarget {
        username: "mudmap".to_owned(),
        credentials: Credentials::Key(legacy),
        ..target.clone()
    };
    Subject {
        name: "simulator",
        target,
        call_command: call_command.clone(),
        keys,
        canned: true,
        non_root: Some((non_root, call_command)),
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
    let non_root = Some((
        target.clone(),
        format!("MUDMAP_AGENT_EUID=2000 {command} call"),
    ));
    Subject {
        name: "php agent",
        target,
        call_command: format!("{command} call"),
        keys,
        canned: true,
        non_root,
        _keep: Box::new((sshd, root)),
    }
}

/// The PHP agent on pfSense's own include files (no stubs), logged in as `admin` (uid 0).
async fn php_agent_on_pfsense() -> Option<Subject> {
    let host = crate::support::pfsense_host::PfSenseHost::start("conformance", None)?;
    let agent = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("src/agent/php/agent.php");
    let id = DeviceId::new("pfsense");
    let keys = Arc::new(MemoryHostKeys::new());
    keys.pin(&id, &host.host_key).await;
    let command = format!("/usr/local/bin/php {}", agent.display());
    let target = DeviceTarget {
        id,
        host: "127.0.0.1".to_owned(),
        port: host.port,
        username: "admin".to_owned(),
        credentials: Credentials::Password(mudmap::config::Secret::new("conformance")),
        agent_command: format!("{command} serve"),
        self_heal: None,
    };
    Some(Subject {
        name: "php agent on pfSense's code",
        target,
        call_command: format!("{command} call"),
        keys,
        canned: false,
        non_root: None,
        _keep: Box::new(host),
    })
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

    /// One request's result, asserting success.
    async fn ok(&self, method: &str, params: Value) -> Value {
        let answer = self
            .call(json!({"v": 1, "id": 9, "method": method, "params": params}))
            .await;
        assert_eq!(answer["ok"], true, "{}: {method}: {answer:.400}", self.name);
        answer["result"].clone()
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
        status.hostname.contains('.') && status.platform == "pfSense",
        "{name}: hostname and platform: {status:?}"
    );
    // A section that could not be read is empty and says why; one that was read has no error.
    for e in &status.errors {
        assert!(!e.message.is_empty(), "{name}: {e:?}");
        match e.section.as_str() {
            "uptime" => assert!(status.uptime_secs.is_none(), "{name}"),
            "memory" => assert!(status.memory.is_none(), "{name}"),
            "cpu" => assert!(
                status.cpu.usage_pct.is_none() || status.cpu.cores.is_none(),
                "{name}"
            ),
            "disks" | "interfaces" | "gateways" | "services" => {}
            other => panic!("{name}: unknown status section {other:?}"),
        }
    }
    if subject.canned {
        assert!(status.errors.is_empty(), "{name}: {:?}", status.errors);
        assert!(!status.dns_servers.is_empty(), "{name}: {status:?}");
    }
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

    // The Status tab's tables, in the same shapes from every agent (the figures only where canned).
    let leases: DhcpLeases = subject.result("dhcp.leases").await;
    let arp: ArpTable = subject.result("arp.table").await;
    let packages: Packages = subject.result("packages.list").await;
    let mut sorted = packages.packages.clone();
    sorted.sort_by_key(|p| p.name.to_lowercase());
    assert_eq!(sorted, packages.packages, "{name}: sorted by name");
    if subject.canned {
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
        assert!(!arp.entries.is_empty(), "{name}");
        assert!(
            arp.entries.iter().any(|e| e.expires_secs.is_none()),
            "{name}: a permanent entry: {arp:?}"
        );
        assert!(!packages.packages.is_empty(), "{name}");
    }

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
    if let Some((target, command)) = &subject.non_root {
        not_root_conforms(&subject, target, command).await;
    }
    access_conforms(&subject, &before.hash).await;
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

    // None of the bad requests changed the configuration.
    let after: ConfigDocument = subject.result("config.get").await;
    let settled: ConfigDocument = subject.result("config.get").await;
    assert_eq!(after.hash, settled.hash, "{name}: reads change nothing");

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
    assert_eq!(c.unwrap().hash, after.hash);
    // A method hello does not list is never sent (the protocol's rule).
    let err = engine
        .request(&id, "config.shred", json!({}))
        .await
        .unwrap_err();
    assert!(
        matches!(&err, mudmap::ssh::SshError::Unsupported { method } if method == "config.shred"),
        "{name}: {err:?}"
    );
    // The channel survives the error.
    engine.call::<Hello>(&id, "hello", json!({})).await.unwrap();
    if !subject.canned {
        // pfSense's reboot runs FreeBSD's rc scripts: nothing to prove on this Linux machine.
        engine.shutdown().await;
        return;
    }
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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_php_agent_on_pfsenses_own_code_conforms() {
    if let Some(subject) = php_agent_on_pfsense().await {
        conforms(subject).await;
    }
}

/// A fresh Mudmap key line for `device` (random key).
fn key_line(device: &str) -> String {
    let key = PrivateKey::random(&mut russh::keys::key::safe_rng(), Algorithm::Ed25519).unwrap();
    mudmap::agent::keys::line(
        &key.public_key().to_openssh().unwrap(),
        &mudmap::agent::keys::comment("conformance", device),
    )
}

/// access.ensure / access.remove / account.remove: exactly Mudmap's line, beside everything else.
async fn access_conforms(subject: &Subject, hash_before: &str) {
    let name = subject.name;
    let comment = |d: &str| mudmap::agent::keys::comment("conformance", d);
    // Anything but the exact template is refused, and changes nothing.
    let good = key_line("dev-1");
    let rsa = "ssh-rsa AAAAB3NzaC1yc2EAAAADAQABAAABAQC7 x";
    for bad in [
        json!({"authorized_key": good.replace("no-pty,", "")}),
        json!({"authorized_key": good.replace("command=\"", "command=\"/bin/sh -c id; ")}),
        json!({"authorized_key": good.replacen("no-pty", "no-pty,permitopen=\"*:*\"", 1)}),
        json!({"authorized_key": good.replace("mudmap:conformance:dev-1", "admin@laptop")}),
        json!({"authorized_key": format!("{good}\n{rsa}")}),
        json!({"authorized_key": mudmap::agent::keys::line(rsa, &comment("dev-1"))}),
        json!({"authorized_key": 7}),
        json!({}),
    ] {
        let refused = subject
            .call(json!({"v": 1, "id": 7, "method": "access.ensure", "params": bad}))
            .await;
        assert_eq!(
            subject.error_code(&refused),
            "invalid_params",
            "{name}: {bad} -> {refused}"
        );
    }
    let unchanged: ConfigDocument = subject.result("config.get").await;
    assert_eq!(
        unchanged.hash, hash_before,
        "{name}: refused lines change nothing"
    );
    let refused = subject
        .call(json!({"v": 1, "id": 8, "method": "account.remove", "params": {"name": "root"}}))
        .await;
    assert_eq!(
        subject.error_code(&refused),
        "invalid_params",
        "{name}: {refused}"
    );
    // The legacy account goes if there is one (the simulator has one for the not_root checks).
    let first = subject
        .ok("account.remove", json!({"name": "mudmap"}))
        .await;
    assert!(first["removed"].is_boolean(), "{name}: {first}");
    let none = subject
        .ok("account.remove", json!({"name": "mudmap"}))
        .await;
    assert_eq!(none["removed"], false, "{name}: removed once");

    // Added; a second device's line beside it; re-activation replaces the first in place.
    let first = subject
        .ok("access.ensure", json!({"authorized_key": good}))
        .await;
    assert_eq!(first["created"], true, "{name}: {first}");
    assert!(
        first["config_hash"]
            .as_str()
            .unwrap()
            .starts_with("sha256:"),
        "{name}"
    );
    let second_line = key_line("dev-2");
    let second = subject
        .ok("access.ensure", json!({"authorized_key": second_line}))
        .await;
    assert_eq!(second["created"], true, "{name}: {second}");
    assert!(
        second["others"]
            .as_array()
            .unwrap()
            .contains(&json!(comment("dev-1"))),
        "{name}: the other device's line is reported: {second}"
    );
    let renewed = key_line("dev-1");
    let again = subject
        .ok("access.ensure", json!({"authorized_key": renewed}))
        .await;
    assert_eq!(again["created"], false, "{name}: {again}");

    // Removal takes only that key's line; the agent stays while another Mudmap line remains.
    let gone = subject
        .ok(
            "access.remove",
            json!({"authorized_key": renewed, "agent": true}),
        )
        .await;
    assert_eq!(gone["removed"], true, "{name}: {gone}");
    assert_eq!(gone["agent_removed"], false, "{name}: {gone}");
    assert!(
        gone["others"]
            .as_array()
            .unwrap()
            .contains(&json!(comment("dev-2"))),
        "{name}: {gone}"
    );
    let twice = subject
        .ok(
            "access.remove",
            json!({"authorized_key": renewed, "agent": false}),
        )
        .await;
    assert_eq!(twice["removed"], false, "{name}: {twice}");
    // The replaced key was already gone with the replacement.
    let old = subject
        .ok(
            "access.remove",
            json!({"authorized_key": good, "agent": false}),
        )
        .await;
    assert_eq!(old["removed"], false, "{name}: {old}");
    let last = subject
        .ok(
            "access.remove",
            json!({"authorized_key": second_line, "agent": false}),
        )
        .await;
    assert_eq!(last["removed"], true, "{name}: {last}");
    assert_eq!(last["agent_removed"], false, "{name}: not asked for");
}

/// Without root the agent says hello (with its uid) and refuses everything else with `not_root`.
async fn not_root_conforms(subject: &Subject, target: &DeviceTarget, command: &str) {
    let name = subject.name;
    let keys: Arc<dyn HostKeyStore> = subject.keys.clone();
    let ask = |method: &'static str| {
        let keys = keys.clone();
        async move {
            let line = format!("{{\"v\":1,\"id\":3,\"method\":\"{method}\",\"params\":{{}}}}\n");
            let out = one_shot_exec(target, &config(), keys, command, Some(line.into_bytes()))
                .await
                .unwrap_or_else(|e| panic!("{name}: {e}"));
            serde_json::from_str::<Value>(out.stdout_text().lines().next().unwrap_or_default())
                .unwrap_or_else(|e| panic!("{name}: {e}: {}", out.stdout_text()))
        }
    };
    let hello = ask("hello").await;
    assert_eq!(hello["ok"], true, "{name}: {hello}");
    assert_ne!(hello["result"]["euid"], 0, "{name}: {hello}");
    for method in ["status", "config.get", "access.ensure", "service.control"] {
        let refused = ask(method).await;
        assert_eq!(
            subject.error_code(&refused),
            "not_root",
            "{name}: {method}: {refused}"
        );
    }
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
