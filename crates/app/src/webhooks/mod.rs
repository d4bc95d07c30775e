//! Webhooks: a store's owner registers HTTPS (or HTTP) endpoints that get
//! the store's order events, signed as Standard Webhooks specifies. The
//! endpoints and their delivery log are managed here (owners and platform
//! admins; the store's other staff 403, anyone else 404); delivering is the
//! [`WebhookWorker`]'s, an outbox follower of the event log.
//!
//! Event types are the event kinds under `order.` (`order.created`,
//! `order.status_changed`, ...: [`EVENT_TYPES`]); an endpoint takes a list
//! of them or `["*"]` for all.

mod delivery;
pub mod guard;
pub mod signing;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use ordertrack_domain::{DeliveryId, EventKind, Role, WebhookId};
use ordertrack_store::{
    AttemptOutcome, CommitListener, LogEntry, NewWebhook, StoreRecord, Webhook, WebhookDelivery,
};
use tokio::sync::Notify;

pub(crate) use delivery::describe;
pub use delivery::{WebhookWorker, WorkerHandle};

use crate::outbox::{Outcome, OutcomeCounts};
use crate::{App, AppError, Caller, ErrorCode};

/// Every event type an endpoint may ask for, with the kind it names.
pub const EVENT_TYPES: &[(&str, EventKind)] = &[
    ("order.created", EventKind::OrderCreated),
    ("order.status_changed", EventKind::StatusChanged),
    ("order.item_status_changed", EventKind::ItemStatusChanged),
    ("order.note_added", EventKind::NoteAdded),
    ("order.cancelled", EventKind::OrderCancelled),
    ("order.payment_changed", EventKind::PaymentChanged),
];

/// All event types, as an endpoint's `events`.
pub const ALL_EVENTS: &str = "*";

/// The event type integrators see for an event kind.
pub fn event_type(kind: EventKind) -> &'static str {
    EVENT_TYPES
        .iter()
        .find(|(_, k)| *k == kind)
        .map_or("order.unknown", |(name, _)| name)
}

/// The event type of a kind as stored (`status_changed`).
pub fn event_type_of_stored(kind: &str) -> &'static str {
    EVENT_TYPES
        .iter()
        .find(|(_, k)| k.as_str() == kind)
        .map_or("order.unknown", |(name, _)| name)
}

/// Whether an endpoint asking for `events` gets events of `kind`.
pub fn wants(events: &[String], kind: EventKind) -> bool {
    let name = event_type(kind);
    events.iter().any(|e| e == ALL_EVENTS || e == name)
}

/// The retry schedule Standard Webhooks suggests: the delay before each
/// retry after a failed attempt (then the delivery is given up).
pub const DEFAULT_SCHEDULE: [Duration; 7] = [
    Duration::from_secs(5),
    Duration::from_secs(5 * 60),
    Duration::from_secs(30 * 60),
    Duration::from_secs(2 * 3600),
    Duration::from_secs(5 * 3600),
    Duration::from_secs(10 * 3600),
    Duration::from_secs(24 * 3600),
];

/// How long the old secret keeps signing after a rotation.
pub const ROTATION_OVERLAP: time::Duration = time::Duration::hours(24);

/// Longest endpoint URL, in bytes.
pub const MAX_URL_BYTES: usize = 2000;

/// Most endpoints a store may have.
pub const MAX_WEBHOOKS_PER_STORE: usize = 20;

/// How webhooks are delivered (the operator's settings).
#[derive(Debug, Clone)]
pub struct WebhookConfig {
    /// Deliver to loopback and private addresses too
    /// (`--webhooks-allow-private`): for a shop whose systems are on its
    /// own network, and for tests.
    pub allow_private: bool,
    /// Delays before each retry (jittered by up to a tenth either way).
    pub schedule: Vec<Duration>,
    /// How long an attempt may take before it counts as failed.
    pub timeout: Duration,
    /// How often the worker looks at the database even if nothing woke it
    /// (events committed by other instances, their retries).
    pub poll: Duration,
    /// How long delivered and given-up jobs are kept before the worker
    /// deletes them (`--outbox-retention-days`).
    pub retention: Duration,
}

