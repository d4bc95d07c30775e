//! The embedded SQLite store.
//!
//! One writer thread owns the only write connection and commits in groups:
//! it takes every request waiting (up to [`MAX_BATCH`]), runs each in its own
//! SAVEPOINT inside one transaction, commits once (`synchronous=FULL`, so the
//! commit is on disk), and only then answers the requests and hands the
//! batch's events to the commit listener. Because one thread assigns event
//! ids and commits in order, event ids are gap-free in commit order.
//! Reads go to a few reader threads with read-only connections (WAL lets
//! them run beside the writer).
//!
//! Every connection reports each statement it runs to `tracing` when the
//! store's statement target is enabled as it opens (see
//! [`statements`](crate::statements)); otherwise no callback is registered.

backend_modules!();
pub mod backup;

use std::path::{Path, PathBuf};
use std::sync::Arc;

use async_trait::async_trait;
use ordertrack_domain::{
    DeliveryId, FulfilmentKind, HistoryEntry, ItemStatusChange, KeptDurations, Order, OrderId,
    OrderPlan, ProductId, Role, StatusChange, StatusKey, StoreId, UserId, WebhookId,
};
use rusqlite::trace::{TraceEvent, TraceEventCodes};
use rusqlite::{Connection, OpenFlags};
use time::OffsetDateTime;
use tokio::sync::oneshot;

use crate::email_records::*;
use crate::push_records::*;
use crate::records::*;
use crate::statements::STATEMENT_TARGET;
use crate::webhook_records::*;
use crate::{CommitListener, Repository, Result, StoreError};
pub use writer::MAX_BATCH;
use writer::{WriteJob, WriteTx};

type ReadJob = Box<dyn FnOnce(&Connection) + Send>;

/// How to open a [`SqliteRepository`].
pub struct SqliteOptions {
    /// Number of reader threads (read-only connections).
    pub readers: usize,
    /// Receives committed events.
    pub listener: Option<Arc<dyn CommitListener>>,
}

impl Default for SqliteOptions {
    fn default() -> Self {
        SqliteOptions {
            readers: 4,
            listener: None,
        }
    }
}

/// The embedded store: a SQLite database file in WAL mode.
pub struct SqliteRepository {
    writer: flume::Sender<WriteJob>,
    readers: flume::Sender<ReadJob>,
    /// How many reader threads take jobs from `readers`.
    reader_threads: u32,
    path: PathBuf,
}

/// Creates the database file, if it does not exist yet, readable and
/// writable by its owner only (0600): it holds password hashes and every
/// customer's orders. SQLite gives the `-wal` and `-shm` files it creates
/// beside it the database file's permissions.
fn create_private(path: &Path) -> Result<()> {
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    match options.open(path) {
        Ok(_) => Ok(()),
        Err(error) if error.kind() == std::io::ErrorKind::AlreadyExists => Ok(()),
        Err(error) => Err(StoreError::Database(format!(
            "creating {}: {error}",
            path.display()
        ))),
    }
}

impl SqliteRepository {
    /// Opens (creating if needed) the database at `path`, runs pending
    /// migrations and starts the writer and reader threads.
    pub fn open(path: &Path, options: SqliteOptions) -> Result<Self> {
        create_private(path)?;
        let mut write_conn = Connection::open(path)?;
        configure(&write_conn)?;
        migrate::run(&mut write_conn)?;
        report_statements(&mut write_conn)?;

        let (writer, write_jobs) = flume::unbounded::<WriteJob>();
        let listener = options.listener;
        std::thread::Builder::new()
            .name("sqlite-writer".into())
            .spawn(move || writer::run(write_conn, write_jobs, listener))
            .map_err(|e| StoreError::Database(e.to_string()))?;

        let (readers, read_jobs) = flume::unbounded::<ReadJob>();
        let reader_threads = options.readers.max(1);
        for n in 0..reader_threads {
            let mut conn = Connection::open_with_flags(
                path,
                OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
            )?;
            keep_plans(&conn)?;
            report_statements(&mut conn)?;
            conn.busy_timeout(std::time::Duration::from_secs(5))?;
            let jobs = read_jobs.clone();
            std::thread::Builder::new()
                .name(format!("sqlite-reader-{n}"))
                .spawn(move || {
                    while let Ok(job) = jobs.recv() {
                        job(&conn);
                    }
                })
                .map_err(|e| StoreError::Database(e.to_string()))?;
        }
        Ok(SqliteRepository {
            writer,
            readers,
            reader_threads: u32::try_from(reader_threads).unwrap_or(u32::MAX),
            path: path.to_owned(),
        })
    }

