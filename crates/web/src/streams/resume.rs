//! Subscribe, replay, then follow live: the one place streams are built.

use std::collections::VecDeque;
use std::sync::Arc;

use bytes::Bytes;
use futures::Stream;
use ordertrack_app::{App, AppError, Caller};
use ordertrack_realtime::{Delivery, LiveEvent, SubscribeOptions, Subscription, Topic};
use ordertrack_store::EventFilter;
use serde::Serialize;

/// Most events replayed to a resuming client; further behind, it gets a
/// snapshot of the current state instead.
pub const REPLAY_LIMIT: u32 = 1000;

/// What a stream sends, whatever the transport.
#[derive(Debug, Clone)]
pub enum StreamItem {
    /// The stream is open; `position` is the id to resume from.
    Ready { position: i64 },
    /// The client was too far behind: the current state, and the position it reflects.
    Snapshot { position: i64, json: Bytes },
    /// A committed event.
    Event(Arc<LiveEvent>),
    /// Keep-alive.
    Heartbeat,
    /// The server is going away; reconnect and resume.
    Reconnect,
}

/// What a client watches, once authorised.
pub struct StreamSpec {
    pub topic: Topic,
    pub station: Option<String>,
    pub options: SubscribeOptions,
}

impl StreamSpec {
    fn filter(&self) -> EventFilter {
        match self.topic {
            Topic::Order(id) => EventFilter::Order(id),
            Topic::Customer(id) => EventFilter::Customer(id),
            Topic::Store(id) => EventFilter::Store(id),
        }
    }
}

/// Authorises a stream of one order for a signed-in caller.
pub async fn order_spec(app: &App, caller: &Caller, order: i64) -> Result<StreamSpec, AppError> {
    app.order(caller, order).await?;
    Ok(StreamSpec {
        topic: Topic::Order(order),
        station: None,
        options: caller_options(caller),
    })
}

/// Authorises a guest stream of one order by tracking token.
pub async fn tracking_spec(app: &App, token: &str) -> Result<StreamSpec, AppError> {
    let view = app.track(token).await?;
    Ok(StreamSpec {
        topic: Topic::Order(view.order.id),
        station: None,
        options: SubscribeOptions::default(),
    })
}

/// A customer's stream of all their orders.
pub fn customer_spec(caller: &Caller) -> StreamSpec {
    StreamSpec {
        topic: Topic::Customer(caller.user.id),
        station: None,
        options: caller_options(caller),
    }
}

/// Authorises a store's stream (its staff only; for anyone else it does not exist).
pub async fn store_spec(
    app: &App,
    caller: &Caller,
    slug: &str,
    station: Option<String>,
) -> Result<StreamSpec, AppError> {
    let store = app.store_by_slug(slug).await?;
    app.staff_role(caller, &store)
        .map_err(|_| AppError::NotFound("store"))?;
    if let Some(station) = &station
        && (station.is_empty() || station.len() > 40)
    {
        return Err(AppError::invalid("invalid_station", "unknown station"));
    }
    let mut options = caller_options(caller);
    options.station = station.clone();
    Ok(StreamSpec {
        topic: Topic::Store(store.id),
        station,
        options,
    })
}

fn caller_options(caller: &Caller) -> SubscribeOptions {
    SubscribeOptions {
        user_id: Some(caller.user.id),
        session_id: Some(caller.session_id.clone()),
        expires_at: Some(caller.session_expires_at),
        station: None,
    }
}

#[derive(Serialize)]
struct SnapshotBody<'a> {
    position: i64,
    reason: &'a str,
    orders: Vec<crate::api::views::OrderSnapshotBody>,
}

/// Opens a stream: subscribes first, then replays from `last_event_id`, then
/// follows the live tail, dropping replayed ids at the seam.
pub async fn open(
    app: &App,
    spec: StreamSpec,
    last_event_id: Option<i64>,
) -> Result<impl Stream<Item = StreamItem> + Send + 'static, AppError> {
    let filter = spec.filter();
    let subscription = app.hub().subscribe(spec.topic, spec.options.clone());
    let store = app.store();
    let mut queue = VecDeque::new();
    let position = store.last_event_position().await?;
    let mut last_sent = position;
    match last_event_id {
        None => queue.push_back(StreamItem::Ready { position }),
        Some(after) => {
            let events = if after <= position {
                store.events_after(filter, after, REPLAY_LIMIT + 1).await?
            } else {
                Vec::new()
            };
            if after > position || events.len() > REPLAY_LIMIT as usize {
                let reason = if after > position {
                    "unknown_position"
                } else {
                    "too_far_behind"
                };
                let orders = app.snapshot(&spec.topic).await?;
                let body = SnapshotBody {
                    position,
                    reason,
                    orders: orders
                        .iter()
                        .map(crate::api::views::OrderSnapshotBody::from)
                        .collect(),
                };
                let json =
                    serde_json::to_vec(&body).map_err(|e| AppError::Internal(e.to_string()))?;
                queue.push_back(StreamItem::Snapshot {
                    position,
                    json: Bytes::from(json),
                });
            } else {
                last_sent = after;
                for event in &events {
                    let live = LiveEvent::new(event);
                    if spec
                        .station
                        .as_deref()
                        .is_none_or(|s| live.concerns_station(s))
                    {
                        queue.push_back(StreamItem::Event(Arc::new(live)));
                    }
                    last_sent = event.id;
                }
                // Events replayed up to here; anything newer arrives live.
                last_sent = last_sent.max(after);
            }
        }
    }
    Ok(futures::stream::unfold(
        Tail {
            queue,
            subscription,
            last_sent,
            finished: false,
        },
        Tail::next,
    ))
}

struct Tail {
    queue: VecDeque<StreamItem>,
    subscription: Subscription,
    /// Highest event id already sent (replayed or snapshotted).
    last_sent: i64,
    finished: bool,
}

impl Tail {
    async fn next(mut self) -> Option<(StreamItem, Tail)> {
        if let Some(item) = self.queue.pop_front() {
            return Some((item, self));
        }
        if self.finished {
            return None;
        }
        loop {
            match self.subscription.recv().await? {
                Delivery::Event(event) => {
                    if event.id <= self.last_sent {
                        continue; // already replayed
                    }
                    self.last_sent = event.id;
                    return Some((StreamItem::Event(event), self));
                }
                Delivery::Heartbeat => return Some((StreamItem::Heartbeat, self)),
                Delivery::Reconnect => {
                    self.finished = true;
                    return Some((StreamItem::Reconnect, self));
                }
            }
        }
    }
}
