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
//!
//! Each sample also records the band of the day ([`DayBand`], the store's
//! wall clock) in which the order entered the sampled state: a lunch rush
//! and a quiet afternoon take different times. An order's window uses the
//! samples of the band it entered its state in when that band alone has
//! [`LEARNED_MIN_SAMPLES`], else all bands together.

use std::collections::HashMap;

use serde::{Deserialize, Serialize};
use time::{Duration, OffsetDateTime};

use crate::report::percentile;
use crate::{FulfilmentKind, OrderId, StatusKey, StoreZone, Workflow};

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

/// A band of the day on the store's wall clock (its time zone), by the
/// hour an order entered a state: the usual meal times of a food business
/// (breakfast, the lunch rush, the quiet afternoon, dinner, late night).
/// Shops without meal peaks lose nothing: a band learns on its own only
/// once it has [`LEARNED_MIN_SAMPLES`], else all bands count together.
#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    PartialOrd,
    Ord,
    Hash,
    Serialize,
    Deserialize,
    utoipa::ToSchema,
)]
#[serde(rename_all = "snake_case")]
pub enum DayBand {
    /// 06:00–11:00.
    Morning,
    /// 11:00–14:00.
    Lunch,
    /// 14:00–17:00.
    Afternoon,
    /// 17:00–21:00.
    Evening,
    /// 21:00–06:00.
    Night,
}

impl DayBand {
    /// Every band, in the order of the day.
    pub const ALL: [DayBand; 5] = [
        DayBand::Morning,
        DayBand::Lunch,
        DayBand::Afternoon,
        DayBand::Evening,
        DayBand::Night,
    ];

    /// The band of an hour of the wall clock (0–23).
    pub fn of_hour(hour: u8) -> DayBand {
        match hour {
            6..=10 => DayBand::Morning,
            11..=13 => DayBand::Lunch,
            14..=16 => DayBand::Afternoon,
            17..=20 => DayBand::Evening,
            _ => DayBand::Night,
        }
    }

    /// The band `at` falls in on the wall clock of `zone`.
    pub fn at(zone: &StoreZone, at: OffsetDateTime) -> DayBand {
        let hour = zone.local(at).hour();
        DayBand::of_hour(u8::try_from(hour).unwrap_or(0))
    }

    /// The stable name used in APIs and storage.
    pub fn as_str(self) -> &'static str {
        match self {
            DayBand::Morning => "morning",
            DayBand::Lunch => "lunch",
            DayBand::Afternoon => "afternoon",
            DayBand::Evening => "evening",
            DayBand::Night => "night",
        }
    }

    /// Parses the stored name.
    pub fn parse(s: &str) -> Option<Self> {
        DayBand::ALL.into_iter().find(|band| band.as_str() == s)
    }
}

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
    /// The band of the day whose samples alone made a learned window
    /// (the band the order entered its state in); absent when the window
    /// comes from all bands or from the workflow.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub band: Option<DayBand>,
}

/// One kept duration: a finished order entered `state` (in `band` of the
/// store's day) and was done `seconds` later.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DurationSample {
    pub fulfilment: FulfilmentKind,
    pub state: StatusKey,
    /// `None` for a sample whose band is not known (its store's time zone
    /// could not be read when it was back-filled): it counts only with all
    /// bands together.
    pub band: Option<DayBand>,
    pub seconds: i64,
}

/// A store's kept durations as read from storage, with the time zone its
/// bands are read in.
#[derive(Debug, Clone)]
pub struct KeptDurations {
    pub zone: StoreZone,
    pub samples: Vec<DurationSample>,
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
/// — all bands together and per band of the day (what the window is read
/// from).
#[derive(Debug, Clone)]
pub struct StoreDurations {
    zone: StoreZone,
    sorted: HashMap<(FulfilmentKind, String), Vec<i64>>,
    banded: HashMap<(FulfilmentKind, String, DayBand), Vec<i64>>,
}

impl Default for StoreDurations {
    fn default() -> Self {
        StoreDurations::from_samples(StoreZone::utc(), [])
    }
}

/// The series a window is read from: the band's own when it has enough
/// samples, else all bands', with the band it was read from.
type Series<'a> = (&'a [i64], Option<DayBand>);

