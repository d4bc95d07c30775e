//! The webhook worker: an outbox follower of the event log. It reads the
//! events after its cursor (kept in the database, so a restart goes on
//! where it stopped), writes one delivery per matching endpoint and moves
//! the cursor in the same transaction; then it sends each endpoint's
//! oldest pending delivery that is due — an endpoint never gets event n+1
//! before event n is delivered or given up — and records every attempt:
//! 2xx delivered, 410 given up and the endpoint turned off, anything else
//! (or no answer within the timeout) retried on the schedule, then given
//! up. Delivery is at least once: a crash after a send and before its
//! record sends it again, with the same `webhook-id`.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use ordertrack_store::{
    AttemptOutcome, ClaimedDelivery, LogEntry, Repository, StoredEvent, Webhook, WebhookAttempt,
    WebhookEnqueue,
};
use serde::Serialize;
use serde_json::value::RawValue;
use time::OffsetDateTime;
use tokio::sync::watch;

use super::guard::{self, GuardedResolver};
use super::{WebhookRuntime, Webhooks, event_type, signing, wants};
use crate::outbox::{FollowerHandle, Pruner, retry_delay};
use ordertrack_store::Outbox;

/// Events read from the log at a time.
const FOLLOW_BATCH: u32 = 500;
/// Deliveries claimed (and sent at once) at a time; each to another endpoint.
const CLAIM_BATCH: u32 = 16;
/// How long a claim holds beyond the attempt's timeout: a worker that died
/// mid-attempt lets its deliveries go after this.
const CLAIM_MARGIN: Duration = Duration::from_secs(20);
/// Shortest sleep between rounds, so a busy database is not hammered.
const MIN_SLEEP: Duration = Duration::from_millis(20);

/// The body of a delivery, as Standard Webhooks lays it out.
#[derive(Serialize)]
struct Body<'a> {
    #[serde(rename = "type")]
    kind: &'static str,
    #[serde(with = "time::serde::rfc3339")]
    timestamp: OffsetDateTime,
    /// The event as streams carry it: its `id`, then its public JSON.
    data: &'a RawValue,
}

/// Delivers one instance's share of the webhooks (see the module doc).
pub struct WebhookWorker {
    repo: Arc<dyn Repository>,
    webhooks: Arc<Webhooks>,
    client: reqwest::Client,
    /// The enabled endpoints, reread when they change and on every poll.
    endpoints: Vec<Webhook>,
    pruner: Pruner,
}

/// A running worker; [`stop`](FollowerHandle::stop) ends it.
pub type WorkerHandle = FollowerHandle;

impl WebhookWorker {
    /// Starts a worker over `repo` with `runtime`'s settings.
    pub fn spawn(repo: Arc<dyn Repository>, runtime: &WebhookRuntime) -> WorkerHandle {
        let webhooks = runtime.0.clone();
        let client = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .no_proxy()
            .timeout(webhooks.config.timeout)
            .user_agent(concat!("ordertrack-webhooks/", env!("CARGO_PKG_VERSION")))
            .dns_resolver(Arc::new(GuardedResolver {
                allow_private: webhooks.config.allow_private,
            }))
            .build()
            .unwrap_or_else(|error| {
                tracing::error!(%error, "webhook HTTP client; using the default one");
                reqwest::Client::new()
            });
        let worker = WebhookWorker {
            repo,
            pruner: Pruner::new(Outbox::Webhooks, webhooks.config.retention),
            webhooks,
            client,
            endpoints: Vec::new(),
        };
        FollowerHandle::spawn(|stopped| worker.run(stopped))
    }

    async fn run(mut self, mut stopped: watch::Receiver<bool>) {
        let mut last_poll = Instant::now();
        loop {
            if *stopped.borrow() {
                return;
            }
            self.pruner.maybe_prune(&*self.repo).await;
            let polled = last_poll.elapsed() >= self.webhooks.config.poll;
            if polled {
                last_poll = Instant::now();
            }
            let next = match self.round(polled).await {
                Ok(next) => next,
                Err(error) => {
                    tracing::warn!(%error, "webhook worker round failed; trying again");
                    None
                }
            };
            let mut sleep = self
                .webhooks
                .config
                .poll
                .saturating_sub(last_poll.elapsed());
            if let Some(next) = next {
                let until = next - OffsetDateTime::now_utc();
                sleep = sleep.min(until.try_into().unwrap_or(Duration::ZERO));
            }
            let sleep = sleep.max(MIN_SLEEP);
            tokio::select! {
                _ = tokio::time::sleep(sleep) => {}
                _ = self.webhooks.wake.notified() => {}
                _ = stopped.changed() => return,
            }
        }
    }

    /// One round: follow the log, send what is due; when the next
    /// delivery is due.
    async fn round(
        &mut self, polled: bool,
    ) -> Result<Option<OffsetDateTime>, ordertrack_store::StoreError> {
        if polled || self.webhooks.changed.swap(false, Ordering::AcqRel) {
            self.endpoints = self.repo.enabled_webhooks().await?;
        }
        if self.endpoints.is_empty() {
            // Nothing to deliver to: the cursor may lag; an endpoint added
            // later skips what came before it anyway.
            return Ok(None);
        }
        // Matched against the endpoints as they are now: one added on
        // another instance since the last poll gets its events too.
        self.endpoints = self.repo.enabled_webhooks().await?;
        self.follow().await?;
        loop {
            let now = crate::now();
            match self.repo.next_webhook_attempt().await? {
                Some(next) if next <= now => {}
                next => return Ok(next),
            }
            let until = now + self.webhooks.config.timeout + CLAIM_MARGIN;
            let claimed = self
                .repo
                .claim_webhook_deliveries(now, until, CLAIM_BATCH)
                .await?;
            if claimed.is_empty() {
                return Ok(Some(now + MIN_SLEEP));
            }
            let attempts = claimed.into_iter().map(|claimed| self.attempt(claimed));
            for attempt in futures::future::join_all(attempts).await {
                self.repo.record_webhook_attempt(attempt).await?;
            }
        }
    }

