//! The ETA durations follower: keeps how long finished orders took a
//! moment after they finish, in bulk, by following the event log — so a
//! finishing change of a learned store writes no durations itself (a
//! write's cost is in the pages it dirties, and these were most of what
//! keeping durations cost a transition; BENCHMARKS.md, "Keeping ETA
//! durations"). While a store is still learning, its finishing changes
//! keep theirs at once instead ([`StatusChange::durations_at_once`]).
//!
//! [`StatusChange::durations_at_once`]: ordertrack_domain::StatusChange::durations_at_once

use std::sync::Arc;
use std::time::Duration;

use ordertrack_domain::{StoreDurations, StoreId};
use ordertrack_store::{CommitListener, LogEntry};
use tokio::sync::Notify;

use crate::outbox::FollowerHandle;
use crate::{App, AppError};

/// Events one round reads at most: a round is one write, kept short.
const ROUND_EVENTS: u32 = 5_000;

/// Rounds start at most this often: the durations of the orders finished
/// meanwhile are kept together, in one write.
const ROUND_EVERY: Duration = Duration::from_millis(250);

/// How long a round waits for another instance's round to end, and how
/// many times (a round takes milliseconds).
const BUSY_WAIT: Duration = Duration::from_millis(20);
const BUSY_WAITS: u32 = 50;

/// Wakes the follower when a committed entry finishes an order.
#[derive(Default)]
pub(crate) struct FinishedOrders {
    wake: Notify,
}

impl CommitListener for FinishedOrders {
    fn committed(&self, entries: &[LogEntry]) {
        let finished = entries
            .iter()
            .any(|entry| matches!(entry, LogEntry::Order(stored) if stored.event.summary.terminal));
        if finished {
            // A permit is kept if the follower is busy: no wake-up is lost.
            self.wake.notify_one();
        }
    }
}

impl App {
    /// Starts the follower: a round at once (the orders finished while no
    /// instance followed), then one after each commit that finishes an
    /// order, at most every [`ROUND_EVERY`].
    pub fn start_eta_follower(&self) -> FollowerHandle {
        let app = self.clone();
        let wake: Arc<FinishedOrders> = self.finished_orders.clone();
        wake.wake.notify_one();
        FollowerHandle::spawn(move |mut stopped| async move {
            loop {
                tokio::select! {
                    () = wake.wake.notified() => {}
                    _ = stopped.changed() => break,
                }
                if let Err(error) = app.keep_followed_durations().await {
                    tracing::warn!(%error, "keeping finished orders' ETA durations failed; will retry");
                    wake.wake.notify_one();
                }
                tokio::select! {
                    () = tokio::time::sleep(ROUND_EVERY) => {}
                    _ = stopped.changed() => break,
                }
            }
        })
    }

    /// Runs rounds of the follower until it has caught up with the event
    /// log; returns how many finished orders' durations it kept. The
    /// stores whose durations it changed and this instance keeps in
    /// memory have them read afresh, here.
    pub async fn keep_followed_durations(&self) -> Result<usize, AppError> {
        let mut kept = 0;
        let mut waits = 0;
        loop {
            let round = self.repo.keep_followed_durations(ROUND_EVENTS).await?;
            if round.busy && waits < BUSY_WAITS {
                // Another instance's round: this one goes on from where
                // that one ends.
                waits += 1;
                tokio::time::sleep(BUSY_WAIT).await;
                continue;
            }
            for &store in &round.stores {
                self.refresh_durations(store).await?;
            }
            kept += round.orders;
            if !round.more {
                return Ok(kept);
            }
        }
    }

    /// Reads a store's kept durations afresh into the cache, if it holds
    /// them: off the request path, and once, rather than every request
    /// that finds them gone reading them at the same moment.
    async fn refresh_durations(&self, store: StoreId) -> Result<(), AppError> {
        if self.durations.holds(store) {
            let read = self.repo.store_durations(store).await?;
            self.durations
                .keep(store, Arc::new(StoreDurations::from_kept(read)));
        }
        Ok(())
    }
}
