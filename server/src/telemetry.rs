//! Logging setup: one `tracing` subscriber for the whole process, pretty for people or JSON for
//! log pipelines. It owns the output format only; what to log is decided where things happen.

use tracing_subscriber::{fmt, prelude::*, EnvFilter};

use crate::config::{LogFormat, LogSettings};

/// Install the global subscriber. Returns an error naming the bad filter when `log.level` is invalid.
/// A second call (tests start several servers in one process) keeps the first subscriber.
pub fn init(settings: &LogSettings) -> anyhow::Result<()> {
    let filter = EnvFilter::try_new(&settings.level).map_err(|e| {
        anyhow::anyhow!(
            "log.level {:?} is not a valid filter ({e}); use e.g. \"info\" or \"info,mudmap=debug\"",
            settings.level
        )
    })?;
    let registry = tracing_subscriber::registry().with(filter);
    let result = match settings.format {
        LogFormat::Pretty => registry
            .with(fmt::layer().with_target(true).with_writer(std::io::stderr))
            .try_init(),
        LogFormat::Json => registry
            .with(
                fmt::layer()
                    .json()
                    .flatten_event(true)
                    .with_current_span(true)
                    .with_span_list(false)
                    .with_writer(std::io::stderr),
            )
            .try_init(),
    };
    // Already initialised (e.g. several test servers in one process): keep the first one.
    let _ = result;
    Ok(())
}
