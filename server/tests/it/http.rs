//! The HTTP edge, through a real server on port 0 against both database engines.

use std::time::{Duration, Instant};

use crate::support::{Engine, TestDbRef, TestServer};
use tokio::io::AsyncWriteExt;

async fn health_and_readiness(db: &TestDbRef) {
    let server = TestServer::start(db.settings.clone()).await;
    let health = server.get("/healthz").await;
    assert_eq!(health.status(), 200);
    assert_eq!(
        health.json::<serde_json::Value>().await.unwrap()["status"],
        "ok"
    );

    let ready: serde_json::Value = server.get("/readyz").await.json().await.unwrap();
    assert_eq!(ready["status"], "ready");
    let expected = match db.engine {
        Engine::Sqlite => "SQLite",
        Engine::Postgres => "PostgreSQL",
    };
    assert_eq!(ready["database"], expected);
    server.stop().await.unwrap();
}

async fn server_function_reaches_the_database(db: &TestDbRef) {
    let server = TestServer::start(db.settings.clone()).await;
    let response = server
        .client
        .post(server.url("/api/system/status"))
        .header("content-type", "application/x-www-form-urlencoded")
        .header("accept", "application/json")
        .body("")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let status: app::system::ServerStatus = response.json().await.unwrap();
    assert_eq!(status.version, mudmap::VERSION);
    assert!(status.schema_version >= 1);
    assert_eq!(
        status.database,
        if db.engine == Engine::Sqlite {
            "SQLite"
        } else {
            "PostgreSQL"
        }
    );
    // The instance id is minted once and kept across restarts.
    let first_id = status.instance_id.clone();
    server.stop().await.unwrap();
    let server = TestServer::start(db.settings.clone()).await;
    let again: app::system::ServerStatus = server
        .client
        .post(server.url("/api/system/status"))
        .header("content-type", "application/x-www-form-urlencoded")
        .body("")
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(again.instance_id, first_id);
    server.stop().await.unwrap();
}

mod sqlite_and_postgres {
    use super::*;
    on_both_engines!(health_and_readiness, server_function_reaches_the_database);
}

async fn sqlite_server() -> (TestServer, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let mut settings = mudmap::config::Settings::for_data_dir(dir.path());
    settings.shutdown_grace_secs = 1;
    (TestServer::start(settings).await, dir)
}

/// A server with the demo account, and an API client signed in to it.
async fn signed_in_server() -> (TestServer, tempfile::TempDir, crate::support::Api) {
    let dir = tempfile::tempdir().unwrap();
    let mut settings = mudmap::config::Settings::for_data_dir(dir.path());
    settings.shutdown_grace_secs = 1;
    let store = mudmap::store::Store::connect(&settings.database_url(), &settings.database)
        .await
        .unwrap();
    store.migrate().await.unwrap();
    let password = mudmap::config::Secret::new("demo-password-for-tests");
    mudmap::demo::ensure_account(&store, Some(&password))
        .await
        .unwrap();
    store.close().await;
    let server = TestServer::start(settings).await;
    let api = crate::support::Api::new(&server);
    let (status, body) = api
        .call(
            "auth/login",
            &[
                ("email", mudmap::demo::DEMO_EMAIL),
                ("password", "demo-password-for-tests"),
            ],
        )
        .await;
    assert_eq!(status, 200, "{body}");
    (server, dir, api)
}

#[tokio::test]
async fn signed_out_pages_redirect_to_sign_in_and_the_sign_in_page_renders() {
    let (server, _dir) = sqlite_server().await;
    let response = server.get("/settings?tab=x").await;
    assert_eq!(response.status(), 303);
    assert_eq!(
        response.headers()["location"],
        "/login?next=/settings%3Ftab%3Dx"
    );
    let response = server.get("/login").await;
    assert_eq!(response.status(), 200);
    let html = response.text().await.unwrap();
    assert!(html.contains("<title>Sign in · Mudmap</title>"), "{html}");
    assert!(
        !html.contains("aria-label=\"Main\""),
        "no navigation when signed out"
    );
    server.stop().await.unwrap();
}

#[tokio::test]
async fn pages_render_the_app_shell_on_the_server() {
    let (server, _dir, api) = signed_in_server().await;
    let response = server
        .client
        .get(server.url("/"))
        .header("cookie", api.cookie().unwrap())
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    assert!(response.headers()["content-type"]
        .to_str()
        .unwrap()
        .starts_with("text/html"));
    let html = response.text().await.unwrap();
    for needle in [
        "<title>Fleet · Mudmap</title>",
        "aria-label=\"Main\"",
        ">Fleet<",
        ">Devices<",
        ">Changes<",
        ">Settings<",
        "<label for=\"org-switcher\"",
        "rel=\"stylesheet\" href=\"/pkg/mudmap-",
    ] {
        assert!(html.contains(needle), "page lacks {needle:?}");
    }
    server.stop().await.unwrap();
}

