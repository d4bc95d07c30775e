//! Records of Web Push: customers' push subscriptions, the jobs made for
//! them from the event log (one per subscription and event, with its retry
//! state) and what the push worker hands back to the store.

use ordertrack_domain::{OrderId, UserId};
use time::OffsetDateTime;

/// Whose a push subscription is: a customer account (every order of
/// theirs), or one order watched through its tracking link.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PushOwner {
    User(UserId),
    Order(OrderId),
}

impl PushOwner {
    /// `(user_id, order_id)` as stored: exactly one is set.
    pub fn columns(self) -> (Option<i64>, Option<i64>) {
        match self {
            PushOwner::User(user) => (Some(user.get()), None),
            PushOwner::Order(order) => (None, Some(order.get())),
        }
    }
}

/// A subscription to save (the application has checked its endpoint and
/// keys). Saving replaces the owner's subscription with the same endpoint.
#[derive(Debug, Clone)]
pub struct NewPushSubscription {
    pub owner: PushOwner,
    /// The push service's URL for this browser.
    pub endpoint: String,
    /// The browser's P-256 public key (uncompressed point), base64url.
    pub p256dh: String,
    /// The browser's 16-byte auth secret, base64url.
    pub auth: String,
    pub created_at: OffsetDateTime,
}

/// A push subscription as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PushSubscription {
    pub id: i64,
    pub owner: PushOwner,
    pub endpoint: String,
    pub p256dh: String,
    pub auth: String,
    /// The event log's position when it was made: it gets the events after it.
    pub after_event: i64,
    pub created_at: OffsetDateTime,
}

/// An event that notifies: the push jobs of the subscriptions of its order
/// and of its order's customer are made from it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PushEvent {
    pub event_id: i64,
    pub order_id: OrderId,
    pub customer_id: UserId,
}

/// The jobs made for the events after the cursor up to `upto`, written
/// with the cursor's move in one transaction.
#[derive(Debug, Clone)]
pub struct PushEnqueue {
    /// Where the cursor must still be (another instance may have moved it).
    pub after: i64,
    /// Where it moves to.
    pub upto: i64,
    /// The events in `(after, upto]` that notify.
    pub events: Vec<PushEvent>,
    pub at: OffsetDateTime,
}

/// A job the worker has claimed, with its subscription.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PushJob {
    pub id: i64,
    pub event_id: i64,
    /// Attempts made before this one.
    pub attempts: i64,
    pub subscription: PushSubscription,
}

/// How a push attempt ended, and so what becomes of its job.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PushOutcome {
    /// The push service took it (2xx).
    Sent,
    /// Failed; try again at this time.
    RetryAt(OffsetDateTime),
    /// Failed, and the retries are spent.
    GaveUp,
    /// 404 or 410: the subscription is gone; it is removed with its jobs.
    SubscriptionGone,
}

/// One attempt's result, to record on its job.
#[derive(Debug, Clone)]
pub struct PushAttempt {
    pub job: i64,
    pub at: OffsetDateTime,
    pub http_status: Option<u16>,
    pub error: Option<String>,
    pub outcome: PushOutcome,
}

impl PushAttempt {
    /// The job's state after this attempt (`pending`, `sent`, `failed`) and
    /// when it is due next; `None` when the subscription goes.
    pub fn next_state(&self) -> Option<(&'static str, Option<OffsetDateTime>)> {
        match self.outcome {
            PushOutcome::Sent => Some(("sent", None)),
            PushOutcome::RetryAt(at) => Some(("pending", Some(at))),
            PushOutcome::GaveUp => Some(("failed", None)),
            PushOutcome::SubscriptionGone => None,
        }
    }
}
