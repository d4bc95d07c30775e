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

/// Why a subscriber could not take a delivery.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refused {
    /// Too far behind: it is dropped and resumes from its last id.
    TooSlow,
    /// Its stream has ended.
    Gone,
}

/// Takes a subscriber's deliveries from the thread that hands them out,
/// without waiting, instead of the subscriber's queue: a stream that can
/// write a frame to its socket at once saves the wake-up of its task and
/// the queue hop (see [`Subscription::write_directly`]).
pub trait DirectWriter: Send + Sync {
    /// Writes `delivery`, or keeps it to be written in order after what is
    /// already waiting; never blocks.
    fn deliver(&self, delivery: &Delivery) -> Result<(), Refused>;
}

struct Subscriber {
    queue: flume::Sender<Delivery>,
    options: SubscribeOptions,
    /// Set once the stream writes its deliveries itself.
    direct: Option<Arc<dyn DirectWriter>>,
}

impl Subscriber {
    fn deliver(&self, delivery: Delivery) -> Result<(), Refused> {
        if let Some(direct) = &self.direct {
            return direct.deliver(&delivery);
        }
        self.queue.try_send(delivery).map_err(|error| match error {
            TrySendError::Full(_) => Refused::TooSlow,
            TrySendError::Disconnected(_) => Refused::Gone,
        })
    }
}

/// The nice value of the fan-out threads: above the request workers' (0),
/// so a request that wakes while a change goes out to thousands of
/// watchers runs first.
const FANOUT_NICE: i32 = 4;

/// Lowers the calling thread's scheduling priority to [`FANOUT_NICE`] (on
/// Linux the nice value is per thread). Where it cannot, the thread runs
/// at the process's priority.
fn yield_to_requests() {
    #[cfg(target_os = "linux")]
    if let Err(error) = rustix::process::setpriority_process(None, FANOUT_NICE) {
        tracing::debug!(%error, "fan-out thread keeps the process's priority");
    }
}

/// What a fan-out thread is handed, in order.
enum Fanout {
    /// Committed events, for their watchers.
    Events(Arc<[Arc<LiveEvent>]>),
    /// Send every subscriber a heartbeat.
    Heartbeat,
    /// Everything before has been handed out: say so.
    Flush(std::sync::mpsc::SyncSender<()>),
}

type Topics = HashMap<Topic, HashMap<u64, Subscriber>>;

/// A share of the subscribers (those whose id it is given by
/// [`Inner::shard`]), with the thread that hands them their deliveries.
struct Shard {
    topics: Mutex<Topics>,
    /// Hands committed events to the shard's fan-out thread, in commit
    /// order; `None` (or its thread gone), they are handed out inline.
    fanout: Option<flume::Sender<Fanout>>,
}

impl Shard {
    fn topics(&self) -> MutexGuard<'_, Topics> {
        // A panic while holding the lock leaves the map itself consistent.
        self.topics
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Hands `work` to the shard's thread; gives it back if there is none.
    fn hand_out(&self, work: Fanout) -> Option<Fanout> {
        match &self.fanout {
            Some(fanout) => fanout.send(work).err().map(|unsent| unsent.into_inner()),
            None => Some(work),
        }
    }

