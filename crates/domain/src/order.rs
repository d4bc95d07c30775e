//! Orders, their line items, status history and events, and the rules for
//! changing them. Functions here decide; the store persists what they decide.

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use crate::assignment::{AssignedDriver, AssignmentError, AssignmentShown, AssignmentStep};
use crate::fulfilment::FulfilmentKind;
pub use crate::ids::{ItemId, OrderId, ProductId, StoreId, UserId};
use crate::money::Currency;
use crate::names::StatusKey;
use crate::payment::{Payment, PaymentStatus, PaymentStep};
use crate::role::Role;
use crate::text::{UnsafeText, check_lines};
use crate::workflow::{TransitionDenied, Workflow};

/// Most line items one order may have.
pub const MAX_ITEMS_PER_ORDER: usize = 50;
/// Most units of one product in one line.
pub const MAX_QUANTITY: u32 = 99;
/// Longest note (order, item or transition), in characters.
pub const MAX_NOTE_CHARS: usize = 500;
/// Longest delivery address, in characters.
pub const MAX_ADDRESS_CHARS: usize = 300;

/// Kitchen progress of one line item.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum ItemStatus {
    Queued,
    Preparing,
    Ready,
}

impl ItemStatus {
    /// The stable lowercase name used in APIs and storage.
    pub fn as_str(self) -> &'static str {
        match self {
            ItemStatus::Queued => "queued",
            ItemStatus::Preparing => "preparing",
            ItemStatus::Ready => "ready",
        }
    }

    /// The status one tap on the kitchen display moves an item to; `None`
    /// once it is ready.
    pub fn next(self) -> Option<Self> {
        match self {
            ItemStatus::Queued => Some(ItemStatus::Preparing),
            ItemStatus::Preparing => Some(ItemStatus::Ready),
            ItemStatus::Ready => None,
        }
    }

    /// Parses the stored name.
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "queued" => Some(ItemStatus::Queued),
            "preparing" => Some(ItemStatus::Preparing),
            "ready" => Some(ItemStatus::Ready),
            _ => None,
        }
    }
}

/// How the order reaches the customer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Fulfilment {
    #[serde(rename = "type")]
    pub kind: FulfilmentKind,
    /// Delivery address; `None` for pickup.
    pub address: Option<String>,
}

/// What one line of an order is. Name, price and station are copied from
/// the product when the order is placed, so later catalog edits never
/// change old orders.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct OrderLine {
    pub product: ProductId,
    pub name: String,
    pub quantity: u32,
    pub unit_price_minor: i64,
    pub notes: Option<String>,
    pub station: String,
}

/// One line of a placed order: its [`OrderLine`] (read through it:
/// `item.name`), its id and its kitchen status.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[schema(
    description = "One line of a placed order: the product's name, price and station as ordered, its id and its kitchen status."
)]
pub struct OrderItem {
    pub id: ItemId,
    #[serde(flatten)]
    pub line: OrderLine,
    pub status: ItemStatus,
}

impl std::ops::Deref for OrderItem {
    type Target = OrderLine;

    fn deref(&self) -> &OrderLine {
        &self.line
    }
}

/// An order as stored: the current state of one customer's purchase.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Order {
    pub id: OrderId,
    /// Human number, unique per store, e.g. `R-000123`.
    pub number: String,
    pub store_id: StoreId,
    pub store_slug: String,
    pub customer_id: UserId,
    pub customer_name: String,
    pub status: StatusKey,
    /// Incremented on every change; clients send it back to detect conflicts.
    pub version: i64,
    /// The version of its store's workflow the order runs under until it
    /// ends (0: the built-in the store is set to).
    pub workflow_version: i64,
    pub items: Vec<OrderItem>,
    pub total_minor: i64,
    pub currency: Currency,
    pub fulfilment: Fulfilment,
    pub notes: Option<String>,
    /// 128 random bits, hex; grants read access to a guest tracking view.
    pub tracking_token: String,
    /// How it is paid and whether it is.
    pub payment: Payment,
    /// The driver taking it to the door (deliveries only); `None` until
    /// one is assigned.
    pub driver: Option<AssignedDriver>,
    pub created_at: OffsetDateTime,
    pub updated_at: OffsetDateTime,
    /// When the order entered its current status (the ETA is measured
    /// from here).
    pub status_since: OffsetDateTime,
}

