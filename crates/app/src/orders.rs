//! Placing, reading and moving orders.
//!
//! Access rule for every read and write: the customer who owns the order,
//! the staff of its store and platform admins may see it; for anyone else it
//! does not exist (404, never 403, so ids cannot be probed).

use std::collections::HashMap;
use std::collections::hash_map::Entry;
use std::future::{Future, Ready, ready};
use std::pin::Pin;
use std::sync::Arc;

use ordertrack_domain::{
    Actor, AssignedDriver, AssignmentError, Eta, Fulfilment, FulfilmentKind, HistoryEntry,
    ItemChangeError, ItemId, ItemStatus, ItemStatusChange, KitchenQueue, NewEvent, Order, OrderId,
    OrderLine, OrderPlan, OrderRequestError, PaymentError, PaymentMethod, PaymentRequest, PlanStep,
    RequestedLine, Role, StatusChange, StatusKey, StoreDurations, StoreId, StoreStatus,
    TransitionDenied, TransitionError, UserId, Workflow, check_order_request, may_assign,
    order_total, plan_assignment, plan_correction, plan_item_correction, plan_item_status,
    plan_payment, plan_transition,
};
use ordertrack_store::{
    CommitListener, DriverScope, LogEntry, NewOrder, OrderInStore, OrderKey, OrderPage, OrderQuery,
    OrderScope, Repository, StoreError, StoreRecord,
};
use serde::Serialize;
use sha2::{Digest, Sha256};

use crate::ErrorCode;
use crate::auth::Asker;
use crate::{App, AppError, Caller};

/// Longest accepted Idempotency-Key.
pub(crate) const MAX_IDEMPOTENCY_KEY: usize = 255;
/// Largest page of orders.
pub const MAX_PAGE: u32 = 100;
/// How often a change without an expected version is re-decided after
/// losing a race, before reporting the conflict.
const RETRIES: usize = 5;

/// An order request as the customer sent it.
#[derive(Debug, Clone, Serialize)]
pub struct OrderRequest {
    pub store: String,
    pub items: Vec<RequestedLine>,
    pub fulfilment: Fulfilment,
    pub notes: Option<String>,
    /// How the customer will pay; `None`: the store's preferred method.
    pub payment_method: Option<PaymentMethod>,
}

/// An order together with its store's workflow (what views need to show it).
#[derive(Debug, Clone)]
pub struct OrderView {
    pub order: Order,
    pub workflow: Arc<Workflow>,
    /// The role the caller sees it in (`None` for a guest with the tracking link).
    pub role: Option<Role>,
    /// When it will be done; `None` once terminal.
    pub eta: Option<Eta>,
}

/// A placed order, as the customer who placed it sees it.
#[derive(Debug, Clone)]
pub struct Placed {
    /// The order as written, in the customer's role.
    pub view: OrderView,
    /// False when an idempotent retry returned the original order.
    pub created: bool,
}

/// One order of a store as its staff member sees it on the dashboard:
/// the order, its history and the caller's role in the store.
#[derive(Debug, Clone)]
pub struct StaffOrder {
    /// The order and its store's workflow.
    pub view: OrderView,
    /// Its status history, oldest first.
    pub history: Vec<HistoryEntry>,
    /// The caller's role in the store (platform admins: admin).
    pub role: Role,
    /// The store's drivers, when the caller may assign one to this order
    /// (a delivery, by counter staff); otherwise empty.
    pub drivers: Vec<AssignedDriver>,
}

/// Which orders a caller asks for.
#[derive(Debug, Clone, Default)]
pub struct OrderListRequest {
    /// Staff: the store whose orders to list. Without it: the caller's own orders.
    pub store: Option<String>,
    pub status: Option<String>,
    pub search: Option<String>,
    /// Staff: only the orders assigned to the caller (`driver=me`).
    pub assigned_to_me: bool,
    pub cursor: Option<String>,
    pub limit: Option<u32>,
}

/// A store's dashboard: what its staff member sees of its orders.
#[derive(Debug, Clone)]
pub struct Dashboard {
    pub store: StoreRecord,
    pub workflow: Arc<Workflow>,
    /// The caller's role in the store.
    pub role: Role,
    pub list: OrderList,
    /// How many of the store's orders (that the caller sees) are in each
    /// status.
    pub counts: Vec<(String, i64)>,
}

/// What a use case decided to do with an order it read.
pub(crate) enum Decision<C> {
    /// Write this change.
    Write(C),
    /// Nothing to write: the answer is the order as read.
    Keep(Box<Order>),
}

/// A change planned for one order, and the one store write that persists
/// it: every kind of change has exactly one.
pub(crate) trait PlannedChange: Send {
    /// Persists the change; a version conflict means the order moved on.
    fn write(self, repo: &dyn Repository) -> WriteFuture<'_>;

    /// The events it writes, in order (their summaries get the ETA).
    fn events_mut(&mut self) -> Vec<&mut NewEvent>;

    /// Its status changes, in order (a finishing one may keep its
    /// durations at once).
    fn status_changes_mut(&mut self) -> Vec<&mut StatusChange>;

    /// Notes how the change leaves `before`, the order it was decided on,
    /// where that can be told: the store then answers without reading the
    /// order back.
    fn decided_on(&mut self, before: &Order);
}

/// What [`PlannedChange::write`] returns: the store's own future.
pub(crate) type WriteFuture<'a> =
    Pin<Box<dyn Future<Output = Result<Order, StoreError>> + Send + 'a>>;

impl PlannedChange for StatusChange {
    fn write(self, repo: &dyn Repository) -> WriteFuture<'_> {
        repo.apply_status_change(self)
    }

    fn events_mut(&mut self) -> Vec<&mut NewEvent> {
        vec![&mut self.event]
    }

    fn status_changes_mut(&mut self) -> Vec<&mut StatusChange> {
        vec![self]
    }

    fn decided_on(&mut self, before: &Order) {
        self.after = before.after_status_change(self).map(Box::new);
    }
}

