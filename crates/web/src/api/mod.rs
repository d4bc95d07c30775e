//! The JSON API, `/api/v1`. Paths and field names are a contract: add, never rename.

mod auth;
pub use auth::session_cookie;
mod invitations;
mod kitchen;
pub mod openapi;
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

/// The OpenAPI description of [`routes`], paths as they are routed here
/// (under `/api/v1`: [`openapi::document`] puts them there).
fn doc() -> utoipa::openapi::OpenApi {
    use utoipa::OpenApi;
    let mut doc = auth::Doc::openapi();
    for part in [
        stores::Doc::openapi(),
        orders::Doc::openapi(),
        printing::Doc::openapi(),
        reports::Doc::openapi(),
        kitchen::Doc::openapi(),
        invitations::Doc::openapi(),
        workflows::Doc::openapi(),
        webhooks::Doc::openapi(),
        push::Doc::openapi(),
    ] {
        doc.merge(part);
    }
    doc
}
