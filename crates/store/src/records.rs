//! Plain records passed to and from a [`Repository`](crate::Repository).

use ordertrack_domain::{
    Actor, Currency, Fulfilment, FulfilmentKind, Fulfilments, NewEvent, OpeningHours, Order,
    OrderId, OrderLine, OrderSummary, PaymentMethod, PaymentMethods, ProductId, Role, StatusKey,
    StoreId, StoreStatus, StoreZone, UserId, WorkflowName,
};
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

/// A person with an account.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct User {
    pub id: UserId,
    pub email: String,
    pub name: String,
    /// Platform administrator.
    pub is_admin: bool,
}

/// A user with their password hash, for signing in.
#[derive(Debug, Clone)]
pub struct Credentials {
    pub user: User,
    pub password_hash: String,
}

/// A user to create. The email is stored lower-cased.
#[derive(Debug, Clone)]
pub struct NewUser {
    pub email: String,
    pub name: String,
    pub password_hash: String,
    pub is_admin: bool,
}

/// A signed-in session; its id is carried inside the signed token.
#[derive(Debug, Clone)]
pub struct NewSession {
    pub id: String,
    pub user_id: UserId,
    pub expires_at: OffsetDateTime,
}

/// A staff role held in one store.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Membership {
    pub store_id: StoreId,
    pub store_slug: String,
    pub role: Role,
}

/// Where the changes that in-memory caches depend on stand: each mark
/// moves in the transaction of every such change (on any instance), so a
/// cache entry read at the marks a request sees is as current as a read
/// made by that request. Marks only grow.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct CacheMarks {
    /// Moves with every logout and every staff role given, changed or
    /// taken away: what a session's identity and memberships depend on.
    pub access: i64,
    /// Moves with every change of a store's settings or workflow.
    pub config: i64,
}

/// Who is calling, as of this request.
#[derive(Debug, Clone)]
pub struct Identity {
    pub user: User,
    pub session_id: String,
    /// When the session (and its token) stops working.
    pub session_expires_at: OffsetDateTime,
    pub memberships: Vec<Membership>,
}

impl Identity {
    /// The staff role this user holds in `store`, if any.
    pub fn role_in(&self, store: StoreId) -> Option<Role> {
        self.memberships
            .iter()
            .find(|m| m.store_id == store)
            .map(|m| m.role)
    }
}

/// A store (tenant).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct StoreRecord {
    pub id: StoreId,
    pub slug: String,
    pub name: String,
    pub currency: Currency,
    pub workflow: WorkflowName,
    /// Prefix of order numbers, e.g. `R` for `R-000123`.
    pub order_prefix: String,
}

/// One version of a store's own workflow, as uploaded. Version 0 is never
/// stored: it is the built-in named in [`StoreRecord::workflow`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoreWorkflow {
    pub store_id: StoreId,
    /// From 1 up, per store.
    pub version: i64,
    /// The workflow's `name`.
    pub name: String,
    /// The whole workflow as JSON (the built-ins' schema), already validated.
    pub definition: String,
    pub created_at: OffsetDateTime,
}

/// A version of a store's workflow to add (the store numbers it).
#[derive(Debug, Clone)]
pub struct NewStoreWorkflow {
    pub store_id: StoreId,
    pub name: String,
    /// The validated workflow as JSON.
    pub definition: String,
    pub at: OffsetDateTime,
}

/// A store to create.
#[derive(Debug, Clone)]
pub struct NewStore {
    pub slug: String,
    pub name: String,
    pub currency: Currency,
    pub workflow: WorkflowName,
    pub order_prefix: String,
}

/// A staff member of a store.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct StaffMember {
    pub user: User,
    pub role: Role,
}

/// A product of a store's catalog.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Product {
    pub id: ProductId,
    pub store_id: StoreId,
    pub name: String,
    pub description: String,
    pub price_minor: i64,
    /// Kitchen station that prepares it, e.g. `grill`.
    pub station: String,
    pub available: bool,
}

/// A product to add.
#[derive(Debug, Clone)]
pub struct NewProduct {
    pub name: String,
    pub description: String,
    pub price_minor: i64,
    pub station: String,
    pub available: bool,
}