impl PlannedChange for ItemStatusChange {
    fn write(self, repo: &dyn Repository) -> WriteFuture<'_> {
        repo.apply_item_change(self)
    }

    fn events_mut(&mut self) -> Vec<&mut NewEvent> {
        let mut events = vec![&mut self.event];
        events.extend(self.then.as_mut().map(|then| &mut then.event));
        events
    }

    fn status_changes_mut(&mut self) -> Vec<&mut StatusChange> {
        self.then.iter_mut().collect()
    }

    fn decided_on(&mut self, before: &Order) {
        self.after = before.after_item_change(self).map(Box::new);
    }
}

impl PlannedChange for OrderPlan {
    fn write(self, repo: &dyn Repository) -> WriteFuture<'_> {
        repo.apply_plan(self)
    }

    fn events_mut(&mut self) -> Vec<&mut NewEvent> {
        self.steps
            .iter_mut()
            .map(|step| match step {
                PlanStep::Item(step) => &mut step.event,
                PlanStep::Status(change) => &mut change.event,
            })
            .collect()
    }

    fn status_changes_mut(&mut self) -> Vec<&mut StatusChange> {
        self.steps
            .iter_mut()
            .filter_map(|step| match step {
                PlanStep::Item(_) => None,
                PlanStep::Status(change) => Some(change),
            })
            .collect()
    }

    /// A plan's steps are read back: it has several versions to check.
    fn decided_on(&mut self, _before: &Order) {}
}

/// Puts the ETA window on each event's summary: of the status the event
/// leaves the order in, from when it entered it (the event's time for a
/// status change, else the order's `status_since`).
fn stamp_eta(events: Vec<&mut NewEvent>, pace: &StorePace, workflow: &Workflow, order: &Order) {
    let mut since = order.status_since;
    let ahead = pace.queue.ahead_of(Some(order.id));
    for event in events {
        if event.to.is_some() {
            since = event.at;
        }
        event.summary.eta = pace.durations.eta(
            workflow,
            event.summary.status.as_str(),
            order.fulfilment.kind,
            since,
            ahead,
        );
    }
}

/// A planner that needs no further reads and always writes, as a decider
/// for [`App::decide_and_write`].
fn always_write<C, E: Into<AppError>>(
    plan: impl Fn(&Workflow, &Order, Actor) -> Result<C, E>,
) -> impl Fn(Arc<Workflow>, Order, Actor) -> Ready<Result<Decision<C>, AppError>> {
    move |workflow, order, actor| {
        ready(
            plan(&workflow, &order, actor)
                .map(Decision::Write)
                .map_err(Into::into),
        )
    }
}

/// A page of orders and the cursor of the next one.
#[derive(Debug, Clone)]
pub struct OrderList {
    pub orders: Vec<OrderView>,
    pub next_cursor: Option<String>,
}

impl From<OrderRequestError> for AppError {
    fn from(error: OrderRequestError) -> Self {
        let code = match error {
            OrderRequestError::UnknownProduct(_) => ErrorCode::UnknownProduct,
            OrderRequestError::UnavailableProduct(_) => ErrorCode::UnavailableProduct,
            OrderRequestError::UnsafeText(_) => ErrorCode::InvalidCharacters,
            _ => ErrorCode::InvalidOrder,
        };
        AppError::invalid(code, error.to_string())
    }
}

impl From<TransitionError> for AppError {
    fn from(error: TransitionError) -> Self {
        let message = error.to_string();
        match error {
            TransitionError::Denied(TransitionDenied::UnknownStatus { .. }) => {
                AppError::invalid(ErrorCode::UnknownStatus, message)
            }
            TransitionError::Denied(TransitionDenied::RoleNotAllowed { .. }) => {
                AppError::Forbidden(message)
            }
            TransitionError::Denied(TransitionDenied::FromTerminal { .. }) => {
                AppError::conflict(ErrorCode::TerminalStatus, message)
            }
            TransitionError::Denied(TransitionDenied::NotAllowedFromHere { .. }) => {
                AppError::conflict(ErrorCode::TransitionNotAllowed, message)
            }
            TransitionError::ItemsNotReady { pending, .. } => AppError::Conflict {
                code: ErrorCode::ItemsNotReady,
                message,
                current_version: None,
                pending_items: pending,
            },
            TransitionError::StaleVersion { current, .. } => AppError::Conflict {
                code: ErrorCode::VersionConflict,
                message,
                current_version: Some(current),
                pending_items: Vec::new(),
            },
            TransitionError::NoteTooLong => AppError::invalid(ErrorCode::InvalidNote, message),
            TransitionError::UnsafeText(error) => error.into(),
            TransitionError::ReasonRequired => {
                AppError::invalid(ErrorCode::ReasonRequired, message)
            }
            TransitionError::PaymentRequired { .. } => {
                AppError::conflict(ErrorCode::PaymentRequired, message)
            }
            TransitionError::NotAssigned => AppError::Forbidden(message),
        }
    }
}

impl From<AssignmentError> for AppError {
    fn from(error: AssignmentError) -> Self {
        let message = error.to_string();
        match error {
            AssignmentError::StaleVersion { current, .. } => AppError::Conflict {
                code: ErrorCode::VersionConflict,
                message,
                current_version: Some(current),
                pending_items: Vec::new(),
            },
            AssignmentError::RoleNotAllowed { .. }
            | AssignmentError::SelfAssignmentOff
            | AssignmentError::NotYourself => AppError::Forbidden(message),
            AssignmentError::AlreadyAssigned => {
                AppError::conflict(ErrorCode::AlreadyAssigned, message)
            }
            AssignmentError::NotADelivery => AppError::conflict(ErrorCode::NotADelivery, message),
            AssignmentError::OrderFinished => AppError::conflict(ErrorCode::OrderFinished, message),
        }
    }
}

impl From<PaymentError> for AppError {
    fn from(error: PaymentError) -> Self {
        let message = error.to_string();
        match error {
            PaymentError::StaleVersion { current, .. } => AppError::Conflict {
                code: ErrorCode::VersionConflict,
                message,
                current_version: Some(current),
                pending_items: Vec::new(),
            },
            PaymentError::MarkPaidNotAllowed { .. } | PaymentError::RefundNotAllowed => {
                AppError::Forbidden(message)
            }
            PaymentError::AlreadyPaid { .. } => AppError::conflict(ErrorCode::AlreadyPaid, message),
            PaymentError::NotPaid { .. } => AppError::conflict(ErrorCode::NotPaid, message),
            PaymentError::InvalidAmount => AppError::invalid(ErrorCode::InvalidAmount, message),
            PaymentError::RefundTooLarge { .. } => {
                AppError::invalid(ErrorCode::RefundTooLarge, message)
            }
            PaymentError::ReasonRequired => AppError::invalid(ErrorCode::ReasonRequired, message),
            PaymentError::NoteTooLong => AppError::invalid(ErrorCode::InvalidNote, message),
            PaymentError::UnsafeText(error) => error.into(),
        }
    }
}

