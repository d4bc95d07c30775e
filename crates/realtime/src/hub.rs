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

#[derive(Default)]
struct Inner {
    topics: Mutex<HashMap<Topic, HashMap<u64, Subscriber>>>,
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
#[derive(Clone, Default)]
pub struct Hub {
    inner: Arc<Inner>,
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
    /// An empty hub.
    pub fn new() -> Self {
        Hub::default()
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
    /// told, order events go to their watchers, access changes end the
    /// streams they invalidate.
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
        for entry in entries {
            match entry {
                LogEntry::Order(stored) => self.publish_live(Arc::new(LiveEvent::new(stored))),
                LogEntry::Access(access) => self.apply_access(&access.change),
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

    /// Shutting down: tells every subscriber to reconnect and ends all streams.
    pub fn close_all(&self) {
        self.inner.closed.store(true, Ordering::Release);
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
