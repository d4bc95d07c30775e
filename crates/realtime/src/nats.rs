//! Fan-out across instances through NATS.
//!
//! With a bus, an instance's commit listener no longer feeds its hub: it
//! hands each committed batch to a **relay** task (a bounded channel, so the
//! writer never waits on the network), and every instance, the publisher
//! included, **subscribes** to the subject and feeds its own hub.
//!
//! **Outbox.** The events table is the outbox. The relay remembers the last
//! id it published, in memory: on start it begins at the database's newest
//! id, since only what this instance commits from then on is its to publish
//! (and every reader catches up from the database anyway, see below). When a
//! publish (or the flush that confirms it) fails, or the channel overflowed,
//! it re-reads everything after that id with [`Repository::events_since`] and
//! publishes it again; events of other instances may go out twice, which
//! subscribers drop by id.
//!
//! **Subscribers** ([`Feeder`]) remember the last id fed to the hub and feed
//! strictly in id order: an id at or below it is a duplicate and dropped; an
//! id above `last + 1` is a gap (lost message, late subscriber) and the
//! missing ids are read from the database first. Ids are gap-free in commit
//! order, so everything below a published id is committed and readable.
//! A periodic catch-up (every [`NatsOptions::catch_up_every`]) reads what
//! came after `last` from the database, so events whose message never
//! arrived (bus down, relay crashed after the commit) still reach watchers,
//! at the latest one period later.
//!
//! Core NATS (at-most-once) suffices: the database, not the bus, is the
//! durable record; the bus only makes delivery fast.
//!
//! The log carries access changes (logout, staff removed or given another
//! role) beside order events, so they reach every instance's hub the same
//! way, in order, and end the streams they invalidate there.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use bytes::Bytes;
use futures::StreamExt;
use ordertrack_store::{CommitListener, LogEntry, Repository, StoreError};
use tokio::sync::mpsc;
use tokio::sync::mpsc::error::TrySendError;

use crate::Hub;

/// Events read from the database per page (backfill, re-publishing).
const PAGE: u32 = 500;

/// How the bus connects and behaves.
#[derive(Debug, Clone)]
pub struct NatsOptions {
    /// `nats://host:4222`.
    pub url: String,
    /// The subject every instance of one deployment publishes to.
    pub subject: String,
    /// Committed batches waiting for the relay before it falls back to
    /// re-reading the database.
    pub relay_capacity: usize,
    /// How often subscribers check the database for events they missed.
    pub catch_up_every: Duration,
    /// How long one publish + flush may take before it counts as failed.
    pub publish_timeout: Duration,
}

impl NatsOptions {
    /// Defaults for `url` and `subject`.
    pub fn new(url: impl Into<String>, subject: impl Into<String>) -> Self {
        NatsOptions {
            url: url.into(),
            subject: subject.into(),
            relay_capacity: 1024,
            catch_up_every: Duration::from_secs(1),
            publish_timeout: Duration::from_secs(2),
        }
    }
}

/// The commit listener of an instance on the bus: queues each committed
/// batch for the relay without ever blocking the writer.
pub struct RelayListener {
    sender: mpsc::Sender<Vec<LogEntry>>,
    overflowed: Arc<AtomicBool>,
}

/// The receiving end of a [`RelayListener`], for [`NatsBus::start`].
pub struct RelayQueue {
    receiver: mpsc::Receiver<Vec<LogEntry>>,
    overflowed: Arc<AtomicBool>,
}

/// A listener for the store and the queue it fills, for the relay.
pub fn relay_channel(capacity: usize) -> (RelayListener, RelayQueue) {
    let (sender, receiver) = mpsc::channel(capacity.max(1));
    let overflowed = Arc::new(AtomicBool::new(false));
    (
        RelayListener {
            sender,
            overflowed: overflowed.clone(),
        },
        RelayQueue {
            receiver,
            overflowed,
        },
    )
}

impl CommitListener for RelayListener {
    fn committed(&self, events: &[LogEntry]) {
        if events.is_empty() {
            return;
        }
        match self.sender.try_send(events.to_vec()) {
            Ok(()) => {}
            Err(TrySendError::Full(_)) => {
                // The relay re-reads these from the database.
                self.overflowed.store(true, Ordering::Release);
            }
            Err(TrySendError::Closed(_)) => {}
        }
    }
}

/// A running bus connection: the relay and the subscriber tasks.
pub struct NatsBus {
    client: async_nats::Client,
    tasks: Vec<tokio::task::JoinHandle<()>>,
}

impl NatsBus {
    /// Connects (retrying in the background if NATS is not up yet) and
    /// starts relaying `queue` and feeding `hub`. Only events committed
    /// after this call are fed live; streams replay older ones themselves.
    pub async fn start(
        options: NatsOptions, queue: RelayQueue, store: Arc<dyn Repository>, hub: Hub,
    ) -> anyhow::Result<NatsBus> {
        let client = async_nats::ConnectOptions::new()
            .retry_on_initial_connect()
            .max_reconnects(None)
            .connection_timeout(Duration::from_secs(2))
            .connect(options.url.as_str())
            .await?;
        let start = store.last_event_position().await?;
        // Subscribe before relaying so this instance sees its own events.
        let subscriber = client.subscribe(options.subject.clone()).await?;
        let feeder = Feeder::new(store.clone(), hub, start);
        let tasks = vec![
            tokio::spawn(subscribe(subscriber, feeder, options.catch_up_every)),
            tokio::spawn(relay(client.clone(), options.clone(), queue, store, start)),
        ];
        Ok(NatsBus { client, tasks })
    }

    /// Whether the connection to NATS is up.
    pub fn is_connected(&self) -> bool {
        self.client.connection_state() == async_nats::connection::State::Connected
    }
}