    /// Runs pending migrations on the database at `path` and returns how many ran.
    pub fn migrate(path: &Path) -> Result<usize> {
        create_private(path)?;
        let mut conn = Connection::open(path)?;
        configure(&conn)?;
        migrate::run(&mut conn)
    }

    /// The database file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    async fn read<T, F>(&self, f: F) -> Result<T>
    where
        T: Send + 'static,
        F: FnOnce(&Connection) -> Result<T> + Send + 'static,
    {
        let (reply, answer) = oneshot::channel();
        let job: ReadJob = Box::new(move |conn| {
            let _ = reply.send(f(conn));
        });
        self.readers
            .send(job)
            .map_err(|_| StoreError::Unavailable)?;
        answer.await.map_err(|_| StoreError::Unavailable)?
    }

    async fn write<T, F>(&self, f: F) -> Result<T>
    where
        T: Send + 'static,
        F: FnOnce(&mut WriteTx<'_>) -> Result<T> + Send + 'static,
    {
        let (reply, answer) = oneshot::channel();
        self.writer
            .send(writer::job(f, reply))
            .map_err(|_| StoreError::Unavailable)?;
        answer.await.map_err(|_| StoreError::Unavailable)?
    }
}

/// Statements each connection keeps prepared. Larger than the number of
/// distinct statements the store runs, so none is ever parsed twice (the
/// default of 16 made busy paths re-parse their SQL on every call).
const STATEMENT_CACHE: usize = 128;

/// Prepares each statement once and keeps its plan: a cache larger than
/// the statements the store runs, and the query planner stability
/// guarantee, without which binding a new value (a `LIMIT`, an id) can send
/// a statement back through the parser on its next step.
fn keep_plans(conn: &Connection) -> Result<()> {
    conn.set_prepared_statement_cache_capacity(STATEMENT_CACHE);
    conn.set_db_config(
        rusqlite::config::DbConfig::SQLITE_DBCONFIG_ENABLE_QPSG,
        true,
    )?;
    Ok(())
}

/// Reports every statement `conn` runs as a DEBUG event of
/// [`STATEMENT_TARGET`], if that target is enabled now: the callback is
/// registered only then, so a store opened without it pays nothing.
fn report_statements(conn: &mut Connection) -> Result<()> {
    if !tracing::enabled!(target: STATEMENT_TARGET, tracing::Level::DEBUG) {
        return Ok(());
    }
    conn.trace_v2(
        TraceEventCodes::SQLITE_TRACE_STMT,
        Some(|event: TraceEvent<'_>| {
            // A trigger program reports itself as `-- TRIGGER name`: it is
            // part of the statement that fired it, not one of its own.
            if let TraceEvent::Stmt(_, sql) = event
                && !sql.starts_with("--")
            {
                tracing::debug!(target: STATEMENT_TARGET, statement = sql);
            }
        }),
    )?;
    Ok(())
}

fn configure(conn: &Connection) -> Result<()> {
    keep_plans(conn)?;
    conn.busy_timeout(std::time::Duration::from_secs(5))?;
    // WAL lets readers run beside the writer; FULL syncs the WAL on every
    // commit so an acknowledged change survives a crash or power loss.
    conn.pragma_update(None, "journal_mode", "WAL")?;
    conn.pragma_update(None, "synchronous", "FULL")?;
    conn.pragma_update(None, "foreign_keys", "ON")?;
    Ok(())
}

#[async_trait]
impl Repository for SqliteRepository {
    async fn create_user(&self, new: NewUser) -> Result<User> {
        self.write(move |tx| users::create_user(tx.conn(), &new))
            .await
    }

    async fn user_credentials(&self, email: &str) -> Result<Option<Credentials>> {
        let email = email.to_lowercase();
        self.read(move |conn| users::user_credentials(conn, &email))
            .await
    }

    async fn user(&self, id: UserId) -> Result<Option<User>> {
        self.read(move |conn| users::user(conn, id)).await
    }

