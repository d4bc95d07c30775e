//! Payment of an order: how the customer pays (a method the store offers),
//! whether it is paid, and what was refunded. No money moves here: staff
//! (or, later, a payment provider's webhook) record what happened, and
//! [`plan_payment`] decides such a change like a transition — version
//! checked, one history entry and one event, written in one transaction.

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use crate::order::{
    Actor, EventKind, HistoryEntry, MAX_NOTE_CHARS, NewEvent, Order, OrderSummary, StatusChange,
};
use crate::role::Role;
use crate::text::{UnsafeText, check_lines};
use crate::workflow::Workflow;

/// How an order is paid.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum PaymentMethod {
    /// Cash, at the counter or to the driver.
    Cash,
    /// A card at the counter's terminal.
    CardAtCounter,
    /// A card on the driver's terminal.
    CardOnDelivery,
    /// Paid elsewhere beforehand (a payment provider); marked paid by it.
    PrepaidExternal,
}

impl PaymentMethod {
    /// Every method, in the order pages list them.
    pub const ALL: [PaymentMethod; 4] = [
        PaymentMethod::Cash,
        PaymentMethod::CardAtCounter,
        PaymentMethod::CardOnDelivery,
        PaymentMethod::PrepaidExternal,
    ];

    /// The stable name used in APIs and storage.
    pub fn as_str(self) -> &'static str {
        match self {
            PaymentMethod::Cash => "cash",
            PaymentMethod::CardAtCounter => "card_at_counter",
            PaymentMethod::CardOnDelivery => "card_on_delivery",
            PaymentMethod::PrepaidExternal => "prepaid_external",
        }
    }

    /// What pages call it.
    pub fn label(self) -> &'static str {
        match self {
            PaymentMethod::Cash => "Cash",
            PaymentMethod::CardAtCounter => "Card at the counter",
            PaymentMethod::CardOnDelivery => "Card on delivery",
            PaymentMethod::PrepaidExternal => "Prepaid online",
        }
    }

    /// Parses the stored name.
    pub fn parse(s: &str) -> Option<Self> {
        PaymentMethod::ALL.into_iter().find(|m| m.as_str() == s)
    }

    /// Whether the money is taken at the door (`*_on_delivery`): then the
    /// driver, who takes it, records it.
    pub fn on_delivery(self) -> bool {
        self.as_str().ends_with("_on_delivery")
    }
}

/// The payment methods a store offers, in its order of preference (the
/// first is what an order gets when it names none). Never empty.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PaymentMethods(Vec<PaymentMethod>);

/// A store must offer at least one payment method.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("a store offers at least one payment method")]
pub struct NoPaymentMethod;

impl Default for PaymentMethods {
    /// Cash only.
    fn default() -> Self {
        PaymentMethods(vec![PaymentMethod::Cash])
    }
}

impl PaymentMethods {
    /// `methods` in the order given (repeats ignored); empty is refused.
    pub fn new(methods: &[PaymentMethod]) -> Result<Self, NoPaymentMethod> {
        let mut set = Vec::with_capacity(methods.len());
        for &method in methods {
            if !set.contains(&method) {
                set.push(method);
            }
        }
        if set.is_empty() {
            Err(NoPaymentMethod)
        } else {
            Ok(PaymentMethods(set))
        }
    }

    /// Whether `method` is offered.
    pub fn offers(&self, method: PaymentMethod) -> bool {
        self.0.contains(&method)
    }

    /// The methods offered, preferred first.
    pub fn methods(&self) -> &[PaymentMethod] {
        &self.0
    }

    /// The method an order gets when it names none.
    pub fn preferred(&self) -> PaymentMethod {
        self.0.first().copied().unwrap_or(PaymentMethod::Cash)
    }

    /// Stored form: `cash,card_at_counter`.
    pub fn to_stored(&self) -> String {
        self.0
            .iter()
            .map(|m| m.as_str())
            .collect::<Vec<_>>()
            .join(",")
    }

    /// Reads the stored form; unknown parts are ignored, and nothing
    /// readable means cash.
    pub fn from_stored(text: &str) -> Self {
        let methods: Vec<PaymentMethod> =
            text.split(',').filter_map(PaymentMethod::parse).collect();
        PaymentMethods::new(&methods).unwrap_or_default()
    }
}

