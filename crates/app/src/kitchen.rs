//! The kitchen display's use cases: the board (tickets oldest first, per
//! station), tapping an item, bumping a ticket, handing an order off and
//! recalling it.
//!
//! A bump or a hand-off may take several changes; the domain decides them
//! as one plan and the store writes the plan in one transaction, so the
//! order ends up with all of it or none of it. Who may do what is the
//! workflow's (through the domain); the same access rule as for every order
//! applies: other stores' orders do not exist for the caller (404).

use std::sync::{Arc, OnceLock};

use ordertrack_domain::{
    Actor, ItemChangeError, ItemId, ItemStatus, KitchenError, Order, OrderId, Role, StatusKey,
    TransitionError, Workflow, plan_bump, plan_hand_off, plan_item_status, plan_recall,
};
use ordertrack_store::{OrderQuery, OrderScope, StoreRecord};

use crate::ErrorCode;
use crate::orders::{Decision, OrderView};
use crate::{App, AppError, Caller};

/// Most tickets one board shows (the oldest ones).
pub const MAX_TICKETS: u32 = 200;
/// How many of the latest handed-off orders are searched for the last one
/// a station handed off.
const RECENT_HAND_OFFS: u32 = 20;

/// What a kitchen screen shows: the store's orders in kitchen states, oldest
/// first, for one station or all.
#[derive(Debug, Clone)]
pub struct KitchenBoard {
    pub store: StoreRecord,
    pub workflow: Arc<Workflow>,
    /// The caller's role in the store.
    pub role: Role,
    /// The station the board is for; `None` for every station.
    pub station: Option<String>,
    /// Oldest first. With a station: only orders with items of that
    /// station still to do.
    pub tickets: Vec<OrderView>,
    /// Every station of the store's catalog, sorted.
    pub stations: Vec<String>,
}

impl From<KitchenError> for AppError {
    fn from(error: KitchenError) -> Self {
        let message = error.to_string();
        match error {
            KitchenError::StaleVersion { current, .. } => AppError::Conflict {
                code: ErrorCode::VersionConflict,
                message,
                current_version: Some(current),
                pending_items: Vec::new(),
            },
            KitchenError::Items(error) => error.into(),
            KitchenError::Denied(denied) => TransitionError::Denied(denied).into(),
            KitchenError::ItemsNotReady { pending } => AppError::Conflict {
                code: ErrorCode::ItemsNotReady,
                message,
                current_version: None,
                pending_items: pending,
            },
            KitchenError::NothingToBump => AppError::conflict(ErrorCode::ItemUnchanged, message),
            KitchenError::PaymentRequired { .. } => {
                AppError::conflict(ErrorCode::PaymentRequired, message)
            }
            KitchenError::NoHandOffState
            | KitchenError::Unreachable { .. }
            | KitchenError::AlreadyHandedOff { .. }
            | KitchenError::NotHandedOff { .. }
            | KitchenError::NoWayBack { .. } => {
                AppError::conflict(ErrorCode::TransitionNotAllowed, message)
            }
        }
    }
}

/// A station as people type it: trimmed, lower case (as the catalog keeps
/// stations); empty means every station.
pub(crate) fn station_name(station: Option<&str>) -> Option<String> {
    station
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(str::to_lowercase)
}

impl App {
    /// The kitchen board of the store `slug` for its staff (anyone else:
    /// 404): the orders in the workflow's kitchen states, oldest first, read
    /// with one query; for a station, those with its items still to do.
    pub async fn kitchen_board(
        &self, caller: &Caller, slug: &str, station: Option<&str>,
    ) -> Result<KitchenBoard, AppError> {
        let store = self.store_by_slug(slug).await?;
        let role = self
            .staff_role(caller, &store)
            .map_err(|_| AppError::NotFound("store"))?;
        let workflow = self.current_workflow(&store).await?.workflow;
        let station = station_name(station);
        let statuses: Vec<StatusKey> = workflow
            .kitchen_states()
            .into_iter()
            .map(|state| state.key.clone())
            .collect();
        // No kitchen states means no tickets, not "any status".
        let orders = if statuses.is_empty() {
            Vec::new()
        } else {
            self.repo
                .orders(OrderQuery {
                    statuses,
                    oldest_first: true,
                    ..OrderQuery::newest(OrderScope::Store(store.id), MAX_TICKETS)
                })
                .await?
                .orders
        };
        let mut tickets = Vec::with_capacity(orders.len());
        let pace = self.pace(store.id, &workflow).await?;
        for order in orders.into_iter().filter(|order| {
            station.as_deref().is_none_or(|station| {
                order
                    .items
                    .iter()
                    .any(|item| item.station == station && item.status != ItemStatus::Ready)
            })
        }) {
            // Each ticket shows the version of the workflow its order runs.
            let workflow = self.workflow_at(&store, order.workflow_version).await?;
            let eta = pace.eta(&order, &workflow);
            tickets.push(OrderView {
                order,
                workflow,
                role: Some(role),
                eta,
            });
        }
        let mut stations: Vec<String> = self
            .repo
            .products(store.id)
            .await?
            .into_iter()
            .map(|product| product.station)
            .collect();
        stations.sort();
        stations.dedup();
        Ok(KitchenBoard {
            store,
            workflow,
            role,
            station,
            tickets,
            stations,
        })
    }

