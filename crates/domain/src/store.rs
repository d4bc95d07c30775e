//! A store's standing and its hours: whether it is live on the platform,
//! the time zone it keeps, when it is open, and the one decision "may this
//! store take an order at this instant?" ([`ordering_at`]). Pure: the
//! instant is passed in; the time-zone rules are compiled in (jiff's bundled
//! IANA database), so nothing is read from the machine.

use std::fmt;

use jiff::civil::{Date, Time, Weekday};
use jiff::tz::TimeZone;
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use crate::FulfilmentKind;

/// Whether a store is live on the platform.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum StoreStatus {
    /// Listed and taking orders (subject to its settings).
    Active,
    /// Created under `approval` signup: invisible, no orders, until a
    /// platform admin approves it.
    PendingApproval,
}

impl StoreStatus {
    /// The stable name used in APIs and storage.
    pub fn as_str(self) -> &'static str {
        match self {
            StoreStatus::Active => "active",
            StoreStatus::PendingApproval => "pending_approval",
        }
    }

    /// Parses the stored name.
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "active" => Some(StoreStatus::Active),
            "pending_approval" => Some(StoreStatus::PendingApproval),
            _ => None,
        }
    }
}

/// An IANA time zone the platform knows, such as `Europe/Berlin`.
#[derive(Debug, Clone)]
pub struct StoreZone {
    name: String,
    zone: TimeZone,
}

/// The text is not an IANA time zone name.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("`{0}` is not an IANA time zone such as Europe/Berlin")]
pub struct UnknownTimeZone(pub String);

impl StoreZone {
    /// Looks a zone up by its IANA name (`UTC`, `Europe/Berlin`).
    pub fn parse(name: &str) -> Result<Self, UnknownTimeZone> {
        let unknown = || UnknownTimeZone(name.to_owned());
        if name.is_empty() || name.len() > 64 {
            return Err(unknown());
        }
        let zone = TimeZone::get(name).map_err(|_| unknown())?;
        let name = zone.iana_name().unwrap_or(name).to_owned();
        Ok(StoreZone { name, zone })
    }

    /// Coordinated Universal Time.
    pub fn utc() -> Self {
        StoreZone {
            name: "UTC".to_owned(),
            zone: TimeZone::UTC,
        }
    }

    /// The zone's IANA name, as the database spells it.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The wall-clock date, weekday and time at `at` in this zone.
    pub(crate) fn local(&self, at: OffsetDateTime) -> jiff::civil::DateTime {
        let timestamp = jiff::Timestamp::from_second(at.unix_timestamp())
            .unwrap_or(jiff::Timestamp::UNIX_EPOCH);
        timestamp.to_zoned(self.zone.clone()).datetime()
    }

    /// `at` on this zone's wall clock as a receipt prints it:
    /// `Sun 29 Nov 2026, 12:41`.
    pub fn receipt_time(&self, at: OffsetDateTime) -> String {
        self.local(at).strftime("%a %-d %b %Y, %H:%M").to_string()
    }

    /// The time of day at `at` on this zone's wall clock: `12:45`.
    pub fn clock_time(&self, at: OffsetDateTime) -> String {
        self.local(at).strftime("%H:%M").to_string()
    }

    /// The instant a wall-clock time on `date` happens here (a time skipped
    /// by a DST change counts as the moment after the gap).
    pub(crate) fn instant(&self, date: Date, time: Time) -> Option<OffsetDateTime> {
        let zoned = date.to_datetime(time).to_zoned(self.zone.clone()).ok()?;
        OffsetDateTime::from_unix_timestamp(zoned.timestamp().as_second()).ok()
    }
}

impl PartialEq for StoreZone {
    fn eq(&self, other: &Self) -> bool {
        self.name == other.name
    }
}

impl Eq for StoreZone {}

impl fmt::Display for StoreZone {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.name)
    }
}

/// A wall-clock time of day, minute precision, written `HH:MM`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct TimeOfDay {
    minutes: u16,
}

/// The text is not a time of day `HH:MM` (00:00 to 23:59).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("`{0}` is not a time of day such as 09:30")]
pub struct InvalidTimeOfDay(pub String);

