//! Server-Sent Events endpoints.

use std::convert::Infallible;

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

use super::resume::{self, StreamItem};
use crate::AppState;
use crate::error::ApiError;
use crate::extract::{ApiPath, ApiQuery, AuthCaller, ClientIp};
use crate::limits::StreamPermit;
use crate::metrics::StreamKind;
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
    let items = resume::open(&state.app, spec, after).await?;
    let open = state.metrics.stream_opened(StreamKind::Sse);
    Ok(sse_response(items.map(move |item| {
        let _held = (&permit, &open);
        item
    })))
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

fn sse_response(items: impl Stream<Item = StreamItem> + Send + 'static) -> Response {
    let retry = Bytes::from(format!("retry: {RETRY_MS}\n\n"));
    let body = futures::stream::once(async move { retry })
        .chain(items.map(frame))
        .map(Ok::<_, Infallible>);
    let mut response = Body::from_stream(body).into_response();
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/event-stream"),
    );
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    headers.insert("x-accel-buffering", HeaderValue::from_static("no"));
    response
}
