//! The PostgreSQL store, for running several instances on one database.
//!
//! **Writes** go through one writer task per instance that owns one
//! connection and commits in groups, like the SQLite writer: it takes every
//! request waiting (up to [`MAX_BATCH`]) and runs them in one transaction:
//! first it locks the rows of the stores the batch touches (in id order, so
//! batches of two instances queue instead of deadlocking); then it applies
//! the status and item changes of distinct orders together with a few
//! multi-row statements (version-checked update, history, read-back) — the
//! same routine a single change runs, with one; every other request runs
//! alone in a savepoint, so a failing request rolls back only itself; last
//! it writes the batch's events, commits once, and only then hands the
//! events to the commit listener and answers the requests.
//!
//! **Event positions** are gap-free in commit order across every instance
//! and connection: the global `id` comes from the single `event_log_head`
//! row and the per-store `store_seq` from the store's row, both bumped in the
//! batch's transaction right before its commit. The row locks are held until
//! commit, so the next writer (any instance) waits and continues from the
//! committed value; a sequence would hand out numbers that commit out of
//! order, and a reader resuming "after N" could miss a later-committed N-1.
//! Bumping the global counter last keeps its lock held only for the last
//! statements of a batch.
//!
//! **The commit listener** of an instance sees that instance's batches in
//! commit order (one writer, so commit order is id order); events committed
//! by other instances reach it only through a bus.
//!
//! **Retries**: a deadlock or serialization failure rolls the batch back and
//! runs it again (a few times); every other error fails only its request.
//! A failed COMMIT is never retried (its outcome may be unknown).
//!
//! **Reads** use a pool of read-only connections; every read is a single
//! statement, so it sees one consistent snapshot (an order with its items).
//!
//! **Statements** are reported to `tracing` at DEBUG by sqlx (set here, so
//! the level is known whatever the caller's options said), and BEGIN and
//! SAVEPOINT, which sqlx sends without a report, by the store itself (see
//! [`statements`](crate::statements)).

mod gathered;
mod jobs;
backend_modules!();

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use ordertrack_domain::{
    DeliveryId, FulfilmentKind, HistoryEntry, ItemStatusChange, KeptDurations, Order, OrderId,
    OrderPlan, ProductId, Role, StatusChange, StatusKey, StoreId, UserId, WebhookId,
};
use sqlx::ConnectOptions;
pub use sqlx::postgres::PgConnectOptions;
use sqlx::postgres::{PgPool, PgPoolOptions};
use time::OffsetDateTime;
use tokio::sync::{mpsc, oneshot};

use gathered::Gathered;

use crate::email_records::*;
use crate::push_records::*;
use crate::records::*;
use crate::webhook_records::*;
use crate::{CommitListener, Repository, Result, StoreError};
use email::{ClaimEmails, SetEmailOptOut};
use jobs::{
    AcceptInvitation, ClaimPrintJobs, CreateProduct, DeleteSession, FinishPrintJob,
    KeepFollowedRound, Pending, QueuePrintJobs, RemoveMembership, RemovePrinter, Request,
    SetMembership, UpdateProduct, UpdateStoreSettings,
};
use push::{ClaimPushJobs, DeletePushSubscription};
use webhooks::{ClaimWebhookDeliveries, DeleteWebhook, RetryWebhookDelivery, RotateWebhookSecret};
pub use writer::MAX_BATCH;

/// How to open a [`PostgresRepository`].
pub struct PostgresOptions {
    /// Connections for reads. The writer has one more of its own.
    pub pool_size: u32,
    /// How long to wait for a connection, and for any one statement.
    pub timeout: Duration,
    /// Receives committed events.
    pub listener: Option<Arc<dyn CommitListener>>,
}

impl Default for PostgresOptions {
    fn default() -> Self {
        PostgresOptions {
            pool_size: 16,
            timeout: Duration::from_secs(5),
            listener: None,
        }
    }
}

