//! Write requests as typed jobs: each request is data (so the writer can
//! run a batch again after a deadlock) with its own result type, and its
//! job answers the caller with exactly that type.

use std::future::Future;
use std::pin::Pin;

use ordertrack_domain::{
    ItemStatusChange, Order, OrderId, OrderPlan, ProductId, Role, StatusChange, StoreId, UserId,
};
use sqlx::postgres::PgConnection;
use time::OffsetDateTime;
use tokio::sync::oneshot;

use super::orders::{self, Change};
use super::rows::{Log, Result};
use super::{invitations, printing, reviews, settings, stores, users, workflows};
use crate::{
    Acceptance, FollowedDurations, Invitation, NewInvitation, NewOrder, NewPrintJob, NewPrinter,
    NewProduct, NewReview, NewSession, NewStore, NewStoreWorkflow, NewUser, PlacedOrder, PrintJob,
    PrintOutcome, Printer, Product, ProductPatch, Review, StoreError, StoreOpening, StoreRecord,
    StoreSettingsPatch, StoreWithSettings, StoreWorkflow, User,
};

/// A future borrowing the writer's connection and log.
pub type Run<'a, T> = Pin<Box<dyn Future<Output = Result<T>> + Send + 'a>>;

/// A change to apply with others, and how the changed order answers its
/// request.
pub type Together<'a, T> = (Change<'a>, fn(Order) -> T);

/// A new order to place with others, and how the placed order answers its
/// request.
pub type Creation<'a, T> = (&'a NewOrder, fn(PlacedOrder) -> T);

/// A write request the writer can run (and run again) in a batch.
pub trait Request: Send + 'static {
    /// What the caller gets back.
    type Output: Send + 'static;

    /// Runs the request inside the batch's transaction (and a savepoint of
    /// its own), logging the events and access changes it makes.
    fn run<'a>(&'a self, conn: &'a mut PgConnection, log: &'a mut Log) -> Run<'a, Self::Output>;

    /// The store whose orders (and event sequence) the request changes.
    fn store(&self) -> Option<StoreId> {
        None
    }

    /// The existing order whose status or items the request changes.
    fn changed_order(&self) -> Option<OrderId> {
        None
    }

    /// The request as one change the writer may apply together with the
    /// batch's changes of other orders, and how the changed order answers it.
    fn change(&self) -> Option<Together<'_, Self::Output>> {
        None
    }

    /// The request as a new order the writer may place together with the
    /// batch's other new orders, and how the placed order answers it.
    fn creation(&self) -> Option<Creation<'_, Self::Output>> {
        None
    }
}

/// A request in a batch: its result so far, and where the answer goes.
pub trait Job: Send {
    fn store(&self) -> Option<StoreId>;
    fn changed_order(&self) -> Option<OrderId>;
    fn change(&self) -> Option<Change<'_>>;
    fn creation(&self) -> Option<&NewOrder>;
    /// Forgets the result of an earlier try of the batch.
    fn reset(&mut self);
    /// Whether the request has its result in this try.
    fn done(&self) -> bool;
    /// Runs the request alone; a failure that is not the batch's is kept as
    /// its result, and the writer rolls back to the request's savepoint.
    fn run<'a>(&'a mut self, conn: &'a mut PgConnection, log: &'a mut Log) -> Run<'a, ()>;
    /// Takes the outcome of [`change`](Self::change), applied with others.
    fn changed(&mut self, outcome: std::result::Result<Order, StoreError>);
    /// Takes the outcome of [`creation`](Self::creation), placed with others.
    fn created(&mut self, outcome: std::result::Result<PlacedOrder, StoreError>);
    /// Whether the request failed by itself (its error is its answer even
    /// if the batch fails).
    fn failed(&self) -> bool;
    /// Answers the caller: `batch_error` is why the batch did not commit.
    fn answer(self: Box<Self>, batch_error: Option<&StoreError>);
}

/// A request, its reply channel and its result in the current try.
pub struct Pending<R: Request> {
    request: R,
    reply: oneshot::Sender<std::result::Result<R::Output, StoreError>>,
    result: Option<std::result::Result<R::Output, StoreError>>,
}

