//! Test harness: throwaway databases on both engines and a real server booted on port 0.
#![allow(dead_code)]

use std::future::Future;
use std::net::SocketAddr;
use std::panic::AssertUnwindSafe;
use std::time::Duration;

pub mod pfsense_host;
pub mod sshd;

use futures::FutureExt;
use mudmap::config::{DatabaseUrl, Settings};
use sqlx::Executor;
use tempfile::TempDir;

/// The PostgreSQL server tests use (a database they may create schemas in).
pub fn postgres_base_url() -> String {
    std::env::var("MUDMAP_TEST_POSTGRES_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".to_owned())
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Engine {
    Sqlite,
    Postgres,
}

/// A database that exists for one test: a SQLite file in a temp dir, or a fresh PostgreSQL schema.
pub struct TestDb {
    pub url: DatabaseUrl,
    pub dir: TempDir,
    schema: Option<String>,
}

impl TestDb {
    pub async fn new(engine: Engine) -> Self {
        let dir = tempfile::tempdir().unwrap();
        match engine {
            Engine::Sqlite => {
                let url = format!(
                    "sqlite://{}?mode=rwc",
                    dir.path().join("mudmap.db").display()
                );
                Self {
                    url: DatabaseUrl::new(url),
                    dir,
                    schema: None,
                }
            }
            Engine::Postgres => {
                let schema = format!(
                    "mm_test_{}_{}",
                    mudmap::store::now_ms(),
                    &uuid::Uuid::new_v4().simple().to_string()[..8]
                );
                let admin = admin_pool().await;
                sweep_stale_schemas(&admin).await;
                admin
                    .execute(sqlx::AssertSqlSafe(format!("CREATE SCHEMA {schema}")))
                    .await
                    .expect("create test schema");
                admin.close().await;
                let base = postgres_base_url();
                let sep = if base.contains('?') { '&' } else { '?' };
                let url = format!("{base}{sep}options=-c%20search_path%3D{schema}");
                Self {
                    url: DatabaseUrl::new(url),
                    dir,
                    schema: Some(schema),
                }
            }
        }
    }

    /// Settings pointing at this database, with the data dir in the temp dir.
    pub fn settings(&self) -> Settings {
        let mut settings = Settings::for_data_dir(self.dir.path());
        settings.database.url = Some(self.url.clone());
        settings.shutdown_grace_secs = 2;
        settings
    }

    pub async fn cleanup(self) {
        if let Some(schema) = &self.schema {
            let admin = admin_pool().await;
            admin
                .execute(sqlx::AssertSqlSafe(format!(
                    "DROP SCHEMA IF EXISTS {schema} CASCADE"
                )))
                .await
                .expect("drop test schema");
            admin.close().await;
        }
    }
}

async fn admin_pool() -> sqlx::AnyPool {
    sqlx::any::install_default_drivers();
    sqlx::any::AnyPoolOptions::new()
        .max_connections(1)
        .connect(&postgres_base_url())
        .await
        .unwrap_or_else(|e| {
            panic!(
                "PostgreSQL for tests is not reachable at {} ({e}); start it or set MUDMAP_TEST_POSTGRES_URL",
                postgres_base_url()
            )
        })
}

/// Drop schemas left by test processes that were killed (older than an hour).
async fn sweep_stale_schemas(admin: &sqlx::AnyPool) {
    let cutoff = mudmap::store::now_ms() - 3_600_000;
    let rows: Vec<(String,)> = sqlx::query_as(
        "SELECT schema_name FROM information_schema.schemata WHERE schema_name LIKE 'mm_test_%'",
    )
    .fetch_all(admin)
    .await
    .unwrap_or_default();
    for (name,) in rows {
        let stamp = name.split('_').nth(2).and_then(|s| s.parse::<i64>().ok());
        if stamp.is_some_and(|t| t < cutoff) {
            let _ = admin
                .execute(sqlx::AssertSqlSafe(format!(
                    "DROP SCHEMA IF EXISTS {name} CASCADE"
                )))
                .await;
        }
    }
}

/// Run `body` with a fresh database and always clean it up, even when the body panics.
pub async fn with_db<F, Fut>(engine: Engine, body: F)
where
    F: FnOnce(TestDbRef) -> Fut,
    Fut: Future<Output = ()>,
{
    let db = TestDb::new(engine).await;
    let handle = TestDbRef {
        url: db.url.clone(),
        settings: db.settings(),
        engine,
    };
    let outcome = AssertUnwindSafe(body(handle)).catch_unwind().await;
    db.cleanup().await;
    if let Err(panic) = outcome {
        std::panic::resume_unwind(panic);
    }
}

/// What a test body gets: the database URL and matching settings.
pub struct TestDbRef {
    pub url: DatabaseUrl,
    pub settings: Settings,
    pub engine: Engine,
}

/// A real Mudmap server on an ephemeral loopback port.
pub struct TestServer {
    pub addr: SocketAddr,
    pub client: reqwest::Client,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    task: tokio::task::JoinHandle<anyhow::Result<()>>,
}

impl TestServer {
    pub async fn start(settings: Settings) -> Self {
        // Warnings and errors of the server show in a failing test's output.
        let _ = tracing_subscriber::fmt()
            .with_test_writer()
            .with_env_filter("warn")
            .try_init();
        let listener = mudmap::bind(settings.listen).await.unwrap();
        let addr = listener.local_addr().unwrap();
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let task = tokio::spawn(mudmap::run(settings, listener, async move {
            let _ = stopped.await;
        }));
        let client = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .unwrap();
        let server = Self {
            addr,
            client,
            stop: Some(stop),
            task,
        };
        server.wait_ready().await;
        server
    }

    async fn wait_ready(&self) {
        for _ in 0..200 {
            if let Ok(r) = self.client.get(self.url("/readyz")).send().await {
                if r.status().is_success() {
                    return;
                }
            }
            assert!(!self.task.is_finished(), "server exited during start");
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
        panic!("server did not become ready within 5 s");
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}{}", self.addr, path)
    }

    pub async fn get(&self, path: &str) -> reqwest::Response {
        self.client.get(self.url(path)).send().await.unwrap()
    }

    /// Signal shutdown and wait for `run` to return.
    pub async fn stop(mut self) -> anyhow::Result<()> {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        self.task.await.unwrap()
    }
}

/// Generate one `#[tokio::test]` per engine from an async fn taking `&TestDbRef`.
macro_rules! on_both_engines {
    ($($name:ident),* $(,)?) => {
        mod sqlite {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    $crate::support::with_db($crate::support::Engine::Sqlite, |db| async move { super::$name(&db).await }).await;
                }
            )*
        }
        mod postgres {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    $crate::support::with_db($crate::support::Engine::Postgres, |db| async move { super::$name(&db).await }).await;
                }
            )*
        }
    };
}

