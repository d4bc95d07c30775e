//! The group-commit writer: one task, one connection, one commit per batch.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::Duration;

use ordertrack_domain::{
    ItemStatusChange, NewEvent, Order, OrderId, OrderPlan, ProductId, Role, StatusChange,
};
use ordertrack_domain::{StoreId, UserId};
use sqlx::pool::PoolConnection;
use sqlx::postgres::{PgConnection, PgPool};
use sqlx::{Connection, Postgres};
use tokio::sync::{mpsc, oneshot};

use super::queries::{self, BulkChange, Fail};
use super::settings;
use crate::{
    AccessChange, CommitListener, LogEntry, NewOrder, NewProduct, NewSession, NewStore, NewUser,
    PlacedOrder, Product, ProductPatch, StoreError, StoreOpening, StoreRecord, StoreSettingsPatch,
    StoreWithSettings, User,
};

/// Most requests committed together. Bounds the latency a request waits
/// behind others, and the work redone when a batch has to be retried.
pub const MAX_BATCH: usize = 256;

/// How often a batch is tried when it hits a deadlock or serialization failure.
const MAX_ATTEMPTS: u32 = 5;

/// A write request. Kept as data (not a closure) so a batch can be run again.
pub enum Write {
    CreateUser(NewUser),
    CreateSession(NewSession),
    DeleteSession(String),
    CreateStore(NewStore),
    SetMembership(UserId, StoreId, Role),
    RemoveMembership(UserId, StoreId),
    CreateProduct(StoreId, NewProduct),
    UpdateProduct(StoreId, ProductId, ProductPatch),
    PlaceOrder(Box<NewOrder>),
    StatusChange(Box<StatusChange>),
    ItemChange(Box<ItemStatusChange>),
    Plan(Box<OrderPlan>),
    OpenStore(Box<StoreOpening>),
    UpdateStoreSettings(StoreId, Box<StoreSettingsPatch>),
}

impl Write {
    /// The store whose orders (and event sequence) the request changes.
    fn store(&self) -> Option<StoreId> {
        match self {
            Write::PlaceOrder(new) => Some(new.store_id),
            Write::StatusChange(change) => Some(change.event.store_id),
            Write::ItemChange(change) => Some(change.event.store_id),
            Write::Plan(plan) => Some(plan.store_id),
            _ => None,
        }
    }

    /// The existing order whose status or items the request changes.
    fn changed_order(&self) -> Option<OrderId> {
        match self {
            Write::StatusChange(change) => Some(change.order_id),
            Write::ItemChange(change) => Some(change.order_id),
            Write::Plan(plan) => Some(plan.order_id),
            _ => None,
        }
    }
}

/// What a write request produced.
pub enum Written {
    Nothing,
    User(User),
    Store(StoreRecord),
    Removed(bool),
    Product(Product),
    MaybeProduct(Option<Product>),
    Placed(PlacedOrder),
    Order(Order),
    StoreWithSettings(StoreWithSettings),
    MaybeStoreWithSettings(Option<StoreWithSettings>),
}

/// A request waiting for the writer, and where to send its answer.
pub struct Job {
    pub write: Write,
    pub reply: oneshot::Sender<Result<Written, StoreError>>,
}

/// Runs one request inside the batch's transaction; events and access
/// changes it records go to `events` and `access` (written at the end of
/// the batch).
async fn apply(
    conn: &mut PgConnection,
    write: &Write,
    events: &mut Vec<NewEvent>,
    access: &mut Vec<AccessChange>,
) -> Result<Written, Fail> {
    Ok(match write {
        Write::CreateUser(new) => Written::User(queries::create_user(conn, new).await?),
        Write::CreateSession(session) => {
            queries::create_session(conn, session).await?;
            Written::Nothing
        }
        Write::DeleteSession(id) => {
            queries::delete_session(conn, id, access).await?;
            Written::Nothing
        }
        Write::CreateStore(new) => Written::Store(queries::create_store(conn, new).await?),
        Write::SetMembership(user, store, role) => {
            queries::set_membership(conn, *user, *store, *role, access).await?;
            Written::Nothing
        }
        Write::RemoveMembership(user, store) => {
            Written::Removed(queries::remove_membership(conn, *user, *store, access).await?)
        }
        Write::CreateProduct(store, new) => {
            Written::Product(queries::create_product(conn, *store, new).await?)
        }
        Write::UpdateProduct(store, product, patch) => {
            Written::MaybeProduct(queries::update_product(conn, *store, *product, patch).await?)
        }
        Write::PlaceOrder(new) => Written::Placed(queries::place_order(conn, new, events).await?),
        Write::StatusChange(change) => {
            Written::Order(queries::apply_status_change(conn, change, events).await?)
        }
        Write::ItemChange(change) => {
            Written::Order(queries::apply_item_change(conn, change, events).await?)
        }
        Write::Plan(plan) => Written::Order(queries::apply_plan(conn, plan, events).await?),
        Write::OpenStore(opening) => {
            Written::StoreWithSettings(settings::open_store(conn, opening, access).await?)
        }
        Write::UpdateStoreSettings(store, patch) => Written::MaybeStoreWithSettings(
            settings::update_store_settings(conn, *store, patch).await?,
        ),
    })
}

