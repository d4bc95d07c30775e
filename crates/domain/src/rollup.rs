//! Per-day rollups of a store's reports, kept as orders change so a report
//! over a year reads at most 366 rows instead of every order of the year.
//! Pure: the store keeps one [`DayRollup`] per store and calendar day (the
//! day an order was **placed**, in the store's time zone — the same day the
//! reports read from raw history bucket it in) and applies the
//! [`OrderOutcomes`] of each change to it; the reports merge the days of
//! their range.
//!
//! Durations are kept as mergeable histograms ([`Histogram`]): exact to the
//! second below [`EXACT_BELOW_SECONDS`], above it within a relative
//! [`RELATIVE_PRECISION`] (a value is reported as its bucket's lower bound,
//! never more than the true value).

use std::collections::BTreeMap;
use std::collections::HashMap;

/// The calendar day rollups are kept by.
pub use jiff::civil::Date;
use time::OffsetDateTime;

use crate::report::{
    Outcome, ReportOrder, ReportRange, ReportStep, SalesDay, SalesFigures, SalesReport, Spread,
    StateTimes, Timeline, TimesReport, timeline,
};
use crate::{HistoryEntry, OrderId, StatusKey, StoreZone, Workflow};

/// Sub-bucket bits: values below 2^13 s (2 h 16 min) have a bucket each.
const SUB_BITS: u32 = 13;

/// Durations below this many seconds are kept exactly.
pub const EXACT_BELOW_SECONDS: i64 = 1 << SUB_BITS;

/// Above [`EXACT_BELOW_SECONDS`], a kept duration is at most this much
/// (relative) below the true one: 1/4096.
pub const RELATIVE_PRECISION: f64 = 1.0 / (1u64 << (SUB_BITS - 1)) as f64;

/// The bucket of a duration (negative durations count as 0).
pub fn bucket_of(seconds: i64) -> u32 {
    let s = u64::try_from(seconds).unwrap_or(0);
    if s < (1 << SUB_BITS) {
        return s as u32;
    }
    let bits = 64 - s.leading_zeros();
    let shift = bits - SUB_BITS;
    let top = s >> shift; // in [2^(SUB_BITS-1), 2^SUB_BITS)
    (1 << SUB_BITS) + (shift - 1) * (1 << (SUB_BITS - 1)) + (top as u32 - (1 << (SUB_BITS - 1)))
}

/// The smallest duration of a bucket: what a percentile in it reports.
pub fn bucket_floor(bucket: u32) -> i64 {
    if bucket < (1 << SUB_BITS) {
        return i64::from(bucket);
    }
    let above = bucket - (1 << SUB_BITS);
    let shift = above / (1 << (SUB_BITS - 1)) + 1;
    let top = u64::from(above % (1 << (SUB_BITS - 1)) + (1 << (SUB_BITS - 1)));
    i64::try_from(top.checked_shl(shift).unwrap_or(u64::MAX)).unwrap_or(i64::MAX)
}

/// Counts of durations per bucket: merged by adding counts, so the
/// histogram of a range is the sum of its days'.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Histogram {
    buckets: BTreeMap<u32, u64>,
}

impl Histogram {
    /// Counts one more duration.
    pub fn add(&mut self, seconds: i64) {
        *self.buckets.entry(bucket_of(seconds)).or_default() += 1;
    }

    /// Counts one duration fewer (one that was added before).
    pub fn remove(&mut self, seconds: i64) {
        let bucket = bucket_of(seconds);
        if let Some(count) = self.buckets.get_mut(&bucket) {
            *count = count.saturating_sub(1);
            if *count == 0 {
                self.buckets.remove(&bucket);
            }
        }
    }

    /// Adds every count of `other`.
    pub fn merge(&mut self, other: &Histogram) {
        for (bucket, count) in &other.buckets {
            *self.buckets.entry(*bucket).or_default() += count;
        }
    }

    /// How many durations.
    pub fn count(&self) -> u64 {
        self.buckets.values().sum()
    }

    /// The nearest-rank percentile `p` (0–100), as [`crate::report::percentile`]
    /// over the durations; `None` when empty.
    pub fn percentile(&self, p: u32) -> Option<i64> {
        let count = self.count();
        if count == 0 {
            return None;
        }
        let rank = (u64::from(p.min(100)) * count).div_ceil(100).max(1);
        let mut seen = 0;
        for (bucket, n) in &self.buckets {
            seen += n;
            if seen >= rank {
                return Some(bucket_floor(*bucket));
            }
        }
        self.buckets.keys().next_back().map(|b| bucket_floor(*b))
    }

