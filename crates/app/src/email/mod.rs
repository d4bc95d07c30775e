//! Customer e-mail: a store mails an order's customer when the order
//! enters one of the states the store picked, through the operator's SMTP
//! server (`--smtp-url`). Sending is the [`sender`]'s, an outbox follower
//! of the event log (never on the request path); here are the operator's
//! settings, the store's templates, and the one-click unsubscribe
//! (RFC 8058) with its signed link.

pub mod sender;
pub mod template;

use std::sync::Arc;
use std::time::Duration;

use ordertrack_domain::{StatusKey, UserId};
use ordertrack_store::{CommitListener, EmailOutcome, LogEntry};
use tokio::sync::Notify;

pub use sender::EmailHandle;

use crate::outbox::{Outcome, OutcomeCounts};
use crate::{App, AppError, ErrorCode};

/// The delays before each retry of a mail the SMTP server did not take
/// (a temporary failure or no connection): about a day in all, then the
/// mail is given up.
pub const DEFAULT_SCHEDULE: [Duration; 8] = [
    Duration::from_secs(30),
    Duration::from_secs(2 * 60),
    Duration::from_secs(10 * 60),
    Duration::from_secs(30 * 60),
    Duration::from_secs(3600),
    Duration::from_secs(3 * 3600),
    Duration::from_secs(6 * 3600),
    Duration::from_secs(12 * 3600),
];

/// How customer e-mail is sent (the operator's settings).
#[derive(Debug, Clone)]
pub struct EmailConfig {
    /// The SMTP server, as lettre reads it: `smtp://user:pass@host:port`
    /// (plain), `smtp://…?tls=required` (STARTTLS), `smtps://…` (TLS from
    /// the start). `None`: no mail is sent.
    pub smtp_url: Option<String>,
    /// The sender, e.g. `Orders <orders@example.com>`.
    pub from: String,
    /// Where customers reach the order desk: tracking and unsubscribe
    /// links start with it (no trailing slash).
    pub public_url: String,
    /// Delays before each retry (jittered by up to a tenth either way).
    pub schedule: Vec<Duration>,
    /// How long one SMTP conversation may take.
    pub timeout: Duration,
    /// How often the follower looks at the log even if nothing woke it
    /// (other instances' commits, retries coming due).
    pub poll: Duration,
    /// How long delivered and given-up jobs are kept before the worker
    /// deletes them (`--outbox-retention-days`).
    pub retention: Duration,
}

impl Default for EmailConfig {
    fn default() -> Self {
        EmailConfig {
            smtp_url: None,
            from: "ordertrack <ordertrack@localhost>".into(),
            public_url: "http://localhost:8080".into(),
            schedule: DEFAULT_SCHEDULE.to_vec(),
            timeout: Duration::from_secs(30),
            poll: Duration::from_secs(5),
            retention: crate::outbox::DEFAULT_RETENTION,
        }
    }
}

/// Why the e-mail settings cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum EmailSetupError {
    #[error("--smtp-url: {0}")]
    SmtpUrl(String),
    #[error("--smtp-from: {0}")]
    From(String),
}

impl Outcome for EmailOutcome {
    const LABELS: [&'static str; 4] = ["sent", "retried", "gave_up", "suppressed"];
    fn index(&self) -> usize {
        match self {
            EmailOutcome::Sent => 0,
            EmailOutcome::RetryAt(_) => 1,
            EmailOutcome::GaveUp => 2,
            EmailOutcome::Suppressed => 3,
        }
    }
}

/// What the use cases, the commit listener and the sender share.
pub(crate) struct Emails {
    pub(crate) config: EmailConfig,
    /// Rung on every commit of order events.
    pub(crate) wake: Notify,
    outcomes: OutcomeCounts<EmailOutcome>,
}

/// Customer e-mail as the operator set it up; clones share one doorbell.
#[derive(Clone)]
pub struct EmailRuntime(pub(crate) Arc<Emails>);

impl EmailRuntime {
    /// E-mail with these settings (checked when the sender starts).
    pub fn new(config: EmailConfig) -> Self {
        EmailRuntime(Arc::new(Emails {
            config,
            wake: Notify::new(),
            outcomes: OutcomeCounts::default(),
        }))
    }

