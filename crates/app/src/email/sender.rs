//! The e-mail sender: an outbox follower of the event log, like the
//! webhook worker. It reads the events after its cursor (kept in the
//! database, so a restart goes on where it stopped) and makes one mail job
//! per order entering a state its store mails on — unique per event and
//! recipient, written together with the cursor's move in one transaction
//! that only takes if the cursor is still where it was read, so a job is
//! never made twice. Then it claims the due jobs (held until a time, so
//! no other instance sends them meanwhile) and sends each through the
//! SMTP server, recording the attempt: taken, retried on the schedule
//! (no connection, a 4xx answer), given up (a 5xx answer, the schedule
//! spent) or suppressed (the customer opted out). At least once: a crash
//! after the server took a mail and before its record sends it again.
//!
//! Entries that make no job move the stored cursor every few seconds
//! only, sparing the writer a write per commit; read again after a
//! restart they make no job again.

use std::collections::HashMap;
use std::collections::hash_map::Entry;
use std::time::{Duration, Instant};

use lettre::message::header::{Header, HeaderName, HeaderValue};
use lettre::message::{Mailbox, MultiPart};
use lettre::{AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};
use ordertrack_domain::{EventKind, NewEvent, StoreId};
use ordertrack_store::{
    EmailAttempt, EmailEnqueue, EmailJob, EmailOutcome, EmailSettings, LogEntry, StoredEvent,
};
use time::OffsetDateTime;
use tokio::sync::watch;

use super::template::{self, Values};
use super::{EmailSetupError, Emails};
use crate::outbox::{FollowerHandle, Pruner, retry_delay};
use crate::{App, AppError};
use ordertrack_store::Outbox;

/// Where e-mail logs: the binary's target, which operators filter on.
const LOG_TARGET: &str = "ordertrack";
/// Events read from the log at a time.
const FOLLOW_BATCH: u32 = 500;
/// Jobs claimed (and sent one after the other) at a time.
const CLAIM_BATCH: u32 = 16;
/// How long a claim holds beyond the attempts' timeouts: an instance that
/// died mid-send lets its jobs go after this.
const CLAIM_MARGIN: Duration = Duration::from_secs(60);
/// Shortest sleep between rounds, so a busy database is not hammered.
const MIN_SLEEP: Duration = Duration::from_millis(20);
/// How often at most a cursor that moved past entries that mailed nothing
/// is stored.
const CURSOR_EVERY: Duration = Duration::from_secs(5);
/// How old a change may be and still be mailed: after mail was off (or
/// the instance down) for long, customers want no stale news.
const MAX_CATCH_UP: time::Duration = time::Duration::hours(1);

/// A running sender; [`stop`](FollowerHandle::stop) ends it.
pub type EmailHandle = FollowerHandle;

/// `List-Unsubscribe` (RFC 2369): where the one-click unsubscribe is.
#[derive(Debug, Clone)]
struct ListUnsubscribe(String);

impl Header for ListUnsubscribe {
    fn name() -> HeaderName {
        HeaderName::new_from_ascii_str("List-Unsubscribe")
    }
    fn parse(text: &str) -> Result<Self, Box<dyn std::error::Error + Send + Sync>> {
        Ok(ListUnsubscribe(text.to_owned()))
    }
    fn display(&self) -> HeaderValue {
        HeaderValue::new(Self::name(), self.0.clone())
    }
}

/// `List-Unsubscribe-Post` (RFC 8058): a POST to the link unsubscribes.
#[derive(Debug, Clone)]
struct ListUnsubscribePost;

impl Header for ListUnsubscribePost {
    fn name() -> HeaderName {
        HeaderName::new_from_ascii_str("List-Unsubscribe-Post")
    }
    fn parse(_: &str) -> Result<Self, Box<dyn std::error::Error + Send + Sync>> {
        Ok(ListUnsubscribePost)
    }
    fn display(&self) -> HeaderValue {
        HeaderValue::new(Self::name(), "List-Unsubscribe=One-Click".to_owned())
    }
}

/// Whether `event` is an order entering one of `states` (not a correction).
fn enters(event: &NewEvent, settings: &EmailSettings) -> bool {
    matches!(
        event.kind,
        EventKind::OrderCreated | EventKind::StatusChanged | EventKind::OrderCancelled
    ) && !event.correction
        && event.from != event.to
        && event
            .to
            .as_ref()
            .is_some_and(|to| settings.states.contains(to))
}

