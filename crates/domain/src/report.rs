//! Reports over a store's orders: sales per calendar day, the time orders
//! spend in each state, orders per weekday and hour. Pure: the store reads
//! the raw rows of a range ([`ReportOrder`], [`ReportStep`]) and these
//! functions bucket them on the store's wall clock — a day is a calendar day
//! in the store's time zone, so a DST day has 23 or 25 hours and is still
//! one day — take percentiles and round averages. Nothing here reads a
//! clock: "today" comes in as `now`.

use jiff::civil::{Date, Time, Weekday};
use time::OffsetDateTime;

use crate::{HistoryEntry, OrderId, StoreZone};

/// The longest range a report covers, in days (a leap year).
pub const MAX_REPORT_DAYS: i64 = 366;

/// The days a report covers when the request names no `from`: a week
/// ending on `to`.
pub const DEFAULT_REPORT_DAYS: i64 = 7;

/// A range of calendar days, both ends included, at most
/// [`MAX_REPORT_DAYS`] long. Valid by construction.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ReportRange {
    from: Date,
    to: Date,
}

/// Why a report's dates are not acceptable.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum InvalidRange {
    #[error("`{0}` is not a date such as 2026-03-29 (YYYY-MM-DD)")]
    Malformed(String),
    #[error("the range starts ({from}) after it ends ({to})")]
    Reversed { from: Date, to: Date },
    #[error("a report covers at most {MAX_REPORT_DAYS} days; {from} to {to} is {days}")]
    TooLong { from: Date, to: Date, days: i64 },
}

/// Parses `YYYY-MM-DD` exactly (no other ISO 8601 spelling), a real day.
fn parse_date(text: &str) -> Result<Date, InvalidRange> {
    let malformed = || InvalidRange::Malformed(text.chars().take(40).collect());
    let bytes = text.as_bytes();
    if bytes.len() != 10 || bytes[4] != b'-' || bytes[7] != b'-' {
        return Err(malformed());
    }
    let number = |part: &[u8]| -> Option<i16> {
        part.iter().try_fold(0i16, |n, b| {
            b.is_ascii_digit().then(|| n * 10 + i16::from(b - b'0'))
        })
    };
    let (Some(year), Some(month), Some(day)) = (
        number(&bytes[..4]),
        number(&bytes[5..7]),
        number(&bytes[8..]),
    ) else {
        return Err(malformed());
    };
    // Month and day have two digits, so they fit an i8.
    let (Ok(month), Ok(day)) = (i8::try_from(month), i8::try_from(day)) else {
        return Err(malformed());
    };
    Date::new(year, month, day).map_err(|_| malformed())
}

/// A query's value, trimmed; `None` when left out or empty.
fn given(text: Option<&str>) -> Option<&str> {
    text.map(str::trim).filter(|t| !t.is_empty())
}

/// Days from `from` to `to` (negative when `to` is earlier).
fn days_between(from: Date, to: Date) -> i64 {
    // `Date` spans are in days unless asked otherwise; years 0–9999 keep
    // every difference representable.
    to.since(from)
        .map_or(i64::MAX, |span| i64::from(span.get_days()))
}

impl ReportRange {
    /// The days `from` to `to`, both included.
    pub fn new(from: Date, to: Date) -> Result<Self, InvalidRange> {
        if from > to {
            return Err(InvalidRange::Reversed { from, to });
        }
        let days = days_between(from, to).saturating_add(1);
        if days > MAX_REPORT_DAYS {
            return Err(InvalidRange::TooLong { from, to, days });
        }
        Ok(ReportRange { from, to })
    }

    /// The range a request asks for: `to` (default: today on the store's
    /// clock at `now`) and `from` (default: [`DEFAULT_REPORT_DAYS`] ending
    /// on `to`), each `YYYY-MM-DD`; an empty value counts as left out.
    pub fn from_query(
        from: Option<&str>, to: Option<&str>, zone: &StoreZone, now: OffsetDateTime,
    ) -> Result<Self, InvalidRange> {
        let to = match given(to) {
            Some(text) => parse_date(text)?,
            None => zone.local(now).date(),
        };
        let from = match given(from) {
            Some(text) => parse_date(text)?,
            None => to
                .checked_sub(jiff::Span::new().days(DEFAULT_REPORT_DAYS - 1))
                .unwrap_or(to),
        };
        ReportRange::new(from, to)
    }

