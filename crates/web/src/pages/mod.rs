//! Server-rendered pages (maud, compiled in). Every page works without
//! JavaScript for reading and for form posts; `assets/live.js` adds live
//! updates (SSE) and no-reload actions. Every form post carries a CSRF token
//! (double-submit: a cookie and a hidden field that must match).

mod account;
mod customer;
mod kitchen;
mod layout;
mod manage;
mod seller;

use axum::Router;
use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::get;
use axum_extra::extract::CookieJar;
use maud::Markup;
use ordertrack_app::{AppError, Caller};

use crate::AppState;
use crate::extract::presented_token;

pub use layout::{Flash, layout};

/// Name of the CSRF cookie.
const CSRF_COOKIE: &str = "ordertrack_csrf";

/// All page routes.
pub fn router() -> Router<AppState> {
    Router::new()
        .route("/static/app.css", get(stylesheet))
        .route("/static/live.js", get(script))
        .merge(account::router())
        .merge(customer::router())
        .merge(seller::router())
        .merge(kitchen::router())
        .merge(manage::router())
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
pub struct PageContext {
    pub caller: Option<Caller>,
    pub csrf: String,
    /// Set when the CSRF cookie was just created and must be sent.
    new_csrf_cookie: bool,
    /// The path and query, to come back to after signing in.
    pub here: String,
}

impl FromRequestParts<AppState> for PageContext {
    type Rejection = Response;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        let caller = match presented_token(parts) {
            Some(token) => match state.app.authenticate(&token).await {
                Ok(caller) => Some(caller),
                Err(AppError::Unauthenticated) => None,
                Err(error) => return Err(PageError::from(error).into_response()),
            },
            None => None,
        };
        let jar = CookieJar::from_headers(&parts.headers);
        let existing = jar
            .get(CSRF_COOKIE)
            .map(|c| c.value().to_owned())
            .filter(|v| v.len() == 32 && v.bytes().all(|b| b.is_ascii_hexdigit()));
        let (csrf, new_csrf_cookie) = match existing {
            Some(token) => (token, false),
            None => (ordertrack_app::random_token(), true),
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

    /// Checks a posted CSRF token against the cookie.
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
        if self.new_csrf_cookie
            && let Ok(value) = HeaderValue::from_str(&format!(
                "{CSRF_COOKIE}={}; Path=/; HttpOnly; SameSite=Lax",
                self.csrf
            ))
        {
            response.headers_mut().append(header::SET_COOKIE, value);
        }
        response
    }
}

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// Redirects with 303 (after a form post), optionally with a flash code.
pub fn see_other(location: &str) -> Response {
    Redirect::to(location).into_response()
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
    let mut out = String::with_capacity(text.len());
    for byte in text.bytes() {
        if byte.is_ascii_alphanumeric() || b"-_.~".contains(&byte) {
            out.push(byte as char);
        } else {
            out.push_str(&format!("%{byte:02X}"));
        }
    }
    out
}

/// A safe place to go back to after signing in: a local path only.
pub fn local_path(next: Option<&str>) -> String {
    match next {
        Some(path) if path.starts_with('/') && !path.starts_with("//") && !path.contains('\\') => {
            path.to_owned()
        }
        _ => "/".to_owned(),
    }
}