    async fn create_session(&self, session: NewSession) -> Result<()> {
        self.write(move |tx| users::create_session(tx.conn(), &session))
            .await
    }

    async fn delete_session(&self, session_id: &str) -> Result<()> {
        let id = session_id.to_owned();
        self.write(move |tx| users::delete_session(tx, &id)).await
    }

    async fn session_identity(
        &self, session_id: &str, now: OffsetDateTime,
    ) -> Result<Option<Identity>> {
        let id = session_id.to_owned();
        self.read(move |conn| users::session_identity(conn, &id, now))
            .await
    }

    async fn cache_marks(&self) -> Result<CacheMarks> {
        self.read(users::cache_marks).await
    }

    async fn create_store(&self, new: NewStore) -> Result<StoreRecord> {
        self.write(move |tx| stores::create_store(tx.conn(), &new))
            .await
    }

    async fn stores(&self) -> Result<Vec<StoreRecord>> {
        self.read(stores::stores).await
    }

    async fn store_by_slug(&self, slug: &str) -> Result<Option<StoreRecord>> {
        let slug = slug.to_owned();
        self.read(move |conn| stores::store_by_slug(conn, &slug))
            .await
    }

    async fn store(&self, id: StoreId) -> Result<Option<StoreRecord>> {
        self.read(move |conn| stores::store(conn, id)).await
    }

    async fn set_membership(&self, user: UserId, store: StoreId, role: Role) -> Result<()> {
        self.write(move |tx| stores::set_membership(tx, user, store, role))
            .await
    }

    async fn remove_membership(&self, user: UserId, store: StoreId) -> Result<bool> {
        self.write(move |tx| stores::remove_membership(tx, user, store))
            .await
    }

    async fn staff(&self, store: StoreId) -> Result<Vec<StaffMember>> {
        self.read(move |conn| stores::staff(conn, store)).await
    }

    async fn create_product(&self, store: StoreId, new: NewProduct) -> Result<Product> {
        self.write(move |tx| stores::create_product(tx.conn(), store, &new))
            .await
    }

    async fn update_product(
        &self, store: StoreId, product: ProductId, patch: ProductPatch,
    ) -> Result<Option<Product>> {
        self.write(move |tx| stores::update_product(tx.conn(), store, product, &patch))
            .await
    }

    async fn products(&self, store: StoreId) -> Result<Vec<Product>> {
        self.read(move |conn| stores::products(conn, store)).await
    }

    async fn open_store(&self, opening: StoreOpening) -> Result<StoreWithSettings> {
        self.write(move |tx| settings::open_store(tx, &opening))
            .await
    }

    async fn stores_with_settings(&self) -> Result<Vec<StoreWithSettings>> {
        self.read(settings::stores_with_settings).await
    }

    async fn add_review(&self, new: NewReview) -> Result<Review> {
        self.write(move |tx| reviews::add_review(tx.conn(), &new))
            .await
    }

    async fn review(&self, order: OrderId) -> Result<Option<Review>> {
        self.read(move |conn| reviews::review(conn, order)).await
    }

    async fn store_reviews(
        &self, store: StoreId, before: Option<OrderId>, limit: u32,
    ) -> Result<ReviewPage> {
        self.read(move |conn| reviews::store_reviews(conn, store, before, limit))
            .await
    }

    async fn add_store_workflow(&self, new: NewStoreWorkflow) -> Result<StoreWorkflow> {
        self.write(move |tx| workflows::add_store_workflow(tx.conn(), &new))
            .await
    }

    async fn store_workflow(&self, store: StoreId, version: i64) -> Result<Option<StoreWorkflow>> {
        self.read(move |conn| workflows::store_workflow(conn, store, version))
            .await
    }

    async fn latest_store_workflow(&self, store: StoreId) -> Result<Option<StoreWorkflow>> {
        self.read(move |conn| workflows::latest_store_workflow(conn, store))
            .await
    }

    async fn store_with_settings(&self, slug: &str) -> Result<Option<StoreWithSettings>> {
        let slug = slug.to_owned();
        self.read(move |conn| settings::store_with_settings(conn, &slug))
            .await
    }

    async fn store_menu(&self, slug: &str) -> Result<Option<StoreMenu>> {
        let slug = slug.to_owned();
        self.read(move |conn| settings::store_menu(conn, &slug))
            .await
    }