impl StoreDurations {
    /// Groups and sorts samples (at most [`WINDOW_SAMPLES`] each, as kept)
    /// of a store in `zone`.
    pub fn from_samples(
        zone: StoreZone, samples: impl IntoIterator<Item = DurationSample>,
    ) -> Self {
        let mut sorted: HashMap<(FulfilmentKind, String), Vec<i64>> = HashMap::new();
        let mut banded: HashMap<(FulfilmentKind, String, DayBand), Vec<i64>> = HashMap::new();
        for sample in samples {
            let state = sample.state.as_str();
            if let Some(band) = sample.band {
                banded
                    .entry((sample.fulfilment, state.to_owned(), band))
                    .or_default()
                    .push(sample.seconds);
            }
            sorted
                .entry((sample.fulfilment, state.to_owned()))
                .or_default()
                .push(sample.seconds);
        }
        for seconds in sorted.values_mut().chain(banded.values_mut()) {
            seconds.sort_unstable();
        }
        StoreDurations {
            zone,
            sorted,
            banded,
        }
    }

    /// The kept durations as read from storage.
    pub fn from_kept(kept: KeptDurations) -> Self {
        StoreDurations::from_samples(kept.zone, kept.samples)
    }

    /// Whether one more finished order could still change a window's basis:
    /// nothing is kept yet, or some kept series (all bands together) has
    /// fewer than [`LEARNED_MIN_SAMPLES`]. Past that, one more sample moves
    /// a p50 or p90 by little, and a band reaching its own
    /// [`LEARNED_MIN_SAMPLES`] only refines a learned window, so a window a
    /// few seconds stale is as good.
    pub fn learning(&self) -> bool {
        self.sorted.is_empty()
            || self
                .sorted
                .values()
                .any(|seconds| seconds.len() < LEARNED_MIN_SAMPLES)
    }

    /// Whether the store is still in its cold start for `fulfilment`:
    /// fewer than [`LEARNED_MIN_SAMPLES`] of its orders of that fulfilment
    /// have finished (as far as kept). Every finished order keeps a
    /// duration from the status it was placed in, so its longest series
    /// counts them; a status few orders pass through does not keep a store
    /// cold.
    pub fn cold(&self, fulfilment: FulfilmentKind) -> bool {
        let finished = self
            .sorted
            .iter()
            .filter(|((kind, _), _)| *kind == fulfilment)
            .map(|(_, seconds)| seconds.len())
            .max()
            .unwrap_or(0);
        finished < LEARNED_MIN_SAMPLES
    }

    /// The window of an order in `status` (entered at `entered`) under
    /// `workflow`, with `ahead` orders of its store ahead of it in the
    /// kitchen's queue ([`KitchenQueue::ahead_of`]); `None` for a terminal
    /// (or unknown) state. Learned from the samples of the band of the day
    /// `entered` falls in when that band has enough of them, else from all
    /// bands.
    pub fn eta(
        &self, workflow: &Workflow, status: &str, fulfilment: FulfilmentKind,
        entered: OffsetDateTime, ahead: u32,
    ) -> Option<Eta> {
        let minutes = workflow.expected_minutes_remaining(status, fulfilment)?;
        let band = DayBand::at(&self.zone, entered);
        let (p50, p90, basis, band) = match self.learned(fulfilment, status, band) {
            Some((seconds, band)) => (
                percentile(seconds, 50)?,
                percentile(seconds, 90)?,
                EtaBasis::Learned,
                band,
            ),
            None => {
                let path = i64::from(minutes) * 60;
                (path, widened(path), EtaBasis::Workflow, None)
            }
        };
        let (wait50, wait90) = self.queue_wait(workflow, status, fulfilment, ahead);
        Some(Eta {
            earliest: entered + Duration::seconds(p50 + wait50),
            latest: entered + Duration::seconds(p90 + wait90),
            basis,
            band,
        })
    }

