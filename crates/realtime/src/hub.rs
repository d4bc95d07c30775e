//! The in-process hub: topics, subscribers and their bounded queues.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, Weak};
use std::time::Duration;

use flume::TrySendError;
use ordertrack_domain::{FulfilmentKind, OrderId, StoreId, UserId};
use ordertrack_store::{AccessChange, CommitListener, LogEntry};
use time::OffsetDateTime;

use crate::LiveEvent;

/// Deliveries a subscriber may have waiting before it counts as too slow
/// and is dropped. Larger than the biggest commit batch (512 on SQLite), so
/// one burst committed together never drops a watcher that reads promptly.
/// Queues allocate as they fill, so an idle subscriber costs a few hundred
/// bytes, not a queue's worth.
pub const QUEUE_CAPACITY: usize = 1024;
const _: () = assert!(
    QUEUE_CAPACITY > ordertrack_store::sqlite::MAX_BATCH
        && QUEUE_CAPACITY > ordertrack_store::postgres::MAX_BATCH
);

/// What a watcher follows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Topic {
    /// One order.
    Order(OrderId),
    /// All orders of one customer.
    Customer(UserId),
    /// All orders of one store.
    Store(StoreId),
}

/// What a subscriber receives.
#[derive(Debug, Clone)]
pub enum Delivery {
    /// A committed event.
    Event(Arc<LiveEvent>),
    /// Nothing happened; keep the connection warm.
    Heartbeat,
    /// The server is going away: reconnect (elsewhere) and resume.
    Reconnect,
}

/// Who subscribes, so the hub can end their streams when access ends.
#[derive(Debug, Clone, Default)]
pub struct SubscribeOptions {
    /// The signed-in user (none for guest tracking links).
    pub user_id: Option<UserId>,
    /// The session the stream was opened with.
    pub session_id: Option<String>,
    /// When the user's session expires.
    pub expires_at: Option<OffsetDateTime>,
    /// The store whose staff role let the user open this stream (a store
    /// stream, or an order stream opened as staff): when that role changes
    /// or is taken away, the stream ends.
    pub staff_of: Option<StoreId>,
    /// Only events touching this kitchen station (store topics).
    pub station: Option<String>,
    /// Only events of orders with this fulfilment (a driver's store stream:
    /// deliveries).
    pub fulfilment: Option<FulfilmentKind>,
}

impl SubscribeOptions {
    /// Whether this subscriber wants an event touching `stations` of an
    /// order with `fulfilment` (unknown for events written before events
    /// carried it: those pass).
    pub fn wants(&self, stations: &[String], fulfilment: Option<FulfilmentKind>) -> bool {
        self.station
            .as_ref()
            .is_none_or(|station| stations.iter().any(|s| s == station))
            && self
                .fulfilment
                .is_none_or(|only| fulfilment.is_none_or(|kind| kind == only))
    }
}

struct Subscriber {
    queue: flume::Sender<Delivery>,
    options: SubscribeOptions,
}

/// What the fan-out thread is handed, in order.
enum Fanout {
    /// Committed events, for their watchers.
    Events(Vec<Arc<LiveEvent>>),
    /// Everything before has been handed out: say so.
    Flush(std::sync::mpsc::SyncSender<()>),
}

#[derive(Default)]
struct Inner {
    topics: Mutex<HashMap<Topic, HashMap<u64, Subscriber>>>,
    /// Hands committed events to the fan-out thread, in commit order.
    fanout: Option<flume::Sender<Fanout>>,
    /// Told every entry the hub publishes, before its watchers are.
    followers: Mutex<Vec<Arc<dyn CommitListener>>>,
    next_id: AtomicU64,
    closed: AtomicBool,
    dropped_slow: AtomicU64,
}

impl Inner {
    fn topics(&self) -> MutexGuard<'_, HashMap<Topic, HashMap<u64, Subscriber>>> {
        // A panic while holding the lock leaves the map itself consistent.
        self.topics
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

/// The in-process fan-out. Cheap to clone (shared).
#[derive(Clone)]
pub struct Hub {
    inner: Arc<Inner>,
}

impl Default for Hub {
    fn default() -> Self {
        Hub::new()
    }
}

/// A live subscription; dropping it unsubscribes.
pub struct Subscription {
    id: u64,
    topic: Topic,
    queue: flume::Receiver<Delivery>,
    hub: Weak<Inner>,
}

impl Subscription {
    /// The next delivery; `None` once the hub dropped this subscriber (too
    /// slow, access revoked, server shutting down).
    pub async fn recv(&mut self) -> Option<Delivery> {
        self.queue.recv_async().await.ok()
    }

