//! Properties of the kitchen's plans, for any order in any open state, any
//! items, any role and any station: a plan is a gap-free chain of versions
//! and statuses, changes exactly the items it should, takes only steps the
//! workflow allows (or its automatic advance), and a hand-off never happens
//! while an item is not ready.

use ordertrack_domain::fulfilment::FulfilmentKind;
use ordertrack_domain::kitchen::{
    ALL_ITEMS_READY_NOTE, KitchenError, OrderPlan, PlanStep, plan_bump, plan_hand_off,
};
use ordertrack_domain::order::{
    Actor, EventKind, Fulfilment, ItemStatus, Order, OrderItem, OrderLine, StatusChange,
};
use ordertrack_domain::role::Role;
use ordertrack_domain::workflow::Workflow;
use ordertrack_domain::{ItemId, OrderId, ProductId, StatusKey, StoreId, UserId};
use proptest::prelude::*;
use proptest::sample::select;
use time::OffsetDateTime;

const STATIONS: [&str; 3] = ["grill", "fryer", "drinks"];

/// The built-ins that have a kitchen hand-off.
fn kitchens() -> Vec<Workflow> {
    ["restaurant", "kitchen"]
        .iter()
        .map(|name| Workflow::builtin(name).expect("built-in exists"))
        .collect()
}

fn any_item_status() -> impl Strategy<Value = ItemStatus> {
    select(vec![
        ItemStatus::Queued,
        ItemStatus::Preparing,
        ItemStatus::Ready,
    ])
}

fn any_items() -> impl Strategy<Value = Vec<OrderItem>> {
    prop::collection::vec((select(STATIONS.to_vec()), any_item_status()), 1..6).prop_map(|lines| {
        lines
            .into_iter()
            .enumerate()
            .map(|(n, (station, status))| OrderItem {
                id: ItemId::new(100 + n as i64),
                line: OrderLine {
                    product: ProductId::new(1 + n as i64),
                    name: format!("dish {n}"),
                    quantity: 1,
                    unit_price_minor: 450,
                    notes: None,
                    station: station.to_owned(),
                },
                status,
            })
            .collect()
    })
}

/// A workflow and an order in one of its open states.
fn any_case() -> impl Strategy<Value = (Workflow, Order)> {
    select(kitchens()).prop_flat_map(|workflow| {
        let open: Vec<StatusKey> = workflow
            .states()
            .iter()
            .filter(|s| !s.terminal)
            .map(|s| s.key.clone())
            .collect();
        (
            Just(workflow),
            select(open),
            any_items(),
            select(vec![FulfilmentKind::Pickup, FulfilmentKind::Delivery]),
            1i64..50,
        )
            .prop_map(|(workflow, status, items, kind, version)| {
                let order = Order {
                    id: OrderId::new(9),
                    number: "K-000009".into(),
                    store_id: StoreId::new(2),
                    store_slug: "kiosk".into(),
                    customer_id: UserId::new(5),
                    customer_name: "Cleo".into(),
                    status,
                    version,
                    workflow_version: 0,
                    items,
                    total_minor: 0,
                    currency: "EUR".parse().expect("a currency code"),
                    fulfilment: Fulfilment {
                        kind,
                        address: None,
                    },
                    notes: None,
                    tracking_token: "ab".repeat(16),
                    payment: ordertrack_domain::Payment::unpaid(
                        ordertrack_domain::PaymentMethod::Cash,
                    ),
                    driver: None,
                    created_at: OffsetDateTime::UNIX_EPOCH,
                    updated_at: OffsetDateTime::UNIX_EPOCH,
                    status_since: OffsetDateTime::UNIX_EPOCH,
                };
                (workflow, order)
            })
    })
}

fn any_actor() -> impl Strategy<Value = Actor> {
    select(Role::ALL.to_vec()).prop_map(|role| Actor {
        id: UserId::new(77),
        role,
    })
}