impl Default for WebhookConfig {
    fn default() -> Self {
        WebhookConfig {
            allow_private: false,
            schedule: DEFAULT_SCHEDULE.to_vec(),
            timeout: Duration::from_secs(10),
            poll: Duration::from_secs(5),
            retention: crate::outbox::DEFAULT_RETENTION,
        }
    }
}

/// What the use cases and the worker share: the settings and the worker's
/// doorbell.
pub(crate) struct Webhooks {
    pub(crate) config: WebhookConfig,
    /// Rung on every commit and on every change of endpoints.
    pub(crate) wake: Notify,
    /// The endpoints changed (on this instance): reread them.
    pub(crate) changed: AtomicBool,
    /// Attempts made by this instance, by outcome (for `/metrics`).
    pub(crate) outcomes: OutcomeCounts<AttemptOutcome>,
}

impl Outcome for AttemptOutcome {
    const LABELS: [&'static str; 4] = ["delivered", "retried", "gave_up", "endpoint_gone"];
    fn index(&self) -> usize {
        match self {
            AttemptOutcome::Delivered => 0,
            AttemptOutcome::RetryAt(_) => 1,
            AttemptOutcome::GaveUp => 2,
            AttemptOutcome::EndpointGone => 3,
        }
    }
}

impl Webhooks {
    pub(crate) fn new(config: WebhookConfig) -> Arc<Self> {
        Arc::new(Webhooks {
            config,
            wake: Notify::new(),
            changed: AtomicBool::new(true),
            outcomes: OutcomeCounts::default(),
        })
    }

    fn endpoints_changed(&self) {
        self.changed.store(true, Ordering::Release);
        self.wake.notify_one();
    }
}

/// A commit listener that passes every batch on and wakes the webhook
/// worker: new events are delivered at once, not at the next poll.
pub struct WakeOnCommit {
    inner: Arc<dyn CommitListener>,
    webhooks: Arc<Webhooks>,
}

impl CommitListener for WakeOnCommit {
    fn committed(&self, events: &[LogEntry]) {
        self.inner.committed(events);
        if events.iter().any(|e| e.order_event().is_some()) {
            self.webhooks.wake.notify_one();
        }
    }
}

/// An endpoint as its owner describes it.
#[derive(Debug, Clone)]
pub struct WebhookInput {
    pub url: String,
    pub events: Vec<String>,
    /// Default: enabled.
    pub enabled: Option<bool>,
}

impl App {
    /// The store `slug` as its webhooks' manager sees it: owners and
    /// platform admins; other staff 403, anyone else 404.
    async fn webhook_store(&self, caller: &Caller, slug: &str) -> Result<StoreRecord, AppError> {
        let store = self.store_by_slug(slug).await?;
        let role = self
            .staff_role(caller, &store)
            .map_err(|_| AppError::NotFound("store"))?;
        if !matches!(role, Role::Owner | Role::Admin) {
            return Err(AppError::Forbidden("only owners manage webhooks".into()));
        }
        Ok(store)
    }

    /// The store's endpoint `id`, for its manager.
    async fn webhook_of(
        &self, caller: &Caller, slug: &str, id: WebhookId,
    ) -> Result<(StoreRecord, Webhook), AppError> {
        let store = self.webhook_store(caller, slug).await?;
        let webhook = self
            .repo
            .webhooks(store.id)
            .await?
            .into_iter()
            .find(|w| w.id == id)
            .ok_or(AppError::NotFound("webhook"))?;
        Ok((store, webhook))
    }