    /// Count, p50 and p90.
    pub fn spread(&self) -> Spread {
        Spread {
            count: self.count(),
            p50_seconds: self.percentile(50),
            p90_seconds: self.percentile(90),
        }
    }

    fn is_empty(&self) -> bool {
        self.buckets.is_empty()
    }
}

/// The time-in-state and to-done histograms of one day's finished orders.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DayTimes {
    /// Per state, in the order first added.
    states: Vec<(String, Histogram)>,
    to_done: Histogram,
}

impl DayTimes {
    fn state_mut(&mut self, state: &str) -> &mut Histogram {
        let at = match self.states.iter().position(|(key, _)| key == state) {
            Some(at) => at,
            None => {
                self.states.push((state.to_owned(), Histogram::default()));
                self.states.len() - 1
            }
        };
        &mut self.states[at].1
    }

    /// Counts a finished order's timeline.
    pub fn add(&mut self, timeline: &Timeline) {
        for (state, seconds) in &timeline.spent {
            self.state_mut(state).add(*seconds);
        }
        self.to_done.add(timeline.to_done_seconds);
    }

    /// Takes back a timeline counted before (the order is no longer done).
    pub fn remove(&mut self, timeline: &Timeline) {
        for (state, seconds) in &timeline.spent {
            self.state_mut(state).remove(*seconds);
        }
        self.to_done.remove(timeline.to_done_seconds);
        self.states.retain(|(_, h)| !h.is_empty());
    }

    /// Adds every count of `other`.
    pub fn merge(&mut self, other: &DayTimes) {
        for (state, histogram) in &other.states {
            self.state_mut(state).merge(histogram);
        }
        self.to_done.merge(&other.to_done);
    }

    /// Whether no finished order is counted.
    pub fn is_empty(&self) -> bool {
        self.to_done.is_empty() && self.states.is_empty()
    }

    /// The stored form: series (to done first, then each state) of
    /// LEB128 varints — name length, name, number of buckets, then per
    /// bucket the gap from the previous bucket and the count.
    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::new();
        if self.is_empty() {
            return out;
        }
        let series = std::iter::once(("", &self.to_done))
            .chain(self.states.iter().map(|(k, h)| (k.as_str(), h)));
        for (name, histogram) in series {
            put_varint(&mut out, name.len() as u64);
            out.extend_from_slice(name.as_bytes());
            put_varint(&mut out, histogram.buckets.len() as u64);
            let mut previous = 0u32;
            for (bucket, count) in &histogram.buckets {
                put_varint(&mut out, u64::from(bucket - previous));
                put_varint(&mut out, *count);
                previous = *bucket;
            }
        }
        out
    }

    /// Reads [`DayTimes::encode`]'s form; `None` if it is not that.
    pub fn decode(mut bytes: &[u8]) -> Option<DayTimes> {
        let mut times = DayTimes::default();
        let mut first = true;
        while !bytes.is_empty() {
            let length = usize::try_from(get_varint(&mut bytes)?).ok()?;
            let name = std::str::from_utf8(bytes.get(..length)?).ok()?.to_owned();
            bytes = &bytes[length..];
            let buckets = get_varint(&mut bytes)?;
            let mut histogram = Histogram::default();
            let mut bucket = 0u32;
            for _ in 0..buckets {
                bucket = bucket.checked_add(u32::try_from(get_varint(&mut bytes)?).ok()?)?;
                histogram.buckets.insert(bucket, get_varint(&mut bytes)?);
            }
            if first {
                times.to_done = histogram;
                first = false;
            } else {
                times.states.push((name, histogram));
            }
        }
        Some(times)
    }
}

fn put_varint(out: &mut Vec<u8>, mut value: u64) {
    loop {
        let byte = (value & 0x7f) as u8;
        value >>= 7;
        if value == 0 {
            out.push(byte);
            return;
        }
        out.push(byte | 0x80);
    }
}

fn get_varint(bytes: &mut &[u8]) -> Option<u64> {
    let mut value = 0u64;
    for shift in (0..64).step_by(7) {
        let (byte, rest) = bytes.split_first()?;
        *bytes = rest;
        value |= u64::from(byte & 0x7f) << shift;
        if byte & 0x80 == 0 {
            return Some(value);
        }
    }
    None
}

/// One store's figures for one calendar day (orders placed that day).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DayRollup {
    pub orders: i64,
    pub completed: i64,
    pub cancelled: i64,
    pub revenue_minor: i64,
    pub times: DayTimes,
}

