//! `/auth`: register, login, logout, me.

use axum::Json;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use ordertrack_app::auth::SignedIn;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::views::UserBody;
use crate::AppState;
use crate::error::ApiError;
use crate::extract::{ApiJson, AuthCaller, ClientIp, Https, SESSION};
use crate::routes::Routes;

pub fn routes() -> Routes {
    Routes::new()
        .post("/auth/register", register)
        .post("/auth/login", login)
        .post("/auth/logout", logout)
        .get("/auth/me", me)
}

/// This module's operations in the OpenAPI document.
#[derive(utoipa::OpenApi)]
#[openapi(paths(register, login, logout, me))]
pub(crate) struct Doc;

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
struct RegisterBody {
    email: String,
    password: String,
    name: String,
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
struct LoginBody {
    email: String,
    password: String,
}

#[derive(Serialize, ToSchema)]
struct SessionBody {
    token: String,
    user: UserBody,
    #[serde(with = "time::serde::rfc3339")]
    expires_at: time::OffsetDateTime,
}

/// The session cookie pages use (see [`crate::extract::CookieName::set`]); an empty
/// token with age 0 deletes it.
pub fn session_cookie(token: &str, max_age_seconds: i64, https: Https) -> HeaderValue {
    SESSION.set(token, Some(max_age_seconds), https)
}

fn session_response(
    status: StatusCode, signed_in: SignedIn, ttl: time::Duration, https: Https,
) -> Response {
    let cookie = session_cookie(&signed_in.token, ttl.whole_seconds(), https);
    let body = SessionBody {
        user: UserBody::from(&signed_in.user),
        token: signed_in.token,
        expires_at: signed_in.expires_at,
    };
    let mut headers = HeaderMap::new();
    headers.insert(header::SET_COOKIE, cookie);
    (status, headers, Json(body)).into_response()
}

#[utoipa::path(
    post,
    path = "/auth/register",
    tag = "auth",
    request_body = RegisterBody,
    responses((status = 201, description = "Registered and signed in", body = SessionBody, headers(("Set-Cookie" = String, description = "The session cookie, for pages")))),
    security(())
)]
async fn register(
    State(state): State<AppState>, ClientIp(client): ClientIp, https: Https,
    ApiJson(body): ApiJson<RegisterBody>,
) -> Result<Response, ApiError> {
    let signed_in = state
        .app
        .register(&body.email, &body.password, &body.name, client)
        .await?;
    Ok(session_response(
        StatusCode::CREATED,
        signed_in,
        state.app.session_ttl(),
        https,
    ))
}

#[utoipa::path(
    post,
    path = "/auth/login",
    tag = "auth",
    request_body = LoginBody,
    responses((status = 200, description = "Signed in", body = SessionBody, headers(("Set-Cookie" = String, description = "The session cookie, for pages")))),
    security(())
)]
async fn login(
    State(state): State<AppState>, ClientIp(client): ClientIp, https: Https,
    ApiJson(body): ApiJson<LoginBody>,
) -> Result<Response, ApiError> {
    let signed_in = state.app.login(&body.email, &body.password, client).await?;
    Ok(session_response(
        StatusCode::OK,
        signed_in,
        state.app.session_ttl(),
        https,
    ))
}

#[utoipa::path(
    post,
    path = "/auth/logout",
    tag = "auth",
    responses((status = 204, description = "Signed out; the session is ended", headers(("Set-Cookie" = String, description = "The session cookie, for pages"))))
)]
async fn logout(
    State(state): State<AppState>, AuthCaller(caller): AuthCaller, https: Https,
) -> Result<Response, ApiError> {
    state.app.logout(&caller).await?;
    let mut headers = HeaderMap::new();
    headers.insert(header::SET_COOKIE, session_cookie("", 0, https));
    Ok((StatusCode::NO_CONTENT, headers).into_response())
}

#[derive(Serialize, ToSchema)]
struct MeBody {
    id: i64,
    email: String,
    name: String,
    is_admin: bool,
    memberships: Vec<MembershipBody>,
}

#[derive(Serialize, ToSchema)]
#[schema(as = MeMembershipBody)]
struct MembershipBody {
    store: String,
    store_id: i64,
    role: ordertrack_domain::Role,
}

#[utoipa::path(
    get,
    path = "/auth/me",
    tag = "auth",
    responses((status = 200, description = "The caller and their memberships", body = MeBody))
)]
async fn me(AuthCaller(caller): AuthCaller) -> Json<MeBody> {
    Json(MeBody {
        id: caller.user.id.get(),
        email: caller.user.email.clone(),
        name: caller.user.name.clone(),
        is_admin: caller.user.is_admin,
        memberships: caller
            .memberships
            .iter()
            .map(|m| MembershipBody {
                store: m.store_slug.clone(),
                store_id: m.store_id.get(),
                role: m.role,
            })
            .collect(),
    })
}