    /// The topic followed.
    pub fn topic(&self) -> Topic {
        self.topic
    }
}

impl Drop for Subscription {
    fn drop(&mut self) {
        if let Some(inner) = self.hub.upgrade() {
            let mut topics = inner.topics();
            if let Some(subscribers) = topics.get_mut(&self.topic) {
                subscribers.remove(&self.id);
                if subscribers.is_empty() {
                    topics.remove(&self.topic);
                }
            }
        }
    }
}

impl Hub {
    /// An empty hub, with its fan-out thread.
    ///
    /// Events are handed to watchers' queues by a thread of the hub's own,
    /// not by the thread that publishes them (on one instance the store's
    /// writer, before it acknowledges the commit): handing one event to
    /// 10,000 watchers wakes 10,000 tasks, and neither the writer's next
    /// batch nor the acknowledgement of this one should wait for that (nor
    /// the request task queue behind the watchers' tasks it woke). The
    /// thread ends with the hub.
    pub fn new() -> Self {
        let (fanout, batches) = flume::unbounded::<Fanout>();
        let inner = Arc::new(Inner {
            fanout: Some(fanout),
            ..Inner::default()
        });
        let hub = Arc::downgrade(&inner);
        let started = std::thread::Builder::new()
            .name("ordertrack-fanout".into())
            .spawn(move || {
                while let Ok(next) = batches.recv() {
                    match next {
                        Fanout::Events(events) => {
                            let Some(inner) = hub.upgrade() else { return };
                            let hub = Hub { inner };
                            for event in events {
                                hub.publish_live(event);
                            }
                        }
                        Fanout::Flush(done) => {
                            let _ = done.send(());
                        }
                    }
                }
            });
        match started {
            Ok(_) => Hub { inner },
            Err(error) => {
                // Without a thread, the publisher delivers itself.
                tracing::warn!(%error, "no fan-out thread; events are delivered inline");
                Hub {
                    inner: Arc::new(Inner::default()),
                }
            }
        }
    }

    /// Starts the one task that sends heartbeats to every subscriber and
    /// ends streams whose session expired (no per-connection timers).
    pub fn start_heartbeat(&self, every: Duration) -> tokio::task::JoinHandle<()> {
        let hub = Arc::downgrade(&self.inner);
        tokio::spawn(async move {
            let mut ticks = tokio::time::interval(every);
            ticks.tick().await;
            loop {
                ticks.tick().await;
                let Some(inner) = hub.upgrade() else { return };
                let now = OffsetDateTime::now_utc();
                let mut topics = inner.topics();
                for subscribers in topics.values_mut() {
                    subscribers.retain(|_, subscriber| {
                        if subscriber.options.expires_at.is_some_and(|at| at <= now) {
                            return false;
                        }
                        // A full queue means the subscriber is busy anyway.
                        !matches!(
                            subscriber.queue.try_send(Delivery::Heartbeat),
                            Err(TrySendError::Disconnected(_))
                        )
                    });
                }
                topics.retain(|_, subscribers| !subscribers.is_empty());
            }
        })
    }

    /// Has `follower` told every entry this hub publishes from now on, in
    /// commit order, gap-free — on one instance from the writer before the
    /// commit is acknowledged, scaled out from the bus's feeder — so state
    /// kept in memory (a store's kitchen queue) follows the log as the
    /// live streams do.
    pub fn follow(&self, follower: Arc<dyn CommitListener>) {
        self.inner
            .followers
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .push(follower);
    }

    /// Applies committed event-log entries, in commit order: followers are
    /// told, access changes end the streams they invalidate, and the order
    /// events go to the fan-out thread, which hands them to their watchers
    /// in the same order (see [`Hub::new`]). Followers and access changes
    /// are done when this returns; a stream an access change ends gets no
    /// later delivery (its client resumes from the last id it saw).
    pub fn publish(&self, entries: &[LogEntry]) {
        for follower in self
            .inner
            .followers
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .iter()
        {
            follower.committed(entries);
        }
        let mut live = Vec::with_capacity(entries.len());
        for entry in entries {
            match entry {
                LogEntry::Order(stored) => live.push(Arc::new(LiveEvent::new(stored))),
                LogEntry::Access(access) => self.apply_access(&access.change),
            }
        }
        if live.is_empty() {
            return;
        }
        let undelivered = match &self.inner.fanout {
            Some(fanout) => match fanout.send(Fanout::Events(live)) {
                Ok(()) => None,
                Err(unsent) => match unsent.into_inner() {
                    Fanout::Events(live) => Some(live),
                    Fanout::Flush(_) => None,
                },
            },
            None => Some(live),
        };
        for event in undelivered.into_iter().flatten() {
            self.publish_live(event);
        }
    }