    /// The first day.
    pub fn from(&self) -> Date {
        self.from
    }

    /// The last day (included).
    pub fn to(&self) -> Date {
        self.to
    }

    /// Every day of the range, in order.
    pub fn days(&self) -> impl Iterator<Item = Date> + use<> {
        let to = self.to;
        std::iter::successors(Some(self.from), move |day| {
            day.tomorrow().ok().filter(|next| *next <= to)
        })
    }

    /// The instants each day starts at on `zone`'s wall clock, and then
    /// the end of the range (the start of the day after `to`): one more
    /// than there are days. A day whose midnight a DST change skips starts
    /// at the first instant after the gap. `None` for dates outside what
    /// instants can express.
    pub fn day_starts(&self, zone: &StoreZone) -> Option<Vec<OffsetDateTime>> {
        let end = self.to.tomorrow().ok()?;
        self.days()
            .chain(std::iter::once(end))
            .map(|day| zone.instant(day, Time::midnight()))
            .collect()
    }

    /// The instants the range covers on `zone`'s wall clock: from the start
    /// of `from` to the start of the day after `to` (excluded).
    pub fn bounds(&self, zone: &StoreZone) -> Option<(OffsetDateTime, OffsetDateTime)> {
        let end = self.to.tomorrow().ok()?;
        Some((
            zone.instant(self.from, Time::midnight())?,
            zone.instant(end, Time::midnight())?,
        ))
    }
}

/// How an order of a report ended, as its workflow classifies its status.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// Neither done nor cancelled yet.
    Open,
    /// In one of the workflow's done states.
    Done,
    /// In the workflow's cancelled state.
    Cancelled,
}

/// An order as a report reads it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReportOrder {
    pub id: OrderId,
    /// The human number, e.g. `R-000123`.
    pub number: String,
    pub placed_at: OffsetDateTime,
    pub total_minor: i64,
    /// The current status.
    pub status: String,
    /// The version of the store's workflow it runs under.
    pub workflow_version: i64,
}

/// One entry of an order's status history, with the order it is of.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReportStep {
    pub order_id: OrderId,
    pub entry: HistoryEntry,
}

/// The sales figures of a day or of a whole range.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SalesFigures {
    /// Orders placed.
    pub orders: u64,
    /// Of those, now in a done state.
    pub completed: u64,
    /// Of those, now cancelled.
    pub cancelled: u64,
    /// The totals of the orders placed and not cancelled, minor units.
    pub revenue_minor: i64,
    /// `revenue_minor` ÷ (`orders` − `cancelled`), rounded half up; 0 when
    /// that is no order.
    pub average_minor: i64,
}

impl SalesFigures {
    /// The figures of these counts, with their average.
    pub fn of_counts(orders: u64, completed: u64, cancelled: u64, revenue_minor: i64) -> Self {
        SalesFigures {
            orders,
            completed,
            cancelled,
            revenue_minor,
            average_minor: average_minor(revenue_minor, orders.saturating_sub(cancelled)),
        }
    }

    fn add(&mut self, total_minor: i64, outcome: Outcome) {
        self.orders += 1;
        match outcome {
            Outcome::Cancelled => self.cancelled += 1,
            Outcome::Done => self.completed += 1,
            Outcome::Open => {}
        }
        if outcome != Outcome::Cancelled {
            self.revenue_minor = self.revenue_minor.saturating_add(total_minor);
        }
        self.average_minor = average_minor(self.revenue_minor, self.orders - self.cancelled);
    }
}

/// One calendar day of a sales report.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SalesDay {
    pub date: Date,
    pub figures: SalesFigures,
}

/// Sales per calendar day of a range (every day listed, days without
/// orders too) and for the whole range.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SalesReport {
    pub days: Vec<SalesDay>,
    pub totals: SalesFigures,
}

