//! One span and one log line per request, carrying the request id. This is the single place
//! request outcomes are logged. Only the path is recorded, never the query string, which may carry
//! tokens.

use std::time::Instant;

use axum::extract::Request;
use axum::middleware::Next;
use axum::response::Response;
use tracing::Instrument;

pub const REQUEST_ID: &str = "x-request-id";

pub async fn trace_requests(request: Request, next: Next) -> Response {
    let request_id = request
        .headers()
        .get(REQUEST_ID)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("-")
        .to_owned();
    let method = request.method().clone();
    let path = request.uri().path().to_owned();
    let span = tracing::info_span!(
        "http.request",
        http.method = %method,
        http.path = %path,
        request.id = %request_id,
        user.id = tracing::field::Empty,
    );
    let started = Instant::now();
    let response = next.run(request).instrument(span.clone()).await;
    let status = response.status().as_u16();
    let duration_ms = started.elapsed().as_secs_f64() * 1000.0;
    let _entered = span.enter();
    let routine = path.starts_with("/pkg/") || path == "/healthz" || path == "/readyz";
    if status >= 500 {
        tracing::error!(http.status = status, duration_ms, "request failed");
    } else if routine {
        tracing::debug!(http.status = status, duration_ms, "request");
    } else {
        tracing::info!(http.status = status, duration_ms, "request");
    }
    response
}
