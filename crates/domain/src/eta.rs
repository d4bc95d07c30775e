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

use std::collections::HashMap;

use serde::{Deserialize, Serialize};
use time::{Duration, OffsetDateTime};

use crate::report::percentile;
use crate::{FulfilmentKind, StatusKey, Workflow};

/// How many finished orders (per store, fulfilment and state) make a
/// learned window; fewer and the workflow's expected minutes are used.
pub const LEARNED_MIN_SAMPLES: usize = 20;

/// How many recent samples the stores keep per store, fulfilment and state.
pub const WINDOW_SAMPLES: usize = 200;

/// The spread of a window from the workflow's expected minutes: `latest`
/// is `earliest` plus this share (in percent) of the remaining path.
pub const WORKFLOW_SPREAD_PERCENT: i64 = 50;

/// Where a window comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum EtaBasis {
    /// The store's own recent finished orders.
    Learned,
    /// The workflow's expected minutes (too few finished orders yet).
    Workflow,
}

/// When an order will be done: a window of two instants.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
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

    /// The window of an order in `status` (entered at `entered`) under
    /// `workflow`; `None` for a terminal (or unknown) state.
    pub fn eta(
        &self,
        workflow: &Workflow,
        status: &str,
        fulfilment: FulfilmentKind,
        entered: OffsetDateTime,
    ) -> Option<Eta> {
        let minutes = workflow.expected_minutes_remaining(status, fulfilment)?;
        let learned = self
            .sorted
            .get(&(fulfilment, status.to_owned()))
            .filter(|seconds| seconds.len() >= LEARNED_MIN_SAMPLES);
        if let Some(seconds) = learned {
            let p50 = percentile(seconds, 50)?;
            let p90 = percentile(seconds, 90)?;
            return Some(Eta {
                earliest: entered + Duration::seconds(p50),
                latest: entered + Duration::seconds(p90),
                basis: EtaBasis::Learned,
            });
        }
        let path = i64::from(minutes) * 60;
        Some(Eta {
            earliest: entered + Duration::seconds(path),
            latest: entered + Duration::seconds(path + path * WORKFLOW_SPREAD_PERCENT / 100),
            basis: EtaBasis::Workflow,
        })
    }
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
            .eta(&kitchen(), "preparing", FulfilmentKind::Pickup, t0())
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
    fn a_cold_start_uses_the_workflows_expected_minutes() {
        let eta = StoreDurations::default()
            .eta(&kitchen(), "preparing", FulfilmentKind::Pickup, t0())
            .expect("not terminal");
        // preparing 12 + ready 5 minutes; latest half as much again.
        assert_eq!(eta.basis, EtaBasis::Workflow);
        assert_eq!(eta.earliest, t0() + Duration::minutes(17));
        assert_eq!(eta.latest, t0() + Duration::seconds(17 * 60 * 3 / 2));
        // Too few finished orders are still a cold start.
        let few = durations(&history(42, LEARNED_MIN_SAMPLES - 1));
        let eta = few
            .eta(&kitchen(), "preparing", FulfilmentKind::Pickup, t0())
            .expect("not terminal");
        assert_eq!(eta.basis, EtaBasis::Workflow);
        // Another fulfilment learns on its own.
        let kept = durations(&history(42, WINDOW_SAMPLES));
        let eta = kept
            .eta(&kitchen(), "preparing", FulfilmentKind::Delivery, t0())
            .expect("not terminal");
        assert_eq!(eta.basis, EtaBasis::Workflow);
    }

    #[test]
    fn a_finished_order_has_no_window() {
        let kept = durations(&history(42, WINDOW_SAMPLES));
        for status in ["completed", "cancelled"] {
            assert_eq!(
                kept.eta(&kitchen(), status, FulfilmentKind::Pickup, t0()),
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
                .eta(&workflow, "preparing", FulfilmentKind::Pickup, t0())
                .expect("not terminal");
            let after = learned
                .eta(&workflow, "ready", FulfilmentKind::Pickup, moved)
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
            .eta(&workflow, "pending", FulfilmentKind::Pickup, entered)
            .expect("not terminal");
        for (state, next) in [
            ("pending", "confirmed"),
            ("confirmed", "preparing"),
            ("preparing", "ready"),
        ] {
            let minutes = workflow.state(state).expect("a state").expected_minutes;
            entered += Duration::minutes(i64::from(minutes));
            let after = cold
                .eta(&workflow, next, FulfilmentKind::Pickup, entered)
                .expect("not terminal");
            assert!(after.latest <= before.latest, "{state} -> {next} widened");
            assert_eq!(after.earliest, before.earliest, "{state} -> {next}");
            before = after;
        }
    }
}
