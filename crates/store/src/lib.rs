//! Persistence for the order desk.
//!
//! [`Repository`] is the one trait the application talks to. [`sqlite`] is the
//! embedded implementation, [`postgres`] the one for running many instances;
//! every implementation must pass the suite in [`conformance`] (enabled with
//! the `conformance` feature). [`statements`] counts the SQL statements
//! either backend runs (its `tracing` layer with the `statements` feature).

/// The modules every backend has: the areas it lays its SQL out by, one
/// each (`users`, `stores`, `orders`, ...), its migrations, its row
/// adapter and its writer. Declared once, so neither backend can grow an
/// area the other lacks.
macro_rules! backend_modules {
    () => {
        mod email;
        mod events;
        mod idempotency;
        mod invitations;
        mod orders;
        mod outbox;
        mod printing;
        mod push;
        mod reports;
        mod reviews;
        mod rollups;
        mod settings;
        mod stores;
        mod users;
        mod webhooks;
        mod workflows;

        mod migrate;
        mod rows;
        mod writer;
    };
}

mod codec;
mod email_records;
mod error;
pub mod postgres;
mod push_records;
mod records;
pub mod sqlite;
pub mod statements;
mod webhook_records;

#[cfg(feature = "conformance")]
pub mod conformance;
#[cfg(feature = "conformance")]
pub mod testing;

use async_trait::async_trait;
use ordertrack_domain::{
    DeliveryId, FulfilmentKind, HistoryEntry, ItemStatusChange, KeptDurations, Order, OrderId,
    OrderPlan, ProductId, Role, StatusChange, StatusKey, StoreId, UserId, WebhookId,
};
use time::OffsetDateTime;

pub use error::StoreError;

/// What store operations return: their error is a [`StoreError`].
pub type Result<T, E = StoreError> = std::result::Result<T, E>;
pub use email_records::*;
pub use postgres::PostgresRepository;
pub use push_records::*;
pub use records::*;
pub use sqlite::SqliteRepository;
pub use webhook_records::*;

/// What a held idempotency key means for a request with `fingerprint`:
/// the one decision both backends make on the row they read.
fn idempotency_outcome(
    fingerprint: &str, held_fingerprint: String, status: Option<i64>, content_type: Option<String>,
    location: Option<String>, body: Option<Vec<u8>>,
) -> IdempotencyOutcome {
    if held_fingerprint != fingerprint {
        return IdempotencyOutcome::Mismatch;
    }
    match status.and_then(|status| u16::try_from(status).ok()) {
        None => IdempotencyOutcome::InProgress,
        Some(status) => IdempotencyOutcome::Replay(StoredResponse {
            status,
            content_type,
            location,
            body: body.unwrap_or_default(),
        }),
    }
}

/// An outbox follower of the event log that keeps jobs with a retry state
/// (its cursor is how far it has turned events into its jobs).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outbox {
    /// Webhook deliveries.
    Webhooks,
    /// Customer e-mail jobs.
    Email,
    /// Web Push jobs.
    Push,
}

impl Outbox {
    /// The cursor's one-row table (`id = 1`, `last_event_id`), named alike
    /// on both backends.
    pub(crate) fn cursor_table(self) -> &'static str {
        match self {
            Outbox::Webhooks => "webhook_cursor",
            Outbox::Email => "email_cursor",
            Outbox::Push => "push_cursor",
        }
    }

    /// The jobs' table: each row has an `id`, a `state` (`pending` until it
    /// is done with) and its `created_at`.
    pub(crate) fn jobs_table(self) -> &'static str {
        match self {
            Outbox::Webhooks => "webhook_deliveries",
            Outbox::Email => "email_jobs",
            Outbox::Push => "push_jobs",
        }
    }
}

/// Receives every committed batch of event-log entries (order events and
/// access changes), in commit order, right after the commit and before the
/// writers are answered.
pub trait CommitListener: Send + Sync + 'static {
    /// Called on the writer: must be quick and must not block.
    fn committed(&self, events: &[LogEntry]);
}