impl TimeOfDay {
    /// Parses `HH:MM`, 00:00 to 23:59.
    pub fn parse(text: &str) -> Result<Self, InvalidTimeOfDay> {
        let invalid = || InvalidTimeOfDay(text.to_owned());
        let bytes = text.as_bytes();
        if bytes.len() != 5 || bytes[2] != b':' {
            return Err(invalid());
        }
        let number = |part: &[u8]| -> Option<u16> {
            part.iter().try_fold(0u16, |n, b| {
                b.is_ascii_digit().then(|| n * 10 + u16::from(b - b'0'))
            })
        };
        match (number(&bytes[..2]), number(&bytes[3..])) {
            (Some(hours), Some(minutes)) if hours < 24 && minutes < 60 => Ok(TimeOfDay {
                minutes: hours * 60 + minutes,
            }),
            _ => Err(invalid()),
        }
    }

    /// The time `hours:minutes`, if it is one.
    pub fn new(hours: u8, minutes: u8) -> Option<Self> {
        (hours < 24 && minutes < 60).then(|| TimeOfDay {
            minutes: u16::from(hours) * 60 + u16::from(minutes),
        })
    }

    fn civil(self) -> Time {
        // Both parts are in range by construction.
        Time::constant((self.minutes / 60) as i8, (self.minutes % 60) as i8, 0, 0)
    }

    fn of(time: Time) -> Self {
        TimeOfDay {
            minutes: u16::try_from(time.hour()).unwrap_or(0) * 60
                + u16::try_from(time.minute()).unwrap_or(0),
        }
    }
}

impl fmt::Display for TimeOfDay {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:02}:{:02}", self.minutes / 60, self.minutes % 60)
    }
}

impl Serialize for TimeOfDay {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

/// Described as its text, `HH:MM`, as it is read and written.
impl utoipa::PartialSchema for TimeOfDay {
    fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
        utoipa::openapi::ObjectBuilder::new()
            .schema_type(utoipa::openapi::Type::String)
            .pattern(Some("^([01][0-9]|2[0-3]):[0-5][0-9]$"))
            .examples(["09:30"])
            .into()
    }
}

impl utoipa::ToSchema for TimeOfDay {}

impl<'de> Deserialize<'de> for TimeOfDay {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        TimeOfDay::parse(&text).map_err(serde::de::Error::custom)
    }
}

/// One opening on a weekday. A `close` before `open` runs past midnight
/// into the next day (`18:00`–`02:00`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Opening {
    pub open: TimeOfDay,
    pub close: TimeOfDay,
}

impl Opening {
    fn overnight(&self) -> bool {
        self.close < self.open
    }

    /// Open at `time` on the day it starts.
    fn covers_same_day(&self, time: TimeOfDay) -> bool {
        self.open <= time && (self.overnight() || time < self.close)
    }

    /// Open at `time` on the day after it starts.
    fn covers_next_day(&self, time: TimeOfDay) -> bool {
        self.overnight() && time < self.close
    }
}

/// Most openings on one weekday.
pub const MAX_OPENINGS_PER_DAY: usize = 6;

/// A store's week: for each weekday its openings, in the store's time zone.
/// A weekday left out (or empty) is closed all day.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct OpeningHours {
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub monday: Vec<Opening>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub tuesday: Vec<Opening>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub wednesday: Vec<Opening>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub thursday: Vec<Opening>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub friday: Vec<Opening>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub saturday: Vec<Opening>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub sunday: Vec<Opening>,
}