/// The follower's place in the log: how far it has read, and the position
/// stored in the database (behind only over entries that mailed nothing).
struct Cursor {
    read: i64,
    stored: i64,
    stored_at: Instant,
}

impl Cursor {
    fn at(position: i64) -> Cursor {
        Cursor {
            read: position,
            stored: position,
            stored_at: Instant::now(),
        }
    }
}

/// The sender of one instance.
struct Sender {
    app: App,
    emails: std::sync::Arc<Emails>,
    transport: AsyncSmtpTransport<Tokio1Executor>,
    from: Mailbox,
    cursor: Option<Cursor>,
    pruner: Pruner,
}

impl App {
    /// Starts this instance's e-mail sender, if an SMTP server is set up
    /// (`None` otherwise: no mail is sent); a bad `--smtp-url` or
    /// `--smtp-from` is an error.
    pub fn start_email(&self) -> Result<Option<EmailHandle>, EmailSetupError> {
        let emails = self.email.0.clone();
        let Some(url) = emails.config.smtp_url.as_deref() else {
            tracing::info!(target: LOG_TARGET, "no --smtp-url: customers get no e-mail");
            return Ok(None);
        };
        let transport = AsyncSmtpTransport::<Tokio1Executor>::from_url(url)
            .map_err(|e| EmailSetupError::SmtpUrl(e.to_string()))?
            .timeout(Some(emails.config.timeout))
            .build();
        let from: Mailbox = emails
            .config
            .from
            .parse()
            .map_err(|e: lettre::address::AddressError| EmailSetupError::From(e.to_string()))?;
        // The host only: the URL may carry a password.
        let host = reqwest::Url::parse(url)
            .ok()
            .and_then(|url| url.host_str().map(str::to_owned))
            .unwrap_or_default();
        let sender = Sender {
            app: self.clone(),
            pruner: Pruner::new(Outbox::Email, emails.config.retention),
            emails,
            transport,
            from,
            cursor: None,
        };
        tracing::info!(target: LOG_TARGET, %host, from = %sender.from, "e-mailing customers through SMTP");
        Ok(Some(FollowerHandle::spawn(|stopped| sender.run(stopped))))
    }
}

impl Sender {
    async fn run(mut self, mut stopped: watch::Receiver<bool>) {
        loop {
            if *stopped.borrow() {
                return;
            }
            self.pruner.maybe_prune(&*self.app.repo).await;
            if let Err(error) = self.follow().await {
                // Start again from the stored cursor.
                self.cursor = None;
                tracing::warn!(target: LOG_TARGET, %error, "e-mail follower: reading the event log failed");
            }
            let next = match self.send_due().await {
                Ok(next) => next,
                Err(error) => {
                    tracing::warn!(target: LOG_TARGET, %error, "e-mail sender: claiming mail failed");
                    None
                }
            };
            let mut sleep = self.emails.config.poll;
            if let Some(next) = next {
                let until = next - OffsetDateTime::now_utc();
                sleep = sleep.min(until.try_into().unwrap_or(Duration::ZERO));
            }
            // A cursor not yet stored is stored on a later round.
            if self
                .cursor
                .as_ref()
                .is_some_and(|cursor| cursor.read != cursor.stored)
            {
                sleep = sleep.min(CURSOR_EVERY);
            }
            let sleep = sleep.max(MIN_SLEEP);
            tokio::select! {
                _ = tokio::time::sleep(sleep) => {}
                _ = self.emails.wake.notified() => {}
                _ = stopped.changed() => return,
            }
        }
    }

    /// Makes the jobs of the entries after the cursor, storing the cursor
    /// with them.
    async fn follow(&mut self) -> Result<(), AppError> {
        let repo = self.app.repo.clone();
        if self.cursor.is_none() {
            self.cursor = Some(Cursor::at(repo.email_cursor().await?));
        }
        let Some(cursor) = self.cursor.as_mut() else {
            return Ok(());
        };
        loop {
            let entries = repo.events_since(cursor.read, FOLLOW_BATCH).await?;
            let Some(upto) = entries.last().map(LogEntry::id) else {
                if cursor.read != cursor.stored && cursor.stored_at.elapsed() >= CURSOR_EVERY {
                    store(&self.app, cursor, Vec::new()).await?;
                }
                return Ok(());
            };
            let now = crate::now();
            let mut settings: HashMap<StoreId, Option<EmailSettings>> = HashMap::new();
            let mut jobs = Vec::new();
            for stored in entries.iter().filter_map(LogEntry::order_event) {
                let event = &stored.event;
                if now - event.at > MAX_CATCH_UP {
                    continue;
                }
                if let Entry::Vacant(vacant) = settings.entry(event.store_id) {
                    vacant.insert(store_email(&self.app, event.store_id).await?);
                }
                if let Some(Some(store)) = settings.get(&event.store_id)
                    && enters(event, store)
                {
                    jobs.push((stored.id, event.customer_id));
                }
            }
            cursor.read = upto;
            if !jobs.is_empty() || cursor.stored_at.elapsed() >= CURSOR_EVERY {
                store(&self.app, cursor, jobs).await?;
            }
            if entries.len() < FOLLOW_BATCH as usize {
                return Ok(());
            }
        }
    }

