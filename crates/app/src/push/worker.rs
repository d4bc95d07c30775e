//! The push worker: an outbox follower of the event log. It reads the
//! events after its cursor (kept in the database, so a restart goes on
//! where it stopped), writes one job per subscription of each notifying
//! event's customer and order and moves the cursor in the same
//! transaction; then it sends the jobs that are due — encrypted for the
//! browser (RFC 8291) and signed with the VAPID key (RFC 8292) — and
//! records every attempt: 2xx sent, 404 or 410 the subscription removed,
//! anything else (or no answer within the timeout) retried on the
//! schedule, then given up. Sending is at least once: a crash after a
//! send and before its record sends it again.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use ordertrack_domain::{EventKind, StoreId};
use ordertrack_store::{
    LogEntry, PushAttempt, PushEnqueue, PushEvent, PushJob, PushOutcome, PushOwner, Repository,
    StoreError, StoredEvent,
};
use serde::Serialize;
use time::OffsetDateTime;
use tokio::sync::watch;
use tokio::task::JoinHandle;
use web_push_native::WebPushBuilder;

use super::{DEFAULT_NOTIFY_STATES, Push, PushRuntime, VapidKey, decode_base64url};
use crate::outbox::Pruner;
use crate::webhooks::guard::{self, GuardedResolver};
use ordertrack_store::Outbox;

/// Events read from the log at a time.
const FOLLOW_BATCH: u32 = 500;
/// Jobs claimed (and sent at once) at a time.
const CLAIM_BATCH: u32 = 16;
/// How long a claim holds beyond the attempt's timeout.
const CLAIM_MARGIN: Duration = Duration::from_secs(20);
/// Shortest sleep between rounds.
const MIN_SLEEP: Duration = Duration::from_millis(20);
/// How long a push service keeps a notification for a browser that is
/// offline (the `TTL` header): an order's news is stale after a day.
const MESSAGE_TTL: Duration = Duration::from_secs(24 * 3600);

/// What the service worker gets (`crates/web/assets/sw-push.js`).
#[derive(Debug, Serialize)]
pub struct Payload {
    pub order_id: i64,
    pub number: String,
    pub status: String,
    pub status_label: String,
    /// The store's name.
    pub store: String,
    /// The order's page, a path on this server: the customer's own page
    /// for an account's subscription, the tracking page for a link's.
    pub url: String,
}

/// Whether an event tells the customer their order reached a state they
/// are notified of (corrections by the store do not).
pub fn notifies(event: &StoredEvent) -> bool {
    matches!(
        event.event.kind,
        EventKind::StatusChanged | EventKind::OrderCancelled
    ) && !event.event.correction
        && event
            .event
            .to
            .as_ref()
            .is_some_and(|to| DEFAULT_NOTIFY_STATES.contains(&to.as_str()))
}

/// Sends one instance's share of the notifications (see the module doc).
pub struct PushWorker {
    repo: Arc<dyn Repository>,
    push: Arc<Push>,
    key: Arc<VapidKey>,
    client: reqwest::Client,
    /// Store names, read once.
    stores: HashMap<StoreId, String>,
    pruner: Pruner,
}

/// A running worker; [`stop`](Self::stop) ends it.
pub struct PushWorkerHandle {
    stop: watch::Sender<bool>,
    task: JoinHandle<()>,
}

impl PushWorkerHandle {
    /// Stops the worker: it finishes the sends under way, then ends.
    pub async fn stop(self) {
        let _ = self.stop.send(true);
        let _ = self.task.await;
    }
}

impl PushWorker {
    /// Starts a worker over `repo` with `runtime`'s settings; `None` when
    /// Web Push is off (no VAPID key).
    pub fn spawn(repo: Arc<dyn Repository>, runtime: &PushRuntime) -> Option<PushWorkerHandle> {
        let push = runtime.0.clone();
        let key = push.config.vapid.clone()?;
        let client = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .no_proxy()
            .timeout(push.config.timeout)
            .user_agent(concat!("ordertrack-push/", env!("CARGO_PKG_VERSION")))
            .dns_resolver(Arc::new(GuardedResolver {
                allow_private: push.config.allow_private,
            }))
            .build()
            .unwrap_or_else(|error| {
                tracing::error!(%error, "push HTTP client; using the default one");
                reqwest::Client::new()
            });
        let worker = PushWorker {
            repo,
            pruner: Pruner::new(Outbox::Push, push.config.retention),
            push,
            key,
            client,
            stores: HashMap::new(),
        };
        let (stop, stopped) = watch::channel(false);
        let task = tokio::spawn(worker.run(stopped));
        Some(PushWorkerHandle { stop, task })
    }