impl Order {
    /// This order as `change`, decided on this very version of it, leaves
    /// it — exactly what a store writes (see [`StatusChange::after`]).
    /// `None` when the change was decided on another version, or assigns a
    /// driver (the order shows the driver's name, which the change does not
    /// carry).
    pub fn after_status_change(&self, change: &StatusChange) -> Option<Order> {
        if change.order_id != self.id || change.expected_version != self.version {
            return None;
        }
        let mut after = self.clone();
        after.apply_status_change(change)?;
        Some(after)
    }

    /// This order as the item change (and its automatic advance), decided
    /// on this very version of it, leave it (see [`ItemStatusChange::after`]).
    /// `None` when it was decided on another version, or the advance does
    /// not follow the item change directly.
    pub fn after_item_change(&self, change: &ItemStatusChange) -> Option<Order> {
        if change.order_id != self.id || change.expected_version != self.version {
            return None;
        }
        let mut after = self.clone();
        let item = after
            .items
            .iter_mut()
            .find(|item| item.id == change.item.id)?;
        item.status = change.item.to;
        after.version += 1;
        after.updated_at = change.event.at;
        if let Some(then) = &change.then {
            if then.order_id != after.id || then.expected_version != after.version {
                return None;
            }
            after.apply_status_change(then)?;
        }
        Some(after)
    }

    /// Applies a status change in place, as the stores write it: the next
    /// version, the status (its clock restarts only when it moves), the
    /// time of the change, the payment afterwards; an unassignment.
    fn apply_status_change(&mut self, change: &StatusChange) -> Option<()> {
        if let Some(step) = change.assignment {
            if step.driver.is_some() {
                return None;
            }
            self.driver = None;
        }
        self.version += 1;
        if change.to != self.status {
            self.status = change.to.clone();
            self.status_since = change.history.at;
        }
        self.updated_at = change.history.at;
        if let Some(payment) = &change.payment {
            self.payment.status = payment.status;
            self.payment.paid_at = payment.paid_at;
            self.payment.refunded_minor = payment.refunded_minor;
        }
        Some(())
    }

    /// Items that are not ready yet.
    pub fn pending_items(&self) -> Vec<ItemId> {
        self.items
            .iter()
            .filter(|item| item.status != ItemStatus::Ready)
            .map(|item| item.id)
            .collect()
    }
}

/// Formats a per-store order number: prefix and a zero-padded sequence.
pub fn order_number(prefix: &str, sequence: i64) -> String {
    format!("{prefix}-{sequence:06}")
}

/// The total of an order's lines, each `(unit price, quantity)`, in minor
/// units; `None` if it does not fit. Stores persist the total they are
/// given, so every backend agrees on it.
pub fn order_total(lines: impl IntoIterator<Item = (i64, u32)>) -> Option<i64> {
    lines
        .into_iter()
        .try_fold(0i64, |total, (unit_price, quantity)| {
            unit_price
                .checked_mul(i64::from(quantity))
                .and_then(|amount| total.checked_add(amount))
        })
}

/// Who made a change: a user acting in a role.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Actor {
    pub id: UserId,
    pub role: Role,
}

/// One append-only entry of an order's status history.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HistoryEntry {
    /// `None` for the entry that records the order's creation.
    pub from: Option<StatusKey>,
    pub to: StatusKey,
    pub actor: Actor,
    pub note: Option<String>,
    pub at: OffsetDateTime,
    /// A manager's or owner's correction (a move outside the workflow's
    /// rules, `note` saying why), not a step of the workflow.
    pub correction: bool,
    /// A payment change (the status stays: `from` is `to`); `None` for a
    /// status change.
    pub payment: Option<PaymentStep>,
    /// A driver assignment change (the status stays: `from` is `to`);
    /// `None` for any other change.
    pub assignment: Option<AssignmentStep>,
}

/// What kind of change an event records.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum EventKind {
    OrderCreated,
    StatusChanged,
    ItemStatusChanged,
    NoteAdded,
    OrderCancelled,
    PaymentChanged,
    DriverAssigned,
    DriverUnassigned,
}

impl EventKind {
    /// The stable name used in streams and storage.
    pub fn as_str(self) -> &'static str {
        match self {
            EventKind::OrderCreated => "order_created",
            EventKind::StatusChanged => "status_changed",
            EventKind::ItemStatusChanged => "item_status_changed",
            EventKind::NoteAdded => "note_added",
            EventKind::OrderCancelled => "order_cancelled",
            EventKind::PaymentChanged => "payment_changed",
            EventKind::DriverAssigned => "driver_assigned",
            EventKind::DriverUnassigned => "driver_unassigned",
        }
    }
}

