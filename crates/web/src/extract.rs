//! Extractors: request bodies, paths and queries whose rejections are
//! problem+json, and the caller's identity.

use axum::extract::{FromRequest, FromRequestParts, Path, Query, Request};
use axum::http::header;
use axum::http::request::Parts;
use axum_extra::extract::CookieJar;
use ordertrack_app::{Caller, SessionRef};
use serde::de::DeserializeOwned;

use crate::AppState;
use crate::error::ApiError;

/// Name of the session cookie used by pages.
pub const SESSION_COOKIE: &str = "ordertrack_session";

/// A JSON body; malformed or unknown-field bodies are 4xx problems.
pub struct ApiJson<T>(pub T);

impl<T, S> FromRequest<S> for ApiJson<T>
where
    T: DeserializeOwned,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        let axum::Json(value) = axum::Json::<T>::from_request(req, state).await?;
        Ok(ApiJson(value))
    }
}

/// Path parameters; bad ids are 400 problems.
pub struct ApiPath<T>(pub T);

impl<T, S> FromRequestParts<S> for ApiPath<T>
where
    T: DeserializeOwned + Send,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        let Path(value) = Path::<T>::from_request_parts(parts, state).await?;
        Ok(ApiPath(value))
    }
}

/// Query parameters; bad values are 400 problems.
pub struct ApiQuery<T>(pub T);

impl<T, S> FromRequestParts<S> for ApiQuery<T>
where
    T: DeserializeOwned,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        let Query(value) = Query::<T>::from_request_parts(parts, state).await?;
        Ok(ApiQuery(value))
    }
}

/// The token a request presents: `Authorization: Bearer …`, else the session cookie.
pub fn presented_token(parts: &Parts) -> Option<String> {
    if let Some(value) = parts.headers.get(header::AUTHORIZATION) {
        return value
            .to_str()
            .ok()
            .and_then(|v| v.strip_prefix("Bearer "))
            .map(|t| t.trim().to_owned());
    }
    CookieJar::from_headers(&parts.headers)
        .get(SESSION_COOKIE)
        .map(|c| c.value().to_owned())
}

/// A signed-in caller; without valid credentials the request is 401.
pub struct AuthCaller(pub Caller);

impl FromRequestParts<AppState> for AuthCaller {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        let token = presented_token(parts).ok_or(ordertrack_app::AppError::Unauthenticated)?;
        Ok(AuthCaller(state.app.authenticate(&token).await?))
    }
}

/// The session a request's token names, if it presents a valid one (bad or
/// expired tokens count as signed out). Not looked up in the store: a
/// WebSocket keeps it and resolves the caller afresh for each subscription
/// ([`ordertrack_app::App::session_caller`]).
pub struct MaybeSession(pub Option<SessionRef>);

impl FromRequestParts<AppState> for MaybeSession {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        Ok(MaybeSession(
            presented_token(parts).and_then(|token| state.app.session_of(&token).ok()),
        ))
    }
}

/// The client's address: the TCP peer the server accepted (see
/// [`crate::server`]). `X-Forwarded-For` is not read — any client could
/// claim any address with it. Sign-in limits are kept per this address.
pub struct ClientIp(pub std::net::IpAddr);

impl<S: Send + Sync> FromRequestParts<S> for ClientIp {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        // The server always inserts the peer; a request that did not come
        // over a socket (none do in production) shares the unspecified address.
        let ip = parts
            .extensions
            .get::<axum::extract::ConnectInfo<std::net::SocketAddr>>()
            .map_or(std::net::IpAddr::from([0, 0, 0, 0]), |info| info.0.ip());
        Ok(ClientIp(ip))
    }
}
