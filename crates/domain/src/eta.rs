//! The ETA window: when an order that is not finished will be done, as a
//! p50–p90 window learned from the store's recently finished orders, or
//! from the workflow's expected minutes until there are enough of them.
//!
//! A sample is "seconds from entering state S to done" of one finished
//! (not cancelled) order; the stores keep the most recent
//! [`WINDOW_SAMPLES`] per store, fulfilment and state, written in the same
//! transaction as the order's move to done. The window is measured from
//! when the order entered its current state, so it counts down while the
//! order waits and does not move when nothing changes.
//!
//! While the kitchen is busy the window moves out: an order waiting for or
//! in the kitchen with more orders of its store ahead of it than the
//! kitchen works on at once ([`KITCHEN_LANES`]) waits for a share of an
//! order's kitchen time per extra order ahead ([`KitchenQueue`]). So when
//! the orders ahead are bumped, its window moves earlier.

use std::collections::HashMap;

use serde::{Deserialize, Serialize};
use time::{Duration, OffsetDateTime};

use crate::report::percentile;
use crate::{FulfilmentKind, OrderId, StatusKey, Workflow};

/// How many finished orders (per store, fulfilment and state) make a
/// learned window; fewer and the workflow's expected minutes are used.
pub const LEARNED_MIN_SAMPLES: usize = 20;

/// How many recent samples the stores keep per store, fulfilment and state.
pub const WINDOW_SAMPLES: usize = 200;

/// The spread of a window from the workflow's expected minutes: `latest`
/// is `earliest` plus this share (in percent) of the remaining path.
pub const WORKFLOW_SPREAD_PERCENT: i64 = 50;

/// How many orders a kitchen works on at once. Up to this many orders
/// ahead are the usual wait, which the learned durations already hold;
/// each order ahead beyond them adds `1 / KITCHEN_LANES` of an order's
/// kitchen time.
pub const KITCHEN_LANES: u32 = 3;

/// The most orders ahead counted: the queue is read as the store's oldest
/// this many queued orders, so the read stays small however many orders
/// wait.
pub const QUEUE_CAP: usize = 50;

/// Where a window comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum EtaBasis {
    /// The store's own recent finished orders.
    Learned,
    /// The workflow's expected minutes (too few finished orders yet).
    Workflow,
}

/// When an order will be done: a window of two instants.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Eta {
    /// The median: half of such orders were done by then.
    #[serde(with = "time::serde::rfc3339")]
    pub earliest: OffsetDateTime,
    /// The 90th percentile: nine in ten such orders were done by then.
    #[serde(with = "time::serde::rfc3339")]
    pub latest: OffsetDateTime,
    pub basis: EtaBasis,
}

/// One kept duration: a finished order entered `state` and was done
/// `seconds` later.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DurationSample {
    pub fulfilment: FulfilmentKind,
    pub state: StatusKey,
    pub seconds: i64,
}

/// The store's orders waiting for or in its kitchen (in the initial state
/// or a kitchen state, [`Workflow::queue_states`]), oldest first, at most
/// [`QUEUE_CAP`] of them: one read per store serves every order of it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct KitchenQueue {
    ids: Vec<OrderId>,
}

impl KitchenQueue {
    /// The queue of these orders (any order; only the oldest
    /// [`QUEUE_CAP`] count).
    pub fn new(mut ids: Vec<OrderId>) -> Self {
        ids.sort_unstable();
        ids.dedup();
        ids.truncate(QUEUE_CAP);
        KitchenQueue { ids }
    }

    /// How many queued orders are ahead of `order` (placed before it; ids
    /// grow with placing), at most [`QUEUE_CAP`]; `None` is an order not
    /// placed yet, behind all of them.
    pub fn ahead_of(&self, order: Option<OrderId>) -> u32 {
        let ahead = match order {
            Some(order) => self.ids.partition_point(|&id| id < order),
            None => self.ids.len(),
        };
        u32::try_from(ahead).unwrap_or(u32::MAX)
    }
}

/// A store's recent durations to done, per fulfilment and state, sorted
/// (what the window is read from).
#[derive(Debug, Clone, Default)]
pub struct StoreDurations {
    sorted: HashMap<(FulfilmentKind, String), Vec<i64>>,
}

