//! Each store's kitchen queue, kept in memory by following the event log.
//!
//! An ETA counts the orders ahead of an order in its store's queue
//! ([`KitchenQueue`]). Reading the queue from the store on every change
//! cost one statement per change; instead each instance reads a store's
//! queue once, as of a point of the log, and from then on applies every
//! committed order event after that point — the same commit-ordered,
//! gap-free feed the live streams follow (the hub's, [`Hub::follow`]):
//! on one instance the writer's commit listener, before the commit is
//! acknowledged; scaled out, the bus's feeder.
//!
//! [`Hub::follow`]: ordertrack_realtime::Hub::follow

use std::collections::{BTreeSet, HashMap};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, MutexGuard};

use ordertrack_domain::eta::QUEUE_CAP;
use ordertrack_domain::{KitchenQueue, OrderId, StatusKey, StoreId};
use ordertrack_store::{CommitListener, LogEntry, Repository, StoreError};

/// One store's queue as this instance knows it: the orders in the
/// workflow's queue statuses.
struct Tracked {
    /// The queue statuses, sorted: a different set (another workflow)
    /// reads the queue afresh.
    statuses: Vec<StatusKey>,
    state: State,
}

enum State {
    /// Being read; order events committed meanwhile wait here, each with
    /// its log id, the order and the status it left the order in.
    Loading {
        ticket: u64,
        waiting: Vec<(i64, OrderId, StatusKey)>,
    },
    /// Read as of log id `as_of` and followed since.
    Ready {
        as_of: i64,
        queued: BTreeSet<OrderId>,
    },
}

impl State {
    /// Takes one committed order event (see [`follow`]), or keeps it for
    /// when the read is done.
    fn apply(&mut self, statuses: &[StatusKey], log_id: i64, order: OrderId, status: &StatusKey) {
        match self {
            State::Loading { waiting, .. } => waiting.push((log_id, order, status.clone())),
            State::Ready { as_of, queued } => {
                follow(queued, *as_of, statuses, log_id, order, status)
            }
        }
    }
}

/// Applies one committed order event to a queue read as of `as_of`: the
/// order is queued if the event left it in one of `statuses` (sorted).
/// Events the read already held (at or before `as_of`) are skipped, so a
/// late one cannot undo a later change.
fn follow(
    queued: &mut BTreeSet<OrderId>, as_of: i64, statuses: &[StatusKey], log_id: i64,
    order: OrderId, status: &StatusKey,
) {
    if log_id <= as_of {
        return;
    }
    if statuses.binary_search(status).is_ok() {
        queued.insert(order);
    } else {
        queued.remove(&order);
    }
}

/// The kitchen queues of the stores this instance was asked about.
#[derive(Default)]
pub struct KitchenQueues {
    stores: Mutex<HashMap<StoreId, Tracked>>,
    tickets: AtomicU64,
}

impl KitchenQueues {
    fn stores(&self) -> MutexGuard<'_, HashMap<StoreId, Tracked>> {
        // A poisoned lock only means another holder panicked; the map is
        // still whole (every update is one insert or remove).
        self.stores.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// `store`'s queue over `statuses`: from memory once read; otherwise
    /// read now (every queued order, as of a log id) and followed from then.
    pub(crate) async fn queue(
        &self, repo: &dyn Repository, store: StoreId, mut statuses: Vec<StatusKey>,
    ) -> Result<KitchenQueue, StoreError> {
        statuses.sort_unstable();
        statuses.dedup();
        let ticket = {
            let mut stores = self.stores();
            match stores.get(&store) {
                Some(tracked) if tracked.statuses == statuses => match &tracked.state {
                    State::Ready { queued, .. } => return Ok(oldest(queued)),
                    // Someone else is reading it: read for this request only.
                    State::Loading { .. } => None,
                },
                _ => {
                    let ticket = self.tickets.fetch_add(1, Ordering::Relaxed);
                    stores.insert(
                        store,
                        Tracked {
                            statuses: statuses.clone(),
                            state: State::Loading {
                                ticket,
                                waiting: Vec::new(),
                            },
                        },
                    );
                    Some(ticket)
                }
            }
        };
        // The tracked read holds every queued order, not only the oldest:
        // when those leave, the next ones must already be known.
        let limit = if ticket.is_some() {
            usize::MAX
        } else {
            QUEUE_CAP
        };
        let read = repo.queued_orders(store, statuses, limit).await;
        let mut stores = self.stores();
        let loading = stores.get_mut(&store).filter(|tracked| {
            matches!(tracked.state, State::Loading { ticket: mine, .. } if Some(mine) == ticket)
        });
        let Some(tracked) = loading else {
            return Ok(KitchenQueue::new(read?.ids));
        };
        let read = match read {
            Ok(read) => read,
            Err(error) => {
                // The next request reads again.
                stores.remove(&store);
                return Err(error);
            }
        };
        let waiting = match &mut tracked.state {
            State::Loading { waiting, .. } => std::mem::take(waiting),
            State::Ready { .. } => Vec::new(),
        };
        let queued = loaded(read.ids, read.as_of, &waiting, &tracked.statuses);
        let queue = oldest(&queued);
        tracked.state = State::Ready {
            as_of: read.as_of,
            queued,
        };
        Ok(queue)
    }
}

