//! `mudmap bench jobs`: the durable job queue on SQLite and on PostgreSQL.
//!
//! Phases (one JSON line each, per database):
//! - `mail_latency` — mail jobs enqueued at a steady rate, each rendered and delivered over SMTP
//!   to a sink on loopback; latency is from the enqueueing commit to the sink's receipt (p50/p99),
//!   and `queue_*` from the commit to the handler starting (the queue's share of it).
//! - `throughput_noop` — N jobs with an empty handler, enqueued first, then drained: the queue's
//!   own cost per job (claim, lease, outcome), in jobs per second.
//! - `throughput_mail` — N mail jobs drained through SMTP: jobs per second end to end.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::Context;
use serde_json::json;
use sqlx::Executor;

use super::{percentiles, round1};
use crate::config::{DatabaseSettings, DatabaseUrl, SmtpSecurity, SmtpSettings};
use crate::jobs::worker::Registry;
use crate::jobs::{
    JobContext, JobError, JobHandler, JobState, NewJob, Queue, Worker, WorkerConfig,
};
use crate::mail::sink::SmtpSink;
use crate::mail::{Mailer, Template};
use crate::store::Store;

#[derive(Debug, Clone, clap::Args)]
pub struct JobsArgs {
    /// sqlite, postgres or both.
    #[arg(long, default_value = "both")]
    pub database: String,
    /// PostgreSQL to use (a temporary schema is created and dropped).
    #[arg(long, default_value = "postgres://postgres@127.0.0.1:5432/test")]
    pub postgres_url: String,
    /// Mail jobs for the latency phase.
    #[arg(long, default_value_t = 500)]
    pub latency_jobs: usize,
    /// Enqueue rate of the latency phase, per second.
    #[arg(long, default_value_t = 100)]
    pub rate: u32,
    /// Jobs per throughput phase.
    #[arg(long, default_value_t = 5000)]
    pub jobs: usize,
    /// Worker concurrency (jobs in progress at once).
    #[arg(long, default_value_t = 16)]
    pub concurrency: usize,
}

struct Noop;

#[async_trait::async_trait]
impl JobHandler for Noop {
    async fn run(&self, _job: &JobContext) -> Result<(), JobError> {
        Ok(())
    }
}

/// Renders a template and sends it over SMTP, with the job id as Message-ID; notes when each
/// job started, to split queue latency from delivery.
struct BenchMail {
    mailer: Mailer,
    started: Arc<Mutex<HashMap<String, Instant>>>,
}

#[async_trait::async_trait]
impl JobHandler for BenchMail {
    async fn run(&self, job: &JobContext) -> Result<(), JobError> {
        if let Ok(mut started) = self.started.lock() {
            started.insert(format!("<{}@mudmap>", job.id), Instant::now());
        }
        let rendered = Template::Welcome {
            org_name: "Bench MSP".to_owned(),
            role: "Operator".to_owned(),
            link: "http://127.0.0.1:3000/".to_owned(),
        }
        .render();
        self.mailer
            .send("bench@example.com", &rendered, &job.id)
            .await
            .map_err(|e| JobError::Retry(e.to_string()))
    }
}

pub async fn run(args: JobsArgs) -> anyhow::Result<()> {
    let engines: Vec<&str> = match args.database.as_str() {
        "sqlite" => vec!["sqlite"],
        "postgres" => vec!["postgres"],
        "both" => vec!["sqlite", "postgres"],
        other => anyhow::bail!("--database {other:?}: use sqlite, postgres or both"),
    };
    for engine in engines {
        let scratch = Scratch::create(engine, &args.postgres_url).await?;
        let result = bench_engine(&args, &scratch).await;
        scratch.drop_schema().await;
        result?;
    }
    Ok(())
}

/// A throwaway database: a SQLite file in a temp dir, or a PostgreSQL schema.
struct Scratch {
    url: DatabaseUrl,
    name: &'static str,
    schema: Option<(String, String)>,
    _dir: tempfile::TempDir,
}

impl Scratch {
    async fn create(engine: &str, postgres_url: &str) -> anyhow::Result<Self> {
        let dir = tempfile::tempdir().context("creating a temp dir")?;
        if engine == "sqlite" {
            let url = format!(
                "sqlite://{}?mode=rwc",
                dir.path().join("bench.db").display()
            );
            return Ok(Self {
                url: DatabaseUrl::new(url),
                name: "SQLite",
                schema: None,
                _dir: dir,
            });
        }
        sqlx::any::install_default_drivers();
        let schema = format!(
            "mm_bench_{}",
            &uuid::Uuid::new_v4().simple().to_string()[..8]
        );
        let admin = sqlx::AnyPool::connect(postgres_url)
            .await
            .with_context(|| format!("connecting to {postgres_url} (set --postgres-url)"))?;
        admin
            .execute(sqlx::AssertSqlSafe(format!("CREATE SCHEMA {schema}")))
            .await?;
        admin.close().await;
        let sep = if postgres_url.contains('?') { '&' } else { '?' };
        Ok(Self {
            url: DatabaseUrl::new(format!(
                "{postgres_url}{sep}options=-c%20search_path%3D{schema}"
            )),
            name: "PostgreSQL",
            schema: Some((postgres_url.to_owned(), schema)),
            _dir: dir,
        })
    }

