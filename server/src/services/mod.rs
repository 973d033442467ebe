//! Service implementations behind the traits in `app::services`. Each owns one area of behaviour,
//! is constructed once at start, and is what tests call directly.

pub mod system;

use crate::store::StoreError;
use app::error::AppError;

/// Map a store failure to what the user sees, logging the detail once under a reference.
pub fn store_failure(error: StoreError) -> AppError {
    let reference = uuid::Uuid::new_v4().simple().to_string()[..12].to_owned();
    match error {
        StoreError::Connect { .. } => {
            tracing::error!(%error, error.reference = %reference, "database unreachable");
            AppError::Unavailable("The database is not answering.".to_owned())
        }
        other => {
            tracing::error!(error = %other, error.reference = %reference, "database failure");
            AppError::Internal(reference)
        }
    }
}

/// [`store_failure`] for a query that failed inside a service's own SQL.
pub fn sql_failure(error: sqlx::Error) -> AppError {
    store_failure(error.into())
}
