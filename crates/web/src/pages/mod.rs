//! Server-rendered pages (maud, compiled in). Every page works without
//! JavaScript for reading and for form posts; `assets/live.js` adds live
//! updates (SSE) and no-reload actions. Every form post carries a CSRF token
//! (double-submit: a cookie and a hidden field that must match).

mod account;
mod assets;
mod customer;
mod invitations;
mod kitchen;
mod layout;
mod manage;
mod receipts;
mod reports;
mod seller;
mod stores;
mod unsubscribe;
mod workflow;

use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use maud::Markup;
use ordertrack_app::{AppError, Caller, random_token};

use crate::AppState;
use crate::extract::{CookieName, Https, presented_token};
use crate::routes::Routes;

pub(crate) use assets::with_assets;
pub use assets::{Assets, asset_url};
pub use layout::{Flash, layout};

/// The CSRF cookie of signed-out visitors (see [`PageContext`]).
const CSRF: CookieName = CookieName::new("ordertrack_csrf", "__Host-ordertrack_csrf");

/// All page routes.
pub fn routes() -> Routes {
    Routes::new()
        .get("/static/app.css", stylesheet)
        .get("/static/live.js", script)
        .merge(assets::routes())
        .merge(account::routes())
        .merge(customer::routes())
        .merge(seller::routes())
        .merge(kitchen::routes())
        .merge(manage::routes())
        .merge(reports::routes())
        .merge(receipts::routes())
        .merge(invitations::routes())
        .merge(stores::routes())
        .merge(workflow::routes())
        .merge(unsubscribe::routes())
}

async fn stylesheet() -> Response {
    asset(
        "text/css; charset=utf-8",
        include_str!("../../assets/app.css"),
    )
}

async fn script() -> Response {
    asset(
        "text/javascript; charset=utf-8",
        include_str!("../../assets/live.js"),
    )
}

fn asset(content_type: &'static str, body: &'static str) -> Response {
    (
        [
            (header::CONTENT_TYPE, HeaderValue::from_static(content_type)),
            (header::CACHE_CONTROL, HeaderValue::from_static("no-cache")),
        ],
        body,
    )
        .into_response()
}

/// Who is looking at a page, and the CSRF token their forms carry.
///
/// A signed-in caller's token is bound to their session
/// ([`ordertrack_app::App::csrf_token`]): it changes at every sign-in and
/// dies with the session. A signed-out visitor's forms (sign in, register)
/// use a double-submit token: a random cookie that the posted field must
/// match, replaced at sign-in.
pub struct PageContext {
    pub caller: Option<Caller>,
    pub csrf: String,
    /// Set when the CSRF cookie was just created and must be sent.
    new_csrf_cookie: bool,
    /// The path and query, to come back to after signing in.
    pub here: String,
    /// Whether the page was asked for over HTTPS (its cookies are `Secure`).
    pub https: Https,
}

/// A page for signed-in callers only: its [`PageContext`] and who is signed
/// in; anyone else is sent to sign in and back here (`PageError::SignIn`).
/// Handlers bind the caller by reference: `SignedIn { ctx, ref caller }`.
pub struct SignedIn {
    pub ctx: PageContext,
    pub caller: Caller,
}

impl FromRequestParts<AppState> for SignedIn {
    type Rejection = Response;

    async fn from_request_parts(
        parts: &mut Parts, state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        let mut ctx = PageContext::from_request_parts(parts, state).await?;
        match ctx.caller.clone() {
            Some(caller) => Ok(SignedIn { ctx, caller }),
            None => Err(PageError::SignIn(std::mem::take(&mut ctx.here)).into_response()),
        }
    }
}

impl FromRequestParts<AppState> for PageContext {
    type Rejection = Response;

