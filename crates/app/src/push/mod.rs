//! Web Push to customers (RFC 8030, payloads encrypted as RFC 8291
//! `aes128gcm`, the server identified by VAPID, RFC 8292): a customer opts
//! in from the order page or My Orders, their browser's push subscription
//! is kept for their account — or, through a tracking link, for that one
//! order — and the [`PushWorker`], an outbox follower of the event log,
//! sends a notification when an order reaches one of
//! [`DEFAULT_NOTIFY_STATES`]. A subscription the push service says is gone
//! (404, 410) is removed.

mod vapid;
mod worker;

use std::sync::Arc;
use std::time::Duration;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use ordertrack_store::{
    CommitListener, LogEntry, NewPushSubscription, PushOutcome, PushOwner, PushSubscription,
};
use tokio::sync::Notify;

pub use vapid::{VapidError, VapidKey};
pub use worker::{PushWorker, PushWorkerHandle};

use crate::outbox::{Outcome, OutcomeCounts};
use crate::webhooks::guard;
use crate::{App, AppError, Caller, ErrorCode};

/// The states whose arrival notifies a customer (status keys of the
/// built-in workflows; a state another workflow names otherwise does not).
pub const DEFAULT_NOTIFY_STATES: &[&str] = &[
    "confirmed",
    "ready",
    "out_for_delivery",
    "delivered",
    "cancelled",
];

/// Retry delays after a failed send (jittered by up to a tenth either way);
/// after the last the notification is given up — it is stale by then.
pub const DEFAULT_SCHEDULE: [Duration; 4] = [
    Duration::from_secs(5),
    Duration::from_secs(60),
    Duration::from_secs(10 * 60),
    Duration::from_secs(60 * 60),
];

/// Longest endpoint URL, in bytes.
pub const MAX_ENDPOINT_BYTES: usize = 2000;

/// Most subscriptions one owner (an account, an order) may hold.
pub const MAX_SUBSCRIPTIONS_PER_OWNER: usize = 20;

/// How Web Push is sent (the operator's settings).
#[derive(Clone)]
pub struct PushConfig {
    /// The VAPID key that signs every request; `None`: Web Push is off.
    pub vapid: Option<Arc<VapidKey>>,
    /// The contact the push services see in the VAPID token
    /// (`mailto:…` or `https://…`).
    pub subject: String,
    /// Send to loopback and private addresses too (`--push-allow-private`,
    /// for tests and push services on the operator's own network).
    pub allow_private: bool,
    /// Delays before each retry.
    pub schedule: Vec<Duration>,
    /// How long a send may take before it counts as failed.
    pub timeout: Duration,
    /// How often the worker looks at the database even if nothing woke it.
    pub poll: Duration,
    /// How long delivered and given-up jobs are kept before the worker
    /// deletes them (`--outbox-retention-days`).
    pub retention: Duration,
}

impl Default for PushConfig {
    fn default() -> Self {
        PushConfig {
            vapid: None,
            subject: "mailto:admin@localhost".into(),
            allow_private: false,
            schedule: DEFAULT_SCHEDULE.to_vec(),
            timeout: Duration::from_secs(10),
            poll: Duration::from_secs(5),
            retention: crate::outbox::DEFAULT_RETENTION,
        }
    }
}

impl std::fmt::Debug for PushConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PushConfig")
            .field("vapid", &self.vapid.as_ref().map(|key| key.public_key()))
            .field("subject", &self.subject)
            .field("allow_private", &self.allow_private)
            .finish_non_exhaustive()
    }
}

/// What the use cases and the worker share.
pub(crate) struct Push {
    pub(crate) config: PushConfig,
    /// Rung on every commit of order events.
    pub(crate) wake: Notify,
    pub(crate) outcomes: OutcomeCounts<PushOutcome>,
}

