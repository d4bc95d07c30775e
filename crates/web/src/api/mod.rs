//! The JSON API, `/api/v1`. Paths and field names are a contract: add, never rename.

mod auth;
pub use auth::session_cookie;
mod invitations;
mod kitchen;
mod orders;
mod printing;
mod push;
mod reports;
mod stores;
pub mod views;
mod webhooks;
mod workflows;

use crate::routes::Routes;

/// All `/api/v1` routes.
pub fn routes() -> Routes {
    Routes::new()
        .merge(auth::routes())
        .merge(stores::routes())
        .merge(orders::routes())
        .merge(printing::routes())
        .merge(push::routes())
        .merge(reports::routes())
        .merge(kitchen::routes())
        .merge(invitations::routes())
        .merge(workflows::routes())
        .merge(webhooks::routes())
}
