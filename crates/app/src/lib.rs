//! The order desk's use cases: sign in, place an order, move it through its
//! workflow, work it in the kitchen, manage a store. Every function here checks who may do what
//! (tenant, owner, role) before it touches the store; the web layer only
//! translates HTTP to these calls and their errors to HTTP.

pub mod auth;
pub mod catalog;
pub mod demo;
mod error;
pub mod kitchen;
pub mod orders;
mod workflows;

use std::sync::Arc;

use ordertrack_realtime::Hub;
use ordertrack_store::Store;

pub use auth::{AuthConfig, Caller};
pub use error::AppError;
pub use workflows::Workflows;

/// The application: the store plus everything the use cases need.
#[derive(Clone)]
pub struct App {
    store: Arc<dyn Store>,
    workflows: Arc<Workflows>,
    auth: Arc<auth::Auth>,
    hub: Hub,
    bus_ready: Option<Arc<dyn Fn() -> bool + Send + Sync>>,
}

impl App {
    /// Builds the application over a store whose commits feed `hub`.
    pub fn new(store: Arc<dyn Store>, hub: Hub, auth: AuthConfig) -> Self {
        App {
            store,
            workflows: Arc::new(Workflows::builtin()),
            auth: Arc::new(auth::Auth::new(auth)),
            hub,
            bus_ready: None,
        }
    }

    /// Adds a readiness check for the event bus (scaled out) to `/readyz`.
    pub fn with_bus_check(mut self, ready: impl Fn() -> bool + Send + Sync + 'static) -> Self {
        self.bus_ready = Some(Arc::new(ready));
        self
    }

    /// Whether the event bus is reachable; `None` without a bus.
    pub fn bus_ready(&self) -> Option<bool> {
        self.bus_ready.as_ref().map(|ready| ready())
    }

    /// The live fan-out (streams subscribe here).
    pub fn hub(&self) -> &Hub {
        &self.hub
    }

    /// The store (for streams and health checks).
    pub fn store(&self) -> &Arc<dyn Store> {
        &self.store
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