/// Why a week of opening hours is not acceptable.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum InvalidHours {
    #[error("{0}: an opening must close at another time than it opens")]
    Empty(&'static str),
    #[error("{0}: at most {MAX_OPENINGS_PER_DAY} openings a day")]
    TooMany(&'static str),
}

impl OpeningHours {
    /// The openings of `day`.
    pub fn day(&self, day: Weekday) -> &[Opening] {
        match day {
            Weekday::Monday => &self.monday,
            Weekday::Tuesday => &self.tuesday,
            Weekday::Wednesday => &self.wednesday,
            Weekday::Thursday => &self.thursday,
            Weekday::Friday => &self.friday,
            Weekday::Saturday => &self.saturday,
            Weekday::Sunday => &self.sunday,
        }
    }

    /// Checks every day: openings of some length, a few per day.
    pub fn check(&self) -> Result<(), InvalidHours> {
        for (name, openings) in [
            ("monday", &self.monday),
            ("tuesday", &self.tuesday),
            ("wednesday", &self.wednesday),
            ("thursday", &self.thursday),
            ("friday", &self.friday),
            ("saturday", &self.saturday),
            ("sunday", &self.sunday),
        ] {
            if openings.len() > MAX_OPENINGS_PER_DAY {
                return Err(InvalidHours::TooMany(name));
            }
            if openings.iter().any(|o| o.open == o.close) {
                return Err(InvalidHours::Empty(name));
            }
        }
        Ok(())
    }

    /// Open at the wall-clock `time` of `date`: an opening of that day
    /// covers it, or one of the day before runs past midnight into it.
    fn open_at(&self, date: Date, time: TimeOfDay) -> bool {
        self.day(date.weekday())
            .iter()
            .any(|o| o.covers_same_day(time))
            || date.yesterday().is_ok_and(|d| {
                self.day(d.weekday())
                    .iter()
                    .any(|o| o.covers_next_day(time))
            })
    }

    /// The first opening that starts after `at` (within a week).
    fn next_opening(&self, zone: &StoreZone, at: OffsetDateTime) -> Option<Reopening> {
        let today = zone.local(at).date();
        (0..=7i64)
            .filter_map(|days| today.checked_add(jiff::Span::new().days(days)).ok())
            .flat_map(|date| {
                self.day(date.weekday())
                    .iter()
                    .filter_map(move |o| Some((date, o.open, zone.instant(date, o.open.civil())?)))
            })
            .filter(|(_, _, instant)| *instant > at)
            .min_by_key(|(_, _, instant)| *instant)
            .map(|(date, _, instant)| {
                let local = zone.local(instant);
                Reopening {
                    at: instant,
                    local_time: TimeOfDay::of(local.time()),
                    weekday: weekday_name(local.date().weekday()),
                    same_day: date == today,
                }
            })
    }
}

fn weekday_name(day: Weekday) -> &'static str {
    match day {
        Weekday::Monday => "Monday",
        Weekday::Tuesday => "Tuesday",
        Weekday::Wednesday => "Wednesday",
        Weekday::Thursday => "Thursday",
        Weekday::Friday => "Friday",
        Weekday::Saturday => "Saturday",
        Weekday::Sunday => "Sunday",
    }
}

/// When a closed store opens next.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reopening {
    /// The instant it opens.
    pub at: OffsetDateTime,
    /// The wall-clock time it opens, in the store's zone.
    pub local_time: TimeOfDay,
    /// The weekday it opens, e.g. `Monday`.
    pub weekday: &'static str,
    /// It opens later on the same (local) day.
    pub same_day: bool,
}

impl fmt::Display for Reopening {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.same_day {
            write!(f, "back at {}", self.local_time)
        } else {
            write!(f, "back {} at {}", self.weekday, self.local_time)
        }
    }
}

/// What a store offers and when: the part of its settings that decides
/// whether it takes an order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoreHours<'a> {
    pub status: StoreStatus,
    pub accepting_orders: bool,
    pub zone: &'a StoreZone,
    /// `None`: open around the clock.
    pub opening_hours: Option<&'a OpeningHours>,
}

/// May the store take orders at an instant?
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Intake {
    /// Yes.
    Open,
    /// Not live on the platform yet.
    NotApproved,
    /// Its staff paused new orders.
    Paused,
    /// Outside its opening hours; `None` when it has none in the next week.
    Closed(Option<Reopening>),
}

impl Intake {
    /// Whether orders are taken.
    pub fn is_open(&self) -> bool {
        matches!(self, Intake::Open)
    }
}

impl fmt::Display for Intake {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Intake::Open => f.write_str("Taking orders"),
            Intake::NotApproved => f.write_str("Not open yet"),
            Intake::Paused => f.write_str("Not taking orders right now"),
            Intake::Closed(Some(reopening)) => {
                write!(f, "Not taking orders right now, {reopening}")
            }
            Intake::Closed(None) => f.write_str("Not taking orders right now"),
        }
    }
}

