//! The kitchen's decisions about an order: *bump* a ticket (its items are
//! done, and without a station the order moves on to its hand-off), *hand it
//! off* (move it to the state where it leaves the kitchen), *recall* it
//! (undo the hand-off).
//!
//! A bump or a hand-off may take several changes — items to ready, the
//! automatic advance when the last item is ready, the steps to the hand-off
//! state. They are decided together, as one [`OrderPlan`] with consecutive
//! versions, so the store can write all of them in one transaction or none.

use time::OffsetDateTime;

use crate::names::StatusKey;
use crate::order::{
    Actor, EventKind, HistoryEntry, ItemChange, ItemChangeError, ItemId, ItemStatus, NewEvent,
    Order, OrderId, StatusChange, StoreId, paid_enough, status_change,
};
use crate::role::Role;
use crate::workflow::{State, TransitionDenied, Workflow};

/// The note on the status change that follows the last item becoming ready.
pub const ALL_ITEMS_READY_NOTE: &str = "all items ready";
/// The note on the status change that recalls a handed-off order.
pub const RECALL_NOTE: &str = "recalled to the kitchen";

/// One item's status change, as one step of a plan.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ItemStep {
    /// The order's version before this step.
    pub expected_version: i64,
    pub item: ItemChange,
    pub event: NewEvent,
}

/// One change of a plan: an item's status, or the order's.
// A plan holds a handful of steps for the length of one request: boxing
// the larger one would save nothing worth an allocation per step.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PlanStep {
    Item(ItemStep),
    Status(StatusChange),
}

impl PlanStep {
    /// The order's version before this step.
    pub fn expected_version(&self) -> i64 {
        match self {
            PlanStep::Item(step) => step.expected_version,
            PlanStep::Status(change) => change.expected_version,
        }
    }

    /// The event this step records.
    pub fn event(&self) -> &NewEvent {
        match self {
            PlanStep::Item(step) => &step.event,
            PlanStep::Status(change) => &change.event,
        }
    }
}

/// Every change one kitchen action makes to one order, in the order they
/// are written. Step `n` expects version `expected_version + n` and makes
/// `expected_version + n + 1`; each carries its event (and a status step
/// its history entry). The store applies a plan whole or not at all.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OrderPlan {
    pub order_id: OrderId,
    pub store_id: StoreId,
    /// The version the plan was decided on: the first step's.
    pub expected_version: i64,
    pub steps: Vec<PlanStep>,
}

impl OrderPlan {
    /// The order's version once the plan is applied.
    pub fn final_version(&self) -> i64 {
        self.expected_version + i64::try_from(self.steps.len()).unwrap_or(i64::MAX)
    }
}