    async fn from_request_parts(
        parts: &mut Parts, state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        let caller = match presented_token(parts) {
            Some(token) => match state.app.authenticate(&token).await {
                Ok(caller) => Some(caller),
                Err(AppError::Unauthenticated) => None,
                Err(error) => return Err(PageError::from(error).into_response()),
            },
            None => None,
        };
        let existing = CSRF
            .read(&parts.headers)
            .filter(|v| v.len() == 32 && v.bytes().all(|b| b.is_ascii_hexdigit()));
        let (csrf, new_csrf_cookie) = match (&caller, existing) {
            (Some(caller), _) => (state.app.csrf_token(caller), false),
            (None, Some(token)) => (token, false),
            (None, None) => (random_token(), true),
        };
        let here = parts
            .uri
            .path_and_query()
            .map(|pq| pq.as_str().to_owned())
            .unwrap_or_else(|| "/".to_owned());
        Ok(PageContext {
            caller,
            csrf,
            new_csrf_cookie,
            here,
            https: Https(crate::extract::https(parts, state)),
        })
    }
}

impl PageContext {
    /// The signed-in caller, or a redirect to the login page.
    pub fn require_caller(&self) -> Result<&Caller, PageError> {
        self.caller
            .as_ref()
            .ok_or_else(|| PageError::SignIn(self.here.clone()))
    }

    /// Checks a posted CSRF token: against the session's for a signed-in
    /// caller, else against the cookie.
    pub fn check_csrf(&self, posted: &str) -> Result<(), PageError> {
        if !self.new_csrf_cookie && constant_time_eq(posted.as_bytes(), self.csrf.as_bytes()) {
            Ok(())
        } else {
            Err(PageError::Csrf)
        }
    }

    /// Renders a page (200), setting the CSRF cookie if it is new.
    pub fn page(&self, markup: Markup) -> Response {
        self.with_cookies(StatusCode::OK, markup.into_response())
    }

    fn with_cookies(&self, status: StatusCode, mut response: Response) -> Response {
        *response.status_mut() = status;
        if self.new_csrf_cookie {
            let cookie = CSRF.set(&self.csrf, None, self.https);
            response.headers_mut().append(header::SET_COOKIE, cookie);
        }
        response
    }

    /// Signs the browser in: the session cookie, and a new signed-out CSRF
    /// cookie, so that a token planted or seen before sign-in is worthless
    /// after it (the session's own token is new anyway).
    pub fn sign_in(&self, token: &str, ttl: time::Duration, mut response: Response) -> Response {
        let headers = response.headers_mut();
        headers.append(
            header::SET_COOKIE,
            crate::api::session_cookie(token, ttl.whole_seconds(), self.https),
        );
        headers.append(
            header::SET_COOKIE,
            CSRF.set(&random_token(), None, self.https),
        );
        response
    }

    /// Signs the browser out: deletes the session cookie.
    pub fn sign_out(&self, mut response: Response) -> Response {
        response.headers_mut().append(
            header::SET_COOKIE,
            crate::api::session_cookie("", 0, self.https),
        );
        response
    }
}

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// A form that carries nothing but its CSRF token (a one-button form).
#[derive(serde::Deserialize)]
pub struct CsrfForm {
    pub csrf: String,
}

/// A page's `?flash=` code, set by the redirect after a form post.
#[derive(serde::Deserialize)]
pub struct FlashQuery {
    pub flash: Option<String>,
}

/// Redirects with 303 (after a form post), optionally with a flash code.
/// Every byte a `Location` header may not carry as it is — controls,
/// spaces, non-ASCII — is percent-encoded: a path built from input (a
/// slug, a form's `back`) can never break the header or the response.
pub fn see_other(location: &str) -> Response {
    Redirect::to(&percent_encode(location, |byte| byte.is_ascii_graphic())).into_response()
}

/// What can go wrong on a page: shown as a friendly page, never a stack trace.
#[derive(Debug)]
pub enum PageError {
    /// Not signed in: go to the login page and come back.
    SignIn(String),
    /// The form's CSRF token did not match.
    Csrf,
    /// Any use-case error.
    App(AppError),
}

