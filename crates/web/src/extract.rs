//! Extractors: request bodies, paths and queries whose rejections are
//! problem+json, and the caller's identity.

use std::net::IpAddr;

use axum::extract::ws::WebSocketUpgrade;
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

/// A WebSocket handshake; a request that is not one (a plain GET, a
/// missing key or version) is a 4xx problem.
pub struct ApiWebSocketUpgrade(pub WebSocketUpgrade);

impl<S> FromRequestParts<S> for ApiWebSocketUpgrade
where
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        Ok(ApiWebSocketUpgrade(
            WebSocketUpgrade::from_request_parts(parts, state).await?,
        ))
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
/// [`crate::server`]), or — when that peer is a trusted proxy
/// (`--trusted-proxy`) — the address it names in `X-Forwarded-For`.
/// Otherwise `X-Forwarded-For` is ignored: any client could claim any
/// address with it. Sign-in limits are kept per this address.
pub struct ClientIp(pub IpAddr);

impl FromRequestParts<AppState> for ClientIp {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        // The server always inserts the peer; a request that did not come
        // over a socket (none do in production) shares the unspecified address.
        let peer = parts
            .extensions
            .get::<axum::extract::ConnectInfo<std::net::SocketAddr>>()
            .map_or(IpAddr::from([0, 0, 0, 0]), |info| info.0.ip());
        let forwarded: Vec<&str> = parts
            .headers
            .get_all(X_FORWARDED_FOR)
            .iter()
            .filter_map(|value| value.to_str().ok())
            .collect();
        Ok(ClientIp(client_ip(
            peer,
            &forwarded.join(","),
            &state.trusted_proxies,
        )))
    }
}

const X_FORWARDED_FOR: &str = "x-forwarded-for";

/// The client behind `peer`: walking `X-Forwarded-For` from the right (the
/// hop the nearest proxy added), past trusted proxies, to the first address
/// no trusted proxy is vouched for by. An untrusted peer is the client.
fn client_ip(peer: IpAddr, forwarded_for: &str, trusted: &[IpAddr]) -> IpAddr {
    let mut client = peer;
    if !trusted.contains(&client) {
        return client;
    }
    for hop in forwarded_for.rsplit(',') {
        let Ok(hop) = hop.trim().parse::<IpAddr>() else {
            // Garbage cannot be a client address; the last trusted hop is.
            break;
        };
        client = hop;
        if !trusted.contains(&client) {
            break;
        }
    }
    client
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(text: &str) -> IpAddr {
        text.parse().unwrap()
    }

    #[test]
    fn forwarded_for_is_believed_only_from_a_trusted_proxy() {
        let proxy = ip("10.0.0.1");
        let trusted = [proxy];
        // Without a trusted proxy in front, the header is the client's claim.
        assert_eq!(
            client_ip(ip("203.0.113.7"), "198.51.100.1", &trusted),
            ip("203.0.113.7")
        );
        assert_eq!(
            client_ip(ip("203.0.113.7"), "198.51.100.1", &[]),
            ip("203.0.113.7")
        );
        // Through the proxy: the hop it added, not what the client prepended.
        assert_eq!(
            client_ip(proxy, "198.51.100.1, 203.0.113.7", &trusted),
            ip("203.0.113.7")
        );
        // Chained trusted proxies are skipped.
        assert_eq!(
            client_ip(proxy, "203.0.113.7, 10.0.0.1", &trusted),
            ip("203.0.113.7")
        );
        // No usable header: the proxy itself.
        assert_eq!(client_ip(proxy, "", &trusted), proxy);
        assert_eq!(client_ip(proxy, "not an address", &trusted), proxy);
    }
}
