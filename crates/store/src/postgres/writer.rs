//! The group-commit writer: one task, one connection, one commit per batch.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use ordertrack_domain::{OrderId, StoreId};
use sqlx::pool::PoolConnection;
use sqlx::postgres::{PgConnection, PgPool};
use sqlx::{AssertSqlSafe, Connection, Postgres};
use tokio::sync::mpsc;
use tracing::Instrument;

use super::events;
use super::jobs::Job;
use super::orders::{self, Change};
use super::rows::{Fail, Log, LogMark};
use crate::{CommitListener, LogEntry, NewOrder};

/// Most requests committed together. Bounds the latency a request waits
/// behind others, and the work redone when a batch has to be retried.
pub const MAX_BATCH: usize = 256;

/// How often a batch is tried when it hits a deadlock or serialization failure.
const MAX_ATTEMPTS: u32 = 5;

/// The writer loop; returns when every sender is gone.
pub async fn run(
    pool: PgPool,
    mut jobs: mpsc::UnboundedReceiver<Box<dyn Job>>,
    listener: Option<Arc<dyn CommitListener>>,
) {
    let mut batch: Vec<Box<dyn Job>> = Vec::with_capacity(MAX_BATCH);
    let mut conn: Option<PoolConnection<Postgres>> = None;
    let mut idle_since = Instant::now();
    while let Some(first) = jobs.recv().await {
        batch.push(first);
        while batch.len() < MAX_BATCH {
            match jobs.try_recv() {
                Ok(job) => batch.push(job),
                Err(_) => break,
            }
        }

        // The batch's statements (sqlx's DEBUG events) come inside this
        // span, so a log filtered on `[batch]=debug` shows where the
        // writer's time goes, statement by statement.
        let started = Instant::now();
        let span = tracing::debug_span!("batch", requests = batch.len());
        let outcome = commit(&pool, &mut conn, &mut batch)
            .instrument(span.clone())
            .await;
        tracing::debug!(
            parent: &span,
            requests = batch.len(),
            busy_us = started.elapsed().as_micros() as u64,
            idle_us = started.duration_since(idle_since).as_micros() as u64,
            "batch written"
        );
        match outcome {
            Ok(events) => {
                // Committed: publish in commit order, then answer.
                if let (Some(listener), false) = (&listener, events.is_empty()) {
                    listener.committed(&events);
                }
                for job in batch.drain(..) {
                    job.answer(None);
                }
            }
            Err(failure) => {
                tracing::error!(error = %failure.error, "postgres batch failed; rolled back");
                for job in batch.drain(..) {
                    job.answer(Some(&failure.error));
                }
            }
        }
        idle_since = Instant::now();
    }
    pool.close().await;
}

/// Runs the batch, again after a deadlock or serialization failure; the
/// committed event-log entries, in id order.
async fn commit(
    pool: &PgPool,
    slot: &mut Option<PoolConnection<Postgres>>,
    batch: &mut [Box<dyn Job>],
) -> Result<Vec<LogEntry>, Fail> {
    let mut attempt = 0;
    loop {
        attempt += 1;
        for job in batch.iter_mut() {
            job.reset();
        }
        let conn = match slot {
            Some(conn) => conn,
            None => slot.insert(pool.acquire().await?),
        };
        let failure = match run_batch(conn, batch).await {
            Ok(events) => return Ok(events),
            Err(failure) => failure,
        };
        if failure.broken {
            // Do not hand a broken connection out again: the next batch
            // connects afresh.
            if let Some(mut conn) = slot.take() {
                conn.close_on_drop();
            }
        }
        if failure.retry && attempt < MAX_ATTEMPTS {
            tracing::debug!(attempt, error = %failure.error, "postgres batch will be retried");
            tokio::time::sleep(Duration::from_millis(u64::from(attempt) * 5)).await;
            continue;
        }
        return Err(failure);
    }
}

/// One try: BEGIN, the requests, the events, COMMIT.
async fn run_batch(
    conn: &mut PgConnection,
    batch: &mut [Box<dyn Job>],
) -> Result<Vec<LogEntry>, Fail> {
    let opening = Opening::of(batch);
    let mut tx = conn.begin_with(AssertSqlSafe(opening.sql())).await?;
    opening.count();
    let events = match run_requests(&mut tx, batch, &opening.together).await {
        Ok(events) => events,
        Err(failure) => {
            let _ = tx.rollback().await;
            return Err(failure);
        }
    };
    if let Err(error) = tx.commit().await {
        // The outcome of a failed COMMIT may be unknown: never run it again.
        let mut failure = Fail::from(error);
        failure.retry = false;
        return Err(failure);
    }
    Ok(events)
}

/// How a batch's transaction opens, in one round trip (one simple query
/// of several statements): `BEGIN`; the rows of every store the batch
/// changes orders in, locked in id order — two instances' batches that
/// share a store (and so possibly an order) then queue on it instead of
/// deadlocking; and, when some of its changes go together, their savepoint.
struct Opening {
    stores: Vec<StoreId>,
    /// The batch's changes that go together ([`together`]).
    together: Vec<usize>,
}

impl Opening {
    fn of(batch: &[Box<dyn Job>]) -> Self {
        let mut stores: Vec<StoreId> = batch.iter().filter_map(|job| job.store()).collect();
        stores.sort_unstable();
        stores.dedup();
        Opening {
            stores,
            together: together(batch),
        }
    }

