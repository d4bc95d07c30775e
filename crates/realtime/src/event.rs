//! The event as watchers receive it, serialised once.

use std::sync::{Arc, OnceLock};

use bytes::Bytes;
use ordertrack_domain::{EventKind, FulfilmentKind, OrderId, StoreId, UserId};
use ordertrack_store::StoredEvent;
use serde::Serialize;
use serde_json::value::RawValue;

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
    /// The event as watchers get it, as JSON, ready to embed in a larger message
    /// (WebSocket) without being serialised again.
    pub json: Box<RawValue>,
    /// The complete SSE frame (`id:`, `event:`, `data:`, blank line).
    pub sse: Bytes,
    /// The event as a guest with the tracking link gets it, made the first
    /// time a guest watches.
    guest: OnceLock<Arc<LiveEvent>>,
}

/// The SSE frame of event `id` of `kind` carrying `data`.
fn sse_frame(id: i64, kind: EventKind, data: &str) -> Bytes {
    let mut sse = Vec::with_capacity(data.len() + 48);
    sse.extend_from_slice(format!("id: {id}\nevent: {}\ndata: ", kind.as_str()).as_bytes());
    sse.extend_from_slice(data.as_bytes());
    sse.extend_from_slice(b"\n\n");
    Bytes::from(sse)
}

/// Serialises an event body; serialising plain data with string keys cannot
/// fail, and were it to, watchers get `null` rather than a broken frame.
fn raw_json(body: &impl Serialize) -> Box<RawValue> {
    serde_json::value::to_raw_value(body).unwrap_or_else(|_| RawValue::NULL.to_owned())
}

/// The event's JSON as watchers get it: `id` first, then its public body
/// ([`NewEvent::public_json`](ordertrack_domain::NewEvent::public_json)),
/// as kept with the event or, for an event from before it was kept, made now.
/// Streams and webhooks carry exactly this.
pub fn public_json(stored: &StoredEvent) -> Box<RawValue> {
    let made;
    let body = match &stored.public_json {
        Some(kept) => kept.as_str(),
        None => {
            made = stored.event.public_json();
            made.as_str()
        }
    };
    let members = body.strip_prefix('{').unwrap_or("}").trim_start();
    let json = if members.starts_with('}') {
        format!("{{\"id\":{}}}", stored.id)
    } else {
        format!("{{\"id\":{},{members}", stored.id)
    };
    // A kept body is checked, not trusted: a damaged row must not break the
    // stream's framing; it gets its body made again instead.
    RawValue::from_string(json).unwrap_or_else(|_| {
        let body = stored.event.public_json();
        let members = body.strip_prefix('{').unwrap_or("}");
        RawValue::from_string(format!("{{\"id\":{},{members}", stored.id))
            .unwrap_or_else(|_| RawValue::NULL.to_owned())
    })
}

impl LiveEvent {
    /// An event as the store wrote it, its JSON as kept (made again only
    /// for events from before it was kept).
    pub fn new(stored: &StoredEvent) -> Self {
        let json = public_json(stored);
        let sse = sse_frame(stored.id, stored.event.kind, json.get());
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
            sse,
            guest: OnceLock::new(),
        }
    }

    /// This event as a guest with the tracking link sees it: nothing that
    /// names the customer (no `customer_id`); made once, shared by every
    /// guest watching.
    pub fn for_guest(&self) -> Arc<LiveEvent> {
        self.guest
            .get_or_init(|| {
                let mut body: serde_json::Map<String, serde_json::Value> =
                    serde_json::from_str(self.json.get()).unwrap_or_default();
                body.remove("customer_id");
                let json = raw_json(&body);
                let sse = sse_frame(self.id, self.kind, json.get());
                Arc::new(LiveEvent {
                    id: self.id,
                    kind: self.kind,
                    store_id: self.store_id,
                    order_id: self.order_id,
                    customer_id: self.customer_id,
                    order_version: self.order_version,
                    stations: self.stations.clone(),
                    summary_fulfilment: self.summary_fulfilment,
                    json,
                    sse,
                    guest: OnceLock::new(),
                })
            })
            .clone()
    }
}