impl From<ItemChangeError> for AppError {
    fn from(error: ItemChangeError) -> Self {
        let message = error.to_string();
        match error {
            ItemChangeError::UnknownItem(_) => AppError::NotFound("order item"),
            ItemChangeError::RoleNotAllowed => AppError::Forbidden(message),
            ItemChangeError::OrderFinished => AppError::conflict(ErrorCode::OrderFinished, message),
            ItemChangeError::Unchanged(_) => AppError::conflict(ErrorCode::ItemUnchanged, message),
            ItemChangeError::KitchenDone { .. } => {
                AppError::conflict(ErrorCode::KitchenDone, message)
            }
            ItemChangeError::NotACorrector => AppError::Forbidden(message),
            ItemChangeError::ReasonRequired => {
                AppError::invalid(ErrorCode::ReasonRequired, message)
            }
            ItemChangeError::ReasonTooLong => AppError::invalid(ErrorCode::InvalidNote, message),
            ItemChangeError::UnsafeText(error) => error.into(),
        }
    }
}

/// The order a page starts before, from a cursor we gave out (an order id);
/// none or empty: the first page.
pub(crate) fn parse_cursor(cursor: Option<&str>) -> Result<Option<OrderId>, AppError> {
    match cursor {
        None | Some("") => Ok(None),
        Some(cursor) => cursor
            .parse::<i64>()
            .ok()
            .filter(|id| *id > 0)
            .map(|id| Some(OrderId::new(id)))
            .ok_or_else(|| {
                AppError::invalid(
                    ErrorCode::InvalidCursor,
                    "the cursor is not one we gave out",
                )
            }),
    }
}

/// The role in which `caller` may see an order of `store` placed by
/// `customer` for `fulfilment`: a platform admin (whatever membership they
/// hold), staff of its store whose role covers that fulfilment (a driver sees
/// deliveries only), its customer; `None` for anyone else.
pub(crate) fn order_role(
    caller: &Caller, store: StoreId, customer: UserId, fulfilment: FulfilmentKind,
) -> Option<Role> {
    if caller.user.is_admin {
        return Some(Role::Admin);
    }
    if let Some(role) = caller.role_in(store)
        && role.only_fulfilment().is_none_or(|only| only == fulfilment)
    {
        return Some(role);
    }
    (customer == caller.user.id).then_some(Role::Customer)
}

impl App {
    /// Places an order for the caller. The customer is always the caller;
    /// prices, names and stations come from the store's catalog.
    ///
    /// The store, its settings, workflow and products are one read, which
    /// also returns the cache marks: a caller given as a session
    /// ([`Asker::Session`]) is resolved against them, so a kept session
    /// needs no read of its own.
    pub async fn place_order(
        &self, caller: impl Into<Asker<'_>>, request: OrderRequest, idempotency_key: Option<&str>,
    ) -> Result<Placed, AppError> {
        let asker = caller.into();
        let idempotency = match idempotency_key {
            Some(key) => {
                crate::idempotency::check_key(key)?;
                let body =
                    serde_json::to_vec(&request).map_err(|e| AppError::Internal(e.to_string()))?;
                Some((key.to_owned(), hex::encode(Sha256::digest(&body))))
            }
            None => None,
        };
        check_order_request(&request.items, &request.fulfilment, &request.notes)?;
        let menu = match self.repo.store_menu(&request.store).await? {
            Some(menu) if menu.store.settings.status == StoreStatus::Active => menu,
            // Whether a store exists is told to signed-in callers only.
            _ => {
                self.caller_of(asker).await?;
                return Err(AppError::NotFound("store"));
            }
        };
        let resolved = self.caller_at(asker, menu.marks).await?;
        let caller: &Caller = &resolved;
        let found = menu.store;
        crate::stores::check_open(&found, request.fulfilment.kind, crate::now())?;
        let offered = &found.settings.payment_methods;
        let payment_method = match request.payment_method {
            None => offered.preferred(),
            Some(method) if offered.offers(method) => method,
            Some(method) => {
                return Err(AppError::invalid(
                    ErrorCode::PaymentMethodNotOffered,
                    format!("this store does not take `{}`", method.as_str()),
                ));
            }
        };
        let store = found.store;
        let current = self.workflow_view(&store, menu.workflow)?;
        let workflow = current.workflow;
        let catalog: HashMap<_, _> = menu.products.into_iter().map(|p| (p.id, p)).collect();
        let mut lines = Vec::with_capacity(request.items.len());
        for line in &request.items {
            let product = catalog
                .get(&line.product)
                .ok_or(OrderRequestError::UnknownProduct(line.product))?;
            if !product.available {
                return Err(OrderRequestError::UnavailableProduct(line.product).into());
            }
            lines.push(OrderLine {
                product: product.id,
                name: product.name.clone(),
                // Bounds were checked by `check_order_request`.
                quantity: u32::try_from(line.quantity)
                    .map_err(|_| OrderRequestError::BadQuantity)?,
                unit_price_minor: product.price_minor,
                notes: line.notes.clone().filter(|n| !n.trim().is_empty()),
                station: product.station.clone(),
            });
        }
        let total_minor = order_total(lines.iter().map(|l| (l.unit_price_minor, l.quantity)))
            .ok_or(OrderRequestError::TotalOutOfRange)?;
        let initial = workflow.initial();
        let fulfilment = Fulfilment {
            kind: request.fulfilment.kind,
            address: match request.fulfilment.kind {
                FulfilmentKind::Delivery => request.fulfilment.address.clone(),
                FulfilmentKind::Pickup => None,
            },
        };
        let mut new = NewOrder {
            store_id: store.id,
            customer_id: caller.user.id,
            placed_by: Actor {
                id: caller.user.id,
                role: Role::Customer,
            },
            lines,
            summary: ordertrack_domain::OrderSummary::of(
                &workflow,
                "",
                &initial.key,
                fulfilment.kind,
            ),
            fulfilment,
            notes: request.notes.clone().filter(|n| !n.trim().is_empty()),
            currency: store.currency.clone(),
            total_minor,
            status: initial.key.clone(),
            workflow_version: current.version,
            tracking_token: crate::random_token(),
            payment_method,
            idempotency,
            at: crate::now(),
        };
        let pace = self.pace(store.id, &workflow).await?;
        // A new order is behind every order already queued.
        new.summary.eta = pace.durations.eta(
            &workflow,
            &new.status,
            new.fulfilment.kind,
            new.at,
            pace.queue.ahead_of(None),
        );
        // The write returns the order it wrote (or, for a retry, the
        // original): that is the answer, nothing to read again.
        let placed = self.repo.place_order(new).await?;
        let role = self.access(caller, &placed.order)?;
        let eta = pace.eta(&placed.order, &workflow);
        Ok(Placed {
            view: OrderView {
                order: placed.order,
                workflow,
                role: Some(role),
                eta,
            },
            created: placed.created,
        })
    }

