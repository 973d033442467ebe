//! The application state every handler and server function can reach.

use std::sync::Arc;

use axum::extract::FromRef;
use leptos::config::LeptosOptions;

use crate::accounts::sessions::Sessions;
use crate::http::assets::SiteAssets;
use crate::store::Store;

#[derive(Clone)]
pub struct AppState {
    pub leptos: LeptosOptions,
    pub store: Store,
    pub services: app::services::Services,
    pub assets: Arc<SiteAssets>,
    pub sessions: Sessions,
    /// `scheme://host[:port]` of the public URL, for the cross-site write check.
    pub public_origin: String,
    /// Live events for open pages (`/api/events`): health changes, drift marks.
    pub live: crate::live::Live,
}

impl FromRef<AppState> for LeptosOptions {
    fn from_ref(state: &AppState) -> Self {
        state.leptos.clone()
    }
}