    /// Routes one serialised event to this shard's subscribers of its
    /// order, its customer and its store.
    fn publish_live(&self, event: &Arc<LiveEvent>, dropped_slow: &AtomicU64) {
        let mut topics = self.topics();
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
                match subscriber.deliver(Delivery::Event(event.clone())) {
                    Ok(()) => true,
                    Err(Refused::TooSlow) => {
                        // Too slow: drop it; it resumes from its last id.
                        dropped_slow.fetch_add(1, Ordering::Relaxed);
                        false
                    }
                    Err(Refused::Gone) => false,
                }
            });
            if subscribers.is_empty() {
                topics.remove(&topic);
            }
        }
    }

    /// Sends every subscriber a heartbeat and ends the streams whose
    /// session expired.
    fn heartbeat(&self) {
        let now = OffsetDateTime::now_utc();
        let mut topics = self.topics();
        for subscribers in topics.values_mut() {
            subscribers.retain(|_, subscriber| {
                if subscriber.options.expires_at.is_some_and(|at| at <= now) {
                    return false;
                }
                // A full queue means the subscriber is busy anyway.
                subscriber.deliver(Delivery::Heartbeat) != Err(Refused::Gone)
            });
        }
        topics.retain(|_, subscribers| !subscribers.is_empty());
    }

    /// Does `work` here, on the calling thread.
    fn run(&self, work: Fanout, dropped_slow: &AtomicU64) {
        match work {
            Fanout::Events(events) => {
                for event in events.iter() {
                    self.publish_live(event, dropped_slow);
                }
            }
            Fanout::Heartbeat => self.heartbeat(),
            Fanout::Flush(done) => {
                let _ = done.send(());
            }
        }
    }
}

struct Inner {
    /// At least one.
    shards: Vec<Shard>,
    /// Told every entry the hub publishes, before its watchers are.
    followers: Mutex<Vec<Arc<dyn CommitListener>>>,
    next_id: AtomicU64,
    closed: AtomicBool,
    dropped_slow: AtomicU64,
}

impl Inner {
    /// The shard subscriber `id` belongs to.
    fn shard(&self, id: u64) -> &Shard {
        let count = self.shards.len() as u64;
        // The remainder is below the shard count, a usize.
        &self.shards[usize::try_from(id % count).unwrap_or(0)]
    }

