//! The seam between server functions (here, compiled only with `ssr`) and the services that do
//! the work (in the `server` crate, which depends on this one, so it cannot be called directly).
//! The server puts a [`Services`] into the Leptos context of every request; server functions take
//! it out, call one method, and hand the result to [`respond`].

use std::sync::Arc;

use leptos::prelude::use_context;

use crate::error::AppError;
use crate::system::ServerStatus;

/// Everything a server function may call. Cheap to clone.
#[derive(Clone)]
pub struct Services {
    pub system: Arc<dyn SystemService>,
}

/// Instance health and identity.
#[async_trait::async_trait]
pub trait SystemService: Send + Sync {
    async fn status(&self) -> Result<ServerStatus, AppError>;
}

/// The services of the current request.
pub fn services() -> Result<Services, AppError> {
    use_context::<Services>().ok_or_else(|| {
        tracing::error!("server function called without Services in context");
        AppError::Internal("no-services".to_owned())
    })
}

/// Sets the HTTP status of the response to match the error, then passes the result through.
pub fn respond<T>(result: Result<T, AppError>) -> Result<T, AppError> {
    if let Err(error) = &result {
        if let Some(options) = use_context::<leptos_axum::ResponseOptions>() {
            let status = http::StatusCode::from_u16(error.status())
                .unwrap_or(http::StatusCode::INTERNAL_SERVER_ERROR);
            options.set_status(status);
        }
    }
    result
}