/// A browser-like client for server functions: keeps the session cookie it is given.
pub struct Api {
    base: String,
    client: reqwest::Client,
    cookie: std::sync::Mutex<Option<String>>,
}

impl Api {
    pub fn new(server: &TestServer) -> Self {
        Self {
            base: server.url(""),
            client: server.client.clone(),
            cookie: std::sync::Mutex::new(None),
        }
    }

    /// POST a server function (`/api/<endpoint>`) with form fields; returns status and JSON.
    pub async fn call(&self, endpoint: &str, form: &[(&str, &str)]) -> (u16, serde_json::Value) {
        self.call_with(endpoint, form, &[]).await
    }

    /// Like [`Api::call`], with extra request headers.
    pub async fn call_with(
        &self,
        endpoint: &str,
        form: &[(&str, &str)],
        headers: &[(&str, &str)],
    ) -> (u16, serde_json::Value) {
        let mut request = self
            .client
            .post(format!("{}/api/{endpoint}", self.base))
            .form(form);
        if let Some(cookie) = self.cookie.lock().unwrap().clone() {
            request = request.header("cookie", cookie);
        }
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        let response = request.send().await.unwrap();
        let status = response.status().as_u16();
        for value in response.headers().get_all("set-cookie") {
            let value = value.to_str().unwrap();
            if let Some(pair) = value.split(';').next() {
                if let Some(token) = pair.strip_prefix("mudmap_session=") {
                    *self.cookie.lock().unwrap() =
                        (!token.is_empty()).then(|| format!("mudmap_session={token}"));
                }
            }
        }
        let body = response.text().await.unwrap();
        let json = serde_json::from_str(&body).unwrap_or(serde_json::Value::String(body));
        (status, json)
    }