/// The store on a PostgreSQL database (`postgres://…`).
pub struct PostgresRepository {
    writer: mpsc::UnboundedSender<Box<dyn jobs::Job>>,
    readers: PgPool,
    /// Reads of orders by id, gathered on the readers' connections.
    order_reads: Gathered<OrderId, OrderInStore>,
    /// Reads of stores' menus by slug, likewise.
    menu_reads: Gathered<String, StoreMenu>,
}

impl PostgresRepository {
    /// Connects to the database at `url`, runs pending migrations and starts
    /// the writer task. Must be called inside a Tokio runtime.
    pub async fn connect(url: &str, options: PostgresOptions) -> Result<Self> {
        Self::connect_with(parse_url(url)?, options).await
    }

    /// Like [`connect`](Self::connect), with parsed connection options (for
    /// settings a URL cannot carry, e.g. a `search_path`).
    pub async fn connect_with(connect: PgConnectOptions, options: PostgresOptions) -> Result<Self> {
        migrate::run(&connect, options.timeout).await?;

        let timeout = options.timeout.max(Duration::from_millis(1));
        let connect = match connect.get_application_name() {
            Some(_) => connect,
            None => connect.application_name("ordertrack"),
        };
        let session = connect
            .options([("statement_timeout", format!("{}ms", timeout.as_millis()))])
            .log_statements(log::LevelFilter::Debug);
        let readers = PgPoolOptions::new()
            .max_connections(options.pool_size.max(1))
            .acquire_timeout(timeout)
            .connect_with(
                session
                    .clone()
                    .options([("default_transaction_read_only", "on")]),
            )
            .await?;
        let write_pool = PgPoolOptions::new()
            .max_connections(1)
            .acquire_timeout(timeout)
            .connect_with(session)
            .await?;
        let (writer, jobs) = mpsc::unbounded_channel();
        tokio::spawn(writer::run(write_pool, jobs, options.listener));
        let order_reads = Gathered::start(readers.clone(), |conn, ids| {
            Box::pin(orders::orders_in_store(conn, ids))
        });
        let menu_reads = Gathered::start(readers.clone(), |conn, slugs| {
            Box::pin(async move { settings::store_menus(conn, &slugs).await })
        });
        Ok(PostgresRepository {
            writer,
            readers,
            order_reads,
            menu_reads,
        })
    }

    /// Runs pending migrations on the database at `url` and returns how many
    /// ran. Safe to run from several instances at once (an advisory lock
    /// serialises them).
    pub async fn migrate(url: &str, timeout: Duration) -> Result<usize> {
        migrate::run(&parse_url(url)?, timeout).await
    }

    /// Like [`migrate`](Self::migrate), with parsed connection options.
    pub async fn migrate_with(connect: &PgConnectOptions, timeout: Duration) -> Result<usize> {
        migrate::run(connect, timeout).await
    }

    /// Queues a request for the writer and waits for its answer.
    async fn write<R: Request>(&self, request: R) -> Result<R::Output> {
        let (reply, answer) = oneshot::channel();
        self.writer
            .send(Pending::new(request, reply))
            .map_err(|_| StoreError::Unavailable)?;
        answer.await.map_err(|_| StoreError::Unavailable)?
    }

    async fn read(&self) -> Result<sqlx::pool::PoolConnection<sqlx::Postgres>> {
        Ok(self.readers.acquire().await?)
    }
}

/// Reports a BEGIN or SAVEPOINT that sqlx just sent: sqlx reports every
/// other statement it runs (COMMIT, ROLLBACK and RELEASE included), but not
/// these, though each is a round trip.
fn opened(statement: &'static str) {
    tracing::debug!(target: crate::statements::STATEMENT_TARGET, statement);
}

fn parse_url(url: &str) -> Result<PgConnectOptions> {
    url.parse::<PgConnectOptions>()
        .map_err(|e| StoreError::Database(format!("bad PostgreSQL URL: {e}")))
}

#[async_trait]
impl Repository for PostgresRepository {
    async fn create_user(&self, new: NewUser) -> Result<User> {
        self.write(new).await
    }

