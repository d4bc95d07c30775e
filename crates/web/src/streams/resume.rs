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

/// Opens a stream: subscribes first, then replays from `last_event_id`, then
/// follows the live tail, dropping replayed ids at the seam.
pub async fn open(
    app: &App, spec: StreamSpec, last_event_id: Option<i64>,
) -> Result<impl Stream<Item = StreamItem> + Send + 'static, AppError> {
    let subscription = app.subscribe(&spec).await?;
    let guest = spec.is_guest();
    let position = app.event_position().await?;
    let mut queue = VecDeque::new();
    let mut last_sent = position;
    match last_event_id {
        None => queue.push_back(StreamItem::Ready { position }),
        Some(after) => match app.replay(&spec, after, position, REPLAY_LIMIT).await? {
            Replay::Events { events, through } => {
                queue.extend(
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
                queue.push_back(StreamItem::Snapshot { position, json });
            }
        },
    }
    Ok(futures::stream::unfold(
        Tail {
            queue,
            subscription,
            last_sent,
            guest,
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
    /// A guest with a tracking link watches.
    guest: bool,
    finished: bool,
}

/// The event as this watcher may see it.
fn for_watcher(event: Arc<LiveEvent>, guest: bool) -> Arc<LiveEvent> {
    if guest { event.for_guest() } else { event }
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
                    let event = for_watcher(event, self.guest);
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
