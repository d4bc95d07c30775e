//! What the event log's outbox followers share (the webhook worker, the
//! e-mail sender and the push worker): the handle that stops one, the
//! jittered retry delay on an operator's schedule, and their attempts
//! counted by outcome.

use std::future::Future;
use std::marker::PhantomData;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use ordertrack_store::{Outbox, Repository};
use rand::Rng;
use time::OffsetDateTime;
use tokio::sync::watch;
use tokio::task::JoinHandle;

/// A running follower; [`stop`](Self::stop) ends it.
pub struct FollowerHandle {
    stop: watch::Sender<bool>,
    task: JoinHandle<()>,
}

impl FollowerHandle {
    /// Spawns `run`, handing it the receiver that turns `true` on stop.
    pub(crate) fn spawn<F>(run: impl FnOnce(watch::Receiver<bool>) -> F) -> FollowerHandle
    where
        F: Future<Output = ()> + Send + 'static,
    {
        let (stop, stopped) = watch::channel(false);
        let task = tokio::spawn(run(stopped));
        FollowerHandle { stop, task }
    }

    /// Stops the follower: it finishes the attempts under way (each within
    /// its timeout), then ends.
    pub async fn stop(self) {
        let _ = self.stop.send(true);
        let _ = self.task.await;
    }
}

/// The delay before the retry after attempt number `attempts` on
/// `schedule`, jittered by up to a tenth either way (so retries of many
/// deliveries spread out); `None` once the schedule is spent.
pub(crate) fn retry_delay(schedule: &[Duration], attempts: i64) -> Option<time::Duration> {
    let index = usize::try_from(attempts - 1).ok()?;
    let base = *schedule.get(index)?;
    let factor = rand::rng().random_range(0.9..=1.1);
    time::Duration::try_from(base.mul_f64(factor)).ok()
}

/// `text`, then each cause of `error` after a colon: what went wrong with
/// an attempt, in one line for its log.
pub(crate) fn with_causes(mut text: String, error: &dyn std::error::Error) -> String {
    let mut source = error.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

/// How long finished jobs are kept by default: 30 days.
pub const DEFAULT_RETENTION: Duration = Duration::from_secs(30 * 24 * 60 * 60);

/// How often a worker deletes its outbox's old finished jobs.
const PRUNE_EVERY: Duration = Duration::from_secs(60 * 60);

/// Jobs deleted by one write: short enough not to hold the writer up.
const PRUNE_BATCH: u32 = 500;

/// Batches per pass at most; a larger backlog goes over the next passes.
const PRUNE_BATCHES: usize = 20;

/// Deletes an outbox's jobs once they are finished and older than the
/// retention: on a worker's first round, then at most every
/// [`PRUNE_EVERY`], in batches of [`PRUNE_BATCH`].
pub(crate) struct Pruner {
    outbox: Outbox,
    retention: Duration,
    last: Option<Instant>,
}

impl Pruner {
    pub(crate) fn new(outbox: Outbox, retention: Duration) -> Self {
        Pruner {
            outbox,
            retention,
            last: None,
        }
    }

    /// Prunes if a period has passed since the last pass; a failure is
    /// logged and tried again at the next pass.
    pub(crate) async fn maybe_prune(&mut self, repo: &dyn Repository) {
        if self.last.is_some_and(|last| last.elapsed() < PRUNE_EVERY) {
            return;
        }
        self.last = Some(Instant::now());
        let Ok(retention) = time::Duration::try_from(self.retention) else {
            return;
        };
        let Some(before) = OffsetDateTime::now_utc().checked_sub(retention) else {
            return;
        };
        let mut pruned = 0;
        for _ in 0..PRUNE_BATCHES {
            match repo.prune_outbox(self.outbox, before, PRUNE_BATCH).await {
                Ok(deleted) => {
                    pruned += deleted;
                    if deleted < u64::from(PRUNE_BATCH) {
                        break;
                    }
                }
                Err(error) => {
                    tracing::warn!(%error, outbox = ?self.outbox, "deleting old outbox jobs failed");
                    break;
                }
            }
        }
        if pruned > 0 {
            tracing::info!(outbox = ?self.outbox, pruned, "old outbox jobs deleted");
        }
    }
}

/// How a worker's attempts end, as `/metrics` labels them.
pub(crate) trait Outcome {
    /// Every label, in the order `/metrics` lists them.
    const LABELS: [&'static str; 4];
    /// This outcome's place in [`LABELS`](Self::LABELS).
    fn index(&self) -> usize;
}

/// A worker's attempts by outcome, counted since the instance started.
#[derive(Debug)]
pub(crate) struct OutcomeCounts<O> {
    counts: [AtomicU64; 4],
    kind: PhantomData<fn(&O)>,
}

impl<O> Default for OutcomeCounts<O> {
    fn default() -> Self {
        OutcomeCounts {
            counts: Default::default(),
            kind: PhantomData,
        }
    }
}

impl<O: Outcome> OutcomeCounts<O> {
    /// Counts one attempt that ended so.
    pub(crate) fn count(&self, outcome: &O) {
        self.counts[outcome.index()].fetch_add(1, Ordering::Relaxed);
    }

    /// `(outcome, attempts)` for each outcome, as `/metrics` names them.
    pub(crate) fn snapshot(&self) -> [(&'static str, u64); 4] {
        std::array::from_fn(|i| (O::LABELS[i], self.counts[i].load(Ordering::Relaxed)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn delays_follow_the_schedule_within_a_tenth_then_stop() {
        let schedule = [Duration::from_secs(10), Duration::from_secs(100)];
        let first = retry_delay(&schedule, 1).expect("a first retry");
        assert!((9..=11).contains(&first.whole_seconds()), "{first}");
        let second = retry_delay(&schedule, 2).expect("a second retry");
        assert!((90..=110).contains(&second.whole_seconds()), "{second}");
        assert_eq!(retry_delay(&schedule, 3), None);
        assert_eq!(retry_delay(&schedule, 0), None);
    }
}
