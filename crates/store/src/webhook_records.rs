//! Records of webhooks: a store's endpoints, their deliveries (one per
//! endpoint and event, with its retry state) and what the delivery worker
//! hands back to the store.

use ordertrack_domain::{DeliveryId, StoreId, WebhookId};
use time::OffsetDateTime;

/// An endpoint to add to a store (the application has checked its URL and
/// events and made its secret).
#[derive(Debug, Clone)]
pub struct NewWebhook {
    pub store_id: StoreId,
    pub url: String,
    /// Event type names (`order.created`, ...), or `*` alone for all.
    pub events: Vec<String>,
    pub enabled: bool,
    /// `whsec_` and the base64 of the signing key.
    pub secret: String,
    pub created_at: OffsetDateTime,
}

/// A store's webhook endpoint as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Webhook {
    pub id: WebhookId,
    pub store_id: StoreId,
    pub url: String,
    pub events: Vec<String>,
    pub enabled: bool,
    pub secret: String,
    /// The secret before the last rotation, which still signs until
    /// [`previous_secret_until`](Self::previous_secret_until).
    pub previous_secret: Option<String>,
    pub previous_secret_until: Option<OffsetDateTime>,
    /// Why delivery turned the endpoint off (it answered 410 Gone).
    pub disabled_reason: Option<String>,
    /// The event log's position when the endpoint was added: it gets the
    /// events after it.
    pub after_event: i64,
    pub created_at: OffsetDateTime,
}

impl Webhook {
    /// The secrets that sign a delivery at `now`: the current one, and the
    /// previous one while it is still honoured.
    pub fn signing_secrets(&self, now: OffsetDateTime) -> Vec<&str> {
        let mut secrets = vec![self.secret.as_str()];
        if let (Some(previous), Some(until)) = (&self.previous_secret, self.previous_secret_until)
            && until > now
        {
            secrets.push(previous);
        }
        secrets
    }
}

/// Where a delivery stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum DeliveryState {
    /// Not delivered yet: due at its `next_attempt_at`.
    Pending,
    /// The endpoint answered 2xx.
    Delivered,
    /// Given up: every retry failed, or the endpoint answered 410 Gone.
    Failed,
}

impl DeliveryState {
    /// The stored (and shown) name.
    pub fn as_str(self) -> &'static str {
        match self {
            DeliveryState::Pending => "pending",
            DeliveryState::Delivered => "delivered",
            DeliveryState::Failed => "failed",
        }
    }

    /// The state a stored name stands for.
    pub fn parse(text: &str) -> Option<Self> {
        match text {
            "pending" => Some(DeliveryState::Pending),
            "delivered" => Some(DeliveryState::Delivered),
            "failed" => Some(DeliveryState::Failed),
            _ => None,
        }
    }
}

/// One event's delivery to one endpoint, with its last attempt.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WebhookDelivery {
    pub id: DeliveryId,
    pub webhook_id: WebhookId,
    /// The event's position in the log (its `webhook-id`).
    pub event_id: i64,
    /// The event's kind as stored (`status_changed`, ...).
    pub event_kind: String,
    pub state: DeliveryState,
    /// Attempts made so far.
    pub attempts: i64,
    /// The last attempt's HTTP status, if an answer came.
    pub http_status: Option<i64>,
    /// How long the last attempt took.
    pub duration_ms: Option<i64>,
    /// Why the last attempt failed without an answer (timeout, refused).
    pub error: Option<String>,
    /// When a pending delivery is due.
    pub next_attempt_at: Option<OffsetDateTime>,
    pub last_attempt_at: Option<OffsetDateTime>,
    pub created_at: OffsetDateTime,
}

/// A delivery the worker has claimed, with its endpoint.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClaimedDelivery {
    pub delivery: WebhookDelivery,
    pub webhook: Webhook,
}

/// The deliveries made for the events after the cursor's position up to
/// `upto`, written with the cursor's move in one transaction.
#[derive(Debug, Clone)]
pub struct WebhookEnqueue {
    /// Where the cursor must still be (another instance may have moved it).
    pub after: i64,
    /// Where it moves to.
    pub upto: i64,
    /// `(endpoint, event)` pairs, due at once.
    pub deliveries: Vec<(WebhookId, i64)>,
    pub at: OffsetDateTime,
}

/// Why delivery turned an endpoint off: it answered 410 Gone.
pub const GONE_REASON: &str = "the endpoint answered 410 Gone";

/// How an attempt ended, and so what becomes of its delivery.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AttemptOutcome {
    /// 2xx: delivered.
    Delivered,
    /// Failed; try again at this time.
    RetryAt(OffsetDateTime),
    /// Failed, and the retry schedule is spent.
    GaveUp,
    /// 410 Gone: given up, and the endpoint turned off.
    EndpointGone,
}

/// One attempt's result, to record on its delivery.
#[derive(Debug, Clone)]
pub struct WebhookAttempt {
    pub delivery: DeliveryId,
    pub at: OffsetDateTime,
    pub http_status: Option<u16>,
    pub duration_ms: i64,
    pub error: Option<String>,
    pub outcome: AttemptOutcome,
}

impl WebhookAttempt {
    /// The delivery's state after this attempt, and when it is due next.
    pub fn next_state(&self) -> (DeliveryState, Option<OffsetDateTime>) {
        match self.outcome {
            AttemptOutcome::Delivered => (DeliveryState::Delivered, None),
            AttemptOutcome::RetryAt(at) => (DeliveryState::Pending, Some(at)),
            AttemptOutcome::GaveUp | AttemptOutcome::EndpointGone => (DeliveryState::Failed, None),
        }
    }
}
