//! The durable job queue on both engines: outbox, claim, retry with backoff, dedup, delay, lease
//! expiry after a crash, graceful release, shutdown that stops claiming at once but lets a short
//! job finish, two workers never running one job twice, and (PostgreSQL) `LISTEN/NOTIFY` waking
//! another instance's worker.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::support::TestDbRef;
use mudmap::jobs::worker::Registry;
use mudmap::jobs::{
    Enqueued, JobContext, JobError, JobHandler, JobState, NewJob, Queue, Worker, WorkerConfig,
};
use mudmap::store::Store;

async fn queue(db: &TestDbRef) -> Queue {
    let store = Store::connect(&db.url, &db.settings.database)
        .await
        .unwrap();
    store.migrate().await.unwrap();
    Queue::new(store)
}

fn fast() -> WorkerConfig {
    WorkerConfig {
        concurrency: 4,
        poll_interval: Duration::from_millis(50),
        lease: Duration::from_secs(30),
        backoff_base: Duration::from_millis(60),
        backoff_cap: Duration::from_secs(2),
        ..WorkerConfig::default()
    }
}

/// Records every attempt; fails the first `fail_first` attempts of each job with a retryable
/// error, or every attempt with a permanent one.
#[derive(Default)]
struct Recorder {
    attempts: Mutex<Vec<(String, u32, Instant)>>,
    fail_first: u32,
    permanent: bool,
    hang: bool,
}

#[async_trait::async_trait]
impl JobHandler for Recorder {
    async fn run(&self, job: &JobContext) -> Result<(), JobError> {
        self.attempts
            .lock()
            .unwrap()
            .push((job.id.clone(), job.attempt, Instant::now()));
        if self.hang {
            std::future::pending::<()>().await;
        }
        if self.permanent {
            return Err(JobError::Permanent("this will never work".into()));
        }
        if job.attempt <= self.fail_first {
            return Err(JobError::Retry(format!("attempt {} failed", job.attempt)));
        }
        Ok(())
    }
}

impl Recorder {
    fn count(&self) -> usize {
        self.attempts.lock().unwrap().len()
    }
}

fn registry(handler: Arc<dyn JobHandler>) -> Registry {
    let mut registry = Registry::new();
    registry.register("test.job", handler);
    registry
}