    /// Sends the jobs that are due; when the next one is.
    async fn send_due(&self) -> Result<Option<OffsetDateTime>, AppError> {
        let repo = &self.app.repo;
        loop {
            let now = crate::now();
            match repo.next_email_attempt().await? {
                Some(next) if next <= now => {}
                next => return Ok(next),
            }
            let until = now + self.emails.config.timeout * CLAIM_BATCH + CLAIM_MARGIN;
            let claimed = repo.claim_emails(now, until, CLAIM_BATCH).await?;
            if claimed.is_empty() {
                return Ok(Some(now + MIN_SLEEP));
            }
            for job in claimed {
                let attempt = self.attempt(&job).await;
                self.emails.outcomes.count(&attempt.outcome);
                repo.record_email_attempt(attempt).await?;
            }
        }
    }

    /// Sends one job's mail; what came of it.
    async fn attempt(&self, job: &EmailJob) -> EmailAttempt {
        let at = crate::now();
        let attempts = job.attempts + 1;
        let (outcome, error) = match self.mail(job).await {
            Ok(None) => (EmailOutcome::Sent, None),
            Ok(Some(why)) => (EmailOutcome::Suppressed, Some(why)),
            Err(Failure::Permanent(why)) => (EmailOutcome::GaveUp, Some(why)),
            Err(Failure::Transient(why)) => match self.delay(attempts) {
                Some(delay) => (EmailOutcome::RetryAt(at + delay), Some(why)),
                None => (EmailOutcome::GaveUp, Some(why)),
            },
        };
        match outcome {
            EmailOutcome::Sent | EmailOutcome::Suppressed => {
                tracing::debug!(target: LOG_TARGET, job = job.id, event = job.event_id, ?outcome, ?error, "e-mail");
            }
            _ => {
                tracing::warn!(target: LOG_TARGET, job = job.id, event = job.event_id, attempts, ?outcome, ?error, "e-mail not sent");
            }
        }
        EmailAttempt {
            job: job.id,
            at,
            error,
            outcome,
        }
    }

    /// Builds and sends one job's mail: `Ok(None)` sent, `Ok(Some(why))`
    /// not to be sent at all.
    async fn mail(&self, job: &EmailJob) -> Result<Option<String>, Failure> {
        let repo = &self.app.repo;
        let transient = |e: ordertrack_store::StoreError| Failure::Transient(e.to_string());
        if repo.email_opted_out(job.user_id).await.map_err(transient)? {
            return Ok(Some("the customer unsubscribed".into()));
        }
        let Some(user) = repo.user(job.user_id).await.map_err(transient)? else {
            return Ok(Some("the customer is gone".into()));
        };
        let to: Mailbox = match user.email.parse() {
            Ok(address) => Mailbox::new(Some(user.name.clone()), address),
            Err(_) => return Ok(Some(format!("`{}` is no address to mail", user.email))),
        };
        let Some(event) = event(&self.app, job.event_id).await.map_err(transient)? else {
            return Ok(Some("the event is not in the log".into()));
        };
        let Some(found) = repo
            .order_in_store(ordertrack_store::OrderKey::Id(event.event.order_id))
            .await
            .map_err(transient)?
        else {
            return Ok(Some("the order is gone".into()));
        };
        let Some(store) = repo
            .store_with_settings(&found.store.slug)
            .await
            .map_err(transient)?
        else {
            return Ok(Some("the store is gone".into()));
        };
        let base = self.emails.config.public_url.trim_end_matches('/');
        let tracking_url = format!("{base}/track/{}", found.order.tracking_token);
        let unsubscribe_url = format!(
            "{base}/unsubscribe/{}",
            self.app.unsubscribe_token(job.user_id)
        );
        let summary = &event.event.summary;
        let eta = eta_sentence(&event);
        let values = Values {
            order_number: &summary.number,
            status: if summary.label.is_empty() {
                summary.status.as_str()
            } else {
                &summary.label
            },
            eta: &eta,
            tracking_url: &tracking_url,
            store_name: &store.store.name,
            customer_name: &user.name,
        };
        let email = &store.settings.email;
        let subject = template::render(
            email
                .subject
                .as_deref()
                .unwrap_or(template::DEFAULT_SUBJECT),
            &values,
        );
        let mut text = template::render(
            email.body.as_deref().unwrap_or(template::DEFAULT_BODY),
            &values,
        );
        if !text.ends_with('\n') {
            text.push('\n');
        }
        text.push_str(&format!(
            "\n-- \nNo more order e-mail from us: {unsubscribe_url}\n"
        ));
        let html = template::html(&text, &[&tracking_url, &unsubscribe_url]);
        let message = Message::builder()
            .from(self.from.clone())
            .to(to)
            .subject(subject)
            .header(ListUnsubscribe(format!("<{unsubscribe_url}>")))
            .header(ListUnsubscribePost)
            .multipart(MultiPart::alternative_plain_html(text, html))
            .map_err(|e| Failure::Permanent(format!("building the mail: {e}")))?;
        match self.transport.send(message).await {
            Ok(_) => Ok(None),
            Err(error) if error.is_permanent() => Err(Failure::Permanent(describe(&error))),
            Err(error) => Err(Failure::Transient(describe(&error))),
        }
    }

