//! The monitor and the fleet queries on both engines: a simulated firewall managed by the engine is
//! polled, its status and history land in the database, and the fleet page and the device page
//! read them back (search, filter, sort).

use std::sync::Arc;
use std::time::Duration;

use app::fleet::{FleetQuery, SortKey};
use app::ui::badge::Health;
use mudmap::monitor::{Monitor, MonitorConfig};
use mudmap::sim::{service_key, SimOptions, Simulator};
use mudmap::ssh::{Credentials, DeviceId, DeviceTarget, Engine, EngineConfig, MemoryHostKeys};
use mudmap::store::Store;

use crate::support::TestDbRef;

async fn polled_device_is_stored_and_listed(db: &TestDbRef) {
    let store = Store::connect(&db.url, &db.settings.database)
        .await
        .unwrap();
    store.migrate().await.unwrap();
    let sim = Simulator::start(SimOptions {
        devices: 1,
        ..SimOptions::default()
    })
    .await
    .unwrap();
    let mut tx = store.begin().await.unwrap();
    let user = mudmap::accounts::rows::insert_user(&mut tx, "o@example.com", "x", true)
        .await
        .unwrap();
    let org = mudmap::accounts::rows::insert_org_with_owner(&mut tx, "Org", &user)
        .await
        .unwrap();
    tx.commit().await.unwrap();
    let device_id = uuid::Uuid::now_v7().to_string();
    sqlx::query(
        "INSERT INTO devices (id, org_id, name, host, port, tags, notes, state, created_at, updated_at) \
         VALUES ($1, $2, 'Edge_1', '127.0.0.1', $3, 'acme,hq', '', 'active', 1, 1)",
    )
    .bind(&device_id)
    .bind(&org)
    .bind(i64::from(sim.device(0).unwrap().port))
    .execute(store.pool())
    .await
    .unwrap();

    let engine = Engine::new(EngineConfig::default(), Arc::new(MemoryHostKeys::new()));
    let id = DeviceId::new(device_id.as_str());
    engine
        .trust_host_key(&id, sim.device(0).unwrap().host_key.public_key())
        .await;
    engine.upsert(DeviceTarget {
        id,
        host: "127.0.0.1".to_owned(),
        port: sim.device(0).unwrap().port,
        username: "root".to_owned(),
        credentials: Credentials::Key(service_key(sim.options.seed, 0)),
        agent_command: mudmap::ssh::PFSENSE_AGENT_COMMAND.to_owned(),
        self_heal: None,
    });
    let monitor = Monitor::start(
        store.clone(),
        engine.clone(),
        mudmap::jobs::Queue::new(store.clone()),
        MonitorConfig::every(Duration::from_secs(1)),
        mudmap::monitor::outages::Outages::default(),
        mudmap::live::Live::default(),
    );
    let mut events = monitor.subscribe();
    let event = tokio::time::timeout(Duration::from_secs(10), events.recv())
        .await
        .expect("no health event within 10 s")
        .unwrap();
    let mudmap::live::LiveEvent::Health(event) = event else {
        panic!("a health event first, not {event:?}");
    };
    assert_eq!(
        (event.device_id.as_str(), event.health),
        (device_id.as_str(), "online")
    );
    assert_eq!(event.org_id, org);

    let query = |search: &str, health: Option<Health>, tag: Option<&str>| FleetQuery {
        search: search.to_owned(),
        health,
        tag: tag.map(str::to_owned),
        group: None,
        sort: SortKey::Cpu,
        descending: true,
        page: 0,
    };
    let page = mudmap::fleet::page(&store, &org, &query("", None, None))
        .await
        .unwrap();
    assert_eq!((page.counts.all, page.counts.online), (1, 1));
    assert_eq!(page.tags, vec!["acme".to_owned(), "hq".to_owned()]);
    let row = &page.rows[0];
    assert_eq!(row.health, Health::Online);
    assert!(
        row.cpu_pct.is_some() && row.last_seen_ms.is_some(),
        "{row:?}"
    );
    for (search, health, tag, expected) in [
        ("edge_", None, None, 1),
        ("edge%", None, None, 0),
        ("", Some(Health::Online), Some("hq"), 1),
        ("", Some(Health::Offline), None, 0),
        ("", None, Some("ac"), 0),
    ] {
        let page = mudmap::fleet::page(&store, &org, &query(search, health, tag))
            .await
            .unwrap();
        assert_eq!(page.matching, expected, "{search:?} {health:?} {tag:?}");
    }
    let other = mudmap::fleet::page(&store, "another-org", &query("", None, None))
        .await
        .unwrap();
    assert_eq!(other.counts.all, 0, "another organisation sees nothing");

    let history: (i64,) =
        sqlx::query_as("SELECT COUNT(*) FROM device_samples WHERE device_id = $1")
            .bind(&device_id)
            .fetch_one(store.pool())
            .await
            .unwrap();
    assert!(history.0 >= 1);
    monitor.stop();
    engine.shutdown().await;
    sim.shutdown().await;
    store.close().await;
}

on_both_engines!(polled_device_is_stored_and_listed);