impl DayRollup {
    /// The day's sales figures.
    pub fn sales(&self) -> SalesFigures {
        SalesFigures::of_counts(
            self.orders.max(0) as u64,
            self.completed.max(0) as u64,
            self.cancelled.max(0) as u64,
            self.revenue_minor,
        )
    }
}

/// Which states of an order's workflow count as done and as cancelled —
/// what a report needs of a workflow to classify an order.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct OutcomeRules {
    pub done: Vec<StatusKey>,
    pub cancelled: Vec<StatusKey>,
}

impl OutcomeRules {
    /// The rules of `workflow`.
    pub fn of(workflow: &Workflow) -> Self {
        OutcomeRules {
            done: workflow.done_states().to_vec(),
            cancelled: workflow.cancelled_states().to_vec(),
        }
    }

    pub fn is_done(&self, status: &str) -> bool {
        self.done.iter().any(|k| k == status)
    }

    /// How an order in `status` has ended, if at all.
    pub fn outcome(&self, status: &str) -> Outcome {
        if self.cancelled.iter().any(|k| k == status) {
            Outcome::Cancelled
        } else if self.is_done(status) {
            Outcome::Done
        } else {
            Outcome::Open
        }
    }
}

/// A status change that moves an order from one outcome to another (open,
/// done, cancelled): what the store applies to the day the order was
/// placed on. Changes within one outcome leave the reports as they were.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OrderOutcomes {
    pub from: Outcome,
    pub to: Outcome,
    pub rules: OutcomeRules,
}

impl OrderOutcomes {
    /// The outcomes of `workflow`'s `from` → `to`, if they differ.
    pub fn of(workflow: &Workflow, from: &str, to: &str) -> Option<Self> {
        let rules = OutcomeRules::of(workflow);
        let (from, to) = (rules.outcome(from), rules.outcome(to));
        (from != to).then_some(OrderOutcomes { from, to, rules })
    }

    /// Applies the change to the day of an order of total `total_minor`
    /// whose history, with the entry of this change last, is `history`.
    pub fn apply(
        &self, day: &mut DayRollup, order: OrderId, total_minor: i64, history: &[HistoryEntry],
    ) {
        let count = |outcome: Outcome, of: Outcome| i64::from(outcome == of);
        day.completed += count(self.to, Outcome::Done) - count(self.from, Outcome::Done);
        day.cancelled += count(self.to, Outcome::Cancelled) - count(self.from, Outcome::Cancelled);
        let pays = |outcome: Outcome| i64::from(outcome != Outcome::Cancelled);
        day.revenue_minor = day
            .revenue_minor
            .saturating_add(total_minor.saturating_mul(pays(self.to) - pays(self.from)));
        let steps = |entries: &[HistoryEntry]| -> Vec<ReportStep> {
            entries
                .iter()
                .map(|entry| ReportStep {
                    order_id: order,
                    entry: entry.clone(),
                })
                .collect()
        };
        let is_done = |s: &str| self.rules.is_done(s);
        if self.from == Outcome::Done
            && let Some(before) = history.split_last().map(|(_, before)| steps(before))
            && let Some(was) = timeline(order, &before, is_done)
        {
            day.times.remove(&was);
        }
        if self.to == Outcome::Done
            && let Some(now) = timeline(order, &steps(history), is_done)
        {
            day.times.add(&now);
        }
    }
}

/// The calendar day, on `zone`'s wall clock, an order placed at `at`
/// counts on.
pub fn day_of(zone: &StoreZone, at: OffsetDateTime) -> Date {
    zone.local(at).date()
}

/// Builds a store's rollups from its raw orders and history (back-fill,
/// and after the store's time zone changes).
#[derive(Debug, Default)]
pub struct RollupBuilder {
    pub days: HashMap<Date, DayRollup>,
}

impl RollupBuilder {
    /// Counts one order (`steps`: its whole history, oldest first) under
    /// the rules of its workflow.
    pub fn add(
        &mut self, zone: &StoreZone, rules: &OutcomeRules, order: &ReportOrder,
        steps: &[ReportStep],
    ) {
        let day = self.days.entry(day_of(zone, order.placed_at)).or_default();
        day.orders += 1;
        let outcome = rules.outcome(&order.status);
        match outcome {
            Outcome::Done => day.completed += 1,
            Outcome::Cancelled => day.cancelled += 1,
            Outcome::Open => {}
        }
        if outcome != Outcome::Cancelled {
            day.revenue_minor = day.revenue_minor.saturating_add(order.total_minor);
        }
        if outcome == Outcome::Done
            && let Some(line) = timeline(order.id, steps, |s| rules.is_done(s))
        {
            day.times.add(&line);
        }
    }
}

