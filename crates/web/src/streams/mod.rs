//! Live streams: Server-Sent Events and WebSocket over the same resume logic.
//!
//! Every stream is authorised in `app` exactly like a read of what it shows
//! (an [`ordertrack_app::StreamSpec`]), then [`resume::open`] subscribes to
//! the hub, replays what the client missed from the database, and continues
//! with the live tail — no gap, no duplicate at the seam.

pub mod resume;
mod sse;
mod ws;

pub(crate) use sse::{DirectStream, LiveFrames, SseParts};
pub use ws::{ClientMessage, Subscribe, TopicRequest};

use crate::routes::Routes;

/// The stream routes (mounted under `/api/v1`).
pub fn routes() -> Routes {
    sse::routes().merge(ws::routes())
}

/// The OpenAPI description of [`routes`], paths as they are routed here.
pub(crate) fn doc() -> utoipa::openapi::OpenApi {
    use utoipa::OpenApi;
    let mut doc = sse::Doc::openapi();
    doc.merge(ws::Doc::openapi());
    doc
}
