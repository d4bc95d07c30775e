//! Staff invitations: an owner invites an e-mail address to a role
//! (`POST /stores/{slug}/invitations`); the invitee, signed in with that
//! address, accepts once (`POST /invitations/{token}/accept`).

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use ordertrack_domain::Role;
use serde::Deserialize;

use super::views::{InvitationBody, MembershipBody, StoreBody};
use crate::AppState;
use crate::error::ApiError;
use crate::extract::{ApiJson, ApiPath, AuthCaller};
use crate::routes::Routes;

pub fn routes() -> Routes {
    Routes::new()
        .post("/stores/{slug}/invitations", create)
        .post("/invitations/{token}/accept", accept)
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct InvitationRequest {
    email: String,
    role: Role,
}

async fn create(
    State(state): State<AppState>, AuthCaller(caller): AuthCaller, ApiPath(slug): ApiPath<String>,
    ApiJson(body): ApiJson<InvitationRequest>,
) -> Result<(StatusCode, Json<InvitationBody>), ApiError> {
    let issued = state
        .app
        .create_invitation(&caller, &slug, &body.email, body.role)
        .await?;
    Ok((StatusCode::CREATED, Json(InvitationBody::from(&issued))))
}

async fn accept(
    State(state): State<AppState>, AuthCaller(caller): AuthCaller, ApiPath(token): ApiPath<String>,
) -> Result<Json<MembershipBody>, ApiError> {
    let accepted = state.app.accept_invitation(&caller, &token).await?;
    Ok(Json(MembershipBody {
        store: StoreBody::from(&accepted.store),
        role: accepted.role,
    }))
}