/// Changes to a product; `None` leaves a field as it is.
#[derive(Debug, Clone, Default)]
pub struct ProductPatch {
    pub name: Option<String>,
    pub description: Option<String>,
    pub price_minor: Option<i64>,
    pub station: Option<String>,
    pub available: Option<bool>,
}

/// An order to place. The store assigns id and number.
#[derive(Debug, Clone)]
pub struct NewOrder {
    pub store_id: StoreId,
    pub customer_id: UserId,
    /// The role the customer placed it in (a cashier may place one at the counter).
    pub placed_by: Actor,
    pub lines: Vec<OrderLine>,
    pub fulfilment: Fulfilment,
    pub notes: Option<String>,
    pub currency: Currency,
    /// The total of the lines, computed by the domain (`order_total`);
    /// stored as given.
    pub total_minor: i64,
    /// The workflow's initial status.
    pub status: StatusKey,
    /// The version of the store's workflow the order runs under until it
    /// ends (0: the built-in named by the store).
    pub workflow_version: i64,
    /// Summary of the initial status (its number is filled in by the store).
    pub summary: OrderSummary,
    pub tracking_token: String,
    /// How it will be paid (one of the methods its store offers).
    pub payment_method: PaymentMethod,
    /// `(key, hash of the request)` when the client sent an Idempotency-Key.
    pub idempotency: Option<(String, String)>,
    pub at: OffsetDateTime,
}

/// What the store gives a new order as it writes it: with the request,
/// the whole order ([`NewOrder::placed`]).
pub(crate) struct Numbered<'a> {
    pub id: OrderId,
    pub number: String,
    pub store_slug: &'a str,
    pub customer_name: String,
    /// The ids of its lines, in line order.
    pub item_ids: Vec<ordertrack_domain::ItemId>,
}

impl NewOrder {
    /// The order as placing it writes it: version 1, every item queued,
    /// nothing paid, no driver, every clock at its time.
    pub(crate) fn placed(&self, numbered: Numbered<'_>) -> Order {
        let at = crate::codec::stored_time(self.at);
        Order {
            id: numbered.id,
            number: numbered.number,
            store_id: self.store_id,
            store_slug: numbered.store_slug.to_owned(),
            customer_id: self.customer_id,
            customer_name: numbered.customer_name,
            status: self.status.clone(),
            version: 1,
            workflow_version: self.workflow_version,
            items: self
                .lines
                .iter()
                .zip(numbered.item_ids)
                .map(|(line, id)| ordertrack_domain::OrderItem {
                    id,
                    line: line.clone(),
                    status: ordertrack_domain::ItemStatus::Queued,
                })
                .collect(),
            total_minor: self.total_minor,
            currency: self.currency.clone(),
            fulfilment: self.fulfilment.clone(),
            notes: self.notes.clone(),
            tracking_token: self.tracking_token.clone(),
            payment: ordertrack_domain::Payment::unpaid(self.payment_method),
            driver: None,
            created_at: at,
            updated_at: at,
            status_since: at,
        }
    }
}

/// The result of placing an order.
#[derive(Debug, Clone)]
pub struct PlacedOrder {
    pub order: Order,
    /// False when an idempotent retry returned the original order.
    pub created: bool,
}

/// Which order to read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum OrderKey {
    /// The order's id.
    Id(OrderId),
    /// The order's tracking token (a guest's link).
    TrackingToken(String),
}

/// An order with the store it belongs to, read together: what a use case
/// needs to decide on an order (the store's workflow) and to check that it
/// belongs to the store a page is for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OrderInStore {
    /// The order, with its items.
    pub order: Order,
    /// The store it belongs to.
    pub store: StoreRecord,
    /// The cache marks, read in the same statement: a request whose one
    /// read is this one checks its cached session against them.
    pub marks: CacheMarks,
}

/// What placing an order in a store needs, read together in one
/// statement: the store with its settings, its newest workflow version
/// (`None`: it runs its built-in), its products, and the cache marks the
/// customer's kept session is checked against.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoreMenu {
    pub store: StoreWithSettings,
    pub workflow: Option<StoreWorkflow>,
    /// Every product of the store, available or not, by id.
    pub products: Vec<Product>,
    pub marks: CacheMarks,
}