/// What a customer sees of an order's progress; carried by every event so a
/// watcher never needs a second request.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OrderSummary {
    pub number: String,
    pub status: StatusKey,
    pub label: String,
    pub icon: String,
    pub progress: u8,
    pub customer_message: String,
    /// Expected minutes until done, from the workflow; `None` once terminal.
    pub eta_minutes: Option<u32>,
    /// When the order will be done (see [`crate::eta`]); `None` once
    /// terminal, and in events written before summaries carried it.
    #[serde(default)]
    pub eta: Option<crate::Eta>,
    pub terminal: bool,
    /// Pickup or delivery (absent from events written before summaries
    /// carried it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fulfilment: Option<FulfilmentKind>,
    /// Whether the order is paid (absent from events written before
    /// summaries carried it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub payment_status: Option<PaymentStatus>,
}

impl OrderSummary {
    /// The summary of `order` as it is now, with its payment status.
    pub fn of_order(workflow: &Workflow, order: &Order) -> Self {
        OrderSummary::of(
            workflow,
            &order.number,
            &order.status,
            order.fulfilment.kind,
        )
        .with_payment(order.payment.status)
    }

    /// The summary of an order in `status` under `workflow`.
    pub fn of(workflow: &Workflow, number: &str, status: &str, fulfilment: FulfilmentKind) -> Self {
        let state = workflow.state(status);
        OrderSummary {
            number: number.to_owned(),
            status: status.into(),
            label: state.map_or_else(|| status.to_owned(), |s| s.label.clone()),
            icon: state.map(|s| s.icon.clone()).unwrap_or_default(),
            progress: state.map_or(0, |s| s.progress),
            customer_message: state
                .map(|s| s.customer_message.clone())
                .unwrap_or_default(),
            eta_minutes: workflow.expected_minutes_remaining(status, fulfilment),
            eta: None,
            terminal: workflow.is_terminal(status),
            fulfilment: Some(fulfilment),
            payment_status: None,
        }
    }

    /// This summary, saying the order's payment is `status`.
    pub fn with_payment(self, status: PaymentStatus) -> Self {
        OrderSummary {
            payment_status: Some(status),
            ..self
        }
    }
}

/// A line item's change, as carried by an item event.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ItemChange {
    pub id: ItemId,
    pub name: String,
    pub station: String,
    pub from: ItemStatus,
    pub to: ItemStatus,
}

/// A change to an order, written in the same transaction as the change itself.
/// The store assigns its resume position.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NewEvent {
    pub kind: EventKind,
    pub store_id: StoreId,
    pub order_id: OrderId,
    pub customer_id: UserId,
    /// The order's version after this change.
    pub order_version: i64,
    pub from: Option<StatusKey>,
    pub to: Option<StatusKey>,
    pub actor: Option<Actor>,
    pub note: Option<String>,
    pub item: Option<ItemChange>,
    /// Stations of the order's items (lets kitchen streams filter by station).
    pub stations: Vec<String>,
    #[serde(with = "time::serde::rfc3339")]
    pub at: OffsetDateTime,
    pub summary: OrderSummary,
    /// A correction by the store (see [`HistoryEntry::correction`]).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub correction: bool,
    /// What a payment change did; absent for other events.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub payment: Option<PaymentStep>,
    /// Who the order's driver is after an assignment change (first name
    /// only); absent for other events.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub assignment: Option<AssignmentShown>,
}

impl NewEvent {
    /// An event of `kind` about `order` that makes its version
    /// `order_version`, by `actor` at `at`: the stations of all its items,
    /// and no status step, note, item, payment or assignment — a change
    /// that has one sets it (`NewEvent { item: …, ..NewEvent::about(…) }`).
    pub fn about(
        order: &Order, kind: EventKind, order_version: i64, actor: Actor, at: OffsetDateTime,
        summary: OrderSummary,
    ) -> NewEvent {
        NewEvent {
            kind,
            store_id: order.store_id,
            order_id: order.id,
            customer_id: order.customer_id,
            order_version,
            from: None,
            to: None,
            actor: Some(actor),
            note: None,
            item: None,
            stations: stations_of(&order.items),
            correction: false,
            payment: None,
            assignment: None,
            at,
            summary,
        }
    }