impl<R: Request> Pending<R> {
    pub fn new(
        request: R, reply: oneshot::Sender<std::result::Result<R::Output, StoreError>>,
    ) -> Box<Self> {
        Box::new(Pending {
            request,
            reply,
            result: None,
        })
    }
}

impl<R: Request> Job for Pending<R> {
    fn store(&self) -> Option<StoreId> {
        self.request.store()
    }

    fn changed_order(&self) -> Option<OrderId> {
        self.request.changed_order()
    }

    fn change(&self) -> Option<Change<'_>> {
        self.request.change().map(|(change, _)| change)
    }

    fn creation(&self) -> Option<&NewOrder> {
        self.request.creation().map(|(new, _)| new)
    }

    fn reset(&mut self) {
        self.result = None;
    }

    fn done(&self) -> bool {
        self.result.is_some()
    }

    fn run<'a>(&'a mut self, conn: &'a mut PgConnection, log: &'a mut Log) -> Run<'a, ()> {
        Box::pin(async move {
            match self.request.run(conn, log).await {
                Ok(output) => {
                    self.result = Some(Ok(output));
                    Ok(())
                }
                Err(failure) if failure.retry => Err(failure),
                Err(failure) => {
                    self.result = Some(Err(failure.error));
                    Ok(())
                }
            }
        })
    }

    fn changed(&mut self, outcome: std::result::Result<Order, StoreError>) {
        if let Some((_, answer)) = self.request.change() {
            self.result = Some(outcome.map(answer));
        }
    }

    fn created(&mut self, outcome: std::result::Result<PlacedOrder, StoreError>) {
        if let Some((_, answer)) = self.request.creation() {
            self.result = Some(outcome.map(answer));
        }
    }

    fn failed(&self) -> bool {
        matches!(self.result, Some(Err(_)))
    }

    fn answer(self: Box<Self>, batch_error: Option<&StoreError>) {
        let answer = match (batch_error, self.result) {
            // A request that failed by itself keeps its own error; the
            // others share the batch's.
            (_, Some(Err(own))) => Err(own),
            (Some(error), _) => Err(copy(error)),
            (None, Some(Ok(output))) => Ok(output),
            (None, None) => Err(StoreError::Database(
                "internal error: request not run".into(),
            )),
        };
        let _ = self.reply.send(answer);
    }
}

/// `StoreError` is not `Clone`; every request of a failed batch gets its own copy.
fn copy(error: &StoreError) -> StoreError {
    match error {
        StoreError::Unavailable => StoreError::Unavailable,
        other => StoreError::Database(other.to_string()),
    }
}

// ---- the requests ----

impl Request for NewUser {
    type Output = User;
    fn run<'a>(&'a self, conn: &'a mut PgConnection, _: &'a mut Log) -> Run<'a, User> {
        Box::pin(users::create_user(conn, self))
    }
}

impl Request for NewSession {
    type Output = ();
    fn run<'a>(&'a self, conn: &'a mut PgConnection, _: &'a mut Log) -> Run<'a, ()> {
        Box::pin(users::create_session(conn, self))
    }
}

/// Ends a session.
pub struct DeleteSession(pub String);

impl Request for DeleteSession {
    type Output = ();
    fn run<'a>(&'a self, conn: &'a mut PgConnection, log: &'a mut Log) -> Run<'a, ()> {
        Box::pin(users::delete_session(conn, &self.0, log))
    }
}

impl Request for NewStore {
    type Output = StoreRecord;
    fn run<'a>(&'a self, conn: &'a mut PgConnection, _: &'a mut Log) -> Run<'a, StoreRecord> {
        Box::pin(stores::create_store(conn, self))
    }
}

/// Gives a user a staff role in a store.
pub struct SetMembership(pub UserId, pub StoreId, pub Role);

impl Request for SetMembership {
    type Output = ();
    fn run<'a>(&'a self, conn: &'a mut PgConnection, log: &'a mut Log) -> Run<'a, ()> {
        let SetMembership(user, store, role) = *self;
        Box::pin(stores::set_membership(conn, user, store, role, log))
    }
}

/// Removes a user from a store's staff.
pub struct RemoveMembership(pub UserId, pub StoreId);

