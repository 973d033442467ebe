//! System status: who this Mudmap instance is and whether its database answers. The page proves
//! the whole path works — server rendering, hydration, and a server-function round trip that
//! reaches the database.

use leptos::prelude::*;

use crate::ui::page::PageHeader;
use serde::{Deserialize, Serialize};

use crate::error::AppError;

/// What `get_server_status` reports.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ServerStatus {
    /// Mudmap version, e.g. `0.1.0`.
    pub version: String,
    /// `SQLite` or `PostgreSQL`.
    pub database: String,
    /// Newest applied migration.
    pub schema_version: i64,
    /// Random id minted when the database was first initialised.
    pub instance_id: String,
    pub uptime_secs: u64,
    /// Server clock, Unix milliseconds.
    pub server_time_ms: i64,
    /// One database round trip, measured for this request, in microseconds.
    pub database_latency_us: u64,
    /// Devices the SSH engine manages, and how many it holds a live connection to.
    pub engine_devices: usize,
    pub engine_connected: usize,
}

/// Report the instance's status, touching the database on the way.
#[server(prefix = "/api", endpoint = "system/status")]
pub async fn get_server_status() -> Result<ServerStatus, AppError> {
    let services = crate::services::services()?;
    crate::services::respond(services.system.status().await)
}

/// `/system`: instance status with a live check.
#[component]
pub fn SystemPage() -> impl IntoView {
    let check = ServerAction::<GetServerStatus>::new();
    let pending = check.pending();
    let result = check.value();
    // Counts clicks in the browser only: proof that the page hydrated.
    let (clicks, set_clicks) = signal(0u32);

    view! {
        <PageHeader title="System" subtitle="This Mudmap instance and its database."/>
        <section class="card" aria-labelledby="check-heading">
            <h2 id="check-heading">"Server check"</h2>
            <p class="muted">
                "Asks the server for its status; the answer includes a fresh database round trip."
            </p>
            <div class="row">
                <button
                    class="btn btn-primary"
                    on:click=move |_| {
                        set_clicks.update(|n| *n += 1);
                        check.dispatch(GetServerStatus {});
                    }
                    disabled=move || pending.get()
                >
                    {move || if pending.get() { "Checking…" } else { "Check server" }}
                </button>
                <span class="muted" data-testid="check-count">
                    {move || match clicks.get() {
                        0 => String::new(),
                        1 => "1 check".to_owned(),
                        n => format!("{n} checks"),
                    }}
                </span>
            </div>
            <div aria-live="polite">
                {move || result.get().map(|r| match r {
                    Ok(status) => view! { <StatusTable status/> }.into_any(),
                    Err(e) => view! { <p class="field-error" role="alert">{e.to_string()}</p> }.into_any(),
                })}
            </div>
        </section>
    }
}

#[component]
fn StatusTable(status: ServerStatus) -> impl IntoView {
    let uptime = format_duration(status.uptime_secs);
    let latency = format!("{:.2} ms", status.database_latency_us as f64 / 1000.0);
    view! {
        <dl class="facts" aria-label="Server status">
            <dt>"Status"</dt>
            <dd><span class="badge badge-online">"Server reachable"</span></dd>
            <dt>"Version"</dt>
            <dd>{status.version}</dd>
            <dt>"Database"</dt>
            <dd>{format!("{} (schema {})", status.database, status.schema_version)}</dd>
            <dt>"Database round trip"</dt>
            <dd>{latency}</dd>
            <dt>"SSH engine"</dt>
            <dd>{format!("{} devices, {} connected", status.engine_devices, status.engine_connected)}</dd>
            <dt>"Instance"</dt>
            <dd><code>{status.instance_id}</code></dd>
            <dt>"Uptime"</dt>
            <dd>{uptime}</dd>
        </dl>
    }
}

/// `93784` → `1d 2h 3m`; under a minute → `42s`.
pub fn format_duration(secs: u64) -> String {
    let (d, h, m, s) = (secs / 86_400, secs / 3_600 % 24, secs / 60 % 60, secs % 60);
    match (d, h, m) {
        (0, 0, 0) => format!("{s}s"),
        (0, 0, _) => format!("{m}m {s}s"),
        (0, _, _) => format!("{h}h {m}m"),
        _ => format!("{d}d {h}h {m}m"),
    }
}

#[cfg(test)]
mod tests {
    use super::format_duration;

    #[test]
    fn durations_read_like_uptime() {
        assert_eq!(format_duration(42), "42s");
        assert_eq!(format_duration(125), "2m 5s");
        assert_eq!(format_duration(3_725), "1h 2m");
        assert_eq!(format_duration(93_784), "1d 2h 3m");
    }
}
