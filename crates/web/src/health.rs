//! Liveness and readiness.

use axum::Router;
use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::get;

use crate::AppState;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/healthz", get(|| async { "ok" }))
        .route("/readyz", get(ready))
}

/// Ready when the database answers and the event bus (if any) is connected.
async fn ready(State(state): State<AppState>) -> (StatusCode, &'static str) {
    if let Err(error) = state.app.store().last_event_position().await {
        tracing::warn!(%error, "not ready");
        return (StatusCode::SERVICE_UNAVAILABLE, "database unavailable");
    }
    if state.app.bus_ready() == Some(false) {
        tracing::warn!("not ready: event bus unreachable");
        return (StatusCode::SERVICE_UNAVAILABLE, "event bus unavailable");
    }
    (StatusCode::OK, "ready")
}
