//! The store's error type.

/// Why a store operation failed.
#[derive(Debug, Clone, thiserror::Error)]
pub enum StoreError {
    /// A uniqueness rule was broken (e.g. an email or slug already taken).
    #[error("{0} already exists")]
    Conflict(&'static str),
    /// The order changed since the caller read it.
    #[error("the order has changed: version {current} is current")]
    VersionConflict { current: i64 },
    /// The record the operation refers to does not exist.
    #[error("{0} not found")]
    NotFound(&'static str),
    /// An idempotency key was reused with a different request.
    #[error("this idempotency key was used for a different request")]
    IdempotencyMismatch,
    /// The database failed or holds data this version cannot read.
    #[error("database error: {0}")]
    Database(String),
    /// The store is shutting down or its worker stopped.
    #[error("the store is not available")]
    Unavailable,
    /// A statement ran past the database's time limit (a report over a
    /// very long range, say); nothing was changed.
    #[error("the database took too long to answer")]
    TimedOut,
}

impl From<rusqlite::Error> for StoreError {
    fn from(error: rusqlite::Error) -> Self {
        StoreError::Database(error.to_string())
    }
}

impl From<sqlx::Error> for StoreError {
    fn from(error: sqlx::Error) -> Self {
        match &error {
            // 23505: unique_violation.
            sqlx::Error::Database(db) if db.code().as_deref() == Some("23505") => {
                StoreError::Conflict("a record with the same key")
            }
            sqlx::Error::PoolTimedOut | sqlx::Error::PoolClosed => StoreError::Unavailable,
            // 57014: query_canceled (the statement timeout).
            sqlx::Error::Database(db) if db.code().as_deref() == Some("57014") => {
                StoreError::TimedOut
            }
            _ => StoreError::Database(error.to_string()),
        }
    }
}
