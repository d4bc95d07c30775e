//! Live fan-out of committed order events.
//!
//! The store hands every committed batch to [`Hub::publish`] in commit
//! order. The hub serialises each event once ([`LiveEvent`]: the JSON and
//! the ready-to-send SSE frame, shared by reference) and routes it to the
//! subscribers of its topics: the order, its customer, its store. The
//! subscribers are spread over shards, one fan-out thread each. Every
//! subscriber has a bounded queue, or writes its deliveries itself from the
//! fan-out thread ([`DirectWriter`], a live SSE connection); one that falls
//! behind is dropped (its stream ends and the client resumes from its last
//! event id), so a slow reader never grows server memory or delays anyone
//! else.
//!
//! Access changes travel the same way: the store logs a logout or a staff
//! change in the event log with the change itself, and the hub that reads
//! that entry (on every instance) ends the streams it invalidates.

mod event;
mod hub;
pub mod nats;

pub use event::{LiveEvent, public_json};
pub use hub::{
    Delivery, DirectWriter, Hub, QUEUE_CAPACITY, Refused, SubscribeOptions, Subscription, Topic,
};
pub use nats::{Feeder, NatsBus, NatsOptions, RelayListener, RelayQueue, relay_channel};

use ordertrack_store::LogEntry;

/// Where committed events go to reach watchers: the in-process [`Hub`], or
/// (scaled out) a message bus that feeds every instance's hub.
pub trait EventBus: Send + Sync + 'static {
    /// Publishes committed event-log entries, in commit order.
    fn publish(&self, events: &[LogEntry]);
}

impl EventBus for Hub {
    fn publish(&self, events: &[LogEntry]) {
        Hub::publish(self, events);
    }
}