/// Which orders to list.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum OrderScope {
    /// One customer's orders across all stores.
    Customer(UserId),
    /// One store's orders.
    Store(StoreId),
}

/// A page request for orders, newest first (or oldest first).
#[derive(Debug, Clone)]
pub struct OrderQuery {
    pub scope: OrderScope,
    /// Only orders in one of these statuses; empty: any status.
    pub statuses: Vec<StatusKey>,
    /// Only orders with this fulfilment (a driver's list: deliveries).
    pub fulfilment: Option<FulfilmentKind>,
    /// Only the orders of one driver (and, if it says so, unassigned ones
    /// they may take).
    pub driver: Option<DriverScope>,
    /// Matches the order number or the customer's name (case-insensitive substring).
    pub search: Option<String>,
    /// Only orders older than this one (the previous page's cursor).
    pub before: Option<OrderId>,
    pub limit: u32,
    /// The oldest `limit` orders, oldest first (a kitchen's queue), instead
    /// of pages of the newest; such a list has no next page.
    pub oldest_first: bool,
}

impl OrderQuery {
    /// The newest `limit` orders of `scope`, unfiltered.
    pub fn newest(scope: OrderScope, limit: u32) -> Self {
        OrderQuery {
            scope,
            statuses: Vec::new(),
            fulfilment: None,
            driver: None,
            search: None,
            before: None,
            limit,
            oldest_first: false,
        }
    }
}

/// A driver's orders: those assigned to `driver` and, when
/// `or_unassigned_in` names statuses, the unassigned orders in them (what a
/// driver may take where drivers assign themselves).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DriverScope {
    pub driver: UserId,
    pub or_unassigned_in: Vec<StatusKey>,
}

/// One page of orders.
#[derive(Debug, Clone)]
pub struct OrderPage {
    pub orders: Vec<Order>,
    /// Id to pass as `before` for the next page; `None` on the last page.
    pub next_before: Option<OrderId>,
}

/// Which events a stream wants.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EventFilter {
    Order(OrderId),
    Customer(UserId),
    Store(StoreId),
}

/// An event as stored, with its positions.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StoredEvent {
    /// Global position: gap-free in commit order; streams resume from it.
    pub id: i64,
    /// Position within the store's own sequence.
    pub store_seq: i64,
    #[serde(flatten)]
    pub event: NewEvent,
    /// [`NewEvent::public_json`], made once when the event was written and
    /// kept with it; absent for events written before it was kept.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub public_json: Option<String>,
}

impl StoredEvent {
    /// An event just written at `id`, with its public JSON made now.
    pub fn written(id: i64, store_seq: i64, event: NewEvent, public_json: String) -> Self {
        StoredEvent {
            id,
            store_seq,
            event,
            public_json: Some(public_json),
        }
    }
}

/// A change to who may watch what. The store logs one in the event log, in
/// the same transaction as the change itself, so that every instance reading
/// the log (its hub, through the bus or the database) ends the streams the
/// change invalidates, as it delivers order events.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum AccessChange {
    /// A session ended (logout): streams opened with it end.
    SessionEnded { session_id: String },
    /// A staff member's role in a store changed (`role`) or was taken away
    /// (`None`): the streams their role there opened end.
    StaffChanged {
        user_id: UserId,
        store_id: StoreId,
        role: Option<Role>,
    },
}

impl AccessChange {
    /// The `kind` of access rows in the events table (order events carry
    /// their event kind there).
    pub const KIND: &'static str = "access";
}

/// An access change with its position in the event log.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AccessEvent {
    /// Global position, from the same gap-free sequence as order events.
    pub id: i64,
    pub change: AccessChange,
}

/// One entry of the event log, in position order: what commit listeners
/// receive and what [`Repository::events_since`](crate::Repository::events_since)
/// reads back. Streams replay only the order events
/// ([`Repository::events_after`](crate::Repository::events_after)).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[allow(
    clippy::large_enum_variant,
    reason = "almost every entry is an order event: boxing them would cost an allocation each to save space on the rare access change"
)]
pub enum LogEntry {
    Order(StoredEvent),
    Access(AccessEvent),
}