/// Whether a store takes orders at `at`: live, not paused, and inside its
/// opening hours read on the wall clock of its zone (so a DST change moves
/// the instants, never the hours).
pub fn ordering_at(store: &StoreHours<'_>, at: OffsetDateTime) -> Intake {
    if store.status != StoreStatus::Active {
        return Intake::NotApproved;
    }
    if !store.accepting_orders {
        return Intake::Paused;
    }
    let Some(hours) = store.opening_hours else {
        return Intake::Open;
    };
    let local = store.zone.local(at);
    if hours.open_at(local.date(), TimeOfDay::of(local.time())) {
        Intake::Open
    } else {
        Intake::Closed(hours.next_opening(store.zone, at))
    }
}

/// The fulfilment kinds a store offers: a non-empty set of pickup and
/// delivery, in that order.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Fulfilments(Vec<FulfilmentKind>);

/// A store must offer pickup, delivery or both.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("a store offers pickup, delivery or both")]
pub struct NoFulfilment;

impl Fulfilments {
    /// The set of `kinds` (repeats ignored); empty is refused.
    pub fn new(kinds: &[FulfilmentKind]) -> Result<Self, NoFulfilment> {
        let set: Vec<FulfilmentKind> = [FulfilmentKind::Pickup, FulfilmentKind::Delivery]
            .into_iter()
            .filter(|kind| kinds.contains(kind))
            .collect();
        if set.is_empty() {
            Err(NoFulfilment)
        } else {
            Ok(Fulfilments(set))
        }
    }

    /// Pickup and delivery.
    pub fn both() -> Self {
        Fulfilments(vec![FulfilmentKind::Pickup, FulfilmentKind::Delivery])
    }

    /// Whether `kind` is offered.
    pub fn offers(&self, kind: FulfilmentKind) -> bool {
        self.0.contains(&kind)
    }

    /// The kinds offered.
    pub fn kinds(&self) -> &[FulfilmentKind] {
        &self.0
    }

    /// Stored form: `pickup,delivery`.
    pub fn to_stored(&self) -> String {
        self.0
            .iter()
            .map(|k| k.as_str())
            .collect::<Vec<_>>()
            .join(",")
    }

    /// Reads the stored form; unknown parts are ignored, and nothing
    /// readable means both.
    pub fn from_stored(text: &str) -> Self {
        let kinds: Vec<FulfilmentKind> =
            text.split(',').filter_map(FulfilmentKind::parse).collect();
        Fulfilments::new(&kinds).unwrap_or_else(|_| Fulfilments::both())
    }
}

#[cfg(test)]
mod tests {
    use time::macros::datetime;

    use super::*;

    #[test]
    fn receipts_print_the_store_s_wall_clock() {
        let berlin = StoreZone::parse("Europe/Berlin").expect("a zone");
        // 11:41 UTC is 12:41 in Berlin in winter (CET, UTC+1).
        let at = datetime!(2026-11-29 11:41:30 UTC);
        assert_eq!(berlin.receipt_time(at), "Sun 29 Nov 2026, 12:41");
        assert_eq!(berlin.clock_time(at), "12:41");
        let summer = datetime!(2026-07-05 08:05 UTC);
        assert_eq!(berlin.receipt_time(summer), "Sun 5 Jul 2026, 10:05");
        assert_eq!(StoreZone::utc().clock_time(summer), "08:05");
    }

    fn opening(open: &str, close: &str) -> Opening {
        Opening {
            open: TimeOfDay::parse(open).expect("a time"),
            close: TimeOfDay::parse(close).expect("a time"),
        }
    }

    fn berlin() -> StoreZone {
        StoreZone::parse("Europe/Berlin").expect("a zone")
    }

    fn decide(hours: &OpeningHours, zone: &StoreZone, instant: OffsetDateTime) -> Intake {
        ordering_at(
            &StoreHours {
                status: StoreStatus::Active,
                accepting_orders: true,
                zone,
                opening_hours: Some(hours),
            },
            instant,
        )
    }