    /// Whether mail is sent at all (an SMTP server is given).
    pub fn enabled(&self) -> bool {
        self.0.config.smtp_url.is_some()
    }

    /// The settings.
    pub fn config(&self) -> &EmailConfig {
        &self.0.config
    }

    /// `inner`, which also wakes the e-mail follower after each commit of
    /// order events (so mail follows a change at once, not at the next poll).
    pub fn listener(&self, inner: Arc<dyn CommitListener>) -> Arc<dyn CommitListener> {
        Arc::new(WakeOnCommit {
            inner,
            emails: self.0.clone(),
        })
    }

    /// `(outcome, attempts)` for each outcome, as `/metrics` names them.
    pub fn outcomes(&self) -> [(&'static str, u64); 4] {
        self.0.outcomes.snapshot()
    }
}

impl Default for EmailRuntime {
    fn default() -> Self {
        EmailRuntime::new(EmailConfig::default())
    }
}

struct WakeOnCommit {
    inner: Arc<dyn CommitListener>,
    emails: Arc<Emails>,
}

impl CommitListener for WakeOnCommit {
    fn committed(&self, events: &[LogEntry]) {
        self.inner.committed(events);
        if events.iter().any(|e| e.order_event().is_some()) {
            self.emails.wake.notify_one();
        }
    }
}

/// A store's e-mail settings as its owner or manager changes them; `None`
/// leaves a field as it is.
#[derive(Debug, Clone, Default)]
pub struct EmailInput {
    /// The workflow states (keys) whose entry mails the customer.
    pub states: Option<Vec<String>>,
    /// `Some(None)`: back to the built-in subject.
    pub subject: Option<Option<String>>,
    /// `Some(None)`: back to the built-in body.
    pub body: Option<Option<String>>,
}

/// Longest subject template, in characters.
pub const MAX_SUBJECT_CHARS: usize = 200;
/// Longest body template, in characters.
pub const MAX_BODY_CHARS: usize = 5000;

/// The checked e-mail part of a settings change.
pub(crate) struct EmailPatch {
    pub(crate) states: Option<Vec<StatusKey>>,
    pub(crate) subject: Option<Option<String>>,
    pub(crate) body: Option<Option<String>>,
}

impl EmailInput {
    /// Checks the change against the store's workflow: every state must be
    /// one of its states, the templates well formed and not too long
    /// (422 `unknown_status`, `invalid_email_template`).
    pub(crate) fn check(
        self, workflow: &ordertrack_domain::Workflow,
    ) -> Result<EmailPatch, AppError> {
        let states = self
            .states
            .map(|states| {
                let mut keys: Vec<StatusKey> = Vec::with_capacity(states.len());
                for state in states {
                    if workflow.state(&state).is_none() {
                        return Err(AppError::invalid(
                            ErrorCode::UnknownStatus,
                            format!("the store's workflow has no state `{state}` to mail on"),
                        ));
                    }
                    if !keys.iter().any(|k| k == state.as_str()) {
                        keys.push(StatusKey::from(state));
                    }
                }
                Ok(keys)
            })
            .transpose()?;
        let subject = check_template(self.subject, "subject", MAX_SUBJECT_CHARS, false)?;
        let body = check_template(self.body, "body", MAX_BODY_CHARS, true)?;
        Ok(EmailPatch {
            states,
            subject,
            body,
        })
    }
}

/// A template that is set (an empty one means the built-in) and well formed.
fn check_template(
    template: Option<Option<String>>, field: &'static str, max: usize, lines: bool,
) -> Result<Option<Option<String>>, AppError> {
    let Some(Some(text)) = template else {
        return Ok(template);
    };
    if text.trim().is_empty() {
        return Ok(Some(None));
    }
    let invalid = |message: String| AppError::invalid(ErrorCode::InvalidEmailTemplate, message);
    if text.chars().count() > max {
        return Err(invalid(format!(
            "the e-mail {field} is longer than {max} characters"
        )));
    }
    let unsafe_text = if lines {
        ordertrack_domain::text::check_lines(field, &text)
    } else {
        ordertrack_domain::text::check_line(field, &text)
    };
    unsafe_text.map_err(|e| invalid(e.to_string()))?;
    template::check(&text).map_err(|e| invalid(format!("the e-mail {field}: {e}")))?;
    Ok(Some(Some(text)))
}

/// What signs unsubscribe links, kept apart from other uses of the key.
const UNSUBSCRIBE_CONTEXT: &[u8] = b"ordertrack unsubscribe\0";

impl App {
    /// Customer e-mail as the operator set it up.
    pub fn with_email(mut self, email: EmailRuntime) -> Self {
        self.email = email;
        self
    }