impl LogEntry {
    /// The entry's position in the log.
    pub fn id(&self) -> i64 {
        match self {
            LogEntry::Order(event) => event.id,
            LogEntry::Access(access) => access.id,
        }
    }

    /// Reads an entry back from its row in the events table.
    pub(crate) fn from_row(
        id: i64, store_seq: Option<i64>, kind: &str, payload: &str, public_json: Option<String>,
    ) -> Result<LogEntry, crate::StoreError> {
        let unreadable = || crate::StoreError::Database(format!("unreadable stored event {id}"));
        if kind == AccessChange::KIND {
            let change = serde_json::from_str(payload).map_err(|_| unreadable())?;
            return Ok(LogEntry::Access(AccessEvent { id, change }));
        }
        Ok(LogEntry::Order(StoredEvent {
            id,
            store_seq: store_seq.ok_or_else(unreadable)?,
            event: serde_json::from_str(payload).map_err(|_| unreadable())?,
            public_json,
        }))
    }

    /// The order event, if this is one.
    pub fn order_event(&self) -> Option<&StoredEvent> {
        match self {
            LogEntry::Order(event) => Some(event),
            LogEntry::Access(_) => None,
        }
    }
}

// ---- store settings ----

/// What a store is and offers beyond its catalog: its standing on the
/// platform, the time zone its hours are read in, the pause switch, the
/// fulfilment kinds it offers and its opening hours.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoreSettings {
    pub status: StoreStatus,
    pub timezone: StoreZone,
    pub accepting_orders: bool,
    pub fulfilment: Fulfilments,
    /// `None`: open around the clock.
    pub opening_hours: Option<OpeningHours>,
    /// The payment methods offered, preferred first.
    pub payment_methods: PaymentMethods,
    /// Whether its drivers may take unassigned ready deliveries themselves.
    pub driver_self_assign: bool,
    /// The workflow state whose entry prints an order's kitchen tickets
    /// and receipt on the store's printers.
    pub print_trigger: StatusKey,
    /// What the store mails its customers, and when.
    pub email: EmailSettings,
}

/// A store's customer e-mail: the workflow states whose entry mails the
/// order's customer (matched by key) and its own templates (`None`: the
/// built-in one).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EmailSettings {
    pub states: Vec<StatusKey>,
    pub subject: Option<String>,
    pub body: Option<String>,
}

/// The states that mail the customer unless the store says otherwise.
pub const DEFAULT_EMAIL_STATES: [&str; 5] = [
    "confirmed",
    "ready",
    "out_for_delivery",
    "delivered",
    "cancelled",
];

impl Default for EmailSettings {
    fn default() -> Self {
        EmailSettings {
            states: DEFAULT_EMAIL_STATES.map(StatusKey::from).to_vec(),
            subject: None,
            body: None,
        }
    }
}

/// What prints an order unless its store says otherwise: being confirmed.
pub const DEFAULT_PRINT_TRIGGER: &str = "confirmed";

impl Default for StoreSettings {
    /// Live, in UTC, taking orders around the clock, pickup and delivery:
    /// what a store created without settings has.
    fn default() -> Self {
        StoreSettings {
            status: StoreStatus::Active,
            timezone: StoreZone::utc(),
            accepting_orders: true,
            fulfilment: Fulfilments::both(),
            opening_hours: None,
            payment_methods: PaymentMethods::default(),
            driver_self_assign: false,
            print_trigger: StatusKey::from(DEFAULT_PRINT_TRIGGER),
            email: EmailSettings::default(),
        }
    }
}

/// A store with its settings, read together.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoreWithSettings {
    pub store: StoreRecord,
    pub settings: StoreSettings,
}

/// Changes to a store's name and settings; `None` leaves a field as it is.
#[derive(Debug, Clone, Default)]
pub struct StoreSettingsPatch {
    pub name: Option<String>,
    pub status: Option<StoreStatus>,
    pub timezone: Option<StoreZone>,
    pub accepting_orders: Option<bool>,
    pub fulfilment: Option<Fulfilments>,
    /// `Some(None)` removes the hours (open around the clock).
    pub opening_hours: Option<Option<OpeningHours>>,
    pub payment_methods: Option<PaymentMethods>,
    pub driver_self_assign: Option<bool>,
    pub print_trigger: Option<StatusKey>,
    pub email_states: Option<Vec<StatusKey>>,
    /// `Some(None)` goes back to the built-in template.
    pub email_subject: Option<Option<String>>,
    /// `Some(None)` goes back to the built-in template.
    pub email_body: Option<Option<String>>,
}