    /// The delay before the retry after attempt number `attempts`; `None`
    /// once the schedule is spent.
    fn delay(&self, attempts: i64) -> Option<time::Duration> {
        retry_delay(&self.emails.config.schedule, attempts)
    }
}

/// Why a mail did not go.
enum Failure {
    /// Worth trying again (no connection, a 4xx answer, a database hiccup).
    Transient(String),
    /// Not worth it (a 5xx answer, a mail that cannot be built).
    Permanent(String),
}

/// Stores the cursor at the position read, with the jobs made since the
/// stored one. If another instance moved the stored cursor first, nothing
/// is written and reading resumes from where it is.
async fn store(
    app: &App, cursor: &mut Cursor, jobs: Vec<(i64, ordertrack_domain::UserId)>,
) -> Result<(), AppError> {
    let moved = app
        .repo
        .enqueue_emails(EmailEnqueue {
            after: cursor.stored,
            upto: cursor.read,
            jobs,
            at: crate::now(),
        })
        .await?;
    *cursor = if moved {
        Cursor::at(cursor.read)
    } else {
        Cursor::at(app.repo.email_cursor().await?)
    };
    Ok(())
}

/// A store's e-mail settings; `None` if the store is gone.
async fn store_email(app: &App, store: StoreId) -> Result<Option<EmailSettings>, AppError> {
    let Some(record) = app.repo.store(store).await? else {
        return Ok(None);
    };
    Ok(app
        .repo
        .store_with_settings(&record.slug)
        .await?
        .map(|found| found.settings.email))
}

/// The event a job is of.
async fn event(app: &App, id: i64) -> Result<Option<StoredEvent>, ordertrack_store::StoreError> {
    let entries = app.repo.events_since(id - 1, 1).await?;
    Ok(match entries.into_iter().next() {
        Some(LogEntry::Order(event)) if event.id == id => Some(event),
        _ => None,
    })
}

/// When the order should be done, as the event's ETA window says,
/// counted from the change: "Expected in 15–25 minutes." (empty once it
/// is done).
fn eta_sentence(event: &StoredEvent) -> String {
    let summary = &event.event.summary;
    if summary.terminal {
        return String::new();
    }
    let minutes = |at: OffsetDateTime| ((at - event.event.at).whole_seconds().max(0) + 59) / 60;
    match (&summary.eta, summary.eta_minutes) {
        (Some(eta), _) => {
            let (from, to) = (minutes(eta.earliest), minutes(eta.latest));
            if from == to {
                format!("Expected in about {from} minutes.")
            } else {
                format!("Expected in {from}–{to} minutes.")
            }
        }
        (None, Some(minutes)) => format!("Expected in about {minutes} minutes."),
        (None, None) => String::new(),
    }
}

/// What went wrong with an SMTP conversation, in a line (its causes
/// included).
fn describe(error: &lettre::transport::smtp::Error) -> String {
    crate::outbox::with_causes(error.to_string(), error)
}
