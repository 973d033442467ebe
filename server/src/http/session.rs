//! Who is calling: resolves the session cookie once per request into an [`app::services::Caller`]
//! in the request's extensions (server functions read it from there), records the client address,
//! and sends signed-out visitors of a page to the sign-in page.

use std::net::SocketAddr;

use axum::extract::{ConnectInfo, Request, State};
use axum::http::{header, Method, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Redirect, Response};

use app::services::{ClientInfo, SessionStage};

use crate::accounts::sessions::token_from_cookies;
use crate::state::AppState;

/// Pages anyone may open.
const PUBLIC_PAGES: &[&str] = &[
    "/login",
    "/register",
    "/verify-email",
    "/forgot-password",
    "/reset-password",
    "/invite",
    "/design",
];

pub async fn resolve_caller(
    State(state): State<AppState>,
    mut request: Request,
    next: Next,
) -> Response {
    let addr = request
        .extensions()
        .get::<ConnectInfo<SocketAddr>>()
        .map(|ConnectInfo(addr)| addr.ip().to_string())
        .unwrap_or_default();
    request.extensions_mut().insert(ClientInfo { addr });

    let token = request
        .headers()
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .find_map(|value| token_from_cookies(value).map(str::to_owned));
    let mut stage = None;
    if let Some(token) = token {
        match state.sessions.resolve(&token).await {
            Ok(Some(caller)) => {
                stage = Some(caller.stage);
                tracing::Span::current().record("user.id", caller.user_id.as_str());
                request.extensions_mut().insert(caller);
            }
            Ok(None) => {}
            Err(error) => {
                tracing::error!(%error, "cannot read the session");
                return (
                    StatusCode::SERVICE_UNAVAILABLE,
                    "The database is not answering. Try again in a moment.",
                )
                    .into_response();
            }
        }
    }

    if is_page_request(&request) {
        let path = request.uri().path();
        let public = PUBLIC_PAGES
            .iter()
            .any(|p| path == *p || path.starts_with(&format!("{p}/")));
        if !public && stage != Some(SessionStage::Full) {
            let target = request.uri().path_and_query().map_or("/", |pq| pq.as_str());
            let login = if target == "/" {
                "/login".to_owned()
            } else {
                format!("/login?next={}", encode_component(target))
            };
            return Redirect::to(&login).into_response();
        }
    }
    next.run(request).await
}

/// A browser navigation to a page (not an API call, an asset or a probe).
fn is_page_request(request: &Request) -> bool {
    if request.method() != Method::GET && request.method() != Method::HEAD {
        return false;
    }
    let path = request.uri().path();
    let last = path.rsplit('/').next().unwrap_or_default();
    !(path.starts_with("/api/")
        || path.starts_with("/pkg/")
        || path == "/healthz"
        || path == "/readyz"
        || last.contains('.'))
}

/// Percent-encode everything but unreserved characters and `/`.
fn encode_component(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for byte in text.bytes() {
        if byte.is_ascii_alphanumeric() || matches!(byte, b'-' | b'_' | b'.' | b'~' | b'/') {
            out.push(char::from(byte));
        } else {
            out.push_str(&format!("%{byte:02X}"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn next_targets_are_encoded() {
        assert_eq!(
            encode_component("/settings/members?q=a b&x=1"),
            "/settings/members%3Fq%3Da%20b%26x%3D1"
        );
    }
}