/// Everything the order desk persists. Implementations must write every
/// order change and its event in one transaction, log every access change
/// ([`AccessChange`]: a logout, a staff member removed or given another
/// role) in the transaction that makes it, assign event positions that are
/// gap-free in commit order, and acknowledge only durable commits.
#[async_trait]
pub trait Repository: Send + Sync + 'static {
    // ---- users and sessions ----

    /// Creates a user; a taken email is [`StoreError::Conflict`].
    async fn create_user(&self, new: NewUser) -> Result<User>;
    /// A user and their password hash, by email (case-insensitive).
    async fn user_credentials(&self, email: &str) -> Result<Option<Credentials>>;
    /// A user by id.
    async fn user(&self, id: UserId) -> Result<Option<User>>;
    /// Records a signed-in session.
    async fn create_session(&self, session: NewSession) -> Result<()>;
    /// Ends a session (logout), logging [`AccessChange::SessionEnded`].
    /// Unknown ids are ignored (and log nothing).
    async fn delete_session(&self, session_id: &str) -> Result<()>;
    /// The user behind a live session, with their current memberships:
    /// looked up on every request so a removed staff member loses access at once.
    async fn session_identity(
        &self, session_id: &str, now: OffsetDateTime,
    ) -> Result<Option<Identity>>;
    /// The marks caches are checked against (one primary-key row): the
    /// access mark moves in the transaction of every logout and staff role
    /// given, changed or taken away; the configuration mark in that of
    /// every store settings change and workflow version added.
    async fn cache_marks(&self) -> Result<CacheMarks>;

    // ---- stores, staff and products ----

    /// Creates a store; a taken slug is [`StoreError::Conflict`].
    async fn create_store(&self, new: NewStore) -> Result<StoreRecord>;
    /// All stores, by name.
    async fn stores(&self) -> Result<Vec<StoreRecord>>;
    /// A store by slug.
    async fn store_by_slug(&self, slug: &str) -> Result<Option<StoreRecord>>;
    /// A store by id.
    async fn store(&self, id: StoreId) -> Result<Option<StoreRecord>>;
    /// Gives `user` the staff `role` in `store`, replacing any role they had
    /// there; replacing a different role logs [`AccessChange::StaffChanged`].
    async fn set_membership(&self, user: UserId, store: StoreId, role: Role) -> Result<()>;
    /// Removes `user` from `store`'s staff, logging
    /// [`AccessChange::StaffChanged`]; false (and nothing logged) if they were
    /// not staff.
    async fn remove_membership(&self, user: UserId, store: StoreId) -> Result<bool>;
    /// The staff of a store.
    async fn staff(&self, store: StoreId) -> Result<Vec<StaffMember>>;
    /// Adds a product to a store's catalog.
    async fn create_product(&self, store: StoreId, new: NewProduct) -> Result<Product>;
    /// Changes a product; `None` if the store has no such product.
    async fn update_product(
        &self, store: StoreId, product: ProductId, patch: ProductPatch,
    ) -> Result<Option<Product>>;
    /// A store's catalog, in the order products were added.
    async fn products(&self, store: StoreId) -> Result<Vec<Product>>;

    // ---- store settings ----

    /// Creates a store with its settings and (if given) makes `owner` its
    /// owner, in one transaction; a taken slug is [`StoreError::Conflict`],
    /// an unknown owner [`StoreError::NotFound`] (and nothing is written).
    async fn open_store(&self, opening: StoreOpening) -> Result<StoreWithSettings>;
    /// Every store with its settings, by name.
    async fn stores_with_settings(&self) -> Result<Vec<StoreWithSettings>>;
    /// A store with its settings, by slug.
    async fn store_with_settings(&self, slug: &str) -> Result<Option<StoreWithSettings>>;
    /// What placing an order in the store `slug` needs, in one read
    /// ([`StoreMenu`]); `None` if there is no such store.
    async fn store_menu(&self, slug: &str) -> Result<Option<StoreMenu>>;
    /// Changes a store's name and settings; `None` if there is no such store.
    async fn update_store_settings(
        &self, store: StoreId, patch: StoreSettingsPatch,
    ) -> Result<Option<StoreWithSettings>>;

    // ---- staff invitations ----

    /// Stores an invitation (only its token's hash); an unknown store or
    /// inviter is [`StoreError::NotFound`].
    async fn create_invitation(&self, new: NewInvitation) -> Result<Invitation>;
    /// An invitation with its store, by its token's hash.
    async fn invitation(&self, token_hash: &str) -> Result<Option<Invitation>>;
    /// Accepts an invitation for `user` at `now`: in one transaction, marks
    /// it used (only if it is unused and unexpired) and gives its role
    /// through [`set_membership`](Self::set_membership)'s write (so a changed
    /// role is logged as there). Of two concurrent acceptances one wins;
    /// the other is [`Acceptance::Used`].
    async fn accept_invitation(
        &self, token_hash: &str, user: UserId, now: OffsetDateTime,
    ) -> Result<Acceptance>;

    // ---- store workflows ----

    /// Adds the next version of a store's own workflow (1 for its first).
    async fn add_store_workflow(&self, new: NewStoreWorkflow) -> Result<StoreWorkflow>;
    /// One version of a store's workflow (versions from 1; 0 is the built-in
    /// the store names and is never stored).
    async fn store_workflow(&self, store: StoreId, version: i64) -> Result<Option<StoreWorkflow>>;
    /// The newest version of a store's workflow; `None` if it runs its built-in.
    async fn latest_store_workflow(&self, store: StoreId) -> Result<Option<StoreWorkflow>>;

    // ---- orders ----

    /// Places an order: numbers it, writes its items, first history entry and
    /// event. With an idempotency key already used by this customer it returns
    /// the original order (same request) or [`StoreError::IdempotencyMismatch`].
    async fn place_order(&self, new: NewOrder) -> Result<PlacedOrder>;
    /// An order by id.
    async fn order(&self, id: OrderId) -> Result<Option<Order>>;
    /// An order (by id or tracking token) with its store, in one read.
    async fn order_in_store(&self, key: OrderKey) -> Result<Option<OrderInStore>>;
    /// A page of orders, newest first.
    async fn orders(&self, query: OrderQuery) -> Result<OrderPage>;
    /// How many of a store's orders (with this fulfilment, if given) are
    /// in each status.
    async fn status_counts(
        &self, store: StoreId, fulfilment: Option<FulfilmentKind>,
    ) -> Result<Vec<(String, i64)>>;
    /// An order's status history, oldest first.
    async fn history(&self, order: OrderId) -> Result<Vec<HistoryEntry>>;
    /// Applies a decided status change if the order still has the version it
    /// was decided on; otherwise [`StoreError::VersionConflict`].
    async fn apply_status_change(&self, change: StatusChange) -> Result<Order>;
    /// Applies a decided item change (and the automatic advance that may
    /// follow it) under the same version check.
    async fn apply_item_change(&self, change: ItemStatusChange) -> Result<Order>;
    /// Applies every step of a decided plan for one order (item changes,
    /// then status changes, with consecutive versions from the plan's
    /// expected version) in one transaction, with one event per step; if the
    /// order no longer has the expected version, or any step fails, nothing
    /// is written ([`StoreError::VersionConflict`] reports the current one).
    async fn apply_plan(&self, plan: OrderPlan) -> Result<Order>;

    // ---- reviews ----

    /// Writes a customer's review of an order; a second review of the same
    /// order is [`StoreError::Conflict`] (and changes nothing).
    async fn add_review(&self, new: NewReview) -> Result<Review>;
    /// The review of an order, if it has one.
    async fn review(&self, order: OrderId) -> Result<Option<Review>>;
    /// A page of a store's reviews, newest order first (`before` an order
    /// id, at most `limit`), with the count and rating sum of all of them.
    async fn store_reviews(
        &self, store: StoreId, before: Option<OrderId>, limit: u32,
    ) -> Result<ReviewPage>;

    // ---- printing ----

    /// Adds a printer to a store.
    async fn add_printer(&self, new: NewPrinter) -> Result<Printer>;
    /// A store's printers, oldest first.
    async fn printers(&self, store: StoreId) -> Result<Vec<Printer>>;
    /// Removes a store's printer and its print jobs; false if the store has
    /// no such printer.
    async fn remove_printer(&self, store: StoreId, printer: i64) -> Result<bool>;
    /// The position in the event log up to which print jobs have been made.
    async fn print_cursor(&self) -> Result<i64>;
    /// Queues the print jobs made from the event log's entries after
    /// `from` up to `to`, and moves the cursor to `to`, in one transaction
    /// — only if the cursor is still at `from`: false (and nothing written)
    /// if another instance moved it first.
    async fn queue_print_jobs(&self, from: i64, to: i64, jobs: Vec<NewPrintJob>) -> Result<bool>;
    /// Queues one print job (a reprint) outside the log's order.
    async fn queue_print_job(&self, job: NewPrintJob) -> Result<PrintJob>;
    /// Takes up to `limit` jobs due at `now` (queued or failed, with an
    /// attempt due), oldest first, counting an attempt for each and putting
    /// their next attempt at `lease_until`, so no other worker takes them
    /// while this one sends them.
    async fn claim_print_jobs(
        &self, now: OffsetDateTime, lease_until: OffsetDateTime, limit: u32,
    ) -> Result<Vec<PrintJob>>;
    /// Records how an attempt at a job ended.
    async fn finish_print_job(&self, job: i64, outcome: PrintOutcome) -> Result<()>;
    /// An order's print jobs, oldest first.
    async fn print_jobs(&self, order: OrderId) -> Result<Vec<PrintJob>>;
    /// When the next print job is due, if any is.
    async fn next_print_attempt(&self) -> Result<Option<OffsetDateTime>>;

    // ---- events ----

    /// Order events after position `after` that match `filter`, oldest
    /// first (access changes match no filter).
    async fn events_after(
        &self, filter: EventFilter, after: i64, limit: u32,
    ) -> Result<Vec<StoredEvent>>;
    /// Every entry of the event log (all stores, access changes too) after
    /// position `after`, oldest first: what a bus subscriber backfills from
    /// when it notices a gap.
    async fn events_since(&self, after: i64, limit: u32) -> Result<Vec<LogEntry>>;
    /// The position of the newest event (0 when there is none).
    async fn last_event_position(&self) -> Result<i64>;

    // ---- reports ----

    /// The orders of a store placed in a range, oldest first, and if asked
    /// their status history, read in one statement: what a report computes
    /// from. Reads only that range (an index on the store and the placing
    /// time), never the store's whole history.
    async fn report_rows(&self, query: ReportQuery) -> Result<ReportRows>;

    /// A store's per-day report rollups over a range of days, and the zone
    /// they were built in (one indexed read, at most 366 rows).
    async fn report_days(&self, query: ReportDaysQuery) -> Result<ReportDays>;

    /// Rebuilds a store's per-day rollups from all its orders, in its
    /// current time zone, in one write (nothing else is written meanwhile,
    /// so no change is lost or counted twice); marks them built in it.
    async fn rebuild_report_days(&self, rebuild: RollupRebuild) -> Result<()>;

    /// A store's kept durations to done (the most recent per fulfilment
    /// and status, each with the band of the day its order entered the
    /// status in, written as orders reach a done state) and the store's
    /// time zone: what its ETA windows are read from, in one indexed read.
    async fn store_durations(&self, store: StoreId) -> Result<KeptDurations>;

    /// One round of the ETA durations follower: keeps the durations of
    /// the orders finished by the events after its position in the event
    /// log (those whose write left them to it), reading at most `limit`
    /// events, and moves the position past them — all in one write, so a
    /// round is kept whole or not at all. Safe from several instances at
    /// once: a round another one is running is not run twice.
    async fn keep_followed_durations(&self, limit: u32) -> Result<FollowedDurations>;

    // ---- operations ----

    /// How busy the database connections are right now (for `/metrics`).
    fn pool_status(&self) -> PoolStatus;
    // ---- webhooks ----

    /// Adds a webhook endpoint to a store.
    async fn create_webhook(&self, new: NewWebhook) -> Result<Webhook>;
    /// A store's endpoints, oldest first.
    async fn webhooks(&self, store: StoreId) -> Result<Vec<Webhook>>;
    /// Every enabled endpoint of every store: what new events are matched
    /// against.
    async fn enabled_webhooks(&self) -> Result<Vec<Webhook>>;
    /// Deletes a store's endpoint and its deliveries; false if the store
    /// has no such endpoint.
    async fn delete_webhook(&self, store: StoreId, id: WebhookId) -> Result<bool>;
    /// Gives a store's endpoint a new secret; the old one keeps signing
    /// until `previous_until`. `None` if the store has no such endpoint.
    async fn rotate_webhook_secret(
        &self, store: StoreId, id: WebhookId, secret: String, previous_until: OffsetDateTime,
    ) -> Result<Option<Webhook>>;
    /// An endpoint's newest deliveries first, at most `limit`.
    async fn webhook_deliveries(
        &self, webhook: WebhookId, limit: u32,
    ) -> Result<Vec<WebhookDelivery>>;
    /// Makes an endpoint's delivery pending and due at `at` (whatever its
    /// state); `None` if the endpoint has no such delivery.
    async fn retry_webhook_delivery(
        &self, webhook: WebhookId, delivery: DeliveryId, at: OffsetDateTime,
    ) -> Result<Option<WebhookDelivery>>;
    /// The position in the event log up to which deliveries have been made.
    async fn webhook_cursor(&self) -> Result<i64>;
    /// Writes deliveries for the events in `(after, upto]` and moves the
    /// cursor to `upto`, in one transaction — only if the cursor is still
    /// at `after` (false, and nothing written, if another instance moved
    /// it). A delivery that exists already is left as it is.
    async fn enqueue_webhook_deliveries(&self, batch: WebhookEnqueue) -> Result<bool>;
    /// Claims, until `until`, at most `limit` deliveries due at `now`: each
    /// the oldest pending event of its enabled endpoint (so an endpoint
    /// gets its events in order), not claimed by anyone else.
    async fn claim_webhook_deliveries(
        &self, now: OffsetDateTime, until: OffsetDateTime, limit: u32,
    ) -> Result<Vec<ClaimedDelivery>>;
    /// When the next delivery (the oldest pending event of an enabled
    /// endpoint) is due, if any is pending.
    async fn next_webhook_attempt(&self) -> Result<Option<OffsetDateTime>>;
    /// Records an attempt on its delivery and lets go of the claim; an
    /// [`AttemptOutcome::EndpointGone`] also turns the endpoint off.
    async fn record_webhook_attempt(&self, attempt: WebhookAttempt) -> Result<()>;
    // ---- customer e-mail ----

    /// The position in the event log up to which mail jobs have been made.
    async fn email_cursor(&self) -> Result<i64>;
    /// Writes the mail jobs for the events in `(after, upto]` and moves the
    /// cursor to `upto`, in one transaction — only if the cursor is still
    /// at `after` (false, and nothing written, if another instance moved
    /// it). A job for an (event, recipient) pair that has one is left as
    /// it is: one mail per event and recipient.
    async fn enqueue_emails(&self, batch: EmailEnqueue) -> Result<bool>;
    /// Claims, until `until`, at most `limit` pending mail jobs due at
    /// `now` that nobody else holds, oldest event first.
    async fn claim_emails(
        &self, now: OffsetDateTime, until: OffsetDateTime, limit: u32,
    ) -> Result<Vec<EmailJob>>;
    /// When the next pending mail job is due, if any is.
    async fn next_email_attempt(&self) -> Result<Option<OffsetDateTime>>;
    /// Records an attempt on its job and lets go of the claim.
    async fn record_email_attempt(&self, attempt: EmailAttempt) -> Result<()>;
    /// The mail jobs made for an event, by recipient.
    async fn email_jobs(&self, event: i64) -> Result<Vec<EmailJobRecord>>;
    /// Deletes `outbox`'s jobs that are done with (sent, delivered, given
    /// up, suppressed) and were made before `before`, at most `limit`,
    /// oldest first; how many. Pending jobs stay, however old.
    async fn prune_outbox(&self, outbox: Outbox, before: OffsetDateTime, limit: u32)
    -> Result<u64>;
    /// Stops (`opted_out`) or resumes mail to a customer; an unknown user
    /// is [`StoreError::NotFound`].
    async fn set_email_opt_out(
        &self, user: UserId, opted_out: bool, at: OffsetDateTime,
    ) -> Result<()>;
    /// Whether a customer asked for no more mail.
    async fn email_opted_out(&self, user: UserId) -> Result<bool>;

    // ---- Web Push ----

    /// Saves a push subscription, replacing its owner's subscription with
    /// the same endpoint (a browser subscribing again with new keys).
    async fn save_push_subscription(&self, new: NewPushSubscription) -> Result<PushSubscription>;
    /// Deletes the owner's subscription with this endpoint and its jobs;
    /// false if there was none.
    async fn delete_push_subscription(&self, owner: PushOwner, endpoint: String) -> Result<bool>;
    /// The owner's subscriptions, oldest first.
    async fn push_subscriptions(&self, owner: PushOwner) -> Result<Vec<PushSubscription>>;
    /// The position in the event log up to which push jobs have been made.
    async fn push_cursor(&self) -> Result<i64>;
    /// Writes the jobs of `batch.events` — one per subscription of the
    /// event's customer or order made before the event — and moves the
    /// cursor to `upto`, in one transaction, only if the cursor is still at
    /// `after` (false, and nothing written, otherwise). A job that exists
    /// already is left as it is.
    async fn enqueue_push_jobs(&self, batch: PushEnqueue) -> Result<bool>;
    /// Claims, until `until`, at most `limit` pending jobs due at `now`
    /// that nobody else holds.
    async fn claim_push_jobs(
        &self, now: OffsetDateTime, until: OffsetDateTime, limit: u32,
    ) -> Result<Vec<PushJob>>;
    /// When the next pending job is due, if any is pending.
    async fn next_push_attempt(&self) -> Result<Option<OffsetDateTime>>;
    /// Records an attempt on its job and lets go of the claim; a
    /// [`PushOutcome::SubscriptionGone`] deletes the subscription and its jobs.
    async fn record_push_attempt(&self, attempt: PushAttempt) -> Result<()>;
    /// The ids of a store's oldest `limit` orders in any of `statuses`,
    /// oldest first — its kitchen's queue, what an ETA counts the orders
    /// ahead from — with the last event-log id they are as of, in one
    /// statement (one snapshot) reading at most `limit` index entries per
    /// status, however many orders wait.
    async fn queued_orders(
        &self, store: StoreId, statuses: Vec<StatusKey>, limit: usize,
    ) -> Result<QueuedOrders>;

    // ---- idempotency keys (changes other than placing an order) ----

    /// Claims an idempotency key for a request, in one write: first drops
    /// every key created before `forget_before`, then either records the
    /// key as running ([`IdempotencyOutcome::Claimed`]) or reports what
    /// holds it — the response of the same request, the same request still
    /// running, or another request.
    async fn claim_idempotency_key(&self, claim: IdempotencyClaim) -> Result<IdempotencyOutcome>;
    /// Records the response of a claimed key.
    async fn complete_idempotency_key(
        &self, scope: String, key: String, response: StoredResponse,
    ) -> Result<()>;
    /// Lets go of a claimed key whose request had no lasting answer (a
    /// server error, no valid session), so that a retry runs again.
    async fn release_idempotency_key(&self, scope: String, key: String) -> Result<()>;
}
