//! PostgreSQL `LISTEN` for the queue's wake-ups: any instance that enqueues a job notifies
//! [`super::NOTIFY_CHANNEL`] on commit, and every instance's worker wakes at once. When the
//! listening connection fails, it reconnects with backoff; the worker's polling covers the gap.

use std::sync::Arc;
use std::time::Duration;

use sqlx::postgres::PgListener;
use tokio::sync::{watch, Notify};

use crate::store::Store;

pub(super) fn spawn(store: Store, wake: Arc<Notify>, mut stop: watch::Receiver<Option<Duration>>) {
    let Some(url) = store.url().map(str::to_owned) else {
        return;
    };
    tokio::spawn(async move {
        let mut failures = 0u32;
        loop {
            if stop.borrow().is_some() {
                return;
            }
            match listen(&url, &wake, &mut stop).await {
                Ok(()) => return,
                Err(error) => {
                    failures = failures.saturating_add(1);
                    let pause = super::backoff(
                        failures,
                        Duration::from_millis(500),
                        Duration::from_secs(30),
                    );
                    tracing::warn!(%error, retry_in_ms = pause.as_millis(), "job wake-up listener lost; polling until it is back");
                    tokio::select! {
                        () = tokio::time::sleep(pause) => {}
                        _ = stop.changed() => return,
                    }
                }
            }
        }
    });
}

async fn listen(
    url: &str,
    wake: &Notify,
    stop: &mut watch::Receiver<Option<Duration>>,
) -> Result<(), sqlx::Error> {
    let mut listener = PgListener::connect(url).await?;
    listener.listen(super::NOTIFY_CHANNEL).await?;
    // Jobs may have been enqueued while we were not listening.
    wake.notify_one();
    loop {
        tokio::select! {
            notification = listener.recv() => {
                notification?;
                wake.notify_one();
            }
            _ = stop.changed() => return Ok(()),
        }
    }
}
