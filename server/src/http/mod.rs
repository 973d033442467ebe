//! The HTTP edge: the axum router with Leptos pages and server functions, health probes, embedded
//! assets, and the middleware every request passes (request id, tracing, compression, security
//! headers). Handlers here are thin: they call services and map errors; no logic lives here.

pub mod assets;
mod csrf;
mod events;
mod health;
mod session;
mod trace;

use axum::extract::{Path, Request, State};
use axum::http::{header, HeaderName, HeaderValue};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use leptos::prelude::provide_context;
use leptos_axum::{generate_route_list, LeptosRoutes};
use tower::ServiceBuilder;
use tower_http::compression::CompressionLayer;
use tower_http::request_id::{MakeRequestUuid, PropagateRequestIdLayer, SetRequestIdLayer};
use tower_http::set_header::SetResponseHeaderLayer;

use crate::state::AppState;
use assets::Caching;

/// Build the whole application router.
pub fn router(state: AppState) -> Router {
    let routes = generate_route_list(app::App);
    let context = {
        let services = state.services.clone();
        move || provide_context(services.clone())
    };
    let shell = {
        let options = state.leptos.clone();
        let assets = app::ShellAssets {
            stylesheet: state.assets.stylesheet.clone(),
        };
        move || app::shell(options.clone(), assets.clone())
    };
    let not_found = leptos_axum::render_app_to_stream_with_context(context.clone(), shell.clone());
    let request_id = HeaderName::from_static(trace::REQUEST_ID);

    Router::new()
        .route("/healthz", get(health::healthz))
        .route("/readyz", get(health::readyz))
        .route("/pkg/{*path}", get(pkg_file))
        .route("/api/events", get(events::events))
        .leptos_routes_with_context(&state, routes, context, shell)
        .fallback(move |State(_): State<AppState>, request: Request| {
            let not_found = not_found.clone();
            async move {
                let path = request.uri().path().trim_start_matches('/').to_owned();
                match assets::serve(&path, Caching::Revalidate, request.headers()) {
                    Some(response) => response,
                    None => not_found(request).await,
                }
            }
        })
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            session::resolve_caller,
        ))
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            csrf::same_origin_writes,
        ))
        .layer(
            ServiceBuilder::new()
                .layer(SetRequestIdLayer::new(request_id.clone(), MakeRequestUuid))
                .layer(axum::middleware::from_fn(trace::trace_requests))
                .layer(PropagateRequestIdLayer::new(request_id))
                .layer(CompressionLayer::new())
                .layer(SetResponseHeaderLayer::if_not_present(
                    header::X_CONTENT_TYPE_OPTIONS,
                    HeaderValue::from_static("nosniff"),
                ))
                .layer(SetResponseHeaderLayer::if_not_present(
                    header::X_FRAME_OPTIONS,
                    HeaderValue::from_static("DENY"),
                ))
                .layer(SetResponseHeaderLayer::if_not_present(
                    header::REFERRER_POLICY,
                    HeaderValue::from_static("same-origin"),
                )),
        )
        .with_state(state)
}

/// `/pkg/*`: content-hashed front-end files.
async fn pkg_file(Path(path): Path<String>, request: Request) -> Response {
    match assets::serve(
        &format!("pkg/{path}"),
        Caching::Immutable,
        request.headers(),
    ) {
        Some(response) => response,
        None => (axum::http::StatusCode::NOT_FOUND, "no such asset").into_response(),
    }
}