    /// The role in which the caller may see `order`, or 404.
    pub(crate) fn access(&self, caller: &Caller, order: &Order) -> Result<Role, AppError> {
        order_role(
            caller,
            order.store_id,
            order.customer_id,
            order.fulfilment.kind,
        )
        .ok_or(AppError::NotFound("order"))
    }

    /// An order with its store and the store's workflow, read together,
    /// whoever asks (callers check access).
    pub(crate) async fn load_in_store(
        &self, key: OrderKey,
    ) -> Result<(OrderInStore, Arc<Workflow>), AppError> {
        let found = self
            .repo
            .order_in_store(key)
            .await?
            .ok_or(AppError::NotFound("order"))?;
        let workflow = self
            .workflow_at(&found.store, found.order.workflow_version)
            .await?;
        Ok((found, workflow))
    }

    /// An order and its store's workflow, unchecked: callers authorise first.
    pub(crate) async fn load(&self, id: OrderId) -> Result<(Order, Arc<Workflow>), AppError> {
        let (found, workflow) = self.load_in_store(OrderKey::Id(id)).await?;
        Ok((found.order, workflow))
    }

    /// An order the caller may see.
    pub async fn order(&self, caller: &Caller, id: OrderId) -> Result<OrderView, AppError> {
        let (order, workflow) = self.load(id).await?;
        let role = self.access(caller, &order)?;
        let eta = self.eta_of(&order, &workflow).await?;
        Ok(OrderView {
            order,
            workflow,
            role: Some(role),
            eta,
        })
    }

    /// An order the caller may see, with its status history.
    pub async fn order_with_history(
        &self, caller: &Caller, id: OrderId,
    ) -> Result<(OrderView, Vec<HistoryEntry>), AppError> {
        let view = self.order(caller, id).await?;
        let history = self.repo.history(id).await?;
        Ok((view, history))
    }

    /// The order `id` of the store `slug`, with its history, for that
    /// store's staff (the dashboard's order page). For anyone else, and for
    /// another store's order, it does not exist (404).
    pub async fn staff_order(
        &self, caller: &Caller, slug: &str, id: OrderId,
    ) -> Result<StaffOrder, AppError> {
        let (found, workflow) = self.load_in_store(OrderKey::Id(id)).await?;
        let role = self.staff_role_in(caller, &found, slug)?;
        let access = self.access(caller, &found.order)?;
        let history = self.repo.history(id).await?;
        let eta = self.eta_of(&found.order, &workflow).await?;
        let drivers = if may_assign(role)
            && found.order.fulfilment.kind == FulfilmentKind::Delivery
            && !workflow.is_terminal(&found.order.status)
        {
            self.store_drivers(found.store.id).await?
        } else {
            Vec::new()
        };
        Ok(StaffOrder {
            view: OrderView {
                order: found.order,
                workflow,
                role: Some(access),
                eta,
            },
            history,
            role,
            drivers,
        })
    }

    /// The caller's staff role in the store `slug`, which `found` must
    /// belong to; otherwise the order does not exist for them (404).
    pub(crate) fn staff_role_in(
        &self, caller: &Caller, found: &OrderInStore, slug: &str,
    ) -> Result<Role, AppError> {
        if found.store.slug != slug {
            return Err(AppError::NotFound("order"));
        }
        self.staff_role(caller, &found.store)
            .map_err(|_| AppError::NotFound("order"))
    }

    /// The guest view of one order, by its tracking token.
    pub async fn track(&self, token: &str) -> Result<OrderView, AppError> {
        let (found, workflow) = self.load_tracked(token).await?;
        let eta = self.eta_of(&found.order, &workflow).await?;
        Ok(OrderView {
            order: found.order,
            workflow,
            role: None,
            eta,
        })
    }