/// `revenue` ÷ `count`, rounded half up (x.5 goes up); 0 for no orders.
pub fn average_minor(revenue: i64, count: u64) -> i64 {
    if count == 0 {
        return 0;
    }
    let (revenue, count) = (i128::from(revenue), i128::from(count));
    // ⌊(2r + n) / 2n⌋ = ⌊r/n + ½⌋, for either sign of r.
    let rounded = (2 * revenue + count).div_euclid(2 * count);
    i64::try_from(rounded).unwrap_or(i64::MAX)
}

/// Sales per calendar day of `range` on `zone`'s wall clock, from each
/// order's placing instant, total and outcome; orders placed outside the
/// range are left out.
pub fn sales_report(
    range: &ReportRange, zone: &StoreZone,
    orders: impl IntoIterator<Item = (OffsetDateTime, i64, Outcome)>,
) -> SalesReport {
    let starts = range.day_starts(zone).unwrap_or_default();
    let mut days: Vec<SalesDay> = range
        .days()
        .map(|date| SalesDay {
            date,
            figures: SalesFigures::default(),
        })
        .collect();
    let mut totals = SalesFigures::default();
    for (at, total_minor, outcome) in orders {
        // The day whose start is the last one at or before `at`.
        let Some(day) = starts.partition_point(|start| *start <= at).checked_sub(1) else {
            continue;
        };
        let Some(bucket) = days.get_mut(day) else {
            continue;
        };
        bucket.figures.add(total_minor, outcome);
        totals.add(total_minor, outcome);
    }
    SalesReport { days, totals }
}

/// The days of the week, Monday first, with their short names in reports.
pub const WEEKDAYS: [(Weekday, &str); 7] = [
    (Weekday::Monday, "mon"),
    (Weekday::Tuesday, "tue"),
    (Weekday::Wednesday, "wed"),
    (Weekday::Thursday, "thu"),
    (Weekday::Friday, "fri"),
    (Weekday::Saturday, "sat"),
    (Weekday::Sunday, "sun"),
];

/// Orders placed per weekday and hour on a store's wall clock.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct HoursReport {
    /// `[weekday from Monday][hour 0–23]`.
    counts: [[u64; 24]; 7],
}

/// One cell of an [`HoursReport`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HourCell {
    /// `mon` … `sun`.
    pub weekday: &'static str,
    /// 0–23, on the store's wall clock.
    pub hour: u8,
    pub orders: u64,
}

impl HoursReport {
    /// Every weekday × hour, Monday 0:00 first, Sunday 23:00 last (168 cells).
    pub fn cells(&self) -> impl Iterator<Item = HourCell> + '_ {
        WEEKDAYS
            .iter()
            .enumerate()
            .flat_map(move |(day, (_, name))| {
                (0u8..24).map(move |hour| HourCell {
                    weekday: name,
                    hour,
                    orders: self.counts[day][usize::from(hour)],
                })
            })
    }

    /// The busiest cell's count (0 with no orders).
    pub fn max(&self) -> u64 {
        self.counts.iter().flatten().copied().max().unwrap_or(0)
    }
}

/// Orders per weekday and hour of their placing on `zone`'s wall clock
/// (an hour a DST change repeats counts both times into that hour).
pub fn hours_report(
    zone: &StoreZone, placed: impl IntoIterator<Item = OffsetDateTime>,
) -> HoursReport {
    let mut report = HoursReport::default();
    for at in placed {
        let local = zone.local(at);
        let day = usize::from(
            local
                .date()
                .weekday()
                .to_monday_zero_offset()
                .unsigned_abs(),
        );
        let hour = usize::from(local.time().hour().unsigned_abs());
        if let Some(cell) = report.counts.get_mut(day).and_then(|d| d.get_mut(hour)) {
            *cell += 1;
        }
    }
    report
}

/// How long one finished order took.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Timeline {
    pub order: OrderId,
    /// The time spent in each state before it was done (whole seconds,
    /// every visit of a state added up), states in the order first entered.
    pub spent: Vec<(String, i64)>,
    /// From placing to done, whole seconds.
    pub to_done_seconds: i64,
}