impl StoreSettingsPatch {
    /// The stored form of the new opening hours, if there are some.
    pub(crate) fn opening_hours_json(&self) -> Result<Option<String>, crate::StoreError> {
        match &self.opening_hours {
            Some(Some(hours)) => serde_json::to_string(hours)
                .map(Some)
                .map_err(|e| crate::StoreError::Database(e.to_string())),
            _ => Ok(None),
        }
    }

    /// The stored form of the new e-mail states, if they change.
    pub(crate) fn email_states_json(&self) -> Result<Option<String>, crate::StoreError> {
        self.email_states
            .as_ref()
            .map(crate::codec::to_json)
            .transpose()
    }
}

impl From<&StoreSettings> for StoreSettingsPatch {
    /// Every setting to these values (the name left as it is).
    fn from(settings: &StoreSettings) -> Self {
        StoreSettingsPatch {
            name: None,
            status: Some(settings.status),
            timezone: Some(settings.timezone.clone()),
            accepting_orders: Some(settings.accepting_orders),
            fulfilment: Some(settings.fulfilment.clone()),
            opening_hours: Some(settings.opening_hours.clone()),
            payment_methods: Some(settings.payment_methods.clone()),
            driver_self_assign: Some(settings.driver_self_assign),
            print_trigger: Some(settings.print_trigger.clone()),
            email_states: Some(settings.email.states.clone()),
            email_subject: Some(settings.email.subject.clone()),
            email_body: Some(settings.email.body.clone()),
        }
    }
}

/// A store to open with its settings and, if given, its first owner.
#[derive(Debug, Clone)]
pub struct StoreOpening {
    pub store: NewStore,
    pub settings: StoreSettings,
    /// Made the store's owner in the same transaction.
    pub owner: Option<UserId>,
}

/// An invitation to join a store's staff, to write. The token itself is
/// never stored: only its hash.
#[derive(Debug, Clone)]
pub struct NewInvitation {
    pub store_id: StoreId,
    /// The invitee's e-mail, normalised.
    pub email: String,
    pub role: Role,
    /// SHA-256 of the token, hex.
    pub token_hash: String,
    pub invited_by: UserId,
    pub created_at: OffsetDateTime,
    pub expires_at: OffsetDateTime,
}

/// A stored invitation, with the store it is to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Invitation {
    pub id: i64,
    pub store: StoreRecord,
    pub email: String,
    pub role: Role,
    pub expires_at: OffsetDateTime,
    /// When it was accepted; an invitation is used at most once.
    pub used_at: Option<OffsetDateTime>,
}

/// What accepting an invitation came to, decided in the write that marks
/// it used.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Acceptance {
    /// Marked used and the membership given, in one transaction.
    Accepted(Invitation),
    /// Accepted before.
    Used,
    /// Past its expiry.
    Expired,
    /// No invitation has this token.
    Unknown,
}

impl Acceptance {
    /// Why an invitation that matched no unused, unexpired row was refused.
    pub fn refused(found: Option<&Invitation>) -> Acceptance {
        match found {
            None => Acceptance::Unknown,
            Some(invitation) if invitation.used_at.is_some() => Acceptance::Used,
            Some(_) => Acceptance::Expired,
        }
    }
}

// ---- reports ----

/// Which orders a report reads: a store's, placed in `[from, until)`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ReportQuery {
    pub store: StoreId,
    pub from: OffsetDateTime,
    /// The first instant after the range.
    pub until: OffsetDateTime,
    /// Read the orders' status history too.
    pub with_history: bool,
}

/// The raw rows of a report: a store's orders placed in a range and,
/// when asked for, their status history.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ReportRows {
    /// The orders, oldest first.
    pub orders: Vec<ordertrack_domain::report::ReportOrder>,
    /// Their history entries, grouped by order (in `orders`' order), each
    /// order's oldest first; empty unless asked for.
    pub steps: Vec<ordertrack_domain::report::ReportStep>,
}