/// `removed`: the push service said the subscription is gone (404/410),
/// so it was deleted.
impl Outcome for PushOutcome {
    const LABELS: [&'static str; 4] = ["sent", "retried", "gave_up", "removed"];
    fn index(&self) -> usize {
        match self {
            PushOutcome::Sent => 0,
            PushOutcome::RetryAt(_) => 1,
            PushOutcome::GaveUp => 2,
            PushOutcome::SubscriptionGone => 3,
        }
    }
}

/// Web Push of one instance: the operator's settings and the worker's
/// doorbell, rung by the store's commit listener
/// ([`listener`](Self::listener)). Given to [`App::with_push`].
#[derive(Clone)]
pub struct PushRuntime(pub(crate) Arc<Push>);

impl PushRuntime {
    /// A runtime with these settings.
    pub fn new(config: PushConfig) -> Self {
        PushRuntime(Arc::new(Push {
            config,
            wake: Notify::new(),
            outcomes: OutcomeCounts::default(),
        }))
    }

    /// `(outcome, attempts)` for each outcome, as `/metrics` names them.
    pub fn outcomes(&self) -> [(&'static str, u64); 4] {
        self.0.outcomes.snapshot()
    }

    /// Whether Web Push is on (a VAPID key is set).
    pub fn enabled(&self) -> bool {
        self.0.config.vapid.is_some()
    }

    /// `inner`, waking this runtime's worker on every commit of order
    /// events too: the listener to open the store with.
    pub fn listener(&self, inner: Arc<dyn CommitListener>) -> Arc<dyn CommitListener> {
        Arc::new(WakeOnCommit {
            inner,
            push: self.0.clone(),
        })
    }
}

struct WakeOnCommit {
    inner: Arc<dyn CommitListener>,
    push: Arc<Push>,
}

impl CommitListener for WakeOnCommit {
    fn committed(&self, events: &[LogEntry]) {
        self.inner.committed(events);
        if events.iter().any(|e| e.order_event().is_some()) {
            self.push.wake.notify_one();
        }
    }
}

/// A browser's push subscription as `PushManager.subscribe` gives it.
#[derive(Debug, Clone)]
pub struct SubscriptionInput {
    pub endpoint: String,
    /// The browser's P-256 public key (65 bytes, uncompressed), base64url.
    pub p256dh: String,
    /// The browser's auth secret (16 bytes), base64url.
    pub auth: String,
}

/// Who subscribes: a signed-in customer for their account, or anyone with
/// an order's tracking link for that order.
#[derive(Debug, Clone, Copy)]
pub enum Subscriber<'a> {
    Account(&'a Caller),
    Tracking(&'a str),
}

impl App {
    /// Web Push as the operator set it up; the runtime's listener should be
    /// the store's, so commits wake its worker.
    pub fn with_push(mut self, push: PushRuntime) -> Self {
        self.push = push;
        self
    }

    /// The VAPID public key browsers subscribe with (base64url of the
    /// uncompressed point); 404 while Web Push is off.
    pub fn push_public_key(&self) -> Result<String, AppError> {
        self.push
            .0
            .config
            .vapid
            .as_ref()
            .map(|key| key.public_key())
            .ok_or(AppError::NotFound("web push"))
    }

    /// Whose a subscription of `subscriber` is (a tracking link that names
    /// no order is 404).
    async fn push_owner(&self, subscriber: Subscriber<'_>) -> Result<PushOwner, AppError> {
        match subscriber {
            Subscriber::Account(caller) => Ok(PushOwner::User(caller.user.id)),
            Subscriber::Tracking(token) => {
                let (found, _) = self.load_tracked(token).await?;
                Ok(PushOwner::Order(found.order.id))
            }
        }
    }

    /// Saves a subscription (the same endpoint again replaces its keys).
    /// Its endpoint must be an https URL (http only where private
    /// addresses are allowed) whose host resolves to public addresses; its
    /// keys a P-256 point and a 16-byte secret.
    pub async fn subscribe_push(
        &self, subscriber: Subscriber<'_>, input: SubscriptionInput,
    ) -> Result<PushSubscription, AppError> {
        self.push_public_key()?;
        let owner = self.push_owner(subscriber).await?;
        let endpoint = self.check_endpoint(&input.endpoint).await?;
        check_keys(&input.p256dh, &input.auth)?;
        let existing = self.repo.push_subscriptions(owner).await?;
        if existing.len() >= MAX_SUBSCRIPTIONS_PER_OWNER
            && !existing.iter().any(|s| s.endpoint == endpoint)
        {
            return Err(AppError::invalid(
                ErrorCode::InvalidPushSubscription,
                format!("at most {MAX_SUBSCRIPTIONS_PER_OWNER} browsers may be subscribed"),
            ));
        }
        Ok(self
            .repo
            .save_push_subscription(NewPushSubscription {
                owner,
                endpoint,
                p256dh: input.p256dh,
                auth: input.auth,
                created_at: crate::now(),
            })
            .await?)
    }

    /// Removes a subscription (opting out): nothing more is sent to it,
    /// pending notifications included. Opting out twice is no error (a
    /// browser may have lost track); whether one was removed is returned.
    pub async fn unsubscribe_push(
        &self, subscriber: Subscriber<'_>, endpoint: &str,
    ) -> Result<bool, AppError> {
        let owner = self.push_owner(subscriber).await?;
        Ok(self
            .repo
            .delete_push_subscription(owner, endpoint.trim().to_owned())
            .await?)
    }

    /// The endpoint as stored, if pushes may go there.
    async fn check_endpoint(&self, endpoint: &str) -> Result<String, AppError> {
        let invalid =
            |message: String| AppError::invalid(ErrorCode::InvalidPushSubscription, message);
        if endpoint.len() > MAX_ENDPOINT_BYTES {
            return Err(invalid(format!(
                "endpoint is longer than {MAX_ENDPOINT_BYTES} bytes"
            )));
        }
        let parsed =
            reqwest::Url::parse(endpoint.trim()).map_err(|e| invalid(format!("endpoint: {e}")))?;
        let allow_private = self.push.0.config.allow_private;
        // Push services are reached over HTTPS (RFC 8030 §8); plain HTTP
        // only where the operator allows private addresses (tests, LANs).
        match parsed.scheme() {
            "https" => {}
            "http" if allow_private => {}
            _ => return Err(invalid("endpoint must be an https:// URL".into())),
        }
        if !parsed.username().is_empty() || parsed.password().is_some() {
            return Err(invalid("endpoint must not carry credentials".into()));
        }
        let host = parsed
            .host_str()
            .ok_or_else(|| invalid("endpoint has no host".into()))?
            .to_owned();
        let port = parsed
            .port_or_known_default()
            .ok_or_else(|| invalid("endpoint has no port".into()))?;
        guard::resolve(&host, port, allow_private)
            .await
            .map_err(|refusal| match refusal {
                guard::Refusal::NotPublic { .. } => {
                    AppError::invalid(ErrorCode::PushAddressRefused, refusal.to_string())
                }
                guard::Refusal::Unresolved { .. } => invalid(refusal.to_string()),
            })?;
        Ok(parsed.to_string())
    }
}

/// The subscription's keys: a P-256 point and a 16-byte auth secret.
fn check_keys(p256dh: &str, auth: &str) -> Result<(), AppError> {
    let invalid = |message: &str| AppError::invalid(ErrorCode::InvalidPushSubscription, message);
    let point = decode_base64url(p256dh).ok_or_else(|| invalid("keys.p256dh is not base64url"))?;
    if p256::PublicKey::from_sec1_bytes(&point).is_err() || point.len() != 65 {
        return Err(invalid(
            "keys.p256dh is not an uncompressed P-256 public key",
        ));
    }
    let secret = decode_base64url(auth).ok_or_else(|| invalid("keys.auth is not base64url"))?;
    if secret.len() != 16 {
        return Err(invalid("keys.auth must be 16 bytes"));
    }
    Ok(())
}

/// base64url, padded or not (browsers send it unpadded).
pub(crate) fn decode_base64url(text: &str) -> Option<Vec<u8>> {
    URL_SAFE_NO_PAD
        .decode(text.trim().trim_end_matches('='))
        .ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_must_be_a_p256_point_and_a_16_byte_secret() {
        let key = VapidKey::generate();
        let point = key.public_key();
        let auth = URL_SAFE_NO_PAD.encode([7u8; 16]);
        assert!(check_keys(&point, &auth).is_ok());
        assert!(check_keys(&point, &URL_SAFE_NO_PAD.encode([7u8; 15])).is_err());
        assert!(check_keys("not base64!", &auth).is_err());
        assert!(check_keys(&URL_SAFE_NO_PAD.encode([4u8; 65]), &auth).is_err());
    }
}
