//! Mail is never lost and never doubled by a crash: the real `mudmap` binary enqueues a mail
//! while the SMTP server refuses it, is killed with SIGKILL, and is started again once the SMTP
//! server accepts mail; the mail then arrives exactly once.

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use mudmap::config::{DatabaseSettings, DatabaseUrl};
use mudmap::mail::sink::SmtpSink;
use mudmap::store::Store;

const BIN: &str = env!("CARGO_BIN_EXE_mudmap");

fn serve(dir: &Path, listen: &str, smtp_port: u16) -> Child {
    let mut cmd = Command::new(BIN);
    for (key, _) in std::env::vars() {
        if key.starts_with("MUDMAP_") || key == "DATABASE_URL" || key == "RUST_LOG" {
            cmd.env_remove(key);
        }
    }
    cmd.arg("serve")
        .current_dir(dir)
        .env("MUDMAP_LISTEN", listen)
        .env("MUDMAP_DATA_DIR", dir.join("data"))
        .env("MUDMAP_SMTP_HOST", "127.0.0.1")
        .env("MUDMAP_SMTP_PORT", smtp_port.to_string())
        .env("MUDMAP_SMTP_SECURITY", "none")
        .env("MUDMAP_LOG_LEVEL", "warn")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap()
}

async fn wait_ready(client: &reqwest::Client, base: &str) {
    for _ in 0..400 {
        if let Ok(r) = client.get(format!("{base}/readyz")).send().await {
            if r.status().is_success() {
                return;
            }
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    panic!("server never became ready");
}

async fn job(store: &Store) -> (String, i64, Option<String>) {
    sqlx::query_as("SELECT state, attempts, last_error FROM jobs WHERE kind = 'mail'")
        .fetch_one(store.pool())
        .await
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_mail_survives_a_kill_while_smtp_is_down_and_arrives_once() {
    let dir = tempfile::tempdir().unwrap();
    let sink = SmtpSink::start("127.0.0.1:0".parse().unwrap(), None)
        .await
        .unwrap();
    sink.set_reject(true);
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let listen = format!("127.0.0.1:{port}");
    let base = format!("http://{listen}");
    let client = reqwest::Client::new();

    let mut first = serve(dir.path(), &listen, sink.addr().port());
    wait_ready(&client, &base).await;
    let response = client
        .post(format!("{base}/api/auth/register"))
        .form(&[
            ("email", "ann@example.com"),
            ("password", "plover-granite-tundra-42"),
            ("org_name", ""),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);

    let url = DatabaseUrl::new(format!(
        "sqlite://{}",
        dir.path().join("data/mudmap.db").display()
    ));
    let store = Store::connect(&url, &DatabaseSettings::default())
        .await
        .unwrap();
    // The first attempt reaches the SMTP server and is refused (4xx): a retry is scheduled.
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let (state, attempts, error) = job(&store).await;
        if attempts >= 1 && state == "queued" {
            assert!(
                error.unwrap().contains("451"),
                "the SMTP refusal is recorded"
            );
            break;
        }
        assert!(
            Instant::now() < deadline,
            "no failed attempt: {state} {attempts}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    first.kill().unwrap();
    first.wait().unwrap();
    assert!(sink.messages().is_empty());

    sink.set_reject(false);
    let mut second = serve(dir.path(), &listen, sink.addr().port());
    wait_ready(&client, &base).await;
    // The retry is due within the first backoff (10 s ± 20 %).
    let delivered = sink.wait_for(1, Duration::from_secs(30)).await;
    assert_eq!(delivered.len(), 1, "the mail arrives after the restart");
    // ...and only once, however long we wait.
    tokio::time::sleep(Duration::from_secs(2)).await;
    let all = sink.messages();
    assert_eq!(all.len(), 1, "delivered exactly once");
    assert!(all[0].to.iter().any(|t| t.contains("ann@example.com")));
    assert!(all[0].header("subject").unwrap().contains("Confirm"));
    // The sink holds the mail before the worker records the job done.
    let attempts = crate::support::eventually(Duration::from_secs(20), || async {
        let (state, attempts, _) = job(&store).await;
        (state == "done").then_some(attempts)
    })
    .await;
    assert_eq!(attempts, 2);
    second.kill().unwrap();
    second.wait().unwrap();
    store.close().await;
}