impl Request for RemoveMembership {
    type Output = bool;
    fn run<'a>(&'a self, conn: &'a mut PgConnection, log: &'a mut Log) -> Run<'a, bool> {
        let RemoveMembership(user, store) = *self;
        Box::pin(stores::remove_membership(conn, user, store, log))
    }
}

/// Adds a product to a store's catalog.
pub struct CreateProduct(pub StoreId, pub NewProduct);

impl Request for CreateProduct {
    type Output = Product;
    fn run<'a>(&'a self, conn: &'a mut PgConnection, _: &'a mut Log) -> Run<'a, Product> {
        Box::pin(stores::create_product(conn, self.0, &self.1))
    }
}

/// Changes a store's product.
pub struct UpdateProduct(pub StoreId, pub ProductId, pub ProductPatch);

impl Request for UpdateProduct {
    type Output = Option<Product>;
    fn run<'a>(&'a self, conn: &'a mut PgConnection, _: &'a mut Log) -> Run<'a, Option<Product>> {
        Box::pin(stores::update_product(conn, self.0, self.1, &self.2))
    }
}

impl Request for NewReview {
    type Output = Review;
    fn run<'a>(&'a self, conn: &'a mut PgConnection, _: &'a mut Log) -> Run<'a, Review> {
        Box::pin(reviews::add_review(conn, self))
    }
}

impl Request for NewPrinter {
    type Output = Printer;
    fn run<'a>(&'a self, conn: &'a mut PgConnection, _: &'a mut Log) -> Run<'a, Printer> {
        Box::pin(printing::add_printer(conn, self))
    }
}

/// Removes a store's printer.
pub struct RemovePrinter(pub StoreId, pub i64);

impl Request for RemovePrinter {
    type Output = bool;
    fn run<'a>(&'a self, conn: &'a mut PgConnection, _: &'a mut Log) -> Run<'a, bool> {
        Box::pin(printing::remove_printer(conn, self.0, self.1))
    }
}

/// Queues the jobs made from the log between two cursor positions.
pub struct QueuePrintJobs(pub i64, pub i64, pub Vec<NewPrintJob>);

impl Request for QueuePrintJobs {
    type Output = bool;
    fn run<'a>(&'a self, conn: &'a mut PgConnection, _: &'a mut Log) -> Run<'a, bool> {
        Box::pin(printing::queue_print_jobs(conn, self.0, self.1, &self.2))
    }
}

impl Request for NewPrintJob {
    type Output = PrintJob;
    fn run<'a>(&'a self, conn: &'a mut PgConnection, _: &'a mut Log) -> Run<'a, PrintJob> {
        Box::pin(printing::queue_print_job(conn, self))
    }
}

/// The writing half of a round of the ETA durations follower, its
/// reading half done on a reader.
pub struct KeepFollowedRound(pub orders::FollowedRound);

impl Request for KeepFollowedRound {
    type Output = FollowedDurations;
    fn run<'a>(&'a self, conn: &'a mut PgConnection, _: &'a mut Log) -> Run<'a, FollowedDurations> {
        Box::pin(orders::keep_followed_round(conn, &self.0))
    }
}

/// Takes due print jobs: now, the lease's end, how many at most.
pub struct ClaimPrintJobs(pub OffsetDateTime, pub OffsetDateTime, pub u32);

impl Request for ClaimPrintJobs {
    type Output = Vec<PrintJob>;
    fn run<'a>(&'a self, conn: &'a mut PgConnection, _: &'a mut Log) -> Run<'a, Vec<PrintJob>> {
        Box::pin(printing::claim_print_jobs(conn, self.0, self.1, self.2))
    }
}

/// Records how an attempt at a print job ended.
pub struct FinishPrintJob(pub i64, pub PrintOutcome);

impl Request for FinishPrintJob {
    type Output = ();
    fn run<'a>(&'a self, conn: &'a mut PgConnection, _: &'a mut Log) -> Run<'a, ()> {
        Box::pin(printing::finish_print_job(conn, self.0, &self.1))
    }
}

impl Request for StoreOpening {
    type Output = StoreWithSettings;
    fn run<'a>(
        &'a self, conn: &'a mut PgConnection, log: &'a mut Log,
    ) -> Run<'a, StoreWithSettings> {
        Box::pin(settings::open_store(conn, self, log))
    }
}

