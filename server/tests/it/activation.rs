//! Device activation end to end: a real server, a real simulated pfSense over real SSH, the
//! browser's server functions. The journey (fingerprint → steps → Active → mail), each failure
//! with its own message and nothing left on the device, delete with on-device cleanup, quarantine
//! on a changed host key, and a scan of the database and the logs for the password.

use std::time::Duration;

use mudmap::mail::sink::{ReceivedMail, SmtpSink};
use mudmap::sim::{FaultPatch, SimOptions, Simulator};
use serde_json::Value;

use crate::support::{capture_logs, until_refused, with_smtp, Api, TestServer};

/// The simulated firewall's admin password (what the scan looks for).
const DEVICE_PASSWORD: &str = "Zq7-device-admin-secret";
const USER_PASSWORD: &str = "demo-password-for-tests";

struct World {
    server: TestServer,
    api: Api,
    sim: Simulator,
    sink: SmtpSink,
    dir: tempfile::TempDir,
    settings: mudmap::config::Settings,
}

async fn world(devices: u32) -> World {
    let dir = tempfile::tempdir().unwrap();
    let sink = SmtpSink::start("127.0.0.1:0".parse().unwrap(), None)
        .await
        .unwrap();
    let mut settings = mudmap::config::Settings::for_data_dir(dir.path());
    settings.shutdown_grace_secs = 1;
    settings.poll.interval_secs = 1;
    settings.poll.offline_mail_after_secs = 1;
    let settings = with_smtp(settings, sink.addr());
    let store = mudmap::store::Store::connect(&settings.database_url(), &settings.database)
        .await
        .unwrap();
    store.migrate().await.unwrap();
    mudmap::demo::ensure_account(&store, Some(&mudmap::config::Secret::new(USER_PASSWORD)))
        .await
        .unwrap();
    store.close().await;
    let sim = Simulator::start(SimOptions {
        devices,
        password: DEVICE_PASSWORD.to_owned(),
        authorize_service_keys: false,
        // Long enough that a loaded machine still sees 'rebooting' between the event and a read.
        reboot_duration: Duration::from_secs(6),
        ..SimOptions::default()
    })
    .await
    .unwrap();
    let (server, api) = serve(&settings).await;
    World {
        server,
        api,
        sim,
        sink,
        dir,
        settings,
    }
}

/// A server on `settings`, and the demo user signed in to it.
async fn serve(settings: &mudmap::config::Settings) -> (TestServer, Api) {
    let server = TestServer::start(settings.clone()).await;
    let api = Api::new(&server);
    let (status, body) = api
        .call(
            "auth/login",
            &[
                ("email", mudmap::demo::DEMO_EMAIL),
                ("password", USER_PASSWORD),
            ],
        )
        .await;
    assert_eq!(status, 200, "{body}");
    (server, api)
}

impl World {
    async fn add(&self, index: u32) -> String {
        let port = self.sim.device(index).unwrap().port;
        self.add_at(&format!("fw-{index}"), port).await
    }

    /// Add a device at 127.0.0.1:`port`.
    async fn add_at(&self, name: &str, port: u16) -> String {
        let (status, body) = self
            .api
            .call(
                "devices/add",
                &[
                    ("name", name),
                    ("host", "127.0.0.1"),
                    ("port", &port.to_string()),
                    ("tags", ""),
                    ("notes", ""),
                ],
            )
            .await;
        assert_eq!(status, 200, "{body}");
        body["id"].as_str().unwrap().to_owned()
    }

    /// The probe's fingerprint of a device (what a person compares and confirms).
    async fn probed_fingerprint(&self, id: &str) -> String {
        let (status, probe) = self.probe(id).await;
        assert_eq!(status, 200, "{probe}");
        probe["fingerprint"].as_str().unwrap().to_owned()
    }