    /// This instance's mail attempts by outcome.
    pub fn email_outcomes(&self) -> [(&'static str, u64); 4] {
        self.email.outcomes()
    }

    fn unsubscribe_mac(&self, user: UserId) -> hmac::Hmac<sha2::Sha256> {
        use hmac::Mac;
        let mut mac = <hmac::Hmac<sha2::Sha256> as Mac>::new_from_slice(&self.auth.config.secret)
            .unwrap_or_else(|_| unreachable!("HMAC takes a key of any length"));
        mac.update(UNSUBSCRIBE_CONTEXT);
        mac.update(user.get().to_string().as_bytes());
        mac
    }

    /// The token of a customer's unsubscribe link: their id and an HMAC
    /// of it under the signing key (so it cannot be made for anyone else).
    /// It does not expire: a link in an old mail still works.
    pub fn unsubscribe_token(&self, user: UserId) -> String {
        use hmac::Mac;
        let mac = self.unsubscribe_mac(user).finalize().into_bytes();
        format!("{}.{}", user.get(), hex::encode(&mac[..16]))
    }

    /// The customer an unsubscribe token names, if it is genuine (404
    /// otherwise: a made-up link names nobody).
    pub fn unsubscribe_user(&self, token: &str) -> Result<UserId, AppError> {
        use hmac::Mac;
        let not_found = || AppError::NotFound("unsubscribe link");
        let (id, mac) = token.split_once('.').ok_or_else(not_found)?;
        let id: i64 = id.parse().map_err(|_| not_found())?;
        let mac = hex::decode(mac).map_err(|_| not_found())?;
        if mac.len() != 16 {
            return Err(not_found());
        }
        let user = UserId::new(id);
        self.unsubscribe_mac(user)
            .verify_truncated_left(&mac)
            .map_err(|_| not_found())?;
        Ok(user)
    }

    /// Unsubscribes the customer a genuine token names: no more order
    /// mail to them from any store. Doing it again changes nothing.
    pub async fn unsubscribe(&self, token: &str) -> Result<(), AppError> {
        let user = self.unsubscribe_user(token)?;
        match self.repo.set_email_opt_out(user, true, crate::now()).await {
            Err(ordertrack_store::StoreError::NotFound(_)) => {
                Err(AppError::NotFound("unsubscribe link"))
            }
            other => Ok(other?),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn templates_with_unknown_placeholders_are_refused() {
        let refused = check_template(Some(Some("{nope}".into())), "subject", 200, false);
        assert!(matches!(
            refused,
            Err(AppError::Invalid {
                code: ErrorCode::InvalidEmailTemplate,
                ..
            })
        ));
        let multi = check_template(Some(Some("a\nb".into())), "subject", 200, false);
        assert!(multi.is_err(), "a subject is one line");
        assert!(matches!(
            check_template(Some(Some("  ".into())), "subject", 200, false),
            Ok(Some(None))
        ));
    }
}