    /// GET a page with this client's cookie; returns status and the Location header.
    pub async fn page(&self, path: &str) -> (u16, Option<String>) {
        let mut request = self.client.get(format!("{}{path}", self.base));
        if let Some(cookie) = self.cookie.lock().unwrap().clone() {
            request = request.header("cookie", cookie);
        }
        let response = request.send().await.unwrap();
        let location = response
            .headers()
            .get("location")
            .map(|v| v.to_str().unwrap().to_owned());
        (response.status().as_u16(), location)
    }

    /// The `Cookie` header value of this client's session, if it has one.
    pub fn cookie(&self) -> Option<String> {
        self.cookie.lock().unwrap().clone()
    }

    pub fn signed_out(&self) -> bool {
        self.cookie.lock().unwrap().is_none()
    }
}

/// Settings whose mail goes over SMTP (no TLS) to `sink`.
pub fn with_smtp(mut settings: Settings, sink: SocketAddr) -> Settings {
    settings.smtp.host = Some(sink.ip().to_string());
    settings.smtp.port = Some(sink.port());
    settings.smtp.security = mudmap::config::SmtpSecurity::None;
    settings
}

/// The `token` parameter of the first link in `mail` whose path is `path`.
pub fn token_in(mail: &mudmap::mail::sink::ReceivedMail, path: &str) -> String {
    let links = mail.links();
    let link = links
        .iter()
        .find(|l| l.contains(&format!("{path}?token=")))
        .unwrap_or_else(|| panic!("no {path} link in {links:?}"));
    link.split("token=").nth(1).unwrap().to_owned()
}

/// Generate one `#[tokio::test]` on SQLite only from an async fn taking `&TestDbRef`.
macro_rules! on_sqlite {
    ($($name:ident),* $(,)?) => {
        mod sqlite_only {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    $crate::support::with_db($crate::support::Engine::Sqlite, |db| async move { super::$name(&db).await }).await;
                }
            )*
        }
    };
}

/// Generate one `#[tokio::test]` on PostgreSQL only from an async fn taking `&TestDbRef`.
macro_rules! on_postgres {
    ($($name:ident),* $(,)?) => {
        mod postgres_only {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    $crate::support::with_db($crate::support::Engine::Postgres, |db| async move { super::$name(&db).await }).await;
                }
            )*
        }
    };
}

/// Every log line of this test process, at every level (see [`capture_logs`]).
#[derive(Clone, Default)]
pub struct Captured(pub std::sync::Arc<std::sync::Mutex<Vec<u8>>>);

impl std::io::Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl Captured {
    /// Everything logged so far, as text.
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.0.lock().unwrap()).into_owned()
    }
}

/// Capture every log line of this process (trace level, dependencies included). Call it before
/// the server starts; the subscriber is process-wide, which is fine because nextest runs each
/// test in its own process.
pub fn capture_logs() -> Captured {
    let logs = Captured::default();
    let writer = logs.clone();
    tracing_subscriber::fmt()
        .with_env_filter("trace")
        .with_writer(move || writer.clone())
        .with_ansi(false)
        .try_init()
        .expect("log capture needs a process of its own: run the tests with cargo nextest");
    logs
}

/// Polls `attempt` every 50 ms until it gives a value; panics after `limit`. For what a loaded
/// machine may take a while to show; never a timing assertion.
pub async fn eventually<T, F, Fut>(limit: Duration, mut attempt: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let deadline = tokio::time::Instant::now() + limit;
    loop {
        if let Some(value) = attempt().await {
            return value;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "no result within {limit:?}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Waits until nothing accepts connections on `addr` any more (a simulated device told to refuse
/// closes its listener in its own task).
pub async fn until_refused(addr: SocketAddr) {
    eventually(Duration::from_secs(5), || async {
        tokio::net::TcpStream::connect(addr)
            .await
            .is_err()
            .then_some(())
    })
    .await;
}