fn any_station() -> impl Strategy<Value = Option<String>> {
    prop::option::of(select(vec!["grill", "fryer", "drinks", "bar"]))
        .prop_map(|s| s.map(String::from))
}

fn status_changes(plan: &OrderPlan) -> Vec<&StatusChange> {
    plan.steps
        .iter()
        .filter_map(|step| match step {
            PlanStep::Status(change) => Some(change),
            PlanStep::Item(_) => None,
        })
        .collect()
}

/// What every plan keeps: consecutive versions from the order's own, one
/// event per step for this order, items before statuses, a status chain
/// starting at the order's status, history and event agreeing. Returns the
/// order as the plan leaves it.
fn check_plan(workflow: &Workflow, order: &Order, actor: Actor, plan: &OrderPlan) -> Order {
    assert!(!plan.steps.is_empty(), "a plan changes something");
    assert_eq!(plan.order_id, order.id);
    assert_eq!(plan.store_id, order.store_id);
    assert_eq!(plan.expected_version, order.version);
    assert_eq!(
        plan.final_version(),
        order.version + plan.steps.len() as i64
    );
    let mut after = order.clone();
    let mut seen_status = false;
    for (n, step) in plan.steps.iter().enumerate() {
        let expected = order.version + n as i64;
        assert_eq!(step.expected_version(), expected, "step {n}");
        let event = step.event();
        assert_eq!(event.order_version, expected + 1, "step {n}");
        assert_eq!(
            (event.order_id, event.store_id, event.customer_id),
            (order.id, order.store_id, order.customer_id)
        );
        assert_eq!(event.actor, Some(actor));
        match step {
            PlanStep::Item(item) => {
                assert!(!seen_status, "items change before the status does");
                assert_eq!(event.kind, EventKind::ItemStatusChanged);
                assert_eq!(event.item.as_ref(), Some(&item.item));
                assert_eq!(item.item.to, ItemStatus::Ready);
                let line = after
                    .items
                    .iter_mut()
                    .find(|line| line.id == item.item.id)
                    .expect("a bumped item is the order's");
                assert_eq!(line.status, item.item.from);
                assert_ne!(line.status, ItemStatus::Ready, "only pending items change");
                line.status = ItemStatus::Ready;
                assert_eq!(event.summary.status, after.status);
            }
            PlanStep::Status(change) => {
                seen_status = true;
                assert_eq!(change.order_id, order.id);
                assert_eq!(change.from, after.status, "statuses chain");
                assert_eq!(change.history.from.as_deref(), Some(change.from.as_str()));
                assert_eq!(change.history.to, change.to);
                assert_eq!(change.history.actor, actor);
                assert_eq!(event.kind, EventKind::StatusChanged);
                assert_eq!(event.from.as_deref(), Some(change.from.as_str()));
                assert_eq!(event.to.as_deref(), Some(change.to.as_str()));
                assert_eq!(event.summary.status, change.to);
                let allowed = workflow
                    .check(actor.role, &change.from, &change.to, order.fulfilment.kind)
                    .is_ok();
                let automatic = change.history.note.as_deref() == Some(ALL_ITEMS_READY_NOTE)
                    && workflow.on_items_ready(&change.from).map(|s| &s.key) == Some(&change.to);
                assert!(
                    allowed || automatic,
                    "{} -> {} is neither allowed for a {} nor automatic",
                    change.from,
                    change.to,
                    actor.role
                );
                let target = workflow.state(&change.to).expect("a state");
                assert!(!workflow.is_cancelled(&change.to), "a plan never cancels");
                if target.requires_items_ready {
                    assert!(
                        after.pending_items().is_empty(),
                        "{} needs every item ready",
                        change.to
                    );
                }
                after.status = change.to.clone();
            }
        }
        after.version += 1;
    }
    after
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn a_bump_readies_exactly_its_items_and_a_whole_bump_ends_at_the_hand_off(
        (workflow, order) in any_case(),
        actor in any_actor(),
        station in any_station(),
    ) {
        let station = station.as_deref();
        let hand_off = workflow.hand_off_state().expect("kitchen workflows hand off").key.clone();
        match plan_bump(&workflow, &order, actor, station, Some(order.version), OffsetDateTime::UNIX_EPOCH) {
            Ok(plan) => {
                prop_assert!(actor.role.changes_items());
                let after = check_plan(&workflow, &order, actor, &plan);
                for (before, now) in order.items.iter().zip(&after.items) {
                    let bumped = station.is_none_or(|s| before.station == s);
                    let expected = if bumped { ItemStatus::Ready } else { before.status };
                    prop_assert_eq!(now.status, expected);
                }
                if station.is_none() {
                    prop_assert_eq!(&after.status, &hand_off);
                }
                let changes = status_changes(&plan);
                if station.is_some() {
                    prop_assert!(changes.len() <= 1, "a station bump only advances by itself");
                }
            }
            Err(KitchenError::Items(_)) => {
                prop_assert!(!actor.role.changes_items() || workflow.is_terminal(&order.status));
            }
            Err(KitchenError::NothingToBump) => {
                let pending = order.items.iter().any(|item| {
                    item.status != ItemStatus::Ready && station.is_none_or(|s| item.station == s)
                });
                prop_assert!(!pending);
                if station.is_none() {
                    prop_assert_eq!(&order.status, &hand_off);
                }
            }
            Err(KitchenError::Denied(_) | KitchenError::Unreachable { .. }) => {
                // Only the whole bump walks to the hand-off.
                prop_assert!(station.is_none());
                prop_assert!(workflow.path(actor.role, &order.status, &hand_off, order.fulfilment.kind).is_none()
                    || workflow.on_items_ready(&order.status).is_some());
            }
            Err(other) => prop_assert!(false, "unexpected refusal: {other}"),
        }
    }

    #[test]
    fn a_hand_off_takes_only_allowed_steps_and_never_with_pending_items(
        (workflow, order) in any_case(),
        actor in any_actor(),
    ) {
        let hand_off = workflow.hand_off_state().expect("kitchen workflows hand off").key.clone();
        match plan_hand_off(&workflow, &order, actor, None, OffsetDateTime::UNIX_EPOCH) {
            Ok(plan) => {
                prop_assert!(order.pending_items().is_empty());
                let after = check_plan(&workflow, &order, actor, &plan);
                prop_assert_eq!(&after.status, &hand_off);
                prop_assert_eq!(&after.items, &order.items);
                for change in status_changes(&plan) {
                    prop_assert!(workflow.check(actor.role, &change.from, &change.to, order.fulfilment.kind).is_ok());
                }
            }
            Err(KitchenError::ItemsNotReady { pending }) => {
                prop_assert!(!pending.is_empty());
                prop_assert_eq!(pending, order.pending_items());
            }
            Err(KitchenError::AlreadyHandedOff { status }) => prop_assert_eq!(status, hand_off),
            Err(KitchenError::Denied(_) | KitchenError::Unreachable { .. }) => {
                prop_assert!(workflow.path(actor.role, &order.status, &hand_off, order.fulfilment.kind).is_none());
            }
            Err(other) => prop_assert!(false, "unexpected refusal: {other}"),
        }
    }

    #[test]
    fn a_stale_version_refuses_every_plan_first(
        (workflow, order) in any_case(),
        actor in any_actor(),
        station in any_station(),
        off in 1i64..5,
    ) {
        let stale = Some(order.version - off);
        let at = OffsetDateTime::UNIX_EPOCH;
        let expected = KitchenError::StaleVersion { expected: order.version - off, current: order.version };
        prop_assert_eq!(plan_bump(&workflow, &order, actor, station.as_deref(), stale, at), Err(expected.clone()));
        prop_assert_eq!(plan_hand_off(&workflow, &order, actor, stale, at), Err(expected));
    }
}
