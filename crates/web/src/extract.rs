//! Extractors: request bodies, paths and queries whose rejections are
//! problem+json, and the caller's identity.

use std::net::IpAddr;

use axum::extract::ws::WebSocketUpgrade;
use axum::extract::{FromRequest, FromRequestParts, Path, Query, Request};
use axum::http::request::Parts;
use axum::http::{HeaderValue, header};
use axum_extra::extract::CookieJar;
use ordertrack_app::{Caller, SessionRef};
use serde::de::DeserializeOwned;

use crate::AppState;
use crate::error::ApiError;

/// Name of the session cookie used by pages (over plain HTTP).
pub const SESSION_COOKIE: &str = "ordertrack_session";
/// Name of the session cookie set over HTTPS: `Secure`, and the `__Host-`
/// prefix makes browsers refuse it unless it was set by this host over
/// HTTPS, with `Path=/` and no `Domain` (a sibling subdomain or a plain-HTTP
/// man in the middle cannot plant or overwrite it).
pub const SECURE_SESSION_COOKIE: &str = "__Host-ordertrack_session";

/// A cookie the order desk sets, by the name it has over plain HTTP and
/// over HTTPS.
#[derive(Debug, Clone, Copy)]
pub struct CookieName {
    plain: &'static str,
    secure: &'static str,
}

/// The session cookie.
pub const SESSION: CookieName = CookieName {
    plain: SESSION_COOKIE,
    secure: SECURE_SESSION_COOKIE,
};

impl CookieName {
    /// Both names.
    pub const fn new(plain: &'static str, secure: &'static str) -> CookieName {
        CookieName { plain, secure }
    }

    /// The value the request presents: the HTTPS one first (only this host
    /// over HTTPS can have set it), else the plain one.
    pub fn read(&self, headers: &axum::http::HeaderMap) -> Option<String> {
        let jar = CookieJar::from_headers(headers);
        jar.get(self.secure)
            .or_else(|| jar.get(self.plain))
            .map(|c| c.value().to_owned())
    }

    /// A `Set-Cookie` value: HttpOnly (scripts cannot read it), SameSite=Lax
    /// (other sites cannot post with it), and over HTTPS `Secure` under the
    /// `__Host-` name. `max_age`: seconds (0 deletes it); `None`: until the
    /// browser closes.
    pub fn set(&self, value: &str, max_age: Option<i64>, https: Https) -> HeaderValue {
        let mut cookie = match https {
            Https(true) => format!(
                "{}={value}; Path=/; HttpOnly; SameSite=Lax; Secure",
                self.secure
            ),
            Https(false) => format!("{}={value}; Path=/; HttpOnly; SameSite=Lax", self.plain),
        };
        if let Some(seconds) = max_age {
            cookie.push_str(&format!("; Max-Age={seconds}"));
        }
        HeaderValue::from_str(&cookie).unwrap_or_else(|_| HeaderValue::from_static(""))
    }
}

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
    SESSION.read(&parts.headers)
}

/// Whether the request carries the session in a cookie (and not as a
/// Bearer token): what a browser sends along by itself, even on requests
/// another site makes it send.
pub fn cookie_authenticated(headers: &axum::http::HeaderMap) -> bool {
    !headers.contains_key(header::AUTHORIZATION) && SESSION.read(headers).is_some()
}

/// A signed-in caller; without valid credentials the request is 401.
pub struct AuthCaller(pub Caller);

impl FromRequestParts<AppState> for AuthCaller {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut Parts, state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        let token = presented_token(parts).ok_or(ordertrack_app::AppError::Unauthenticated)?;
        Ok(AuthCaller(state.app.authenticate(&token).await?))
    }
}

/// The session a valid token names, not yet looked up: for the order
/// changes, which check it against the cache marks their one read of the
/// order returns ([`ordertrack_app::Asker::Session`]). Without a token, or
/// with a bad or expired one, the request is 401.
pub struct AuthSession(pub SessionRef);

impl FromRequestParts<AppState> for AuthSession {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut Parts, state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        let token = presented_token(parts).ok_or(ordertrack_app::AppError::Unauthenticated)?;
        Ok(AuthSession(state.app.session_of(&token)?))
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
        parts: &mut Parts, state: &AppState,
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
        parts: &mut Parts, state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        let forwarded: Vec<&str> = header_list(parts, X_FORWARDED_FOR).collect();
        Ok(ClientIp(client_ip(
            peer(parts),
            &forwarded.join(","),
            &state.trusted_proxies,
        )))
    }
}

const X_FORWARDED_FOR: &str = "x-forwarded-for";
const X_FORWARDED_PROTO: &str = "x-forwarded-proto";

/// The TCP peer. The server always inserts it; a request that did not come
/// over a socket (none do in production) has the unspecified address.
fn peer(parts: &Parts) -> IpAddr {
    parts
        .extensions
        .get::<axum::extract::ConnectInfo<std::net::SocketAddr>>()
        .map_or(IpAddr::from([0, 0, 0, 0]), |info| info.0.ip())
}

/// Whether the client reached us over HTTPS: the request came over this
/// server's own TLS, or the operator said every client does
/// (`--public-url https://…`), or a trusted proxy (`--trusted-proxy`) says
/// so with `X-Forwarded-Proto: https` (the last value, the one it added). Cookies set over HTTPS are `Secure` ([`CookieName::set`]); on
/// plain HTTP, e.g. the demo on localhost, they must not be, or the
/// browser would never send them back.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Https(pub bool);

impl FromRequestParts<AppState> for Https {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(
        parts: &mut Parts, state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        Ok(Https(https(parts, state)))
    }
}

/// See [`Https`].
pub fn https(parts: &Parts, state: &AppState) -> bool {
    if state.public_https || parts.extensions.get::<crate::tls::OverTls>().is_some() {
        return true;
    }
    state.trusted_proxies.contains(&peer(parts))
        && header_list(parts, X_FORWARDED_PROTO)
            .next_back()
            .is_some_and(|proto| proto.eq_ignore_ascii_case("https"))
}

/// The items of a list-valued header (`X-Forwarded-For: a, b`), over all
/// its lines, in order, trimmed.
fn header_list<'a>(parts: &'a Parts, name: &str) -> impl DoubleEndedIterator<Item = &'a str> {
    parts
        .headers
        .get_all(name)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(','))
        .map(str::trim)
}

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
