//! The JSON API, `/api/v1`. Paths and field names are a contract: add, never rename.

mod auth;
pub use auth::session_cookie;
mod kitchen;
mod orders;
mod stores;
pub mod views;

use axum::Router;

use crate::AppState;

/// All `/api/v1` routes.
pub fn router() -> Router<AppState> {
    Router::new()
        .merge(auth::router())
        .merge(stores::router())
        .merge(orders::router())
        .merge(kitchen::router())
        .fallback(crate::error::not_found)
        .method_not_allowed_fallback(crate::error::method_not_allowed)
}