/// The timeline of a finished order from its history (`steps`, oldest
/// first): done is when it entered the done state it stayed in (a
/// correction out of a done state restarts the clock's end). `None` unless
/// its last step is into a done state.
pub fn timeline(
    order: OrderId, steps: &[ReportStep], is_done: impl Fn(&str) -> bool,
) -> Option<Timeline> {
    let placed = steps.first()?;
    if !is_done(&steps.last()?.entry.to) {
        return None;
    }
    // The start of the trailing run of done states.
    let done = steps
        .iter()
        .rposition(|step| !is_done(&step.entry.to))
        .map_or(0, |last_open| last_open + 1);
    let mut spent: Vec<(String, i64)> = Vec::new();
    for pair in steps[..=done].windows(2) {
        let (this, next) = (&pair[0].entry, &pair[1].entry);
        let seconds = (next.at - this.at).whole_seconds();
        match spent.iter_mut().find(|(state, _)| *state == this.to) {
            Some((_, total)) => *total += seconds,
            None => spent.push((this.to.to_string(), seconds)),
        }
    }
    Some(Timeline {
        order,
        spent,
        to_done_seconds: (steps[done].entry.at - placed.entry.at).whole_seconds(),
    })
}

/// The nearest-rank percentile `p` (0–100) of `sorted` (ascending): the
/// smallest value with at least `p` % of the values at or below it.
/// `None` for no values.
pub fn percentile(sorted: &[i64], p: u32) -> Option<i64> {
    if sorted.is_empty() {
        return None;
    }
    let rank = (u64::from(p.min(100)) * sorted.len() as u64).div_ceil(100);
    let index = usize::try_from(rank.max(1) - 1).unwrap_or(0);
    sorted.get(index.min(sorted.len() - 1)).copied()
}

/// How many durations, and their median and 90th percentile (seconds).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Spread {
    pub count: u64,
    /// `None` when `count` is 0.
    pub p50_seconds: Option<i64>,
    /// `None` when `count` is 0.
    pub p90_seconds: Option<i64>,
}

impl Spread {
    /// The spread of `durations` (any order).
    pub fn of(mut durations: Vec<i64>) -> Self {
        durations.sort_unstable();
        Spread {
            count: durations.len() as u64,
            p50_seconds: percentile(&durations, 50),
            p90_seconds: percentile(&durations, 90),
        }
    }
}

/// The time finished orders spent in one state.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StateTimes {
    pub status: String,
    /// One duration per order that was in the state.
    pub spread: Spread,
}

/// Time in each state and from placing to done, over finished orders.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TimesReport {
    /// States any of the orders spent time in: those of `state_order`
    /// first, in its order, then others by name.
    pub states: Vec<StateTimes>,
    pub to_done: Spread,
}

/// Time in each state and to done over `timelines`; states listed in
/// `state_order` (the workflow's) first, then any others by name.
pub fn times_report(timelines: &[Timeline], state_order: &[&str]) -> TimesReport {
    let mut states: Vec<(String, Vec<i64>)> = state_order
        .iter()
        .map(|state| ((*state).to_owned(), Vec::new()))
        .collect();
    for timeline in timelines {
        for (state, seconds) in &timeline.spent {
            match states.iter_mut().find(|(key, _)| key == state) {
                Some((_, durations)) => durations.push(*seconds),
                None => states.push((state.clone(), vec![*seconds])),
            }
        }
    }
    // States of older workflow versions, by name (the per-day rollups
    // list them the same way).
    let known = state_order.len().min(states.len());
    states[known..].sort_by(|(a, _), (b, _)| a.cmp(b));
    TimesReport {
        states: states
            .into_iter()
            .filter(|(_, durations)| !durations.is_empty())
            .map(|(status, durations)| StateTimes {
                status,
                spread: Spread::of(durations),
            })
            .collect(),
        to_done: Spread::of(timelines.iter().map(|t| t.to_done_seconds).collect()),
    }
}

