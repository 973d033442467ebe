//! The in-process worker: one dispatcher task that claims due jobs in batches (never more than
//! it has free slots for) and one task per running attempt, each renewing its lease until the
//! handler returns.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{watch, Semaphore};
use tokio::task::JoinSet;
use tracing::Instrument;

use super::sql::{self, Claimed};
use super::{backoff, JobContext, JobError, JobHandler, Queue};
use crate::store::{now_ms, Backend};

/// How a worker behaves. The defaults suit production; tests shorten the times.
#[derive(Debug, Clone)]
pub struct WorkerConfig {
    /// Attempts running at once in this process.
    pub concurrency: usize,
    /// How often to look for due jobs when nothing wakes the worker.
    pub poll_interval: Duration,
    /// How long a claim is valid without renewal; a dead worker's jobs return after this.
    pub lease: Duration,
    /// First retry delay; doubles per attempt.
    pub backoff_base: Duration,
    pub backoff_cap: Duration,
    /// Finished jobs are deleted after this long.
    pub keep_done: Duration,
    /// Identifies this worker in leases (diagnostics).
    pub name: String,
}

impl Default for WorkerConfig {
    fn default() -> Self {
        Self {
            concurrency: 16,
            poll_interval: Duration::from_secs(5),
            lease: Duration::from_secs(60),
            backoff_base: Duration::from_secs(10),
            backoff_cap: Duration::from_secs(3600),
            keep_done: Duration::from_secs(7 * 24 * 3600),
            name: format!("worker-{}", std::process::id()),
        }
    }
}

/// Handlers by job kind.
#[derive(Default, Clone)]
pub struct Registry {
    handlers: HashMap<&'static str, Arc<dyn JobHandler>>,
}

impl Registry {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn register(&mut self, kind: &'static str, handler: Arc<dyn JobHandler>) -> &mut Self {
        self.handlers.insert(kind, handler);
        self
    }
}

/// A running worker. Stop it with [`Worker::shutdown`]; to stop claiming earlier (as soon as the
/// server's shutdown begins, while HTTP requests drain), call [`Worker::begin_shutdown`] or a
/// [`ShutdownTrigger`] first.
pub struct Worker {
    /// `Some(grace)` once shutdown has begun.
    stop: Arc<watch::Sender<Option<Duration>>>,
    dispatcher: tokio::task::JoinHandle<()>,
}

/// Begins a worker's shutdown from elsewhere (e.g. the HTTP server's shutdown signal) without
/// owning the worker. Cheap to clone.
#[derive(Clone)]
pub struct ShutdownTrigger {
    stop: Arc<watch::Sender<Option<Duration>>>,
}

impl ShutdownTrigger {
    /// See [`Worker::begin_shutdown`].
    pub fn begin(&self, grace: Duration) {
        begin(&self.stop, grace);
    }
}

/// Record that shutdown has begun with `grace`; the first call wins, later ones change nothing.
fn begin(stop: &watch::Sender<Option<Duration>>, grace: Duration) {
    let begun = stop.send_if_modified(|state| {
        if state.is_some() {
            return false;
        }
        *state = Some(grace);
        true
    });
    if begun {
        tracing::info!(
            grace_ms = grace.as_millis(),
            "job worker stops claiming; running jobs may finish"
        );
    }
}

struct Shared {
    queue: Queue,
    registry: Registry,
    config: WorkerConfig,
    /// Unique per worker start, so two workers of one process never share leases.
    owner: String,
}

impl Worker {
    /// Start claiming and running jobs.
    pub fn start(queue: Queue, registry: Registry, config: WorkerConfig) -> Self {
        let owner = format!(
            "{}-{}",
            config.name,
            &uuid::Uuid::new_v4().simple().to_string()[..8]
        );
        let (stop, stop_rx) = watch::channel(None);
        let stop = Arc::new(stop);
        if queue.store().backend() == Backend::Postgres {
            super::listen::spawn(queue.store().clone(), queue.wake_handle(), stop_rx.clone());
        }
        let shared = Arc::new(Shared {
            queue,
            registry,
            config,
            owner,
        });
        let dispatcher = tokio::spawn(
            dispatch(shared.clone(), stop_rx)
                .instrument(tracing::info_span!("jobs", worker = %shared.owner)),
        );
        Self { stop, dispatcher }
    }

    /// Stop at once without handing anything back, as a crash would: running attempts are
    /// dropped and their jobs return to the queue only when their leases expire.
    pub fn kill(self) {
        self.dispatcher.abort();
    }

    /// Stop claiming now and give running attempts `grace` (counted from now) to finish; those
    /// still running then are handed back to the queue. Returns at once: [`Worker::shutdown`]
    /// waits for the end. Calling it again changes nothing.
    pub fn begin_shutdown(&self, grace: Duration) {
        begin(&self.stop, grace);
    }

