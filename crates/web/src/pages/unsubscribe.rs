//! One-click unsubscribe from order e-mail (RFC 8058): the link in every
//! mail's `List-Unsubscribe` header and footer. A POST to it unsubscribes
//! at once, with no sign-in and no CSRF token — the signed token in the
//! path is the whole authorisation, and mail providers post it as is
//! (`List-Unsubscribe=One-Click`). A GET only shows a page with the
//! button, since link scanners follow GETs on their own.

use axum::extract::State;
use axum::response::Response;
use maud::html;

use super::{PageContext, PageError, layout};
use crate::AppState;
use crate::extract::ApiPath;
use crate::routes::Routes;

pub fn routes() -> Routes {
    Routes::new()
        .get("/unsubscribe/{token}", show)
        .post("/unsubscribe/{token}", unsubscribe)
}

async fn show(
    State(state): State<AppState>, ctx: PageContext, ApiPath(token): ApiPath<String>,
) -> Result<Response, PageError> {
    state.app.unsubscribe_user(&token)?;
    let body = html! {
        h1 { "Unsubscribe" }
        section.card {
            p { "Stop e-mail about your orders? You can still follow every order on its page." }
            form method="post" action={ "/unsubscribe/" (token) } {
                button type="submit" data-unsubscribe { "Unsubscribe" }
            }
        }
    };
    Ok(ctx.page(layout(
        "Unsubscribe",
        ctx.caller.as_ref(),
        &ctx.csrf,
        None,
        body,
    )))
}

async fn unsubscribe(
    State(state): State<AppState>, ctx: PageContext, ApiPath(token): ApiPath<String>,
) -> Result<Response, PageError> {
    state.app.unsubscribe(&token).await?;
    let body = html! {
        h1 { "Unsubscribed" }
        section.card {
            p data-unsubscribed { "You will get no more e-mail about your orders." }
        }
    };
    Ok(ctx.page(layout(
        "Unsubscribed",
        ctx.caller.as_ref(),
        &ctx.csrf,
        None,
        body,
    )))
}
