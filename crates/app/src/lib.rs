//! The order desk's use cases: sign in, place an order, move it through its
//! workflow, work it in the kitchen, manage a store, read its reports. Every function here checks who may do what
//! (tenant, owner, role) before it touches the store; the web layer only
//! translates HTTP to these calls and their errors to HTTP.

pub mod auth;
pub mod catalog;
pub mod demo;
pub mod email;
mod error;
mod error_code;
pub mod escpos;
mod eta_follower;
pub mod idempotency;
pub mod invitations;
pub mod kitchen;
pub mod orders;
pub mod outbox;
pub mod printing;
pub mod push;
mod queues;
pub mod receipts;
pub mod reports;
pub mod reviews;
mod sessions;
pub mod stores;
pub mod streams;
pub mod throttle;
pub mod token;
pub mod webhooks;
mod workflows;

use std::sync::Arc;

use ordertrack_realtime::Hub;
use ordertrack_store::Repository;

pub use auth::{Asker, AuthConfig, Caller, SessionRef};
pub use email::{EmailConfig, EmailRuntime};
pub use error::AppError;
pub use error_code::ErrorCode;
pub use orders::DurationsCache;
pub use push::{PushConfig, PushRuntime};
pub use sessions::SessionCacheStats;
pub use stores::StoreSignup;
pub use streams::{Replay, SnapshotReason, StreamSpec};
pub use throttle::{FixedWindows, SignInLimits};
pub use token::random_token;
pub use webhooks::{WebhookConfig, WebhookRuntime};
pub use workflows::{StoreWorkflowView, WorkflowUpload, Workflows};

/// Why an instance cannot serve right now.
#[derive(Debug, thiserror::Error)]
pub enum NotReady {
    #[error("database unavailable: {0}")]
    Database(#[from] ordertrack_store::StoreError),
    #[error("event bus unavailable")]
    Bus,
}

/// The application: the repository plus everything the use cases need.
#[derive(Clone)]
pub struct App {
    repo: Arc<dyn Repository>,
    workflows: Arc<Workflows>,
    auth: Arc<auth::Auth>,
    hub: Hub,
    bus_ready: Option<Arc<dyn Fn() -> bool + Send + Sync>>,
    store_signup: StoreSignup,
    printing: Arc<printing::Printing>,
    webhooks: WebhookRuntime,
    /// Customer e-mail: the operator's SMTP settings and the sender's doorbell.
    email: EmailRuntime,
    push: PushRuntime,
    /// Stores' kept durations for ETA windows, reused for a few seconds.
    durations: Arc<DurationsCache>,
    /// Stores' kitchen queues for ETA windows, following the hub's feed.
    queues: Arc<queues::KitchenQueues>,
    /// Resolved sessions, used while the access mark stands (`sessions.rs`).
    sessions: Arc<sessions::SessionCache>,
    /// Wakes the ETA durations follower (`eta_follower.rs`).
    finished_orders: Arc<eta_follower::FinishedOrders>,
}

impl App {
    /// Builds the application over a repository whose commits feed `hub`.
    pub fn new(repo: Arc<dyn Repository>, hub: Hub, auth: AuthConfig) -> Self {
        let queues = Arc::new(queues::KitchenQueues::default());
        hub.follow(queues.clone());
        let finished_orders = Arc::new(eta_follower::FinishedOrders::default());
        hub.follow(finished_orders.clone());
        App {
            repo,
            workflows: Arc::new(Workflows::builtin()),
            auth: Arc::new(auth::Auth::new(auth)),
            hub,
            bus_ready: None,
            store_signup: StoreSignup::default(),
            printing: Arc::default(),
            webhooks: WebhookRuntime::new(WebhookConfig::default()),
            email: EmailRuntime::default(),
            push: PushRuntime::new(PushConfig::default()),
            durations: Arc::default(),
            queues,
            sessions: Arc::default(),
            finished_orders,
        }
    }