    /// A handle that begins this worker's shutdown, for a task that does not own the worker.
    pub fn shutdown_trigger(&self) -> ShutdownTrigger {
        ShutdownTrigger {
            stop: self.stop.clone(),
        }
    }

    /// Stop claiming, give running attempts until `grace` to finish, then hand the rest back to
    /// the queue (not counted as attempts) so another start picks them up at once. If shutdown
    /// has already begun ([`Worker::begin_shutdown`]), its grace stands and this only waits.
    pub async fn shutdown(self, grace: Duration) {
        begin(&self.stop, grace);
        let mut dispatcher = self.dispatcher;
        // The dispatcher waits for its attempts itself; `grace` bounds that wait, plus a margin
        // for the release queries.
        if tokio::time::timeout(grace + Duration::from_secs(5), &mut dispatcher)
            .await
            .is_err()
        {
            dispatcher.abort();
        }
    }
}

async fn dispatch(shared: Arc<Shared>, mut stop: watch::Receiver<Option<Duration>>) {
    let slots = Arc::new(Semaphore::new(shared.config.concurrency.max(1)));
    let wake = shared.queue.wake_handle();
    let mut running: JoinSet<()> = JoinSet::new();
    let mut in_flight: HashMap<tokio::task::Id, Claimed> = HashMap::new();
    let mut last_prune = tokio::time::Instant::now();
    let mut failures = 0u32;
    let lease_ms = i64::try_from(shared.config.lease.as_millis()).unwrap_or(60_000);

    'outer: loop {
        // Reap finished attempts.
        while let Some(done) = running.try_join_next_with_id() {
            let id = match done {
                Ok((id, ())) => id,
                Err(e) => e.id(),
            };
            in_flight.remove(&id);
        }
        if stop.borrow().is_some() {
            break;
        }
        // Wait for a free slot (or stop).
        let first = tokio::select! {
            permit = slots.clone().acquire_owned() => match permit {
                Ok(permit) => permit,
                Err(_) => break,
            },
            _ = stop.changed() => break,
            Some(done) = running.join_next_with_id(), if !running.is_empty() => {
                let id = match done { Ok((id, ())) => id, Err(e) => e.id() };
                in_flight.remove(&id);
                continue;
            }
        };
        let mut permits = vec![first];
        while permits.len() < 64 {
            match slots.clone().try_acquire_owned() {
                Ok(permit) => permits.push(permit),
                Err(_) => break,
            }
        }
        if stop.borrow().is_some() {
            // Shutdown began while this loop was under way: claim nothing more.
            break;
        }
        let limit = u32::try_from(permits.len()).unwrap_or(1);
        let claimed = match sql::claim(
            shared.queue.store(),
            &shared.owner,
            limit,
            lease_ms,
            now_ms(),
        )
        .await
        {
            Ok(claimed) => {
                failures = 0;
                claimed
            }
            Err(error) => {
                failures = failures.saturating_add(1);
                let pause = backoff(
                    failures,
                    Duration::from_millis(200),
                    Duration::from_secs(30),
                );
                tracing::warn!(%error, retry_in_ms = pause.as_millis(), "cannot claim jobs; is the database reachable?");
                drop(permits);
                tokio::select! {
                    () = tokio::time::sleep(pause) => {}
                    _ = stop.changed() => break 'outer,
                }
                continue;
            }
        };
        if stop.borrow().is_some() {
            // Shutdown began while the claim was in flight (on SQLite it may have waited for the
            // write lock behind an enqueue made after the signal): run none of it.
            release_all(&shared, claimed.iter()).await;
            break;
        }
        let got = claimed.len();
        for (job, permit) in claimed.into_iter().zip(permits.drain(..)) {
            let shared = shared.clone();
            let span = tracing::info_span!("job", job.id = %job.id, job.kind = %job.kind, job.attempt = job.attempts);
            let record = job.clone();
            let handle = running.spawn(
                async move {
                    run_attempt(&shared, job).await;
                    drop(permit);
                }
                .instrument(span),
            );
            in_flight.insert(handle.id(), record);
        }
        drop(permits);
        if last_prune.elapsed() > Duration::from_secs(3600) {
            last_prune = tokio::time::Instant::now();
            let keep = i64::try_from(shared.config.keep_done.as_millis()).unwrap_or(i64::MAX);
            match sql::prune(shared.queue.store(), now_ms().saturating_sub(keep)).await {
                Ok(0) => {}
                Ok(n) => tracing::info!(deleted = n, "pruned finished jobs"),
                Err(error) => tracing::warn!(%error, "cannot prune finished jobs"),
            }
        }
        if got == usize::try_from(limit).unwrap_or(usize::MAX) {
            // A full batch: there is probably more to do right away.
            continue;
        }
        // Nothing (more) due: sleep until woken, the poll interval, or stop.
        tokio::select! {
            () = wake.notified() => {}
            () = tokio::time::sleep(shared.config.poll_interval) => {}
            _ = stop.changed() => break,
        }
    }

    // Shutdown: let running attempts finish within the grace, then abort them and hand them back.
    if !running.is_empty() {
        tracing::info!(
            running = running.len(),
            "waiting for running jobs to finish"
        );
    }
    let drain = async {
        while let Some(done) = running.join_next_with_id().await {
            let id = match done {
                Ok((id, ())) => id,
                Err(e) => e.id(),
            };
            in_flight.remove(&id);
        }
    };
    let grace = stop.borrow().unwrap_or(Duration::ZERO);
    if tokio::time::timeout(grace, drain).await.is_err() {
        running.abort_all();
        release_all(&shared, in_flight.values()).await;
    }
}

