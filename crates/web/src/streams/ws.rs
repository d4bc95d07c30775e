//! WebSocket endpoint: one socket, many subscriptions, same topics, resume
//! semantics and authorisation as the SSE streams.
//!
//! Client → server (JSON text frames, [`ClientMessage`]):
//! `{"type":"subscribe","id":"a","topic":"order","order_id":7,"last_event_id":12}`,
//! topics `order` (`order_id`), `track` (`token`), `me`, `store` (`store`, optional `station`);
//! `{"type":"unsubscribe","id":"a"}`.
//! Server → client ([`ServerMessage`]): `subscribed`, `ready` (`position`),
//! `event` (`event`), `snapshot`, `closed` (resubscribe with your last id),
//! `error`, `reconnect`, `unsubscribed`.
//!
//! The socket keeps the session its token named when it was opened, never
//! the identity: every subscribe reads the session and the memberships from
//! the store again, as a request does. So a logged-out session gets 401 and
//! a removed staff member 404 on the same socket, as over HTTP; the hub ends
//! the subscriptions their access opened (`closed`).
//!
//! A socket signed in by the session cookie opens only from this site's own
//! pages (`Origin` is this host): browsers send cookies along with any
//! site's WebSocket, and no CORS check stands in the way. One signed in by
//! a Bearer token may be opened from anywhere; refusals are 403 problems.

use std::collections::HashMap;

use axum::extract::State;
use axum::extract::ws::{Message, Utf8Bytes, WebSocket};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use futures::{SinkExt, StreamExt};
use ordertrack_app::{AppError, Caller, ErrorCode, SessionRef, StreamSpec};
use ordertrack_domain::OrderId;
use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

use super::resume::{self, StreamItem};
use crate::AppState;
use crate::error::ApiError;
use crate::extract::{ApiWebSocketUpgrade, ClientIp, MaybeSession, cookie_authenticated};
use crate::metrics::StreamKind;
use crate::routes::Routes;

/// Outgoing messages buffered per socket before subscriptions wait.
const OUTBOX: usize = 256;
/// Most subscriptions one socket may hold.
const MAX_SUBSCRIPTIONS: usize = 32;

pub fn routes() -> Routes {
    Routes::new().get("/ws", upgrade)
}

/// This module's operations in the OpenAPI document.
#[derive(utoipa::OpenApi)]
#[openapi(paths(upgrade))]
pub(crate) struct Doc;

/// A socket is one live stream in the per-user and per-address counts,
/// however many subscriptions it holds; it keeps its place until it closes.
#[utoipa::path(
    get,
    path = "/ws",
    tag = "streams",
    responses((status = 101, description = "A WebSocket: JSON messages `subscribe`/`unsubscribe` in, events and snapshots out (docs/realtime.md)")),
    security((), ("bearer" = []), ("session_cookie" = []))
)]
async fn upgrade(
    State(state): State<AppState>, headers: HeaderMap, MaybeSession(session): MaybeSession,
    ClientIp(client): ClientIp, ApiWebSocketUpgrade(ws): ApiWebSocketUpgrade,
) -> Response {
    // Browsers attach cookies to a WebSocket opened by any site's script,
    // and no CORS check guards the socket: the session cookie opens one only
    // from this site's own pages. A Bearer token is never sent by itself,
    // so a client that presents one may be anywhere.
    if cookie_authenticated(&headers) && !same_origin(&headers) {
        return ApiError::new(
            StatusCode::FORBIDDEN,
            ErrorCode::CrossOrigin,
            "a WebSocket signed in with the session cookie must be opened from this site's pages",
        )
        .into_response();
    }
    let user = session.as_ref().map(SessionRef::user_id);
    let permit = match state.limits.open_stream(user, client) {
        Ok(permit) => permit,
        Err(refused) => return refused.into_response(),
    };
    ws.max_message_size(16 * 1024)
        .on_upgrade(move |socket| async move {
            let _held = (permit, state.metrics.stream_opened(StreamKind::WebSocket));
            run(socket, state, session).await;
        })
}

/// Whether the request's `Origin` is this site: its host and port are the
/// `Host` the request was sent to. No `Origin` (or `null`) is not.
fn same_origin(headers: &HeaderMap) -> bool {
    let text = |name| {
        headers
            .get(name)
            .and_then(|v: &HeaderValue| v.to_str().ok())
    };
    let (Some(origin), Some(host)) = (text(header::ORIGIN), text(header::HOST)) else {
        return false;
    };
    origin
        .strip_prefix("https://")
        .or_else(|| origin.strip_prefix("http://"))
        .is_some_and(|authority| authority.eq_ignore_ascii_case(host))
}

