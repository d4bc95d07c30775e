//! Driver assignment: which of its store's drivers takes a delivery order
//! to the door. Counter staff (cashiers, managers, owners) assign and
//! unassign; a driver takes an unassigned order (or gives it back) only
//! where the store lets drivers assign themselves. [`plan_assignment`]
//! decides such a change like a payment — the status stays, version
//! checked, one history entry and one event, written in one transaction.
//! A driver moves only the orders assigned to them
//! ([`check_assigned_driver`]).

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use crate::fulfilment::FulfilmentKind;
use crate::ids::UserId;
use crate::order::{Actor, EventKind, HistoryEntry, NewEvent, Order, OrderSummary, StatusChange};
use crate::role::Role;
use crate::workflow::Workflow;

/// The driver an order is assigned to: who, and their name as their
/// account gives it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AssignedDriver {
    pub id: UserId,
    pub name: String,
}

impl AssignedDriver {
    /// What the customer (and a guest with the tracking link) is told: the
    /// first word of the name only.
    pub fn first_name(&self) -> &str {
        first_name(&self.name)
    }
}

/// The first word of `name` (all of it if it has one word).
pub fn first_name(name: &str) -> &str {
    name.split_whitespace().next().unwrap_or("")
}

/// What one assignment change did, as its history entry keeps it: the
/// driver assigned, or `None` for "unassigned".
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct AssignmentStep {
    pub driver: Option<UserId>,
}

impl AssignmentStep {
    /// The stable name of what it did, in APIs and storage: `assigned` or
    /// `unassigned`.
    pub fn as_str(self) -> &'static str {
        if self.driver.is_some() {
            "assigned"
        } else {
            "unassigned"
        }
    }
}

/// An assignment change as every watcher of the order sees it (guests
/// included): the driver's first name only, or `null` once unassigned.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AssignmentShown {
    pub driver: Option<DriverShown>,
}

/// A driver as every watcher sees them: the first name.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct DriverShown {
    pub name: String,
}

/// Why an assignment change was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AssignmentError {
    #[error("the order has changed: version {current} is current, not {expected}")]
    StaleVersion { expected: i64, current: i64 },
    #[error("a {role} may not assign drivers")]
    RoleNotAllowed { role: Role },
    #[error("this store's drivers do not assign themselves; the counter assigns them")]
    SelfAssignmentOff,
    #[error("a driver assigns only themselves, and unassigns only their own orders")]
    NotYourself,
    #[error("the order already has a driver")]
    AlreadyAssigned,
    #[error("only a delivery order has a driver")]
    NotADelivery,
    #[error("the order is finished; its driver can no longer change")]
    OrderFinished,
}

/// Whether `role` assigns and unassigns any of the store's drivers.
pub fn may_assign(role: Role) -> bool {
    matches!(
        role,
        Role::Admin | Role::Owner | Role::Manager | Role::Cashier
    )
}

/// Whether `actor` may move `order` as far as its driver goes: a driver
/// moves only the orders assigned to them; other roles are not limited.
pub fn check_assigned_driver(order: &Order, actor: Actor) -> Result<(), AssignmentError> {
    if actor.role == Role::Driver && order.driver.as_ref().map(|d| d.id) != Some(actor.id) {
        return Err(AssignmentError::NotYourself);
    }
    Ok(())
}

