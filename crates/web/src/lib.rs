//! The order desk over HTTP: the JSON API under `/api/v1`, health checks,
//! and (in their own modules) pages and live streams.
//!
//! Handlers are thin: they parse the request into a use-case call on
//! [`App`] and render its answer. Errors become RFC 9457 problem+json in
//! exactly one place, [`error`].

pub mod api;
pub mod error;
pub mod extract;
mod health;
pub mod pages;
pub mod streams;

use std::future::Future;

use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::http::{HeaderName, HeaderValue, header};
use ordertrack_app::App;
use tokio::net::TcpListener;
use tower_http::catch_panic::CatchPanicLayer;
use tower_http::set_header::SetResponseHeaderLayer;
use tower_http::trace::TraceLayer;

/// Largest request body accepted, in bytes.
pub const MAX_BODY_BYTES: usize = 64 * 1024;

/// How often idle streams get a heartbeat comment.
pub const HEARTBEAT: std::time::Duration = std::time::Duration::from_secs(15);

/// What every handler can reach.
#[derive(Clone)]
pub struct AppState {
    pub app: App,
}

/// The whole HTTP surface.
pub fn router(state: AppState) -> Router {
    Router::new()
        .merge(health::router())
        .merge(pages::router())
        .nest("/api/v1", api::router().merge(streams::router()))
        .fallback(error::not_found)
        .method_not_allowed_fallback(error::method_not_allowed)
        .layer(DefaultBodyLimit::max(MAX_BODY_BYTES))
        .layer(CatchPanicLayer::custom(error::panic_response))
        .layer(TraceLayer::new_for_http())
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

/// How long in-flight requests get to finish after the shutdown signal.
/// A client that never reads its socket would otherwise hold shutdown forever.
pub const SHUTDOWN_GRACE: std::time::Duration = std::time::Duration::from_secs(5);

/// Serves the order desk on `listener` until `shutdown` resolves, then tells
/// stream clients to reconnect and lets in-flight requests finish (for at
/// most [`SHUTDOWN_GRACE`]).
pub async fn serve(
    listener: TcpListener,
    state: AppState,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let hub = state.app.hub().clone();
    let heartbeat = hub.start_heartbeat(HEARTBEAT);
    let (signalled, on_signal) = tokio::sync::oneshot::channel::<()>();
    let server = axum::serve(listener, router(state)).with_graceful_shutdown(async move {
        shutdown.await;
        // Streams never finish by themselves: tell their clients to
        // reconnect (elsewhere) and end them, so in-flight requests can
        // drain and the server can stop.
        hub.close_all();
        let _ = signalled.send(());
    });
    let grace_expired = async move {
        match on_signal.await {
            Ok(()) => tokio::time::sleep(SHUTDOWN_GRACE).await,
            Err(_) => std::future::pending().await,
        }
    };
    let result = tokio::select! {
        result = server => result,
        () = grace_expired => {
            tracing::warn!("shutdown grace period over; closing the remaining connections");
            Ok(())
        }
    };
    heartbeat.abort();
    result
}