/// The writer loop; returns when every sender is gone.
pub async fn run(
    pool: PgPool,
    mut jobs: mpsc::UnboundedReceiver<Job>,
    listener: Option<Arc<dyn CommitListener>>,
) {
    let mut batch: Vec<Job> = Vec::with_capacity(MAX_BATCH);
    let mut conn: Option<PoolConnection<Postgres>> = None;
    while let Some(first) = jobs.recv().await {
        batch.push(first);
        while batch.len() < MAX_BATCH {
            match jobs.try_recv() {
                Ok(job) => batch.push(job),
                Err(_) => break,
            }
        }

        let outcome = commit(&pool, &mut conn, &batch).await;
        match outcome.failure {
            None => {
                // Committed: publish in commit order, then answer.
                if let (Some(listener), false) = (&listener, outcome.events.is_empty()) {
                    listener.committed(&outcome.events);
                }
                for (job, result) in batch.drain(..).zip(outcome.results) {
                    let _ = job.reply.send(result.unwrap_or_else(|| {
                        Err(StoreError::Database(
                            "internal error: request not run".into(),
                        ))
                    }));
                }
            }
            Some(failure) => {
                tracing::error!(error = %failure.error, "postgres batch failed; rolled back");
                for (job, result) in batch.drain(..).zip(outcome.results) {
                    // A request that failed by itself keeps its own error;
                    // the others share the batch's.
                    let answer = match result {
                        Some(Err(own)) => Err(own),
                        _ => Err(copy(&failure.error)),
                    };
                    let _ = job.reply.send(answer);
                }
            }
        }
    }
    pool.close().await;
}

/// `StoreError` is not `Clone`; every request of a failed batch gets its own copy.
fn copy(error: &StoreError) -> StoreError {
    match error {
        StoreError::Unavailable => StoreError::Unavailable,
        other => StoreError::Database(other.to_string()),
    }
}

/// Each request's result, by its place in the batch (`None`: not run).
type Results = Vec<Option<Result<Written, StoreError>>>;

/// The result of running a batch.
struct Attempt {
    results: Results,
    /// The committed event-log entries, in id order (empty unless committed).
    events: Vec<LogEntry>,
    /// Why the batch as a whole did not commit.
    failure: Option<Fail>,
}

impl Attempt {
    fn failed(results: Results, failure: impl Into<Fail>) -> Self {
        Attempt {
            results,
            events: Vec::new(),
            failure: Some(failure.into()),
        }
    }
}