    /// The event as every watcher receives it (SSE `data:`, WebSocket
    /// `event`), serialised: a JSON object of everything but its resume
    /// position `id`, which comes first and is the store's to assign. The
    /// store keeps it beside the event, so neither the live fan-out nor a
    /// replay serialises an event again.
    pub fn public_json(&self) -> String {
        // Plain data with string keys: serialising it cannot fail.
        serde_json::to_string(&PublicBody::from(self)).unwrap_or_else(|_| "{}".to_owned())
    }
}

/// What watchers see of an event besides its `id`, in the order they see
/// it: the actor's role but not who, and no `correction` unless it is one.
#[derive(Serialize)]
struct PublicBody<'a> {
    #[serde(rename = "type")]
    kind: EventKind,
    store_id: StoreId,
    order_id: OrderId,
    customer_id: UserId,
    order_version: i64,
    from: Option<&'a StatusKey>,
    to: Option<&'a StatusKey>,
    actor_role: Option<Role>,
    note: Option<&'a str>,
    item: Option<&'a ItemChange>,
    stations: &'a [String],
    #[serde(with = "time::serde::rfc3339")]
    at: OffsetDateTime,
    summary: &'a OrderSummary,
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    correction: bool,
    /// What a payment change did; absent for other events.
    #[serde(skip_serializing_if = "Option::is_none")]
    payment: Option<&'a PaymentStep>,
    /// The driver after an assignment change; absent for other events.
    #[serde(skip_serializing_if = "Option::is_none")]
    assignment: Option<&'a AssignmentShown>,
}

impl<'a> From<&'a NewEvent> for PublicBody<'a> {
    fn from(event: &'a NewEvent) -> Self {
        PublicBody {
            kind: event.kind,
            store_id: event.store_id,
            order_id: event.order_id,
            customer_id: event.customer_id,
            order_version: event.order_version,
            from: event.from.as_ref(),
            to: event.to.as_ref(),
            actor_role: event.actor.map(|a| a.role),
            note: event.note.as_deref(),
            item: event.item.as_ref(),
            stations: &event.stations,
            at: event.at,
            summary: &event.summary,
            correction: event.correction,
            payment: event.payment.as_ref(),
            assignment: event.assignment.as_ref(),
        }
    }
}

/// Why a status change was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TransitionError {
    #[error(transparent)]
    Denied(#[from] TransitionDenied),
    #[error("the order cannot become `{to}` while items are not ready")]
    ItemsNotReady { to: StatusKey, pending: Vec<ItemId> },
    #[error("the order has changed: version {current} is current, not {expected}")]
    StaleVersion { expected: i64, current: i64 },
    #[error("a note may have at most {MAX_NOTE_CHARS} characters")]
    NoteTooLong,
    #[error(transparent)]
    UnsafeText(#[from] UnsafeText),
    #[error("a correction needs a reason")]
    ReasonRequired,
    #[error("the order must be paid before it can become `{to}`")]
    PaymentRequired { to: String },
    #[error("a driver moves only the orders assigned to them")]
    NotAssigned,
}

/// A decided status change, ready to persist with a version check.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StatusChange {
    pub order_id: OrderId,
    /// The version the change was decided on; the store applies it only if
    /// the order still has this version.
    pub expected_version: i64,
    pub from: StatusKey,
    pub to: StatusKey,
    pub history: HistoryEntry,
    pub event: NewEvent,
    /// The order's payment afterwards, when the change is a payment's.
    pub payment: Option<Payment>,
    /// The order's driver afterwards, when the change is an assignment's.
    pub assignment: Option<AssignmentStep>,
    /// The order reaches a done state by the workflow's rules (not a
    /// correction): the store keeps how long it took from each state it
    /// entered, for the ETA (see [`crate::eta`]) — by default a moment
    /// later, in bulk, by the follower of the event log the write marks
    /// the change's event for; in the same write with
    /// [`durations_at_once`](Self::durations_at_once).
    pub finishes: bool,
    /// A finishing change keeps its durations in its own write rather than
    /// leaving them to the follower: chosen while the store is still
    /// learning, so the order that completes its sample turns its windows
    /// learned at once. Costs the write a few pages, which is why a
    /// learned store leaves it to the follower.
    pub durations_at_once: bool,
    /// The change moves the order between open, done and cancelled: the
    /// store applies it to the per-day report rollups in the same write
    /// (see [`crate::rollup`]). `None` within one outcome.
    pub outcomes: Option<Box<crate::rollup::OrderOutcomes>>,
    /// The order as this change leaves it, when the one who decided it
    /// knew (set by [`Order::after_status_change`] and
    /// [`Order::after_item_change`]): a store that applies the change
    /// answers with it instead of reading the order back. Its version check
    /// is what makes it exact — the change applies only to the version it
    /// was worked out from.
    pub after: Option<Box<Order>>,
}