    /// The stores' durations cache whose [`DurationsCache::listener`]
    /// wraps the store's commit listener (default: one no writer tells,
    /// which only forgets by age).
    pub fn with_durations(mut self, durations: Arc<DurationsCache>) -> Self {
        self.durations = durations;
        self
    }

    /// Printing's settings and wake-ups (default: no printer host allowed).
    pub fn with_printing(mut self, printing: Arc<printing::Printing>) -> Self {
        self.printing = printing;
        self
    }

    /// Webhooks as the operator set them up; the runtime's listener should
    /// be the store's, so commits wake its worker.
    pub fn with_webhooks(mut self, webhooks: WebhookRuntime) -> Self {
        self.webhooks = webhooks;
        self
    }

    /// Who may open a store through the API and the pages (default:
    /// platform admins only).
    pub fn with_store_signup(mut self, signup: StoreSignup) -> Self {
        self.store_signup = signup;
        self
    }

    /// Adds a readiness check for the event bus (scaled out) to `/readyz`.
    pub fn with_bus_check(mut self, ready: impl Fn() -> bool + Send + Sync + 'static) -> Self {
        self.bus_ready = Some(Arc::new(ready));
        self
    }

    /// Whether this instance can serve: the database answers and the event
    /// bus, if any, is connected.
    pub async fn ready(&self) -> Result<(), NotReady> {
        self.repo.last_event_position().await?;
        if self.bus_ready.as_ref().is_some_and(|ready| !ready()) {
            return Err(NotReady::Bus);
        }
        Ok(())
    }

    /// How far each follower of the event log is behind its end, in
    /// events: `webhooks` (events not yet turned into deliveries), `push`
    /// where Web Push is on, where printing runs (some printer host
    /// allowed) `printing`, and where e-mail is sent (an SMTP server given)
    /// `email`.
    pub async fn follower_lags(&self) -> Result<Vec<(&'static str, i64)>, AppError> {
        let last = self.repo.last_event_position().await?;
        let mut lags = vec![("webhooks", last - self.repo.webhook_cursor().await?)];
        if self.push.enabled() {
            lags.push(("push", last - self.repo.push_cursor().await?));
        }
        if !self.printing.settings().hosts.is_empty() {
            lags.push(("printing", last - self.repo.print_cursor().await?));
        }
        if self.email.enabled() {
            lags.push(("email", last - self.repo.email_cursor().await?));
        }
        Ok(lags)
    }

    /// This instance's webhook delivery attempts by outcome.
    pub fn webhook_delivery_outcomes(&self) -> [(&'static str, u64); 4] {
        self.webhooks.delivery_outcomes()
    }

    /// This instance's Web Push attempts by outcome.
    pub fn push_outcomes(&self) -> [(&'static str, u64); 4] {
        self.push.outcomes()
    }

    /// How often this instance's requests found their session kept, and
    /// how often they read it (operators' metrics, and tests showing that
    /// requests do not read their session each time).
    pub fn session_cache_stats(&self) -> SessionCacheStats {
        self.sessions.stats()
    }

    /// How busy the database connections are (operators' metrics).
    pub fn pool_status(&self) -> ordertrack_store::PoolStatus {
        self.repo.pool_status()
    }

    /// The live fan-out: its heartbeat, shutdown and counters. Streams
    /// subscribe through [`App::subscribe`] with an authorised
    /// [`StreamSpec`].
    pub fn hub(&self) -> &Hub {
        &self.hub
    }

    /// The workflows stores may use.
    pub fn workflows(&self) -> &Workflows {
        &self.workflows
    }
}

/// The current time, at the precision the stores keep (microseconds), so a
/// value reads back exactly as it was written.
pub fn now() -> time::OffsetDateTime {
    let now = time::OffsetDateTime::now_utc();
    now.replace_nanosecond(now.nanosecond() / 1_000 * 1_000)
        .unwrap_or(now)
}