    async fn user_credentials(&self, email: &str) -> Result<Option<Credentials>> {
        let email = email.to_lowercase();
        Ok(users::user_credentials(&mut *self.read().await?, &email).await?)
    }

    async fn user(&self, id: UserId) -> Result<Option<User>> {
        Ok(users::user(&mut *self.read().await?, id).await?)
    }

    async fn create_session(&self, session: NewSession) -> Result<()> {
        self.write(session).await
    }

    async fn delete_session(&self, session_id: &str) -> Result<()> {
        self.write(DeleteSession(session_id.to_owned())).await
    }

    async fn session_identity(
        &self, session_id: &str, now: OffsetDateTime,
    ) -> Result<Option<Identity>> {
        Ok(users::session_identity(&mut *self.read().await?, session_id, now).await?)
    }

    async fn cache_marks(&self) -> Result<CacheMarks> {
        Ok(users::cache_marks(&mut *self.read().await?).await?)
    }

    async fn create_store(&self, new: NewStore) -> Result<StoreRecord> {
        self.write(new).await
    }

    async fn stores(&self) -> Result<Vec<StoreRecord>> {
        Ok(stores::stores(&mut *self.read().await?).await?)
    }

    async fn store_by_slug(&self, slug: &str) -> Result<Option<StoreRecord>> {
        Ok(stores::store_by_slug(&mut *self.read().await?, slug).await?)
    }

    async fn store(&self, id: StoreId) -> Result<Option<StoreRecord>> {
        Ok(stores::store(&mut *self.read().await?, id).await?)
    }

    async fn set_membership(&self, user: UserId, store: StoreId, role: Role) -> Result<()> {
        self.write(SetMembership(user, store, role)).await
    }

    async fn remove_membership(&self, user: UserId, store: StoreId) -> Result<bool> {
        self.write(RemoveMembership(user, store)).await
    }

    async fn staff(&self, store: StoreId) -> Result<Vec<StaffMember>> {
        Ok(stores::staff(&mut *self.read().await?, store).await?)
    }

    async fn create_product(&self, store: StoreId, new: NewProduct) -> Result<Product> {
        self.write(CreateProduct(store, new)).await
    }

    async fn update_product(
        &self, store: StoreId, product: ProductId, patch: ProductPatch,
    ) -> Result<Option<Product>> {
        self.write(UpdateProduct(store, product, patch)).await
    }

    async fn products(&self, store: StoreId) -> Result<Vec<Product>> {
        Ok(stores::products(&mut *self.read().await?, store).await?)
    }

    async fn open_store(&self, opening: StoreOpening) -> Result<StoreWithSettings> {
        self.write(opening).await
    }

    async fn stores_with_settings(&self) -> Result<Vec<StoreWithSettings>> {
        Ok(settings::stores_with_settings(&mut *self.read().await?).await?)
    }

    async fn add_review(&self, new: NewReview) -> Result<Review> {
        self.write(new).await
    }

    async fn review(&self, order: OrderId) -> Result<Option<Review>> {
        Ok(reviews::review(&mut *self.read().await?, order).await?)
    }

    async fn store_reviews(
        &self, store: StoreId, before: Option<OrderId>, limit: u32,
    ) -> Result<ReviewPage> {
        Ok(reviews::store_reviews(&mut *self.read().await?, store, before, limit).await?)
    }

    async fn add_store_workflow(&self, new: NewStoreWorkflow) -> Result<StoreWorkflow> {
        self.write(new).await
    }

    async fn store_workflow(&self, store: StoreId, version: i64) -> Result<Option<StoreWorkflow>> {
        Ok(workflows::store_workflow(&mut *self.read().await?, store, version).await?)
    }

    async fn latest_store_workflow(&self, store: StoreId) -> Result<Option<StoreWorkflow>> {
        Ok(workflows::latest_store_workflow(&mut *self.read().await?, store).await?)
    }

