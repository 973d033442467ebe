//! The `mudmap` binary as an operator meets it: help, config errors, migrate, serve and stop.

use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::time::Duration;

const BIN: &str = env!("CARGO_BIN_EXE_mudmap");

/// Run `mudmap` with a clean MUDMAP_* environment and the given extra variables.
fn mudmap(dir: &Path, args: &[&str], env: &[(&str, &str)]) -> Output {
    let mut cmd = Command::new(BIN);
    cmd.args(args)
        .current_dir(dir)
        .env("MUDMAP_DATA_DIR", dir.join("data"));
    for (key, _) in std::env::vars() {
        if key.starts_with("MUDMAP_") || key == "DATABASE_URL" || key == "RUST_LOG" {
            cmd.env_remove(key);
        }
    }
    cmd.env("MUDMAP_DATA_DIR", dir.join("data"));
    for (k, v) in env {
        cmd.env(k, v);
    }
    cmd.output().unwrap()
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// A failure is exactly one `error:` line on stderr, with no panic or backtrace.
fn assert_one_line_error(output: &Output, needle: &str) {
    assert!(
        !output.status.success(),
        "expected failure, got {:?}",
        output.status
    );
    let stderr = text(&output.stderr);
    let errors: Vec<&str> = stderr
        .lines()
        .filter(|l| l.starts_with("error: "))
        .collect();
    assert_eq!(errors.len(), 1, "stderr: {stderr}");
    assert!(
        errors[0].contains(needle),
        "{:?} lacks {needle:?}",
        errors[0]
    );
    assert!(
        !stderr.contains("panicked") && !stderr.contains("backtrace"),
        "{stderr}"
    );
}

#[test]
fn help_names_every_command_and_each_explains_itself() {
    let dir = tempfile::tempdir().unwrap();
    let help = text(&mudmap(dir.path(), &["--help"], &[]).stdout);
    for cmd in [
        "serve",
        "migrate",
        "check-config",
        "default-config",
        "--config",
    ] {
        assert!(help.contains(cmd), "--help lacks {cmd}: {help}");
    }
    for (cmd, phrase) in [
        ("serve", "Serve the web application"),
        ("migrate", "apply pending migrations"),
        ("check-config", "Check the configuration"),
        ("default-config", "commented example configuration"),
    ] {
        let out = mudmap(dir.path(), &[cmd, "--help"], &[]);
        assert!(out.status.success());
        assert!(
            text(&out.stdout).contains(phrase),
            "{cmd} --help: {}",
            text(&out.stdout)
        );
    }
}

#[test]
fn default_config_is_a_valid_config_file() {
    let dir = tempfile::tempdir().unwrap();
    let out = mudmap(dir.path(), &["default-config"], &[]);
    assert!(out.status.success());
    let file = dir.path().join("mudmap.toml");
    std::fs::write(&file, &out.stdout).unwrap();
    let check = mudmap(
        dir.path(),
        &["check-config", "--config", file.to_str().unwrap()],
        &[("MUDMAP_LISTEN", "127.0.0.1:0")],
    );
    assert!(
        check.status.success(),
        "{}{}",
        text(&check.stdout),
        text(&check.stderr)
    );
    assert!(text(&check.stdout).contains("configuration is valid"));
}

#[test]
fn check_config_fails_on_unknown_keys_naming_them() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("mudmap.toml");
    std::fs::write(&file, "lisen = \"127.0.0.1:3000\"\n").unwrap();
    let out = mudmap(
        dir.path(),
        &["check-config", "-c", file.to_str().unwrap()],
        &[("MUDMAP_LISTEN", "127.0.0.1:0")],
    );
    assert!(
        text(&out.stdout).contains("unknown config key `lisen`"),
        "{}",
        text(&out.stdout)
    );
    assert_one_line_error(&out, "1 problem(s)");
}

#[test]
fn malformed_toml_is_one_line_with_the_position() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("bad.toml");
    std::fs::write(&file, "listen = \"127.0.0.1:3000\"\n[log\n").unwrap();
    let out = mudmap(
        dir.path(),
        &["serve", "--config", file.to_str().unwrap()],
        &[],
    );
    assert_one_line_error(&out, "is not valid TOML");
    assert!(
        text(&out.stderr).contains("line 2"),
        "{}",
        text(&out.stderr)
    );
}

#[test]
fn unreachable_postgres_is_one_line_without_the_password() {
    let dir = tempfile::tempdir().unwrap();
    let out = mudmap(
        dir.path(),
        &["serve"],
        &[
            ("MUDMAP_LISTEN", "127.0.0.1:0"),
            (
                "MUDMAP_DATABASE_URL",
                "postgres://mudmap:hunter2@127.0.0.1:1/mudmap",
            ),
            ("MUDMAP_DATABASE_CONNECT_TIMEOUT_SECS", "2"),
        ],
    );
    assert_one_line_error(
        &out,
        "cannot connect to the database at postgres://mudmap:***@127.0.0.1:1/mudmap",
    );
    assert!(!text(&out.stderr).contains("hunter2"));
}

