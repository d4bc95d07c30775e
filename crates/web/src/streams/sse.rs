//! Server-Sent Events endpoints.

use std::convert::Infallible;
use std::sync::{Arc, Mutex};

use axum::body::Body;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use futures::{Stream, StreamExt};
use serde::Deserialize;
use utoipa::IntoParams;

use ordertrack_app::{ErrorCode, StreamSpec};
use ordertrack_domain::OrderId;
use ordertrack_realtime::{Delivery, Subscription};

use super::resume::{self, Seam, StreamItem};
use crate::AppState;
use crate::error::ApiError;
use crate::extract::{ApiPath, ApiQuery, AuthCaller, ClientIp};
use crate::limits::StreamPermit;
use crate::metrics::{OpenStream, StreamKind};
use crate::routes::Routes;

/// How long a client waits before reconnecting (the `retry:` hint), in ms.
const RETRY_MS: u32 = 2000;

pub fn routes() -> Routes {
    Routes::new()
        .get("/orders/{id}/events", order_events)
        .get("/track/{token}/events", tracking_events)
        .get("/me/events", my_events)
        .get("/stores/{slug}/events", store_events)
}

/// This module's operations in the OpenAPI document.
#[derive(utoipa::OpenApi)]
#[openapi(paths(order_events, tracking_events, my_events, store_events))]
pub(crate) struct Doc;

#[derive(Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
struct ResumeQuery {
    last_event_id: Option<String>,
}

#[derive(Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
struct StoreStreamQuery {
    last_event_id: Option<String>,
    station: Option<String>,
}

/// The resume position: the `Last-Event-ID` header, else `?last_event_id=`.
fn last_event_id(headers: &HeaderMap, query: Option<&str>) -> Result<Option<i64>, ApiError> {
    let raw = match headers.get("last-event-id") {
        Some(value) => Some(value.to_str().unwrap_or("invalid")),
        None => query,
    };
    match raw.map(str::trim) {
        None | Some("") => Ok(None),
        Some(text) => text
            .parse::<i64>()
            .ok()
            .filter(|id| *id >= 0)
            .map(Some)
            .ok_or_else(|| {
                ApiError::new(
                    StatusCode::BAD_REQUEST,
                    ErrorCode::InvalidLastEventId,
                    "Last-Event-ID must be an event id this server sent",
                )
            }),
    }
}

#[utoipa::path(
    get,
    path = "/orders/{id}/events",
    tag = "streams",
    params(("id" = i64, Path, description = "The order's id"), ResumeQuery, ("Last-Event-ID" = Option<String>, Header, description = "Resume after this event id (as the `last_event_id` query parameter)")),
    responses((status = 200, description = "Server-Sent Events: `snapshot`, order events, `reconnect`; each `id` is the event position", content_type = "text/event-stream", body = String))
)]
async fn order_events(
    State(state): State<AppState>, AuthCaller(caller): AuthCaller, ClientIp(client): ClientIp,
    ApiPath(id): ApiPath<OrderId>, ApiQuery(query): ApiQuery<ResumeQuery>, headers: HeaderMap,
) -> Result<Response, ApiError> {
    let after = last_event_id(&headers, query.last_event_id.as_deref())?;
    let spec = state.app.order_stream(&caller, id).await?;
    let permit = state
        .limits
        .open_stream(Some(caller.user.id.get()), client)?;
    event_stream(&state, spec, after, permit).await
}

#[utoipa::path(
    get,
    path = "/track/{token}/events",
    tag = "streams",
    params(("token" = String, Path, description = "The order's tracking token"), ResumeQuery, ("Last-Event-ID" = Option<String>, Header, description = "Resume after this event id (as the `last_event_id` query parameter)")),
    responses((status = 200, description = "Server-Sent Events: `snapshot`, order events, `reconnect`; each `id` is the event position", content_type = "text/event-stream", body = String)),
    security(())
)]
async fn tracking_events(
    State(state): State<AppState>, ClientIp(client): ClientIp, ApiPath(token): ApiPath<String>,
    ApiQuery(query): ApiQuery<ResumeQuery>, headers: HeaderMap,
) -> Result<Response, ApiError> {
    let after = last_event_id(&headers, query.last_event_id.as_deref())?;
    let spec = state.app.tracking_stream(&token).await?;
    let permit = state.limits.open_stream(None, client)?;
    event_stream(&state, spec, after, permit).await
}

#[utoipa::path(
    get,
    path = "/me/events",
    tag = "streams",
    params(ResumeQuery, ("Last-Event-ID" = Option<String>, Header, description = "Resume after this event id (as the `last_event_id` query parameter)")),
    responses((status = 200, description = "Server-Sent Events: `snapshot`, order events, `reconnect`; each `id` is the event position", content_type = "text/event-stream", body = String))
)]
async fn my_events(
    State(state): State<AppState>, AuthCaller(caller): AuthCaller, ClientIp(client): ClientIp,
    ApiQuery(query): ApiQuery<ResumeQuery>, headers: HeaderMap,
) -> Result<Response, ApiError> {
    let after = last_event_id(&headers, query.last_event_id.as_deref())?;
    let permit = state
        .limits
        .open_stream(Some(caller.user.id.get()), client)?;
    event_stream(&state, state.app.customer_stream(&caller), after, permit).await
}

