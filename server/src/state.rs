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
    /// Device health changes from the monitor (for `/api/events`).
    pub health: tokio::sync::broadcast::Sender<crate::monitor::HealthEvent>,
}

impl FromRef<AppState> for LeptosOptions {
    fn from_ref(state: &AppState) -> Self {
        state.leptos.clone()
    }
}