impl StoreDurations {
    /// Groups and sorts samples (at most [`WINDOW_SAMPLES`] each, as kept).
    pub fn from_samples(samples: impl IntoIterator<Item = DurationSample>) -> Self {
        let mut sorted: HashMap<(FulfilmentKind, String), Vec<i64>> = HashMap::new();
        for sample in samples {
            sorted
                .entry((sample.fulfilment, sample.state.as_str().to_owned()))
                .or_default()
                .push(sample.seconds);
        }
        for seconds in sorted.values_mut() {
            seconds.sort_unstable();
        }
        StoreDurations { sorted }
    }

    /// Whether one more finished order could still change a window's basis:
    /// nothing is kept yet, or some kept series has fewer than
    /// [`LEARNED_MIN_SAMPLES`]. Past that, one more sample moves a p50 or
    /// p90 by little, so a window a few seconds stale is as good.
    pub fn learning(&self) -> bool {
        self.sorted.is_empty()
            || self
                .sorted
                .values()
                .any(|seconds| seconds.len() < LEARNED_MIN_SAMPLES)
    }

    /// The window of an order in `status` (entered at `entered`) under
    /// `workflow`, with `ahead` orders of its store ahead of it in the
    /// kitchen's queue ([`KitchenQueue::ahead_of`]); `None` for a terminal
    /// (or unknown) state.
    pub fn eta(
        &self, workflow: &Workflow, status: &str, fulfilment: FulfilmentKind,
        entered: OffsetDateTime, ahead: u32,
    ) -> Option<Eta> {
        let minutes = workflow.expected_minutes_remaining(status, fulfilment)?;
        let (p50, p90, basis) = match self.learned(fulfilment, status) {
            Some(seconds) => (
                percentile(seconds, 50)?,
                percentile(seconds, 90)?,
                EtaBasis::Learned,
            ),
            None => {
                let path = i64::from(minutes) * 60;
                (path, widened(path), EtaBasis::Workflow)
            }
        };
        let (wait50, wait90) = self.queue_wait(workflow, status, fulfilment, ahead);
        Some(Eta {
            earliest: entered + Duration::seconds(p50 + wait50),
            latest: entered + Duration::seconds(p90 + wait90),
            basis,
        })
    }

    /// The kept durations from `state`, when there are enough to learn from.
    fn learned(&self, fulfilment: FulfilmentKind, state: &str) -> Option<&Vec<i64>> {
        self.sorted
            .get(&(fulfilment, state.to_owned()))
            .filter(|seconds| seconds.len() >= LEARNED_MIN_SAMPLES)
    }

    /// The extra wait (for the window's p50 and p90) of an order in
    /// `status` with `ahead` orders ahead of it: none once it is past the
    /// kitchen or while the kitchen works on all of them at once; else a
    /// [`KITCHEN_LANES`]th of an order's kitchen time per order beyond.
    fn queue_wait(
        &self, workflow: &Workflow, status: &str, fulfilment: FulfilmentKind, ahead: u32,
    ) -> (i64, i64) {
        let queued = workflow
            .queue_states()
            .iter()
            .any(|state| state.key == status);
        let beyond = i64::from(ahead.saturating_add(1).saturating_sub(KITCHEN_LANES));
        if !queued || beyond == 0 {
            return (0, 0);
        }
        let (kitchen50, kitchen90) = self.kitchen_time(workflow, fulfilment).unwrap_or((0, 0));
        let lanes = i64::from(KITCHEN_LANES);
        (beyond * kitchen50 / lanes, beyond * kitchen90 / lanes)
    }

    /// How long one order spends in the kitchen (p50, p90 seconds): from
    /// entering the first kitchen state to the hand-off — learned as the
    /// difference of the two states' durations to done, else the
    /// workflow's expected minutes (widened as a workflow window is).
    fn kitchen_time(&self, workflow: &Workflow, fulfilment: FulfilmentKind) -> Option<(i64, i64)> {
        let first = workflow
            .kitchen_states()
            .first()
            .map(|state| state.key.clone())?;
        let hand_off = workflow.hand_off_state()?;
        if let (Some(from), Some(to)) = (
            self.learned(fulfilment, first.as_str()),
            self.learned(fulfilment, hand_off.key.as_str()),
        ) {
            let p50 = (percentile(from, 50)? - percentile(to, 50)?).max(0);
            let p90 = (percentile(from, 90)? - percentile(to, 90)?).max(p50);
            return Some((p50, p90));
        }
        let minutes = workflow.expected_minutes_in_kitchen(fulfilment)?;
        let seconds = i64::from(minutes) * 60;
        Some((seconds, widened(seconds)))
    }
}