    /// Hands `work` to every shard's thread, or does it inline for a shard
    /// without one.
    fn hand_out_to_all(&self, work: impl Fn() -> Fanout) {
        for shard in &self.shards {
            if let Some(undone) = shard.hand_out(work()) {
                shard.run(undone, &self.dropped_slow);
            }
        }
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

    /// From now on the hub hands this subscription's deliveries to
    /// `writer` instead of its queue; what is still queued goes to `writer`
    /// first, so the order holds. [`Subscription::recv`] then only tells
    /// when the hub drops the subscriber (`None`).
    pub fn write_directly(&mut self, writer: Arc<dyn DirectWriter>) {
        let Some(inner) = self.hub.upgrade() else {
            return;
        };
        // Under the shard's lock no delivery is being handed out to it.
        let mut topics = inner.shard(self.id).topics();
        let mut refused = false;
        while let Ok(delivery) = self.queue.try_recv() {
            refused |= writer.deliver(&delivery).is_err();
        }
        let Some(subscribers) = topics.get_mut(&self.topic) else {
            return;
        };
        if refused {
            subscribers.remove(&self.id);
        } else if let Some(subscriber) = subscribers.get_mut(&self.id) {
            subscriber.direct = Some(writer);
        }
        if subscribers.is_empty() {
            topics.remove(&self.topic);
        }
    }
}

impl Drop for Subscription {
    fn drop(&mut self) {
        if let Some(inner) = self.hub.upgrade() {
            let mut topics = inner.shard(self.id).topics();
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
    /// An empty hub, with its fan-out threads: one per core, each handing
    /// out every event to its share of the subscribers.
    ///
    /// Events are handed to watchers by threads of the hub's own, not by
    /// the thread that publishes them (on one instance the store's writer,
    /// before it acknowledges the commit): handing one event to 10,000
    /// watchers is 10,000 socket writes or task wake-ups, and neither the
    /// writer's next batch nor the acknowledgement of this one should wait
    /// for that. Each subscriber belongs to one shard, so its deliveries
    /// keep commit order; the shards share the cores. The threads end with
    /// the hub.
    pub fn new() -> Self {
        let count = std::thread::available_parallelism().map_or(1, usize::from);
        Hub::with_shards(count)
    }

    /// A hub with `count` shards (at least one), each with its thread.
    pub fn with_shards(count: usize) -> Self {
        let mut shards = Vec::new();
        let mut receivers = Vec::new();
        for _ in 0..count.max(1) {
            let (fanout, work) = flume::unbounded::<Fanout>();
            shards.push(Shard {
                topics: Mutex::new(HashMap::new()),
                fanout: Some(fanout),
            });
            receivers.push(work);
        }
        let inner = Arc::new(Inner {
            shards,
            followers: Mutex::new(Vec::new()),
            next_id: AtomicU64::new(0),
            closed: AtomicBool::new(false),
            dropped_slow: AtomicU64::new(0),
        });
        for (index, work) in receivers.into_iter().enumerate() {
            let hub = Arc::downgrade(&inner);
            let started = std::thread::Builder::new()
                .name(format!("ordertrack-fanout-{index}"))
                .spawn(move || {
                    yield_to_requests();
                    while let Ok(next) = work.recv() {
                        let Some(inner) = hub.upgrade() else { return };
                        inner.shards[index].run(next, &inner.dropped_slow);
                    }
                });
            if let Err(error) = started {
                // Its receiver is gone with the closure: the publisher
                // hands this shard's deliveries out itself.
                tracing::warn!(%error, "no fan-out thread; events are delivered inline");
            }
        }
        Hub { inner }
    }

    /// Starts the one task that has heartbeats sent to every subscriber and
    /// ends streams whose session expired (no per-connection timers). The
    /// fan-out threads send them, in turn with the events: a stream may be
    /// written from there.
    pub fn start_heartbeat(&self, every: Duration) -> tokio::task::JoinHandle<()> {
        let hub = Arc::downgrade(&self.inner);
        tokio::spawn(async move {
            let mut ticks = tokio::time::interval(every);
            ticks.tick().await;
            loop {
                ticks.tick().await;
                let Some(inner) = hub.upgrade() else { return };
                inner.hand_out_to_all(|| Fanout::Heartbeat);
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
        let live: Arc<[Arc<LiveEvent>]> = live.into();
        self.inner
            .hand_out_to_all(|| Fanout::Events(Arc::clone(&live)));
    }

    /// Waits until the fan-out threads have handed out every event
    /// published before: blocks the calling thread (briefly), so not for a
    /// task on a busy runtime.
    pub fn flush(&self) {
        for shard in &self.inner.shards {
            let (done, handed_out) = std::sync::mpsc::sync_channel(1);
            if shard.hand_out(Fanout::Flush(done)).is_none() {
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

    /// Subscribes to a topic. Subscribe *before* reading the replay from the
    /// database, then drop replayed ids at the seam: nothing falls between.
    pub fn subscribe(&self, topic: Topic, options: SubscribeOptions) -> Subscription {
        let (queue, receiver) = flume::bounded(QUEUE_CAPACITY);
        let id = self.inner.next_id.fetch_add(1, Ordering::Relaxed);
        if !self.inner.closed.load(Ordering::Acquire) {
            self.inner
                .shard(id)
                .topics()
                .entry(topic)
                .or_default()
                .insert(
                    id,
                    Subscriber {
                        queue,
                        options,
                        direct: None,
                    },
                );
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
        for shard in &self.inner.shards {
            let mut topics = shard.topics();
            for subscribers in topics.values_mut() {
                subscribers.retain(|_, s| !ends(&s.options));
            }
            topics.retain(|_, subscribers| !subscribers.is_empty());
        }
    }

    /// Shutting down: tells every subscriber to reconnect (after the events
    /// published before) and ends all streams.
    pub fn close_all(&self) {
        self.inner.closed.store(true, Ordering::Release);
        self.flush();
        for shard in &self.inner.shards {
            for (_, subscribers) in shard.topics().drain() {
                for (_, subscriber) in subscribers {
                    let _ = subscriber.deliver(Delivery::Reconnect);
                }
            }
        }
    }

    /// Current number of subscriptions.
    pub fn subscriber_count(&self) -> usize {
        self.inner
            .shards
            .iter()
            .map(|shard| shard.topics().values().map(HashMap::len).sum::<usize>())
            .sum()
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