    async fn drop_schema(&self) {
        if let Some((url, schema)) = &self.schema {
            if let Ok(admin) = sqlx::AnyPool::connect(url).await {
                let _ = admin
                    .execute(sqlx::AssertSqlSafe(format!(
                        "DROP SCHEMA IF EXISTS {schema} CASCADE"
                    )))
                    .await;
                admin.close().await;
            }
        }
    }
}

async fn bench_engine(args: &JobsArgs, scratch: &Scratch) -> anyhow::Result<()> {
    let store = Store::connect(
        &scratch.url,
        &DatabaseSettings {
            max_connections: 16,
            ..DatabaseSettings::default()
        },
    )
    .await?;
    store.migrate().await?;
    let sink = SmtpSink::start("127.0.0.1:0".parse()?, None).await?;
    let smtp = SmtpSettings {
        host: Some(sink.addr().ip().to_string()),
        port: Some(sink.addr().port()),
        security: SmtpSecurity::None,
        ..SmtpSettings::default()
    };
    let mailer = Mailer::from_settings(&smtp, scratch._dir.path())?;
    let queue = Queue::new(store.clone());
    let mut registry = Registry::new();
    registry.register("bench.noop", Arc::new(Noop));
    let started: Arc<Mutex<HashMap<String, Instant>>> = Arc::default();
    registry.register(
        "bench.mail",
        Arc::new(BenchMail {
            mailer,
            started: started.clone(),
        }),
    );
    let config = WorkerConfig {
        concurrency: args.concurrency,
        poll_interval: Duration::from_secs(1),
        ..WorkerConfig::default()
    };

    // Latency: steady enqueueing while the worker runs.
    let worker = Worker::start(queue.clone(), registry.clone(), config.clone());
    let enqueued: Arc<Mutex<HashMap<String, Instant>>> = Arc::default();
    let interval = Duration::from_secs_f64(1.0 / f64::from(args.rate.max(1)));
    let mut ticker = tokio::time::interval(interval);
    for n in 0..args.latency_jobs {
        ticker.tick().await;
        let mut tx = store.begin().await?;
        let job = NewJob::new("bench.mail", &json!({ "n": n }));
        if let crate::jobs::Enqueued::New(id) = queue.enqueue(&mut tx, job).await? {
            queue.commit(tx).await?;
            enqueued
                .lock()
                .map_err(|_| anyhow::anyhow!("poisoned"))?
                .insert(format!("<{id}@mudmap>"), Instant::now());
        }
    }
    let received = sink
        .wait_for(args.latency_jobs, Duration::from_secs(120))
        .await;
    let sent = enqueued
        .lock()
        .map_err(|_| anyhow::anyhow!("poisoned"))?
        .clone();
    let mut latencies: Vec<Duration> = received
        .iter()
        .filter_map(|mail| {
            let id = mail.header("message-id")?;
            let at = sent.get(id.trim())?;
            Some(mail.received_at.saturating_duration_since(*at))
        })
        .collect();
    let measured = latencies.len();
    let (p50, p99) = percentiles(&mut latencies);
    let began = started
        .lock()
        .map_err(|_| anyhow::anyhow!("poisoned"))?
        .clone();
    let mut queued: Vec<Duration> = sent
        .iter()
        .filter_map(|(id, at)| Some(began.get(id)?.saturating_duration_since(*at)))
        .collect();
    let (queue_p50, queue_p99) = percentiles(&mut queued);
    println!(
        "{}",
        json!({
            "bench": "jobs", "database": scratch.name, "phase": "mail_latency",
            "jobs": args.latency_jobs, "delivered": measured, "rate_per_s": args.rate,
            "p50_ms": round1(p50), "p99_ms": round1(p99),
            "queue_p50_ms": round1(queue_p50), "queue_p99_ms": round1(queue_p99),
        })
    );
    worker.shutdown(Duration::from_secs(5)).await;

    for (kind, phase) in [
        ("bench.noop", "throughput_noop"),
        ("bench.mail", "throughput_mail"),
    ] {
        let before = done_count(&queue).await?;
        // Enqueue everything first (in transactions of 500), then time the drain.
        let mut n = 0;
        while n < args.jobs {
            let mut tx = store.begin().await?;
            for _ in 0..500.min(args.jobs - n) {
                queue
                    .enqueue(&mut tx, NewJob::new(kind, &json!({ "n": n })))
                    .await?;
                n += 1;
            }
            tx.commit().await?;
        }
        let started = Instant::now();
        let worker = Worker::start(queue.clone(), registry.clone(), config.clone());
        let target = before + i64::try_from(args.jobs)?;
        let deadline = started + Duration::from_secs(600);
        loop {
            if done_count(&queue).await? >= target {
                break;
            }
            anyhow::ensure!(
                Instant::now() < deadline,
                "{phase}: jobs not done after 10 minutes"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        let wall = started.elapsed();
        worker.shutdown(Duration::from_secs(5)).await;
        println!(
            "{}",
            json!({
                "bench": "jobs", "database": scratch.name, "phase": phase,
                "jobs": args.jobs, "concurrency": args.concurrency,
                "wall_ms": round1(wall.as_secs_f64() * 1000.0),
                "jobs_per_s": round1(args.jobs as f64 / wall.as_secs_f64()),
            })
        );
    }
    sink.stop().await;
    store.close().await;
    Ok(())
}

async fn done_count(queue: &Queue) -> anyhow::Result<i64> {
    Ok(queue
        .counts()
        .await?
        .into_iter()
        .find(|(state, _)| *state == JobState::Done)
        .map_or(0, |(_, n)| n))
}