/// A workflow estimate's p90: the p50 plus [`WORKFLOW_SPREAD_PERCENT`].
fn widened(seconds: i64) -> i64 {
    seconds + seconds * WORKFLOW_SPREAD_PERCENT / 100
}

#[cfg(test)]
mod tests {
    use super::*;

    fn kitchen() -> Workflow {
        Workflow::builtin("kitchen").expect("the kitchen workflow is built in")
    }

    /// The fixed clock: when the order entered its state.
    fn t0() -> OffsetDateTime {
        OffsetDateTime::from_unix_timestamp(1_770_000_000).expect("a valid instant")
    }

    /// A fixed-seed generator (64-bit LCG), so the history is the same on
    /// every run.
    struct Lcg(u64);

    impl Lcg {
        /// Uniform on `low..=high` seconds.
        fn uniform(&mut self, low: i64, high: i64) -> i64 {
            self.0 = self
                .0
                .wrapping_mul(6_364_136_223_846_793_005)
                .wrapping_add(1_442_695_040_888_963_407);
            let span = u64::try_from(high - low + 1).expect("high >= low");
            low + i64::try_from((self.0 >> 33) % span).expect("fits")
        }
    }

    /// Synthetic finished orders of the kitchen workflow: `preparing` takes
    /// U[600, 1200] s, `ready` (until collected) U[0, 300] s, independent.
    /// Returns each order's (time in preparing, time in ready).
    fn history(seed: u64, orders: usize) -> Vec<(i64, i64)> {
        let mut rng = Lcg(seed);
        (0..orders)
            .map(|_| (rng.uniform(600, 1200), rng.uniform(0, 300)))
            .collect()
    }

    /// The samples a store keeps for those orders: from entering each
    /// state to done.
    fn durations(orders: &[(i64, i64)]) -> StoreDurations {
        StoreDurations::from_samples(orders.iter().flat_map(|&(preparing, ready)| {
            [
                DurationSample {
                    fulfilment: FulfilmentKind::Pickup,
                    state: "preparing".into(),
                    seconds: preparing + ready,
                },
                DurationSample {
                    fulfilment: FulfilmentKind::Pickup,
                    state: "ready".into(),
                    seconds: ready,
                },
            ]
        }))
    }

    /// The true quantile of the remaining time from `preparing`, from a
    /// large draw of the same distribution.
    fn true_quantile(p: u32) -> i64 {
        let mut sums: Vec<i64> = history(7, 100_000).iter().map(|&(a, b)| a + b).collect();
        sums.sort_unstable();
        percentile(&sums, p).expect("values")
    }

    /// The stated tolerance: the window of the last [`WINDOW_SAMPLES`]
    /// orders is within a minute of the true p50 and p90.
    const TOLERANCE_SECONDS: i64 = 60;

    #[test]
    fn the_learned_window_holds_the_true_p50_and_p90() {
        let kept = durations(&history(42, WINDOW_SAMPLES));
        let eta = kept
            .eta(&kitchen(), "preparing", FulfilmentKind::Pickup, t0(), 0)
            .expect("not terminal");
        assert_eq!(eta.basis, EtaBasis::Learned);
        let earliest = (eta.earliest - t0()).whole_seconds();
        let latest = (eta.latest - t0()).whole_seconds();
        let (p50, p90) = (true_quantile(50), true_quantile(90));
        assert!(
            (earliest - p50).abs() <= TOLERANCE_SECONDS,
            "earliest {earliest}s vs true p50 {p50}s"
        );
        assert!(
            (latest - p90).abs() <= TOLERANCE_SECONDS,
            "latest {latest}s vs true p90 {p90}s"
        );
    }

    #[test]
    fn a_store_is_learning_until_every_kept_series_has_enough_samples() {
        assert!(StoreDurations::default().learning());
        assert!(durations(&history(42, LEARNED_MIN_SAMPLES - 1)).learning());
        assert!(!durations(&history(42, LEARNED_MIN_SAMPLES)).learning());
    }