    async fn update_store_settings(
        &self, store: StoreId, patch: StoreSettingsPatch,
    ) -> Result<Option<StoreWithSettings>> {
        self.write(move |tx| settings::update_store_settings(tx.conn(), store, &patch))
            .await
    }

    async fn create_invitation(&self, new: NewInvitation) -> Result<Invitation> {
        self.write(move |tx| invitations::create_invitation(tx.conn(), &new))
            .await
    }

    async fn invitation(&self, token_hash: &str) -> Result<Option<Invitation>> {
        let hash = token_hash.to_owned();
        self.read(move |conn| invitations::invitation(conn, &hash))
            .await
    }

    async fn accept_invitation(
        &self, token_hash: &str, user: UserId, now: OffsetDateTime,
    ) -> Result<Acceptance> {
        let hash = token_hash.to_owned();
        self.write(move |tx| invitations::accept_invitation(tx, &hash, user, now))
            .await
    }

    async fn place_order(&self, new: NewOrder) -> Result<PlacedOrder> {
        self.write(move |tx| orders::place_order(tx, new)).await
    }

    async fn order(&self, id: OrderId) -> Result<Option<Order>> {
        self.read(move |conn| orders::order(conn, id)).await
    }

    async fn order_in_store(&self, key: OrderKey) -> Result<Option<OrderInStore>> {
        self.read(move |conn| orders::order_in_store(conn, &key))
            .await
    }

    async fn orders(&self, query: OrderQuery) -> Result<OrderPage> {
        self.read(move |conn| orders::orders(conn, &query)).await
    }

    async fn status_counts(
        &self, store: StoreId, fulfilment: Option<FulfilmentKind>,
    ) -> Result<Vec<(String, i64)>> {
        self.read(move |conn| orders::status_counts(conn, store, fulfilment))
            .await
    }

    async fn history(&self, order: OrderId) -> Result<Vec<HistoryEntry>> {
        self.read(move |conn| orders::history(conn, order)).await
    }

    async fn apply_status_change(&self, change: StatusChange) -> Result<Order> {
        self.write(move |tx| orders::apply_status_change(tx, change))
            .await
    }

    async fn apply_item_change(&self, change: ItemStatusChange) -> Result<Order> {
        self.write(move |tx| orders::apply_item_change(tx, change))
            .await
    }

    async fn apply_plan(&self, plan: OrderPlan) -> Result<Order> {
        self.write(move |tx| orders::apply_plan(tx, plan)).await
    }

    async fn add_printer(&self, new: NewPrinter) -> Result<Printer> {
        self.write(move |tx| printing::add_printer(tx.conn(), &new))
            .await
    }

    async fn printers(&self, store: StoreId) -> Result<Vec<Printer>> {
        self.read(move |conn| printing::printers(conn, store)).await
    }

    async fn remove_printer(&self, store: StoreId, printer: i64) -> Result<bool> {
        self.write(move |tx| printing::remove_printer(tx.conn(), store, printer))
            .await
    }

    async fn print_cursor(&self) -> Result<i64> {
        self.read(printing::print_cursor).await
    }

    async fn queue_print_jobs(&self, from: i64, to: i64, jobs: Vec<NewPrintJob>) -> Result<bool> {
        self.write(move |tx| printing::queue_print_jobs(tx.conn(), from, to, &jobs))
            .await
    }

    async fn queue_print_job(&self, job: NewPrintJob) -> Result<PrintJob> {
        self.write(move |tx| printing::queue_print_job(tx.conn(), &job))
            .await
    }

    async fn claim_print_jobs(
        &self, now: OffsetDateTime, lease_until: OffsetDateTime, limit: u32,
    ) -> Result<Vec<PrintJob>> {
        self.write(move |tx| printing::claim_print_jobs(tx.conn(), now, lease_until, limit))
            .await
    }

    async fn finish_print_job(&self, job: i64, outcome: PrintOutcome) -> Result<()> {
        self.write(move |tx| printing::finish_print_job(tx.conn(), job, &outcome))
            .await
    }

    async fn print_jobs(&self, order: OrderId) -> Result<Vec<PrintJob>> {
        self.read(move |conn| printing::print_jobs(conn, order))
            .await
    }

    async fn next_print_attempt(&self) -> Result<Option<OffsetDateTime>> {
        self.read(printing::next_print_attempt).await
    }

