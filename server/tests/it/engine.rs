//! The SSH engine against the device simulator: real russh on both ends, over loopback.

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use mudmap::agent::protocol::Status;
use mudmap::config::Secret;
use mudmap::sim::{service_key, FaultPatch, SimOptions, Simulator};
use mudmap::ssh::{
    ConnState, Credentials, DeviceId, DeviceTarget, Engine, EngineConfig, EngineEvent,
    HostKeyStore, MemoryHostKeys, SshError, Stage,
};
use serde_json::json;

use crate::support::{eventually, until_refused};

struct Fixture {
    sim: Simulator,
    engine: Engine,
    keys: Arc<MemoryHostKeys>,
}

fn quick_config() -> EngineConfig {
    EngineConfig {
        connect_timeout: Duration::from_secs(3),
        handshake_timeout: Duration::from_secs(3),
        auth_timeout: Duration::from_secs(3),
        channel_timeout: Duration::from_secs(3),
        request_timeout: Duration::from_secs(2),
        backoff_initial: Duration::from_millis(50),
        backoff_max: Duration::from_millis(200),
        ..EngineConfig::default()
    }
}

fn id(i: u32) -> DeviceId {
    DeviceId::new(format!("dev-{i}"))
}

fn target(sim: &Simulator, i: u32) -> DeviceTarget {
    DeviceTarget {
        id: id(i),
        host: "127.0.0.1".to_owned(),
        port: sim.addr(i).unwrap().port(),
        username: "root".to_owned(),
        credentials: Credentials::Key(service_key(sim.options.seed, i)),
        agent_command: "mudmap-agent serve".to_owned(),
        self_heal: None,
    }
}

/// A simulator with `n` devices, all registered with pinned host keys.
async fn fixture(n: u32, config: EngineConfig) -> Fixture {
    let sim = Simulator::start(SimOptions {
        devices: n,
        ..SimOptions::default()
    })
    .await
    .unwrap();
    let keys = Arc::new(MemoryHostKeys::new());
    let engine = Engine::new(config, keys.clone());
    for i in 0..n {
        keys.pin(&id(i), sim.device(i).unwrap().host_key.public_key())
            .await;
        engine.upsert(target(&sim, i));
    }
    Fixture { sim, engine, keys }
}

#[tokio::test]
async fn connects_authenticates_and_answers_requests() {
    let f = fixture(1, quick_config()).await;
    let status: Status = f.engine.call(&id(0), "status", json!({})).await.unwrap();
    assert_eq!(status.interfaces.len(), 3);
    assert_eq!(f.engine.state(&id(0)), Some(ConnState::Ready));
    let hello = f.engine.hello(&id(0)).unwrap();
    assert_eq!(hello.protocol, 1);
    assert!(hello.hostname.starts_with("fw-0000"));
    // Many requests in flight at once share the one connection and the one agent channel.
    let dev = id(0);
    let many = (0..20).map(|_| f.engine.request(&dev, "config.get", json!({})));
    for result in futures::future::join_all(many).await {
        assert!(result.unwrap()["hash"]
            .as_str()
            .unwrap()
            .starts_with("sha256:"));
    }
    let device = f.sim.device(0).unwrap();
    assert_eq!(
        device.sessions_started.load(Ordering::Relaxed),
        1,
        "one connection for all requests"
    );
    assert_eq!(
        device.max_channels_seen.load(Ordering::Relaxed),
        1,
        "one resident channel"
    );
}

#[tokio::test]
async fn a_device_the_engine_does_not_hold_is_not_managed_not_closed() {
    let f = fixture(1, quick_config()).await;
    let unknown = DeviceId::new("never-handed-over");
    let err = f.engine.request(&unknown, "status", json!({})).await;
    assert_eq!(err.unwrap_err(), SshError::NotManaged);
    f.engine.request(&id(0), "status", json!({})).await.unwrap();
    f.engine.remove(&id(0)).await;
    let err = f.engine.request(&id(0), "status", json!({})).await;
    assert_eq!(err.unwrap_err(), SshError::NotManaged);
    assert!(!SshError::NotManaged.is_transient(), "nothing to retry");
}

