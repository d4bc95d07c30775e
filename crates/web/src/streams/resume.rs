//! Subscribe, replay, then follow live: the one routine every stream runs,
//! whatever the transport. What it may show comes from `app` as an
//! authorised [`StreamSpec`]; its data too ([`App::subscribe`],
//! [`App::replay`]).

use std::collections::VecDeque;
use std::sync::Arc;

use futures::Stream;
use ordertrack_app::{App, AppError, Replay, StreamSpec};
use ordertrack_realtime::{Delivery, LiveEvent, Subscription};
use serde::Serialize;
use serde_json::value::RawValue;

use crate::api::views::OrderSnapshotBody;

/// Most events replayed to a resuming client; further behind, it gets a
/// snapshot of the current state instead.
pub const REPLAY_LIMIT: u32 = 1000;

/// What a stream sends, whatever the transport.
#[derive(Debug, Clone)]
pub enum StreamItem {
    /// The stream is open; `position` is the id to resume from.
    Ready { position: i64 },
    /// The client was too far behind: the current state (as JSON), and the
    /// position it reflects.
    Snapshot { position: i64, json: Box<RawValue> },
    /// A committed event.
    Event(Arc<LiveEvent>),
    /// Keep-alive.
    Heartbeat,
    /// The server is going away; reconnect and resume.
    Reconnect,
}

#[derive(Serialize)]
struct SnapshotBody<'a> {
    position: i64,
    reason: &'a str,
    orders: Vec<OrderSnapshotBody>,
}

/// A stream [`open`] opened: what it sends first (the ready mark, or what
/// the client missed), then its live tail.
pub struct Opened {
    /// Sent before anything live.
    pub first: VecDeque<StreamItem>,
    /// Everything after.
    pub tail: LiveTail,
}

/// The live part of a stream: its subscription and what turns each
/// delivery into what this watcher is sent.
pub struct LiveTail {
    pub subscription: Subscription,
    pub seam: Seam,
}

/// Turns deliveries into stream items at the seam between replay and live:
/// drops what was already replayed and shows each event as this watcher
/// may see it. Not `Clone`: it is the stream's own record of what it
/// sent, and a copy would drift from it.
#[derive(Debug)]
pub struct Seam {
    /// Highest event id already sent (replayed or snapshotted).
    last_sent: i64,
    /// A guest with a tracking link watches.
    guest: bool,
}

impl Seam {
    /// What `delivery` sends this watcher; `None`: nothing (already sent).
    pub fn item(&mut self, delivery: &Delivery) -> Option<StreamItem> {
        match delivery {
            Delivery::Event(event) => {
                if event.id <= self.last_sent {
                    return None; // already replayed
                }
                self.last_sent = event.id;
                Some(StreamItem::Event(for_watcher(event.clone(), self.guest)))
            }
            Delivery::Heartbeat => Some(StreamItem::Heartbeat),
            Delivery::Reconnect => Some(StreamItem::Reconnect),
        }
    }
}

/// Opens a stream: subscribes first, then replays from `last_event_id`, then
/// follows the live tail, dropping replayed ids at the seam.
pub async fn open(
    app: &App, spec: StreamSpec, last_event_id: Option<i64>,
) -> Result<Opened, AppError> {
    let subscription = app.subscribe(&spec).await?;
    let guest = spec.is_guest();
    let position = app.event_position().await?;
    let mut first = VecDeque::new();
    let mut last_sent = position;
    match last_event_id {
        None => first.push_back(StreamItem::Ready { position }),
        Some(after) => match app.replay(&spec, after, position, REPLAY_LIMIT).await? {
            Replay::Events { events, through } => {
                first.extend(
                    events
                        .into_iter()
                        .map(|event| StreamItem::Event(for_watcher(event, guest))),
                );
                // Events replayed up to here; anything newer arrives live.
                last_sent = through;
            }
            Replay::Snapshot { reason, orders } => {
                let body = SnapshotBody {
                    position,
                    reason: reason.as_str(),
                    orders: orders.iter().map(OrderSnapshotBody::from).collect(),
                };
                let json = serde_json::value::to_raw_value(&body)
                    .map_err(|e| AppError::Internal(e.to_string()))?;
                first.push_back(StreamItem::Snapshot { position, json });
            }
        },
    }
    Ok(Opened {
        first,
        tail: LiveTail {
            subscription,
            seam: Seam { last_sent, guest },
        },
    })
}

impl Opened {
    /// The stream's items, in order, until the hub ends the subscription
    /// (after a `Reconnect`, nothing more).
    pub fn into_stream(self) -> impl Stream<Item = StreamItem> + Send + 'static {
        futures::stream::unfold(
            Tail {
                first: self.first,
                tail: self.tail,
                finished: false,
            },
            Tail::next,
        )
    }
}

struct Tail {
    first: VecDeque<StreamItem>,
    tail: LiveTail,
    finished: bool,
}

/// The event as this watcher may see it.
fn for_watcher(event: Arc<LiveEvent>, guest: bool) -> Arc<LiveEvent> {
    if guest { event.for_guest() } else { event }
}

impl Tail {
    async fn next(mut self) -> Option<(StreamItem, Tail)> {
        if let Some(item) = self.first.pop_front() {
            return Some((item, self));
        }
        if self.finished {
            return None;
        }
        loop {
            let delivery = self.tail.subscription.recv().await?;
            if let Some(item) = self.tail.seam.item(&delivery) {
                self.finished = matches!(item, StreamItem::Reconnect);
                return Some((item, self));
            }
        }
    }
}