/// Where an order's payment stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum PaymentStatus {
    Unpaid,
    Paid,
    Refunded,
    PartiallyRefunded,
}

impl PaymentStatus {
    /// The stable name used in APIs and storage.
    pub fn as_str(self) -> &'static str {
        match self {
            PaymentStatus::Unpaid => "unpaid",
            PaymentStatus::Paid => "paid",
            PaymentStatus::Refunded => "refunded",
            PaymentStatus::PartiallyRefunded => "partially_refunded",
        }
    }

    /// What pages call it.
    pub fn label(self) -> &'static str {
        match self {
            PaymentStatus::Unpaid => "Unpaid",
            PaymentStatus::Paid => "Paid",
            PaymentStatus::Refunded => "Refunded",
            PaymentStatus::PartiallyRefunded => "Partly refunded",
        }
    }

    /// Parses the stored name.
    pub fn parse(s: &str) -> Option<Self> {
        [
            PaymentStatus::Unpaid,
            PaymentStatus::Paid,
            PaymentStatus::Refunded,
            PaymentStatus::PartiallyRefunded,
        ]
        .into_iter()
        .find(|status| status.as_str() == s)
    }

    /// Whether the order counts as paid for a state that requires it: paid,
    /// and not wholly refunded since.
    pub fn is_paid(self) -> bool {
        matches!(self, PaymentStatus::Paid | PaymentStatus::PartiallyRefunded)
    }
}

/// An order's payment as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Payment {
    pub method: PaymentMethod,
    pub status: PaymentStatus,
    /// When it was marked paid.
    pub paid_at: Option<OffsetDateTime>,
    /// How much of the total was refunded, in minor units.
    pub refunded_minor: i64,
}

impl Payment {
    /// A new order's payment: nothing paid yet.
    pub fn unpaid(method: PaymentMethod) -> Self {
        Payment {
            method,
            status: PaymentStatus::Unpaid,
            paid_at: None,
            refunded_minor: 0,
        }
    }
}

/// What one payment change did, as its history entry and event carry it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct PaymentStep {
    /// The payment's status afterwards.
    pub status: PaymentStatus,
    /// The amount paid (the order's total) or refunded by this change.
    pub amount_minor: i64,
}

/// A payment change asked for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PaymentRequest {
    /// The order was paid in full; `note` optional (e.g. a receipt number).
    Paid { note: Option<String> },
    /// `amount_minor` of what was paid goes back, for `reason`.
    Refund { amount_minor: i64, reason: String },
}