/// The `limit` slowest of `timelines` to done, slowest first (ties: the
/// earlier order first).
pub fn slowest(timelines: &[Timeline], limit: usize) -> Vec<&Timeline> {
    let mut sorted: Vec<&Timeline> = timelines.iter().collect();
    sorted.sort_by(|a, b| {
        b.to_done_seconds
            .cmp(&a.to_done_seconds)
            .then(a.order.cmp(&b.order))
    });
    sorted.truncate(limit);
    sorted
}

/// The entry that cancelled an order (the last one into a cancelled
/// state), with its reason and who; `None` if none did.
pub fn cancellation(
    steps: &[ReportStep], is_cancelled: impl Fn(&str) -> bool,
) -> Option<&HistoryEntry> {
    steps
        .iter()
        .rev()
        .map(|step| &step.entry)
        .find(|entry| is_cancelled(&entry.to))
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::datetime;

    fn zone(name: &str) -> StoreZone {
        StoreZone::parse(name).expect("a known zone")
    }

    fn date(text: &str) -> Date {
        parse_date(text).expect("a date")
    }

    fn range(from: &str, to: &str) -> ReportRange {
        ReportRange::new(date(from), date(to)).expect("a valid range")
    }

    #[test]
    fn dates_are_exactly_year_month_day() {
        assert_eq!(date("2026-03-29").to_string(), "2026-03-29");
        for bad in [
            "2026-3-29",
            "2026-02-30",
            "29.03.2026",
            "20260329",
            "2026-03-29T00:00",
            "",
            "2026-13-01",
            "+026-03-29",
        ] {
            assert!(parse_date(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn ranges_are_ordered_and_at_most_366_days() {
        assert_eq!(range("2026-03-01", "2026-03-01").days().count(), 1);
        assert_eq!(range("2028-01-01", "2028-12-31").days().count(), 366);
        assert!(matches!(
            ReportRange::new(date("2027-01-01"), date("2028-01-02")),
            Err(InvalidRange::TooLong { days: 367, .. })
        ));
        assert!(matches!(
            ReportRange::new(date("2026-03-02"), date("2026-03-01")),
            Err(InvalidRange::Reversed { .. })
        ));
        assert!(matches!(
            ReportRange::new(date("0001-01-01"), date("9999-12-31")),
            Err(InvalidRange::TooLong { .. })
        ));
    }

    #[test]
    fn a_range_left_out_is_the_week_to_today_on_the_stores_clock() {
        // 23:30 UTC on 28 March is already the 29th in Berlin.
        let now = datetime!(2026-03-28 23:30 UTC);
        let berlin =
            ReportRange::from_query(None, Some(""), &zone("Europe/Berlin"), now).expect("defaults");
        assert_eq!(
            (berlin.from(), berlin.to()),
            (date("2026-03-23"), date("2026-03-29"))
        );
        let utc = ReportRange::from_query(Some("2026-03-01"), None, &StoreZone::utc(), now)
            .expect("from given");
        assert_eq!(
            (utc.from(), utc.to()),
            (date("2026-03-01"), date("2026-03-28"))
        );
        assert!(ReportRange::from_query(Some("yesterday"), None, &StoreZone::utc(), now).is_err());
    }

    #[test]
    fn days_follow_the_stores_wall_clock_across_dst() {
        // Berlin springs forward on 29 March 2026 (a 23-hour day) and falls
        // back on 25 October (25 hours).
        let berlin = zone("Europe/Berlin");
        let spring = range("2026-03-28", "2026-03-30");
        let starts = spring.day_starts(&berlin).expect("instants");
        assert_eq!(
            starts,
            vec![
                datetime!(2026-03-27 23:00 UTC),
                datetime!(2026-03-28 23:00 UTC),
                datetime!(2026-03-29 22:00 UTC),
                datetime!(2026-03-30 22:00 UTC),
            ]
        );
        let autumn = range("2026-10-25", "2026-10-25")
            .bounds(&berlin)
            .expect("instants");
        assert_eq!(
            autumn,
            (
                datetime!(2026-10-24 22:00 UTC),
                datetime!(2026-10-25 23:00 UTC)
            )
        );
        let orders = [
            // 00:30 on the 29th in Berlin.
            (datetime!(2026-03-28 23:30 UTC), 1000, Outcome::Done),
            // 23:59 on the 29th (CEST).
            (datetime!(2026-03-29 21:59 UTC), 500, Outcome::Open),
            // 00:30 on the 30th.
            (datetime!(2026-03-29 22:30 UTC), 700, Outcome::Cancelled),
            // Before the range: left out.
            (datetime!(2026-03-27 22:59 UTC), 9999, Outcome::Done),
        ];
        let report = sales_report(&spring, &berlin, orders);
        let per_day: Vec<(String, u64, i64)> = report
            .days
            .iter()
            .map(|d| {
                (
                    d.date.to_string(),
                    d.figures.orders,
                    d.figures.revenue_minor,
                )
            })
            .collect();
        assert_eq!(
            per_day,
            vec![
                ("2026-03-28".to_owned(), 0, 0),
                ("2026-03-29".to_owned(), 2, 1500),
                ("2026-03-30".to_owned(), 1, 0),
            ]
        );
        assert_eq!(
            report.totals,
            SalesFigures {
                orders: 3,
                completed: 1,
                cancelled: 1,
                revenue_minor: 1500,
                average_minor: 750,
            }
        );
        // The 30th had one order, cancelled: nothing to average.
        assert_eq!(report.days[2].figures.average_minor, 0);
    }

    #[test]
    fn averages_round_half_up() {
        assert_eq!(average_minor(1000, 3), 333);
        assert_eq!(average_minor(1001, 2), 501);
        assert_eq!(average_minor(5, 2), 3);
        assert_eq!(average_minor(2000, 3), 667);
        assert_eq!(average_minor(7, 0), 0);
        assert_eq!(average_minor(-5, 2), -2);
    }

    #[test]
    fn percentiles_are_nearest_rank() {
        let ten: Vec<i64> = (1..=10).collect();
        assert_eq!(percentile(&ten, 50), Some(5));
        assert_eq!(percentile(&ten, 90), Some(9));
        assert_eq!(percentile(&ten, 100), Some(10));
        assert_eq!(percentile(&[7], 50), Some(7));
        assert_eq!(percentile(&[7], 90), Some(7));
        assert_eq!(percentile(&[1, 2], 50), Some(1));
        assert_eq!(percentile(&[1, 2], 90), Some(2));
        assert_eq!(percentile(&[1, 2, 3], 0), Some(1));
        assert_eq!(percentile(&[], 50), None);
        assert_eq!(
            Spread::of(vec![300, 60, 120]),
            Spread {
                count: 3,
                p50_seconds: Some(120),
                p90_seconds: Some(300)
            }
        );
    }

    #[test]
    fn hours_follow_the_stores_wall_clock() {
        let berlin = zone("Europe/Berlin");
        let report = hours_report(
            &berlin,
            [
                // Sunday 29 March 03:30 CEST (02:00–03:00 does not exist).
                datetime!(2026-03-29 01:30 UTC),
                // Sunday 25 October 02:30, twice: CEST, then CET.
                datetime!(2026-10-25 00:30 UTC),
                datetime!(2026-10-25 01:30 UTC),
                // Monday 30 March 00:00 CEST.
                datetime!(2026-03-29 22:00 UTC),
            ],
        );
        let count = |weekday: &str, hour: u8| {
            report
                .cells()
                .find(|c| c.weekday == weekday && c.hour == hour)
                .map(|c| c.orders)
        };
        assert_eq!(report.cells().count(), 168);
        assert_eq!(count("sun", 3), Some(1));
        assert_eq!(count("sun", 2), Some(2));
        assert_eq!(count("mon", 0), Some(1));
        assert_eq!(count("sun", 1), Some(0));
        assert_eq!(report.max(), 2);
        assert_eq!(report.cells().map(|c| c.orders).sum::<u64>(), 4);
    }

    fn step(to: &str, at: OffsetDateTime) -> ReportStep {
        ReportStep {
            order_id: OrderId::new(1),
            entry: HistoryEntry {
                from: None,
                to: to.into(),
                actor: crate::Actor {
                    id: crate::UserId::new(7),
                    role: crate::Role::Cashier,
                },
                note: None,
                at,
                correction: false,
                payment: None,
                assignment: None,
            },
        }
    }

    fn done(state: &str) -> bool {
        matches!(state, "delivered" | "completed")
    }

    #[test]
    fn a_timeline_adds_up_each_state_until_done() {
        let steps = [
            step("pending", datetime!(2026-03-01 12:00 UTC)),
            step("confirmed", datetime!(2026-03-01 12:02 UTC)),
            step("preparing", datetime!(2026-03-01 12:05 UTC)),
            // A correction back, then forward again.
            step("confirmed", datetime!(2026-03-01 12:06 UTC)),
            step("preparing", datetime!(2026-03-01 12:07 UTC)),
            step("ready", datetime!(2026-03-01 12:20 UTC)),
            step("delivered", datetime!(2026-03-01 12:30 UTC)),
            // Time in a done state is not time to done.
            step("completed", datetime!(2026-03-01 13:00 UTC)),
        ];
        let timeline = timeline(OrderId::new(1), &steps, done).expect("finished");
        assert_eq!(
            timeline.spent,
            vec![
                ("pending".to_owned(), 120),
                ("confirmed".to_owned(), 180 + 60),
                ("preparing".to_owned(), 60 + 13 * 60),
                ("ready".to_owned(), 600),
            ]
        );
        assert_eq!(timeline.to_done_seconds, 30 * 60);
        assert!(super::timeline(OrderId::new(1), &steps[..5], done).is_none());
        assert!(super::timeline(OrderId::new(1), &[], done).is_none());
    }

    #[test]
    fn times_list_the_workflows_states_first_and_the_slowest_orders() {
        let t = |order: i64, spent: &[(&str, i64)], to_done_seconds: i64| Timeline {
            order: OrderId::new(order),
            spent: spent.iter().map(|(s, n)| ((*s).to_owned(), *n)).collect(),
            to_done_seconds,
        };
        let timelines = [
            t(1, &[("pending", 60), ("ready", 600)], 660),
            t(2, &[("pending", 180), ("legacy", 5)], 185),
            t(3, &[("pending", 120)], 900),
        ];
        let report = times_report(&timelines, &["pending", "confirmed", "ready"]);
        let rows: Vec<(&str, u64, Option<i64>, Option<i64>)> = report
            .states
            .iter()
            .map(|s| {
                (
                    s.status.as_str(),
                    s.spread.count,
                    s.spread.p50_seconds,
                    s.spread.p90_seconds,
                )
            })
            .collect();
        assert_eq!(
            rows,
            vec![
                ("pending", 3, Some(120), Some(180)),
                ("ready", 1, Some(600), Some(600)),
                ("legacy", 1, Some(5), Some(5)),
            ]
        );
        assert_eq!(
            report.to_done,
            Spread {
                count: 3,
                p50_seconds: Some(660),
                p90_seconds: Some(900)
            }
        );
        let slow: Vec<i64> = slowest(&timelines, 2)
            .iter()
            .map(|t| t.order.get())
            .collect();
        assert_eq!(slow, vec![3, 1]);
        assert_eq!(times_report(&[], &["pending"]).to_done, Spread::default());
    }

    #[test]
    fn a_cancellation_is_the_last_step_into_cancelled() {
        let mut cancel = step("cancelled", datetime!(2026-03-01 12:05 UTC));
        cancel.entry.note = Some("Out of dough".to_owned());
        let steps = [step("pending", datetime!(2026-03-01 12:00 UTC)), cancel];
        assert_eq!(
            cancellation(&steps, |s| s == "cancelled").and_then(|s| s.note.as_deref()),
            Some("Out of dough")
        );
        assert!(cancellation(&steps[..1], |s| s == "cancelled").is_none());
    }
}