#[tokio::test]
async fn unknown_host_keys_are_refused_until_trusted() {
    let sim = Simulator::start(SimOptions {
        devices: 1,
        ..SimOptions::default()
    })
    .await
    .unwrap();
    let keys = Arc::new(MemoryHostKeys::new());
    let engine = Engine::new(quick_config(), keys.clone());
    engine.upsert(target(&sim, 0));
    let err = engine
        .request(&id(0), "status", json!({}))
        .await
        .unwrap_err();
    let expected = mudmap::ssh::fingerprint(sim.device(0).unwrap().host_key.public_key());
    assert_eq!(
        err,
        SshError::HostKeyUnknown {
            fingerprint: expected.clone()
        }
    );

    let presented = engine.probe_host_key(&target(&sim, 0)).await.unwrap();
    assert_eq!(mudmap::ssh::fingerprint(&presented), expected);
    assert!(expected.starts_with("SHA256:"));
    engine.trust_host_key(&id(0), &presented).await;
    engine.request(&id(0), "status", json!({})).await.unwrap();
}

#[tokio::test]
async fn a_changed_host_key_is_refused_and_quarantines_the_device() {
    let f = fixture(1, quick_config()).await;
    let mut events = f.engine.subscribe();
    f.engine.request(&id(0), "status", json!({})).await.unwrap();
    let device = f.sim.device(0).unwrap();
    device.patch_faults(FaultPatch {
        host_key_changed: Some(true),
        drop_connections: true,
        ..Default::default()
    });
    // Until the engine has seen the drop, a request may still meet the old connection (or its
    // closing); the first reconnect must then meet the new key.
    let err = eventually(Duration::from_secs(10), || async {
        match f.engine.request(&id(0), "status", json!({})).await {
            Err(err @ SshError::HostKeyMismatch { .. }) => Some(err),
            _ => None,
        }
    })
    .await;
    let SshError::HostKeyMismatch { expected, got } = &err else {
        unreachable!()
    };
    assert_eq!(
        expected,
        &mudmap::ssh::fingerprint(device.host_key.public_key())
    );
    assert_eq!(
        got,
        &mudmap::ssh::fingerprint(device.changed_host_key.public_key())
    );
    assert_eq!(f.engine.state(&id(0)), Some(ConnState::Quarantined));
    // Quarantine holds: no new connection attempts, same answer.
    let sessions = device.sessions_started.load(Ordering::Relaxed);
    assert_eq!(
        f.engine
            .request(&id(0), "status", json!({}))
            .await
            .unwrap_err(),
        err
    );
    assert_eq!(device.sessions_started.load(Ordering::Relaxed), sessions);
    let mut saw_alarm = false;
    while let Ok(event) = events.try_recv() {
        if let EngineEvent::HostKeyMismatch {
            device,
            expected: e,
            got: g,
        } = event
        {
            assert_eq!((device, &e, &g), (id(0), expected, got));
            saw_alarm = true;
        }
    }
    assert!(saw_alarm, "no HostKeyMismatch event");
    let _ = &f.keys;
}

#[tokio::test]
async fn wrong_credentials_are_auth_failed() {
    let f = fixture(1, quick_config()).await;
    let mut wrong_key = target(&f.sim, 0);
    wrong_key.credentials = Credentials::Key(service_key(999, 0));
    f.engine.upsert(wrong_key);
    let err = f
        .engine
        .request(&id(0), "status", json!({}))
        .await
        .unwrap_err();
    assert_eq!(
        err,
        SshError::AuthFailed {
            password_allowed: true
        }
    );

    let mut wrong_password = target(&f.sim, 0);
    wrong_password.username = "root".to_owned();
    wrong_password.credentials = Credentials::Password(Secret::new("not-the-password"));
    f.engine.upsert(wrong_password);
    let err = f
        .engine
        .request(&id(0), "status", json!({}))
        .await
        .unwrap_err();
    assert!(matches!(err, SshError::AuthFailed { .. }), "{err:?}");

    let mut right_password = target(&f.sim, 0);
    right_password.username = "root".to_owned();
    right_password.credentials = Credentials::Password(Secret::new("pfsense"));
    f.engine.upsert(right_password);
    // Backoff from the failure above must pass first; until then the answer is the old failure.
    eventually(Duration::from_secs(10), || async {
        match f.engine.request(&id(0), "status", json!({})).await {
            Ok(_) => Some(()),
            Err(SshError::AuthFailed { .. }) => None,
            Err(other) => panic!("{other:?}"),
        }
    })
    .await;
}