    #[test]
    fn times_of_day_are_hh_mm() {
        assert_eq!(
            TimeOfDay::parse("09:05").map(|t| t.to_string()),
            Ok("09:05".into())
        );
        for bad in [
            "9:05", "24:00", "12:60", "12-00", "ab:cd", "", "12:000", "+1:00",
        ] {
            assert!(TimeOfDay::parse(bad).is_err(), "{bad}");
        }
        assert_eq!(
            TimeOfDay::new(23, 59).map(|t| t.to_string()),
            Some("23:59".into())
        );
        assert_eq!(TimeOfDay::new(24, 0), None);
    }

    #[test]
    fn zones_are_iana_names() {
        assert_eq!(berlin().name(), "Europe/Berlin");
        assert!(StoreZone::parse("UTC").is_ok());
        for bad in ["Mars/Olympus", "", "CEST+2", "../../etc/passwd"] {
            assert!(StoreZone::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn an_evening_opening_runs_past_midnight_into_the_next_day() {
        // Friday 18:00 – Saturday 02:00, Berlin (CET, +01:00 in January).
        let hours = OpeningHours {
            friday: vec![opening("18:00", "02:00")],
            ..OpeningHours::default()
        };
        let zone = berlin();
        // 2026-01-09 is a Friday.
        assert!(decide(&hours, &zone, datetime!(2026-01-09 16:59 UTC)) != Intake::Open);
        assert_eq!(
            decide(&hours, &zone, datetime!(2026-01-09 17:00 UTC)),
            Intake::Open
        );
        assert_eq!(
            decide(&hours, &zone, datetime!(2026-01-09 22:59 UTC)),
            Intake::Open
        );
        // Saturday 00:30 and 01:59 local.
        assert_eq!(
            decide(&hours, &zone, datetime!(2026-01-09 23:30 UTC)),
            Intake::Open
        );
        assert_eq!(
            decide(&hours, &zone, datetime!(2026-01-10 00:59 UTC)),
            Intake::Open
        );
        // Saturday 02:00 local: closed until next Friday 18:00.
        match decide(&hours, &zone, datetime!(2026-01-10 01:00 UTC)) {
            Intake::Closed(Some(reopening)) => {
                assert_eq!(reopening.at, datetime!(2026-01-16 17:00 UTC));
                assert_eq!(reopening.to_string(), "back Friday at 18:00");
            }
            other => panic!("{other:?}"),
        }
        // Thursday night is not Friday night.
        assert!(!decide(&hours, &zone, datetime!(2026-01-08 23:30 UTC)).is_open());
    }

    #[test]
    fn hours_follow_the_wall_clock_across_the_spring_dst_change() {
        // Sunday 2026-03-29: Berlin moves from +01:00 to +02:00 at 02:00.
        let hours = OpeningHours {
            sunday: vec![opening("09:00", "17:00")],
            saturday: vec![opening("22:00", "04:00")],
            ..OpeningHours::default()
        };
        let zone = berlin();
        // 09:30 CEST is 07:30 UTC (at +01:00 it would still be 08:30: closed).
        assert_eq!(
            decide(&hours, &zone, datetime!(2026-03-29 07:30 UTC)),
            Intake::Open
        );
        assert!(!decide(&hours, &zone, datetime!(2026-03-29 06:59 UTC)).is_open());
        // 16:59 CEST open, 17:00 CEST (15:00 UTC) closed.
        assert_eq!(
            decide(&hours, &zone, datetime!(2026-03-29 14:59 UTC)),
            Intake::Open
        );
        assert!(!decide(&hours, &zone, datetime!(2026-03-29 15:00 UTC)).is_open());
        // The night from Saturday closes at 04:00 CEST = 02:00 UTC, an hour
        // earlier in UTC than the night before the change would have.
        assert_eq!(
            decide(&hours, &zone, datetime!(2026-03-29 01:59 UTC)),
            Intake::Open
        );
        match decide(&hours, &zone, datetime!(2026-03-29 02:00 UTC)) {
            Intake::Closed(Some(reopening)) => {
                assert_eq!(reopening.at, datetime!(2026-03-29 07:00 UTC));
                assert_eq!(reopening.to_string(), "back at 09:00");
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn hours_follow_the_wall_clock_across_the_autumn_dst_change() {
        // Sunday 2026-10-25: Berlin moves from +02:00 back to +01:00 at 03:00.
        let hours = OpeningHours {
            sunday: vec![opening("09:00", "17:00")],
            ..OpeningHours::default()
        };
        let zone = berlin();
        // 09:00 CET is 08:00 UTC (at +02:00 it would be 07:00).
        assert!(!decide(&hours, &zone, datetime!(2026-10-25 07:30 UTC)).is_open());
        match decide(&hours, &zone, datetime!(2026-10-25 07:30 UTC)) {
            Intake::Closed(Some(reopening)) => {
                assert_eq!(reopening.at, datetime!(2026-10-25 08:00 UTC));
                assert_eq!(reopening.to_string(), "back at 09:00");
            }
            other => panic!("{other:?}"),
        }
        assert_eq!(
            decide(&hours, &zone, datetime!(2026-10-25 08:00 UTC)),
            Intake::Open
        );
        // 16:30 CET open, 17:00 CET (16:00 UTC) closed.
        assert_eq!(
            decide(&hours, &zone, datetime!(2026-10-25 15:30 UTC)),
            Intake::Open
        );
        assert!(!decide(&hours, &zone, datetime!(2026-10-25 16:00 UTC)).is_open());
        // The Sunday before, still summer time: 09:00 CEST is 07:00 UTC.
        assert_eq!(
            decide(&hours, &zone, datetime!(2026-10-18 07:30 UTC)),
            Intake::Open
        );
    }

    #[test]
    fn a_paused_or_unapproved_store_takes_no_orders_whatever_its_hours() {
        let zone = StoreZone::utc();
        let instant = datetime!(2026-01-09 12:00 UTC);
        let mut store = StoreHours {
            status: StoreStatus::Active,
            accepting_orders: true,
            zone: &zone,
            opening_hours: None,
        };
        assert_eq!(ordering_at(&store, instant), Intake::Open);
        store.accepting_orders = false;
        assert_eq!(ordering_at(&store, instant), Intake::Paused);
        assert_eq!(
            ordering_at(&store, instant).to_string(),
            "Not taking orders right now"
        );
        store.accepting_orders = true;
        store.status = StoreStatus::PendingApproval;
        assert_eq!(ordering_at(&store, instant), Intake::NotApproved);
    }

    #[test]
    fn empty_or_crowded_days_are_refused() {
        let mut hours = OpeningHours {
            monday: vec![opening("10:00", "10:00")],
            ..OpeningHours::default()
        };
        assert_eq!(hours.check(), Err(InvalidHours::Empty("monday")));
        hours.monday = vec![opening("10:00", "11:00"); MAX_OPENINGS_PER_DAY + 1];
        assert_eq!(hours.check(), Err(InvalidHours::TooMany("monday")));
        hours.monday.truncate(2);
        assert_eq!(hours.check(), Ok(()));
    }

    #[test]
    fn opening_hours_read_and_write_as_json_per_weekday() {
        let json = r#"{"monday":[{"open":"09:00","close":"17:00"}],"friday":[{"open":"18:00","close":"02:00"}]}"#;
        let hours: OpeningHours = serde_json::from_str(json).expect("hours");
        assert_eq!(hours.friday, vec![opening("18:00", "02:00")]);
        assert_eq!(serde_json::to_string(&hours).expect("json"), json);
        assert!(serde_json::from_str::<OpeningHours>(r#"{"someday":[]}"#).is_err());
        assert!(
            serde_json::from_str::<OpeningHours>(r#"{"monday":[{"open":"9","close":"10:00"}]}"#)
                .is_err()
        );
    }

    #[test]
    fn fulfilments_are_a_non_empty_set() {
        assert!(Fulfilments::new(&[]).is_err());
        let both = Fulfilments::new(&[
            FulfilmentKind::Delivery,
            FulfilmentKind::Pickup,
            FulfilmentKind::Pickup,
        ])
        .expect("a set");
        assert_eq!(both, Fulfilments::both());
        assert_eq!(both.to_stored(), "pickup,delivery");
        let pickup = Fulfilments::from_stored("pickup");
        assert!(pickup.offers(FulfilmentKind::Pickup) && !pickup.offers(FulfilmentKind::Delivery));
        assert_eq!(Fulfilments::from_stored(""), Fulfilments::both());
    }
}