    /// The order the board's station (or the kitchen) handed off last:
    /// what "recall last bumped" shows. `None` without a hand-off state.
    pub async fn last_handed_off(
        &self, board: &KitchenBoard,
    ) -> Result<Option<OrderView>, AppError> {
        let Some(hand_off) = board.workflow.hand_off_state() else {
            return Ok(None);
        };
        let recent = self
            .repo
            .orders(OrderQuery {
                statuses: vec![hand_off.key.clone()],
                ..OrderQuery::newest(OrderScope::Store(board.store.id), RECENT_HAND_OFFS)
            })
            .await?
            .orders;
        let last = recent
            .into_iter()
            .filter(|order| {
                board
                    .station
                    .as_deref()
                    .is_none_or(|s| order.items.iter().any(|item| item.station == s))
            })
            .max_by_key(|order| (order.updated_at, order.id));
        let Some(order) = last else {
            return Ok(None);
        };
        let workflow = self
            .workflow_at(&board.store, order.workflow_version)
            .await?;
        let eta = self.eta_of(&order, &workflow).await?;
        Ok(Some(OrderView {
            order,
            workflow,
            role: Some(board.role),
            eta,
        }))
    }

    /// A tap on the kitchen display: moves one item one step on (queued →
    /// preparing → ready). A ready item stays ready.
    ///
    /// `expected_version` is the version the tap saw (a stale one is a
    /// version conflict); `None` decides on the current version.
    pub async fn advance_item(
        &self, caller: &Caller, id: OrderId, item: ItemId, expected_version: Option<i64>,
    ) -> Result<OrderView, AppError> {
        // The step after the status the tap saw, kept when the change is
        // decided again on a fresher order.
        let target: OnceLock<Option<ItemStatus>> = OnceLock::new();
        let target = &target;
        self.decide_and_write(
            caller,
            id,
            None,
            expected_version.is_none(),
            |workflow, order, actor| async move {
                crate::orders::check_expected_version(&order, expected_version)?;
                let current = order
                    .items
                    .iter()
                    .find(|line| line.id == item)
                    .ok_or(AppError::NotFound("order item"))?
                    .status;
                let Some(next) = *target.get_or_init(|| current.next()) else {
                    return Ok(Decision::Keep(Box::new(order)));
                };
                match plan_item_status(&workflow, &order, actor, item, next, crate::now()) {
                    Ok(change) => Ok(Decision::Write(change)),
                    // Someone tapped it to the same status first: that is this tap.
                    Err(ItemChangeError::Unchanged(_)) => Ok(Decision::Keep(Box::new(order))),
                    Err(error) => Err(error.into()),
                }
            },
        )
        .await
    }

    /// Bumps a ticket: every not-ready item of `station` (or of the whole
    /// order) becomes ready, the order advances by itself if that was the
    /// last one, and — for the whole order — it moves on to its hand-off
    /// state along the steps the caller's role may take. All in one write:
    /// if any part is refused or the order changed, nothing changes.
    ///
    /// `expected_version` is the version the caller saw; `None` decides on
    /// the current version (again, if someone else changes it meanwhile).
    pub async fn bump(
        &self, caller: &Caller, id: OrderId, station: Option<&str>, expected_version: Option<i64>,
    ) -> Result<OrderView, AppError> {
        let station = station_name(station);
        let station = station.as_deref();
        self.plan_and_write(caller, id, expected_version, |workflow, order, actor| {
            plan_bump(
                workflow,
                order,
                actor,
                station,
                expected_version,
                crate::now(),
            )
        })
        .await
    }

    /// Hands an order off: moves it to the workflow's hand-off state along
    /// the steps the caller's role may take, in one write. Refused
    /// (`items_not_ready`) while any item is not ready.
    pub async fn hand_off(
        &self, caller: &Caller, id: OrderId, expected_version: Option<i64>,
    ) -> Result<OrderView, AppError> {
        self.plan_and_write(caller, id, expected_version, |workflow, order, actor| {
            plan_hand_off(workflow, order, actor, expected_version, crate::now())
        })
        .await
    }

    /// Recalls a handed-off order: back to the kitchen state it was handed
    /// off from, if the workflow has that way back for the caller's role
    /// (409 `transition_not_allowed` if it has none).
    ///
    /// `expected_version` is the version the caller saw; `None` decides on
    /// the current version.
    pub async fn recall(
        &self, caller: &Caller, id: OrderId, expected_version: Option<i64>,
    ) -> Result<OrderView, AppError> {
        // The way back is read from the history, again on each attempt.
        let decide = |workflow: Arc<Workflow>, order: Order, actor: Actor| async move {
            let history = self.repo.history(order.id).await?;
            let plan = plan_recall(
                &workflow,
                &order,
                &history,
                actor,
                expected_version,
                crate::now(),
            )?;
            Ok(Decision::Write(plan))
        };
        let retry = expected_version.is_none();
        self.decide_and_write(caller, id, None, retry, decide).await
    }
}
