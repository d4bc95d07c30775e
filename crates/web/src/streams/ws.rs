//! WebSocket endpoint: one socket, many subscriptions, same topics, resume
//! semantics and authorisation as the SSE streams.
//!
//! Client → server (JSON text frames):
//! `{"type":"subscribe","id":"a","topic":"order","order_id":7,"last_event_id":12}`,
//! topics `order` (`order_id`), `track` (`token`), `me`, `store` (`store`, optional `station`);
//! `{"type":"unsubscribe","id":"a"}`.
//! Server → client: `subscribed`, `ready` (`position`), `event` (`event`),
//! `snapshot`, `closed` (resubscribe with your last id), `error`, `reconnect`.

use std::collections::HashMap;

use axum::Router;
use axum::extract::State;
use axum::extract::ws::{Message, Utf8Bytes, WebSocket, WebSocketUpgrade};
use axum::response::Response;
use axum::routing::get;
use futures::{SinkExt, StreamExt};
use ordertrack_app::{AppError, Caller};
use serde::Deserialize;
use serde_json::json;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

use super::resume::{self, StreamItem, StreamSpec};
use crate::AppState;
use crate::error::ApiError;
use crate::extract::MaybeCaller;

/// Outgoing messages buffered per socket before subscriptions wait.
const OUTBOX: usize = 256;
/// Most subscriptions one socket may hold.
const MAX_SUBSCRIPTIONS: usize = 32;

pub fn router() -> Router<AppState> {
    Router::new().route("/ws", get(upgrade))
}

async fn upgrade(
    State(state): State<AppState>,
    MaybeCaller(caller): MaybeCaller,
    ws: WebSocketUpgrade,
) -> Response {
    ws.max_message_size(16 * 1024)
        .on_upgrade(move |socket| session(socket, state, caller))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ClientMessage {
    #[serde(rename = "type")]
    kind: String,
    id: Option<String>,
    topic: Option<String>,
    order_id: Option<i64>,
    store: Option<String>,
    station: Option<String>,
    token: Option<String>,
    last_event_id: Option<i64>,
}

async fn session(socket: WebSocket, state: AppState, caller: Option<Caller>) {
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
        let parsed: ClientMessage = match serde_json::from_str(text.as_str()) {
            Ok(parsed) => parsed,
            Err(error) => {
                send(&outbox, json!({"type": "error", "status": 400, "code": "invalid_message", "detail": error.to_string()})).await;
                continue;
            }
        };
        subscriptions.retain(|_, task| !task.is_finished());
        match (parsed.kind.as_str(), parsed.id.clone()) {
            ("subscribe", Some(id)) => {
                if subscriptions.contains_key(&id) || subscriptions.len() >= MAX_SUBSCRIPTIONS {
                    send(&outbox, json!({"type": "error", "id": id, "status": 409, "code": "subscription_refused", "detail": "duplicate id or too many subscriptions"})).await;
                    continue;
                }
                match authorise(&state, caller.as_ref(), &parsed).await {
                    Ok(spec) => match resume::open(&state.app, spec, parsed.last_event_id).await {
                        Ok(items) => {
                            send(&outbox, json!({"type": "subscribed", "id": id})).await;
                            let task = tokio::spawn(forward(id.clone(), items, outbox.clone()));
                            subscriptions.insert(id, task);
                        }
                        Err(error) => send_error(&outbox, &id, error.into()).await,
                    },
                    Err(error) => send_error(&outbox, &id, error).await,
                }
            }
            ("unsubscribe", Some(id)) => {
                if let Some(task) = subscriptions.remove(&id) {
                    task.abort();
                }
                send(&outbox, json!({"type": "unsubscribed", "id": id})).await;
            }
            _ => {
                send(&outbox, json!({"type": "error", "status": 400, "code": "invalid_message", "detail": "expected subscribe or unsubscribe with an id"})).await;
            }
        }
    }
    for (_, task) in subscriptions {
        task.abort();
    }
    drop(outbox);
    let _ = writer.await;
}

async fn authorise(
    state: &AppState,
    caller: Option<&Caller>,
    message: &ClientMessage,
) -> Result<StreamSpec, ApiError> {
    let signed_in = || caller.ok_or(AppError::Unauthenticated);
    let missing = |field: &str| {
        AppError::invalid(
            "invalid_message",
            format!("`{field}` is required for this topic"),
        )
    };
    let spec = match message.topic.as_deref() {
        Some("order") => {
            let id = message.order_id.ok_or_else(|| missing("order_id"))?;
            resume::order_spec(&state.app, signed_in()?, id).await?
        }
        Some("track") => {
            let token = message.token.as_deref().ok_or_else(|| missing("token"))?;
            resume::tracking_spec(&state.app, token).await?
        }
        Some("me") => resume::customer_spec(signed_in()?),
        Some("store") => {
            let slug = message.store.as_deref().ok_or_else(|| missing("store"))?;
            resume::store_spec(&state.app, signed_in()?, slug, message.station.clone()).await?
        }
        _ => {
            return Err(AppError::invalid(
                "unknown_topic",
                "topic must be order, track, me or store",
            )
            .into());
        }
    };
    Ok(spec)
}

async fn forward(
    id: String,
    items: impl futures::Stream<Item = StreamItem> + Send + 'static,
    outbox: mpsc::Sender<Utf8Bytes>,
) {
    let quoted = serde_json::to_string(&id).unwrap_or_default();
    let mut items = std::pin::pin!(items);
    while let Some(item) = items.next().await {
        let text = match item {
            StreamItem::Event(event) => {
                let json = String::from_utf8_lossy(&event.json);
                format!(r#"{{"type":"event","id":{quoted},"event":{json}}}"#)
            }
            StreamItem::Ready { position } => {
                format!(r#"{{"type":"ready","id":{quoted},"position":{position}}}"#)
            }
            StreamItem::Snapshot { json, .. } => {
                let json = String::from_utf8_lossy(&json);
                format!(r#"{{"type":"snapshot","id":{quoted},"snapshot":{json}}}"#)
            }
            StreamItem::Heartbeat => continue,
            StreamItem::Reconnect => r#"{"type":"reconnect"}"#.to_owned(),
        };
        if outbox.send(Utf8Bytes::from(text)).await.is_err() {
            return;
        }
    }
    // The hub dropped this subscription (too slow, access ended, shutdown).
    let _ = outbox
        .send(Utf8Bytes::from(format!(
            r#"{{"type":"closed","id":{quoted}}}"#
        )))
        .await;
}

async fn send(outbox: &mpsc::Sender<Utf8Bytes>, value: serde_json::Value) {
    let _ = outbox.send(Utf8Bytes::from(value.to_string())).await;
}

async fn send_error(outbox: &mpsc::Sender<Utf8Bytes>, id: &str, error: ApiError) {
    send(
        outbox,
        json!({"type": "error", "id": id, "status": error.status().as_u16(), "code": error.code(), "detail": error.detail()}),
    )
    .await;
}
