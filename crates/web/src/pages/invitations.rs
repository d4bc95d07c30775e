//! The invitee's page: an invitation to a store's staff, opened from its
//! link. Signed out, it asks to sign in first; signed in with the e-mail it
//! is addressed to, it offers to join.

use axum::Form;
use axum::extract::State;
use axum::response::Response;
use maud::html;

use super::{CsrfForm, PageError, SignedIn, layout, see_other};
use crate::AppState;
use crate::extract::ApiPath;
use crate::routes::Routes;

pub fn routes() -> Routes {
    Routes::new()
        .get("/invitations/{token}", show)
        .post("/invitations/{token}/accept", accept)
}

async fn show(
    State(state): State<AppState>, SignedIn { ctx, ref caller }: SignedIn,
    ApiPath(token): ApiPath<String>,
) -> Result<Response, PageError> {
    let invitation = state.app.invitation(caller, &token).await?;
    let body = html! {
        h1 { "Join " (invitation.store.name) }
        section.card {
            p { "You are invited to join " strong { (invitation.store.name) } " as " strong { (invitation.role.as_str()) } "." }
            form method="post" action={ "/invitations/" (token) "/accept" } {
                input type="hidden" name="csrf" value=(ctx.csrf);
                button type="submit" { "Join " (invitation.store.name) " as " (invitation.role.as_str()) }
            }
        }
    };
    Ok(ctx.page(layout("Invitation", Some(caller), &ctx.csrf, None, body)))
}

async fn accept(
    State(state): State<AppState>, SignedIn { ctx, ref caller }: SignedIn,
    ApiPath(token): ApiPath<String>, Form(form): Form<CsrfForm>,
) -> Result<Response, PageError> {
    ctx.check_csrf(&form.csrf)?;
    let accepted = state.app.accept_invitation(caller, &token).await?;
    Ok(see_other(&format!("/dashboard/{}", accepted.store.slug)))
}