/// The rollups of a store's days by date (rows whose day is not a date
/// are left out).
pub fn days_by_date(
    rows: impl IntoIterator<Item = (String, DayRollup)>,
) -> HashMap<Date, DayRollup> {
    rows.into_iter()
        .filter_map(|(day, rollup)| Some((day.parse::<Date>().ok()?, rollup)))
        .collect()
}

/// Sales per day of `range` from the rollups of its days (days without a
/// rollup have no orders).
pub fn sales_from_days(range: &ReportRange, days: &HashMap<Date, DayRollup>) -> SalesReport {
    let days: Vec<SalesDay> = range
        .days()
        .map(|date| SalesDay {
            date,
            figures: days.get(&date).map(DayRollup::sales).unwrap_or_default(),
        })
        .collect();
    let sum = |f: fn(&SalesFigures) -> u64| days.iter().map(|d| f(&d.figures)).sum::<u64>();
    let totals = SalesFigures::of_counts(
        sum(|f| f.orders),
        sum(|f| f.completed),
        sum(|f| f.cancelled),
        days.iter()
            .fold(0i64, |sum, d| sum.saturating_add(d.figures.revenue_minor)),
    );
    SalesReport { days, totals }
}

/// Time in each state and to done from the merged days (any order);
/// states listed in `state_order` first, then the others by name.
pub fn times_from_days<'a>(
    days: impl IntoIterator<Item = &'a DayTimes>, state_order: &[&str],
) -> TimesReport {
    let mut merged = DayTimes::default();
    for day in days {
        merged.merge(day);
    }
    let mut states: Vec<(String, Histogram)> = merged.states;
    states.sort_by(|(a, _), (b, _)| {
        let rank = |s: &str| {
            state_order
                .iter()
                .position(|k| *k == s)
                .unwrap_or(usize::MAX)
        };
        rank(a).cmp(&rank(b)).then_with(|| a.cmp(b))
    });
    TimesReport {
        states: states
            .into_iter()
            .filter(|(_, h)| h.count() > 0)
            .map(|(status, histogram)| StateTimes {
                status,
                spread: histogram.spread(),
            })
            .collect(),
        to_done: merged.to_done.spread(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::percentile;

    #[test]
    fn buckets_are_exact_below_the_threshold_and_relative_above() {
        for s in [0, 1, 59, 60, 3120, 6120, EXACT_BELOW_SECONDS - 1] {
            assert_eq!(bucket_floor(bucket_of(s)), s);
        }
        let mut previous = 0;
        for s in (EXACT_BELOW_SECONDS..10_000_000).step_by(997) {
            let floor = bucket_floor(bucket_of(s));
            assert!(
                floor <= s && (s - floor) as f64 <= s as f64 * RELATIVE_PRECISION,
                "{s} → {floor}"
            );
            assert!(bucket_of(s) >= previous);
            previous = bucket_of(s);
        }
        assert_eq!(bucket_of(-5), 0);
    }

    #[test]
    fn histogram_percentiles_are_nearest_rank_like_the_raw_ones() {
        let values: Vec<i64> = (1..=37).map(|n| (n * 7919) % 5000).collect();
        let mut histogram = Histogram::default();
        values.iter().for_each(|v| histogram.add(*v));
        let mut sorted = values.clone();
        sorted.sort_unstable();
        for p in [0, 1, 50, 90, 99, 100] {
            assert_eq!(histogram.percentile(p), percentile(&sorted, p), "p{p}");
        }
        histogram.remove(sorted[0]);
        assert_eq!(histogram.count(), 36);
    }

    #[test]
    fn day_times_survive_their_stored_form() {
        let mut times = DayTimes::default();
        times.add(&Timeline {
            order: OrderId::new(1),
            spent: vec![("pending".into(), 60), ("cooking".into(), 900_000)],
            to_done_seconds: 900_060,
        });
        times.add(&Timeline {
            order: OrderId::new(2),
            spent: vec![("pending".into(), 61)],
            to_done_seconds: 61,
        });
        let decoded = DayTimes::decode(&times.encode()).expect("decodes");
        assert_eq!(decoded, times);
        assert_eq!(DayTimes::decode(&[]), Some(DayTimes::default()));
        assert_eq!(DayTimes::decode(&[0x80]), None);
    }
}