    async fn store_with_settings(&self, slug: &str) -> Result<Option<StoreWithSettings>> {
        Ok(settings::store_with_settings(&mut *self.read().await?, slug).await?)
    }

    async fn store_menu(&self, slug: &str) -> Result<Option<StoreMenu>> {
        self.menu_reads.read(slug.to_owned()).await
    }

    async fn update_store_settings(
        &self, store: StoreId, patch: StoreSettingsPatch,
    ) -> Result<Option<StoreWithSettings>> {
        self.write(UpdateStoreSettings(store, patch)).await
    }

    async fn create_invitation(&self, new: NewInvitation) -> Result<Invitation> {
        self.write(new).await
    }

    async fn invitation(&self, token_hash: &str) -> Result<Option<Invitation>> {
        Ok(invitations::invitation(&mut *self.read().await?, token_hash).await?)
    }

    async fn accept_invitation(
        &self, token_hash: &str, user: UserId, now: OffsetDateTime,
    ) -> Result<Acceptance> {
        self.write(AcceptInvitation(token_hash.to_owned(), user, now))
            .await
    }

    async fn place_order(&self, new: NewOrder) -> Result<PlacedOrder> {
        self.write(new).await
    }

    async fn order(&self, id: OrderId) -> Result<Option<Order>> {
        Ok(orders::order(&mut *self.read().await?, id).await?)
    }

    async fn order_in_store(&self, key: OrderKey) -> Result<Option<OrderInStore>> {
        match key {
            OrderKey::Id(id) => self.order_reads.read(id).await,
            key => Ok(orders::order_in_store(&mut *self.read().await?, &key).await?),
        }
    }

    async fn orders(&self, query: OrderQuery) -> Result<OrderPage> {
        Ok(orders::orders(&mut *self.read().await?, &query).await?)
    }

    async fn status_counts(
        &self, store: StoreId, fulfilment: Option<FulfilmentKind>,
    ) -> Result<Vec<(String, i64)>> {
        Ok(orders::status_counts(&mut *self.read().await?, store, fulfilment).await?)
    }

    async fn history(&self, order: OrderId) -> Result<Vec<HistoryEntry>> {
        Ok(orders::history(&mut *self.read().await?, order).await?)
    }

    async fn apply_status_change(&self, change: StatusChange) -> Result<Order> {
        self.write(change).await
    }

    async fn apply_item_change(&self, change: ItemStatusChange) -> Result<Order> {
        self.write(change).await
    }

    async fn apply_plan(&self, plan: OrderPlan) -> Result<Order> {
        self.write(plan).await
    }

    async fn add_printer(&self, new: NewPrinter) -> Result<Printer> {
        self.write(new).await
    }

    async fn printers(&self, store: StoreId) -> Result<Vec<Printer>> {
        Ok(printing::printers(&mut *self.read().await?, store).await?)
    }

    async fn remove_printer(&self, store: StoreId, printer: i64) -> Result<bool> {
        self.write(RemovePrinter(store, printer)).await
    }

    async fn print_cursor(&self) -> Result<i64> {
        Ok(printing::print_cursor(&mut *self.read().await?).await?)
    }

    async fn queue_print_jobs(&self, from: i64, to: i64, jobs: Vec<NewPrintJob>) -> Result<bool> {
        self.write(QueuePrintJobs(from, to, jobs)).await
    }

    async fn queue_print_job(&self, job: NewPrintJob) -> Result<PrintJob> {
        self.write(job).await
    }

    async fn claim_print_jobs(
        &self, now: OffsetDateTime, lease_until: OffsetDateTime, limit: u32,
    ) -> Result<Vec<PrintJob>> {
        self.write(ClaimPrintJobs(now, lease_until, limit)).await
    }

    async fn finish_print_job(&self, job: i64, outcome: PrintOutcome) -> Result<()> {
        self.write(FinishPrintJob(job, outcome)).await
    }

    async fn print_jobs(&self, order: OrderId) -> Result<Vec<PrintJob>> {
        Ok(printing::print_jobs(&mut *self.read().await?, order).await?)
    }