    async fn run(mut self, mut stopped: watch::Receiver<bool>) {
        loop {
            if *stopped.borrow() {
                return;
            }
            self.pruner.maybe_prune(&*self.repo).await;
            let next = self.round().await.unwrap_or_else(|error| {
                tracing::warn!(%error, "push worker round failed; trying again");
                None
            });
            let mut sleep = self.push.config.poll;
            if let Some(next) = next {
                let until = next - OffsetDateTime::now_utc();
                sleep = sleep.min(until.try_into().unwrap_or(Duration::ZERO));
            }
            tokio::select! {
                _ = tokio::time::sleep(sleep.max(MIN_SLEEP)) => {}
                _ = self.push.wake.notified() => {}
                _ = stopped.changed() => return,
            }
        }
    }

    /// One round: follow the log, send what is due; when the next job is due.
    async fn round(&mut self) -> Result<Option<OffsetDateTime>, StoreError> {
        self.follow().await?;
        loop {
            let now = crate::now();
            match self.repo.next_push_attempt().await? {
                Some(next) if next <= now => {}
                next => return Ok(next),
            }
            let until = now + self.push.config.timeout + CLAIM_MARGIN;
            let claimed = self.repo.claim_push_jobs(now, until, CLAIM_BATCH).await?;
            if claimed.is_empty() {
                return Ok(Some(now + MIN_SLEEP));
            }
            let mut prepared = Vec::with_capacity(claimed.len());
            for job in claimed {
                let payload = self.prepare(&job).await;
                prepared.push((job, payload));
            }
            let attempts = prepared
                .into_iter()
                .map(|(job, payload)| self.attempt(job, payload));
            for attempt in futures::future::join_all(attempts).await {
                self.repo.record_push_attempt(attempt).await?;
            }
        }
    }

    /// Writes the jobs of the events after the cursor.
    async fn follow(&self) -> Result<(), StoreError> {
        let mut after = self.repo.push_cursor().await?;
        loop {
            let entries = self.repo.events_since(after, FOLLOW_BATCH).await?;
            let Some(upto) = entries.last().map(LogEntry::id) else {
                return Ok(());
            };
            let events = entries
                .iter()
                .filter_map(LogEntry::order_event)
                .filter(|event| notifies(event))
                .map(|event| PushEvent {
                    event_id: event.id,
                    order_id: event.event.order_id,
                    customer_id: event.event.customer_id,
                })
                .collect();
            let moved = self
                .repo
                .enqueue_push_jobs(PushEnqueue {
                    after,
                    upto,
                    events,
                    at: crate::now(),
                })
                .await?;
            // Another instance moved the cursor: it wrote these.
            if !moved || entries.len() < FOLLOW_BATCH as usize {
                return Ok(());
            }
            after = upto;
        }
    }

    /// The notification of a job, as JSON (what reading it needs from the
    /// store happens here, one job at a time; the sends then go at once).
    async fn prepare(&mut self, job: &PushJob) -> Result<Vec<u8>, String> {
        let failed = |what: &str, error: StoreError| format!("reading {what}: {error}");
        let entries = self
            .repo
            .events_since(job.event_id - 1, 1)
            .await
            .map_err(|e| failed("the event", e))?;
        let event = match entries.into_iter().next() {
            Some(LogEntry::Order(event)) if event.id == job.event_id => event,
            _ => return Err(format!("event {} is not in the log", job.event_id)),
        };
        let store_id = event.event.store_id;
        if !self.stores.contains_key(&store_id) {
            let store = self
                .repo
                .store(store_id)
                .await
                .map_err(|e| failed("the store", e))?;
            let name = store.map(|s| s.name).unwrap_or_default();
            self.stores.insert(store_id, name);
        }
        let order_id = event.event.order_id;
        let url = match job.subscription.owner {
            PushOwner::User(_) => format!("/orders/{order_id}"),
            PushOwner::Order(_) => {
                let order = self
                    .repo
                    .order(order_id)
                    .await
                    .map_err(|e| failed("the order", e))?
                    .ok_or_else(|| format!("order {order_id} is gone"))?;
                format!("/track/{}", order.tracking_token)
            }
        };
        let summary = &event.event.summary;
        let payload = Payload {
            order_id: order_id.get(),
            number: summary.number.clone(),
            status: summary.status.to_string(),
            status_label: summary.label.clone(),
            store: self.stores.get(&store_id).cloned().unwrap_or_default(),
            url,
        };
        serde_json::to_vec(&payload).map_err(|e| e.to_string())
    }