impl Drop for NatsBus {
    fn drop(&mut self) {
        for task in &self.tasks {
            task.abort();
        }
    }
}

/// Publishes committed events in id order; on failure or overflow re-reads
/// everything after the last id published from the database.
async fn relay(
    client: async_nats::Client, options: NatsOptions, mut queue: RelayQueue,
    store: Arc<dyn Repository>, mut published: i64,
) {
    let mut reread = false;
    let mut backoff = Duration::from_millis(50);
    loop {
        let pending: Vec<LogEntry> = if reread || queue.overflowed.load(Ordering::Acquire) {
            // Whatever is queued was committed before this read: drop it,
            // the read covers it.
            while queue.receiver.try_recv().is_ok() {}
            queue.overflowed.store(false, Ordering::Release);
            match store.events_since(published, PAGE).await {
                Ok(page) => {
                    reread = page.len() == PAGE as usize;
                    page
                }
                Err(error) => {
                    tracing::warn!(%error, "relay: cannot read the outbox; retrying");
                    reread = true;
                    tokio::time::sleep(backoff).await;
                    backoff = (backoff * 2).min(Duration::from_secs(2));
                    continue;
                }
            }
        } else {
            let Some(mut batch) = queue.receiver.recv().await else {
                return;
            };
            while let Ok(more) = queue.receiver.try_recv() {
                batch.extend(more);
                if batch.len() >= PAGE as usize {
                    break;
                }
            }
            batch
        };
        let fresh: Vec<&LogEntry> = pending.iter().filter(|e| e.id() > published).collect();
        let Some(newest) = fresh.last().map(|e| e.id()) else {
            continue;
        };
        let sent = tokio::time::timeout(options.publish_timeout, async {
            for event in &fresh {
                let payload = Bytes::from(serde_json::to_vec(event)?);
                client.publish(options.subject.clone(), payload).await?;
            }
            client.flush().await?;
            anyhow::Ok(())
        })
        .await;
        match sent {
            Ok(Ok(())) => {
                published = newest;
                backoff = Duration::from_millis(50);
            }
            Ok(Err(error)) => {
                tracing::warn!(%error, after = published, "relay: publish failed; will re-read");
                reread = true;
                tokio::time::sleep(backoff).await;
                backoff = (backoff * 2).min(Duration::from_secs(2));
            }
            Err(_) => {
                tracing::warn!(after = published, "relay: publish timed out; will re-read");
                reread = true;
                backoff = (backoff * 2).min(Duration::from_secs(2));
            }
        }
    }
}

/// Feeds bus messages to the hub, and catches up from the database
/// periodically.
async fn subscribe(mut subscriber: async_nats::Subscriber, mut feeder: Feeder, every: Duration) {
    let mut ticks = tokio::time::interval(every);
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            message = subscriber.next() => {
                let Some(message) = message else {
                    tracing::warn!("bus subscription ended; catching up from the database only");
                    loop {
                        ticks.tick().await;
                        if let Err(error) = feeder.catch_up().await {
                            tracing::warn!(%error, "catch-up from the database failed");
                        }
                    }
                };
                match serde_json::from_slice::<LogEntry>(&message.payload) {
                    Ok(event) => {
                        if let Err(error) = feeder.receive(event).await {
                            tracing::warn!(%error, "backfill from the database failed; retrying");
                        }
                    }
                    Err(error) => tracing::warn!(%error, "ignoring a malformed bus message"),
                }
            }
            _ = ticks.tick() => {
                if let Err(error) = feeder.catch_up().await {
                    tracing::warn!(%error, "catch-up from the database failed");
                }
            }
        }
    }
}

/// Feeds events to a hub strictly in id order, without gaps or duplicates,
/// filling gaps from the database.
pub struct Feeder {
    store: Arc<dyn Repository>,
    hub: Hub,
    last: i64,
}

impl Feeder {
    /// A feeder that has fed everything up to `last`.
    pub fn new(store: Arc<dyn Repository>, hub: Hub, last: i64) -> Self {
        Feeder { store, hub, last }
    }

    /// The last id fed to the hub.
    pub fn last(&self) -> i64 {
        self.last
    }

    /// One event from the bus: dropped if already fed; fed after the events
    /// between the last fed and it (read from the database) otherwise. On a
    /// database error nothing past `last` is fed (the next catch-up retries).
    pub async fn receive(&mut self, event: LogEntry) -> Result<(), StoreError> {
        let id = event.id();
        if id <= self.last {
            return Ok(());
        }
        if id > self.last + 1 {
            self.backfill(id - 1).await?;
        }
        if id == self.last + 1 {
            self.last = id;
            self.hub.publish(std::slice::from_ref(&event));
        }
        Ok(())
    }

    /// Feeds whatever the database has after the last id fed.
    pub async fn catch_up(&mut self) -> Result<(), StoreError> {
        self.backfill(i64::MAX).await
    }

    /// Feeds events from the database after `last`, up to `upto`.
    async fn backfill(&mut self, upto: i64) -> Result<(), StoreError> {
        while self.last < upto {
            let page = self.store.events_since(self.last, PAGE).await?;
            let full = page.len() == PAGE as usize;
            let wanted: Vec<LogEntry> = page.into_iter().take_while(|e| e.id() <= upto).collect();
            let Some(newest) = wanted.last().map(LogEntry::id) else {
                return Ok(());
            };
            if self.last > 0 && wanted[0].id() != self.last + 1 {
                // Cannot happen with gap-free ids; never feed out of order.
                tracing::warn!(
                    last = self.last,
                    next = wanted[0].id(),
                    "gap in the database"
                );
            }
            self.hub.publish(&wanted);
            self.last = newest;
            if !full {
                return Ok(());
            }
        }
        Ok(())
    }
}