    /// Adds an endpoint to the store: its URL must be http(s) and resolve
    /// only to public addresses (unless the operator allows private ones);
    /// its events known types or `["*"]`. The answer carries its secret.
    pub async fn create_webhook(
        &self, caller: &Caller, slug: &str, input: WebhookInput,
    ) -> Result<Webhook, AppError> {
        let store = self.webhook_store(caller, slug).await?;
        let events = check_events(input.events)?;
        let url = self.check_url(&input.url).await?;
        if self.repo.webhooks(store.id).await?.len() >= MAX_WEBHOOKS_PER_STORE {
            return Err(AppError::conflict(
                ErrorCode::TooManyWebhooks,
                format!("a store has at most {MAX_WEBHOOKS_PER_STORE} webhooks"),
            ));
        }
        let webhook = self
            .repo
            .create_webhook(NewWebhook {
                store_id: store.id,
                url,
                events,
                enabled: input.enabled.unwrap_or(true),
                secret: signing::new_secret(),
                created_at: crate::now(),
            })
            .await?;
        self.webhooks.endpoints_changed();
        Ok(webhook)
    }

    /// The store's endpoints, oldest first.
    pub async fn webhooks(&self, caller: &Caller, slug: &str) -> Result<Vec<Webhook>, AppError> {
        let store = self.webhook_store(caller, slug).await?;
        Ok(self.repo.webhooks(store.id).await?)
    }

    /// Deletes an endpoint and its delivery log; nothing more is sent to it.
    pub async fn delete_webhook(
        &self, caller: &Caller, slug: &str, id: WebhookId,
    ) -> Result<(), AppError> {
        let store = self.webhook_store(caller, slug).await?;
        if !self.repo.delete_webhook(store.id, id).await? {
            return Err(AppError::NotFound("webhook"));
        }
        self.webhooks.endpoints_changed();
        Ok(())
    }

    /// Gives an endpoint a new secret; the old one goes on signing (a
    /// second signature) for [`ROTATION_OVERLAP`].
    pub async fn rotate_webhook_secret(
        &self, caller: &Caller, slug: &str, id: WebhookId,
    ) -> Result<Webhook, AppError> {
        let store = self.webhook_store(caller, slug).await?;
        let rotated = self
            .repo
            .rotate_webhook_secret(
                store.id,
                id,
                signing::new_secret(),
                crate::now() + ROTATION_OVERLAP,
            )
            .await?
            .ok_or(AppError::NotFound("webhook"))?;
        self.webhooks.endpoints_changed();
        Ok(rotated)
    }

    /// An endpoint's delivery log, newest first (at most `limit`, 1–100).
    pub async fn webhook_deliveries(
        &self, caller: &Caller, slug: &str, id: WebhookId, limit: Option<u32>,
    ) -> Result<Vec<WebhookDelivery>, AppError> {
        let (_, webhook) = self.webhook_of(caller, slug, id).await?;
        let limit = limit.unwrap_or(50).clamp(1, 100);
        Ok(self.repo.webhook_deliveries(webhook.id, limit).await?)
    }

    /// Sends a delivery again now, whatever its state (one more attempt;
    /// a failing one goes on with what is left of the retry schedule).
    pub async fn retry_webhook_delivery(
        &self, caller: &Caller, slug: &str, id: WebhookId, delivery: DeliveryId,
    ) -> Result<WebhookDelivery, AppError> {
        let (_, webhook) = self.webhook_of(caller, slug, id).await?;
        let retried = self
            .repo
            .retry_webhook_delivery(webhook.id, delivery, crate::now())
            .await?
            .ok_or(AppError::NotFound("delivery"))?;
        self.webhooks.endpoints_changed();
        Ok(retried)
    }