impl StatusChange {
    /// A change that leaves `order` in its status (a payment, a driver
    /// assignment), decided on its current version: its history entry
    /// steps from the status to itself, and nothing finishes (the status
    /// clock runs on). `history` and `event` are the caller's; `payment`
    /// and `assignment` start empty.
    pub fn status_kept(order: &Order, history: HistoryEntry, event: NewEvent) -> StatusChange {
        StatusChange {
            order_id: order.id,
            expected_version: order.version,
            from: order.status.clone(),
            to: order.status.clone(),
            history,
            event,
            payment: None,
            assignment: None,
            finishes: false,
            durations_at_once: false,
            outcomes: None,
            after: None,
        }
    }
}

impl HistoryEntry {
    /// An entry of `order` staying in its status (a payment, a driver
    /// assignment) by `actor` at `at`; the caller adds what changed.
    pub fn status_kept(order: &Order, actor: Actor, at: OffsetDateTime) -> HistoryEntry {
        HistoryEntry {
            from: Some(order.status.clone()),
            to: order.status.clone(),
            actor,
            note: None,
            at,
            correction: false,
            payment: None,
            assignment: None,
        }
    }
}

/// Whether `order` may enter `state` as far as its payment goes: a state
/// marked `requires_paid` only once it is paid.
pub fn paid_enough(state: &crate::workflow::State, order: &Order) -> bool {
    !state.requires_paid || order.payment.status.is_paid()
}

/// Refuses a driver's move of an order that is not theirs.
fn check_assigned_driver(order: &Order, actor: Actor) -> Result<(), TransitionError> {
    crate::assignment::check_assigned_driver(order, actor)
        .map_err(|_: AssignmentError| TransitionError::NotAssigned)
}

/// Refuses a change decided on another version than the order's.
fn check_version(order: &Order, expected_version: Option<i64>) -> Result<(), TransitionError> {
    match expected_version {
        Some(expected) if expected != order.version => Err(TransitionError::StaleVersion {
            expected,
            current: order.version,
        }),
        _ => Ok(()),
    }
}

fn check_note(note: &Option<String>) -> Result<(), TransitionError> {
    match note {
        Some(text) if text.chars().count() > MAX_NOTE_CHARS => Err(TransitionError::NoteTooLong),
        Some(text) => Ok(check_lines("note", text)?),
        None => Ok(()),
    }
}

/// Decides whether `actor` may move `order` to `to`, and if so, what to write.
///
/// `expected_version` is the version the client saw; `None` means "whatever
/// is current" (the store still guards against a concurrent change).
pub fn plan_transition(
    workflow: &Workflow, order: &Order, actor: Actor, to: &str, note: Option<String>,
    expected_version: Option<i64>, now: OffsetDateTime,
) -> Result<StatusChange, TransitionError> {
    check_note(&note)?;
    // A stale version first: the client decided on a state that is gone, and
    // must see the fresh one whatever else is wrong with its request.
    check_version(order, expected_version)?;
    let target = workflow.check(actor.role, &order.status, to, order.fulfilment.kind)?;
    check_assigned_driver(order, actor)?;
    if target.requires_items_ready {
        let pending = order.pending_items();
        if !pending.is_empty() {
            return Err(TransitionError::ItemsNotReady {
                to: to.into(),
                pending,
            });
        }
    }
    if !paid_enough(target, order) {
        return Err(TransitionError::PaymentRequired { to: to.to_owned() });
    }
    let kind = if workflow.is_cancelled(to) {
        EventKind::OrderCancelled
    } else {
        EventKind::StatusChanged
    };
    Ok(status_change(
        workflow,
        order,
        actor,
        to,
        note,
        kind,
        order.version + 1,
        now,
    ))
}