    /// The order a tracking token names, with its store and workflow
    /// (the token is the guest's whole authorisation).
    pub(crate) async fn load_tracked(
        &self, token: &str,
    ) -> Result<(OrderInStore, Arc<Workflow>), AppError> {
        // Tokens are 32 hex characters; anything else cannot match.
        if token.len() != 32 || !token.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err(AppError::NotFound("order"));
        }
        self.load_in_store(OrderKey::TrackingToken(token.to_owned()))
            .await
    }

    /// An order's status history, for those who may see the order.
    pub async fn history(
        &self, caller: &Caller, id: OrderId,
    ) -> Result<Vec<HistoryEntry>, AppError> {
        Ok(self.order_with_history(caller, id).await?.1)
    }

    /// An order's status history by tracking token.
    pub async fn tracked_history(
        &self, token: &str,
    ) -> Result<(OrderView, Vec<HistoryEntry>), AppError> {
        let view = self.track(token).await?;
        let history = self.repo.history(view.order.id).await?;
        Ok((view, history))
    }

    /// Lists orders: a customer's own across stores, or (staff) one store's;
    /// a driver sees the store's deliveries only.
    pub async fn orders(
        &self, caller: &Caller, request: OrderListRequest,
    ) -> Result<OrderList, AppError> {
        match request.store.as_deref() {
            Some(slug) => {
                let store = self.store_by_slug(slug).await?;
                let role = self.staff_role(caller, &store)?;
                self.list_orders(caller, Some((&store, role)), request)
                    .await
            }
            None => self.list_orders(caller, None, request).await,
        }
    }

    /// The dashboard of the store `request.store`: a page of its orders (as
    /// [`App::orders`] lists them) and how many it has in each status. For
    /// its staff only; for anyone else the store's back office does not
    /// exist (404).
    pub async fn dashboard(
        &self, caller: &Caller, request: OrderListRequest,
    ) -> Result<Dashboard, AppError> {
        let slug = request
            .store
            .as_deref()
            .ok_or(AppError::NotFound("store"))?;
        let store = self.store_by_slug(slug).await?;
        let role = self
            .staff_role(caller, &store)
            .map_err(|_| AppError::NotFound("store"))?;
        let list = self
            .list_orders(caller, Some((&store, role)), request)
            .await?;
        let counts = self
            .repo
            .status_counts(store.id, role.only_fulfilment())
            .await?;
        let workflow = self.current_workflow(&store).await?.workflow;
        Ok(Dashboard {
            store,
            workflow,
            role,
            list,
            counts,
        })
    }

    /// One page of orders: of `staff`'s store (its staff member's role
    /// decides what they see), or else the caller's own.
    async fn list_orders(
        &self, caller: &Caller, staff: Option<(&StoreRecord, Role)>, request: OrderListRequest,
    ) -> Result<OrderList, AppError> {
        let limit = request.limit.unwrap_or(20).clamp(1, MAX_PAGE);
        let before = parse_cursor(request.cursor.as_deref())?;
        let status = request.status;
        if let (Some(status), Some((store, _))) = (&status, staff) {
            let workflow = self.current_workflow(store).await?.workflow;
            if workflow.state(status).is_none() {
                return Err(AppError::invalid(
                    ErrorCode::UnknownStatus,
                    format!("`{status}` is not a status of this store"),
                ));
            }
        }
        let search = request.search.filter(|s| !s.trim().is_empty());
        if search.as_ref().is_some_and(|s| s.chars().count() > 100) {
            return Err(AppError::invalid(
                ErrorCode::InvalidSearch,
                "search text is too long",
            ));
        }
        let query = match staff {
            Some((store, role)) => OrderQuery {
                fulfilment: role.only_fulfilment(),
                driver: self
                    .driver_scope(caller, store, role, request.assigned_to_me)
                    .await?,
                search,
                ..OrderQuery::newest(OrderScope::Store(store.id), limit)
            },
            None => OrderQuery::newest(OrderScope::Customer(caller.user.id), limit),
        };
        let page: OrderPage = self
            .repo
            .orders(OrderQuery {
                statuses: status.into_iter().map(StatusKey::from).collect(),
                before,
                ..query
            })
            .await?;
        let mut orders = self
            .views(page.orders, staff.map(|(store, _)| store))
            .await?;
        for view in &mut orders {
            view.role = self.access(caller, &view.order).ok();
        }
        Ok(OrderList {
            orders,
            next_cursor: page.next_before.map(|id| id.to_string()),
        })
    }

    /// Which of a store's orders `caller` (in `role`) lists as a driver:
    /// with `assigned_to_me`, those assigned to them; a driver always sees
    /// only theirs — and, where the store lets drivers assign themselves,
    /// the unassigned ones waiting at the hand-off (e.g. `ready`).
    async fn driver_scope(
        &self, caller: &Caller, store: &StoreRecord, role: Role, assigned_to_me: bool,
    ) -> Result<Option<DriverScope>, AppError> {
        let mine = DriverScope {
            driver: caller.user.id,
            or_unassigned_in: Vec::new(),
        };
        if role != Role::Driver || assigned_to_me {
            return Ok(assigned_to_me.then_some(mine));
        }
        if !self.driver_self_assign(&store.slug).await? {
            return Ok(Some(mine));
        }
        let workflow = self.current_workflow(store).await?.workflow;
        Ok(Some(DriverScope {
            or_unassigned_in: workflow
                .hand_off_state()
                .map(|state| state.key.clone())
                .into_iter()
                .collect(),
            ..mine
        }))
    }

    /// Whether the store `slug` lets its drivers assign themselves (one
    /// read).
    async fn driver_self_assign(&self, slug: &str) -> Result<bool, AppError> {
        Ok(self
            .repo
            .store_with_settings(slug)
            .await?
            .is_some_and(|found| found.settings.driver_self_assign))
    }

    /// Moves an order to `to`, if the workflow lets the caller's role do so.
    pub async fn transition(
        &self, caller: impl Into<Asker<'_>>, id: OrderId, to: &str, note: Option<String>,
        expected_version: Option<i64>,
    ) -> Result<OrderView, AppError> {
        self.transition_as(caller, id, None, to, note, expected_version)
            .await
    }

    /// [`App::transition`] from the dashboard of the store `slug`: only for
    /// that store's staff, and only for its orders (anything else: 404).
    pub async fn staff_transition(
        &self, caller: &Caller, slug: &str, id: OrderId, to: &str, note: Option<String>,
        expected_version: Option<i64>,
    ) -> Result<OrderView, AppError> {
        self.transition_as(caller, id, Some(slug), to, note, expected_version)
            .await
    }

    /// The customer's own cancel (their order page's button): cancels the
    /// order as its customer, in the way the workflow lets a customer cancel
    /// — and nothing else, whatever else the caller is (staff of the store
    /// included). For anyone but the order's customer it does not exist here
    /// (404).
    pub async fn customer_cancel(
        &self, caller: &Caller, id: OrderId, expected_version: Option<i64>,
    ) -> Result<OrderView, AppError> {
        self.plan_and_write(caller, id, expected_version, |workflow, order, actor| {
            if order.customer_id != actor.id {
                return Err(AppError::NotFound("order"));
            }
            let actor = Actor {
                role: Role::Customer,
                ..actor
            };
            let kind = order.fulfilment.kind;
            // The customer's way to a cancelled state; without one, the
            // workflow's first cancelled state, which the plan refuses
            // with the reason.
            let to = workflow
                .next_states(Role::Customer, &order.status, kind)
                .into_iter()
                .chain(workflow.states())
                .find(|state| workflow.is_cancelled(&state.key))
                .map(|state| state.key.clone())
                .ok_or_else(|| {
                    AppError::conflict(
                        ErrorCode::TransitionNotAllowed,
                        "this order cannot be cancelled",
                    )
                })?;
            plan_transition(
                workflow,
                order,
                actor,
                &to,
                Some("cancelled by the customer".to_owned()),
                expected_version,
                crate::now(),
            )
            .map_err(AppError::from)
        })
        .await
    }

    /// A correction by a manager or owner of the order's store (or a
    /// platform admin): the order moves to `to`, any other state of its
    /// workflow, with `reason` in its history and on every watcher's screen.
    pub async fn correct(
        &self, caller: &Caller, id: OrderId, to: &str, reason: &str, expected_version: Option<i64>,
    ) -> Result<OrderView, AppError> {
        self.plan_and_write(caller, id, expected_version, |workflow, order, actor| {
            plan_correction(
                workflow,
                order,
                actor,
                to,
                reason,
                expected_version,
                crate::now(),
            )
        })
        .await
    }

    /// Records a payment change of order `id`: paid (its counter's staff;
    /// a driver for money taken at the door) or a refund (managers and
    /// owners). Decided by `domain::plan_payment`, written like a
    /// transition — version checked, a history entry and an event to every
    /// watcher, in one write.
    pub async fn set_payment(
        &self, caller: &Caller, id: OrderId, request: PaymentRequest, expected_version: Option<i64>,
    ) -> Result<OrderView, AppError> {
        self.payment_as(caller, id, None, request, expected_version)
            .await
    }

    /// [`App::set_payment`] from the dashboard of the store `slug`: only for
    /// that store's staff, and only for its orders (anything else: 404).
    pub async fn staff_set_payment(
        &self, caller: &Caller, slug: &str, id: OrderId, request: PaymentRequest,
        expected_version: Option<i64>,
    ) -> Result<OrderView, AppError> {
        self.payment_as(caller, id, Some(slug), request, expected_version)
            .await
    }

    async fn payment_as(
        &self, caller: &Caller, id: OrderId, staff_of: Option<&str>, request: PaymentRequest,
        expected_version: Option<i64>,
    ) -> Result<OrderView, AppError> {
        let retry = expected_version.is_none();
        let plan = always_write(|workflow, order, actor| {
            let (request, now) = (request.clone(), crate::now());
            plan_payment(workflow, order, actor, request, expected_version, now)
        });
        self.decide_and_write(caller, id, staff_of, retry, plan)
            .await
    }

    /// Assigns order `id` to `driver` (a driver of its store: 422
    /// `not_a_driver` otherwise), or with `None` unassigns it. Counter
    /// staff (cashiers, managers, owners) assign anyone; a driver only
    /// themselves, where the store lets them (`driver_self_assign`).
    /// Decided by `domain::plan_assignment`, written like a payment change
    /// — version checked, a history entry and an event to every watcher,
    /// in one write; the same driver again writes nothing.
    pub async fn assign_driver(
        &self, caller: &Caller, id: OrderId, driver: Option<UserId>, expected_version: Option<i64>,
    ) -> Result<OrderView, AppError> {
        self.assignment_as(caller, id, None, driver, expected_version)
            .await
    }

    /// [`App::assign_driver`] from the dashboard of the store `slug`: only
    /// for that store's staff, and only for its orders (anything else: 404).
    pub async fn staff_assign_driver(
        &self, caller: &Caller, slug: &str, id: OrderId, driver: Option<UserId>,
        expected_version: Option<i64>,
    ) -> Result<OrderView, AppError> {
        self.assignment_as(caller, id, Some(slug), driver, expected_version)
            .await
    }

    async fn assignment_as(
        &self, caller: &Caller, id: OrderId, staff_of: Option<&str>, driver: Option<UserId>,
        expected_version: Option<i64>,
    ) -> Result<OrderView, AppError> {
        let retry = expected_version.is_none();
        let decide = |workflow: Arc<Workflow>, order: Order, actor: Actor| async move {
            // A role that may not assign learns so before anything is read
            // about the driver it named.
            if !may_assign(actor.role) && actor.role != Role::Driver {
                return Err(AppError::Forbidden(format!(
                    "a {} may not assign drivers",
                    actor.role
                )));
            }
            let driver = match driver {
                Some(driver) => Some(self.store_driver(order.store_id, driver).await?),
                None => None,
            };
            let self_assignment =
                actor.role == Role::Driver && self.driver_self_assign(&order.store_slug).await?;
            let now = crate::now();
            Ok(
                match plan_assignment(
                    &workflow,
                    &order,
                    actor,
                    driver,
                    self_assignment,
                    expected_version,
                    now,
                )? {
                    Some(change) => Decision::Write(change),
                    None => Decision::Keep(Box::new(order)),
                },
            )
        };
        self.decide_and_write(caller, id, staff_of, retry, decide)
            .await
    }

    /// The user `id` as a driver of `store`; 422 `not_a_driver` when they
    /// are not one (whoever they are: nothing more is said).
    async fn store_driver(&self, store: StoreId, id: UserId) -> Result<AssignedDriver, AppError> {
        self.store_drivers(store)
            .await?
            .into_iter()
            .find(|driver| driver.id == id)
            .ok_or_else(|| {
                AppError::invalid(
                    ErrorCode::NotADriver,
                    format!("user {id} is not a driver of this store"),
                )
            })
    }

    /// The drivers of `store` (one read of its staff).
    async fn store_drivers(&self, store: StoreId) -> Result<Vec<AssignedDriver>, AppError> {
        Ok(self
            .repo
            .staff(store)
            .await?
            .into_iter()
            .filter(|member| member.role == Role::Driver)
            .map(|member| AssignedDriver {
                id: member.user.id,
                name: member.user.name,
            })
            .collect())
    }

    /// An item correction by a manager or owner (or admin): the item of
    /// order `id` becomes `status` whatever the order's state, with `reason`.
    pub async fn correct_item(
        &self, caller: &Caller, id: OrderId, item: ItemId, status: ItemStatus, reason: &str,
    ) -> Result<OrderView, AppError> {
        self.plan_and_write(caller, id, None, |workflow, order, actor| {
            plan_item_correction(workflow, order, actor, item, status, reason, crate::now())
        })
        .await
    }

    async fn transition_as(
        &self, caller: impl Into<Asker<'_>>, id: OrderId, staff_of: Option<&str>, to: &str,
        note: Option<String>, expected_version: Option<i64>,
    ) -> Result<OrderView, AppError> {
        let note = note.filter(|n| !n.trim().is_empty());
        let retry = expected_version.is_none();
        let plan = always_write(|workflow, order, actor| {
            let (note, now) = (note.clone(), crate::now());
            plan_transition(workflow, order, actor, to, note, expected_version, now)
        });
        self.decide_and_write(caller, id, staff_of, retry, plan)
            .await
    }

    /// Changes one item's kitchen status; when the last item becomes ready
    /// the order may advance by itself (workflow `on_items_ready`).
    ///
    /// `expected_version` is the version the caller saw (a stale one is a
    /// version conflict); `None` decides on the current version.
    pub async fn set_item_status(
        &self, caller: impl Into<Asker<'_>>, id: OrderId, item: ItemId, status: ItemStatus,
        expected_version: Option<i64>,
    ) -> Result<OrderView, AppError> {
        self.plan_and_write(caller, id, expected_version, |workflow, order, actor| {
            check_expected_version(order, expected_version)?;
            plan_item_status(workflow, order, actor, item, status, crate::now())
                .map_err(AppError::from)
        })
        .await
    }

    /// [`App::decide_and_write`] for a change planned from the order alone
    /// (no further reads, always a write): decided again on a fresher order
    /// unless the client named the version it saw (`expected_version`).
    pub(crate) async fn plan_and_write<C, E>(
        &self, caller: impl Into<Asker<'_>>, id: OrderId, expected_version: Option<i64>,
        plan: impl Fn(&Workflow, &Order, Actor) -> Result<C, E>,
    ) -> Result<OrderView, AppError>
    where
        C: PlannedChange,
        E: Into<AppError>,
    {
        let retry = expected_version.is_none();
        self.decide_and_write(caller, id, None, retry, always_write(plan))
            .await
    }

    /// Decides a change of order `id` as the caller (in the role they see
    /// it in; 404 if they may not — or, with `staff_of`, if they are not
    /// staff of that store or the order is not its) and writes it. The
    /// order and its store's workflow are one read, which also returns the
    /// cache marks: a caller given as a session ([`Asker::Session`]) is
    /// resolved against them, so a kept session needs no read of its own
    /// (and one revoked since it was kept is read again and refused).
    /// When someone else
    /// changed the order between our read and write, the change is decided
    /// again on the fresh order — unless `retry` is false because the client
    /// named the version it decided on: then it must see the conflict.
    ///
    /// `decide` gets the order and workflow by value (no borrow to outlive
    /// in its future) and may read more before it decides; it may also
    /// decide there is nothing to write, and answer with the order as read.
    pub(crate) async fn decide_and_write<C, D>(
        &self, caller: impl Into<Asker<'_>>, id: OrderId, staff_of: Option<&str>, retry: bool,
        decide: impl Fn(Arc<Workflow>, Order, Actor) -> D,
    ) -> Result<OrderView, AppError>
    where
        C: PlannedChange,
        D: Future<Output = Result<Decision<C>, AppError>>,
    {
        let asker = caller.into();
        for _ in 0..RETRIES {
            let (found, workflow) = match self.load_in_store(OrderKey::Id(id)).await {
                Ok(found) => found,
                // Whether an order exists is told to signed-in callers only.
                Err(AppError::NotFound(what)) => {
                    self.caller_of(asker).await?;
                    return Err(AppError::NotFound(what));
                }
                Err(error) => return Err(error),
            };
            let resolved = self.caller_at(asker, found.marks).await?;
            let caller: &Caller = &resolved;
            if let Some(slug) = staff_of {
                self.staff_role_in(caller, &found, slug)?;
            }
            let order = found.order;
            let role = self.access(caller, &order)?;
            let actor = Actor {
                id: caller.user.id,
                role,
            };
            let pace = self.pace(order.store_id, &workflow).await?;
            let before = order.clone();
            let written = match decide(workflow.clone(), order, actor).await? {
                Decision::Write(mut change) => {
                    stamp_eta(change.events_mut(), &pace, &workflow, &before);
                    if pace.durations.cold(before.fulfilment.kind) {
                        // Its durations may turn the store's windows
                        // learned: with this change, not a follower's
                        // round later.
                        for status in change.status_changes_mut() {
                            status.durations_at_once = true;
                        }
                    }
                    change.decided_on(&before);
                    change.write(self.repo.as_ref()).await
                }
                Decision::Keep(order) => Ok(*order),
            };
            match written {
                Ok(order) => {
                    let eta = pace.eta(&order, &workflow);
                    return Ok(OrderView {
                        order,
                        workflow,
                        role: Some(role),
                        eta,
                    });
                }
                Err(StoreError::VersionConflict { .. }) if retry => continue,
                Err(error) => return Err(error.into()),
            }
        }
        Err(AppError::conflict(
            ErrorCode::Busy,
            "the order keeps changing; try again",
        ))
    }
}

