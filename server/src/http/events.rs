//! `GET /api/events`: server-sent events for the signed-in caller's organisation. Each device
//! health change is one `health` event (JSON: device_id, health, reason, at_ms); a drift mark set
//! or acknowledged is one `drift` event (JSON: device_id, marked, at_ms); a comment every
//! 15 s keeps proxies from closing an idle stream. Browsers' EventSource reconnects by itself
//! after a server restart.

use std::convert::Infallible;
use std::time::Duration;

use app::services::Caller;
use axum::extract::{Request, State};
use axum::http::StatusCode;
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use futures::stream;
use tokio::sync::broadcast::error::RecvError;

use crate::state::AppState;

pub async fn events(State(state): State<AppState>, request: Request) -> Response {
    let Some(org_id) = request
        .extensions()
        .get::<Caller>()
        .filter(|c| c.stage == app::services::SessionStage::Full)
        .and_then(|c| c.org.as_ref().map(|o| o.id.clone()))
    else {
        return (StatusCode::UNAUTHORIZED, "Sign in to follow your fleet.").into_response();
    };
    let receiver = state.live.subscribe();
    let stream = stream::unfold((receiver, org_id), |(mut receiver, org_id)| async move {
        loop {
            match receiver.recv().await {
                Ok(event) if event.org_id() == org_id => {
                    let sse = Event::default()
                        .event(event.name())
                        .json_data(event.data())
                        .unwrap_or_else(|_| Event::default().comment("unencodable event"));
                    return Some((Ok::<_, Infallible>(sse), (receiver, org_id)));
                }
                Ok(_) => continue,
                // Missed events: tell the page to reload what it shows.
                Err(RecvError::Lagged(_)) => {
                    let sse = Event::default().event("resync").data("{}");
                    return Some((Ok(sse), (receiver, org_id)));
                }
                Err(RecvError::Closed) => return None,
            }
        }
    });
    Sse::new(stream)
        .keep_alive(KeepAlive::new().interval(Duration::from_secs(15)))
        .into_response()
}