/// A queue read as of log id `as_of`, with the order events committed
/// while it was read applied.
fn loaded(
    ids: Vec<OrderId>, as_of: i64, waiting: &[(i64, OrderId, StatusKey)], statuses: &[StatusKey],
) -> BTreeSet<OrderId> {
    let mut queued: BTreeSet<OrderId> = ids.into_iter().collect();
    for (log_id, order, status) in waiting {
        follow(&mut queued, as_of, statuses, *log_id, *order, status);
    }
    queued
}

/// The queue's oldest [`QUEUE_CAP`] orders, all an ETA counts.
fn oldest(queued: &BTreeSet<OrderId>) -> KitchenQueue {
    KitchenQueue::new(queued.iter().take(QUEUE_CAP).copied().collect())
}

impl CommitListener for KitchenQueues {
    fn committed(&self, entries: &[LogEntry]) {
        let mut stores = self.stores();
        if stores.is_empty() {
            return;
        }
        for entry in entries {
            let LogEntry::Order(stored) = entry else {
                continue;
            };
            let event = &stored.event;
            if let Some(tracked) = stores.get_mut(&event.store_id) {
                tracked.state.apply(
                    &tracked.statuses,
                    stored.id,
                    event.order_id,
                    &event.summary.status,
                );
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn order(id: i64) -> OrderId {
        OrderId::new(id)
    }

    fn queue_statuses() -> Vec<StatusKey> {
        let mut statuses: Vec<StatusKey> = ["pending", "confirmed", "preparing"]
            .into_iter()
            .map(StatusKey::from)
            .collect();
        statuses.sort_unstable();
        statuses
    }

    #[test]
    fn changes_committed_while_the_queue_was_read_count_only_if_the_read_missed_them() {
        let waiting = [
            // Already in the read: a later change the read holds must not
            // be undone by it.
            (9, order(4), StatusKey::from("pending")),
            (11, order(2), StatusKey::from("ready")),
            (12, order(5), StatusKey::from("pending")),
            (13, order(3), StatusKey::from("preparing")),
        ];
        let queued = loaded(
            vec![order(1), order(2), order(3)],
            10,
            &waiting,
            &queue_statuses(),
        );
        assert_eq!(
            queued.into_iter().collect::<Vec<_>>(),
            vec![order(1), order(3), order(5)]
        );
    }

    #[test]
    fn a_ready_queue_follows_orders_in_and_out_and_ignores_what_it_read() {
        let statuses = queue_statuses();
        let mut state = State::Ready {
            as_of: 20,
            queued: [order(7)].into_iter().collect(),
        };
        state.apply(&statuses, 21, order(8), &StatusKey::from("pending"));
        state.apply(&statuses, 22, order(7), &StatusKey::from("ready"));
        state.apply(&statuses, 23, order(8), &StatusKey::from("confirmed"));
        // An entry at or before the read changes nothing.
        state.apply(&statuses, 20, order(9), &StatusKey::from("pending"));
        let State::Ready { queued, .. } = &state else {
            panic!("still ready");
        };
        assert_eq!(queued.iter().copied().collect::<Vec<_>>(), vec![order(8)]);
        assert_eq!(oldest(queued).ahead_of(Some(order(9))), 1);
    }

    #[test]
    fn only_the_oldest_orders_count_as_ahead() {
        let queued: BTreeSet<OrderId> = (1..=QUEUE_CAP as i64 + 10).map(order).collect();
        let queue = oldest(&queued);
        assert_eq!(queue.ahead_of(None), QUEUE_CAP as u32);
        assert_eq!(queue.ahead_of(Some(order(3))), 2);
    }
}