    /// Writes the deliveries of the events after the cursor.
    async fn follow(&self) -> Result<(), ordertrack_store::StoreError> {
        let mut after = self.repo.webhook_cursor().await?;
        loop {
            let entries = self.repo.events_since(after, FOLLOW_BATCH).await?;
            let Some(upto) = entries.last().map(LogEntry::id) else {
                return Ok(());
            };
            let deliveries = entries
                .iter()
                .filter_map(LogEntry::order_event)
                .flat_map(|event| {
                    self.endpoints
                        .iter()
                        .filter(|w| {
                            w.store_id == event.event.store_id
                                && event.id > w.after_event
                                && wants(&w.events, event.event.kind)
                        })
                        .map(|w| (w.id, event.id))
                })
                .collect();
            let moved = self
                .repo
                .enqueue_webhook_deliveries(WebhookEnqueue {
                    after,
                    upto,
                    deliveries,
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

    /// Sends one delivery; what came of it.
    async fn attempt(&self, claimed: ClaimedDelivery) -> WebhookAttempt {
        let ClaimedDelivery { delivery, webhook } = claimed;
        let started = Instant::now();
        let at = crate::now();
        let result = match self.event(delivery.event_id).await {
            Ok(event) => self.send(&webhook, &event, at).await,
            Err(error) => Err(error),
        };
        let duration_ms = i64::try_from(started.elapsed().as_millis()).unwrap_or(i64::MAX);
        let attempts = delivery.attempts + 1;
        let retry = || match self.delay(attempts) {
            Some(delay) => AttemptOutcome::RetryAt(at + delay),
            None => AttemptOutcome::GaveUp,
        };
        let (http_status, error, outcome) = match result {
            Ok(status) if (200..300).contains(&status) => {
                (Some(status), None, AttemptOutcome::Delivered)
            }
            Ok(410) => (Some(410), None, AttemptOutcome::EndpointGone),
            Ok(status) => (Some(status), None, retry()),
            Err(error) => (None, Some(error), retry()),
        };
        self.webhooks.outcomes.count(&outcome);
        tracing::debug!(
            webhook = %webhook.id,
            event = delivery.event_id,
            attempts,
            ?http_status,
            ?error,
            ?outcome,
            "webhook attempt"
        );
        WebhookAttempt {
            delivery: delivery.id,
            at,
            http_status,
            duration_ms,
            error,
            outcome,
        }
    }

    /// The event a delivery is of.
    async fn event(&self, id: i64) -> Result<StoredEvent, String> {
        let entries = self
            .repo
            .events_since(id - 1, 1)
            .await
            .map_err(|error| format!("reading event {id}: {error}"))?;
        match entries.into_iter().next() {
            Some(LogEntry::Order(event)) if event.id == id => Ok(event),
            _ => Err(format!("event {id} is not in the log")),
        }
    }

    /// Posts the event to the endpoint, signed; the HTTP status it answered.
    async fn send(
        &self, webhook: &Webhook, event: &StoredEvent, at: OffsetDateTime,
    ) -> Result<u16, String> {
        let url = reqwest::Url::parse(&webhook.url).map_err(|e| format!("bad url: {e}"))?;
        // An IP literal never goes through the resolver: check it here.
        if let Some(host) = url.host_str()
            && let Ok(ip) = host.trim_matches(|c| c == '[' || c == ']').parse()
            && !self.webhooks.config.allow_private
            && !guard::is_public(ip)
        {
            return Err(format!("{ip} is not a public address"));
        }
        let data = ordertrack_realtime::public_json(event);
        let body = serde_json::to_vec(&Body {
            kind: event_type(event.event.kind),
            timestamp: event.event.at,
            data: &data,
        })
        .map_err(|e| e.to_string())?;
        let id = event.id.to_string();
        let timestamp = at.unix_timestamp();
        let signature =
            signing::signature_header(&webhook.signing_secrets(at), &id, timestamp, &body);
        let response = self
            .client
            .post(url)
            .header("content-type", "application/json")
            .header("webhook-id", &id)
            .header("webhook-timestamp", timestamp.to_string())
            .header("webhook-signature", signature)
            .body(body)
            .send()
            .await
            .map_err(|error| describe(&error))?;
        Ok(response.status().as_u16())
    }

    /// The delay before the retry after attempt number `attempts`; `None`
    /// once the schedule is spent.
    fn delay(&self, attempts: i64) -> Option<time::Duration> {
        retry_delay(&self.webhooks.config.schedule, attempts)
    }
}

/// What went wrong with a request, in a line (its causes included: reqwest's
/// own text says little).
pub(crate) fn describe(error: &reqwest::Error) -> String {
    let text = if error.is_timeout() {
        "timed out"
    } else if error.is_connect() {
        "could not connect"
    } else {
        "request failed"
    };
    crate::outbox::with_causes(text.to_owned(), error)
}
