//! The event as watchers receive it, serialised once.

use bytes::Bytes;
use ordertrack_domain::{
    EventKind, FulfilmentKind, ItemChange, OrderId, OrderSummary, Role, StoreId, UserId,
};
use ordertrack_store::StoredEvent;
use serde::Serialize;
use serde_json::value::RawValue;
use time::OffsetDateTime;

/// An event as sent to clients (SSE `data:`, WebSocket `event`).
#[derive(Debug, Clone, Serialize)]
pub struct PublicEvent<'a> {
    /// Resume position (`Last-Event-ID`).
    pub id: i64,
    #[serde(rename = "type")]
    pub kind: EventKind,
    pub store_id: StoreId,
    pub order_id: OrderId,
    pub customer_id: UserId,
    pub order_version: i64,
    pub from: Option<&'a str>,
    pub to: Option<&'a str>,
    pub actor_role: Option<Role>,
    pub note: Option<&'a str>,
    pub item: Option<&'a ItemChange>,
    pub stations: &'a [String],
    #[serde(with = "time::serde::rfc3339")]
    pub at: OffsetDateTime,
    pub summary: &'a OrderSummary,
}

impl<'a> From<&'a StoredEvent> for PublicEvent<'a> {
    fn from(stored: &'a StoredEvent) -> Self {
        let event = &stored.event;
        PublicEvent {
            id: stored.id,
            kind: event.kind,
            store_id: event.store_id,
            order_id: event.order_id,
            customer_id: event.customer_id,
            order_version: event.order_version,
            from: event.from.as_deref(),
            to: event.to.as_deref(),
            actor_role: event.actor.map(|a| a.role),
            note: event.note.as_deref(),
            item: event.item.as_ref(),
            stations: &event.stations,
            at: event.at,
            summary: &event.summary,
        }
    }
}

/// A committed event, routed and serialised once for every watcher.
#[derive(Debug)]
pub struct LiveEvent {
    pub id: i64,
    pub kind: EventKind,
    pub store_id: StoreId,
    pub order_id: OrderId,
    pub customer_id: UserId,
    pub order_version: i64,
    pub stations: Vec<String>,
    /// The fulfilment of the order, as its summary carries it.
    pub summary_fulfilment: Option<FulfilmentKind>,
    /// The [`PublicEvent`] as JSON, ready to embed in a larger message
    /// (WebSocket) without being serialised again.
    pub json: Box<RawValue>,
    /// The complete SSE frame (`id:`, `event:`, `data:`, blank line).
    pub sse: Bytes,
}

impl LiveEvent {
    /// Serialises a stored event.
    pub fn new(stored: &StoredEvent) -> Self {
        let public = PublicEvent::from(stored);
        // Serialising plain data with string keys cannot fail; were it to,
        // watchers get `null` rather than a broken frame.
        let json =
            serde_json::value::to_raw_value(&public).unwrap_or_else(|_| RawValue::NULL.to_owned());
        let kind = stored.event.kind.as_str();
        let data = json.get();
        let mut sse = Vec::with_capacity(data.len() + 48);
        sse.extend_from_slice(format!("id: {}\nevent: {kind}\ndata: ", stored.id).as_bytes());
        sse.extend_from_slice(data.as_bytes());
        sse.extend_from_slice(b"\n\n");
        LiveEvent {
            id: stored.id,
            kind: stored.event.kind,
            store_id: stored.event.store_id,
            order_id: stored.event.order_id,
            customer_id: stored.event.customer_id,
            order_version: stored.event.order_version,
            stations: stored.event.stations.clone(),
            summary_fulfilment: stored.event.summary.fulfilment,
            json,
            sse: Bytes::from(sse),
        }
    }
}