/// Decides a correction: a manager or owner (or admin) moves `order` to any
/// other state of its workflow — back from `completed` to `ready`, say —
/// outside the workflow's rules, saying why. Recorded and pushed like any
/// change, marked as a correction.
pub fn plan_correction(
    workflow: &Workflow, order: &Order, actor: Actor, to: &str, reason: &str,
    expected_version: Option<i64>, now: OffsetDateTime,
) -> Result<StatusChange, TransitionError> {
    let reason = reason.trim();
    if reason.is_empty() {
        return Err(TransitionError::ReasonRequired);
    }
    let reason = Some(reason.to_owned());
    check_note(&reason)?;
    check_version(order, expected_version)?;
    if !matches!(actor.role, Role::Admin | Role::Owner | Role::Manager) {
        return Err(TransitionDenied::RoleNotAllowed {
            role: actor.role,
            from: order.status.clone(),
            to: to.into(),
        }
        .into());
    }
    if workflow.state(to).is_none() {
        return Err(TransitionDenied::UnknownStatus { status: to.into() }.into());
    }
    if to == order.status {
        return Err(TransitionDenied::NotAllowedFromHere {
            from: order.status.clone(),
            to: to.into(),
        }
        .into());
    }
    let kind = if workflow.is_cancelled(to) {
        EventKind::OrderCancelled
    } else {
        EventKind::StatusChanged
    };
    let mut change = status_change(
        workflow,
        order,
        actor,
        to,
        reason,
        kind,
        order.version + 1,
        now,
    );
    change.history.correction = true;
    change.event.correction = true;
    // A correction's timing is not the store's usual pace.
    change.finishes = false;
    Ok(change)
}

/// The status change of `order` (as it is now) to `to`, making version
/// `new_version`; the caller has checked that it is allowed.
#[allow(clippy::too_many_arguments)]
pub(crate) fn status_change(
    workflow: &Workflow, order: &Order, actor: Actor, to: &str, note: Option<String>,
    kind: EventKind, new_version: i64, now: OffsetDateTime,
) -> StatusChange {
    StatusChange {
        order_id: order.id,
        expected_version: new_version - 1,
        from: order.status.clone(),
        to: to.into(),
        history: HistoryEntry {
            from: Some(order.status.clone()),
            to: to.into(),
            actor,
            note: note.clone(),
            at: now,
            correction: false,
            payment: None,
            assignment: None,
        },
        event: NewEvent {
            from: Some(order.status.clone()),
            to: Some(to.into()),
            note,
            ..NewEvent::about(
                order,
                kind,
                new_version,
                actor,
                now,
                OrderSummary::of(workflow, &order.number, to, order.fulfilment.kind)
                    .with_payment(order.payment.status),
            )
        },
        payment: None,
        assignment: None,
        finishes: workflow.is_done(to),
        durations_at_once: false,
        outcomes: crate::rollup::OrderOutcomes::of(workflow, &order.status, to).map(Box::new),
        after: None,
    }
}

/// The distinct stations of some items, sorted.
pub fn stations_of(items: &[OrderItem]) -> Vec<String> {
    let mut stations: Vec<String> = items.iter().map(|item| item.station.clone()).collect();
    stations.sort();
    stations.dedup();
    stations
}

/// Why an item status change was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ItemChangeError {
    #[error("the order has no item {0}")]
    UnknownItem(ItemId),
    #[error("the order is finished; its items can no longer change")]
    OrderFinished,
    #[error("only kitchen staff, cashiers, managers and owners change item status")]
    RoleNotAllowed,
    #[error("the item is already {0}")]
    Unchanged(&'static str),
    #[error("the kitchen is done with this order (it is `{status}`); its items stay ready")]
    KitchenDone { status: StatusKey },
    #[error("only managers and owners correct an item")]
    NotACorrector,
    #[error("a correction needs a reason")]
    ReasonRequired,
    #[error("a reason may have at most {MAX_NOTE_CHARS} characters")]
    ReasonTooLong,
    #[error(transparent)]
    UnsafeText(#[from] UnsafeText),
}

/// A decided item status change, plus the order's automatic advance when the
/// last item became ready and the workflow says so.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ItemStatusChange {
    pub order_id: OrderId,
    pub expected_version: i64,
    pub item: ItemChange,
    pub event: NewEvent,
    pub then: Option<StatusChange>,
    /// The order as this change and its automatic advance leave it
    /// ([`Order::after_item_change`]); as [`StatusChange::after`].
    pub after: Option<Box<Order>>,
}

