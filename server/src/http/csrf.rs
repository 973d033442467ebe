//! Cross-site request forgery protection for every state-changing request (server functions
//! included): a browser always says where a request comes from — `Sec-Fetch-Site` in current
//! browsers, `Origin` on every cross-origin POST — and a request another site made is refused
//! before it reaches a handler. The session cookie is also `SameSite=Lax`, so a cross-site POST
//! carries no session in the first place; this check is the second, independent layer.
//! Requests with neither header (curl, scripts) cannot be forged by a web page and pass.
//! See `docs/decisions/0006-sessions-and-csrf.md`.

use axum::extract::{Request, State};
use axum::http::{header, Method, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use crate::state::AppState;

pub async fn same_origin_writes(
    State(state): State<AppState>,
    request: Request,
    next: Next,
) -> Response {
    if matches!(
        *request.method(),
        Method::GET | Method::HEAD | Method::OPTIONS
    ) {
        return next.run(request).await;
    }
    let headers = request.headers();
    let fetch_site = headers.get("sec-fetch-site").and_then(|v| v.to_str().ok());
    let origin = headers.get(header::ORIGIN).and_then(|v| v.to_str().ok());
    let host = headers.get(header::HOST).and_then(|v| v.to_str().ok());
    let allowed = match (fetch_site, origin) {
        (Some("same-origin" | "none"), _) => true,
        (Some(_), _) => false,
        (None, Some(origin)) => {
            origin == state.public_origin
                || host.is_some_and(|host| {
                    origin == format!("http://{host}") || origin == format!("https://{host}")
                })
        }
        (None, None) => true,
    };
    if allowed {
        next.run(request).await
    } else {
        tracing::warn!(
            origin = origin.unwrap_or("-"),
            sec_fetch_site = fetch_site.unwrap_or("-"),
            path = request.uri().path(),
            "cross-site write refused"
        );
        (
            StatusCode::FORBIDDEN,
            "This request came from another site and was refused. Use Mudmap's own pages.",
        )
            .into_response()
    }
}