    async fn events_after(
        &self, filter: EventFilter, after: i64, limit: u32,
    ) -> Result<Vec<StoredEvent>> {
        self.read(move |conn| events::events_after(conn, &filter, after, limit))
            .await
    }

    async fn events_since(&self, after: i64, limit: u32) -> Result<Vec<LogEntry>> {
        self.read(move |conn| events::events_since(conn, after, limit))
            .await
    }

    async fn last_event_position(&self) -> Result<i64> {
        self.read(events::last_event_position).await
    }

    async fn report_rows(&self, query: ReportQuery) -> Result<ReportRows> {
        self.read(move |conn| reports::report_rows(conn, query))
            .await
    }

    async fn report_days(&self, query: ReportDaysQuery) -> Result<ReportDays> {
        self.read(move |conn| rollups::report_days(conn, &query))
            .await
    }

    async fn rebuild_report_days(&self, rebuild: RollupRebuild) -> Result<()> {
        self.write(move |tx| rollups::rebuild_report_days(tx.conn(), &rebuild))
            .await
    }

    async fn store_durations(&self, store: StoreId) -> Result<KeptDurations> {
        self.read(move |conn| orders::store_durations(conn, store))
            .await
    }

    async fn keep_followed_durations(&self, limit: u32) -> Result<FollowedDurations> {
        let round = self
            .read(move |conn| orders::read_followed_round(conn, limit))
            .await?;
        match round {
            Some(round) => {
                self.write(move |tx| orders::keep_followed_round(tx.conn(), &round))
                    .await
            }
            None => Ok(FollowedDurations::default()),
        }
    }

    fn pool_status(&self) -> PoolStatus {
        let queued = self.readers.len() + self.writer.len();
        PoolStatus {
            connections: self.reader_threads,
            idle: None,
            queued: Some(u32::try_from(queued).unwrap_or(u32::MAX)),
        }
    }

    async fn save_push_subscription(&self, new: NewPushSubscription) -> Result<PushSubscription> {
        self.write(move |tx| push::save_push_subscription(tx.conn(), &new))
            .await
    }

    async fn delete_push_subscription(&self, owner: PushOwner, endpoint: String) -> Result<bool> {
        self.write(move |tx| push::delete_push_subscription(tx.conn(), owner, &endpoint))
            .await
    }

    async fn push_subscriptions(&self, owner: PushOwner) -> Result<Vec<PushSubscription>> {
        self.read(move |conn| push::push_subscriptions(conn, owner))
            .await
    }

    async fn push_cursor(&self) -> Result<i64> {
        self.read(push::push_cursor).await
    }

    async fn enqueue_push_jobs(&self, batch: PushEnqueue) -> Result<bool> {
        self.write(move |tx| push::enqueue_push_jobs(tx.conn(), &batch))
            .await
    }

    async fn claim_push_jobs(
        &self, now: OffsetDateTime, until: OffsetDateTime, limit: u32,
    ) -> Result<Vec<PushJob>> {
        self.write(move |tx| push::claim_push_jobs(tx.conn(), now, until, limit))
            .await
    }

    async fn next_push_attempt(&self) -> Result<Option<OffsetDateTime>> {
        self.read(push::next_push_attempt).await
    }

    async fn record_push_attempt(&self, attempt: PushAttempt) -> Result<()> {
        self.write(move |tx| push::record_push_attempt(tx.conn(), &attempt))
            .await
    }

    async fn create_webhook(&self, new: NewWebhook) -> Result<Webhook> {
        self.write(move |tx| webhooks::create_webhook(tx.conn(), &new))
            .await
    }

    async fn webhooks(&self, store: StoreId) -> Result<Vec<Webhook>> {
        self.read(move |conn| webhooks::webhooks(conn, store)).await
    }

    async fn enabled_webhooks(&self) -> Result<Vec<Webhook>> {
        self.read(webhooks::enabled_webhooks).await
    }

    async fn delete_webhook(&self, store: StoreId, id: WebhookId) -> Result<bool> {
        self.write(move |tx| webhooks::delete_webhook(tx.conn(), store, id))
            .await
    }

    async fn rotate_webhook_secret(
        &self, store: StoreId, id: WebhookId, secret: String, previous_until: OffsetDateTime,
    ) -> Result<Option<Webhook>> {
        self.write(move |tx| {
            webhooks::rotate_webhook_secret(tx.conn(), store, id, &secret, previous_until)
        })
        .await
    }