    /// The statements; store ids are numbers, written out as such.
    fn sql(&self) -> String {
        let mut sql = String::from("BEGIN");
        if !self.stores.is_empty() {
            let ids: Vec<String> = self.stores.iter().map(|id| id.get().to_string()).collect();
            sql.push_str("; SELECT id FROM stores WHERE id IN (");
            sql.push_str(&ids.join(","));
            sql.push_str(") ORDER BY id FOR UPDATE");
        }
        if self.together.len() >= 2 {
            sql.push_str("; SAVEPOINT together");
        }
        sql
    }

    /// Tells the statement count what ran (sqlx reports none of it).
    fn count(&self) {
        super::opened("BEGIN");
        if !self.stores.is_empty() {
            super::opened("SELECT id FROM stores WHERE id IN (…) ORDER BY id FOR UPDATE");
        }
        if self.together.len() >= 2 {
            super::opened("SAVEPOINT together");
        }
    }
}

/// The status and item status changes of a batch that go together: those
/// whose order nothing else in the batch touches (so nothing can depend on
/// running before or after them).
fn together(batch: &[Box<dyn Job>]) -> Vec<usize> {
    let mut touches: HashMap<OrderId, usize> = HashMap::new();
    for order in batch.iter().filter_map(|job| job.changed_order()) {
        *touches.entry(order).or_default() += 1;
    }
    batch
        .iter()
        .enumerate()
        .filter_map(|(n, job)| job.change().map(|change| (n, change)))
        .filter(|(_, change)| touches.get(&change.order_id()) == Some(&1))
        .map(|(n, _)| n)
        .collect()
}

/// Runs the batch's requests, then writes the events of those that
/// succeeded. An error returned here fails the whole batch.
///
/// Status and item status changes (the hot path: one per tap on a kitchen
/// screen) that go `together` (their savepoint already open, when there
/// are two or more: [`Opening`]) are applied
/// together, by the same routine that applies one
/// ([`orders::apply_changes`]); new orders are placed together likewise
/// ([`orders::place_orders`]). Each group is a fixed number of multi-row
/// statements whatever its size. Every other request, and any that could
/// not go with the others, runs alone inside a savepoint, so that a
/// failing request undoes only its own writes.
async fn run_requests(
    tx: &mut PgConnection,
    batch: &mut [Box<dyn Job>],
    together: &[usize],
) -> Result<Vec<LogEntry>, Fail> {
    let mut log = Log::default();
    if together.len() >= 2 {
        let changes: Vec<Change<'_>> = together.iter().filter_map(|&n| batch[n].change()).collect();
        let mark = log.mark();
        match orders::apply_changes(tx, &changes, &mut log).await {
            Ok(outcomes) => {
                drop(changes);
                for (&n, outcome) in together.iter().zip(outcomes) {
                    batch[n].changed(outcome);
                }
                savepoint(tx, "RELEASE SAVEPOINT together").await?;
            }
            Err(failure) => fall_back(tx, failure, &mut log, mark).await?,
        }
    }

    // New orders go together too: they touch no existing order, and each
    // store numbers them in batch order.
    let (placing, news): (Vec<usize>, Vec<&NewOrder>) = batch
        .iter()
        .enumerate()
        .filter_map(|(n, job)| job.creation().map(|new| (n, new)))
        .unzip();
    if placing.len() >= 2 {
        let mark = log.mark();
        savepoint(tx, "SAVEPOINT together").await?;
        match orders::place_orders(tx, &news, &mut log).await {
            Ok(outcomes) => {
                drop(news);
                for (&n, outcome) in placing.iter().zip(outcomes) {
                    // Left out (an idempotency key already used): alone.
                    if let Some(outcome) = outcome {
                        batch[n].created(outcome);
                    }
                }
                savepoint(tx, "RELEASE SAVEPOINT together").await?;
            }
            Err(failure) => fall_back(tx, failure, &mut log, mark).await?,
        }
    }
    // Everything not done together, in batch order.
    let alone: Vec<usize> = (0..batch.len()).filter(|&n| !batch[n].done()).collect();

    // One savepoint, re-established after each success and kept after each
    // failure (ROLLBACK TO leaves it in place): one round trip per request.
    if !alone.is_empty() {
        savepoint(tx, "SAVEPOINT request").await?;
    }
    for (k, &n) in alone.iter().enumerate() {
        let mark = log.mark();
        // A lost deadlock fails the whole batch, which goes again.
        batch[n].run(tx, &mut log).await?;
        if batch[n].failed() {
            // A failing request undoes only its own writes.
            log.undo(mark);
            savepoint(tx, "ROLLBACK TO SAVEPOINT request").await?;
        } else if k + 1 < alone.len() {
            savepoint(tx, "RELEASE SAVEPOINT request; SAVEPOINT request").await?;
        }
    }
    events::append_events(tx, log).await
}

/// After requests that went together failed: a deadlock fails the batch
/// (it goes again); anything else (say, an unknown actor) undoes the lot,
/// and each of them runs alone, to fail only the bad one.
async fn fall_back(
    tx: &mut PgConnection,
    failure: Fail,
    log: &mut Log,
    mark: LogMark,
) -> Result<(), Fail> {
    if failure.retry {
        return Err(failure);
    }
    tracing::debug!(error = %failure.error, "requests fall back to one by one");
    log.undo(mark);
    savepoint(
        tx,
        "ROLLBACK TO SAVEPOINT together; RELEASE SAVEPOINT together",
    )
    .await
}

/// Savepoint commands, sent as one simple query (one round trip).
async fn savepoint(tx: &mut PgConnection, sql: &'static str) -> Result<(), Fail> {
    sqlx::raw_sql(sql).execute(tx).await?;
    Ok(())
}