/// What a client sends.
#[derive(Deserialize)]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
pub enum ClientMessage {
    /// Open a subscription.
    Subscribe(Subscribe),
    /// End the subscription `id`.
    Unsubscribe {
        /// The client's name for it.
        id: String,
    },
}

impl ClientMessage {
    /// Reads one text frame; what is not a message is refused with a 400
    /// `invalid_message` (sent back as an `error` message).
    pub fn parse(text: &str) -> Result<ClientMessage, ApiError> {
        serde_json::from_str(text).map_err(|error| {
            ApiError::new(
                axum::http::StatusCode::BAD_REQUEST,
                ErrorCode::InvalidMessage,
                error.to_string(),
            )
        })
    }
}

/// A subscription request. The topic's own fields are checked once the id
/// is known, so a refusal names the subscription it refuses.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Subscribe {
    id: String,
    topic: Option<TopicName>,
    order_id: Option<i64>,
    store: Option<String>,
    station: Option<String>,
    token: Option<String>,
    last_event_id: Option<i64>,
}

impl Subscribe {
    /// What the subscription asks for: its topic, with the fields that
    /// topic needs (`order_id`, `token`, `store`).
    pub fn topic(&self) -> Result<TopicRequest<'_>, ApiError> {
        let missing = |field: &str| {
            ApiError::from(AppError::invalid(
                ErrorCode::InvalidMessage,
                format!("`{field}` is required for this topic"),
            ))
        };
        Ok(match self.topic {
            Some(TopicName::Order) => {
                TopicRequest::Order(self.order_id.ok_or_else(|| missing("order_id"))?)
            }
            Some(TopicName::Track) => {
                TopicRequest::Track(self.token.as_deref().ok_or_else(|| missing("token"))?)
            }
            Some(TopicName::Me) => TopicRequest::Me,
            Some(TopicName::Store) => TopicRequest::Store {
                slug: self.store.as_deref().ok_or_else(|| missing("store"))?,
                station: self.station.as_deref(),
            },
            Some(TopicName::Unknown) | None => {
                return Err(AppError::invalid(
                    ErrorCode::UnknownTopic,
                    "topic must be order, track, me or store",
                )
                .into());
            }
        })
    }
}

/// A subscription's topic and what it names, checked.
#[derive(Debug, PartialEq, Eq)]
pub enum TopicRequest<'a> {
    /// One order's changes.
    Order(i64),
    /// One order's changes, by its tracking token.
    Track(&'a str),
    /// The caller's own orders.
    Me,
    /// A store's orders (a kitchen screen: one station's).
    Store {
        /// The store's slug.
        slug: &'a str,
        /// Only this station's changes.
        station: Option<&'a str>,
    },
}

#[derive(Deserialize)]
#[serde(rename_all = "snake_case")]
enum TopicName {
    Order,
    Track,
    Me,
    Store,
    /// Any other name: refused with `unknown_topic`.
    #[serde(other)]
    Unknown,
}

/// What the server sends. Events and snapshots are embedded as the bytes
/// they were serialised to once, not serialised again.
#[derive(Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
enum ServerMessage<'a> {
    Subscribed {
        id: &'a str,
    },
    Ready {
        id: &'a str,
        position: i64,
    },
    Event {
        id: &'a str,
        event: &'a RawValue,
    },
    Snapshot {
        id: &'a str,
        snapshot: &'a RawValue,
    },
    /// The hub ended the subscription (too slow, access ended, shutdown).
    Closed {
        id: &'a str,
    },
    Unsubscribed {
        id: &'a str,
    },
    Reconnect,
    Error {
        #[serde(skip_serializing_if = "Option::is_none")]
        id: Option<&'a str>,
        status: u16,
        code: ErrorCode,
        detail: &'a str,
    },
}

impl ServerMessage<'_> {
    fn text(&self) -> Option<Utf8Bytes> {
        match serde_json::to_string(self) {
            Ok(text) => Some(Utf8Bytes::from(text)),
            Err(error) => {
                // Plain fields and ready-made JSON: cannot happen.
                tracing::error!(%error, "unserialisable WebSocket message");
                None
            }
        }
    }

    async fn send(&self, outbox: &mpsc::Sender<Utf8Bytes>) -> bool {
        match self.text() {
            Some(text) => outbox.send(text).await.is_ok(),
            None => true,
        }
    }
}

/// Sends `error` as the refusal of subscription `id` (or of the message).
async fn send_error(outbox: &mpsc::Sender<Utf8Bytes>, id: Option<&str>, error: ApiError) {
    ServerMessage::Error {
        id,
        status: error.status().as_u16(),
        code: error.code(),
        detail: error.detail(),
    }
    .send(outbox)
    .await;
}