    async fn webhook_deliveries(
        &self, webhook: WebhookId, limit: u32,
    ) -> Result<Vec<WebhookDelivery>> {
        self.read(move |conn| webhooks::webhook_deliveries(conn, webhook, limit))
            .await
    }

    async fn retry_webhook_delivery(
        &self, webhook: WebhookId, delivery: DeliveryId, at: OffsetDateTime,
    ) -> Result<Option<WebhookDelivery>> {
        self.write(move |tx| webhooks::retry_webhook_delivery(tx.conn(), webhook, delivery, at))
            .await
    }

    async fn webhook_cursor(&self) -> Result<i64> {
        self.read(webhooks::webhook_cursor).await
    }

    async fn enqueue_webhook_deliveries(&self, batch: WebhookEnqueue) -> Result<bool> {
        self.write(move |tx| webhooks::enqueue_webhook_deliveries(tx.conn(), &batch))
            .await
    }

    async fn claim_webhook_deliveries(
        &self, now: OffsetDateTime, until: OffsetDateTime, limit: u32,
    ) -> Result<Vec<ClaimedDelivery>> {
        self.write(move |tx| webhooks::claim_webhook_deliveries(tx.conn(), now, until, limit))
            .await
    }

    async fn next_webhook_attempt(&self) -> Result<Option<OffsetDateTime>> {
        self.read(webhooks::next_webhook_attempt).await
    }

    async fn record_webhook_attempt(&self, attempt: WebhookAttempt) -> Result<()> {
        self.write(move |tx| webhooks::record_webhook_attempt(tx.conn(), &attempt))
            .await
    }

    async fn email_cursor(&self) -> Result<i64> {
        self.read(email::email_cursor).await
    }

    async fn enqueue_emails(&self, batch: EmailEnqueue) -> Result<bool> {
        self.write(move |tx| email::enqueue_emails(tx.conn(), &batch))
            .await
    }

    async fn claim_emails(
        &self, now: OffsetDateTime, until: OffsetDateTime, limit: u32,
    ) -> Result<Vec<EmailJob>> {
        self.write(move |tx| email::claim_emails(tx.conn(), now, until, limit))
            .await
    }

    async fn next_email_attempt(&self) -> Result<Option<OffsetDateTime>> {
        self.read(email::next_email_attempt).await
    }

    async fn record_email_attempt(&self, attempt: EmailAttempt) -> Result<()> {
        self.write(move |tx| email::record_email_attempt(tx.conn(), &attempt))
            .await
    }

    async fn email_jobs(&self, event: i64) -> Result<Vec<EmailJobRecord>> {
        self.read(move |conn| email::email_jobs(conn, event)).await
    }

    async fn prune_outbox(
        &self, outbox: crate::Outbox, before: OffsetDateTime, limit: u32,
    ) -> Result<u64> {
        self.write(move |tx| outbox::prune(tx.conn(), outbox, before, limit))
            .await
    }

    async fn set_email_opt_out(
        &self, user: UserId, opted_out: bool, at: OffsetDateTime,
    ) -> Result<()> {
        self.write(move |tx| email::set_email_opt_out(tx.conn(), user, opted_out, at))
            .await
    }

    async fn email_opted_out(&self, user: UserId) -> Result<bool> {
        self.read(move |conn| email::email_opted_out(conn, user))
            .await
    }

    async fn queued_orders(
        &self, store: StoreId, statuses: Vec<StatusKey>, limit: usize,
    ) -> Result<QueuedOrders> {
        self.read(move |conn| orders::queued_orders(conn, store, &statuses, limit))
            .await
    }

    async fn claim_idempotency_key(&self, claim: IdempotencyClaim) -> Result<IdempotencyOutcome> {
        self.write(move |tx| idempotency::claim(tx.conn(), &claim))
            .await
    }

    async fn complete_idempotency_key(
        &self, scope: String, key: String, response: StoredResponse,
    ) -> Result<()> {
        self.write(move |tx| idempotency::complete(tx.conn(), &scope, &key, &response))
            .await
    }

    async fn release_idempotency_key(&self, scope: String, key: String) -> Result<()> {
        self.write(move |tx| idempotency::release(tx.conn(), &scope, &key))
            .await
    }
}
