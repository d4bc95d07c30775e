//! Staff invitations: an owner invites an e-mail address to a role
//! (`POST /stores/{slug}/invitations`); the invitee, signed in with that
//! address, accepts once (`POST /invitations/{token}/accept`).

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use ordertrack_domain::Role;
use serde::Deserialize;
use utoipa::ToSchema;

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

/// This module's operations in the OpenAPI document.
#[derive(utoipa::OpenApi)]
#[openapi(paths(create, accept))]
pub(crate) struct Doc;

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
struct InvitationRequest {
    email: String,
    role: Role,
}

#[utoipa::path(
    post,
    path = "/stores/{slug}/invitations",
    tag = "staff",
    params(("slug" = String, Path, description = "The store's slug")),
    request_body = InvitationRequest,
    responses((status = 201, description = "Issued; the token is shown only now", body = InvitationBody))
)]
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

#[utoipa::path(
    post,
    path = "/invitations/{token}/accept",
    tag = "staff",
    params(("token" = String, Path, description = "The invitation's token")),
    responses(
        (status = 200, description = "Accepted: the caller is staff of the store", body = MembershipBody),
        (status = 410, description = "The invitation was used already or has expired", body = crate::error::Problem, content_type = "application/problem+json")
    )
)]
async fn accept(
    State(state): State<AppState>, AuthCaller(caller): AuthCaller, ApiPath(token): ApiPath<String>,
) -> Result<Json<MembershipBody>, ApiError> {
    let accepted = state.app.accept_invitation(&caller, &token).await?;
    Ok(Json(MembershipBody {
        store: StoreBody::from(&accepted.store),
        role: accepted.role,
    }))
}