/// Which days of a store's per-day rollups a report reads: `from` to `to`
/// (both included, `YYYY-MM-DD` in the store's time zone).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReportDaysQuery {
    pub store: StoreId,
    pub from: String,
    pub to: String,
    /// Read (and decode) the days' times too.
    pub with_times: bool,
}

/// A store's orders waiting in some statuses, as of a point of the event
/// log: what an in-memory queue starts from before it follows the log.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct QueuedOrders {
    /// The orders' ids, oldest first.
    pub ids: Vec<OrderId>,
    /// The last event-log id the read saw: every later entry is a change
    /// the ids do not hold yet.
    pub as_of: i64,
}

/// What one round of the ETA durations follower did
/// ([`crate::Repository::keep_followed_durations`]).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FollowedDurations {
    /// The stores whose kept durations changed.
    pub stores: Vec<StoreId>,
    /// How many finished orders' durations were kept.
    pub orders: usize,
    /// The round stopped at its limit: more of the log is waiting.
    pub more: bool,
    /// Another instance's round held the follower's position: this one
    /// did nothing.
    pub busy: bool,
}

/// A store's per-day rollups of a range.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ReportDays {
    /// The time zone the rollups were built in (`None`: not built yet);
    /// they are the store's figures only while it is the store's zone.
    pub built_in: Option<String>,
    /// The days that have a rollup (`YYYY-MM-DD`), in no particular order.
    pub days: Vec<(String, ordertrack_domain::rollup::DayRollup)>,
}

/// Rebuilds a store's per-day rollups from its orders and history in its
/// current time zone, each order classified by the rules of its workflow
/// version (an order of a version not listed counts as open).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RollupRebuild {
    pub store: StoreId,
    pub rules: Vec<(i64, ordertrack_domain::rollup::OutcomeRules)>,
}

// ---- reviews ----

/// A customer's review of one finished order, to write (the application
/// has checked who writes it, when, and its bounds).
#[derive(Debug, Clone)]
pub struct NewReview {
    pub order_id: OrderId,
    pub store_id: StoreId,
    pub customer_id: UserId,
    /// 1 to 5.
    pub rating: u8,
    pub comment: Option<String>,
    pub at: OffsetDateTime,
}

/// A review as stored, with its order's number and its customer's name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Review {
    pub order_id: OrderId,
    pub order_number: String,
    pub customer_name: String,
    pub rating: u8,
    pub comment: Option<String>,
    pub created_at: OffsetDateTime,
}

/// A page of a store's reviews, newest order first, with the totals of all
/// of them (for the average).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReviewPage {
    pub reviews: Vec<Review>,
    /// Where the next page starts (`before` this order), if there is one.
    pub next_before: Option<OrderId>,
    /// How many reviews the store has.
    pub count: i64,
    /// The sum of their ratings.
    pub rating_sum: i64,
}

/// A snapshot of the database connections, as operators watch them.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PoolStatus {
    /// Connections open for reading (the writer has its own).
    pub connections: u32,
    /// Of those, how many wait for work; `None` where the backend does not
    /// tell (SQLite's readers are threads that take jobs from one queue).
    pub idle: Option<u32>,
    /// Reads and writes waiting for a connection; `None` where the backend
    /// does not tell (PostgreSQL's pool hands connections out directly).
    pub queued: Option<u32>,
}

// ---- printing ----

/// What a print job prints.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum PrintKind {
    /// One station's kitchen ticket: only its items.
    Ticket,
    /// The order's receipt, for the counter.
    Receipt,
}

impl PrintKind {
    /// The stored (and JSON) name.
    pub fn as_str(self) -> &'static str {
        match self {
            PrintKind::Ticket => "ticket",
            PrintKind::Receipt => "receipt",
        }
    }

    pub(crate) fn parse(text: &str) -> Result<Self, crate::StoreError> {
        match text {
            "ticket" => Ok(PrintKind::Ticket),
            "receipt" => Ok(PrintKind::Receipt),
            other => Err(crate::codec::corrupt("print kind", other)),
        }
    }
}