/// Why the kitchen's action was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum KitchenError {
    #[error("the order has changed: version {current} is current, not {expected}")]
    StaleVersion { expected: i64, current: i64 },
    /// The caller may not change items, or the order is finished.
    #[error(transparent)]
    Items(#[from] ItemChangeError),
    /// A step of the way is not the caller's to take, or not possible.
    #[error(transparent)]
    Denied(#[from] TransitionDenied),
    #[error("every station must be done before the hand-off")]
    ItemsNotReady { pending: Vec<ItemId> },
    #[error("this workflow has no hand-off: no state requires every item to be ready")]
    NoHandOffState,
    #[error("an order that is `{from}` can't be handed off to `{to}` any more")]
    Unreachable { from: StatusKey, to: StatusKey },
    #[error("the order is already `{status}`")]
    AlreadyHandedOff { status: StatusKey },
    #[error("nothing to bump: those items are all ready")]
    NothingToBump,
    #[error("only an order that is `{hand_off}` can be recalled; this one is `{status}`")]
    NotHandedOff {
        status: StatusKey,
        hand_off: StatusKey,
    },
    #[error("the workflow has no way back from `{from}` to `{to}`")]
    NoWayBack { from: StatusKey, to: String },
    #[error("the order must be paid before it can become `{to}`")]
    PaymentRequired { to: StatusKey },
}

/// Decides a bump by `actor`: the not-ready items of `station` (or of the
/// whole order) become ready, the order advances by itself if that made
/// the last item ready (`on_items_ready`), and — for the whole order — it
/// then moves on to the hand-off state along the steps the actor may take.
/// Refused whole if any part is refused.
///
/// `expected_version` is the version the client saw; `None` means "whatever
/// is current" (the store still guards against a concurrent change).
pub fn plan_bump(
    workflow: &Workflow, order: &Order, actor: Actor, station: Option<&str>,
    expected_version: Option<i64>, now: OffsetDateTime,
) -> Result<OrderPlan, KitchenError> {
    check_version(order, expected_version)?;
    if !actor.role.changes_items() {
        return Err(ItemChangeError::RoleNotAllowed.into());
    }
    if workflow.is_terminal(&order.status) {
        return Err(ItemChangeError::OrderFinished.into());
    }
    let mut plan = Planner::new(workflow, order, actor, now);
    let bumped: Vec<ItemId> = order
        .items
        .iter()
        .filter(|item| item.status != ItemStatus::Ready)
        .filter(|item| station.is_none_or(|s| item.station == s))
        .map(|item| item.id)
        .collect();
    for &item in &bumped {
        plan.item_ready(item);
    }
    if !bumped.is_empty()
        && plan.order.pending_items().is_empty()
        && let Some(next) = workflow.on_items_ready(&plan.order.status)
        && paid_enough(next, &plan.order)
    {
        plan.status(&next.key, Some(ALL_ITEMS_READY_NOTE.to_owned()));
    }
    if station.is_none()
        && let Some(hand_off) = workflow.hand_off_state()
    {
        let path = way_to(workflow, &plan.order, actor, hand_off)?;
        check_paid(&path, &plan.order)?;
        for state in path {
            plan.status(&state.key, None);
        }
    }
    if plan.steps.is_empty() {
        return Err(KitchenError::NothingToBump);
    }
    Ok(plan.finish())
}

/// Decides a hand-off by `actor`: the order moves to the hand-off state
/// along the steps the actor may take; refused while any item is not ready.
pub fn plan_hand_off(
    workflow: &Workflow, order: &Order, actor: Actor, expected_version: Option<i64>,
    now: OffsetDateTime,
) -> Result<OrderPlan, KitchenError> {
    check_version(order, expected_version)?;
    let hand_off = workflow
        .hand_off_state()
        .ok_or(KitchenError::NoHandOffState)?;
    if workflow.is_terminal(&order.status) {
        return Err(TransitionDenied::FromTerminal {
            from: order.status.clone(),
        }
        .into());
    }
    if order.status == hand_off.key {
        return Err(KitchenError::AlreadyHandedOff {
            status: order.status.clone(),
        });
    }
    let path = way_to(workflow, order, actor, hand_off)?;
    let pending = order.pending_items();
    if !pending.is_empty() {
        return Err(KitchenError::ItemsNotReady { pending });
    }
    check_paid(&path, order)?;
    let mut plan = Planner::new(workflow, order, actor, now);
    for state in path {
        plan.status(&state.key, None);
    }
    Ok(plan.finish())
}

/// Decides a recall by `actor`: a handed-off order goes back to the state
/// it was handed off from (read from its `history`, oldest first), if the
/// workflow has a way back that the actor may take. Items keep their status.
pub fn plan_recall(
    workflow: &Workflow, order: &Order, history: &[HistoryEntry], actor: Actor,
    expected_version: Option<i64>, now: OffsetDateTime,
) -> Result<StatusChange, KitchenError> {
    check_version(order, expected_version)?;
    let hand_off = workflow
        .hand_off_state()
        .ok_or(KitchenError::NoHandOffState)?;
    if order.status != hand_off.key {
        return Err(KitchenError::NotHandedOff {
            status: order.status.clone(),
            hand_off: hand_off.key.clone(),
        });
    }
    let came_from = history
        .iter()
        .rev()
        // A payment's entry leaves the status where it was: not a move.
        .find(|entry| entry.to == order.status && entry.payment.is_none())
        .and_then(|entry| entry.from.clone())
        .ok_or_else(|| KitchenError::NoWayBack {
            from: order.status.clone(),
            to: "the kitchen".to_owned(),
        })?;
    if !workflow.has_transition(&order.status, &came_from, order.fulfilment.kind) {
        return Err(KitchenError::NoWayBack {
            from: order.status.clone(),
            to: came_from.into(),
        });
    }
    workflow.check(actor.role, &order.status, &came_from, order.fulfilment.kind)?;
    Ok(status_change(
        workflow,
        order,
        actor,
        &came_from,
        Some(RECALL_NOTE.to_owned()),
        EventKind::StatusChanged,
        order.version + 1,
        now,
    ))
}

/// Whether `role` may recall `order` at all: it is handed off, and the
/// workflow has a way back from there to a kitchen state that the role may
/// take (which one is [`plan_recall`]'s to decide). For showing a button.
pub fn may_recall(workflow: &Workflow, order: &Order, role: Role) -> bool {
    let kitchen = workflow.kitchen_states();
    workflow
        .hand_off_state()
        .is_some_and(|hand_off| hand_off.key == order.status)
        && workflow
            .next_states(role, &order.status, order.fulfilment.kind)
            .iter()
            .any(|next| kitchen.iter().any(|state| state.key == next.key))
}

/// Refuses a way through a state that requires the order, unpaid, to be paid.
fn check_paid(path: &[&State], order: &Order) -> Result<(), KitchenError> {
    match path.iter().find(|state| !paid_enough(state, order)) {
        Some(state) => Err(KitchenError::PaymentRequired {
            to: state.key.clone(),
        }),
        None => Ok(()),
    }
}

fn check_version(order: &Order, expected_version: Option<i64>) -> Result<(), KitchenError> {
    // A stale version first: the client decided on a state that is gone,
    // and must see the fresh one whatever else is wrong with its request.
    match expected_version {
        Some(expected) if expected != order.version => Err(KitchenError::StaleVersion {
            expected,
            current: order.version,
        }),
        _ => Ok(()),
    }
}

/// The states `actor` moves `order` through to reach `hand_off`, or why
/// there is no such way: a step that is not the actor's to take (the first
/// one on the workflow's own way), or no way at all.
fn way_to<'w>(
    workflow: &'w Workflow, order: &Order, actor: Actor, hand_off: &State,
) -> Result<Vec<&'w State>, KitchenError> {
    let kind = order.fulfilment.kind;
    if let Some(path) = workflow.path(actor.role, &order.status, &hand_off.key, kind) {
        return Ok(path);
    }
    let Some(anyones) = workflow.path_for_anyone(&order.status, &hand_off.key, kind) else {
        return Err(KitchenError::Unreachable {
            from: order.status.clone(),
            to: hand_off.key.clone(),
        });
    };
    let mut from = order.status.as_str();
    for state in anyones {
        workflow.check(actor.role, from, &state.key, kind)?;
        from = &state.key;
    }
    // Every single step is allowed, yet the actor's own search found no
    // way: cannot happen, but refuse rather than guess.
    Err(KitchenError::Unreachable {
        from: order.status.clone(),
        to: hand_off.key.clone(),
    })
}

