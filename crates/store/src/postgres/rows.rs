//! PostgreSQL rows as [`Columns`], and how a failed statement is reported
//! to the writer ([`Fail`]).

use ordertrack_domain::{NewEvent, OrderId, StatusKey};
use sqlx::Row;
use sqlx::postgres::PgRow;

use crate::codec::Columns;
use crate::{AccessChange, StoreError};

impl Columns for PgRow {
    fn int(&self, name: &str) -> std::result::Result<i64, StoreError> {
        Ok(self.try_get(name)?)
    }
    fn int_opt(&self, name: &str) -> std::result::Result<Option<i64>, StoreError> {
        Ok(self.try_get(name)?)
    }
    fn text(&self, name: &str) -> std::result::Result<String, StoreError> {
        Ok(self.try_get(name)?)
    }
    fn text_opt(&self, name: &str) -> std::result::Result<Option<String>, StoreError> {
        Ok(self.try_get(name)?)
    }
    fn flag(&self, name: &str) -> std::result::Result<bool, StoreError> {
        Ok(self.try_get(name)?)
    }
}

/// JSON objects listed in a column (e.g. an order's items), each read as a
/// row by [`Columns`].
pub fn listed<T>(
    row: &PgRow,
    column: &str,
    what: &str,
    read: impl Fn(&serde_json::Map<String, serde_json::Value>) -> std::result::Result<T, StoreError>,
) -> Result<Vec<T>> {
    let json: String = row.try_get(column)?;
    let objects: Vec<serde_json::Map<String, serde_json::Value>> =
        serde_json::from_str(&json).map_err(|_| crate::codec::corrupt(what, &json))?;
    Ok(objects
        .iter()
        .map(read)
        .collect::<std::result::Result<_, _>>()?)
}

/// What a batch's requests log, written at the end of the batch: order
/// events and access changes.
#[derive(Default)]
pub struct Log {
    pub events: Vec<NewEvent>,
    pub access: Vec<AccessChange>,
    /// The status changes among the events that finish their order and
    /// leave its durations to the ETA follower: the order, the version its
    /// event makes, the done status (the event's `finished_in`).
    pub finishing: Vec<(OrderId, i64, StatusKey)>,
}

/// Where a [`Log`] stood, to undo back to.
pub type LogMark = (usize, usize, usize);

impl Log {
    /// Where the log stands now, to [`undo`](Self::undo) back to.
    pub fn mark(&self) -> LogMark {
        (self.events.len(), self.access.len(), self.finishing.len())
    }

    /// Forgets what was logged since `mark`.
    pub fn undo(&mut self, mark: LogMark) {
        self.events.truncate(mark.0);
        self.access.truncate(mark.1);
        self.finishing.truncate(mark.2);
    }
}

/// Why a query failed, and what the writer should do about it.
pub struct Fail {
    pub error: StoreError,
    /// A deadlock or serialization failure, or a lost connection: the batch
    /// is rolled back and run again (a failed COMMIT excepted).
    pub retry: bool,
    /// The connection itself failed (not the statement): it is not reused.
    pub broken: bool,
}

impl From<StoreError> for Fail {
    fn from(error: StoreError) -> Self {
        Fail {
            error,
            retry: false,
            broken: false,
        }
    }
}

impl From<sqlx::Error> for Fail {
    fn from(error: sqlx::Error) -> Self {
        let (retry, broken) = match &error {
            // 40001: serialization_failure, 40P01: deadlock_detected.
            sqlx::Error::Database(db) => {
                let code = db.code();
                let code = code.as_deref().unwrap_or_default();
                (
                    matches!(code, "40001" | "40P01"),
                    // 08: connection exceptions; 57P01-03: the server is
                    // shutting down or restarting and ended the session.
                    code.starts_with("08") || matches!(code, "57P01" | "57P02" | "57P03"),
                )
            }
            sqlx::Error::RowNotFound
            | sqlx::Error::ColumnNotFound(_)
            | sqlx::Error::ColumnIndexOutOfBounds { .. }
            | sqlx::Error::ColumnDecode { .. }
            | sqlx::Error::Decode(_)
            | sqlx::Error::Encode(_)
            | sqlx::Error::TypeNotFound { .. } => (false, false),
            _ => (false, true),
        };
        Fail {
            error: error.into(),
            // Before COMMIT, a lost connection lost the whole transaction
            // with it: running the batch again on a new one is safe.
            retry: retry || broken,
            broken,
        }
    }
}

impl From<Fail> for StoreError {
    fn from(fail: Fail) -> Self {
        fail.error
    }
}

pub type Result<T> = std::result::Result<T, Fail>;

fn sqlstate(error: &sqlx::Error) -> Option<String> {
    match error {
        sqlx::Error::Database(db) => db.code().map(|code| code.into_owned()),
        _ => None,
    }
}

/// Maps a violation of SQLSTATE `code` (e.g. 23505, unique_violation) to
/// `error`; any other failure stays what it was.
pub fn violation(code: &'static str, error: StoreError) -> impl FnOnce(sqlx::Error) -> Fail {
    move |failure| match sqlstate(&failure).as_deref() {
        Some(found) if found == code => error.into(),
        _ => failure.into(),
    }
}

/// Maps a uniqueness violation (23505) to [`StoreError::Conflict`].
pub fn unique(what: &'static str) -> impl FnOnce(sqlx::Error) -> Fail {
    violation("23505", StoreError::Conflict(what))
}