impl From<AppError> for PageError {
    fn from(error: AppError) -> Self {
        match error {
            AppError::Unauthenticated => PageError::SignIn("/".to_owned()),
            other => PageError::App(other),
        }
    }
}

impl IntoResponse for PageError {
    fn into_response(self) -> Response {
        let (status, title, message) = match self {
            PageError::SignIn(next) => {
                let location = format!("/login?next={}", encode_component(&next));
                return Redirect::to(&location).into_response();
            }
            PageError::Csrf => (
                StatusCode::FORBIDDEN,
                "This form has expired",
                "Go back, reload the page and try again.".to_owned(),
            ),
            PageError::App(error) => {
                let api = crate::error::ApiError::from(error);
                let title = match api.status() {
                    StatusCode::NOT_FOUND => "Not found",
                    StatusCode::FORBIDDEN => "Not allowed",
                    StatusCode::CONFLICT => "That changed in the meantime",
                    StatusCode::GONE => "No longer valid",
                    StatusCode::TOO_MANY_REQUESTS => "Slow down",
                    s if s.is_server_error() => "Something went wrong",
                    _ => "That didn't work",
                };
                let message = if api.status() == StatusCode::NOT_FOUND {
                    "There is nothing here — or nothing you may see.".to_owned()
                } else {
                    api.detail().to_owned()
                };
                (api.status(), title, message)
            }
        };
        let markup = layout::error_page(title, &message);
        (status, markup).into_response()
    }
}

/// Percent-encodes a URL component.
pub fn encode_component(text: &str) -> String {
    percent_encode(text, |byte| {
        byte.is_ascii_alphanumeric() || b"-_.~".contains(&byte)
    })
}

/// `text` with every byte `keep` refuses written as `%XX`.
fn percent_encode(text: &str, keep: impl Fn(u8) -> bool) -> String {
    let mut out = String::with_capacity(text.len());
    for byte in text.bytes() {
        if keep(byte) {
            out.push(char::from(byte));
        } else {
            out.push_str(&format!("%{byte:02X}"));
        }
    }
    out
}

/// `candidate` if it is a path on this site, safe to redirect to: `/`
/// alone, or `/` followed by anything but `/` or `\` (which browsers read
/// as the start of another host), with no backslash, control or bidi
/// character anywhere (URL parsers drop tabs and newlines, so
/// `/\t/evil.example` is `//evil.example`, and CR/LF could never be a
/// header). The one check for every `next` and `back` parameter.
pub fn same_site_path(candidate: Option<&str>) -> Option<&str> {
    let path = candidate?;
    let rest = path.strip_prefix('/')?;
    let safe = !rest.starts_with('/')
        && !path.contains('\\')
        && !path
            .chars()
            .any(|c| c.is_control() || ordertrack_domain::text::is_bidi_control(c));
    safe.then_some(path)
}

/// A safe place to go back to after signing in: a [`same_site_path`], else
/// the start page.
pub fn local_path(next: Option<&str>) -> String {
    same_site_path(next).unwrap_or("/").to_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_same_site_paths_are_places_to_go_back_to() {
        for good in [
            "/",
            "/orders",
            "/orders/7?flash=moved",
            "/kitchen/x?station=grill",
        ] {
            assert_eq!(local_path(Some(good)), good);
        }
        for bad in [
            "",
            "orders",
            "https://evil.example/",
            "//evil.example/x",
            "/\\evil.example/x",
            "/\t/evil.example/x",
            "\t//evil.example",
            "/orders\r\nSet-Cookie: x=1",
            "/a\\b",
            "/\u{202e}evil",
            "/\u{0}",
        ] {
            assert_eq!(local_path(Some(bad)), "/", "{bad:?} accepted");
        }
        assert_eq!(local_path(None), "/");
    }
}