/// Builds a plan step by step on a copy of the order, so that each step is
/// decided on the state the previous one leaves.
struct Planner<'a> {
    workflow: &'a Workflow,
    actor: Actor,
    now: OffsetDateTime,
    order: Order,
    expected_version: i64,
    steps: Vec<PlanStep>,
}

impl<'a> Planner<'a> {
    fn new(workflow: &'a Workflow, order: &Order, actor: Actor, now: OffsetDateTime) -> Self {
        Planner {
            workflow,
            actor,
            now,
            order: order.clone(),
            expected_version: order.version,
            steps: Vec::new(),
        }
    }

    /// The item (which exists and is not ready) becomes ready.
    fn item_ready(&mut self, id: ItemId) {
        let Some(index) = self.order.items.iter().position(|item| item.id == id) else {
            return;
        };
        let (change, event) = crate::order::item_event(
            self.workflow,
            &self.order,
            self.actor,
            &self.order.items[index],
            ItemStatus::Ready,
            self.now,
        );
        self.order.items[index].status = ItemStatus::Ready;
        self.order.version += 1;
        self.steps.push(PlanStep::Item(ItemStep {
            expected_version: self.order.version - 1,
            item: change,
            event,
        }));
    }

    /// The order moves to `to` (already checked).
    fn status(&mut self, to: &str, note: Option<String>) {
        let change = status_change(
            self.workflow,
            &self.order,
            self.actor,
            to,
            note,
            EventKind::StatusChanged,
            self.order.version + 1,
            self.now,
        );
        self.order.status = to.into();
        self.order.version += 1;
        self.steps.push(PlanStep::Status(change));
    }

