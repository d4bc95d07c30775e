//! Per-day report rollups on SQLite: kept in the writer's transaction as
//! orders are placed and change outcome, read by the reports, rebuilt from
//! the orders when missing or after the store's time zone changed.

use std::collections::HashMap;

use ordertrack_domain::rollup::{DayRollup, OrderOutcomes, RollupBuilder, day_of};
use ordertrack_domain::report::Outcome;
use ordertrack_domain::{OrderId, StoreId};
use rusqlite::{Connection, OptionalExtension, params};
use time::OffsetDateTime;

use super::orders::history;
use super::reports::report_rows;
use super::rows::all;
use crate::codec;
use crate::{ReportDays, ReportDaysQuery, RollupRebuild, StoreError};

/// Adds `delta`'s counts to the store's day (and with `replace_times`,
/// makes `delta.times` its times).
fn add_to_day(
    conn: &Connection,
    store: StoreId,
    day: &str,
    delta: &DayRollup,
    replace_times: bool,
) -> Result<(), StoreError> {
    conn.prepare_cached(codec::DAY_UPSERT_SQL)?.execute(params![
        store.get(),
        day,
        delta.orders,
        delta.completed,
        delta.cancelled,
        delta.revenue_minor,
        if replace_times {
            delta.times.encode()
        } else {
            Vec::new()
        },
        replace_times
    ])?;
    Ok(())
}

/// Counts a newly placed order on its day.
pub fn order_placed(
    conn: &Connection,
    store: StoreId,
    timezone: &str,
    at: OffsetDateTime,
    total_minor: i64,
) -> Result<(), StoreError> {
    let day = day_of(&codec::zone(timezone)?, at).to_string();
    let delta = DayRollup {
        orders: 1,
        revenue_minor: total_minor,
        ..DayRollup::default()
    };
    add_to_day(conn, store, &day, &delta, false)
}

/// Applies an order's move between open, done and cancelled to the day it
/// was placed on (its history already has the move's entry).
pub fn outcome_changed(
    conn: &Connection,
    order: OrderId,
    outcomes: &OrderOutcomes,
) -> Result<(), StoreError> {
    let (store, created, total, timezone): (i64, i64, i64, String) = conn
        .prepare_cached(codec::ROLLUP_ORDER_SQL)?
        .query_row([order.get()], |row| {
            Ok((row.get(0)?, row.get(1)?, row.get(2)?, row.get(3)?))
        })?;
    let store = StoreId::new(store);
    let day = day_of(&codec::zone(&timezone)?, codec::from_micros(created)?).to_string();
    let timed = outcomes.from == Outcome::Done || outcomes.to == Outcome::Done;
    let mut delta = DayRollup::default();
    let mut entries = Vec::new();
    if timed {
        let kept: Option<Vec<u8>> = conn
            .prepare_cached(codec::DAY_TIMES_SQL)?
            .query_row(params![store.get(), day], |row| row.get(0))
            .optional()?;
        delta.times = codec::decode_times(kept.as_deref().unwrap_or_default())?;
        entries = history(conn, order)?;
    }
    outcomes.apply(&mut delta, order, total, &entries);
    add_to_day(conn, store, &day, &delta, timed)
}

pub fn report_days(conn: &Connection, query: &ReportDaysQuery) -> Result<ReportDays, StoreError> {
    let built_in: Option<String> = conn
        .prepare_cached(codec::ROLLUP_ZONE_SQL)?
        .query_row([query.store.get()], |row| row.get(0))
        .optional()?;
    let with_times = query.with_times;
    let days = all(
        conn,
        codec::report_days_sql(with_times),
        params![query.store.get(), query.from, query.to],
        |row| {
            let times: Option<Vec<u8>> = if with_times { row.get("times")? } else { None };
            Ok((row.get("day")?, codec::day_rollup(row, times.as_deref())?))
        },
    )?;
    Ok(ReportDays { built_in, days })
}

pub fn rebuild_report_days(conn: &Connection, rebuild: &RollupRebuild) -> Result<(), StoreError> {
    let store = rebuild.store;
    let timezone: String = conn
        .prepare_cached("SELECT timezone FROM stores WHERE id = $1")?
        .query_row([store.get()], |row| row.get(0))
        .optional()?
        .ok_or(StoreError::NotFound("store"))?;
    let zone = codec::zone(&timezone)?;
    let rules: HashMap<_, _> = rebuild.rules.iter().cloned().collect();
    conn.prepare_cached("DELETE FROM report_days WHERE store_id = $1")?
        .execute([store.get()])?;
    let (first, last): (Option<i64>, Option<i64>) = conn
        .prepare_cached(codec::ORDER_SPAN_SQL)?
        .query_row([store.get()], |row| Ok((row.get(0)?, row.get(1)?)))?;
    let mut builder = RollupBuilder::default();
    for query in codec::rebuild_queries(store, first, last)? {
        let rows = report_rows(conn, query)?;
        codec::rebuild_chunk(&mut builder, &zone, &rules, &rows);
    }
    for (day, rollup) in &builder.days {
        add_to_day(conn, store, &day.to_string(), rollup, true)?;
    }
    conn.prepare_cached(codec::ROLLUP_BUILT_SQL)?
        .execute([store.get()])?;
    Ok(())
}