/// Decides an item status change by `actor` and what follows from it.
pub fn plan_item_status(
    workflow: &Workflow, order: &Order, actor: Actor, item_id: ItemId, to: ItemStatus,
    now: OffsetDateTime,
) -> Result<ItemStatusChange, ItemChangeError> {
    if !actor.role.changes_items() {
        return Err(ItemChangeError::RoleNotAllowed);
    }
    if workflow.is_terminal(&order.status) {
        return Err(ItemChangeError::OrderFinished);
    }
    // An order at or past its hand-off got there because every item was
    // ready; taking one back would leave it there (and let it finish) with
    // an item the kitchen has not made. A recall takes the order back first.
    if to != ItemStatus::Ready && workflow.is_past_kitchen(&order.status, order.fulfilment.kind) {
        return Err(ItemChangeError::KitchenDone {
            status: order.status.clone(),
        });
    }
    let item = item_to_change(order, item_id, to)?;
    let (change, event) = item_event(workflow, order, actor, item, to, now);
    let new_version = event.order_version;

    let all_ready_after = order.items.iter().all(|other| {
        if other.id == item_id {
            to == ItemStatus::Ready
        } else {
            other.status == ItemStatus::Ready
        }
    });
    // An unpaid order stays where it is rather than advance into a state
    // that must wait for its payment.
    let then = match workflow.on_items_ready(&order.status) {
        Some(target) if all_ready_after && paid_enough(target, order) => {
            let mut updated = order.clone();
            updated.version = new_version;
            for other in &mut updated.items {
                if other.id == item_id {
                    other.status = to;
                }
            }
            Some(status_change(
                workflow,
                &updated,
                actor,
                &target.key,
                Some("all items ready".to_owned()),
                EventKind::StatusChanged,
                new_version + 1,
                now,
            ))
        }
        _ => None,
    };
    Ok(ItemStatusChange {
        order_id: order.id,
        expected_version: order.version,
        item: change,
        event,
        then,
        after: None,
    })
}

/// The item `item_id` of `order`, when it is there and not `to` already.
fn item_to_change(
    order: &Order, item_id: ItemId, to: ItemStatus,
) -> Result<&OrderItem, ItemChangeError> {
    let item = order
        .items
        .iter()
        .find(|item| item.id == item_id)
        .ok_or(ItemChangeError::UnknownItem(item_id))?;
    if item.status == to {
        return Err(ItemChangeError::Unchanged(to.as_str()));
    }
    Ok(item)
}

/// The change of `item` of `order` to `to` and its event.
pub(crate) fn item_event(
    workflow: &Workflow, order: &Order, actor: Actor, item: &OrderItem, to: ItemStatus,
    now: OffsetDateTime,
) -> (ItemChange, NewEvent) {
    let change = ItemChange {
        id: item.id,
        name: item.name.clone(),
        station: item.station.clone(),
        from: item.status,
        to,
    };
    let summary = OrderSummary::of_order(workflow, order);
    let event = NewEvent {
        item: Some(change.clone()),
        stations: vec![item.station.clone()],
        ..NewEvent::about(
            order,
            EventKind::ItemStatusChanged,
            order.version + 1,
            actor,
            now,
            summary,
        )
    };
    (change, event)
}

/// Decides an item correction: a manager or owner (or admin) sets an item
/// of `order` to `to` whatever the order's state, saying why. Nothing
/// follows from it (no automatic advance): the order stays where it is.
pub fn plan_item_correction(
    workflow: &Workflow, order: &Order, actor: Actor, item_id: ItemId, to: ItemStatus,
    reason: &str, now: OffsetDateTime,
) -> Result<ItemStatusChange, ItemChangeError> {
    if !matches!(actor.role, Role::Admin | Role::Owner | Role::Manager) {
        return Err(ItemChangeError::NotACorrector);
    }
    let reason = reason.trim();
    if reason.is_empty() {
        return Err(ItemChangeError::ReasonRequired);
    }
    if reason.chars().count() > MAX_NOTE_CHARS {
        return Err(ItemChangeError::ReasonTooLong);
    }
    check_lines("reason", reason)?;
    let item = item_to_change(order, item_id, to)?;
    let (change, mut event) = item_event(workflow, order, actor, item, to, now);
    event.note = Some(reason.to_owned());
    event.correction = true;
    Ok(ItemStatusChange {
        order_id: order.id,
        expected_version: order.version,
        item: change,
        event,
        then: None,
        after: None,
    })
}