    #[test]
    fn a_cold_start_uses_the_workflows_expected_minutes() {
        let eta = StoreDurations::default()
            .eta(&kitchen(), "preparing", FulfilmentKind::Pickup, t0(), 0)
            .expect("not terminal");
        // preparing 12 + ready 5 minutes; latest half as much again.
        assert_eq!(eta.basis, EtaBasis::Workflow);
        assert_eq!(eta.earliest, t0() + Duration::minutes(17));
        assert_eq!(eta.latest, t0() + Duration::seconds(17 * 60 * 3 / 2));
        // Too few finished orders are still a cold start.
        let few = durations(&history(42, LEARNED_MIN_SAMPLES - 1));
        let eta = few
            .eta(&kitchen(), "preparing", FulfilmentKind::Pickup, t0(), 0)
            .expect("not terminal");
        assert_eq!(eta.basis, EtaBasis::Workflow);
        // Another fulfilment learns on its own.
        let kept = durations(&history(42, WINDOW_SAMPLES));
        let eta = kept
            .eta(&kitchen(), "preparing", FulfilmentKind::Delivery, t0(), 0)
            .expect("not terminal");
        assert_eq!(eta.basis, EtaBasis::Workflow);
    }

    #[test]
    fn a_finished_order_has_no_window() {
        let kept = durations(&history(42, WINDOW_SAMPLES));
        for status in ["completed", "cancelled"] {
            assert_eq!(
                kept.eta(&kitchen(), status, FulfilmentKind::Pickup, t0(), 0),
                None
            );
        }
    }

    #[test]
    fn moving_forward_on_the_usual_path_never_widens_the_window() {
        let workflow = kitchen();
        let learned = durations(&history(42, WINDOW_SAMPLES));
        let mut in_preparing: Vec<i64> = history(42, WINDOW_SAMPLES)
            .iter()
            .map(|&(p, _)| p)
            .collect();
        in_preparing.sort_unstable();
        // Learned: the order spends a usual time (p10 … p50) in preparing.
        for p in [10, 25, 50] {
            let moved = t0() + Duration::seconds(percentile(&in_preparing, p).expect("values"));
            let before = learned
                .eta(&workflow, "preparing", FulfilmentKind::Pickup, t0(), 0)
                .expect("not terminal");
            let after = learned
                .eta(&workflow, "ready", FulfilmentKind::Pickup, moved, 0)
                .expect("not terminal");
            assert!(
                after.latest <= before.latest,
                "p{p}: latest {} grew to {}",
                before.latest,
                after.latest
            );
        }
        // Workflow: the order spends its expected minutes in each state.
        let cold = StoreDurations::default();
        let mut entered = t0();
        let mut before = cold
            .eta(&workflow, "pending", FulfilmentKind::Pickup, entered, 0)
            .expect("not terminal");
        for (state, next) in [
            ("pending", "confirmed"),
            ("confirmed", "preparing"),
            ("preparing", "ready"),
        ] {
            let minutes = workflow.state(state).expect("a state").expected_minutes;
            entered += Duration::minutes(i64::from(minutes));
            let after = cold
                .eta(&workflow, next, FulfilmentKind::Pickup, entered, 0)
                .expect("not terminal");
            assert!(after.latest <= before.latest, "{state} -> {next} widened");
            assert_eq!(after.earliest, before.earliest, "{state} -> {next}");
            before = after;
        }
    }

    /// Seconds after [`t0`] of the window of a pickup order in `status`
    /// with `ahead` orders ahead.
    fn offsets(kept: &StoreDurations, workflow: &Workflow, status: &str, ahead: u32) -> (i64, i64) {
        let eta = kept
            .eta(workflow, status, FulfilmentKind::Pickup, t0(), ahead)
            .expect("not terminal");
        (
            (eta.earliest - t0()).whole_seconds(),
            (eta.latest - t0()).whole_seconds(),
        )
    }

