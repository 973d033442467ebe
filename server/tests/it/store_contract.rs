//! The store's contract, run against SQLite and PostgreSQL alike.

use crate::support::{Engine, TestDbRef};
use mudmap::store::{Backend, MetaKey, Store};

async fn connect(db: &TestDbRef) -> Store {
    Store::connect(&db.url, &db.settings.database)
        .await
        .unwrap()
}

async fn reports_its_engine(db: &TestDbRef) {
    let store = connect(db).await;
    let expected = match db.engine {
        Engine::Sqlite => Backend::Sqlite,
        Engine::Postgres => Backend::Postgres,
    };
    assert_eq!(store.backend(), expected);
    store.ping().await.unwrap();
}

async fn migrations_apply_once_and_are_idempotent(db: &TestDbRef) {
    let store = connect(db).await;
    assert_eq!(
        store.schema_version().await.unwrap_or(0),
        0,
        "fresh database has no schema"
    );
    let first = store.migrate().await.unwrap();
    assert!(!first.applied.is_empty());
    assert!(first.version >= 1);
    let second = store.migrate().await.unwrap();
    assert!(second.applied.is_empty(), "{second:?}");
    assert_eq!(second.version, first.version);
    assert_eq!(store.schema_version().await.unwrap(), first.version);
}

async fn two_instances_can_migrate_at_once(db: &TestDbRef) {
    let (a, b) = (connect(db).await, connect(db).await);
    let (ra, rb) = tokio::join!(a.migrate(), b.migrate());
    let (ra, rb) = (ra.unwrap(), rb.unwrap());
    // Neither fails, neither applies a migration twice (that would fail on CREATE TABLE), and both
    // end at the same schema version.
    assert_eq!(ra.version, rb.version);
    assert!(!ra.applied.is_empty() || !rb.applied.is_empty());
    assert_eq!(a.schema_version().await.unwrap(), ra.version);
}

async fn meta_values_round_trip_and_overwrite(db: &TestDbRef) {
    let store = connect(db).await;
    store.migrate().await.unwrap();
    assert_eq!(store.meta_get(MetaKey::InstanceId).await.unwrap(), None);
    store.meta_set(MetaKey::InstanceId, "first").await.unwrap();
    assert_eq!(
        store
            .meta_get(MetaKey::InstanceId)
            .await
            .unwrap()
            .as_deref(),
        Some("first")
    );
    store
        .meta_set(MetaKey::InstanceId, "second ☃ 'quoted'")
        .await
        .unwrap();
    assert_eq!(
        store
            .meta_get(MetaKey::InstanceId)
            .await
            .unwrap()
            .as_deref(),
        Some("second ☃ 'quoted'")
    );
    assert_eq!(store.meta_get(MetaKey::InitializedAt).await.unwrap(), None);
}

async fn first_writer_wins_under_concurrency(db: &TestDbRef) {
    let store = connect(db).await;
    store.migrate().await.unwrap();
    let attempts = (0..16).map(|i| {
        let store = store.clone();
        tokio::spawn(async move {
            store
                .meta_get_or_init(MetaKey::InstanceId, &format!("writer-{i}"))
                .await
        })
    });
    let results: Vec<String> = futures::future::join_all(attempts)
        .await
        .into_iter()
        .map(|r| r.unwrap().unwrap())
        .collect();
    assert!(results.iter().all(|r| r == &results[0]), "{results:?}");
    assert_eq!(
        store.meta_get(MetaKey::InstanceId).await.unwrap(),
        Some(results[0].clone())
    );
}

async fn audit_retention_deletes_old_entries_and_records_that_it_did(db: &TestDbRef) {
    let store = connect(db).await;
    store.migrate().await.unwrap();
    let now = mudmap::store::now_ms();
    for org in ["org-a", "org-b"] {
        sqlx::query(
            "INSERT INTO organisations (id, name, created_at, updated_at) VALUES ($1, $1, 0, 0)",
        )
        .bind(org)
        .execute(store.pool())
        .await
        .unwrap();
    }
    let day = 86_400_000i64;
    for (id, org, age_days) in [
        ("old-a1", "org-a", 40),
        ("old-a2", "org-a", 31),
        ("new-a", "org-a", 29),
        ("new-b", "org-b", 1),
    ] {
        sqlx::query(
            "INSERT INTO audit_log (id, org_id, actor_id, action, subject, detail, created_at) \
             VALUES ($1, $2, NULL, 'device.drift', 'fw', '', $3)",
        )
        .bind(id)
        .bind(org)
        .bind(now - age_days * day)
        .execute(store.pool())
        .await
        .unwrap();
    }
    assert_eq!(
        mudmap::audit::retention::purge(&store, 30).await.unwrap(),
        2
    );
    let left: Vec<(String, String, String)> =
        sqlx::query_as("SELECT org_id, action, detail FROM audit_log ORDER BY org_id, action")
            .fetch_all(store.pool())
            .await
            .unwrap();
    assert_eq!(
        left,
        [
            (
                "org-a".to_owned(),
                "audit.purged".to_owned(),
                "2 entries older than 30 days deleted".to_owned()
            ),
            ("org-a".to_owned(), "device.drift".to_owned(), String::new()),
            ("org-b".to_owned(), "device.drift".to_owned(), String::new()),
        ],
        "only org-a lost entries, and its log says so"
    );
    assert_eq!(
        mudmap::audit::retention::purge(&store, 30).await.unwrap(),
        0
    );
}

on_both_engines!(
    reports_its_engine,
    migrations_apply_once_and_are_idempotent,
    two_instances_can_migrate_at_once,
    meta_values_round_trip_and_overwrite,
    first_writer_wins_under_concurrency,
    audit_retention_deletes_old_entries_and_records_that_it_did,
);

#[tokio::test]
async fn unreachable_postgres_is_one_clear_sentence() {
    let url = mudmap::config::DatabaseUrl::new("postgres://mudmap:hunter2@127.0.0.1:1/mudmap");
    let settings = mudmap::config::DatabaseSettings {
        connect_timeout_secs: 2,
        ..Default::default()
    };
    let err = Store::connect(&url, &settings)
        .await
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("cannot connect to the database at postgres://mudmap:***@127.0.0.1:1/mudmap"),
        "{err}"
    );
    assert!(err.contains("is PostgreSQL running"), "{err}");
    assert!(!err.contains("hunter2"), "{err}");
}

#[tokio::test]
async fn sqlite_database_and_directory_are_created_in_wal_mode() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("nested/data/mudmap.db");
    let url = mudmap::config::DatabaseUrl::new(format!("sqlite://{}?mode=rwc", path.display()));
    let store = Store::connect(&url, &Default::default()).await.unwrap();
    store.migrate().await.unwrap();
    let (mode,): (String,) = sqlx::query_as("PRAGMA journal_mode")
        .fetch_one(store.pool())
        .await
        .unwrap();
    assert_eq!(mode.to_lowercase(), "wal");
    assert!(path.exists());
}
