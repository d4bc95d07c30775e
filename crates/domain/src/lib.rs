//! The order desk's domain: orders, items, money, roles and the workflow engine.
//!
//! Everything here is pure: no IO, no async, no clocks. Callers pass in the
//! current time and the current state; functions answer with decisions and
//! the changes to persist.

pub mod assignment;
pub mod eta;
pub mod fulfilment;
pub mod ids;
pub mod kitchen;
pub mod money;
pub mod names;
pub mod order;
pub mod payment;
pub mod report;
pub mod review;
pub mod role;
pub mod rollup;
pub mod store;
pub mod text;
pub mod workflow;

pub use assignment::{
    AssignedDriver, AssignmentError, AssignmentShown, AssignmentStep, DriverShown, may_assign,
    plan_assignment,
};
pub use eta::{
    DayBand, DurationSample, Eta, EtaBasis, KeptDurations, KitchenQueue, StoreDurations,
};
pub use fulfilment::FulfilmentKind;
pub use ids::{DeliveryId, WebhookId};
pub use kitchen::{
    ItemStep, KitchenError, OrderPlan, PlanStep, may_recall, plan_bump, plan_hand_off, plan_recall,
};
pub use money::{Currency, Money, format_amount};
pub use names::{StatusKey, WorkflowName};
pub use order::*;
pub use payment::{
    NoPaymentMethod, Payment, PaymentError, PaymentMethod, PaymentMethods, PaymentRequest,
    PaymentStatus, PaymentStep, may_mark_order_paid, may_mark_paid, may_refund, plan_payment,
};
pub use review::{ReviewError, check_review};
pub use role::Role;
pub use store::{
    Fulfilments, Intake, Opening, OpeningHours, Reopening, StoreHours, StoreStatus, StoreZone,
    TimeOfDay, ordering_at,
};
pub use text::UnsafeText;
pub use workflow::{
    State, TransitionDenied, TransitionRule, Workflow, WorkflowError, WorkflowProblem,
};