/// Why a payment change was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PaymentError {
    #[error("the order has changed: version {current} is current, not {expected}")]
    StaleVersion { expected: i64, current: i64 },
    #[error("a {role} may not mark an order paid by {method}")]
    MarkPaidNotAllowed { role: Role, method: &'static str },
    #[error("only managers and owners refund")]
    RefundNotAllowed,
    #[error("the order is already {status}")]
    AlreadyPaid { status: &'static str },
    #[error("only a paid order can be refunded; this one is {status}")]
    NotPaid { status: &'static str },
    #[error("a refund is a positive amount in minor units")]
    InvalidAmount,
    #[error("at most {remaining} (minor units) of what was paid is left to refund")]
    RefundTooLarge { remaining: i64 },
    #[error("a refund needs a reason")]
    ReasonRequired,
    #[error("a note may have at most {MAX_NOTE_CHARS} characters")]
    NoteTooLong,
    #[error(transparent)]
    UnsafeText(#[from] UnsafeText),
}

/// Whether `role` may mark an order paid by `method`: the counter's staff
/// and above always, a driver only for money taken at the door.
pub fn may_mark_paid(role: Role, method: PaymentMethod) -> bool {
    match role {
        Role::Admin | Role::Owner | Role::Manager | Role::Cashier => true,
        Role::Driver => method.on_delivery(),
        Role::Kitchen | Role::Customer => false,
    }
}

/// Whether `actor` may mark `order` paid: as [`may_mark_paid`] says for
/// its method, and also the driver it is assigned to when it is a cash
/// delivery (the driver takes the cash at the door).
pub fn may_mark_order_paid(actor: Actor, order: &Order) -> bool {
    may_mark_paid(actor.role, order.payment.method)
        || (actor.role == Role::Driver
            && order.payment.method == PaymentMethod::Cash
            && order.fulfilment.kind == crate::fulfilment::FulfilmentKind::Delivery
            && order.driver.as_ref().is_some_and(|d| d.id == actor.id))
}

/// Whether `role` may refund.
pub fn may_refund(role: Role) -> bool {
    matches!(role, Role::Admin | Role::Owner | Role::Manager)
}

fn check_text(text: &str) -> Result<(), PaymentError> {
    if text.chars().count() > MAX_NOTE_CHARS {
        return Err(PaymentError::NoteTooLong);
    }
    Ok(check_lines("reason", text)?)
}

/// Decides a payment change by `actor`: the order stays in its state, its
/// payment changes, with a history entry and a `payment_changed` event
/// (written like a status change, version checked).
///
/// `expected_version` is the version the client saw; `None` means "whatever
/// is current" (the store still guards against a concurrent change).
pub fn plan_payment(
    workflow: &Workflow, order: &Order, actor: Actor, request: PaymentRequest,
    expected_version: Option<i64>, now: OffsetDateTime,
) -> Result<StatusChange, PaymentError> {
    if let Some(expected) = expected_version
        && expected != order.version
    {
        return Err(PaymentError::StaleVersion {
            expected,
            current: order.version,
        });
    }
    let before = &order.payment;
    let (payment, step, note) = match request {
        PaymentRequest::Paid { note } => {
            if !may_mark_order_paid(actor, order) {
                return Err(PaymentError::MarkPaidNotAllowed {
                    role: actor.role,
                    method: before.method.as_str(),
                });
            }
            let note = note.map(|n| n.trim().to_owned()).filter(|n| !n.is_empty());
            if let Some(note) = &note {
                check_text(note)?;
            }
            if before.status != PaymentStatus::Unpaid {
                return Err(PaymentError::AlreadyPaid {
                    status: before.status.as_str(),
                });
            }
            let payment = Payment {
                status: PaymentStatus::Paid,
                paid_at: Some(now),
                ..before.clone()
            };
            let step = PaymentStep {
                status: PaymentStatus::Paid,
                amount_minor: order.total_minor,
            };
            (payment, step, note)
        }
        PaymentRequest::Refund {
            amount_minor,
            reason,
        } => {
            if !may_refund(actor.role) {
                return Err(PaymentError::RefundNotAllowed);
            }
            let reason = reason.trim();
            if reason.is_empty() {
                return Err(PaymentError::ReasonRequired);
            }
            check_text(reason)?;
            if !before.status.is_paid() {
                return Err(PaymentError::NotPaid {
                    status: before.status.as_str(),
                });
            }
            if amount_minor <= 0 {
                return Err(PaymentError::InvalidAmount);
            }
            let remaining = order.total_minor - before.refunded_minor;
            if amount_minor > remaining {
                return Err(PaymentError::RefundTooLarge { remaining });
            }
            let refunded_minor = before.refunded_minor + amount_minor;
            let status = if refunded_minor == order.total_minor {
                PaymentStatus::Refunded
            } else {
                PaymentStatus::PartiallyRefunded
            };
            let payment = Payment {
                status,
                refunded_minor,
                ..before.clone()
            };
            let step = PaymentStep {
                status,
                amount_minor,
            };
            (payment, step, Some(reason.to_owned()))
        }
    };
    let new_version = order.version + 1;
    let summary = OrderSummary::of(
        workflow,
        &order.number,
        &order.status,
        order.fulfilment.kind,
    )
    .with_payment(payment.status);
    let history = HistoryEntry {
        note: note.clone(),
        payment: Some(step),
        ..HistoryEntry::status_kept(order, actor, now)
    };
    let event = NewEvent {
        note,
        payment: Some(step),
        ..NewEvent::about(
            order,
            EventKind::PaymentChanged,
            new_version,
            actor,
            now,
            summary,
        )
    };
    Ok(StatusChange {
        payment: Some(payment),
        ..StatusChange::status_kept(order, history, event)
    })
}

#[cfg(test)]
pub(crate) mod tests {
    use time::macros::datetime;

    use super::*;
    use crate::fulfilment::FulfilmentKind;
    use crate::ids::{OrderId, StoreId, UserId};
    use crate::order::{Fulfilment, TransitionError, plan_transition};

    pub(crate) const NOW: OffsetDateTime = datetime!(2026-03-01 12:00 UTC);

    /// A ready delivery of 10.00 (version 5), paid by `method`, unpaid.
    pub(crate) fn order(method: PaymentMethod) -> Order {
        Order {
            id: OrderId::new(1),
            number: "R-000001".into(),
            store_id: StoreId::new(1),
            store_slug: "rosso".into(),
            customer_id: UserId::new(2),
            customer_name: "Alice".into(),
            status: "ready".into(),
            version: 5,
            workflow_version: 0,
            items: Vec::new(),
            total_minor: 1000,
            currency: "EUR".parse().expect("a currency"),
            fulfilment: Fulfilment {
                kind: FulfilmentKind::Delivery,
                address: Some("1 Main St".into()),
            },
            notes: None,
            tracking_token: "00".repeat(16),
            payment: Payment::unpaid(method),
            driver: None,
            created_at: NOW,
            updated_at: NOW,
            status_since: NOW,
        }
    }

    fn actor(role: Role) -> Actor {
        Actor {
            id: UserId::new(9),
            role,
        }
    }

    pub(crate) fn restaurant() -> Workflow {
        Workflow::builtin("restaurant").expect("built-in")
    }

    fn paid() -> PaymentRequest {
        PaymentRequest::Paid { note: None }
    }

    fn refund(amount_minor: i64) -> PaymentRequest {
        PaymentRequest::Refund {
            amount_minor,
            reason: "cold".into(),
        }
    }

    #[test]
    fn methods_keep_their_order_and_read_back() {
        let methods = PaymentMethods::new(&[
            PaymentMethod::CardOnDelivery,
            PaymentMethod::Cash,
            PaymentMethod::CardOnDelivery,
        ])
        .expect("a set");
        assert_eq!(methods.preferred(), PaymentMethod::CardOnDelivery);
        assert_eq!(PaymentMethods::from_stored(&methods.to_stored()), methods);
        assert_eq!(PaymentMethods::new(&[]), Err(NoPaymentMethod));
        assert_eq!(PaymentMethods::from_stored(""), PaymentMethods::default());
        for method in PaymentMethod::ALL {
            assert_eq!(PaymentMethod::parse(method.as_str()), Some(method));
        }
        assert!(PaymentMethod::CardOnDelivery.on_delivery());
        assert!(!PaymentMethod::Cash.on_delivery());
    }

    #[test]
    fn marking_paid_keeps_the_status_and_records_the_total() {
        let order = order(PaymentMethod::Cash);
        let change = plan_payment(
            &restaurant(),
            &order,
            actor(Role::Cashier),
            paid(),
            Some(5),
            NOW,
        )
        .expect("a cashier marks paid");
        assert_eq!(
            (change.from.as_str(), change.to.as_str()),
            ("ready", "ready")
        );
        assert_eq!(change.expected_version, 5);
        assert_eq!(change.event.order_version, 6);
        assert_eq!(change.event.kind, EventKind::PaymentChanged);
        let step = PaymentStep {
            status: PaymentStatus::Paid,
            amount_minor: 1000,
        };
        assert_eq!(change.history.payment, Some(step));
        assert_eq!(change.event.payment, Some(step));
        assert_eq!(
            change.event.summary.payment_status,
            Some(PaymentStatus::Paid)
        );
        let payment = change.payment.expect("the new payment");
        assert_eq!(payment.status, PaymentStatus::Paid);
        assert_eq!(payment.paid_at, Some(NOW));
    }

    #[test]
    fn the_assigned_driver_takes_cash_at_the_door() {
        let mut order = order(PaymentMethod::Cash);
        let driver = actor(Role::Driver);
        let plan = |order: &Order| {
            plan_payment(&restaurant(), order, driver, paid(), None, NOW).map(|_| ())
        };
        assert!(
            matches!(plan(&order), Err(PaymentError::MarkPaidNotAllowed { .. })),
            "not while the order has no driver"
        );
        order.driver = Some(crate::AssignedDriver {
            id: UserId::new(10),
            name: "Other Driver".into(),
        });
        assert!(plan(&order).is_err(), "not another driver's order");
        order.driver = Some(crate::AssignedDriver {
            id: driver.id,
            name: "Dana Driver".into(),
        });
        assert_eq!(plan(&order), Ok(()));
        order.fulfilment.kind = FulfilmentKind::Pickup;
        assert!(plan(&order).is_err(), "a pickup is paid at the counter");
    }

    #[test]
    fn who_marks_paid_depends_on_the_method() {
        for role in [Role::Admin, Role::Owner, Role::Manager, Role::Cashier] {
            assert!(may_mark_paid(role, PaymentMethod::Cash), "{role}");
        }
        for role in [Role::Kitchen, Role::Customer] {
            for method in PaymentMethod::ALL {
                assert!(!may_mark_paid(role, method), "{role} {method:?}");
            }
        }
        assert!(may_mark_paid(Role::Driver, PaymentMethod::CardOnDelivery));
        assert!(!may_mark_paid(Role::Driver, PaymentMethod::Cash));
        let refused = plan_payment(
            &restaurant(),
            &order(PaymentMethod::CardAtCounter),
            actor(Role::Driver),
            paid(),
            None,
            NOW,
        );
        assert!(matches!(
            refused,
            Err(PaymentError::MarkPaidNotAllowed { .. })
        ));
    }

    #[test]
    fn refunds_go_up_to_what_was_paid() {
        let workflow = restaurant();
        let manager = actor(Role::Manager);
        let unpaid = order(PaymentMethod::Cash);
        assert!(matches!(
            plan_payment(&workflow, &unpaid, manager, refund(1), None, NOW),
            Err(PaymentError::NotPaid { .. })
        ));
        let mut paid_order = unpaid.clone();
        paid_order.payment.status = PaymentStatus::Paid;
        assert_eq!(
            plan_payment(&workflow, &paid_order, manager, refund(1001), None, NOW),
            Err(PaymentError::RefundTooLarge { remaining: 1000 })
        );
        assert_eq!(
            plan_payment(
                &workflow,
                &paid_order,
                actor(Role::Cashier),
                refund(1),
                None,
                NOW
            ),
            Err(PaymentError::RefundNotAllowed)
        );
        assert_eq!(
            plan_payment(&workflow, &paid_order, manager, refund(0), None, NOW),
            Err(PaymentError::InvalidAmount)
        );
        let partly = plan_payment(&workflow, &paid_order, manager, refund(400), None, NOW)
            .expect("a partial refund")
            .payment
            .expect("the payment");
        assert_eq!(partly.status, PaymentStatus::PartiallyRefunded);
        assert_eq!(partly.refunded_minor, 400);
        paid_order.payment = partly;
        let all = plan_payment(&workflow, &paid_order, manager, refund(600), None, NOW)
            .expect("the rest")
            .payment
            .expect("the payment");
        assert_eq!(all.status, PaymentStatus::Refunded);
        assert_eq!(
            plan_payment(
                &workflow,
                &order(PaymentMethod::Cash),
                manager,
                paid(),
                Some(4),
                NOW
            ),
            Err(PaymentError::StaleVersion {
                expected: 4,
                current: 5
            })
        );
    }

    #[test]
    fn a_state_requiring_payment_waits_for_it() {
        let mut text = toml::to_string(&restaurant()).expect("the file");
        text = text.replace(
            "key = \"delivered\"\n",
            "key = \"delivered\"\nrequires_paid = true\n",
        );
        let workflow = Workflow::from_toml(&text).expect("still valid");
        assert!(workflow.state("delivered").is_some_and(|s| s.requires_paid));
        let mut order = order(PaymentMethod::Cash);
        order.status = "out_for_delivery".into();
        let driver = actor(Role::Driver);
        order.driver = Some(crate::AssignedDriver {
            id: driver.id,
            name: "Dana Driver".into(),
        });
        assert_eq!(
            plan_transition(&workflow, &order, driver, "delivered", None, None, NOW),
            Err(TransitionError::PaymentRequired {
                to: "delivered".into()
            })
        );
        order.payment.status = PaymentStatus::Paid;
        assert!(plan_transition(&workflow, &order, driver, "delivered", None, None, NOW).is_ok());
    }
}