    /// Waits until the fan-out thread has handed out every event published
    /// before: blocks the calling thread (briefly), so not for a task on
    /// a busy runtime.
    pub fn flush(&self) {
        if let Some(fanout) = &self.inner.fanout {
            let (done, handed_out) = std::sync::mpsc::sync_channel(1);
            if fanout.send(Fanout::Flush(done)).is_ok() {
                let _ = handed_out.recv();
            }
        }
    }

    /// Ends the streams an access change invalidates. Their clients
    /// reconnect (or resubscribe) and are authorised afresh.
    pub fn apply_access(&self, change: &AccessChange) {
        match change {
            AccessChange::SessionEnded { session_id } => self.close_session(session_id),
            AccessChange::StaffChanged {
                user_id, store_id, ..
            } => self.close_staff(*user_id, *store_id),
        }
    }

    /// Routes one serialised event to the subscribers of its order, its
    /// customer and its store.
    pub fn publish_live(&self, event: Arc<LiveEvent>) {
        let mut topics = self.inner.topics();
        for topic in [
            Topic::Order(event.order_id),
            Topic::Customer(event.customer_id),
            Topic::Store(event.store_id),
        ] {
            let Some(subscribers) = topics.get_mut(&topic) else {
                continue;
            };
            subscribers.retain(|_, subscriber| {
                if !subscriber
                    .options
                    .wants(&event.stations, event.summary_fulfilment)
                {
                    return true;
                }
                match subscriber.queue.try_send(Delivery::Event(event.clone())) {
                    Ok(()) => true,
                    Err(TrySendError::Full(_)) => {
                        // Too slow: drop it; it resumes from its last id.
                        self.inner.dropped_slow.fetch_add(1, Ordering::Relaxed);
                        false
                    }
                    Err(TrySendError::Disconnected(_)) => false,
                }
            });
            if subscribers.is_empty() {
                topics.remove(&topic);
            }
        }
    }

    /// Subscribes to a topic. Subscribe *before* reading the replay from the
    /// database, then drop replayed ids at the seam: nothing falls between.
    pub fn subscribe(&self, topic: Topic, options: SubscribeOptions) -> Subscription {
        let (queue, receiver) = flume::bounded(QUEUE_CAPACITY);
        let id = self.inner.next_id.fetch_add(1, Ordering::Relaxed);
        if !self.inner.closed.load(Ordering::Acquire) {
            self.inner
                .topics()
                .entry(topic)
                .or_default()
                .insert(id, Subscriber { queue, options });
        }
        Subscription {
            id,
            topic,
            queue: receiver,
            hub: Arc::downgrade(&self.inner),
        }
    }

    /// Ends every stream `user` opened as staff of `store` (removed from its
    /// staff, or given another role there).
    pub fn close_staff(&self, user: UserId, store: StoreId) {
        self.close_where(|options| {
            options.user_id == Some(user) && options.staff_of == Some(store)
        });
    }

    /// Ends every stream opened with `session` (logged out).
    pub fn close_session(&self, session: &str) {
        self.close_where(|options| options.session_id.as_deref() == Some(session));
    }

    fn close_where(&self, ends: impl Fn(&SubscribeOptions) -> bool) {
        let mut topics = self.inner.topics();
        for subscribers in topics.values_mut() {
            subscribers.retain(|_, s| !ends(&s.options));
        }
        topics.retain(|_, subscribers| !subscribers.is_empty());
    }

    /// Shutting down: tells every subscriber to reconnect (after the events
    /// published before) and ends all streams.
    pub fn close_all(&self) {
        self.inner.closed.store(true, Ordering::Release);
        self.flush();
        let mut topics = self.inner.topics();
        for (_, subscribers) in topics.drain() {
            for (_, subscriber) in subscribers {
                let _ = subscriber.queue.try_send(Delivery::Reconnect);
            }
        }
    }

    /// Current number of subscriptions.
    pub fn subscriber_count(&self) -> usize {
        self.inner.topics().values().map(HashMap::len).sum()
    }

    /// How many subscribers were dropped for falling behind, since start.
    pub fn dropped_slow(&self) -> u64 {
        self.inner.dropped_slow.load(Ordering::Relaxed)
    }
}

impl CommitListener for Hub {
    fn committed(&self, events: &[LogEntry]) {
        self.publish(events);
    }
}