    async fn next_print_attempt(&self) -> Result<Option<OffsetDateTime>> {
        Ok(printing::next_print_attempt(&mut *self.read().await?).await?)
    }

    async fn events_after(
        &self, filter: EventFilter, after: i64, limit: u32,
    ) -> Result<Vec<StoredEvent>> {
        Ok(events::events_after(&mut *self.read().await?, &filter, after, limit).await?)
    }

    async fn events_since(&self, after: i64, limit: u32) -> Result<Vec<LogEntry>> {
        Ok(events::events_since(&mut *self.read().await?, after, limit).await?)
    }

    async fn last_event_position(&self) -> Result<i64> {
        Ok(events::last_event_position(&mut *self.read().await?).await?)
    }

    async fn report_rows(&self, query: ReportQuery) -> Result<ReportRows> {
        Ok(reports::report_rows(&mut *self.read().await?, query).await?)
    }

    async fn report_days(&self, query: ReportDaysQuery) -> Result<ReportDays> {
        Ok(rollups::report_days(&mut *self.read().await?, &query).await?)
    }

    async fn rebuild_report_days(&self, rebuild: RollupRebuild) -> Result<()> {
        self.write(rebuild).await
    }

    async fn store_durations(&self, store: StoreId) -> Result<KeptDurations> {
        Ok(orders::store_durations(&mut *self.read().await?, store).await?)
    }

    async fn keep_followed_durations(&self, limit: u32) -> Result<FollowedDurations> {
        let round = orders::read_followed_round(&mut *self.read().await?, limit).await?;
        match round {
            Some(round) => self.write(KeepFollowedRound(round)).await,
            None => Ok(FollowedDurations::default()),
        }
    }

    fn pool_status(&self) -> PoolStatus {
        PoolStatus {
            connections: self.readers.size(),
            idle: Some(u32::try_from(self.readers.num_idle()).unwrap_or(u32::MAX)),
            queued: None,
        }
    }

    async fn save_push_subscription(&self, new: NewPushSubscription) -> Result<PushSubscription> {
        self.write(new).await
    }

    async fn delete_push_subscription(&self, owner: PushOwner, endpoint: String) -> Result<bool> {
        self.write(DeletePushSubscription(owner, endpoint)).await
    }

    async fn push_subscriptions(&self, owner: PushOwner) -> Result<Vec<PushSubscription>> {
        Ok(push::push_subscriptions(&mut *self.read().await?, owner).await?)
    }

    async fn push_cursor(&self) -> Result<i64> {
        Ok(push::push_cursor(&mut *self.read().await?).await?)
    }

    async fn enqueue_push_jobs(&self, batch: PushEnqueue) -> Result<bool> {
        self.write(batch).await
    }

    async fn claim_push_jobs(
        &self, now: OffsetDateTime, until: OffsetDateTime, limit: u32,
    ) -> Result<Vec<PushJob>> {
        self.write(ClaimPushJobs(now, until, limit)).await
    }

    async fn next_push_attempt(&self) -> Result<Option<OffsetDateTime>> {
        Ok(push::next_push_attempt(&mut *self.read().await?).await?)
    }

    async fn record_push_attempt(&self, attempt: PushAttempt) -> Result<()> {
        self.write(attempt).await
    }

    async fn create_webhook(&self, new: NewWebhook) -> Result<Webhook> {
        self.write(new).await
    }

    async fn webhooks(&self, store: StoreId) -> Result<Vec<Webhook>> {
        Ok(webhooks::webhooks(&mut *self.read().await?, store).await?)
    }

    async fn enabled_webhooks(&self) -> Result<Vec<Webhook>> {
        Ok(webhooks::enabled_webhooks(&mut *self.read().await?).await?)
    }

    async fn delete_webhook(&self, store: StoreId, id: WebhookId) -> Result<bool> {
        self.write(DeleteWebhook(store, id)).await
    }