#[tokio::test]
async fn unknown_paths_get_the_not_found_page_with_404() {
    let (server, _dir, api) = signed_in_server().await;
    let response = server
        .client
        .get(server.url("/definitely/not/here"))
        .header("cookie", api.cookie().unwrap())
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 404);
    assert!(response.text().await.unwrap().contains("Page not found"));
    server.stop().await.unwrap();
}

#[tokio::test]
async fn hashed_assets_are_immutable_and_compressed() {
    let assets = mudmap::http::assets::SiteAssets::discover();
    assert!(
        assets.complete,
        "the front end is not built: run scripts/build-site.sh (README's test command does) before the tests"
    );
    let (server, _dir) = sqlite_server().await;
    for (path, content_type) in [
        (format!("/pkg/{}.js", assets.output_name), "text/javascript"),
        (
            format!("/pkg/{}_bg.wasm", assets.output_name),
            "application/wasm",
        ),
        (assets.stylesheet.clone(), "text/css"),
    ] {
        let response = server
            .client
            .get(server.url(&path))
            .header("accept-encoding", "gzip")
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 200, "{path}");
        let headers = response.headers();
        assert_eq!(
            headers["cache-control"], "public, max-age=31536000, immutable",
            "{path}"
        );
        assert!(
            headers["content-type"]
                .to_str()
                .unwrap()
                .starts_with(content_type),
            "{path}: {:?}",
            headers["content-type"]
        );
        assert_eq!(headers["content-encoding"], "gzip", "{path}");
    }
    let missing = server.get("/pkg/mudmap-0000.js").await;
    assert_eq!(missing.status(), 404);
    server.stop().await.unwrap();
}

#[tokio::test]
async fn public_files_revalidate_with_etags() {
    let (server, _dir) = sqlite_server().await;
    let first = server.get("/favicon.svg").await;
    assert_eq!(first.status(), 200);
    assert_eq!(
        first.headers()["cache-control"],
        "public, max-age=3600, must-revalidate"
    );
    let etag = first.headers()["etag"].clone();
    let second = server
        .client
        .get(server.url("/favicon.svg"))
        .header("if-none-match", etag)
        .send()
        .await
        .unwrap();
    assert_eq!(second.status(), 304);
    server.stop().await.unwrap();
}

#[tokio::test]
async fn every_response_carries_a_request_id_and_security_headers() {
    let (server, _dir) = sqlite_server().await;
    let minted = server.get("/healthz").await;
    let id = minted.headers()["x-request-id"].to_str().unwrap();
    assert_eq!(id.len(), 36, "a UUID: {id}");
    let given = server
        .client
        .get(server.url("/"))
        .header("x-request-id", "trace-me-42")
        .send()
        .await
        .unwrap();
    assert_eq!(given.headers()["x-request-id"], "trace-me-42");
    assert_eq!(given.headers()["x-content-type-options"], "nosniff");
    assert_eq!(given.headers()["x-frame-options"], "DENY");
    assert_eq!(given.headers()["referrer-policy"], "same-origin");
    server.stop().await.unwrap();
}

#[tokio::test]
async fn shutdown_stops_accepting_and_returns_cleanly() {
    let (server, _dir) = sqlite_server().await;
    let addr = server.addr;
    server.stop().await.unwrap();
    assert!(
        tokio::net::TcpStream::connect(addr).await.is_err(),
        "still accepting after shutdown"
    );
}

#[tokio::test]
async fn shutdown_waits_at_most_the_grace_period_for_stuck_requests() {
    let (server, _dir) = sqlite_server().await;
    // A client that sends half a request and then goes quiet keeps its connection busy.
    let mut stuck = tokio::net::TcpStream::connect(server.addr).await.unwrap();
    stuck
        .write_all(
            b"POST /api/system/status HTTP/1.1\r\nhost: x\r\ncontent-length: 100\r\n\r\npartial",
        )
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(100)).await;
    let started = Instant::now();
    tokio::time::timeout(Duration::from_secs(10), server.stop())
        .await
        .expect("shutdown hung")
        .unwrap();
    let took = started.elapsed();
    // The grace period is 1 s; the stop must neither hang nor skip the wait entirely.
    assert!(
        took >= Duration::from_millis(900),
        "did not wait for the in-flight request: {took:?}"
    );
    assert!(took < Duration::from_secs(9), "took {took:?}");
    drop(stuck);
}
