//! Plain records passed to and from a [`Repository`](crate::Repository).

use ordertrack_domain::{
    Actor, Fulfilment, FulfilmentKind, NewEvent, Order, OrderId, OrderSummary, ProductId, Role,
    StoreId, UserId,
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
    pub currency: String,
    pub workflow: String,
    /// Prefix of order numbers, e.g. `R` for `R-000123`.
    pub order_prefix: String,
}

/// A store to create.
#[derive(Debug, Clone)]
pub struct NewStore {
    pub slug: String,
    pub name: String,
    pub currency: String,
    pub workflow: String,
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

/// A priced line of a new order (name, price and station copied from the product).
#[derive(Debug, Clone)]
pub struct NewOrderLine {
    pub product: ProductId,
    pub name: String,
    pub quantity: u32,
    pub unit_price_minor: i64,
    pub notes: Option<String>,
    pub station: String,
}

/// An order to place. The store assigns id and number.
#[derive(Debug, Clone)]
pub struct NewOrder {
    pub store_id: StoreId,
    pub customer_id: UserId,
    /// The role the customer placed it in (a cashier may place one at the counter).
    pub placed_by: Actor,
    pub lines: Vec<NewOrderLine>,
    pub fulfilment: Fulfilment,
    pub notes: Option<String>,
    pub currency: String,
    /// The total of the lines, computed by the domain (`order_total`);
    /// stored as given.
    pub total_minor: i64,
    /// The workflow's initial status.
    pub status: String,
    /// Summary of the initial status (its number is filled in by the store).
    pub summary: OrderSummary,
    pub tracking_token: String,
    /// `(key, hash of the request)` when the client sent an Idempotency-Key.
    pub idempotency: Option<(String, String)>,
    pub at: OffsetDateTime,
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
    pub statuses: Vec<String>,
    /// Only orders with this fulfilment (a driver's list: deliveries).
    pub fulfilment: Option<FulfilmentKind>,
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
            search: None,
            before: None,
            limit,
            oldest_first: false,
        }
    }
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
        id: i64,
        store_seq: Option<i64>,
        kind: &str,
        payload: &str,
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