    async fn rotate_webhook_secret(
        &self, store: StoreId, id: WebhookId, secret: String, previous_until: OffsetDateTime,
    ) -> Result<Option<Webhook>> {
        self.write(RotateWebhookSecret(store, id, secret, previous_until))
            .await
    }

    async fn webhook_deliveries(
        &self, webhook: WebhookId, limit: u32,
    ) -> Result<Vec<WebhookDelivery>> {
        Ok(webhooks::webhook_deliveries(&mut *self.read().await?, webhook, limit).await?)
    }

    async fn retry_webhook_delivery(
        &self, webhook: WebhookId, delivery: DeliveryId, at: OffsetDateTime,
    ) -> Result<Option<WebhookDelivery>> {
        self.write(RetryWebhookDelivery(webhook, delivery, at))
            .await
    }

    async fn webhook_cursor(&self) -> Result<i64> {
        Ok(webhooks::webhook_cursor(&mut *self.read().await?).await?)
    }

    async fn enqueue_webhook_deliveries(&self, batch: WebhookEnqueue) -> Result<bool> {
        self.write(batch).await
    }

    async fn claim_webhook_deliveries(
        &self, now: OffsetDateTime, until: OffsetDateTime, limit: u32,
    ) -> Result<Vec<ClaimedDelivery>> {
        self.write(ClaimWebhookDeliveries(now, until, limit)).await
    }

    async fn next_webhook_attempt(&self) -> Result<Option<OffsetDateTime>> {
        Ok(webhooks::next_webhook_attempt(&mut *self.read().await?).await?)
    }

    async fn record_webhook_attempt(&self, attempt: WebhookAttempt) -> Result<()> {
        self.write(attempt).await
    }

    async fn email_cursor(&self) -> Result<i64> {
        Ok(email::email_cursor(&mut *self.read().await?).await?)
    }

    async fn enqueue_emails(&self, batch: EmailEnqueue) -> Result<bool> {
        self.write(batch).await
    }

    async fn claim_emails(
        &self, now: OffsetDateTime, until: OffsetDateTime, limit: u32,
    ) -> Result<Vec<EmailJob>> {
        self.write(ClaimEmails(now, until, limit)).await
    }

    async fn next_email_attempt(&self) -> Result<Option<OffsetDateTime>> {
        Ok(email::next_email_attempt(&mut *self.read().await?).await?)
    }

    async fn record_email_attempt(&self, attempt: EmailAttempt) -> Result<()> {
        self.write(attempt).await
    }

    async fn email_jobs(&self, event: i64) -> Result<Vec<EmailJobRecord>> {
        Ok(email::email_jobs(&mut *self.read().await?, event).await?)
    }

    async fn prune_outbox(
        &self, outbox: crate::Outbox, before: OffsetDateTime, limit: u32,
    ) -> Result<u64> {
        self.write(outbox::PruneOutbox(outbox, before, limit)).await
    }

    async fn set_email_opt_out(
        &self, user: UserId, opted_out: bool, at: OffsetDateTime,
    ) -> Result<()> {
        self.write(SetEmailOptOut(user, opted_out, at)).await
    }

    async fn email_opted_out(&self, user: UserId) -> Result<bool> {
        Ok(email::email_opted_out(&mut *self.read().await?, user).await?)
    }

    async fn queued_orders(
        &self, store: StoreId, statuses: Vec<StatusKey>, limit: usize,
    ) -> Result<QueuedOrders> {
        Ok(orders::queued_orders(&mut *self.read().await?, store, &statuses, limit).await?)
    }

    async fn claim_idempotency_key(&self, claim: IdempotencyClaim) -> Result<IdempotencyOutcome> {
        self.write(claim).await
    }

    async fn complete_idempotency_key(
        &self, scope: String, key: String, response: StoredResponse,
    ) -> Result<()> {
        self.write(idempotency::CompleteKey(scope, key, response))
            .await
    }

    async fn release_idempotency_key(&self, scope: String, key: String) -> Result<()> {
        self.write(idempotency::ReleaseKey(scope, key)).await
    }
}