/// Hand claimed jobs back to the queue without counting the attempt, so the next start runs them
/// at once; a job whose release fails waits for its lease to expire instead.
async fn release_all<'a>(shared: &Shared, jobs: impl Iterator<Item = &'a Claimed>) {
    let now = now_ms();
    for job in jobs {
        match sql::release(shared.queue.store(), job, &shared.owner, now).await {
            Ok(true) => tracing::info!(job.id = %job.id, "released unfinished job to the queue"),
            Ok(false) => {}
            Err(error) => {
                tracing::warn!(job.id = %job.id, %error, "cannot release job; its lease will expire")
            }
        }
    }
}

async fn run_attempt(shared: &Shared, job: Claimed) {
    let store = shared.queue.store();
    let attempt = u32::try_from(job.attempts).unwrap_or(u32::MAX);
    let max_attempts = u32::try_from(job.max_attempts).unwrap_or(1);
    if attempt > max_attempts {
        // Only reachable through expired leases: the job was claimed max_attempts times and its
        // worker never reported back.
        let message = format!(
            "gave up after {max_attempts} attempts: the worker running it stopped each time (crash or kill)"
        );
        record(shared, &job, Err(JobError::Permanent(message))).await;
        return;
    }
    let Some(handler) = shared.registry.handlers.get(job.kind.as_str()).cloned() else {
        let message = format!(
            "no handler for jobs of kind {:?} in this Mudmap version",
            job.kind
        );
        record(shared, &job, Err(JobError::Permanent(message))).await;
        return;
    };
    let context = JobContext {
        id: job.id.clone(),
        kind: job.kind.clone(),
        payload: serde_json::from_str(&job.payload).unwrap_or(serde_json::Value::Null),
        attempt,
        max_attempts,
        org_id: job.org_id.clone(),
    };
    let lease = shared.config.lease;
    let renew_every = lease / 3;
    let work = handler.run(&context);
    tokio::pin!(work);
    let outcome = loop {
        tokio::select! {
            outcome = &mut work => break outcome,
            () = tokio::time::sleep(renew_every) => {
                let until = now_ms().saturating_add(i64::try_from(lease.as_millis()).unwrap_or(60_000));
                match sql::renew(store, &job, &shared.owner, until).await {
                    Ok(true) => {}
                    Ok(false) => {
                        tracing::warn!("lease lost: another worker has taken this job over; abandoning this attempt");
                        return;
                    }
                    Err(error) => tracing::warn!(%error, "cannot renew the lease"),
                }
            }
        }
    };
    record(shared, &job, outcome).await;
}

async fn record(shared: &Shared, job: &Claimed, outcome: Result<(), JobError>) {
    let store = shared.queue.store();
    let now = now_ms();
    let result = match &outcome {
        Ok(()) => {
            tracing::debug!("job done");
            sql::complete(store, job, &shared.owner, now).await
        }
        Err(error) => {
            let attempt = u32::try_from(job.attempts).unwrap_or(u32::MAX);
            let retry_at = match error {
                JobError::Retry(_) if job.attempts < job.max_attempts => {
                    let delay = backoff(
                        attempt,
                        shared.config.backoff_base,
                        shared.config.backoff_cap,
                    );
                    Some(now.saturating_add(i64::try_from(delay.as_millis()).unwrap_or(0)))
                }
                _ => None,
            };
            match retry_at {
                Some(at) => tracing::warn!(
                    error = %error,
                    retry_in_ms = at - now,
                    attempts = job.attempts,
                    max_attempts = job.max_attempts,
                    "job attempt failed; will retry"
                ),
                None => tracing::error!(
                    error = %error,
                    attempts = job.attempts,
                    "job failed; an admin can retry it"
                ),
            }
            sql::fail(store, job, &shared.owner, &error.to_string(), retry_at, now).await
        }
    };
    match result {
        Ok(true) => {}
        Ok(false) => tracing::warn!(
            "job outcome not recorded: the lease had expired and another worker owns the job"
        ),
        Err(error) => {
            tracing::error!(%error, "cannot record the job outcome; it will run again when its lease expires")
        }
    }
}