    fn finish(self) -> OrderPlan {
        OrderPlan {
            order_id: self.order.id,
            store_id: self.order.store_id,
            expected_version: self.expected_version,
            steps: self.steps,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fulfilment::FulfilmentKind;
    use crate::ids::{ProductId, StoreId, UserId};
    use crate::order::{Fulfilment, OrderItem, OrderLine};

    fn restaurant() -> Workflow {
        Workflow::builtin("restaurant").expect("built-in")
    }

    fn item(id: i64, station: &str, status: ItemStatus) -> OrderItem {
        OrderItem {
            id: ItemId::new(id),
            line: OrderLine {
                product: ProductId::new(id),
                name: format!("item {id}"),
                quantity: 1,
                unit_price_minor: 500,
                notes: None,
                station: station.to_owned(),
            },
            status,
        }
    }

    fn order(status: &str, items: Vec<OrderItem>) -> Order {
        Order {
            id: OrderId::new(7),
            number: "R-000007".into(),
            store_id: StoreId::new(3),
            store_slug: "rosso".into(),
            customer_id: UserId::new(11),
            customer_name: "Alice".into(),
            status: status.into(),
            version: 4,
            workflow_version: 0,
            items,
            total_minor: 1000,
            currency: "EUR".parse().expect("a currency code"),
            fulfilment: Fulfilment {
                kind: FulfilmentKind::Pickup,
                address: None,
            },
            notes: None,
            tracking_token: "00".repeat(16),
            payment: crate::payment::Payment::unpaid(crate::payment::PaymentMethod::Cash),
            driver: None,
            created_at: OffsetDateTime::UNIX_EPOCH,
            updated_at: OffsetDateTime::UNIX_EPOCH,
            status_since: OffsetDateTime::UNIX_EPOCH,
        }
    }

    fn actor(role: Role) -> Actor {
        Actor {
            id: UserId::new(21),
            role,
        }
    }

    /// A restaurant bump decided on the order's own version.
    fn bump(order: &Order, role: Role, station: Option<&str>) -> Result<OrderPlan, KitchenError> {
        plan_bump(
            &restaurant(),
            order,
            actor(role),
            station,
            Some(order.version),
            OffsetDateTime::UNIX_EPOCH,
        )
    }

    fn statuses(plan: &OrderPlan) -> Vec<(&str, &str)> {
        plan.steps
            .iter()
            .filter_map(|step| match step {
                PlanStep::Status(change) => Some((change.from.as_str(), change.to.as_str())),
                PlanStep::Item(_) => None,
            })
            .collect()
    }

    fn items(plan: &OrderPlan) -> Vec<i64> {
        plan.steps
            .iter()
            .filter_map(|step| match step {
                PlanStep::Item(step) => Some(step.item.id.get()),
                PlanStep::Status(_) => None,
            })
            .collect()
    }

    #[test]
    fn a_station_bump_readies_only_that_stations_items() {
        let order = order(
            "preparing",
            vec![
                item((ItemId::new(1)).get(), "grill", ItemStatus::Preparing),
                item((ItemId::new(2)).get(), "fryer", ItemStatus::Queued),
                item((ItemId::new(3)).get(), "grill", ItemStatus::Ready),
                item((ItemId::new(4)).get(), "grill", ItemStatus::Queued),
            ],
        );
        let plan = bump(&order, Role::Kitchen, Some("grill")).expect("bump");
        assert_eq!(items(&plan), [1, 4]);
        assert!(statuses(&plan).is_empty(), "the fryer is not done");
        assert_eq!(plan.expected_version, 4);
        assert_eq!(plan.final_version(), 6);
    }

    #[test]
    fn the_last_station_bump_advances_the_order_by_itself() {
        let order = order(
            "cooking",
            vec![
                item((ItemId::new(1)).get(), "grill", ItemStatus::Queued),
                item((ItemId::new(2)).get(), "fryer", ItemStatus::Ready),
            ],
        );
        let plan = bump(&order, Role::Kitchen, Some("grill")).expect("bump");
        assert_eq!(items(&plan), [1]);
        assert_eq!(statuses(&plan), [("cooking", "ready")]);
        let PlanStep::Status(advance) = &plan.steps[1] else {
            panic!("the second step is the advance");
        };
        assert_eq!(advance.history.note.as_deref(), Some(ALL_ITEMS_READY_NOTE));
        assert_eq!(advance.expected_version, 5);
        assert_eq!(advance.event.order_version, 6);
    }

    #[test]
    fn a_whole_bump_of_a_confirmed_order_walks_the_kitchens_way_to_the_hand_off() {
        let order = order(
            "confirmed",
            vec![
                item((ItemId::new(1)).get(), "grill", ItemStatus::Queued),
                item((ItemId::new(2)).get(), "fryer", ItemStatus::Ready),
            ],
        );
        let plan = bump(&order, Role::Kitchen, None).expect("bump");
        assert_eq!(items(&plan), [1]);
        // `confirmed` has no automatic advance; the shortest way skips cooking.
        assert_eq!(
            statuses(&plan),
            [("confirmed", "preparing"), ("preparing", "ready")]
        );
        let versions: Vec<_> = plan
            .steps
            .iter()
            .map(|s| (s.expected_version(), s.event().order_version))
            .collect();
        assert_eq!(versions, [(4, 5), (5, 6), (6, 7)]);
    }

    #[test]
    fn a_bump_whose_later_step_is_not_the_kitchens_is_refused_whole() {
        let order = order(
            "pending",
            vec![item((ItemId::new(1)).get(), "grill", ItemStatus::Queued)],
        );
        let refused = bump(&order, Role::Kitchen, None);
        assert_eq!(
            refused,
            Err(KitchenError::Denied(TransitionDenied::RoleNotAllowed {
                role: Role::Kitchen,
                from: "pending".into(),
                to: "confirmed".into(),
            }))
        );
        // A cashier may take every step.
        let plan = bump(&order, Role::Cashier, None).expect("cashier bump");
        assert_eq!(
            statuses(&plan),
            [
                ("pending", "confirmed"),
                ("confirmed", "preparing"),
                ("preparing", "ready")
            ]
        );
    }

    #[test]
    fn bumps_are_refused_for_stale_versions_drivers_customers_and_finished_orders() {
        let workflow = restaurant();
        let at = OffsetDateTime::UNIX_EPOCH;
        let open = order(
            "preparing",
            vec![item((ItemId::new(1)).get(), "grill", ItemStatus::Queued)],
        );
        assert_eq!(
            plan_bump(&workflow, &open, actor(Role::Kitchen), None, Some(3), at),
            Err(KitchenError::StaleVersion {
                expected: 3,
                current: 4
            })
        );
        for role in [Role::Driver, Role::Customer] {
            assert_eq!(
                plan_bump(&workflow, &open, actor(role), None, None, at),
                Err(KitchenError::Items(ItemChangeError::RoleNotAllowed))
            );
        }
        let done = order(
            "completed",
            vec![item((ItemId::new(1)).get(), "grill", ItemStatus::Ready)],
        );
        assert_eq!(
            plan_bump(&workflow, &done, actor(Role::Kitchen), None, None, at),
            Err(KitchenError::Items(ItemChangeError::OrderFinished))
        );
        let ready = order(
            "ready",
            vec![item((ItemId::new(1)).get(), "grill", ItemStatus::Ready)],
        );
        assert_eq!(
            plan_bump(&workflow, &ready, actor(Role::Kitchen), None, None, at),
            Err(KitchenError::NothingToBump)
        );
        let gone = order(
            "out_for_delivery",
            vec![item((ItemId::new(1)).get(), "grill", ItemStatus::Queued)],
        );
        assert_eq!(
            plan_bump(&workflow, &gone, actor(Role::Manager), None, None, at),
            Err(KitchenError::Unreachable {
                from: "out_for_delivery".into(),
                to: "ready".into()
            })
        );
    }

    #[test]
    fn a_hand_off_waits_for_every_station() {
        let workflow = restaurant();
        let at = OffsetDateTime::UNIX_EPOCH;
        let waiting = order(
            "confirmed",
            vec![
                item((ItemId::new(1)).get(), "grill", ItemStatus::Ready),
                item((ItemId::new(2)).get(), "fryer", ItemStatus::Preparing),
            ],
        );
        assert_eq!(
            plan_hand_off(&workflow, &waiting, actor(Role::Kitchen), Some(4), at),
            Err(KitchenError::ItemsNotReady {
                pending: vec![ItemId::new(2)]
            })
        );
        let done = order(
            "confirmed",
            vec![
                item((ItemId::new(1)).get(), "grill", ItemStatus::Ready),
                item((ItemId::new(2)).get(), "fryer", ItemStatus::Ready),
            ],
        );
        let plan =
            plan_hand_off(&workflow, &done, actor(Role::Kitchen), Some(4), at).expect("hand-off");
        assert!(items(&plan).is_empty());
        assert_eq!(
            statuses(&plan),
            [("confirmed", "preparing"), ("preparing", "ready")]
        );
        let ready = order("ready", done.items.clone());
        assert_eq!(
            plan_hand_off(&workflow, &ready, actor(Role::Kitchen), None, at),
            Err(KitchenError::AlreadyHandedOff {
                status: "ready".into()
            })
        );
        let retail = Workflow::builtin("retail").expect("built-in");
        assert_eq!(
            plan_hand_off(&retail, &done, actor(Role::Owner), None, at),
            Err(KitchenError::NoHandOffState)
        );
    }

    fn entry(from: &str, to: &str) -> HistoryEntry {
        HistoryEntry {
            from: Some(from.into()),
            to: to.into(),
            actor: actor(Role::Kitchen),
            note: None,
            correction: false,
            payment: None,
            assignment: None,
            at: OffsetDateTime::UNIX_EPOCH,
        }
    }

    /// The restaurant workflow with a way back from `ready` to `cooking`
    /// for the kitchen.
    fn with_recall() -> Workflow {
        let file = format!(
            "{}\n[[transitions]]\nfrom = \"ready\"\nto = \"cooking\"\nroles = [\"kitchen\", \"manager\"]\n",
            include_str!("../workflows/restaurant.toml")
        );
        Workflow::from_toml(&file).expect("valid")
    }

    #[test]
    fn a_recall_goes_back_where_the_order_came_from_if_the_workflow_has_a_way() {
        let at = OffsetDateTime::UNIX_EPOCH;
        let ready = order(
            "ready",
            vec![item((ItemId::new(1)).get(), "grill", ItemStatus::Ready)],
        );
        let history = [
            entry("pending", "confirmed"),
            entry("confirmed", "preparing"),
            entry("preparing", "cooking"),
            entry("cooking", "ready"),
        ];
        assert_eq!(
            plan_recall(
                &restaurant(),
                &ready,
                &history,
                actor(Role::Kitchen),
                None,
                at
            ),
            Err(KitchenError::NoWayBack {
                from: "ready".into(),
                to: "cooking".into()
            })
        );
        let workflow = with_recall();
        let change = plan_recall(&workflow, &ready, &history, actor(Role::Kitchen), None, at)
            .expect("recall");
        assert_eq!(
            (change.from.as_str(), change.to.as_str()),
            ("ready", "cooking")
        );
        assert_eq!(change.expected_version, 4);
        assert_eq!(change.history.note.as_deref(), Some(RECALL_NOTE));
        assert!(matches!(
            plan_recall(&workflow, &ready, &history, actor(Role::Cashier), None, at),
            Err(KitchenError::Denied(
                TransitionDenied::RoleNotAllowed { .. }
            ))
        ));
        // Handed off from `preparing`: the workflow has no way back there.
        let skipped = [entry("confirmed", "preparing"), entry("preparing", "ready")];
        assert!(matches!(
            plan_recall(&workflow, &ready, &skipped, actor(Role::Kitchen), None, at),
            Err(KitchenError::NoWayBack { .. })
        ));
        assert!(may_recall(&workflow, &ready, Role::Kitchen));
        assert!(!may_recall(&workflow, &ready, Role::Cashier));
        assert!(!may_recall(&restaurant(), &ready, Role::Kitchen));
        let cooking = order("cooking", ready.items.clone());
        assert!(!may_recall(&workflow, &cooking, Role::Kitchen));
        assert!(matches!(
            plan_recall(
                &workflow,
                &cooking,
                &history,
                actor(Role::Kitchen),
                None,
                at
            ),
            Err(KitchenError::NotHandedOff { .. })
        ));
    }
}