impl App {
    /// The newest event position: read it *before* loading what a page
    /// shows, and resume the page's stream from it, so nothing is missed.
    pub async fn event_position(&self) -> Result<i64, AppError> {
        Ok(self.repo.last_event_position().await?)
    }

    /// Pairs orders with their stores' workflows, reading each store once
    /// — and not at all the store the caller already has (`known`).
    pub(crate) async fn views(
        &self, orders: Vec<Order>, known: Option<&StoreRecord>,
    ) -> Result<Vec<OrderView>, AppError> {
        let mut stores: HashMap<StoreId, StoreRecord> = HashMap::new();
        if let Some(store) = known {
            stores.insert(store.id, store.clone());
        }
        let mut views = Vec::with_capacity(orders.len());
        let mut paces: HashMap<StoreId, StorePace> = HashMap::new();
        for order in orders {
            let store = match stores.entry(order.store_id) {
                Entry::Occupied(known) => known.into_mut(),
                Entry::Vacant(unknown) => unknown.insert(
                    self.repo
                        .store(order.store_id)
                        .await?
                        .ok_or(AppError::NotFound("store"))?,
                ),
            };
            let workflow = self.workflow_at(store, order.workflow_version).await?;
            // The queue's statuses come from the workflow of the store's
            // first order listed (a store's versions keep their kitchen).
            let pace = match paces.entry(order.store_id) {
                Entry::Occupied(known) => known.into_mut(),
                Entry::Vacant(unknown) => {
                    unknown.insert(self.pace(order.store_id, &workflow).await?)
                }
            };
            let eta = pace.eta(&order, &workflow);
            views.push(OrderView {
                order,
                workflow,
                role: None,
                eta,
            });
        }
        Ok(views)
    }
}