    /// The kept durations from `state` in `band` when that band alone has
    /// enough to learn from, else those of all bands when they have.
    fn learned(
        &self, fulfilment: FulfilmentKind, state: &str, band: DayBand,
    ) -> Option<Series<'_>> {
        let enough = |seconds: &&Vec<i64>| seconds.len() >= LEARNED_MIN_SAMPLES;
        if let Some(seconds) = self
            .banded
            .get(&(fulfilment, state.to_owned(), band))
            .filter(enough)
        {
            return Some((seconds.as_slice(), Some(band)));
        }
        self.pooled(fulfilment, state)
            .map(|seconds| (seconds, None))
    }

    /// The kept durations from `state` of all bands, when there are enough
    /// to learn from.
    fn pooled(&self, fulfilment: FulfilmentKind, state: &str) -> Option<&[i64]> {
        self.sorted
            .get(&(fulfilment, state.to_owned()))
            .filter(|seconds| seconds.len() >= LEARNED_MIN_SAMPLES)
            .map(Vec::as_slice)
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
            self.pooled(fulfilment, first.as_str()),
            self.pooled(fulfilment, hand_off.key.as_str()),
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
        StoreDurations::from_samples(StoreZone::utc(), samples(orders, None))
    }

    /// The samples of those orders (in `band`).
    fn samples(orders: &[(i64, i64)], band: Option<DayBand>) -> Vec<DurationSample> {
        orders
            .iter()
            .flat_map(|&(preparing, ready)| {
                [
                    DurationSample {
                        fulfilment: FulfilmentKind::Pickup,
                        state: "preparing".into(),
                        band,
                        seconds: preparing + ready,
                    },
                    DurationSample {
                        fulfilment: FulfilmentKind::Pickup,
                        state: "ready".into(),
                        band,
                        seconds: ready,
                    },
                ]
            })
            .collect()
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

    fn berlin() -> StoreZone {
        StoreZone::parse("Europe/Berlin").expect("a time zone")
    }

    /// 2026-03-02 at `hour`:`minute` in Berlin (UTC+1).
    fn berlin_at(hour: i64, minute: i64) -> OffsetDateTime {
        // 2026-03-02T00:00:00Z.
        OffsetDateTime::from_unix_timestamp(1_772_409_600).expect("a valid instant")
            + Duration::hours(hour - 1)
            + Duration::minutes(minute)
    }

    /// Synthetic lunch orders take about 10 minutes (`preparing` U[420,
    /// 600] s, `ready` U[0, 120] s), evening orders about 30 (U[1,500,
    /// 1,900] s and U[0, 300] s).
    fn lunch(seed: u64, orders: usize) -> Vec<(i64, i64)> {
        let mut rng = Lcg(seed);
        (0..orders)
            .map(|_| (rng.uniform(420, 600), rng.uniform(0, 120)))
            .collect()
    }

    fn evening(seed: u64, orders: usize) -> Vec<(i64, i64)> {
        let mut rng = Lcg(seed);
        (0..orders)
            .map(|_| (rng.uniform(1_500, 1_900), rng.uniform(0, 300)))
            .collect()
    }

    /// The `p`th percentile of the remaining time from `preparing` over
    /// `orders`.
    fn quantile(orders: &[(i64, i64)], p: u32) -> i64 {
        let mut sums: Vec<i64> = orders.iter().map(|&(a, b)| a + b).collect();
        sums.sort_unstable();
        percentile(&sums, p).expect("values")
    }

    /// The window of a pickup order that entered `preparing` at `entered`,
    /// as seconds after it, and the band it was learned from.
    fn banded_window(
        kept: &StoreDurations, entered: OffsetDateTime,
    ) -> (i64, i64, Option<DayBand>) {
        let eta = kept
            .eta(&kitchen(), "preparing", FulfilmentKind::Pickup, entered, 0)
            .expect("not terminal");
        assert_eq!(eta.basis, EtaBasis::Learned);
        (
            (eta.earliest - entered).whole_seconds(),
            (eta.latest - entered).whole_seconds(),
            eta.band,
        )
    }

    #[test]
    fn bands_follow_the_stores_wall_clock() {
        assert_eq!(DayBand::of_hour(5), DayBand::Night);
        assert_eq!(DayBand::of_hour(6), DayBand::Morning);
        assert_eq!(DayBand::of_hour(11), DayBand::Lunch);
        assert_eq!(DayBand::of_hour(13), DayBand::Lunch);
        assert_eq!(DayBand::of_hour(14), DayBand::Afternoon);
        assert_eq!(DayBand::of_hour(17), DayBand::Evening);
        assert_eq!(DayBand::of_hour(21), DayBand::Night);
        // 10:30 UTC is 11:30 in Berlin in winter, 12:30 in summer.
        let winter = berlin_at(11, 30);
        assert_eq!(DayBand::at(&StoreZone::utc(), winter), DayBand::Morning);
        assert_eq!(DayBand::at(&berlin(), winter), DayBand::Lunch);
        for band in DayBand::ALL {
            assert_eq!(DayBand::parse(band.as_str()), Some(band));
        }
        assert_eq!(DayBand::parse("brunch"), None);
    }

    #[test]
    fn an_order_learns_from_its_own_band_of_the_day() {
        let lunches = lunch(42, 80);
        let evenings = evening(43, 80);
        let kept = StoreDurations::from_samples(
            berlin(),
            samples(&lunches, Some(DayBand::Lunch))
                .into_iter()
                .chain(samples(&evenings, Some(DayBand::Evening))),
        );
        // The true quantiles of each band, from a large draw of the same
        // distribution.
        let (lunch_true, evening_true) = (lunch(7, 100_000), evening(8, 100_000));
        for (entered, truth, band) in [
            (berlin_at(12, 30), &lunch_true, DayBand::Lunch),
            (berlin_at(19, 45), &evening_true, DayBand::Evening),
        ] {
            let (earliest, latest, learned_from) = banded_window(&kept, entered);
            assert_eq!(learned_from, Some(band));
            let (p50, p90) = (quantile(truth, 50), quantile(truth, 90));
            assert!(
                (earliest - p50).abs() <= TOLERANCE_SECONDS,
                "{band:?}: earliest {earliest}s vs true p50 {p50}s"
            );
            assert!(
                (latest - p90).abs() <= TOLERANCE_SECONDS,
                "{band:?}: latest {latest}s vs true p90 {p90}s"
            );
        }
        // All bands together would have promised a lunch order far too
        // late: the evening's samples are half of them.
        let all = [lunches, evenings].concat();
        assert!(quantile(&all, 90) > 2 * quantile(&lunch_true, 90));
    }

    #[test]
    fn a_band_with_too_few_samples_uses_all_bands() {
        let lunches = lunch(42, 80);
        let afternoons = evening(44, LEARNED_MIN_SAMPLES - 1);
        let kept = StoreDurations::from_samples(
            berlin(),
            samples(&lunches, Some(DayBand::Lunch))
                .into_iter()
                .chain(samples(&afternoons, Some(DayBand::Afternoon))),
        );
        let all = [lunches.clone(), afternoons].concat();
        assert_eq!(
            banded_window(&kept, berlin_at(15, 0)),
            (quantile(&all, 50), quantile(&all, 90), None)
        );
        // A band without any sample, and samples without a band, too.
        assert_eq!(
            banded_window(&kept, berlin_at(8, 0)),
            (quantile(&all, 50), quantile(&all, 90), None)
        );
        let unbanded = StoreDurations::from_samples(berlin(), samples(&lunches, None));
        assert_eq!(
            banded_window(&unbanded, berlin_at(12, 0)),
            (quantile(&lunches, 50), quantile(&lunches, 90), None)
        );
        // Too few of all bands together: the workflow's minutes.
        let few = StoreDurations::from_samples(
            berlin(),
            samples(&lunch(42, LEARNED_MIN_SAMPLES - 1), Some(DayBand::Lunch)),
        );
        let eta = few
            .eta(
                &kitchen(),
                "preparing",
                FulfilmentKind::Pickup,
                berlin_at(12, 0),
                0,
            )
            .expect("not terminal");
        assert_eq!((eta.basis, eta.band), (EtaBasis::Workflow, None));
    }

    #[test]
    fn a_store_is_learning_until_every_kept_series_has_enough_samples_and_cold_until_enough_orders()
    {
        assert!(StoreDurations::default().learning());
        assert!(durations(&history(42, LEARNED_MIN_SAMPLES - 1)).learning());
        assert!(!durations(&history(42, LEARNED_MIN_SAMPLES)).learning());
        assert!(StoreDurations::default().cold(FulfilmentKind::Pickup));
        assert!(durations(&history(42, LEARNED_MIN_SAMPLES - 1)).cold(FulfilmentKind::Pickup));
        assert!(!durations(&history(42, LEARNED_MIN_SAMPLES)).cold(FulfilmentKind::Pickup));
        assert!(durations(&history(42, LEARNED_MIN_SAMPLES)).cold(FulfilmentKind::Delivery));
        // A status few orders pass through keeps it learning, not cold.
        let mut kept = samples(&history(42, LEARNED_MIN_SAMPLES), None);
        kept.push(DurationSample {
            fulfilment: FulfilmentKind::Pickup,
            state: "on_hold".into(),
            band: None,
            seconds: 60,
        });
        let rare = StoreDurations::from_samples(StoreZone::utc(), kept);
        assert!(rare.learning());
        assert!(!rare.cold(FulfilmentKind::Pickup));
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
        let kept = StoreDurations::from_samples(
            StoreZone::utc(),
            (0..LEARNED_MIN_SAMPLES).flat_map(|_| {
                [("confirmed", 1_500), ("ready", 300)].map(|(state, seconds)| DurationSample {
                    fulfilment: FulfilmentKind::Pickup,
                    state: state.into(),
                    band: None,
                    seconds,
                })
            }),
        );
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