#[utoipa::path(
    get,
    path = "/stores/{slug}/events",
    tag = "streams",
    params(("slug" = String, Path, description = "The store's slug"), StoreStreamQuery, ("Last-Event-ID" = Option<String>, Header, description = "Resume after this event id (as the `last_event_id` query parameter)")),
    responses((status = 200, description = "Server-Sent Events: `snapshot`, order events, `reconnect`; each `id` is the event position", content_type = "text/event-stream", body = String))
)]
async fn store_events(
    State(state): State<AppState>, AuthCaller(caller): AuthCaller, ClientIp(client): ClientIp,
    ApiPath(slug): ApiPath<String>, ApiQuery(query): ApiQuery<StoreStreamQuery>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let after = last_event_id(&headers, query.last_event_id.as_deref())?;
    let spec = state
        .app
        .store_stream(&caller, &slug, query.station)
        .await?;
    let permit = state
        .limits
        .open_stream(Some(caller.user.id.get()), client)?;
    event_stream(&state, spec, after, permit).await
}

/// The stream `spec` authorised, holding `permit` (its place in the
/// per-user and per-address counts) for as long as it is open.
async fn event_stream(
    state: &AppState, spec: StreamSpec, after: Option<i64>, permit: StreamPermit,
) -> Result<Response, ApiError> {
    let opened = resume::open(&state.app, spec, after).await?;
    let open = state.metrics.stream_opened(StreamKind::Sse);
    Ok(sse_response(SseStream {
        opened,
        held: (permit, open),
    }))
}

/// An open SSE stream, before its first frame: what it sends and what it
/// holds (its place in the stream counts) for as long as it is open.
pub(crate) struct SseStream {
    opened: resume::Opened,
    held: (StreamPermit, OpenStream),
}

/// The parts of an SSE stream its connection writes itself
/// ([`SseStream::into_parts`]).
pub(crate) struct SseParts {
    /// The frames before anything live: the retry hint, then the ready
    /// mark or what the client missed.
    pub first: Vec<Bytes>,
    /// The live tail: ends when the hub drops it.
    pub subscription: Subscription,
    /// Turns each of its deliveries into a frame.
    pub frames: LiveFrames,
    /// Kept until the stream ends.
    pub held: Box<dyn Send>,
}

/// Turns a live stream's deliveries into SSE frames.
pub(crate) struct LiveFrames(Seam);

impl LiveFrames {
    /// The frame `delivery` sends; `None`: nothing (already replayed).
    pub fn frame(&mut self, delivery: &Delivery) -> Option<Bytes> {
        self.0.item(delivery).map(frame)
    }
}

impl SseStream {
    /// The stream's parts, for a connection that writes them itself.
    pub fn into_parts(self) -> SseParts {
        let resume::Opened { first, tail } = self.opened;
        SseParts {
            first: std::iter::once(retry_frame())
                .chain(first.into_iter().map(frame))
                .collect(),
            subscription: tail.subscription,
            frames: LiveFrames(tail.seam),
            held: Box::new(self.held),
        }
    }

    /// The stream's frames, as a response body writes them.
    fn into_frames(self) -> impl Stream<Item = Bytes> + Send + 'static {
        let held = self.held;
        futures::stream::once(async { retry_frame() }).chain(self.opened.into_stream().map(
            move |item| {
                let _held = &held;
                frame(item)
            },
        ))
    }
}

/// An SSE response's stream, for the connection to take and write itself
/// (see `server::live`); untaken, the response's body writes it. Shared
/// with the body, which takes it when first polled.
#[derive(Clone)]
pub(crate) struct DirectStream(Arc<Mutex<Option<SseStream>>>);

impl DirectStream {
    /// The stream, unless the body (or another taker) has it already.
    pub fn take(&self) -> Option<SseStream> {
        self.0
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .take()
    }
}

fn retry_frame() -> Bytes {
    Bytes::from(format!("retry: {RETRY_MS}\n\n"))
}

/// Encodes stream items as SSE frames; event frames are shared bytes,
/// serialised once for all watchers.
fn frame(item: StreamItem) -> Bytes {
    match item {
        StreamItem::Event(event) => event.sse.clone(),
        StreamItem::Ready { position } => Bytes::from(format!(
            "id: {position}\nevent: ready\ndata: {{\"position\":{position}}}\n\n"
        )),
        StreamItem::Snapshot { position, json } => {
            let mut frame = format!("id: {position}\nevent: snapshot\ndata: ").into_bytes();
            frame.extend_from_slice(json.get().as_bytes());
            frame.extend_from_slice(b"\n\n");
            Bytes::from(frame)
        }
        StreamItem::Heartbeat => Bytes::from_static(b": heartbeat\n\n"),
        StreamItem::Reconnect => Bytes::from_static(b"event: reconnect\ndata: {}\n\n"),
    }
}

fn sse_response(stream: SseStream) -> Response {
    let direct = DirectStream(Arc::new(Mutex::new(Some(stream))));
    let taken = direct.clone();
    let body = futures::stream::once(async move { taken.take() })
        .flat_map(|stream| futures::stream::iter(stream).flat_map(SseStream::into_frames))
        .map(Ok::<_, Infallible>);
    let mut response = Body::from_stream(body).into_response();
    response.extensions_mut().insert(direct);
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/event-stream"),
    );
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    headers.insert("x-accel-buffering", HeaderValue::from_static("no"));
    response
}