/// How long a store's kept durations are reused before they are read
/// again. A window a few seconds old is as good an estimate, and reading
/// every kept sample on every change cost most of a transition's time
/// (BENCHMARKS.md, "ETA"). While a store is still learning
/// ([`StoreDurations::learning`]), an order of it finishing through this
/// instance's writer makes them be read afresh at once
/// ([`DurationsCache::listener`]), so the window turns learned with the
/// order that completes the sample; otherwise, and through another
/// instance's writer, within this time.
const DURATIONS_FRESH_FOR: std::time::Duration = std::time::Duration::from_secs(10);

/// Stores' kept durations, read at most once per [`DURATIONS_FRESH_FOR`].
#[derive(Default)]
pub struct DurationsCache {
    stores: std::sync::Mutex<HashMap<StoreId, (std::time::Instant, Arc<StoreDurations>)>>,
}

impl DurationsCache {
    fn stores(
        &self,
    ) -> std::sync::MutexGuard<'_, HashMap<StoreId, (std::time::Instant, Arc<StoreDurations>)>>
    {
        // A poisoned lock only means another holder panicked mid-update;
        // the worst it left is a stale entry, which expires.
        self.stores.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn fresh(&self, store: StoreId) -> Option<Arc<StoreDurations>> {
        self.stores()
            .get(&store)
            .filter(|(read, _)| read.elapsed() < DURATIONS_FRESH_FOR)
            .map(|(_, durations)| durations.clone())
    }

    pub(crate) fn keep(&self, store: StoreId, durations: Arc<StoreDurations>) {
        self.stores()
            .insert(store, (std::time::Instant::now(), durations));
    }

    /// Whether it holds a store's durations (fresh or not).
    pub(crate) fn holds(&self, store: StoreId) -> bool {
        self.stores().contains_key(&store)
    }

    /// Wraps the listener the store's writer tells about commits: an
    /// order that reaches a terminal status (done, when its durations are
    /// kept, in the same commit) makes its store's be read afresh while
    /// the store is still learning. Called on the writer before the commit
    /// is acknowledged, so the next request sees the new durations.
    pub fn listener(self: &Arc<Self>, inner: Arc<dyn CommitListener>) -> Arc<dyn CommitListener> {
        Arc::new(ForgetFinished {
            cache: self.clone(),
            inner,
        })
    }
}

/// Forgets the durations of stores whose orders finished, then tells the
/// listener behind it.
struct ForgetFinished {
    cache: Arc<DurationsCache>,
    inner: Arc<dyn CommitListener>,
}

impl CommitListener for ForgetFinished {
    fn committed(&self, entries: &[LogEntry]) {
        let mut stores = self.cache.stores();
        for entry in entries {
            if let LogEntry::Order(stored) = entry
                && stored.event.summary.terminal
                && stores
                    .get(&stored.event.store_id)
                    .is_some_and(|(_, durations)| durations.learning())
            {
                stores.remove(&stored.event.store_id);
            }
        }
        drop(stores);
        self.inner.committed(entries);
    }
}

/// What a store's ETA windows are read from: its kept durations to done
/// and its kitchen's queue.
#[derive(Debug, Clone, Default)]
pub(crate) struct StorePace {
    pub(crate) durations: Arc<StoreDurations>,
    pub(crate) queue: KitchenQueue,
}

impl StorePace {
    /// The ETA window of `order`, with the orders ahead of it in the queue.
    pub(crate) fn eta(&self, order: &Order, workflow: &Workflow) -> Option<Eta> {
        self.durations.eta(
            workflow,
            &order.status,
            order.fulfilment.kind,
            order.status_since,
            self.queue.ahead_of(Some(order.id)),
        )
    }
}

impl App {
    /// A store's pace: its kept durations (one read, at most every
    /// [`DURATIONS_FRESH_FOR`]) and the oldest
    /// [`QUEUE_CAP`](ordertrack_domain::eta::QUEUE_CAP) of its orders
    /// in `workflow`'s queue states (kept in memory, [`crate::queues`]; one
    /// read the first time; none for a workflow without a kitchen).
    pub(crate) async fn pace(
        &self, store: StoreId, workflow: &Workflow,
    ) -> Result<StorePace, AppError> {
        let durations = match self.durations.fresh(store) {
            Some(durations) => durations,
            None => {
                let read = self.repo.store_durations(store).await?;
                let durations = Arc::new(StoreDurations::from_kept(read));
                self.durations.keep(store, durations.clone());
                durations
            }
        };
        let statuses: Vec<StatusKey> = workflow
            .queue_states()
            .into_iter()
            .map(|state| state.key.clone())
            .collect();
        let queue = if statuses.is_empty() {
            KitchenQueue::default()
        } else {
            self.queues.queue(&*self.repo, store, statuses).await?
        };
        Ok(StorePace { durations, queue })
    }

    /// The ETA window of `order` (no read once it is terminal).
    pub(crate) async fn eta_of(
        &self, order: &Order, workflow: &Workflow,
    ) -> Result<Option<Eta>, AppError> {
        if workflow.is_terminal(&order.status) {
            return Ok(None);
        }
        Ok(self
            .pace(order.store_id, workflow)
            .await?
            .eta(order, workflow))
    }
}

/// A version conflict when the client named a version the order is no
/// longer at.
pub(crate) fn check_expected_version(
    order: &Order, expected_version: Option<i64>,
) -> Result<(), AppError> {
    match expected_version {
        Some(expected) if expected != order.version => Err(AppError::Conflict {
            code: ErrorCode::VersionConflict,
            message: format!(
                "the order has changed: version {} is current, not {expected}",
                order.version
            ),
            current_version: Some(order.version),
            pending_items: Vec::new(),
        }),
        _ => Ok(()),
    }
}
