//! Liveness and readiness.

use axum::extract::State;
use axum::http::StatusCode;

use ordertrack_app::NotReady;

use crate::AppState;
use crate::routes::Routes;

pub fn routes() -> Routes {
    Routes::new()
        .get("/healthz", || async { "ok" })
        .get("/readyz", ready)
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