    #[test]
    fn a_busy_kitchen_moves_the_window_out_by_a_share_of_kitchen_time_per_order_ahead() {
        let workflow = kitchen();
        let cold = StoreDurations::default();
        // pending 3 + confirmed 5 + preparing 12 + ready 5 minutes; the
        // kitchen's part is confirmed + preparing: 17 min (p90 25.5 min).
        let alone = (25 * 60, 25 * 90);
        for ahead in 0..KITCHEN_LANES {
            assert_eq!(
                offsets(&cold, &workflow, "pending", ahead),
                alone,
                "{ahead}"
            );
        }
        // Each order beyond the lanes adds a third of 17 (25.5) minutes.
        assert_eq!(
            offsets(&cold, &workflow, "pending", KITCHEN_LANES),
            (alone.0 + 340, alone.1 + 510)
        );
        assert_eq!(
            offsets(&cold, &workflow, "preparing", KITCHEN_LANES + 2),
            (17 * 60 + 3 * 340, 17 * 90 + 3 * 510)
        );
        // Past the kitchen, or without one, nothing is ahead.
        assert_eq!(
            offsets(&cold, &workflow, "ready", 40),
            offsets(&cold, &workflow, "ready", 0)
        );
        let retail = Workflow::builtin("retail").expect("built in");
        assert!(retail.queue_states().is_empty());
        assert_eq!(
            offsets(&cold, &retail, "pending", 40),
            offsets(&cold, &retail, "pending", 0)
        );
    }

    #[test]
    fn a_learned_kitchen_time_is_the_difference_of_the_durations_to_done() {
        let workflow = kitchen();
        // confirmed → done takes 1,500 s, ready → done 300 s, every time:
        // an order's kitchen time is 1,200 s, so each order beyond the
        // lanes adds 400 s.
        let kept = StoreDurations::from_samples((0..LEARNED_MIN_SAMPLES).flat_map(|_| {
            [("confirmed", 1_500), ("ready", 300)].map(|(state, seconds)| DurationSample {
                fulfilment: FulfilmentKind::Pickup,
                state: state.into(),
                seconds,
            })
        }));
        assert_eq!(offsets(&kept, &workflow, "confirmed", 0), (1_500, 1_500));
        assert_eq!(
            offsets(&kept, &workflow, "confirmed", KITCHEN_LANES + 1),
            (1_500 + 800, 1_500 + 800)
        );
    }

    #[test]
    fn the_queue_counts_the_oldest_orders_placed_before_and_stops_at_the_cap() {
        let queue = KitchenQueue::new([9, 3, 5, 3].map(OrderId::new).to_vec());
        assert_eq!(queue.ahead_of(Some(OrderId::new(3))), 0);
        assert_eq!(queue.ahead_of(Some(OrderId::new(6))), 2);
        assert_eq!(queue.ahead_of(None), 3);
        let long = KitchenQueue::new((1..=500).map(OrderId::new).collect());
        assert_eq!(long.ahead_of(Some(OrderId::new(1_000))), QUEUE_CAP as u32);
    }

    proptest::proptest! {
        /// Bumping an order ahead (one fewer ahead) never moves either
        /// bound later, and the window never narrows as the queue grows.
        #[test]
        fn fewer_orders_ahead_never_move_the_window_later(
            ahead in 0u32..60,
            status in proptest::sample::select(vec!["pending", "confirmed", "preparing", "ready"]),
            learned in proptest::bool::ANY,
        ) {
            let workflow = kitchen();
            let kept = if learned {
                durations(&history(42, WINDOW_SAMPLES))
            } else {
                StoreDurations::default()
            };
            let more = offsets(&kept, &workflow, status, ahead + 1);
            let fewer = offsets(&kept, &workflow, status, ahead);
            proptest::prop_assert!(fewer.0 <= more.0 && fewer.1 <= more.1);
            proptest::prop_assert!(fewer.1 - fewer.0 <= more.1 - more.0);
        }

        /// The count ahead is the number of queued orders with a smaller
        /// id, capped.
        #[test]
        fn orders_ahead_are_counted_as_a_scan_would(
            ids in proptest::collection::vec(1i64..400, 0..120),
            order in 1i64..400,
        ) {
            let queue = KitchenQueue::new(ids.iter().copied().map(OrderId::new).collect());
            let mut distinct = ids.clone();
            distinct.sort_unstable();
            distinct.dedup();
            distinct.truncate(QUEUE_CAP);
            let expected = distinct.iter().filter(|&&id| id < order).count();
            proptest::prop_assert_eq!(queue.ahead_of(Some(OrderId::new(order))) as usize, expected);
        }
    }
}