/// Runs the batch, again after a deadlock or serialization failure.
async fn commit(
    pool: &PgPool,
    slot: &mut Option<PoolConnection<Postgres>>,
    batch: &[Job],
) -> Attempt {
    let mut attempt = 0;
    loop {
        attempt += 1;
        let conn = match slot {
            Some(conn) => conn,
            None => match pool.acquire().await {
                Ok(conn) => slot.insert(conn),
                Err(error) => return Attempt::failed(not_run(batch), error),
            },
        };
        let outcome = run_batch(conn, batch).await;
        let Some(failure) = &outcome.failure else {
            return outcome;
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
        return outcome;
    }
}

fn not_run(batch: &[Job]) -> Results {
    batch.iter().map(|_| None).collect()
}

/// One try: BEGIN, the requests, the events, COMMIT.
async fn run_batch(conn: &mut PgConnection, batch: &[Job]) -> Attempt {
    let mut results = not_run(batch);
    let mut tx = match conn.begin().await {
        Ok(tx) => tx,
        Err(error) => return Attempt::failed(results, error),
    };
    super::opened("BEGIN");
    let events = match run_requests(&mut tx, batch, &mut results).await {
        Ok(events) => events,
        Err(failure) => {
            let _ = tx.rollback().await;
            return Attempt::failed(results, failure);
        }
    };
    if let Err(error) = tx.commit().await {
        // The outcome of a failed COMMIT may be unknown: never run it again.
        let mut failure = Fail::from(error);
        failure.retry = false;
        return Attempt::failed(results, failure);
    }
    Attempt {
        results,
        events,
        failure: None,
    }
}

/// Runs the batch's requests, then writes the events of those that
/// succeeded. An error returned here fails the whole batch.
///
/// Status and item status changes (the hot path: one per tap on a kitchen
/// screen) of distinct orders are applied together, with a few multi-row
/// statements for all of them. Every other request, and any change the
/// bulk path could not take, runs alone inside a savepoint, so that a
/// failing request undoes only its own writes.
async fn run_requests(
    tx: &mut PgConnection,
    batch: &[Job],
    results: &mut Results,
) -> Result<Vec<LogEntry>, Fail> {
    // Lock the rows of every store the batch changes orders in, in id order,
    // before anything else: two instances' batches that share a store (and
    // so possibly an order) then queue on it instead of deadlocking.
    let mut stores: Vec<StoreId> = batch.iter().filter_map(|job| job.write.store()).collect();
    stores.sort_unstable();
    stores.dedup();
    queries::lock_stores(tx, &stores).await?;

    let mut pending: Vec<NewEvent> = Vec::new();
    let mut access: Vec<AccessChange> = Vec::new();
    // Item changes go in bulk only when nothing else in the batch touches
    // their order (so nothing can depend on running before or after them);
    // status changes, the first of each order.
    let mut touches: HashMap<OrderId, usize> = HashMap::new();
    for order in batch.iter().filter_map(|job| job.write.changed_order()) {
        *touches.entry(order).or_default() += 1;
    }
    let mut orders = HashSet::new();
    let (bulk, changes): (Vec<usize>, Vec<BulkChange>) = batch
        .iter()
        .enumerate()
        .filter_map(|(n, job)| match &job.write {
            Write::StatusChange(change) if orders.insert(change.order_id) => {
                Some((n, BulkChange::Status(change)))
            }
            Write::ItemChange(change)
                if touches.get(&change.order_id) == Some(&1)
                    && queries::bulk_item_change_ok(change)
                    && orders.insert(change.order_id) =>
            {
                Some((n, BulkChange::Item(change)))
            }
            _ => None,
        })
        .unzip();
    if bulk.len() >= 2 {
        savepoint(tx, "SAVEPOINT bulk").await?;
        match queries::bulk_changes(tx, &changes, &mut pending).await {
            Ok(outcomes) => {
                for (&n, outcome) in bulk.iter().zip(outcomes) {
                    results[n] = Some(outcome.map(Written::Order));
                }
                savepoint(tx, "RELEASE SAVEPOINT bulk").await?;
            }
            Err(failure) if failure.retry => return Err(failure),
            Err(failure) => {
                // Something in there is bad (say, an unknown actor): undo
                // the lot and run each alone, to fail only the bad one.
                tracing::debug!(error = %failure.error, "bulk changes fall back to one by one");
                pending.clear();
                savepoint(tx, "ROLLBACK TO SAVEPOINT bulk; RELEASE SAVEPOINT bulk").await?;
            }
        }
    }
    // Everything not done in bulk, in batch order.
    let alone: Vec<usize> = (0..batch.len()).filter(|&n| results[n].is_none()).collect();

    // One savepoint, re-established after each success and kept after each
    // failure (ROLLBACK TO leaves it in place): one round trip per request.
    if !alone.is_empty() {
        savepoint(tx, "SAVEPOINT request").await?;
    }
    for (k, &n) in alone.iter().enumerate() {
        let before = (pending.len(), access.len());
        match apply(tx, &batch[n].write, &mut pending, &mut access).await {
            Ok(written) => {
                if k + 1 < alone.len() {
                    savepoint(tx, "RELEASE SAVEPOINT request; SAVEPOINT request").await?;
                }
                results[n] = Some(Ok(written));
            }
            Err(failure) => {
                // A failing request undoes only its own writes...
                pending.truncate(before.0);
                access.truncate(before.1);
                // ...unless it lost a deadlock: then the whole batch goes again.
                if failure.retry {
                    return Err(failure);
                }
                savepoint(tx, "ROLLBACK TO SAVEPOINT request").await?;
                results[n] = Some(Err(failure.error));
            }
        }
    }
    queries::append_events(tx, pending, access).await
}

/// Savepoint commands, sent as one simple query (one round trip).
async fn savepoint(tx: &mut PgConnection, sql: &'static str) -> Result<(), Fail> {
    sqlx::raw_sql(sql).execute(tx).await?;
    Ok(())
}
