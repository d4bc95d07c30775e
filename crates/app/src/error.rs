//! The use cases' error type: what went wrong, in terms a client can act on.

use ordertrack_domain::{ItemId, UnsafeText, WorkflowProblem};
use ordertrack_store::StoreError;

use crate::ErrorCode;

/// Why a use case refused or failed.
#[derive(Debug, thiserror::Error)]
pub enum AppError {
    /// No valid credentials were presented.
    #[error("sign in first")]
    Unauthenticated,
    /// Email and password did not match.
    #[error("email or password is wrong")]
    BadCredentials,
    /// Too many failed sign-ins; try again later.
    #[error("too many failed sign-ins; try again in {} s", retry_after.as_secs())]
    TooManyAttempts {
        /// When to try again.
        retry_after: std::time::Duration,
    },
    /// Too many new accounts from one client address; try again later.
    #[error("too many new accounts from this address; try again in {} s", retry_after.as_secs())]
    TooManyRegistrations {
        /// When to try again.
        retry_after: std::time::Duration,
    },
    /// Too many passwords are being checked at once; try again shortly.
    #[error("the server is busy checking passwords; try again shortly")]
    Busy {
        /// When to try again.
        retry_after: std::time::Duration,
    },
    /// The database could not answer in time; nothing was changed.
    #[error(
        "the database took too long to answer; ask for less (a shorter range) or try again shortly"
    )]
    TooSlow,
    /// The caller is known but may not do this.
    #[error("{0}")]
    Forbidden(String),
    /// The thing does not exist, or the caller may not know that it does.
    #[error("{0} not found")]
    NotFound(&'static str),
    /// The request is well-formed but its content is not acceptable.
    #[error("{message}")]
    Invalid {
        /// Stable machine-readable code, e.g. `unknown_status`.
        code: ErrorCode,
        message: String,
    },
    /// A workflow upload was refused: every problem, each with where it is.
    #[error("{}", crate::workflows::describe(.0))]
    InvalidWorkflow(Vec<WorkflowProblem>),
    /// The request conflicts with the current state.
    #[error("{message}")]
    Conflict {
        code: ErrorCode,
        message: String,
        /// The order's current version, for version conflicts.
        current_version: Option<i64>,
        /// Items still not ready, when a state requires all items ready.
        pending_items: Vec<ItemId>,
    },
    /// The thing existed but is gone for good (a used or expired
    /// invitation).
    #[error("{message}")]
    Gone { code: ErrorCode, message: String },
    /// The idempotency key was already used for a different request.
    #[error("this Idempotency-Key was already used for a different request")]
    IdempotencyMismatch,
    /// Something failed on our side.
    #[error("internal error: {0}")]
    Internal(String),
}

impl AppError {
    /// An [`AppError::Invalid`].
    pub fn invalid(code: ErrorCode, message: impl Into<String>) -> Self {
        AppError::Invalid {
            code,
            message: message.into(),
        }
    }

    /// An [`AppError::Conflict`] without version or items.
    pub fn conflict(code: ErrorCode, message: impl Into<String>) -> Self {
        AppError::Conflict {
            code,
            message: message.into(),
            current_version: None,
            pending_items: Vec::new(),
        }
    }
}

impl From<UnsafeText> for AppError {
    fn from(error: UnsafeText) -> Self {
        AppError::invalid(ErrorCode::InvalidCharacters, error.to_string())
    }
}

impl From<StoreError> for AppError {
    fn from(error: StoreError) -> Self {
        match error {
            StoreError::Conflict(what) => {
                AppError::conflict(ErrorCode::AlreadyExists, format!("{what} already exists"))
            }
            StoreError::VersionConflict { current } => AppError::Conflict {
                code: ErrorCode::VersionConflict,
                message: format!("the order has changed; version {current} is current"),
                current_version: Some(current),
                pending_items: Vec::new(),
            },
            StoreError::NotFound(what) => AppError::NotFound(what),
            StoreError::IdempotencyMismatch => AppError::IdempotencyMismatch,
            StoreError::Database(message) => AppError::Internal(message),
            StoreError::Unavailable => AppError::Internal("store unavailable".into()),
            StoreError::TimedOut => AppError::TooSlow,
        }
    }
}