/// Changes a store's settings.
pub struct UpdateStoreSettings(pub StoreId, pub StoreSettingsPatch);

impl Request for UpdateStoreSettings {
    type Output = Option<StoreWithSettings>;
    fn run<'a>(
        &'a self, conn: &'a mut PgConnection, _: &'a mut Log,
    ) -> Run<'a, Option<StoreWithSettings>> {
        Box::pin(settings::update_store_settings(conn, self.0, &self.1))
    }
}

impl Request for crate::RollupRebuild {
    type Output = ();
    fn run<'a>(&'a self, conn: &'a mut PgConnection, _: &'a mut Log) -> Run<'a, ()> {
        Box::pin(super::rollups::rebuild_report_days(conn, self))
    }
    // The store's lock: no order of it changes while its days are rebuilt.
    fn store(&self) -> Option<StoreId> {
        Some(self.store)
    }
}

impl Request for NewInvitation {
    type Output = Invitation;
    fn run<'a>(&'a self, conn: &'a mut PgConnection, _: &'a mut Log) -> Run<'a, Invitation> {
        Box::pin(invitations::create_invitation(conn, self))
    }
}

/// Accepts an invitation (by its token's hash) for a user at a time.
pub struct AcceptInvitation(pub String, pub UserId, pub OffsetDateTime);

impl Request for AcceptInvitation {
    type Output = Acceptance;
    fn run<'a>(&'a self, conn: &'a mut PgConnection, log: &'a mut Log) -> Run<'a, Acceptance> {
        let AcceptInvitation(hash, user, now) = self;
        Box::pin(invitations::accept_invitation(conn, hash, *user, *now, log))
    }
}

impl Request for NewStoreWorkflow {
    type Output = StoreWorkflow;
    fn run<'a>(&'a self, conn: &'a mut PgConnection, _: &'a mut Log) -> Run<'a, StoreWorkflow> {
        Box::pin(workflows::add_store_workflow(conn, self))
    }
}

impl Request for NewOrder {
    type Output = PlacedOrder;
    fn run<'a>(&'a self, conn: &'a mut PgConnection, log: &'a mut Log) -> Run<'a, PlacedOrder> {
        Box::pin(orders::place_order(conn, self, log))
    }
    fn store(&self) -> Option<StoreId> {
        Some(self.store_id)
    }
    fn creation(&self) -> Option<Creation<'_, PlacedOrder>> {
        Some((self, std::convert::identity))
    }
}

impl Request for StatusChange {
    type Output = Order;
    fn run<'a>(&'a self, conn: &'a mut PgConnection, log: &'a mut Log) -> Run<'a, Order> {
        Box::pin(orders::apply_status_change(conn, self, log))
    }
    fn store(&self) -> Option<StoreId> {
        Some(self.event.store_id)
    }
    fn changed_order(&self) -> Option<OrderId> {
        Some(self.order_id)
    }
    fn change(&self) -> Option<Together<'_, Order>> {
        Some((Change::status(self), std::convert::identity))
    }
}

impl Request for ItemStatusChange {
    type Output = Order;
    fn run<'a>(&'a self, conn: &'a mut PgConnection, log: &'a mut Log) -> Run<'a, Order> {
        Box::pin(orders::apply_item_change(conn, self, log))
    }
    fn store(&self) -> Option<StoreId> {
        Some(self.event.store_id)
    }
    fn changed_order(&self) -> Option<OrderId> {
        Some(self.order_id)
    }
    fn change(&self) -> Option<Together<'_, Order>> {
        // Only a change written in one step goes with others.
        match Change::item(self).as_slice() {
            [change] => Some((*change, std::convert::identity)),
            _ => None,
        }
    }
}

impl Request for OrderPlan {
    type Output = Order;
    fn run<'a>(&'a self, conn: &'a mut PgConnection, log: &'a mut Log) -> Run<'a, Order> {
        Box::pin(orders::apply_plan(conn, self, log))
    }
    fn store(&self) -> Option<StoreId> {
        Some(self.store_id)
    }
    fn changed_order(&self) -> Option<OrderId> {
        Some(self.order_id)
    }
}
