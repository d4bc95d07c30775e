//! Records of customer e-mail: the mail jobs the e-mail follower makes
//! from the event log (one per event and recipient) and what the sender
//! hands back to the store.

use ordertrack_domain::UserId;
use time::OffsetDateTime;

/// The mail jobs made for the events after the cursor's position up to
/// `upto`, written with the cursor's move in one transaction.
#[derive(Debug, Clone)]
pub struct EmailEnqueue {
    /// Where the cursor must still be (another instance may have moved it).
    pub after: i64,
    /// Where it moves to.
    pub upto: i64,
    /// `(event, recipient)` pairs, due at once. A pair that has a job
    /// already keeps it: one mail per event and recipient.
    pub jobs: Vec<(i64, UserId)>,
    pub at: OffsetDateTime,
}

/// A mail job the sender has claimed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EmailJob {
    pub id: i64,
    /// The event the mail tells of (its position in the log).
    pub event_id: i64,
    /// Who gets it (their address is read when it is sent).
    pub user_id: UserId,
    /// Attempts made before this one.
    pub attempts: i64,
}

/// How an attempt at a mail ended, and so what becomes of its job.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EmailOutcome {
    /// The SMTP server took it.
    Sent,
    /// Failed; try again at this time.
    RetryAt(OffsetDateTime),
    /// Failed for good (refused permanently, or the retries are spent).
    GaveUp,
    /// Not sent and never will be: the customer opted out, has no
    /// address, or the event is gone.
    Suppressed,
}

impl EmailOutcome {
    /// The job's stored state after this outcome.
    pub fn state(self) -> &'static str {
        match self {
            EmailOutcome::Sent => "sent",
            EmailOutcome::RetryAt(_) => "pending",
            EmailOutcome::GaveUp => "failed",
            EmailOutcome::Suppressed => "suppressed",
        }
    }

    /// When the job is due next, if it stays pending.
    pub fn next_attempt(self) -> Option<OffsetDateTime> {
        match self {
            EmailOutcome::RetryAt(at) => Some(at),
            _ => None,
        }
    }
}

/// One attempt's result, to record on its job.
#[derive(Debug, Clone)]
pub struct EmailAttempt {
    pub job: i64,
    pub at: OffsetDateTime,
    /// Why it failed (or was suppressed).
    pub error: Option<String>,
    pub outcome: EmailOutcome,
}

/// A mail job as the store keeps it (for operators and tests).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EmailJobRecord {
    pub id: i64,
    pub event_id: i64,
    pub user_id: UserId,
    /// `pending`, `sent`, `failed` or `suppressed`.
    pub state: String,
    pub attempts: i64,
    pub error: Option<String>,
}
