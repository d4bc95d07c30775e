//! What the event log's outbox followers share (the webhook worker, the
//! e-mail sender and the push worker): the handle that stops one, the
//! jittered retry delay on an operator's schedule, and their attempts
//! counted by outcome.

use std::future::Future;
use std::marker::PhantomData;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use rand::Rng;
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