#[test]
fn a_port_in_use_is_one_line_with_advice() {
    let dir = tempfile::tempdir().unwrap();
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = taken.local_addr().unwrap().to_string();
    let out = mudmap(dir.path(), &["serve"], &[("MUDMAP_LISTEN", &addr)]);
    assert_one_line_error(&out, &format!("cannot listen on {addr}"));
    assert!(text(&out.stderr).contains("MUDMAP_LISTEN"));
}

#[test]
fn migrate_creates_the_sqlite_database_once() {
    let dir = tempfile::tempdir().unwrap();
    let first = mudmap(dir.path(), &["migrate"], &[]);
    assert!(first.status.success(), "{}", text(&first.stderr));
    assert!(
        text(&first.stdout).contains("applied ") && text(&first.stdout).contains("migration(s)"),
        "{}",
        text(&first.stdout)
    );
    assert!(dir.path().join("data/mudmap.db").exists());
    let second = mudmap(dir.path(), &["migrate"], &[]);
    assert!(
        text(&second.stdout).contains("applied 0 migration(s)"),
        "{}",
        text(&second.stdout)
    );
}

#[test]
fn serve_creates_the_database_and_stops_cleanly_on_sigterm() {
    let dir = tempfile::tempdir().unwrap();
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let listen = format!("127.0.0.1:{port}");
    let mut child = Command::new(BIN)
        .arg("serve")
        .current_dir(dir.path())
        .env("MUDMAP_LISTEN", &listen)
        .env("MUDMAP_DATA_DIR", dir.path().join("data"))
        .env("MUDMAP_LOG_FORMAT", "json")
        .env_remove("MUDMAP_DATABASE_URL")
        .env_remove("DATABASE_URL")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut ready = false;
    for _ in 0..200 {
        if let Ok(mut stream) = std::net::TcpStream::connect(&listen) {
            use std::io::{Read, Write};
            stream.write_all(b"GET /readyz HTTP/1.0\r\n\r\n").unwrap();
            let mut reply = String::new();
            let _ = stream.read_to_string(&mut reply);
            if reply.starts_with("HTTP/1.0 200") || reply.starts_with("HTTP/1.1 200") {
                ready = true;
                break;
            }
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    assert!(ready, "server never became ready");
    assert!(dir.path().join("data/mudmap.db").exists());
    let kill = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(kill.success());
    let mut exited = None;
    for _ in 0..100 {
        if let Some(status) = child.try_wait().unwrap() {
            exited = Some(status);
            break;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let status = exited.expect("server did not stop within 5 s of SIGTERM");
    assert!(status.success(), "{status:?}");
    let mut stderr = String::new();
    std::io::Read::read_to_string(child.stderr.as_mut().unwrap(), &mut stderr).unwrap();
    // JSON logs: every line parses, and the lifecycle is visible.
    for line in stderr.lines() {
        serde_json::from_str::<serde_json::Value>(line)
            .unwrap_or_else(|e| panic!("not JSON ({e}): {line}"));
    }
    assert!(
        stderr.contains("SIGTERM") && stderr.contains("stopped"),
        "{stderr}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_operator_lists_and_retries_failed_jobs() {
    let dir = tempfile::tempdir().unwrap();
    assert!(mudmap(dir.path(), &["migrate"], &[]).status.success());
    let url = mudmap::config::DatabaseUrl::new(format!(
        "sqlite://{}",
        dir.path().join("data/mudmap.db").display()
    ));
    let store = mudmap::store::Store::connect(&url, &mudmap::config::DatabaseSettings::default())
        .await
        .unwrap();
    let queue = mudmap::jobs::Queue::new(store.clone());
    let job = mudmap::jobs::NewJob::new("mail", &serde_json::json!({"mail": "welcome"}));
    let mudmap::jobs::Enqueued::New(id) = queue.enqueue_now(job).await.unwrap() else {
        panic!("not enqueued");
    };
    sqlx::query(
        "UPDATE jobs SET state = 'failed', attempts = 8, last_error = 'SMTP said no' WHERE id = $1",
    )
    .bind(&id)
    .execute(store.pool())
    .await
    .unwrap();

    let listed = mudmap(dir.path(), &["jobs", "list", "--state", "failed"], &[]);
    assert!(listed.status.success(), "{}", text(&listed.stderr));
    let line: serde_json::Value = serde_json::from_str(text(&listed.stdout).trim()).unwrap();
    assert_eq!(line["id"], id.as_str());
    assert_eq!(line["last_error"], "SMTP said no");

    let retried = mudmap(dir.path(), &["jobs", "retry", &id], &[]);
    assert!(retried.status.success(), "{}", text(&retried.stderr));
    let state: (String, i64) = sqlx::query_as("SELECT state, attempts FROM jobs WHERE id = $1")
        .bind(&id)
        .fetch_one(store.pool())
        .await
        .unwrap();
    assert_eq!(state, ("queued".to_owned(), 0));
    let again = mudmap(dir.path(), &["jobs", "retry", &id], &[]);
    assert_one_line_error(&again, "no failed job");
    let bad = mudmap(dir.path(), &["jobs", "list", "--state", "broken"], &[]);
    assert_one_line_error(&bad, "use queued, running, done or failed");
    store.close().await;
}