#[tokio::test]
async fn a_stalled_device_times_out_instead_of_hanging() {
    let f = fixture(1, quick_config()).await;
    f.engine.request(&id(0), "status", json!({})).await.unwrap();
    f.sim.device(0).unwrap().patch_faults(FaultPatch {
        stall: Some(true),
        ..Default::default()
    });
    let err = f
        .engine
        .request(&id(0), "status", json!({}))
        .await
        .unwrap_err();
    assert!(
        matches!(
            err,
            SshError::Timeout {
                stage: Stage::Request,
                ..
            }
        ),
        "{err:?}"
    );
}

#[tokio::test]
async fn reconnects_after_the_connection_drops() {
    let f = fixture(1, quick_config()).await;
    f.engine.request(&id(0), "status", json!({})).await.unwrap();
    let device = f.sim.device(0).unwrap();
    device.patch_faults(FaultPatch {
        drop_connections: true,
        ..Default::default()
    });
    // Until the engine has seen the drop a request may meet the closing connection; then it
    // reconnects on its own.
    eventually(Duration::from_secs(10), || async {
        f.engine.request(&id(0), "status", json!({})).await.ok()
    })
    .await;
    assert_eq!(device.sessions_started.load(Ordering::Relaxed), 2);
    assert_eq!(f.engine.state(&id(0)), Some(ConnState::Ready));
}

#[tokio::test]
async fn a_refused_device_backs_off_and_recovers() {
    let f = fixture(1, quick_config()).await;
    let device = f.sim.device(0).unwrap();
    device.patch_faults(FaultPatch {
        refuse: Some(true),
        ..Default::default()
    });
    until_refused(f.sim.addr(0).unwrap()).await;
    assert_eq!(
        f.engine
            .request(&id(0), "status", json!({}))
            .await
            .unwrap_err(),
        SshError::Refused
    );
    assert_eq!(f.engine.state(&id(0)), Some(ConnState::Backoff));
    device.patch_faults(FaultPatch {
        refuse: Some(false),
        ..Default::default()
    });
    let mut recovered = false;
    for _ in 0..40 {
        tokio::time::sleep(Duration::from_millis(100)).await;
        if f.engine.request(&id(0), "status", json!({})).await.is_ok() {
            recovered = true;
            break;
        }
    }
    assert!(recovered, "device never came back");
}

#[tokio::test]
async fn a_thousand_one_shot_commands_never_exceed_ten_channels() {
    let f = fixture(1, quick_config()).await;
    f.engine.request(&id(0), "status", json!({})).await.unwrap();
    let per_batch = f.engine.config().exec_channels_per_device;
    let dev = id(0);
    let mut done = 0;
    while done < 1000 {
        let batch = (0..per_batch).map(|_| {
            f.engine.exec(
                &dev,
                "mudmap-agent call",
                Some(b"{\"v\":1,\"id\":1,\"method\":\"status\"}\n".to_vec()),
                Duration::from_secs(5),
            )
        });
        for out in futures::future::join_all(batch).await {
            let out = out.unwrap();
            assert_eq!(out.exit_status, Some(0));
            assert!(out.stdout_text().contains("\"ok\":true"));
            done += 1;
        }
    }
    let device = f.sim.device(0).unwrap();
    assert!(device.max_channels_seen.load(Ordering::Relaxed) <= 10);
    assert_eq!(device.channels_refused.load(Ordering::Relaxed), 0);
    assert_eq!(device.sessions_started.load(Ordering::Relaxed), 1);
}

#[tokio::test]
async fn fanout_with_one_dead_device_returns_the_others_first() {
    let f = fixture(5, quick_config()).await;
    let ids: Vec<DeviceId> = (0..5).map(id).collect();
    // Warm every connection, then stall device 2.
    let mut warm = f.engine.fanout(&ids, "status", json!({}));
    while let Some(r) = warm.next().await {
        r.result.unwrap();
    }
    f.sim.device(2).unwrap().patch_faults(FaultPatch {
        stall: Some(true),
        ..Default::default()
    });
    let mut fanout = f.engine.fanout(&ids, "status", json!({}));
    let mut order = Vec::new();
    while let Some(r) = fanout.next().await {
        order.push((r.device.clone(), r.result.is_ok()));
        if r.device == id(2) {
            assert!(
                matches!(r.result, Err(SshError::Timeout { .. })),
                "{:?}",
                r.result
            );
        }
    }
    assert_eq!(order.len(), 5);
    assert_eq!(
        order.last().unwrap().0,
        id(2),
        "the dead device must come last: {order:?}"
    );
    assert!(order[..4].iter().all(|(_, ok)| *ok), "{order:?}");
}