    /// The URL as stored, if it may get webhooks.
    async fn check_url(&self, url: &str) -> Result<String, AppError> {
        let invalid = |message: String| AppError::invalid(ErrorCode::InvalidWebhookUrl, message);
        if url.len() > MAX_URL_BYTES {
            return Err(invalid(format!("url is longer than {MAX_URL_BYTES} bytes")));
        }
        let mut parsed =
            reqwest::Url::parse(url.trim()).map_err(|e| invalid(format!("url: {e}")))?;
        if !matches!(parsed.scheme(), "http" | "https") {
            return Err(invalid("url must be http:// or https://".into()));
        }
        let host = parsed
            .host_str()
            .ok_or_else(|| invalid("url has no host".into()))?
            .to_owned();
        let port = parsed
            .port_or_known_default()
            .ok_or_else(|| invalid("url has no port".into()))?;
        parsed.set_fragment(None);
        guard::resolve(&host, port, self.webhooks.allow_private())
            .await
            .map_err(|refusal| match refusal {
                guard::Refusal::NotPublic { .. } => {
                    AppError::invalid(ErrorCode::WebhookAddressRefused, refusal.to_string())
                }
                guard::Refusal::Unresolved { .. } => invalid(refusal.to_string()),
            })?;
        Ok(parsed.to_string())
    }
}

/// The events an endpoint asks for: known types, or `*` alone.
fn check_events(events: Vec<String>) -> Result<Vec<String>, AppError> {
    let invalid = |message: String| AppError::invalid(ErrorCode::InvalidWebhookEvents, message);
    if events.is_empty() {
        return Err(invalid(
            "events must name at least one event type, or \"*\"".into(),
        ));
    }
    let mut checked: Vec<String> = Vec::with_capacity(events.len());
    for event in events {
        if event != ALL_EVENTS && !EVENT_TYPES.iter().any(|(name, _)| *name == event) {
            let known: Vec<&str> = EVENT_TYPES.iter().map(|(name, _)| *name).collect();
            return Err(invalid(format!(
                "unknown event type `{}`; known: {} (or \"*\")",
                event.chars().take(60).collect::<String>(),
                known.join(", ")
            )));
        }
        if !checked.contains(&event) {
            checked.push(event);
        }
    }
    if checked.len() > 1 && checked.iter().any(|e| e == ALL_EVENTS) {
        return Err(invalid(
            "\"*\" stands alone: it means every event type".into(),
        ));
    }
    Ok(checked)
}

/// The webhooks of one instance: the operator's settings and the worker's
/// doorbell, rung by the store's commit listener ([`listener`](Self::listener))
/// and by changes of endpoints. Given to [`App::with_webhooks`].
#[derive(Clone)]
pub struct WebhookRuntime(pub(crate) Arc<Webhooks>);

impl WebhookRuntime {
    /// A runtime with these settings.
    pub fn new(config: WebhookConfig) -> Self {
        WebhookRuntime(Webhooks::new(config))
    }

    /// This instance's delivery attempts by outcome since it started:
    /// `delivered`, `retried`, `gave_up`, `endpoint_gone`.
    pub fn delivery_outcomes(&self) -> [(&'static str, u64); 4] {
        self.0.outcomes.snapshot()
    }

    /// `inner`, waking this runtime's worker on every commit of order
    /// events too: the listener to open the store with.
    pub fn listener(&self, inner: Arc<dyn CommitListener>) -> Arc<dyn CommitListener> {
        Arc::new(WakeOnCommit {
            inner,
            webhooks: self.0.clone(),
        })
    }

    fn endpoints_changed(&self) {
        self.0.endpoints_changed();
    }

    fn allow_private(&self) -> bool {
        self.0.config.allow_private
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_kind_has_a_distinct_dotted_name() {
        for (name, kind) in EVENT_TYPES {
            assert_eq!(event_type(*kind), *name);
            assert_eq!(event_type_of_stored(kind.as_str()), *name);
            assert_eq!(
                *name,
                format!("order.{}", kind.as_str().trim_start_matches("order_"))
            );
        }
    }

    #[test]
    fn events_are_known_types_or_everything() {
        assert!(check_events(vec![]).is_err());
        assert!(check_events(vec!["order.eaten".into()]).is_err());
        assert!(check_events(vec!["*".into(), "order.created".into()]).is_err());
        assert_eq!(
            check_events(vec!["order.created".into(), "order.created".into()]).ok(),
            Some(vec!["order.created".to_owned()])
        );
        assert!(wants(&["*".to_owned()], EventKind::PaymentChanged));
        assert!(!wants(
            &["order.created".to_owned()],
            EventKind::PaymentChanged
        ));
    }
}