/// Where a print job is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum PrintStatus {
    /// Not sent yet.
    Queued,
    /// The printer took it.
    Printed,
    /// The last attempt failed (`next_attempt_at` says whether another follows).
    Failed,
}

impl PrintStatus {
    /// The stored (and JSON) name.
    pub fn as_str(self) -> &'static str {
        match self {
            PrintStatus::Queued => "queued",
            PrintStatus::Printed => "printed",
            PrintStatus::Failed => "failed",
        }
    }

    pub(crate) fn parse(text: &str) -> Result<Self, crate::StoreError> {
        match text {
            "queued" => Ok(PrintStatus::Queued),
            "printed" => Ok(PrintStatus::Printed),
            "failed" => Ok(PrintStatus::Failed),
            other => Err(crate::codec::corrupt("print status", other)),
        }
    }
}

/// A store's network printer as it is set up: where it is and what it
/// prints.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PrinterSetup {
    pub store_id: StoreId,
    pub name: String,
    pub host: String,
    pub port: u16,
    /// The kitchen stations whose tickets it prints.
    pub stations: Vec<String>,
    /// Whether it prints the receipt (the counter's printer).
    pub receipts: bool,
    pub enabled: bool,
}

/// A store's network printer, to add (the application checked its address
/// against the operator's allowed hosts).
#[derive(Debug, Clone)]
pub struct NewPrinter {
    pub setup: PrinterSetup,
    pub at: OffsetDateTime,
}

/// A store's network printer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Printer {
    pub id: i64,
    pub setup: PrinterSetup,
    pub created_at: OffsetDateTime,
}

impl std::ops::Deref for NewPrinter {
    type Target = PrinterSetup;
    fn deref(&self) -> &PrinterSetup {
        &self.setup
    }
}

impl std::ops::Deref for Printer {
    type Target = PrinterSetup;
    fn deref(&self) -> &PrinterSetup {
        &self.setup
    }
}

/// A print job to queue: one ticket or receipt of an order for a printer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewPrintJob {
    pub order_id: OrderId,
    pub store_id: StoreId,
    pub printer_id: i64,
    pub kind: PrintKind,
    /// The station of a ticket.
    pub station: Option<String>,
    pub at: OffsetDateTime,
}

/// A print job with its printer's name and address.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PrintJob {
    pub id: i64,
    pub order_id: OrderId,
    pub store_id: StoreId,
    pub printer_id: i64,
    pub printer_name: String,
    pub host: String,
    pub port: u16,
    /// Whether the printer is still switched on.
    pub printer_enabled: bool,
    pub kind: PrintKind,
    pub station: Option<String>,
    pub status: PrintStatus,
    pub attempts: u32,
    pub last_error: Option<String>,
    /// When it is tried next; `None`: never again.
    pub next_attempt_at: Option<OffsetDateTime>,
    pub created_at: OffsetDateTime,
    pub printed_at: Option<OffsetDateTime>,
}

/// How one attempt at a print job ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PrintOutcome {
    /// The printer took every byte.
    Printed { at: OffsetDateTime },
    /// It did not: why, and when to try again (`None`: never).
    Failed {
        error: String,
        retry_at: Option<OffsetDateTime>,
    },
}

/// A request's claim on an idempotency key ([`crate::Repository::claim_idempotency_key`]).
#[derive(Debug, Clone)]
pub struct IdempotencyClaim {
    /// Whose key it is (a session's); keys of different scopes never meet.
    pub scope: String,
    pub key: String,
    /// A hash of the request the key is used for.
    pub fingerprint: String,
    pub at: OffsetDateTime,
    /// Keys created before this are forgotten (dropped by the claim).
    pub forget_before: OffsetDateTime,
}

/// A response kept for an idempotency key, replayed on a retry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredResponse {
    pub status: u16,
    pub content_type: Option<String>,
    pub location: Option<String>,
    pub body: Vec<u8>,
}

/// What claiming an idempotency key found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum IdempotencyOutcome {
    /// The key is new: the request runs, then its response is recorded.
    Claimed,
    /// The same request ran already: its response.
    Replay(StoredResponse),
    /// The same request is still running.
    InProgress,
    /// The key was used for another request.
    Mismatch,
}