    /// The fleet row of a device, once `check` holds for it (waits up to 30 s).
    async fn fleet_row_when(&self, id: &str, check: impl Fn(&Value) -> bool) -> Value {
        let mut row = Value::Null;
        for _ in 0..300 {
            let (status, page) = self.api.call("fleet/list", &[]).await;
            assert_eq!(status, 200, "{page}");
            row = page["rows"]
                .as_array()
                .unwrap()
                .iter()
                .find(|r| r["id"] == id)
                .cloned()
                .unwrap_or(Value::Null);
            if check(&row) {
                return row;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        panic!("the fleet row never matched: {row}");
    }

    /// The audit entries of the demo organisation for `action`: their details.
    async fn audit(&self, action: &str) -> Vec<String> {
        let store =
            mudmap::store::Store::connect(&self.settings.database_url(), &self.settings.database)
                .await
                .unwrap();
        let rows: Vec<(String,)> = sqlx::query_as(
            "SELECT detail FROM audit_log WHERE action = $1 ORDER BY created_at, id",
        )
        .bind(action)
        .fetch_all(store.pool())
        .await
        .unwrap();
        store.close().await;
        rows.into_iter().map(|(d,)| d).collect()
    }

    async fn probe(&self, id: &str) -> (u16, Value) {
        self.api.call("devices/probe", &[("id", id)]).await
    }

    /// Add device `index` and activate it; its id.
    async fn activated(&self, index: u32) -> String {
        let id = self.add(index).await;
        let view = self
            .activate(&id, DEVICE_PASSWORD, &self.fingerprint(index))
            .await;
        assert_eq!(view["outcome"], "active", "{view:#}");
        assert!(
            !detail_of(&view, "access").contains("Another Mudmap"),
            "{view:#}"
        );
        id
    }

    /// Start a run and wait for its end; returns the final view.
    async fn activate(&self, id: &str, password: &str, fingerprint: &str) -> Value {
        let (status, run) = self
            .api
            .call(
                "devices/activate",
                &[
                    ("id", id),
                    ("username", "admin"),
                    ("password", password),
                    ("fingerprint", fingerprint),
                ],
            )
            .await;
        assert_eq!(status, 200, "{run}");
        let run = run.as_str().unwrap().to_owned();
        for _ in 0..600 {
            let (status, view) = self.api.call("devices/activation", &[("id", &run)]).await;
            assert_eq!(status, 200, "{view}");
            if view["outcome"] != "running" {
                return view;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!("activation did not finish within 30 s");
    }

    async fn device(&self, id: &str) -> Value {
        let (status, list) = self.api.call("devices/list", &[]).await;
        assert_eq!(status, 200, "{list}");
        list.as_array()
            .unwrap()
            .iter()
            .find(|d| d["id"] == id)
            .cloned()
            .unwrap_or(Value::Null)
    }

    /// At least `count` mails whose subject contains `subject` (waits up to `timeout`). Other
    /// mails (e.g. "was added") arrive in between, in no fixed order.
    async fn mails_about(
        &self,
        subject: &str,
        count: usize,
        timeout: Duration,
    ) -> Vec<ReceivedMail> {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            let found: Vec<ReceivedMail> = self
                .sink
                .messages()
                .into_iter()
                .filter(|m| m.header("Subject").unwrap_or_default().contains(subject))
                .collect();
            if found.len() >= count {
                return found;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "{} of {count} mails about {subject:?}; got {:?}",
                found.len(),
                self.sink
                    .messages()
                    .iter()
                    .map(|m| m.header("Subject"))
                    .collect::<Vec<_>>()
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Open the event stream, add and activate device `index`, and wait until the device is
    /// online on it. (Events are not replayed: the stream opens before the activation, whose
    /// first poll may come at once.)
    async fn online(&self, index: u32) -> (String, reqwest::Response) {
        let mut stream = self.events().await;
        let id = self.add(index).await;
        let view = self
            .activate(&id, DEVICE_PASSWORD, &self.fingerprint(index))
            .await;
        assert_eq!(view["outcome"], "active", "{view:#}");
        wait_for_event(&mut stream, &id, "online").await;
        (id, stream)
    }

    /// The signed-in user's event stream (`/api/events`), open.
    async fn events(&self) -> reqwest::Response {
        let stream = self
            .server
            .client
            .get(self.server.url("/api/events"))
            .header("cookie", self.api.cookie().unwrap())
            .send()
            .await
            .unwrap();
        assert_eq!(stream.status(), 200);
        stream
    }

    fn fingerprint(&self, index: u32) -> String {
        mudmap::ssh::fingerprint(self.sim.device(index).unwrap().host_key.public_key())
    }

    /// Stop the server and the simulator; the data directory lives on in the returned guard.
    async fn stop(self) -> tempfile::TempDir {
        self.server.stop().await.unwrap();
        self.sim.shutdown().await;
        self.dir
    }
}

fn states(view: &Value) -> Vec<(String, String)> {
    view["steps"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| {
            (
                s["key"].as_str().unwrap().to_owned(),
                s["state"].as_str().unwrap().to_owned(),
            )
        })
        .collect()
}

fn state_of(view: &Value, key: &str) -> String {
    states(view)
        .into_iter()
        .find(|(k, _)| k == key)
        .map(|(_, s)| s)
        .unwrap()
}

/// Nothing of Mudmap is on the simulated firewall, and the admin's own key is as it was.
fn untouched(sim: &Simulator, index: u32) {
    let device = sim.device(index).unwrap();
    assert!(!device.has_agent(), "the agent was left on the device");
    assert_eq!(
        *device.admin_keys.lock().unwrap(),
        format!("{}\n", mudmap::sim::device::ADMIN_OWN_KEY),
        "Mudmap's key line was left on the device, or the admin's own key changed"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn activation_journey_pins_the_key_installs_the_agent_and_mails_the_admins() {
    // Capture every log line (trace level, russh included) before the server starts.
    let logs = capture_logs();
    let world = world(1).await;
    let id = world.add(0).await;
    assert_eq!(world.device(&id).await["state"], "inactive");

    let (status, probe) = world.probe(&id).await;
    assert_eq!(status, 200, "{probe}");
    assert_eq!(probe["fingerprint"], world.fingerprint(0));
    assert_eq!(probe["algorithm"], "ssh-ed25519");
    assert!(probe["address"]
        .as_str()
        .unwrap()
        .ends_with(&world.sim.device(0).unwrap().port.to_string()));

    let view = world
        .activate(&id, DEVICE_PASSWORD, &world.fingerprint(0))
        .await;
    assert_eq!(view["outcome"], "active", "{view:#}");
    assert!(states(&view).iter().all(|(_, s)| s == "done"), "{view:#}");
    assert_eq!(view["error"], Value::Null);

    let device = world.device(&id).await;
    assert_eq!(device["state"], "active");
    assert_eq!(device["fingerprint"], world.fingerprint(0));
    assert!(
        device["pfsense"].as_str().unwrap().starts_with("CE "),
        "{device}"
    );
    assert_eq!(
        device["agent_version"],
        mudmap::sim::agent::SIM_AGENT_VERSION
    );

    // On the device: the agent, and one line in the admin account's keys, after the admin's own,
    // whose key can only run the forced command and whose comment names this device.
    let sim_device = world.sim.device(0).unwrap();
    assert!(sim_device.has_agent());
    let text = sim_device.admin_keys.lock().unwrap().clone();
    let (own, line) = text.trim_end().split_once('\n').unwrap();
    assert_eq!(own, mudmap::sim::device::ADMIN_OWN_KEY);
    assert!(
        line.starts_with(
            "command=\"/bin/sh -c 'case $SSH_ORIGINAL_COMMAND in mudmap-install-agent)"
        ),
        "{line}"
    );
    assert!(line
        .contains(",no-pty,no-port-forwarding,no-agent-forwarding,no-X11-forwarding ssh-ed25519 "));
    assert!(line.ends_with(&format!(":{id}")), "{line}");
    assert!(mudmap::agent::keys::parse(line).is_some(), "{line}");

    // The owner got the "device added" mail, then the "device activated" one, through the job
    // queue.
    world
        .mails_about("fw-0 was added", 1, Duration::from_secs(10))
        .await;
    world
        .mails_about("fw-0 is now managed", 1, Duration::from_secs(10))
        .await;

    // The engine took the device on: its status poll keeps one connection open with the service key.
    for _ in 0..100 {
        if sim_device
            .sessions_started
            .load(std::sync::atomic::Ordering::Relaxed)
            >= 3
        {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(
        sim_device
            .sessions_started
            .load(std::sync::atomic::Ordering::Relaxed)
            >= 3
    );

    // The password is nowhere: not in the database files, not in any log line.
    let data_dir = world.stop().await;
    let mut scanned = 0;
    for entry in std::fs::read_dir(data_dir.path()).unwrap() {
        let path = entry.unwrap().path();
        if path.is_file() {
            // A lock or journal file may go away as the listing is read.
            let Ok(bytes) = std::fs::read(&path) else {
                continue;
            };
            scanned += bytes.len();
            assert!(
                !contains(&bytes, DEVICE_PASSWORD.as_bytes()),
                "the device password is in {}",
                path.display()
            );
        }
    }
    assert!(
        scanned > 10_000,
        "the database files were not found ({scanned} bytes)"
    );
    let logs = logs.0.lock().unwrap().clone();
    assert!(
        logs.len() > 1_000,
        "nothing was logged ({} bytes)",
        logs.len()
    );
    assert!(
        !contains(&logs, DEVICE_PASSWORD.as_bytes()),
        "the device password is in the logs"
    );
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_failure_has_its_own_message_and_leaves_nothing_behind() {
    let world = world(1).await;
    let id = world.add(0).await;
    let fp = world.fingerprint(0);
    let device = world.sim.device(0).unwrap().clone();

    // Wrong password: refused at login, nothing changed.
    let view = world.activate(&id, "not-the-password", &fp).await;
    assert_eq!(view["outcome"], "failed");
    assert_eq!(state_of(&view, "login"), "failed");
    let error = view["error"].as_str().unwrap();
    assert!(
        error.contains("refused the password for \"admin\""),
        "{error}"
    );
    assert_eq!(view["cleanup"], "Nothing was changed on the firewall.");
    assert!(!error.contains("not-the-password"));
    untouched(&world.sim, 0);
    // On the audit record (written as the run ends), without the password.
    let mut recorded = serde_json::Value::Null;
    for _ in 0..100 {
        let (status, page) = world
            .api
            .call(
                "audit/list",
                &[
                    ("actor", ""),
                    ("subject", ""),
                    ("action", "device.activation_failed"),
                    ("since", ""),
                    ("until", ""),
                ],
            )
            .await;
        assert_eq!(status, 200, "{page}");
        if let Some(entry) = page["entries"].as_array().and_then(|e| e.first()) {
            recorded = entry.clone();
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    let detail = recorded["detail"].as_str().unwrap_or_default();
    assert!(detail.starts_with("login: "), "{recorded}");
    assert!(!detail.contains("not-the-password"), "{recorded}");

    // The person confirmed another key than the device presents: no password is sent.
    let view = world
        .activate(
            &id,
            DEVICE_PASSWORD,
            "SHA256:AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA",
        )
        .await;
    assert_eq!(state_of(&view, "connect"), "failed");
    assert!(
        view["error"]
            .as_str()
            .unwrap()
            .contains("not the SHA256:AAAA"),
        "{view}"
    );

    // SSH set to key-only.
    device.patch_faults(FaultPatch {
        key_only: Some(true),
        ..FaultPatch::default()
    });
    let view = world.activate(&id, DEVICE_PASSWORD, &fp).await;
    assert!(
        view["error"]
            .as_str()
            .unwrap()
            .contains("accepts SSH keys only"),
        "{view}"
    );
    device.patch_faults(FaultPatch {
        key_only: Some(false),
        ..FaultPatch::default()
    });

    // Not pfSense.
    device.patch_faults(FaultPatch {
        not_pfsense: Some(true),
        ..FaultPatch::default()
    });
    let view = world.activate(&id, DEVICE_PASSWORD, &fp).await;
    assert_eq!(state_of(&view, "detect"), "failed");
    assert!(
        view["error"]
            .as_str()
            .unwrap()
            .starts_with("This is not a pfSense system"),
        "{view}"
    );
    device.patch_faults(FaultPatch {
        not_pfsense: Some(false),
        ..FaultPatch::default()
    });

    // The agent cannot be written: the half-written agent is removed again.
    device.patch_faults(FaultPatch {
        agent_install_fails: Some(true),
        ..FaultPatch::default()
    });
    let view = world.activate(&id, DEVICE_PASSWORD, &fp).await;
    assert_eq!(state_of(&view, "agent"), "failed");
    assert!(
        view["error"]
            .as_str()
            .unwrap()
            .contains("Read-only file system"),
        "{view}"
    );
    assert_eq!(
        view["cleanup"],
        "Undone on the firewall: removed the agent."
    );
    untouched(&world.sim, 0);
    device.patch_faults(FaultPatch {
        agent_install_fails: Some(false),
        ..FaultPatch::default()
    });

    // The key cannot be saved: key line and agent are removed again.
    device.patch_faults(FaultPatch {
        account_fails: Some(true),
        ..FaultPatch::default()
    });
    let view = world.activate(&id, DEVICE_PASSWORD, &fp).await;
    assert_eq!(state_of(&view, "access"), "failed");
    assert_eq!(state_of(&view, "agent"), "undone");
    assert!(
        view["error"]
            .as_str()
            .unwrap()
            .starts_with("Mudmap's key could not be added to the admin account"),
        "{view}"
    );
    assert!(
        view["cleanup"]
            .as_str()
            .unwrap()
            .contains("removed the agent"),
        "{view}"
    );
    untouched(&world.sim, 0);
    device.patch_faults(FaultPatch {
        account_fails: Some(false),
        ..FaultPatch::default()
    });

    // Refused: the probe already says so, before any password is asked for.
    device.patch_faults(FaultPatch {
        refuse: Some(true),
        ..FaultPatch::default()
    });
    until_refused(world.sim.addr(0).unwrap()).await;
    let (status, body) = world.probe(&id).await;
    assert_eq!(status, 503, "{body}");
    assert!(
        body.to_string().contains("refused the connection"),
        "{body}"
    );
    device.patch_faults(FaultPatch {
        refuse: Some(false),
        ..FaultPatch::default()
    });

    // The device record never changed.
    assert_eq!(world.device(&id).await["state"], "inactive");
    world.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_changed_host_key_quarantines_and_delete_cleans_the_device() {
    let world = world(2).await;
    let a = world.add(0).await;
    let b = world.add(1).await;
    for (id, index) in [(&a, 0), (&b, 1)] {
        let view = world
            .activate(id, DEVICE_PASSWORD, &world.fingerprint(index))
            .await;
        assert_eq!(view["outcome"], "active", "{view:#}");
    }

    // Self-heal: the agent vanishes (as after a pfSense upgrade); the engine reinstalls it through
    // the service key on its next connect, without the password.
    let sim_b = world.sim.device(1).unwrap();
    sim_b
        .agent_installed
        .store(false, std::sync::atomic::Ordering::Relaxed);
    sim_b.patch_faults(FaultPatch {
        drop_connections: true,
        ..FaultPatch::default()
    });
    let sessions = sim_b
        .sessions_started
        .load(std::sync::atomic::Ordering::Relaxed);
    for _ in 0..100 {
        if sim_b.has_agent()
            && sim_b
                .sessions_started
                .load(std::sync::atomic::Ordering::Relaxed)
                > sessions
        {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(sim_b.has_agent(), "the agent was not reinstalled");
    assert_eq!(world.device(&b).await["state"], "active");

    // Device 0 presents another key: the next poll quarantines it, naming both keys.
    let sim_a = world.sim.device(0).unwrap();
    sim_a.patch_faults(FaultPatch {
        host_key_changed: Some(true),
        drop_connections: true,
        ..FaultPatch::default()
    });
    let impostor = mudmap::ssh::fingerprint(sim_a.changed_host_key.public_key());
    let mut device = Value::Null;
    for _ in 0..100 {
        device = world.device(&a).await;
        if device["state"] == "quarantined" {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(device["state"], "quarantined", "{device}");
    assert_eq!(device["fingerprint"], world.fingerprint(0));
    assert_eq!(device["presented_fingerprint"], impostor);

    // Deleting device 1 removes its key line and agent from it first (the key is proven not to
    // log in any more), then the record.
    let (status, body) = world.api.call("devices/delete", &[("id", &b)]).await;
    assert_eq!(status, 200, "{body}");
    untouched(&world.sim, 1);
    assert_eq!(world.device(&b).await, Value::Null);

    // Device 0 cannot be cleaned (its key is not trusted): refused with the way out, then forced.
    let (status, body) = world.api.call("devices/delete", &[("id", &a)]).await;
    assert_eq!(status, 409, "{body}");
    assert!(body.to_string().contains("Delete anyway"), "{body}");
    let (status, body) = world
        .api
        .call("devices/delete", &[("id", &a), ("force", "true")])
        .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(world.device(&a).await, Value::Null);

    // Owners and admins got one mail per addition, per activation and per deletion.
    let deleted = world
        .mails_about("was deleted", 2, Duration::from_secs(10))
        .await;
    assert_eq!(deleted.len(), 2);
    assert_eq!(
        world
            .mails_about("was added", 2, Duration::from_secs(10))
            .await
            .len(),
        2
    );
    assert_eq!(
        world
            .mails_about("is now managed", 2, Duration::from_secs(10))
            .await
            .len(),
        2
    );
    world.stop().await;
}

/// Read server-sent events until one `health` event for `device` says `health`.
async fn wait_for_event(stream: &mut reqwest::Response, device: &str, health: &str) -> Value {
    wait_for_sse(stream, "health", |e| {
        e["device_id"] == device && e["health"] == health
    })
    .await
}

/// Read server-sent events until one named `name` whose data satisfies `wanted`.
async fn wait_for_sse(
    stream: &mut reqwest::Response,
    name: &str,
    wanted: impl Fn(&Value) -> bool,
) -> Value {
    let mut buffer = String::new();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    let header = format!("event: {name}\n");
    loop {
        let chunk = tokio::time::timeout_at(deadline, stream.chunk())
            .await
            .unwrap_or_else(|_| panic!("no {name} event within 30 s"))
            .unwrap()
            .expect("the event stream ended");
        buffer.push_str(&String::from_utf8_lossy(&chunk));
        while let Some(end) = buffer.find("\n\n") {
            let message: String = buffer.drain(..end + 2).collect();
            if !message.contains(&header) {
                continue;
            }
            let data = message
                .lines()
                .find_map(|l| l.strip_prefix("data: "))
                .unwrap();
            let event: Value = serde_json::from_str(data).unwrap();
            if wanted(&event) {
                return event;
            }
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_fleet_shows_health_from_polls_and_streams_changes() {
    let world = world(2).await;
    // Signed out, no stream.
    let anonymous = world.server.get("/api/events").await;
    assert_eq!(anonymous.status(), 401);
    let mut stream = world.events().await;
    let id = world.activated(0).await;
    let other = world.add(1).await;
    assert!(stream.headers()["content-type"]
        .to_str()
        .unwrap()
        .starts_with("text/event-stream"));

    // The first poll turns the activated device online, with figures.
    let online = wait_for_event(&mut stream, &id, "online").await;
    assert!(online["at_ms"].as_i64().unwrap() > 0);
    let (status, page) = world.api.call("fleet/list", &[]).await;
    assert_eq!(status, 200, "{page}");
    assert_eq!(page["counts"]["all"], 2);
    assert_eq!(page["counts"]["online"], 1);
    assert_eq!(page["counts"]["inactive"], 1);
    let row = page["rows"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["id"] == id)
        .unwrap()
        .clone();
    assert_eq!(row["health"], "Online");
    assert!(
        row["cpu_pct"].as_f64().is_some() && row["mem_pct"].as_f64().is_some(),
        "{row}"
    );
    assert_eq!(row["gateways_up"], 1);
    assert!(row["pfsense"].as_str().unwrap().starts_with("CE "));

    // The device page: the stored status as it came, and the history for the charts.
    let (status, detail) = world.api.call("devices/detail", &[("id", &id)]).await;
    assert_eq!(status, 200, "{detail}");
    assert_eq!(detail["health"], "Online");
    assert_eq!(detail["status"]["gateways"][0]["name"], "WAN_GW");
    assert!(!detail["status"]["services"].as_array().unwrap().is_empty());
    assert!(
        !detail["history"].as_array().unwrap().is_empty(),
        "{detail}"
    );

    // A service stopped from the device page stops on the firewall; the answer is the firewall's.
    let stop = [
        ("id", id.as_str()),
        ("service", "unbound"),
        ("action", "stop"),
    ];
    let (status, service) = world.api.call("devices/service", &stop).await;
    assert_eq!(status, 200, "{service}");
    assert_eq!(service["status"], "stopped");
    let unbound_running = |world: &World| {
        let model = world.sim.device(0).unwrap().model.lock().unwrap();
        model
            .services
            .iter()
            .find(|s| s.name == "unbound")
            .unwrap()
            .running
    };
    assert!(!unbound_running(&world));
    let start = [
        ("id", id.as_str()),
        ("service", "unbound"),
        ("action", "start"),
    ];
    let (_, service) = world.api.call("devices/service", &start).await;
    assert_eq!(service["status"], "running");
    assert!(unbound_running(&world));
    let (status, body) = world
        .api
        .call(
            "devices/service",
            &[("id", &id), ("service", "nope"), ("action", "start")],
        )
        .await;
    assert_eq!(status, 404, "{body}");
    let (status, _) = world
        .api
        .call(
            "devices/service",
            &[("id", &other), ("service", "unbound"), ("action", "start")],
        )
        .await;
    assert_eq!(status, 422, "an inactive device has no services to control");

    // Filters, search and sort run in the database.
    let (_, page) = world
        .api
        .call("fleet/list", &[("health", "inactive")])
        .await;
    assert_eq!(page["matching"], 1);
    assert_eq!(page["rows"][0]["id"], other);
    let (_, page) = world.api.call("fleet/list", &[("search", "FW-1")]).await;
    assert_eq!(page["matching"], 1, "{page}");
    let (_, page) = world.api.call("fleet/list", &[("search", "%")]).await;
    assert_eq!(
        page["matching"], 0,
        "a wildcard is searched for literally: {page}"
    );
    let (_, page) = world
        .api
        .call("fleet/list", &[("sort", "cpu"), ("descending", "true")])
        .await;
    assert_eq!(
        page["rows"][0]["id"], id,
        "devices without figures sort last: {page}"
    );
    let (status, body) = world.api.call("fleet/list", &[("sort", "password")]).await;
    assert_eq!(status, 422, "{body}");

    // The device stops answering: offline after two missed polls, announced on the stream.
    world.sim.device(0).unwrap().patch_faults(FaultPatch {
        refuse: Some(true),
        drop_connections: true,
        ..FaultPatch::default()
    });
    let offline = wait_for_event(&mut stream, &id, "offline").await;
    assert!(!offline["reason"].as_str().unwrap().is_empty(), "{offline}");
    let (_, page) = world.api.call("fleet/list", &[("health", "offline")]).await;
    assert_eq!(page["rows"][0]["id"], id);
    assert!(
        page["rows"][0]["last_seen_ms"].as_i64().is_some(),
        "the last known data stays"
    );

    let (_, detail) = world.api.call("devices/detail", &[("id", &id)]).await;
    assert_eq!(detail["health"], "Offline");
    assert_eq!(
        detail["status"]["gateways"][0]["name"], "WAN_GW",
        "the last known status is kept"
    );
    // After the hold-down the owner hears of it.
    let mail = world
        .mails_about("is unreachable", 1, Duration::from_secs(15))
        .await;
    let subject = mail[0].header("Subject").unwrap_or_default();
    assert!(subject.contains("fw-0"), "{subject}");

    // And back.
    world.sim.device(0).unwrap().patch_faults(FaultPatch {
        refuse: Some(false),
        ..FaultPatch::default()
    });
    wait_for_event(&mut stream, &id, "online").await;
    let mail = world
        .mails_about("reachable again", 1, Duration::from_secs(15))
        .await;
    let subject = mail[0].header("Subject").unwrap_or_default();
    assert!(
        subject.contains("fw-0"),
        "the mail says it is back: {subject}"
    );
    drop(stream);
    world.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn status_tables_are_read_live_and_a_reboot_is_expected_not_an_outage() {
    let world = world(1).await;
    let (id, mut stream) = world.online(0).await;

    // The Status tab's tables come from the firewall, as it answers now.
    let (status, tables) = world.api.call("devices/tables", &[("id", &id)]).await;
    assert_eq!(status, 200, "{tables}");
    let model = world.sim.device(0).unwrap().model.lock().unwrap().clone();
    assert_eq!(
        tables["leases"].as_array().unwrap().len(),
        model.dhcp_leases().leases.len()
    );
    assert!(tables["leases"]
        .as_array()
        .unwrap()
        .iter()
        .any(|l| l["kind"] == "static" && l["ends_at"].is_null()));
    assert!(
        tables["arp"][0]["expires_secs"].is_null(),
        "the gateway is permanent: {tables}"
    );
    assert!(tables["packages"]
        .as_array()
        .unwrap()
        .iter()
        .any(|p| p["name"] == "openvpn-client-export"));
    let uptime_before = model.status().uptime_secs.unwrap();
    assert!(uptime_before > 3_600);

    // A reboot: "rebooting" at once, back with a fresh uptime, and no outage mail.
    let (status, body) = world
        .api
        .call(
            "devices/power",
            &[("id", &id), ("action", "reboot"), ("confirm", "fw-0")],
        )
        .await;
    assert_eq!(status, 200, "{body}");
    let rebooting = wait_for_event(&mut stream, &id, "rebooting").await;
    assert!(
        rebooting["reason"]
            .as_str()
            .unwrap()
            .contains("requested by"),
        "{rebooting}"
    );
    let (_, page) = world.api.call("fleet/list", &[]).await;
    assert_eq!(page["counts"]["rebooting"], 1, "{page}");
    wait_for_event(&mut stream, &id, "online").await;
    let (_, detail) = world.api.call("devices/detail", &[("id", &id)]).await;
    assert!(
        detail["status"]["uptime_secs"].as_u64().unwrap() < 60,
        "the uptime starts again: {detail}"
    );
    // The offline hold-down is 1 s here: had the reboot counted as an outage, a mail would be out.
    tokio::time::sleep(Duration::from_secs(3)).await;
    let outage_mails = world
        .sink
        .messages()
        .iter()
        .filter(|m| {
            m.header("Subject")
                .unwrap_or_default()
                .contains("unreachable")
        })
        .count();
    assert_eq!(outage_mails, 0, "a requested reboot is not an outage");
    drop(stream);
    world.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_gateway_down_and_back_up_is_mailed_to_the_admins() {
    let world = world(1).await;
    let (id, mut stream) = world.online(0).await;

    // The WAN gateway stops answering: the device is degraded at once, the mail follows the
    // hold-down (1 s here).
    world.sim.device(0).unwrap().patch_faults(FaultPatch {
        gateway_down: Some(true),
        ..FaultPatch::default()
    });
    let degraded = wait_for_event(&mut stream, &id, "degraded").await;
    assert!(
        degraded["reason"].as_str().unwrap().contains("WAN_GW"),
        "{degraded}"
    );
    let mail = world
        .mails_about("Gateway WAN_GW on fw-0", 1, Duration::from_secs(15))
        .await;
    let subject = mail[0].header("Subject").unwrap_or_default();
    assert!(subject.ends_with("is down"), "{subject}");
    let body = mail[0].body_text();
    assert!(body.contains("WAN_GW") && body.contains("UTC"), "{body}");

    // Back up: online again, and the admins hear of it once.
    world.sim.device(0).unwrap().patch_faults(FaultPatch {
        gateway_down: Some(false),
        ..FaultPatch::default()
    });
    wait_for_event(&mut stream, &id, "online").await;
    world
        .mails_about("is back up", 1, Duration::from_secs(15))
        .await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    let downs = world
        .sink
        .messages()
        .iter()
        .filter(|m| m.header("Subject").unwrap_or_default().contains("is down"))
        .count();
    assert_eq!(downs, 1, "one episode, one mail");
    drop(stream);
    world.stop().await;
}

/// The detail the run shows for one step.
fn detail_of(view: &Value, key: &str) -> String {
    view["steps"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["key"] == key)
        .and_then(|s| s["detail"].as_str())
        .unwrap_or_default()
        .to_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_organisations_each_get_their_own_line_and_neither_removes_the_others() {
    let world = world(1).await;
    let sim = world.sim.device(0).unwrap().clone();
    let first = world.activated(0).await;

    // A second organisation registers the same firewall: its own line, and it is told.
    let (status, org) = world
        .api
        .call("orgs/create", &[("name", "Second MSP")])
        .await;
    assert_eq!(status, 200, "{org}");
    let second_org = org["id"].as_str().unwrap().to_owned();
    let (status, body) = world
        .api
        .call("orgs/switch", &[("org_id", &second_org)])
        .await;
    assert_eq!(status, 200, "{body}");
    let second = world.add(0).await;
    let view = world
        .activate(&second, DEVICE_PASSWORD, &world.fingerprint(0))
        .await;
    assert_eq!(view["outcome"], "active", "{view:#}");
    let told = detail_of(&view, "access");
    assert!(
        told.contains("Another Mudmap organisation or installation manages this firewall too")
            && told.contains(&format!(":{first})")),
        "{told}"
    );
    let text = sim.admin_keys.lock().unwrap().clone();
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), 3, "{text}");
    assert_eq!(lines[0], mudmap::sim::device::ADMIN_OWN_KEY);
    assert!(lines[1].ends_with(&format!(":{first}")), "{text}");
    assert!(lines[2].ends_with(&format!(":{second}")), "{text}");

    // Deleting the second organisation's device removes its line only; the agent stays for the
    // first, which still reaches the firewall.
    let (status, body) = world.api.call("devices/delete", &[("id", &second)]).await;
    assert_eq!(status, 200, "{body}");
    let text = sim.admin_keys.lock().unwrap().clone();
    assert_eq!(text, format!("{}\n{}\n", lines[0], lines[1]));
    assert!(sim.has_agent());
    let detail = world.audit("device.deleted").await;
    assert!(
        detail[0].contains("verified: the key no longer logs in")
            && detail[0].contains("the agent kept for the other Mudmap key(s)"),
        "{detail:?}"
    );
    world.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_removal_that_cannot_be_verified_is_not_reported_done() {
    let world = world(1).await;
    let sim = world.sim.device(0).unwrap().clone();
    let id = world.activated(0).await;
    // pfSense cannot save the change: delete refuses and says what stays and where.
    sim.patch_faults(FaultPatch {
        account_fails: Some(true),
        ..FaultPatch::default()
    });
    let (status, body) = world.api.call("devices/delete", &[("id", &id)]).await;
    assert_eq!(status, 409, "{body}");
    let message = body.to_string();
    assert!(
        message.contains("Nothing was deleted")
            && message.contains(&format!(":{id}\\\""))
            && message.contains("System → User Manager → admin → Authorized SSH Keys")
            && message.contains("/usr/local/share/mudmap"),
        "{message}"
    );
    assert!(world.device(&id).await["state"] == "active");
    assert!(sim.has_mudmap_key() && sim.has_agent());
    // Delete anyway: the record goes, and the audit entry says what was left on the firewall.
    let (status, body) = world
        .api
        .call("devices/delete", &[("id", &id), ("force", "true")])
        .await;
    assert_eq!(status, 200, "{body}");
    let detail = world.audit("device.deleted").await;
    assert!(
        detail[0].contains("deleted without removing Mudmap's access; left on the firewall: the key line ending in"),
        "{detail:?}"
    );
    world.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_device_activated_the_old_way_asks_for_reactivation_which_removes_the_old_account() {
    let world = world(1).await;
    let sim = world.sim.device(0).unwrap().clone();
    let id = world.activated(0).await;
    world.fleet_row_when(&id, |r| r["health"] == "Online").await;

    // As an installation from before agent 1.2.0 left it: the key on the `mudmap` account (no
    // root), the record naming that account.
    let key = {
        let text = sim.admin_keys.lock().unwrap().clone();
        let line = text.lines().nth(1).unwrap().to_owned();
        let parsed = mudmap::agent::keys::parse(&line).unwrap();
        russh::keys::PublicKey::from_openssh(&format!("ssh-ed25519 {}", parsed.key)).unwrap()
    };
    world.server.stop().await.unwrap();
    *sim.admin_keys.lock().unwrap() = format!("{}\n", mudmap::sim::device::ADMIN_OWN_KEY);
    sim.add_legacy_account(key);
    let store =
        mudmap::store::Store::connect(&world.settings.database_url(), &world.settings.database)
            .await
            .unwrap();
    sqlx::query("UPDATE devices SET service_user = 'mudmap' WHERE id = $1")
        .bind(&id)
        .execute(store.pool())
        .await
        .unwrap();
    store.close().await;
    let (server, api) = serve(&world.settings).await;
    let world = World {
        server,
        api,
        ..world
    };

    // On connect the engine sees the agent has no root: shown at once, with what to do.
    let row = world
        .fleet_row_when(&id, |r| r["health"] == "NoAccess")
        .await;
    assert!(
        row["reason"].as_str().unwrap().contains(
            "Mudmap's key has no root access (the agent runs as uid 2000): re-activate the device"
        ),
        "{row}"
    );
    // Actions say so too, and delete cannot pretend to clean up.
    let (status, body) = world.api.call("devices/tables", &[("id", &id)]).await;
    assert_eq!(status, 409, "{body}");
    assert!(body.to_string().contains("has no root access"), "{body}");
    let (status, body) = world.api.call("devices/delete", &[("id", &id)]).await;
    assert_eq!(status, 409, "{body}");
    assert!(body.to_string().contains("Re-activate it first"), "{body}");

    // Re-activation gives root and removes the old account.
    let fingerprint = world.probed_fingerprint(&id).await;
    let view = world.activate(&id, DEVICE_PASSWORD, &fingerprint).await;
    assert_eq!(view["outcome"], "active", "{view:#}");
    assert!(
        detail_of(&view, "verify").contains("removed the old service account \"mudmap\""),
        "{view:#}"
    );
    assert!(sim.legacy_account.lock().unwrap().is_none());
    world.fleet_row_when(&id, |r| r["health"] == "Online").await;
    world.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stored_versions_follow_what_the_agent_reports() {
    let world = world(1).await;
    let sim = world.sim.device(0).unwrap().clone();
    let id = world.activated(0).await;
    let before = world.device(&id).await["pfsense"]
        .as_str()
        .unwrap()
        .to_owned();
    // pfSense is upgraded (a reboot): the next hello reports the new version.
    sim.model.lock().unwrap().version.version = "2.8.1".to_owned();
    sim.patch_faults(FaultPatch {
        drop_connections: true,
        ..FaultPatch::default()
    });
    let mut device = Value::Null;
    for _ in 0..150 {
        device = world.device(&id).await;
        if device["pfsense"] == "CE 2.8.1" {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(device["pfsense"], "CE 2.8.1", "{device}");
    let audit = world.audit("device.versions").await;
    assert!(
        audit
            .iter()
            .any(|d| d.contains(&format!("pfSense {before} -> CE 2.8.1"))),
        "{audit:?}"
    );
    world.stop().await;
}

/// The device's key as the server stored it (sealed under the data directory's master key).
async fn stored_key(world: &World, id: &str) -> russh::keys::PrivateKey {
    use base64::Engine as _;
    let store =
        mudmap::store::Store::connect(&world.settings.database_url(), &world.settings.database)
            .await
            .unwrap();
    let (sealed,): (String,) = sqlx::query_as("SELECT service_key FROM devices WHERE id = $1")
        .bind(id)
        .fetch_one(store.pool())
        .await
        .unwrap();
    store.close().await;
    let master =
        mudmap::crypto::MasterKey::load_or_create(&world.settings.master_key_file()).unwrap();
    let pem = mudmap::crypto::Sealer::new(&master)
        .open(
            &base64::engine::general_purpose::STANDARD
                .decode(sealed)
                .unwrap(),
            id.as_bytes(),
        )
        .unwrap();
    russh::keys::PrivateKey::from_openssh(std::str::from_utf8(&pem).unwrap()).unwrap()
}

fn fixture_target(
    port: u16,
    user: &str,
    credentials: mudmap::ssh::Credentials,
) -> mudmap::ssh::DeviceTarget {
    mudmap::ssh::DeviceTarget {
        id: mudmap::ssh::DeviceId::new("pfsense-fixture"),
        host: "127.0.0.1".to_owned(),
        port,
        username: user.to_owned(),
        credentials,
        agent_command: mudmap::ssh::PFSENSE_AGENT_COMMAND.to_owned(),
        self_heal: Some(std::sync::Arc::new(mudmap::ssh::SelfHeal {
            command: mudmap::activation::remote::SELF_HEAL.to_owned(),
            agent: mudmap::activation::remote::AGENT_SOURCE.as_bytes(),
            version: mudmap::activation::remote::shipped_agent_version().to_owned(),
        })),
    }
}

/// The real path on pfSense's own PHP code over real OpenSSH (server/tests/fixtures/pfsense-host):
/// activate with the password once → Mudmap's line sits in admin's authorized keys after the
/// admin's own key → status and config.get as root → a service action answered honestly → delete
/// removes the line and the agent and nothing else → an account of the old way has no root and is
/// removed by re-activation.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn activate_operate_delete_and_reactivate_on_pfsenses_own_code() {
    use mudmap::ssh::{ConfirmedFingerprint, Credentials, DirectSession};
    use russh::keys::{Algorithm, PrivateKey};
    use std::sync::Arc;

    let admin_key =
        PrivateKey::random(&mut russh::keys::key::safe_rng(), Algorithm::Ed25519).unwrap();
    let own = format!(
        "{} admin@laptop\n",
        admin_key.public_key().to_openssh().unwrap()
    );
    let Some(host) = crate::support::pfsense_host::PfSenseHost::start(DEVICE_PASSWORD, Some(&own))
    else {
        return;
    };
    let world = world(0).await;
    let id = world.add_at("pf-real", host.port).await;
    let fingerprint = world.probed_fingerprint(&id).await;
    assert_eq!(fingerprint, mudmap::ssh::fingerprint(&host.host_key));
    let view = world.activate(&id, DEVICE_PASSWORD, &fingerprint).await;
    assert_eq!(view["outcome"], "active", "{view:#}");
    assert!(
        detail_of(&view, "verify").contains("answers as root"),
        "{view:#}"
    );

    // pfSense's own write_config() saved the line after the admin's own key, and
    // local_user_set() wrote both to root's authorized_keys (what sshd reads).
    let keys = host.admin_keys();
    assert!(keys.starts_with(&own), "{keys}");
    let ours: Vec<&str> = keys.lines().filter(|l| l.contains(" mudmap:")).collect();
    assert_eq!(ours.len(), 1, "{keys}");
    assert!(ours[0].ends_with(&format!(":{id}")), "{keys}");
    assert!(mudmap::agent::keys::parse(ours[0]).is_some(), "{}", ours[0]);
    let file = host.root_authorized_keys().unwrap();
    assert!(
        file.contains(ours[0]) && file.contains(own.trim()),
        "{file}"
    );
    assert!(host.agent_installed());
    assert!(
        host.config_xml().contains("Mudmap: "),
        "write_config() recorded no revision"
    );
    // The configuration model reads what pfSense's own write_config() wrote, and round-trips it.
    let model = mudmap::pfsense::Config::parse(&host.config_xml()).unwrap();
    assert_eq!(
        mudmap::pfsense::Config::parse(&model.to_xml()).unwrap(),
        model
    );
    let admin = model.users().into_iter().find(|u| u.uid == "0").unwrap();
    assert_eq!(admin.authorized_keys, 2, "the admin's own key and Mudmap's");
    let device = world.device(&id).await;
    assert_eq!(device["pfsense"], "CE 2.8.0", "{device}");
    assert_eq!(
        device["agent_version"],
        mudmap::activation::remote::shipped_agent_version()
    );

    // Status, polled as root: the figures FreeBSD would give are "not read", with the cause.
    let row = world
        .fleet_row_when(&id, |r| {
            r["health"] == "Online" || r["health"] == "Degraded"
        })
        .await;
    assert!(row["uptime_secs"].is_null(), "{row}");
    let (status, detail) = world.api.call("devices/detail", &[("id", &id)]).await;
    assert_eq!(status, 200, "{detail}");
    assert!(detail.to_string().contains("kern.boottime"), "{detail}");
    // config.get as root with the stored key: the exact bytes pfSense wrote.
    let key = Arc::new(stored_key(&world, &id).await);
    let root = fixture_target(host.port, "root", Credentials::Key(key.clone()));
    let pinned = || Arc::new(ConfirmedFingerprint::new(fingerprint.clone()));
    let config = mudmap::ssh::EngineConfig::default();
    let document: mudmap::agent::protocol::ConfigDocument = serde_json::from_value(
        mudmap::activation::flow::as_service(
            &config,
            &root,
            pinned(),
            "config.get",
            serde_json::json!({}),
        )
        .await
        .unwrap(),
    )
    .unwrap();
    assert_eq!(document.xml, host.config_xml());
    // The activation's backup is that configuration, with pfSense's own note of its last save
    // (pfSense's code saves again after Mudmap's change: "(system): Synced configured gateways"),
    // and the fleet search reads its facts (pfSense's admin, its version).
    let revisions = revisions_when(&world, &id, 1).await;
    assert_eq!(revisions[0]["source"], "activation", "{revisions:?}");
    assert_eq!(revisions[0]["config_hash"], document.hash);
    assert!(
        !revisions[0]["pf_username"].as_str().unwrap().is_empty(),
        "{revisions:?}"
    );
    let (status, found) = search(&world, "user.name is admin\npfsense.version >= 2.8").await;
    assert_eq!(status, 200, "{found}");
    assert_eq!(found["devices"], 1, "{found:#}");

    // A service action: no daemon runs here, so "stopped" is the honest answer.
    let (status, service) = world
        .api
        .call(
            "devices/service",
            &[("id", &id), ("service", "unbound"), ("action", "restart")],
        )
        .await;
    assert_eq!(status, 200, "{service}");
    assert_eq!(service["status"], "stopped", "{service}");

    // Delete: the line and the agent go, the admin's own key stays (and still logs in as root).
    let (status, body) = world.api.call("devices/delete", &[("id", &id)]).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(host.admin_keys(), own);
    assert_eq!(host.root_authorized_keys().unwrap_or_default(), own);
    assert!(!host.agent_installed());
    let detail = world.audit("device.deleted").await;
    assert!(
        detail[0].contains("verified: the key no longer logs in")
            && detail[0].contains("the agent (/usr/local/share/mudmap) removed"),
        "{detail:?}"
    );
    let admin = fixture_target(host.port, "root", Credentials::Key(Arc::new(admin_key)));
    let mut session = DirectSession::connect(&admin, &config, pinned())
        .await
        .unwrap();
    session.login(&admin).await.unwrap();
    let refused = fixture_target(host.port, "root", Credentials::Key(key));
    let mut again = DirectSession::connect(&refused, &config, pinned())
        .await
        .unwrap();
    assert!(matches!(
        again.login(&refused).await,
        Err(mudmap::ssh::SshError::AuthFailed { .. })
    ));
    again.close().await;

    // The old way, made by pfSense's own user API: the account `mudmap` (uid 2000) with a key and
    // an agent older than this server's. Its key cannot give the agent root, nor update it.
    let legacy = PrivateKey::random(&mut russh::keys::key::safe_rng(), Algorithm::Ed25519).unwrap();
    let line = format!(
        "command=\"{}\",no-pty,no-port-forwarding,no-agent-forwarding,no-X11-forwarding {} mudmap",
        mudmap::activation::remote::FORCED_COMMAND,
        legacy.public_key().to_openssh().unwrap()
    );
    let encoded = {
        use base64::Engine as _;
        base64::engine::general_purpose::STANDARD.encode(format!("{line}\n"))
    };
    let script = format!(
        r#"<?php
require_once("config.inc"); require_once("auth.inc");
$u = ["scope" => "user", "name" => "mudmap", "uid" => "2000", "priv" => ["user-shell-access"],
      "descr" => "Mudmap service account: its SSH key can only run the Mudmap agent",
      "authorizedkeys" => "{encoded}",
      "bcrypt-hash" => password_hash("unknown", PASSWORD_BCRYPT)];
$users = config_get_path("system/user", []); $users[] = $u;
config_set_path("system/user", $users); config_set_path("system/nextuid", "2001");
local_user_set($u); write_config("an older Mudmap created its service account");
echo "made";
"#
    );
    let old_agent = mudmap::activation::remote::AGENT_SOURCE.replace(
        &format!(
            "const AGENT_VERSION = '{}'",
            mudmap::activation::remote::shipped_agent_version()
        ),
        "const AGENT_VERSION = '1.1.0'",
    );
    let made = session
        .exec("/usr/local/bin/php", Some(script.into_bytes()))
        .await
        .unwrap();
    assert_eq!(
        made.stdout_text(),
        "made",
        "{}",
        String::from_utf8_lossy(&made.stderr)
    );
    let installed = session
        .exec(
            mudmap::activation::remote::INSTALL_AGENT,
            Some(old_agent.into_bytes()),
        )
        .await
        .unwrap();
    assert_eq!(installed.exit_status, Some(0));
    assert!(host.home_exists("mudmap"));
    let engine = mudmap::ssh::Engine::new(
        mudmap::ssh::EngineConfig::default(),
        Arc::new(mudmap::ssh::MemoryHostKeys::new()),
    );
    engine
        .trust_host_key(
            &mudmap::ssh::DeviceId::new("pfsense-fixture"),
            &host.host_key,
        )
        .await;
    engine.upsert(fixture_target(
        host.port,
        "mudmap",
        Credentials::Key(Arc::new(legacy)),
    ));
    let answer = engine
        .call::<mudmap::agent::protocol::Status>(
            &mudmap::ssh::DeviceId::new("pfsense-fixture"),
            "status",
            serde_json::json!({}),
        )
        .await;
    assert!(
        matches!(&answer, Err(mudmap::ssh::SshError::NoRoot { detail }) if detail.contains("permission denied")),
        "{answer:?}"
    );
    engine.shutdown().await;
    session.close().await;

    // Re-activation: root again, and the old account is gone (its home with it).
    let id = world.add_at("pf-real", host.port).await;
    let view = world.activate(&id, DEVICE_PASSWORD, &fingerprint).await;
    assert_eq!(view["outcome"], "active", "{view:#}");
    assert!(
        detail_of(&view, "verify").contains("removed the old service account \"mudmap\""),
        "{view:#}"
    );
    assert!(!host.config_xml().contains("<name>mudmap</name>"));
    assert!(!host.home_exists("mudmap"));
    assert!(host.admin_keys().starts_with(&own));
    world
        .fleet_row_when(&id, |r| {
            r["health"] == "Online" || r["health"] == "Degraded"
        })
        .await;
    world.stop().await;
}

/// A device's configuration revisions (the History tab's server function).
async fn revisions_when(world: &World, id: &str, count: usize) -> Vec<Value> {
    for _ in 0..300 {
        let (status, list) = world.api.call("devices/revisions", &[("id", id)]).await;
        assert_eq!(status, 200, "{list}");
        let list = list.as_array().unwrap().clone();
        if list.len() >= count {
            return list;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("{id} never had {count} revisions");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn backups_are_taken_at_activation_on_request_and_on_change_stored_once_and_sealed() {
    let world = world(1).await;
    let sim = world.sim.device(0).unwrap().clone();
    let id = world.activated(0).await;

    // The first backup is taken after activation, as a job.
    let first = revisions_when(&world, &id, 1).await;
    let expected = sim.model.lock().unwrap().config_document();
    assert_eq!(first[0]["source"], "activation", "{first:?}");
    assert_eq!(first[0]["config_hash"], expected.hash);
    assert_eq!(first[0]["size"], expected.xml.len());
    assert_eq!(
        first[0]["pf_description"],
        "admin@10.0.0.2 (Local Database): Initial setup"
    );

    // On request: a second revision of the same configuration, stored once.
    let (status, body) = world.api.call("devices/backup", &[("id", &id)]).await;
    assert_eq!(status, 200, "{body}");
    let both = revisions_when(&world, &id, 2).await;
    assert_eq!(both[0]["source"], "manual", "newest first: {both:?}");
    assert_eq!(both[0]["config_hash"], both[1]["config_hash"]);
    assert_eq!(world.audit("device.backup").await.len(), 1);

    // An admin changes the configuration in pfSense's GUI: the next poll sees the hash move, and
    // the change is backed up with pfSense's note of who made it.
    let mut events = world.events().await;
    sim.patch_faults(FaultPatch {
        edit_config: true,
        ..FaultPatch::default()
    });
    let changed = sim.model.lock().unwrap().config_document();
    let three = revisions_when(&world, &id, 3).await;
    // …and the device is marked "Changed outside Mudmap": live to open pages, in the fleet and
    // on its page with pfSense's record of who did it, in the audit log, and by mail.
    let event = wait_for_sse(&mut events, "drift", |e| e["device_id"] == id.as_str()).await;
    assert_eq!(event["marked"], true, "{event}");
    let row = world
        .fleet_row_when(&id, |r| r["drift_since_ms"].is_i64())
        .await;
    assert!(row["drift_since_ms"].as_i64().unwrap() > 0, "{row}");
    let (status, detail) = world.api.call("devices/detail", &[("id", &id)]).await;
    assert_eq!(status, 200, "{detail}");
    assert_eq!(detail["drift"]["revision_id"], three[0]["id"], "{detail}");
    assert_eq!(
        detail["drift"]["base_revision_id"], three[1]["id"],
        "{detail}"
    );
    assert_eq!(
        detail["drift"]["pf_username"],
        "admin@10.0.0.9 (Local Database)"
    );
    assert_eq!(world.audit("device.drift").await.len(), 1);
    let mail = world
        .mails_about("changed outside Mudmap", 1, Duration::from_secs(30))
        .await;
    assert!(
        mail[0].body_text().contains("admin@10.0.0.9"),
        "the mail names pfSense's user: {}",
        mail[0].body_text()
    );
    assert_eq!(three[0]["source"], "drift", "{three:?}");
    assert_eq!(three[0]["config_hash"], changed.hash);
    assert_eq!(
        three[0]["pf_description"],
        "admin@10.0.0.9 (Local Database): Firewall: Aliases - saved"
    );
    // What changed, in words: the admin's alias; nothing between the two identical backups; the
    // first backup has nothing to compare with.
    let compare = |from: Option<&Value>, to: &Value, reveal: bool| {
        let api = &world.api;
        let mut form = vec![
            ("to", to.as_str().unwrap().to_owned()),
            ("reveal", reveal.to_string()),
        ];
        if let Some(from) = from {
            form.push(("from", from.as_str().unwrap().to_owned()));
        }
        async move {
            let form: Vec<(&str, &str)> = form.iter().map(|(k, v)| (*k, v.as_str())).collect();
            let (status, body) = api.call("devices/compare", &form).await;
            assert_eq!(status, 200, "{body}");
            body
        }
    };
    let drift = compare(None, &three[0]["id"], false).await;
    let alias_added = serde_json::json!([{"section": "aliases", "text": "alias added_by_admin_1 added (host): 192.0.2.2"}]);
    assert_eq!(drift["changes"], alias_added, "{drift}");
    assert_eq!(drift["from"]["id"], three[1]["id"]);
    let same = compare(None, &three[1]["id"], false).await;
    assert!(
        same["from"]["id"] == three[2]["id"]
            && same["changes"] == serde_json::json!([])
            && same["raw"] == serde_json::json!([]),
        "{same}"
    );
    let first = compare(None, &three[2]["id"], false).await;
    assert!(first["from"].is_null(), "{first}");
    // Any two: the first backup with the drift one, and the raw XML diff beside the words, with
    // pfSense's bookkeeping lines and the alias among its lines.
    let any_two = compare(Some(&three[2]["id"]), &three[0]["id"], false).await;
    assert_eq!(any_two["changes"], alias_added);
    let raw: Vec<(String, String)> = any_two["raw"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| {
            (
                l["kind"].as_str().unwrap().to_owned(),
                l["text"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    assert!(
        raw.iter()
            .any(|(k, t)| k == "+" && t.contains("added_by_admin_1")),
        "{raw:?}"
    );
    assert!(raw.iter().any(|(k, _)| k == "@"), "{raw:?}");
    assert_eq!(any_two["revealed"], false);
    // Secrets are masked in what anyone sees; the admin's password hash is in the file.
    assert!(
        changed.xml.contains("<bcrypt-hash>"),
        "the simulated config has a password hash"
    );
    let whole = compare(Some(&three[2]["id"]), &three[0]["id"], false)
        .await
        .to_string();
    assert!(
        !whole.contains("$2y$"),
        "no password hash is ever shown masked: {whole}"
    );
    assert!(world.audit("device.secrets_revealed").await.is_empty());
    let revealed = compare(Some(&three[2]["id"]), &three[0]["id"], true).await;
    assert_eq!(revealed["revealed"], true);
    assert_eq!(
        world.audit("device.secrets_revealed").await.len(),
        1,
        "revealing is audited"
    );
    // Two revisions of different devices are not compared.
    // Download: the exact configuration, audited.
    let (status, file) = world
        .api
        .call(
            "devices/revision-download",
            &[("id", three[0]["id"].as_str().unwrap())],
        )
        .await;
    assert_eq!(status, 200, "{file}");
    assert_eq!(file["xml"], changed.xml);
    assert!(
        file["file_name"].as_str().unwrap().starts_with("config-")
            && file["file_name"].as_str().unwrap().ends_with(".xml"),
        "{}",
        file["file_name"]
    );
    assert_eq!(world.audit("device.config_downloaded").await.len(), 1);

    // Acknowledge clears the mark (audited, live); twice is a clear conflict.
    let (status, body) = world
        .api
        .call("devices/acknowledge-drift", &[("id", &id)])
        .await;
    assert_eq!(status, 200, "{body}");
    let event = wait_for_sse(&mut events, "drift", |e| e["device_id"] == id.as_str()).await;
    assert_eq!(event["marked"], false, "{event}");
    let (_, detail) = world.api.call("devices/detail", &[("id", &id)]).await;
    assert!(detail["drift"].is_null(), "{detail}");
    assert_eq!(world.audit("device.drift_acknowledged").await.len(), 1);
    let (status, body) = world
        .api
        .call("devices/acknowledge-drift", &[("id", &id)])
        .await;
    assert_eq!(status, 409, "{body}");

    let store =
        mudmap::store::Store::connect(&world.settings.database_url(), &world.settings.database)
            .await
            .unwrap();
    let blobs: Vec<(String, String)> =
        sqlx::query_as("SELECT org_id, sealed FROM config_blobs ORDER BY created_at")
            .fetch_all(store.pool())
            .await
            .unwrap();
    assert_eq!(
        blobs.len(),
        2,
        "an unchanged configuration is stored once, the changed one beside it"
    );
    // Sealed at rest: nothing of the configuration is readable in the database…
    assert!(!blobs[0].1.contains("pfsense") && blobs[0].1.len() < expected.xml.len());
    // …and it opens again, byte for byte, with the master key.
    let master =
        mudmap::crypto::MasterKey::load_or_create(&world.settings.master_key_file()).unwrap();
    let backups = mudmap::backups::Backups::new(mudmap::backups::BackupDeps {
        store: store.clone(),
        engine: mudmap::ssh::Engine::new(
            mudmap::ssh::EngineConfig::default(),
            std::sync::Arc::new(mudmap::ssh::MemoryHostKeys::new()),
        ),
        sealer: std::sync::Arc::new(mudmap::crypto::Sealer::new(&master)),
        queue: mudmap::jobs::Queue::new(store.clone()),
        live: mudmap::live::Live::default(),
        mail_hold_down: std::time::Duration::from_secs(60),
    });
    let revision = three[2]["id"].as_str().unwrap();
    assert_eq!(
        backups.read(&blobs[0].0, revision).await.unwrap(),
        expected.xml
    );
    // Another organisation's id opens nothing.
    assert!(backups.read("another-org", revision).await.is_err());
    store.close().await;
    world.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn backups_follow_their_schedule_and_retention_keeps_the_newest() {
    let world = world(1).await;
    let id = world.activated(0).await;
    revisions_when(&world, &id, 1).await;
    let store =
        mudmap::store::Store::connect(&world.settings.database_url(), &world.settings.database)
            .await
            .unwrap();
    let queue = mudmap::jobs::Queue::new(store.clone());
    // Nothing is due while the newest backup is younger than the interval.
    assert_eq!(
        mudmap::backups::schedule::queue_due(&store, &queue, 3_600)
            .await
            .unwrap(),
        0
    );
    // With an interval already passed, the device is due: one scheduled backup, run by the
    // server's worker (its queue shares the database).
    tokio::time::sleep(Duration::from_millis(1_100)).await;
    assert_eq!(
        mudmap::backups::schedule::queue_due(&store, &queue, 1)
            .await
            .unwrap(),
        1
    );
    let listed = revisions_when(&world, &id, 2).await;
    assert_eq!(listed[0]["source"], "scheduled", "{listed:?}");
    // Retention: nothing older than 0 days beyond the newest one; the stored configuration stays
    // (the newest revision refers to it).
    let (revisions, blobs) = mudmap::backups::schedule::prune(&store, 0, 1)
        .await
        .unwrap();
    assert_eq!((revisions, blobs), (1, 0));
    let left = revisions_when(&world, &id, 1).await;
    assert_eq!(left.len(), 1);
    assert_eq!(
        left[0]["id"], listed[0]["id"],
        "the newest is never deleted"
    );
    store.close().await;
    world.stop().await;
}

/// Search the fleet (the Search page's server function).
async fn search(world: &World, query: &str) -> (u16, Value) {
    world.api.call("search/run", &[("query", query)]).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_fleet_is_searched_from_each_firewalls_newest_backup() {
    use mudmap::pfsense::Config;

    let world = world(3).await;
    let mut ids = Vec::new();
    for index in 0..3 {
        ids.push(world.activated(index).await);
    }
    for id in &ids {
        revisions_when(&world, id, 1).await;
    }
    let configs: Vec<Config> = (0..3)
        .map(|i| {
            let xml = world
                .sim
                .device(i)
                .unwrap()
                .model
                .lock()
                .unwrap()
                .config_document()
                .xml;
            Config::parse(&xml).unwrap()
        })
        .collect();

    // "Rules that pass port P from any", counted from the configurations themselves.
    let port = 443;
    let expected: usize = configs
        .iter()
        .map(|c| {
            c.rules()
                .iter()
                .filter(|r| {
                    let covers = match r.destination.port.split_once('-') {
                        Some((lo, hi)) => {
                            lo.parse::<i64>().unwrap() <= port && hi.parse::<i64>().unwrap() >= port
                        }
                        None if r.destination.port.is_empty() => true,
                        None => r.destination.port.parse::<i64>().ok() == Some(port),
                    };
                    (r.kind == "pass" || r.kind.is_empty())
                        && (r.source.any
                            || (r.source.network.is_empty() && r.source.address.is_empty()))
                        && covers
                        && matches!(r.protocol.as_str(), "tcp" | "udp" | "tcp/udp" | "")
                })
                .count()
        })
        .sum();
    assert!(expected > 0, "the simulated fleet has such rules");
    let (status, answer) = search(
        &world,
        &format!("rule.action is pass\nrule.source is any\nrule.port is {port}"),
    )
    .await;
    assert_eq!(status, 200, "{answer}");
    let hits = answer["hits"].as_array().unwrap();
    assert_eq!(hits.len(), expected.min(200), "{answer:#}");
    assert_eq!(answer["searched"], 3);
    assert!(hits.iter().all(|h| h["section"] == "rules"
        && h["label"].as_str().unwrap().contains(" pass ")
        && h["label"].as_str().unwrap().contains("from any")));

    // Which firewalls have alias X; the user every firewall has; versions compared as versions.
    let alias = configs[1].aliases()[0].name.clone();
    let (_, answer) = search(&world, &format!("alias.name is {}", alias.to_uppercase())).await;
    let with_alias = configs
        .iter()
        .filter(|c| c.aliases().iter().any(|a| a.name == alias))
        .count();
    assert_eq!(answer["devices"], with_alias as u64, "{answer:#}");
    let (_, answer) = search(&world, "user.name is admin").await;
    assert_eq!(answer["devices"], 3, "{answer:#}");
    let (_, answer) = search(&world, "pfsense.version < 2.7").await;
    let hits = answer["hits"].as_array().unwrap();
    assert_eq!(hits.len(), 1, "only 2.6.0 is older than 2.7: {answer:#}");
    assert_eq!(hits[0]["device_id"], ids[0].as_str());
    let (_, answer) = search(&world, "pfsense.version >= 2.7\nuser.name is admin").await;
    assert_eq!(answer["devices"], 2, "{answer:#}");

    // A bad query is refused with the line and the field named.
    let (status, body) = search(&world, "rule.action is pass\nrule.prt is 22").await;
    assert_eq!(status, 422, "{body}");
    assert!(
        body.to_string()
            .contains("Line 2: there is no field \\\"rule.prt\\\""),
        "{body}"
    );

    // An admin changes a firewall: the change is backed up and found.
    world.sim.device(2).unwrap().patch_faults(FaultPatch {
        edit_config: true,
        ..FaultPatch::default()
    });
    revisions_when(&world, &ids[2], 2).await;
    let (_, answer) = search(&world, "alias.entry is 192.0.2.2").await;
    let hits = answer["hits"].as_array().unwrap();
    assert_eq!(hits.len(), 1, "{answer:#}");
    assert_eq!(hits[0]["device_id"], ids[2].as_str());
    assert!(hits[0]["label"]
        .as_str()
        .unwrap()
        .starts_with("alias added_by_admin_1"));

    // Renamed (as the device form does): results carry the new name and sort by it. The index
    // learns of it from the database alone, as another server process would.
    let store =
        mudmap::store::Store::connect(&world.settings.database_url(), &world.settings.database)
            .await
            .unwrap();
    sqlx::query("UPDATE devices SET name = 'aaa-first', updated_at = updated_at + 1 WHERE id = $1")
        .bind(&ids[2])
        .execute(store.pool())
        .await
        .unwrap();
    let (_, answer) = search(&world, "user.name is admin").await;
    let hits = answer["hits"].as_array().unwrap();
    assert_eq!(hits[0]["device_id"], ids[2].as_str(), "{answer:#}");
    assert_eq!(hits[0]["device_name"], "aaa-first");

    // Deleted: its things leave the results.
    let (status, body) = world
        .api
        .call(
            "devices/delete",
            &[("id", ids[2].as_str()), ("force", "true")],
        )
        .await;
    assert_eq!(status, 200, "{body}");
    let (_, answer) = search(&world, "user.name is admin").await;
    assert_eq!(answer["devices"], 2, "{answer:#}");
    assert_eq!(answer["searched"], 2);
    assert!(answer["hits"]
        .as_array()
        .unwrap()
        .iter()
        .all(|h| h["device_id"] != ids[2].as_str()));
    store.close().await;

    // Another organisation finds nothing of these.
    let (status, org) = world
        .api
        .call("orgs/create", &[("name", "Elsewhere")])
        .await;
    assert_eq!(status, 200, "{org}");
    let (status, _) = world
        .api
        .call("orgs/switch", &[("org_id", org["id"].as_str().unwrap())])
        .await;
    assert_eq!(status, 200);
    let (_, answer) = search(&world, "user.name is admin").await;
    assert_eq!(answer["hits"], serde_json::json!([]), "{answer:#}");
    assert_eq!(answer["searched"], 0);
    world.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_change_set_is_previewed_on_each_firewalls_newest_backup() {
    let world = world(2).await;
    let backed_up = world.activated(0).await;
    revisions_when(&world, &backed_up, 1).await;
    let fresh = world.add(1).await;
    let alias = mudmap::pfsense::Config::parse(&sim_xml(&world, 0))
        .unwrap()
        .aliases()[0]
        .name
        .clone();
    let operations = serde_json::json!([
        {"op": "alias_add", "alias": {"name": "MAIL", "kind": "host",
            "entries": [["10.0.0.25", "relay"]], "descr": "Mail relays"}},
        {"op": "rule_add", "place": "top", "rule": {"action": "pass", "interface": "wan",
            "protocol": "tcp", "source": {"what": "any"},
            "destination": {"what": "MAIL", "port": "25"}, "descr": "Mail in"}},
        {"op": "alias_delete", "name": "NO_SUCH_ALIAS"},
    ])
    .to_string();
    let ids = format!("{backed_up},{fresh}");
    let (status, answer) = world
        .api
        .call(
            "changes/preview",
            &[
                ("device_ids", ids.as_str()),
                ("operations", operations.as_str()),
            ],
        )
        .await;
    assert_eq!(status, 200, "{answer}");
    let first = &answer[0];
    assert_eq!(first["device_id"], backed_up.as_str());
    assert!(first["base_revision_id"].is_string(), "{first:#}");
    assert_eq!(
        first["steps"][0]["words"],
        "add host alias MAIL (1 entries)"
    );
    assert_eq!(first["steps"][0]["conflict"], Value::Null);
    assert_eq!(first["steps"][1]["conflict"], Value::Null, "{first:#}");
    assert_eq!(
        first["steps"][2]["conflict"],
        "There is no alias \"NO_SUCH_ALIAS\" on this firewall."
    );
    assert_eq!(
        first["changes"],
        serde_json::json!([]),
        "a conflict produces nothing"
    );
    assert_eq!(
        answer[1]["problem"],
        "Mudmap has no backup of this firewall yet: back it up first (History)."
    );

    // Without the conflict: the difference in words and as raw XML.
    let operations = serde_json::json!([
        {"op": "alias_add", "alias": {"name": "MAIL", "kind": "host",
            "entries": [["10.0.0.25", "relay"]]}},
        {"op": "alias_rename", "name": alias, "new_name": "RENAMED_BY_PREVIEW"},
    ])
    .to_string();
    let (status, answer) = world
        .api
        .call(
            "changes/preview",
            &[
                ("device_ids", backed_up.as_str()),
                ("operations", operations.as_str()),
            ],
        )
        .await;
    assert_eq!(status, 200, "{answer}");
    let words = answer[0]["changes"].to_string();
    assert!(words.contains("MAIL"), "{words}");
    assert!(words.contains("RENAMED_BY_PREVIEW"), "{words}");
    assert!(answer[0]["raw"]
        .as_array()
        .unwrap()
        .iter()
        .any(|l| l["kind"] == "+" && l["text"].as_str().unwrap().contains("<name>MAIL</name>")));
    // Nothing reached the firewall.
    assert!(!sim_xml(&world, 0).contains("<name>MAIL</name>"));

    // Bad operations are named; another organisation's firewall is not found.
    let (status, body) = world
        .api
        .call(
            "changes/preview",
            &[
                ("device_ids", backed_up.as_str()),
                ("operations", "[{\"op\":\"format_disk\"}]"),
            ],
        )
        .await;
    assert_eq!(status, 422, "{body}");
    assert!(body.to_string().contains("not understood"), "{body}");
    let (status, _) = world
        .api
        .call(
            "changes/preview",
            &[
                ("device_ids", "not-a-device"),
                ("operations", operations.as_str()),
            ],
        )
        .await;
    assert_eq!(status, 404);
    world.stop().await;
}

/// The simulated device's configuration as it stands.
fn sim_xml(world: &World, index: u32) -> String {
    world
        .sim
        .device(index)
        .unwrap()
        .model
        .lock()
        .unwrap()
        .config_document()
        .xml
}
