//! The group-commit writer: one thread, one connection, one fsync per batch.

use std::sync::Arc;

use rusqlite::Connection;
use tokio::sync::oneshot;

use crate::{CommitListener, LogEntry, StoreError};

/// Most requests committed together. Bounds the latency a request waits
/// behind others, and the work lost to one failed commit.
pub const MAX_BATCH: usize = 512;

/// The write transaction a request runs in (inside its own savepoint).
pub struct WriteTx<'c> {
    conn: &'c Connection,
    events: Vec<LogEntry>,
}

impl WriteTx<'_> {
    /// The connection, inside the open transaction.
    pub fn conn(&self) -> &Connection {
        self.conn
    }

    /// Records an event-log entry written by this request, to be published
    /// after commit.
    pub fn published(&mut self, event: LogEntry) {
        self.events.push(event);
    }
}

/// What running a request left behind: whether it succeeded, and how to
/// answer it once the batch's commit outcome is known.
pub struct Outcome {
    succeeded: bool,
    answer: Answer,
}

/// Sends a request its result, given the batch's commit error (if any).
type Answer = Box<dyn FnOnce(Option<&StoreError>) + Send>;

/// A request waiting for the writer.
pub type WriteJob = Box<dyn FnOnce(&mut WriteTx<'_>) -> Outcome + Send>;

/// Wraps a request so its answer is sent only after the commit.
pub fn job<T, F>(f: F, reply: oneshot::Sender<Result<T, StoreError>>) -> WriteJob
where
    T: Send + 'static,
    F: FnOnce(&mut WriteTx<'_>) -> Result<T, StoreError> + Send + 'static,
{
    Box::new(move |tx| match f(tx) {
        Ok(value) => Outcome {
            succeeded: true,
            answer: Box::new(move |commit_error| {
                let _ = reply.send(match commit_error {
                    None => Ok(value),
                    Some(error) => Err(StoreError::Database(error.to_string())),
                });
            }),
        },
        Err(error) => Outcome {
            succeeded: false,
            answer: Box::new(move |_| {
                let _ = reply.send(Err(error));
            }),
        },
    })
}

/// The writer loop; returns when every sender is gone.
pub fn run(
    conn: Connection,
    jobs: flume::Receiver<WriteJob>,
    listener: Option<Arc<dyn CommitListener>>,
) {
    let mut batch: Vec<WriteJob> = Vec::with_capacity(MAX_BATCH);
    let mut outcomes: Vec<Outcome> = Vec::with_capacity(MAX_BATCH);
    while let Ok(first) = jobs.recv() {
        batch.push(first);
        while batch.len() < MAX_BATCH {
            match jobs.try_recv() {
                Ok(job) => batch.push(job),
                Err(_) => break,
            }
        }

        let mut tx = WriteTx {
            conn: &conn,
            events: Vec::new(),
        };
        let result = run_batch(&mut tx, &mut batch, &mut outcomes);
        let events = std::mem::take(&mut tx.events);
        match result {
            Ok(()) => {
                if let (Some(listener), false) = (&listener, events.is_empty()) {
                    listener.committed(&events);
                }
                for outcome in outcomes.drain(..) {
                    (outcome.answer)(None);
                }
            }
            Err(error) => {
                tracing::error!(%error, "sqlite batch commit failed; rolling back");
                let _ = conn.execute_batch("ROLLBACK");
                for outcome in outcomes.drain(..) {
                    (outcome.answer)(Some(&error));
                }
            }
        }
        // Requests that never ran (BEGIN failed) are dropped here, which
        // answers them with `StoreError::Unavailable`.
        batch.clear();
    }
}

fn run_batch(
    tx: &mut WriteTx<'_>,
    batch: &mut Vec<WriteJob>,
    outcomes: &mut Vec<Outcome>,
) -> Result<(), StoreError> {
    run_cached(tx.conn, "BEGIN IMMEDIATE")?;
    for job in batch.drain(..) {
        run_cached(tx.conn, "SAVEPOINT request")?;
        let events_before = tx.events.len();
        let outcome = job(tx);
        if outcome.succeeded {
            run_cached(tx.conn, "RELEASE request")?;
        } else {
            // A failing request undoes only its own writes.
            run_cached(tx.conn, "ROLLBACK TO request")?;
            run_cached(tx.conn, "RELEASE request")?;
            tx.events.truncate(events_before);
        }
        outcomes.push(outcome);
    }
    run_cached(tx.conn, "COMMIT")?;
    Ok(())
}

/// Runs one transaction-control statement, prepared once per connection.
fn run_cached(conn: &Connection, sql: &str) -> Result<(), StoreError> {
    conn.prepare_cached(sql)?.execute([])?;
    Ok(())
}
