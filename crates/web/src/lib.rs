//! The order desk over HTTP: the JSON API under `/api/v1`, health checks,
//! and (in their own modules) pages and live streams.
//!
//! Handlers are thin: they parse the request into a use-case call on
//! [`App`] and render its answer. Errors become RFC 9457 problem+json in
//! exactly one place, [`error`]. [`Application`] puts a whole instance
//! together (store, hub, event bus, [`App`]) for the binary and the tests.

pub mod api;
mod application;
pub mod error;
pub mod extract;
mod health;
mod idempotency;
pub mod limits;
pub mod metrics;
pub mod pages;
pub mod routes;
mod server;
pub mod streams;
pub mod tls;

pub use application::{Application, BuildError, Database, NatsSettings, Settings};
pub use limits::Limits;
pub use server::SHUTDOWN_GRACE;
pub use tls::TlsFiles;

use std::future::Future;

use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::http::Request;
use axum::http::{HeaderName, HeaderValue, header};
use ordertrack_app::App;
use routes::Routes;
use tokio::net::TcpListener;
use tower_http::catch_panic::CatchPanicLayer;
use tower_http::request_id::{
    MakeRequestId, PropagateRequestIdLayer, RequestId, SetRequestIdLayer,
};
use tower_http::set_header::SetResponseHeaderLayer;
use tower_http::trace::TraceLayer;

/// Largest request body accepted, in bytes.
pub const MAX_BODY_BYTES: usize = 64 * 1024;

/// How often idle streams get a heartbeat comment.
pub const HEARTBEAT: std::time::Duration = std::time::Duration::from_secs(15);

/// What every handler can reach. One shared allocation: axum clones the
/// state for every middleware and extractor of every request, and a clone
/// of each of its parts was one atomic count per part, both ways, on
/// cache lines both cores write (a tenth of the request side's time).
#[derive(Clone)]
pub struct AppState(std::sync::Arc<SharedState>);

impl AppState {
    /// Shares `state` among the requests.
    pub fn new(state: SharedState) -> Self {
        AppState(std::sync::Arc::new(state))
    }
}

impl std::ops::Deref for AppState {
    type Target = SharedState;

    fn deref(&self) -> &SharedState {
        &self.0
    }
}

/// What [`AppState`] shares.
pub struct SharedState {
    pub app: App,
    /// Proxies whose `X-Forwarded-For` names the client (see
    /// [`extract::ClientIp`]); empty: the TCP peer is the client.
    pub trusted_proxies: std::sync::Arc<[std::net::IpAddr]>,
    /// Connections, live streams and writes counted against their limits.
    pub limits: std::sync::Arc<limits::Limiter>,
    /// This instance's figures for `/metrics`.
    pub metrics: std::sync::Arc<metrics::Metrics>,
    /// Clients reach this instance over HTTPS whatever the connection
    /// says (`--public-url https://…`: TLS ends before it).
    pub public_https: bool,
    /// The embedded assets with their versioned names.
    pub assets: std::sync::Arc<pages::Assets>,
}

/// Every route, in one table with the router that serves them
/// ([`routes::table`] lists them).
fn routes() -> Routes {
    Routes::new()
        .merge(health::routes())
        .merge(metrics::routes())
        .merge(pages::routes())
        .merge(api::openapi::routes())
        .nest("/api/v1", api::routes().merge(streams::routes()), |api| {
            api.fallback(error::not_found)
                .method_not_allowed_fallback(error::method_not_allowed)
        })
}

/// The whole HTTP surface.
pub fn router(state: AppState) -> Router {
    routes()
        .into_router()
        .fallback(error::not_found)
        .method_not_allowed_fallback(error::method_not_allowed)
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            idempotency::keyed,
        ))
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            pages::with_assets,
        ))
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            limits::write_rate,
        ))
        .layer(DefaultBodyLimit::max(MAX_BODY_BYTES))
        .layer(CatchPanicLayer::custom(error::panic_response))
        .layer(axum::middleware::from_fn_with_state(
            state.metrics.clone(),
            metrics::count_requests,
        ))
        .layer(TraceLayer::new_for_http().make_span_with(request_span))
        // The request id: the client's `X-Request-Id` if it sent one, else
        // a fresh one; on every log line of the request (its span) and
        // echoed in the response.
        .layer(PropagateRequestIdLayer::new(X_REQUEST_ID))
        .layer(SetRequestIdLayer::new(X_REQUEST_ID, RandomRequestId))
        .layer(SetResponseHeaderLayer::if_not_present(
            header::CONTENT_SECURITY_POLICY,
            HeaderValue::from_static(
                "default-src 'self'; frame-ancestors 'none'; base-uri 'self'; form-action 'self'",
            ),
        ))
        .layer(SetResponseHeaderLayer::if_not_present(
            header::X_CONTENT_TYPE_OPTIONS,
            HeaderValue::from_static("nosniff"),
        ))
        .layer(SetResponseHeaderLayer::if_not_present(
            header::REFERRER_POLICY,
            HeaderValue::from_static("no-referrer"),
        ))
        .layer(SetResponseHeaderLayer::if_not_present(
            HeaderName::from_static("x-frame-options"),
            HeaderValue::from_static("DENY"),
        ))
        .with_state(state)
}

/// The header a request's id travels in.
const X_REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");

/// A fresh random id for each request that brings none.
#[derive(Clone, Copy)]
struct RandomRequestId;

impl MakeRequestId for RandomRequestId {
    fn make_request_id<B>(&mut self, _: &Request<B>) -> Option<RequestId> {
        HeaderValue::from_str(&ordertrack_app::token::random_token())
            .ok()
            .map(RequestId::new)
    }
}

/// The span every log line of a request is written in: at `info`, so the
/// request id is on every line the default filter lets through.
fn request_span<B>(request: &Request<B>) -> tracing::Span {
    let id = request
        .headers()
        .get(X_REQUEST_ID)
        .and_then(|id| id.to_str().ok())
        .unwrap_or("");
    // The route template, not the path: paths carry tracking tokens.
    let route = request
        .extensions()
        .get::<axum::extract::MatchedPath>()
        .map_or("unmatched", |route| route.as_str());
    tracing::info_span!(
        "request",
        request_id = id,
        method = %request.method(),
        route,
    )
}

/// Serves the order desk on `listener` until `shutdown` resolves, then tells
/// stream clients to reconnect and lets in-flight requests finish (for at
/// most [`SHUTDOWN_GRACE`]).
pub async fn serve(
    listener: TcpListener, state: AppState, tls: Option<tokio_rustls::TlsAcceptor>,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let hub = state.app.hub().clone();
    let heartbeat = hub.start_heartbeat(HEARTBEAT);
    let edge = server::Edge {
        limiter: state.limits.clone(),
        trusted_proxies: state.trusted_proxies.clone(),
        tls,
    };
    // Streams never finish by themselves: on shutdown, tell their clients
    // to reconnect (elsewhere) and end them, so in-flight requests drain.
    server::run(listener, router(state), edge, shutdown, || hub.close_all()).await;
    heartbeat.abort();
    Ok(())
}