async fn run(socket: WebSocket, state: AppState, session: Option<SessionRef>) {
    let (mut sink, mut incoming) = socket.split();
    let (outbox, mut outgoing) = mpsc::channel::<Utf8Bytes>(OUTBOX);
    let writer = tokio::spawn(async move {
        while let Some(text) = outgoing.recv().await {
            if sink.send(Message::Text(text)).await.is_err() {
                break;
            }
        }
        let _ = sink.close().await;
    });
    let mut subscriptions: HashMap<String, JoinHandle<()>> = HashMap::new();
    while let Some(Ok(message)) = incoming.next().await {
        let text = match message {
            Message::Text(text) => text,
            Message::Close(_) => break,
            _ => continue,
        };
        let parsed = match ClientMessage::parse(text.as_str()) {
            Ok(parsed) => parsed,
            Err(error) => {
                send_error(&outbox, None, error).await;
                continue;
            }
        };
        subscriptions.retain(|_, task| !task.is_finished());
        match parsed {
            ClientMessage::Subscribe(request) => {
                let id = request.id.as_str();
                if subscriptions.contains_key(id) || subscriptions.len() >= MAX_SUBSCRIPTIONS {
                    let error = ApiError::new(
                        axum::http::StatusCode::CONFLICT,
                        ErrorCode::SubscriptionRefused,
                        "duplicate id or too many subscriptions",
                    );
                    send_error(&outbox, Some(id), error).await;
                    continue;
                }
                let opened = match authorise(&state, session.as_ref(), &request).await {
                    Ok(spec) => resume::open(&state.app, spec, request.last_event_id)
                        .await
                        .map(resume::Opened::into_stream)
                        .map_err(ApiError::from),
                    Err(error) => Err(error),
                };
                match opened {
                    Ok(items) => {
                        ServerMessage::Subscribed { id }.send(&outbox).await;
                        let task = tokio::spawn(forward(request.id.clone(), items, outbox.clone()));
                        subscriptions.insert(request.id, task);
                    }
                    Err(error) => send_error(&outbox, Some(id), error).await,
                }
            }
            ClientMessage::Unsubscribe { id } => {
                if let Some(task) = subscriptions.remove(&id) {
                    task.abort();
                }
                ServerMessage::Unsubscribed { id: &id }.send(&outbox).await;
            }
        }
    }
    for (_, task) in subscriptions {
        task.abort();
    }
    drop(outbox);
    let _ = writer.await;
}

/// Authorises a subscription as the socket's session stands *now*.
async fn authorise(
    state: &AppState, session: Option<&SessionRef>, request: &Subscribe,
) -> Result<StreamSpec, ApiError> {
    let app = &state.app;
    let spec = match request.topic()? {
        TopicRequest::Order(order) => {
            app.order_stream(&caller(state, session).await?, OrderId::new(order))
                .await?
        }
        TopicRequest::Track(token) => app.tracking_stream(token).await?,
        TopicRequest::Me => app.customer_stream(&caller(state, session).await?),
        TopicRequest::Store { slug, station } => {
            let caller = caller(state, session).await?;
            app.store_stream(&caller, slug, station.map(str::to_owned))
                .await?
        }
    };
    Ok(spec)
}

/// The socket's caller as of now: its session must still be open, and its
/// memberships are read afresh.
async fn caller(state: &AppState, session: Option<&SessionRef>) -> Result<Caller, AppError> {
    match session {
        Some(session) => state.app.session_caller(session).await,
        None => Err(AppError::Unauthenticated),
    }
}

async fn forward(
    id: String, items: impl futures::Stream<Item = StreamItem> + Send + 'static,
    outbox: mpsc::Sender<Utf8Bytes>,
) {
    let id = id.as_str();
    let mut items = std::pin::pin!(items);
    while let Some(item) = items.next().await {
        let message = match &item {
            StreamItem::Event(event) => ServerMessage::Event {
                id,
                event: &event.json,
            },
            StreamItem::Ready { position } => ServerMessage::Ready {
                id,
                position: *position,
            },
            StreamItem::Snapshot { json, .. } => ServerMessage::Snapshot { id, snapshot: json },
            StreamItem::Heartbeat => continue,
            StreamItem::Reconnect => ServerMessage::Reconnect,
        };
        if !message.send(&outbox).await {
            return;
        }
    }
    // The hub dropped this subscription (too slow, access ended, shutdown).
    ServerMessage::Closed { id }.send(&outbox).await;
}