/// Why an order could not be placed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum OrderRequestError {
    #[error("an order needs at least one item")]
    NoItems,
    #[error("an order may have at most {MAX_ITEMS_PER_ORDER} lines")]
    TooManyItems,
    #[error("quantity must be between 1 and {MAX_QUANTITY}")]
    BadQuantity,
    #[error("a note may have at most {MAX_NOTE_CHARS} characters")]
    NoteTooLong,
    #[error("delivery needs an address of at most {MAX_ADDRESS_CHARS} characters")]
    BadAddress,
    #[error("product {0} is not on this store's menu")]
    UnknownProduct(ProductId),
    #[error("product {0} is not available right now")]
    UnavailableProduct(ProductId),
    #[error("the order's total is too large")]
    TotalOutOfRange,
    #[error(transparent)]
    UnsafeText(#[from] UnsafeText),
}

/// A line as requested by a customer: which product and how many, never a price.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct RequestedLine {
    pub product: ProductId,
    pub quantity: i64,
    pub notes: Option<String>,
}

/// Checks the bounds of an order request (before products are looked up).
pub fn check_order_request(
    lines: &[RequestedLine], fulfilment: &Fulfilment, notes: &Option<String>,
) -> Result<(), OrderRequestError> {
    if lines.is_empty() {
        return Err(OrderRequestError::NoItems);
    }
    if lines.len() > MAX_ITEMS_PER_ORDER {
        return Err(OrderRequestError::TooManyItems);
    }
    let too_long = |text: &Option<String>| {
        text.as_ref()
            .is_some_and(|t| t.chars().count() > MAX_NOTE_CHARS)
    };
    for line in lines {
        if line.quantity < 1 || line.quantity > i64::from(MAX_QUANTITY) {
            return Err(OrderRequestError::BadQuantity);
        }
        if too_long(&line.notes) {
            return Err(OrderRequestError::NoteTooLong);
        }
        if let Some(text) = &line.notes {
            check_lines("items.notes", text)?;
        }
    }
    if too_long(notes) {
        return Err(OrderRequestError::NoteTooLong);
    }
    if let Some(text) = notes {
        check_lines("notes", text)?;
    }
    if fulfilment.kind == FulfilmentKind::Delivery {
        match &fulfilment.address {
            Some(address)
                if !address.trim().is_empty() && address.chars().count() <= MAX_ADDRESS_CHARS =>
            {
                check_lines("fulfilment.address", address)?;
            }
            _ => return Err(OrderRequestError::BadAddress),
        }
    }
    Ok(())
}

/// The history entry and event that record an order's creation.
///
/// `summary` is the order's summary in its initial state; its number is
/// replaced by the order's.
pub fn order_created(
    order: &Order, mut summary: OrderSummary, actor: Actor,
) -> (HistoryEntry, NewEvent) {
    summary.number = order.number.clone();
    summary.payment_status = Some(order.payment.status);
    // The order's own notes stay on the order: history and events travel to
    // guest tracking views, which must not show what the customer wrote.
    let history = HistoryEntry {
        from: None,
        to: order.status.clone(),
        actor,
        note: None,
        correction: false,
        payment: None,
        assignment: None,
        at: order.created_at,
    };
    let event = NewEvent {
        to: Some(order.status.clone()),
        ..NewEvent::about(
            order,
            EventKind::OrderCreated,
            order.version,
            actor,
            order.created_at,
            summary,
        )
    };
    (history, event)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_order_total_is_the_sum_of_price_times_quantity() {
        assert_eq!(order_total([(950, 2), (390, 1)]), Some(2290));
        assert_eq!(order_total([]), Some(0));
        assert_eq!(order_total([(i64::MAX, 2)]), None);
        assert_eq!(order_total([(i64::MAX, 1), (1, 1)]), None);
    }

    #[test]
    fn a_tap_moves_an_item_one_step_until_it_is_ready() {
        assert_eq!(ItemStatus::Queued.next(), Some(ItemStatus::Preparing));
        assert_eq!(ItemStatus::Preparing.next(), Some(ItemStatus::Ready));
        assert_eq!(ItemStatus::Ready.next(), None);
    }
}