    /// Sends one job; what came of it.
    async fn attempt(&self, job: PushJob, payload: Result<Vec<u8>, String>) -> PushAttempt {
        let at = crate::now();
        let result = match payload {
            Ok(payload) => self.send(&job, payload).await,
            Err(error) => Err(error),
        };
        let attempts = job.attempts + 1;
        let retry = || match self.delay(attempts) {
            Some(delay) => PushOutcome::RetryAt(at + delay),
            None => PushOutcome::GaveUp,
        };
        let (http_status, error, outcome) = match result {
            Ok(status) if (200..300).contains(&status) => (Some(status), None, PushOutcome::Sent),
            Ok(status @ (404 | 410)) => (Some(status), None, PushOutcome::SubscriptionGone),
            Ok(status) => (Some(status), None, retry()),
            Err(error) => (None, Some(error), retry()),
        };
        self.push.outcomes.count(&outcome);
        tracing::debug!(
            job = job.id,
            event = job.event_id,
            attempts,
            ?http_status,
            ?error,
            ?outcome,
            "push attempt"
        );
        PushAttempt {
            job: job.id,
            at,
            http_status,
            error,
            outcome,
        }
    }

    /// Encrypts `payload` for the subscription, signs the request and
    /// posts it; the HTTP status the push service answered.
    async fn send(&self, job: &PushJob, payload: Vec<u8>) -> Result<u16, String> {
        let subscription = &job.subscription;
        let url = reqwest::Url::parse(&subscription.endpoint)
            .map_err(|e| format!("bad endpoint: {e}"))?;
        // An IP literal never goes through the resolver: check it here.
        if let Some(host) = url.host_str()
            && let Ok(ip) = host.trim_matches(|c| c == '[' || c == ']').parse()
            && !self.push.config.allow_private
            && !guard::is_public(ip)
        {
            return Err(format!("{ip} is not a public address"));
        }
        let point = decode_base64url(&subscription.p256dh).ok_or("bad p256dh")?;
        let browser_key = p256::PublicKey::from_sec1_bytes(&point).map_err(|e| e.to_string())?;
        let secret: [u8; 16] = decode_base64url(&subscription.auth)
            .and_then(|s| s.try_into().ok())
            .ok_or("bad auth secret")?;
        let endpoint: http::Uri = subscription
            .endpoint
            .parse()
            .map_err(|e| format!("bad endpoint: {e}"))?;
        let request =
            WebPushBuilder::new(endpoint, browser_key, web_push_native::Auth::from(secret))
                .with_valid_duration(MESSAGE_TTL)
                .build(payload)
                .map_err(|e| format!("encrypting: {e}"))?;
        let mut request = reqwest::Request::try_from(request).map_err(|e| e.to_string())?;
        let authorization = self
            .key
            .authorization(&url, &self.push.config.subject)
            .map_err(|e| format!("signing: {e}"))?;
        request.headers_mut().insert(
            reqwest::header::AUTHORIZATION,
            reqwest::header::HeaderValue::try_from(authorization).map_err(|e| e.to_string())?,
        );
        let response = self
            .client
            .execute(request)
            .await
            .map_err(|error| crate::webhooks::describe(&error))?;
        Ok(response.status().as_u16())
    }

    /// The delay before the retry after attempt number `attempts`.
    fn delay(&self, attempts: i64) -> Option<time::Duration> {
        crate::outbox::retry_delay(&self.push.config.schedule, attempts)
    }
}
