//! Liveness and readiness.

use axum::Router;
use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::get;

use ordertrack_app::NotReady;

use crate::AppState;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/healthz", get(|| async { "ok" }))
        .route("/readyz", get(ready))
}

/// Ready when the database answers and the event bus (if any) is connected.
async fn ready(State(state): State<AppState>) -> (StatusCode, &'static str) {
    match state.app.ready().await {
        Ok(()) => (StatusCode::OK, "ready"),
        Err(error) => {
            tracing::warn!(%error, "not ready");
            let reason = match error {
                NotReady::Database(_) => "database unavailable",
                NotReady::Bus => "event bus unavailable",
            };
            (StatusCode::SERVICE_UNAVAILABLE, reason)
        }
    }
}
