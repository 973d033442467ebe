//! Liveness and readiness probes for load balancers and orchestrators.

use std::time::Duration;

use axum::extract::State;
use axum::http::StatusCode;
use axum::Json;
use serde_json::{json, Value};

use crate::state::AppState;

/// `/healthz`: the process is up and serving HTTP. Touches nothing else.
pub async fn healthz() -> Json<Value> {
    Json(json!({ "status": "ok" }))
}

/// `/readyz`: the database answers within two seconds.
pub async fn readyz(State(state): State<AppState>) -> (StatusCode, Json<Value>) {
    let started = std::time::Instant::now();
    match tokio::time::timeout(Duration::from_secs(2), state.store.ping()).await {
        Ok(Ok(())) => (
            StatusCode::OK,
            Json(json!({
                "status": "ready",
                "database": state.store.backend().name(),
                "database_latency_ms": started.elapsed().as_secs_f64() * 1000.0,
            })),
        ),
        Ok(Err(error)) => {
            tracing::warn!(%error, "readiness check: database error");
            unavailable("database error")
        }
        Err(_) => {
            tracing::warn!("readiness check: database did not answer within 2 s");
            unavailable("database timeout")
        }
    }
}

fn unavailable(reason: &str) -> (StatusCode, Json<Value>) {
    (
        StatusCode::SERVICE_UNAVAILABLE,
        Json(json!({ "status": "unavailable", "reason": reason })),
    )
}
