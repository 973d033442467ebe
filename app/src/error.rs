//! The one error type every server function returns. Each variant is something the user can act
//! on, and its `Display` is the sentence the UI shows; `status()` is the explicit HTTP status table.
//! Internal details never cross this boundary: the server logs them and sends only a reference.

use leptos::prelude::{FromServerFnError, ServerFnErrorErr};
use leptos::server_fn::codec::JsonEncoding;
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, thiserror::Error)]
pub enum AppError {
    #[error("Please sign in to continue.")]
    Unauthenticated,
    #[error("Your role does not allow this. Ask an owner or admin of the organisation.")]
    Forbidden,
    #[error("{0} was not found. It may have been deleted, or it belongs to another organisation.")]
    NotFound(String),
    /// Bad input: the message says which field and what is expected.
    #[error("{0}")]
    Invalid(String),
    /// The request clashes with the current state (duplicate, stale version, lock held).
    #[error("{0}")]
    Conflict(String),
    /// Too many attempts: the message says how long to wait and what else to do.
    #[error("{0}")]
    Throttled(String),
    /// Sign-in refused until the address is verified (the UI offers to resend the link).
    #[error(
        "Confirm your email address first: open the link we sent to {0}, or ask for a new one."
    )]
    Unverified(String),
    /// A dependency (database, device, mail relay) cannot be reached right now.
    #[error("{0} Try again in a moment.")]
    Unavailable(String),
    /// A bug or an unexpected failure; details are in the server log under this reference.
    #[error("Something went wrong on the server (reference {0}). Try again; if it keeps happening, give the reference to your administrator.")]
    Internal(String),
    /// The browser could not talk to the server, or could not read its answer.
    #[error("Could not reach the Mudmap server ({0}). Check your connection and try again.")]
    Transport(String),
}

impl AppError {
    /// The HTTP status each variant maps to.
    pub fn status(&self) -> u16 {
        match self {
            AppError::Unauthenticated => 401,
            AppError::Forbidden => 403,
            AppError::NotFound(_) => 404,
            AppError::Invalid(_) => 422,
            AppError::Conflict(_) => 409,
            AppError::Throttled(_) => 429,
            AppError::Unverified(_) => 403,
            AppError::Unavailable(_) => 503,
            AppError::Internal(_) | AppError::Transport(_) => 500,
        }
    }
}

impl FromServerFnError for AppError {
    type Encoder = JsonEncoding;

    fn from_server_fn_error(value: ServerFnErrorErr) -> Self {
        AppError::Transport(value.to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_variant_has_a_status_and_a_sentence() {
        let all = [
            AppError::Unauthenticated,
            AppError::Forbidden,
            AppError::NotFound("Device fw-1".into()),
            AppError::Invalid("Port must be between 1 and 65535.".into()),
            AppError::Conflict("A device with this host and port exists: fw-1.".into()),
            AppError::Unavailable("The database is not answering.".into()),
            AppError::Throttled("Too many failed sign-ins. Try again in 15 minutes.".into()),
            AppError::Unverified("jane@example.com".into()),
            AppError::Internal("req-123".into()),
            AppError::Transport("network error".into()),
        ];
        for e in &all {
            assert!((400..600).contains(&e.status()));
            assert!(e.to_string().ends_with('.'), "{e}");
        }
        assert_eq!(AppError::Forbidden.status(), 403);
        assert!(AppError::Internal("abc".into()).to_string().contains("abc"));
    }
}