#[tokio::test]
async fn cancelling_a_fanout_leaves_no_task_or_request_behind() {
    let f = fixture(1, quick_config()).await;
    f.engine.request(&id(0), "status", json!({})).await.unwrap();
    let metrics = tokio::runtime::Handle::current().metrics();
    let baseline = metrics.num_alive_tasks();
    f.sim.device(0).unwrap().patch_faults(FaultPatch {
        stall: Some(true),
        ..Default::default()
    });
    let ids = vec![id(0); 20];
    let fanout = f.engine.fanout(&ids, "status", json!({}));
    assert!(metrics.num_alive_tasks() >= baseline + 20);
    tokio::time::sleep(Duration::from_millis(100)).await;
    drop(fanout);
    // Aborted tasks end at their next poll; none may linger.
    eventually(Duration::from_secs(5), || async {
        (metrics.num_alive_tasks() == baseline).then_some(())
    })
    .await;
    assert_eq!(
        f.sim
            .device(0)
            .unwrap()
            .max_channels_seen
            .load(Ordering::Relaxed),
        1
    );
}

#[tokio::test]
async fn too_many_requests_in_flight_get_busy_not_a_queue() {
    let config = EngineConfig {
        max_inflight_per_device: 2,
        ..quick_config()
    };
    let f = fixture(1, config).await;
    f.engine.request(&id(0), "status", json!({})).await.unwrap();
    f.sim.device(0).unwrap().patch_faults(FaultPatch {
        stall: Some(true),
        ..Default::default()
    });
    let engine = f.engine.clone();
    let a = tokio::spawn(async move { engine.request(&id(0), "status", json!({})).await });
    let engine = f.engine.clone();
    let b = tokio::spawn(async move { engine.request(&id(0), "status", json!({})).await });
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert_eq!(
        f.engine
            .request(&id(0), "status", json!({}))
            .await
            .unwrap_err(),
        SshError::Busy
    );
    assert!(a.await.unwrap().is_err() && b.await.unwrap().is_err());
}

#[tokio::test]
async fn a_missing_agent_is_reported_as_such() {
    let f = fixture(1, quick_config()).await;
    let mut t = target(&f.sim, 0);
    t.username = "root".to_owned();
    t.credentials = Credentials::Password(Secret::new("pfsense"));
    t.agent_command = "/usr/local/bin/php /nonexistent/helper.php serve".to_owned();
    f.engine.upsert(t);
    assert_eq!(
        f.engine
            .request(&id(0), "status", json!({}))
            .await
            .unwrap_err(),
        SshError::AgentMissing
    );
}

#[tokio::test]
async fn sshguard_lockout_after_fifteen_bad_passwords() {
    let f = fixture(
        1,
        EngineConfig {
            backoff_initial: Duration::ZERO,
            backoff_max: Duration::ZERO,
            ..quick_config()
        },
    )
    .await;
    let mut t = target(&f.sim, 0);
    t.username = "admin".to_owned();
    t.credentials = Credentials::Password(Secret::new("wrong"));
    f.engine.upsert(t.clone());
    for attempt in 1..=15 {
        let err = f
            .engine
            .request(&id(0), "status", json!({}))
            .await
            .unwrap_err();
        assert!(
            matches!(err, SshError::AuthFailed { .. }),
            "attempt {attempt}: {err:?}"
        );
    }
    // Now even the right password gets nowhere: the address is blocked, the device goes silent.
    t.credentials = Credentials::Password(Secret::new("pfsense"));
    f.engine.upsert(t);
    let err = f
        .engine
        .request(&id(0), "status", json!({}))
        .await
        .unwrap_err();
    assert!(matches!(err, SshError::Timeout { .. }), "{err:?}");
}