/// Decides an assignment change by `actor`: `driver` (whom the caller has
/// checked is a driver of the order's store) takes `order`, or with `None`
/// the order goes back to no driver. `self_assignment` says whether the
/// store lets its drivers assign themselves.
///
/// `Ok(None)`: nothing to change (the order already stands so). The change
/// keeps the order's status; its history entry and its event (to every
/// watcher: the driver's first name) are written like a transition's,
/// version checked. `expected_version` as in
/// [`plan_transition`](crate::plan_transition).
pub fn plan_assignment(
    workflow: &Workflow, order: &Order, actor: Actor, driver: Option<AssignedDriver>,
    self_assignment: bool, expected_version: Option<i64>, now: OffsetDateTime,
) -> Result<Option<StatusChange>, AssignmentError> {
    if let Some(expected) = expected_version
        && expected != order.version
    {
        return Err(AssignmentError::StaleVersion {
            expected,
            current: order.version,
        });
    }
    let current = order.driver.as_ref().map(|d| d.id);
    if actor.role == Role::Driver {
        if !self_assignment {
            return Err(AssignmentError::SelfAssignmentOff);
        }
        match &driver {
            Some(driver) if driver.id != actor.id => return Err(AssignmentError::NotYourself),
            Some(_) if current.is_some_and(|id| id != actor.id) => {
                return Err(AssignmentError::AlreadyAssigned);
            }
            None if current.is_some_and(|id| id != actor.id) => {
                return Err(AssignmentError::NotYourself);
            }
            _ => {}
        }
    } else if !may_assign(actor.role) {
        return Err(AssignmentError::RoleNotAllowed { role: actor.role });
    }
    if order.fulfilment.kind != FulfilmentKind::Delivery {
        return Err(AssignmentError::NotADelivery);
    }
    if workflow.is_terminal(&order.status) {
        return Err(AssignmentError::OrderFinished);
    }
    if current == driver.as_ref().map(|d| d.id) {
        return Ok(None);
    }
    let step = AssignmentStep {
        driver: driver.as_ref().map(|d| d.id),
    };
    let shown = AssignmentShown {
        driver: driver.as_ref().map(|d| DriverShown {
            name: d.first_name().to_owned(),
        }),
    };
    let kind = if driver.is_some() {
        EventKind::DriverAssigned
    } else {
        EventKind::DriverUnassigned
    };
    let summary = OrderSummary::of_order(workflow, order);
    let history = HistoryEntry {
        assignment: Some(step),
        ..HistoryEntry::status_kept(order, actor, now)
    };
    let event = NewEvent {
        assignment: Some(shown),
        ..NewEvent::about(order, kind, order.version + 1, actor, now, summary)
    };
    Ok(Some(StatusChange {
        assignment: Some(step),
        ..StatusChange::status_kept(order, history, event)
    }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fulfilment::FulfilmentKind;
    use crate::payment::PaymentMethod;
    use crate::payment::tests::{NOW, restaurant};

    fn order(kind: FulfilmentKind) -> Order {
        let mut order = crate::payment::tests::order(PaymentMethod::Cash);
        order.fulfilment.kind = kind;
        order
    }

    fn actor(id: i64, role: Role) -> Actor {
        Actor {
            id: UserId::new(id),
            role,
        }
    }

    fn dana() -> AssignedDriver {
        AssignedDriver {
            id: UserId::new(7),
            name: "Dana  Driver".into(),
        }
    }

    #[test]
    fn an_unassignment_tells_how_it_leaves_the_order_on_its_version_only() {
        let mut assigned = order(FulfilmentKind::Delivery);
        assigned.driver = Some(dana());
        let cashier = actor(3, Role::Cashier);
        let unassign =
            plan_assignment(&restaurant(), &assigned, cashier, None, false, Some(5), NOW)
                .expect("a cashier unassigns")
                .expect("a change");
        let after = assigned
            .after_status_change(&unassign)
            .expect("an unassignment tells");
        assert_eq!(after.driver, None);
        assert_eq!(after.version, 6);
        assert_eq!(after.status, assigned.status);
        assert_eq!(
            after.status_since, assigned.status_since,
            "the status clock runs on"
        );
        assert_eq!(after.updated_at, NOW);

        let mut moved_on = assigned.clone();
        moved_on.version = 6;
        assert_eq!(moved_on.after_status_change(&unassign), None);
    }

    #[test]
    fn the_counter_assigns_and_watchers_see_the_first_name() {
        let order = order(FulfilmentKind::Delivery);
        let cashier = actor(3, Role::Cashier);
        let change = plan_assignment(
            &restaurant(),
            &order,
            cashier,
            Some(dana()),
            false,
            Some(5),
            NOW,
        )
        .expect("a cashier assigns")
        .expect("a change");
        assert_eq!(change.to, order.status, "the status stays");
        assert_eq!(change.expected_version, 5);
        assert_eq!(change.event.order_version, 6);
        assert_eq!(change.event.kind, EventKind::DriverAssigned);
        let step = AssignmentStep {
            driver: Some(UserId::new(7)),
        };
        assert_eq!(change.assignment, Some(step));
        assert_eq!(change.history.assignment, Some(step));
        assert_eq!(
            change.event.assignment,
            Some(AssignmentShown {
                driver: Some(DriverShown {
                    name: "Dana".into()
                })
            })
        );
        assert!(!change.event.public_json().contains("Driver\""));
        assert_eq!(
            order.after_status_change(&change),
            None,
            "an assignment does not tell how it leaves the order: the driver's name is not in it"
        );

        let mut assigned = order.clone();
        assigned.driver = Some(dana());
        assert_eq!(
            plan_assignment(
                &restaurant(),
                &assigned,
                cashier,
                Some(dana()),
                false,
                None,
                NOW
            ),
            Ok(None),
            "the same driver again changes nothing"
        );
        let unassigned = plan_assignment(&restaurant(), &assigned, cashier, None, false, None, NOW)
            .expect("a cashier unassigns")
            .expect("a change");
        assert_eq!(unassigned.event.kind, EventKind::DriverUnassigned);
        assert_eq!(unassigned.assignment, Some(AssignmentStep { driver: None }));
    }

    #[test]
    fn who_may_assign() {
        let order = order(FulfilmentKind::Delivery);
        let plan = |order: &Order, actor: Actor, driver: Option<AssignedDriver>, own: bool| {
            plan_assignment(&restaurant(), order, actor, driver, own, None, NOW)
                .map(|c| c.is_some())
        };
        for role in [Role::Kitchen, Role::Customer] {
            assert_eq!(
                plan(&order, actor(3, role), Some(dana()), true),
                Err(AssignmentError::RoleNotAllowed { role })
            );
        }
        let dana_herself = actor(7, Role::Driver);
        assert_eq!(
            plan(&order, dana_herself, Some(dana()), false),
            Err(AssignmentError::SelfAssignmentOff)
        );
        assert_eq!(plan(&order, dana_herself, Some(dana()), true), Ok(true));
        assert_eq!(
            plan(&order, actor(8, Role::Driver), Some(dana()), true),
            Err(AssignmentError::NotYourself),
            "a driver assigns only themselves"
        );
        let mut taken = order.clone();
        taken.driver = Some(AssignedDriver {
            id: UserId::new(8),
            name: "Eli".into(),
        });
        assert_eq!(
            plan(&taken, dana_herself, Some(dana()), true),
            Err(AssignmentError::AlreadyAssigned)
        );
        assert_eq!(
            plan(&taken, dana_herself, None, true),
            Err(AssignmentError::NotYourself)
        );
        assert_eq!(
            plan(
                &self::order(FulfilmentKind::Pickup),
                actor(3, Role::Manager),
                Some(dana()),
                false
            ),
            Err(AssignmentError::NotADelivery)
        );
        let mut done = order.clone();
        done.status = "completed".into();
        assert_eq!(
            plan(&done, actor(3, Role::Owner), Some(dana()), false),
            Err(AssignmentError::OrderFinished)
        );
    }

    #[test]
    fn a_driver_moves_only_their_own_orders() {
        let mut order = order(FulfilmentKind::Delivery);
        let dana_herself = actor(7, Role::Driver);
        assert!(check_assigned_driver(&order, dana_herself).is_err());
        assert!(check_assigned_driver(&order, actor(3, Role::Cashier)).is_ok());
        order.driver = Some(dana());
        assert!(check_assigned_driver(&order, dana_herself).is_ok());
        assert!(check_assigned_driver(&order, actor(8, Role::Driver)).is_err());
    }
}