async fn wait_state(queue: &Queue, id: &str, state: JobState) -> mudmap::jobs::JobRow {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let row = queue.get(id, None).await.unwrap().expect("job exists");
        if row.state == state {
            return row;
        }
        assert!(
            Instant::now() < deadline,
            "job {id} stuck in {:?} (wanted {state:?}): {row:?}",
            row.state
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

fn id_of(outcome: Enqueued) -> String {
    match outcome {
        Enqueued::New(id) => id,
        Enqueued::Duplicate => panic!("unexpected duplicate"),
    }
}

async fn enqueued_with_a_rolled_back_write_never_exists(db: &TestDbRef) {
    let queue = queue(db).await;
    let mut tx = queue.store().begin().await.unwrap();
    let id = id_of(
        queue
            .enqueue(
                &mut tx,
                NewJob::new("test.job", &serde_json::json!({"n": 1})),
            )
            .await
            .unwrap(),
    );
    tx.rollback().await.unwrap();
    assert!(queue.get(&id, None).await.unwrap().is_none());

    let mut tx = queue.store().begin().await.unwrap();
    let id = id_of(
        queue
            .enqueue(
                &mut tx,
                NewJob::new("test.job", &serde_json::json!({"n": 2})),
            )
            .await
            .unwrap(),
    );
    queue.commit(tx).await.unwrap();
    let row = queue.get(&id, None).await.unwrap().unwrap();
    assert_eq!(row.state, JobState::Queued);
    assert_eq!(row.payload, r#"{"n":2}"#);
}

async fn a_job_runs_once_and_is_done(db: &TestDbRef) {
    let queue = queue(db).await;
    let recorder = Arc::new(Recorder::default());
    let worker = Worker::start(queue.clone(), registry(recorder.clone()), fast());
    let id = id_of(
        queue
            .enqueue_now(NewJob::new("test.job", &serde_json::json!({"user": "u1"})))
            .await
            .unwrap(),
    );
    let row = wait_state(&queue, &id, JobState::Done).await;
    assert_eq!(row.attempts, 1);
    assert!(row.finished_at.is_some());
    // Nothing runs it again.
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(recorder.count(), 1);
    worker.shutdown(Duration::from_secs(1)).await;
}

async fn failures_retry_with_growing_backoff_then_succeed(db: &TestDbRef) {
    let queue = queue(db).await;
    let recorder = Arc::new(Recorder {
        fail_first: 2,
        ..Recorder::default()
    });
    let worker = Worker::start(queue.clone(), registry(recorder.clone()), fast());
    let id = id_of(
        queue
            .enqueue_now(NewJob::new("test.job", &serde_json::json!({})))
            .await
            .unwrap(),
    );
    let row = wait_state(&queue, &id, JobState::Done).await;
    assert_eq!(row.attempts, 3);
    let attempts = recorder.attempts.lock().unwrap().clone();
    assert_eq!(
        attempts.iter().map(|a| a.1).collect::<Vec<_>>(),
        vec![1, 2, 3]
    );
    // backoff base 60 ms ±20 %: the second gap is about twice the first.
    let first_gap = attempts[1].2 - attempts[0].2;
    let second_gap = attempts[2].2 - attempts[1].2;
    assert!(first_gap >= Duration::from_millis(45), "{first_gap:?}");
    assert!(second_gap >= Duration::from_millis(95), "{second_gap:?}");
    worker.shutdown(Duration::from_secs(1)).await;
}

async fn exhausted_jobs_fail_with_their_error_and_can_be_retried(db: &TestDbRef) {
    let queue = queue(db).await;
    let recorder = Arc::new(Recorder {
        fail_first: 3,
        ..Recorder::default()
    });
    let worker = Worker::start(queue.clone(), registry(recorder.clone()), fast());
    let id = id_of(
        queue
            .enqueue_now(NewJob::new("test.job", &serde_json::json!({})).max_attempts(2))
            .await
            .unwrap(),
    );
    let row = wait_state(&queue, &id, JobState::Failed).await;
    assert_eq!(row.attempts, 2);
    assert_eq!(row.last_error.as_deref(), Some("attempt 2 failed"));
    assert_eq!(recorder.count(), 2);
    let failed = queue.list(None, Some(JobState::Failed), 10).await.unwrap();
    assert_eq!(failed.len(), 1);

    // Retrying starts a fresh set of attempts (attempt numbers restart at 1, and the handler
    // fails attempts 1..=3, so with max 2 it fails again — proving it really ran twice more).
    assert!(queue.retry(&id, None).await.unwrap());
    let row = wait_state(&queue, &id, JobState::Failed).await;
    assert_eq!(recorder.count(), 4);
    assert_eq!(row.attempts, 2);
    // Retrying a job that is not failed does nothing.
    assert!(!queue.retry("no-such-job", None).await.unwrap());
    worker.shutdown(Duration::from_secs(1)).await;
}

async fn permanent_errors_and_unknown_kinds_fail_at_once(db: &TestDbRef) {
    let queue = queue(db).await;
    let recorder = Arc::new(Recorder {
        permanent: true,
        ..Recorder::default()
    });
    let worker = Worker::start(queue.clone(), registry(recorder.clone()), fast());
    let id = id_of(
        queue
            .enqueue_now(NewJob::new("test.job", &serde_json::json!({})))
            .await
            .unwrap(),
    );
    let row = wait_state(&queue, &id, JobState::Failed).await;
    assert_eq!(row.attempts, 1);
    assert_eq!(row.last_error.as_deref(), Some("this will never work"));

    let id = id_of(
        queue
            .enqueue_now(NewJob::new("test.unknown", &serde_json::json!({})))
            .await
            .unwrap(),
    );
    let row = wait_state(&queue, &id, JobState::Failed).await;
    assert!(
        row.last_error.unwrap().contains("no handler"),
        "unknown kinds say why"
    );
    worker.shutdown(Duration::from_secs(1)).await;
}

async fn a_dedup_key_allows_one_pending_job(db: &TestDbRef) {
    let queue = queue(db).await;
    let job = || NewJob::new("test.job", &serde_json::json!({})).dedup("mail:verify:u1");
    let first = id_of(queue.enqueue_now(job()).await.unwrap());
    assert_eq!(queue.enqueue_now(job()).await.unwrap(), Enqueued::Duplicate);
    // Another key is independent.
    let other = NewJob::new("test.job", &serde_json::json!({})).dedup("mail:verify:u2");
    assert!(matches!(
        queue.enqueue_now(other).await.unwrap(),
        Enqueued::New(_)
    ));
    // Once the first is done, the key is free again.
    let recorder = Arc::new(Recorder::default());
    let worker = Worker::start(queue.clone(), registry(recorder.clone()), fast());
    wait_state(&queue, &first, JobState::Done).await;
    assert!(matches!(
        queue.enqueue_now(job()).await.unwrap(),
        Enqueued::New(_)
    ));
    worker.shutdown(Duration::from_secs(1)).await;
}

async fn delayed_jobs_wait_for_their_time(db: &TestDbRef) {
    let queue = queue(db).await;
    let recorder = Arc::new(Recorder::default());
    let worker = Worker::start(queue.clone(), registry(recorder.clone()), fast());
    let enqueued_at = Instant::now();
    let id = id_of(
        queue
            .enqueue_now(
                NewJob::new("test.job", &serde_json::json!({})).delay(Duration::from_millis(400)),
            )
            .await
            .unwrap(),
    );
    wait_state(&queue, &id, JobState::Done).await;
    let ran_at = recorder.attempts.lock().unwrap()[0].2;
    assert!(ran_at - enqueued_at >= Duration::from_millis(390));
    worker.shutdown(Duration::from_secs(1)).await;
}

async fn a_crashed_workers_job_is_claimed_again_after_its_lease(db: &TestDbRef) {
    let queue = queue(db).await;
    let hanging = Arc::new(Recorder {
        hang: true,
        ..Recorder::default()
    });
    // Short, but long enough that the survivor finishes its own attempt well inside it.
    let short_lease = WorkerConfig {
        lease: Duration::from_secs(2),
        ..fast()
    };
    let crashing = Worker::start(
        queue.clone(),
        registry(hanging.clone()),
        short_lease.clone(),
    );
    let id = id_of(
        queue
            .enqueue_now(NewJob::new("test.job", &serde_json::json!({})))
            .await
            .unwrap(),
    );
    wait_state(&queue, &id, JobState::Running).await;
    // Claimed is not yet started: kill only once the handler runs.
    crate::support::eventually(Duration::from_secs(20), || async {
        (hanging.count() == 1).then_some(())
    })
    .await;
    crashing.kill();
    let recorder = Arc::new(Recorder::default());
    let survivor = Worker::start(queue.clone(), registry(recorder.clone()), short_lease);
    let row = wait_state(&queue, &id, JobState::Done).await;
    assert_eq!(row.attempts, 2, "the crashed attempt counts");
    assert_eq!(hanging.count(), 1);
    assert_eq!(recorder.count(), 1);
    survivor.shutdown(Duration::from_secs(1)).await;
}

async fn shutdown_hands_unfinished_jobs_back(db: &TestDbRef) {
    let queue = queue(db).await;
    let hanging = Arc::new(Recorder {
        hang: true,
        ..Recorder::default()
    });
    let worker = Worker::start(queue.clone(), registry(hanging.clone()), fast());
    let id = id_of(
        queue
            .enqueue_now(NewJob::new("test.job", &serde_json::json!({})))
            .await
            .unwrap(),
    );
    wait_state(&queue, &id, JobState::Running).await;
    worker.shutdown(Duration::from_millis(100)).await;
    let row = queue.get(&id, None).await.unwrap().unwrap();
    assert_eq!(row.state, JobState::Queued, "{row:?}");
    assert_eq!(row.attempts, 0, "a released attempt is not counted");
    // The next start runs it at once, without waiting for a lease.
    let recorder = Arc::new(Recorder::default());
    let worker = Worker::start(queue.clone(), registry(recorder.clone()), fast());
    wait_state(&queue, &id, JobState::Done).await;
    worker.shutdown(Duration::from_secs(1)).await;
}

/// Takes `time` per job, then succeeds; records the ids it started and ran.
struct Slow {
    time: Duration,
    started: Mutex<Vec<String>>,
    ran: Mutex<Vec<String>>,
}

#[async_trait::async_trait]
impl JobHandler for Slow {
    async fn run(&self, job: &JobContext) -> Result<(), JobError> {
        self.started.lock().unwrap().push(job.id.clone());
        tokio::time::sleep(self.time).await;
        self.ran.lock().unwrap().push(job.id.clone());
        Ok(())
    }
}

async fn shutdown_stops_claiming_at_once_and_lets_a_short_job_finish(db: &TestDbRef) {
    let queue = queue(db).await;
    let slow = Arc::new(Slow {
        time: Duration::from_millis(800),
        started: Mutex::default(),
        ran: Mutex::default(),
    });
    // Only a wake-up (not the poll) makes this worker look for work.
    let config = WorkerConfig {
        poll_interval: Duration::from_secs(60),
        ..fast()
    };
    let worker = Worker::start(queue.clone(), registry(slow.clone()), config);
    let running = id_of(
        queue
            .enqueue_now(NewJob::new("test.job", &serde_json::json!({"n": 1})))
            .await
            .unwrap(),
    );
    wait_state(&queue, &running, JobState::Running).await;
    // Running in the database is not yet running in the worker (a claim that has committed may
    // still be on its way back to it, and shutdown releases what it has not started): wait for
    // the handler itself.
    for _ in 0..200 {
        if slow.started.lock().unwrap().contains(&running) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert!(
        slow.started.lock().unwrap().contains(&running),
        "the job never started"
    );

    // Shutdown begins (the server's signal arrived; HTTP requests are draining). A job enqueued
    // now, with a wake-up, is not claimed.
    let begun = Instant::now();
    let grace = Duration::from_secs(5);
    worker.begin_shutdown(grace);
    let later = id_of(
        queue
            .enqueue_now(NewJob::new("test.job", &serde_json::json!({"n": 2})))
            .await
            .unwrap(),
    );
    tokio::time::sleep(Duration::from_millis(300)).await;
    let row = queue.get(&later, None).await.unwrap().unwrap();
    assert_eq!(
        row.state,
        JobState::Queued,
        "claimed during shutdown: {row:?}"
    );

    // The running job finishes within the grace and is recorded done, not handed back.
    worker.shutdown(grace).await;
    assert!(
        begun.elapsed() < Duration::from_secs(4),
        "shutdown waited {:?} for an 800 ms job",
        begun.elapsed()
    );
    let row = queue.get(&running, None).await.unwrap().unwrap();
    assert_eq!(row.state, JobState::Done, "{row:?}");
    assert_eq!(row.attempts, 1);
    let row = queue.get(&later, None).await.unwrap().unwrap();
    assert_eq!(row.state, JobState::Queued, "{row:?}");
    assert_eq!(row.attempts, 0);
    assert_eq!(*slow.ran.lock().unwrap(), vec![running]);
}

/// Counts runs per job id.
#[derive(Default)]
struct Tally(Mutex<HashMap<String, u32>>);

#[async_trait::async_trait]
impl JobHandler for Tally {
    async fn run(&self, job: &JobContext) -> Result<(), JobError> {
        *self.0.lock().unwrap().entry(job.id.clone()).or_default() += 1;
        tokio::time::sleep(Duration::from_millis(1)).await;
        Ok(())
    }
}

async fn two_workers_never_run_one_job_twice(db: &TestDbRef) {
    const JOBS: usize = 400;
    let queue_a = queue(db).await;
    // The second worker has its own pool, as a second instance would.
    let queue_b = Queue::new(
        Store::connect(&db.url, &db.settings.database)
            .await
            .unwrap(),
    );
    let tally = Arc::new(Tally::default());
    let mut ids = Vec::with_capacity(JOBS);
    for chunk in 0..(JOBS / 50) {
        let mut tx = queue_a.store().begin().await.unwrap();
        for n in 0..50 {
            let job = NewJob::new("test.job", &serde_json::json!({ "n": chunk * 50 + n }));
            ids.push(id_of(queue_a.enqueue(&mut tx, job).await.unwrap()));
        }
        queue_a.commit(tx).await.unwrap();
    }
    let config = WorkerConfig {
        concurrency: 8,
        ..fast()
    };
    let a = Worker::start(queue_a.clone(), registry(tally.clone()), config.clone());
    let b = Worker::start(queue_b.clone(), registry(tally.clone()), config);
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let done = queue_a
            .counts()
            .await
            .unwrap()
            .into_iter()
            .find(|(s, _)| *s == JobState::Done)
            .map_or(0, |(_, n)| n);
        if done == i64::try_from(JOBS).unwrap() {
            break;
        }
        assert!(Instant::now() < deadline, "only {done} of {JOBS} jobs done");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    a.shutdown(Duration::from_secs(1)).await;
    b.shutdown(Duration::from_secs(1)).await;
    let runs = tally.0.lock().unwrap().clone();
    assert_eq!(runs.len(), JOBS);
    assert!(
        runs.values().all(|&n| n == 1),
        "some job ran twice: {:?}",
        runs.iter().filter(|(_, &n)| n > 1).collect::<Vec<_>>()
    );
    for id in &ids {
        assert_eq!(runs.get(id), Some(&1));
    }
}

/// PostgreSQL: a job committed by one instance wakes the idle worker of another at once, through
/// `LISTEN/NOTIFY` (its 60 s poll would be far too late for the 10 s allowed).
async fn a_notification_wakes_the_worker_of_another_instance(db: &TestDbRef) {
    let queue_a = queue(db).await;
    // B has its own pool and its own in-process wake-up, as a second instance would.
    let queue_b = Queue::new(
        Store::connect(&db.url, &db.settings.database)
            .await
            .unwrap(),
    );
    let recorder = Arc::new(Recorder::default());
    let sleepy = WorkerConfig {
        poll_interval: Duration::from_secs(60),
        ..fast()
    };
    let b = Worker::start(queue_b, registry(recorder.clone()), sleepy);
    // Let B look for work once and start listening; from then on it sleeps until woken.
    tokio::time::sleep(Duration::from_secs(1)).await;
    for n in 0..2 {
        let enqueued_at = Instant::now();
        let mut tx = queue_a.store().begin().await.unwrap();
        let id = id_of(
            queue_a
                .enqueue(
                    &mut tx,
                    NewJob::new("test.job", &serde_json::json!({ "n": n })),
                )
                .await
                .unwrap(),
        );
        queue_a.commit(tx).await.unwrap();
        loop {
            let row = queue_a.get(&id, None).await.unwrap().unwrap();
            if row.state == JobState::Done {
                break;
            }
            assert!(
                enqueued_at.elapsed() < Duration::from_secs(10),
                "job {n} was not run by the other instance within 10 s: the notification did not wake it ({row:?})"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
    assert_eq!(recorder.count(), 2);
    b.shutdown(Duration::from_secs(1)).await;
}

on_postgres!(a_notification_wakes_the_worker_of_another_instance);

on_both_engines!(
    enqueued_with_a_rolled_back_write_never_exists,
    a_job_runs_once_and_is_done,
    failures_retry_with_growing_backoff_then_succeed,
    exhausted_jobs_fail_with_their_error_and_can_be_retried,
    permanent_errors_and_unknown_kinds_fail_at_once,
    a_dedup_key_allows_one_pending_job,
    delayed_jobs_wait_for_their_time,
    a_crashed_workers_job_is_claimed_again_after_its_lease,
    shutdown_hands_unfinished_jobs_back,
    shutdown_stops_claiming_at_once_and_lets_a_short_job_finish,
    two_workers_never_run_one_job_twice,
);
