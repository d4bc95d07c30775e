//! Per-day report rollups on PostgreSQL: kept in the writer's transaction
//! as orders are placed and change outcome, read by the reports, rebuilt
//! from the orders when missing or after the store's time zone changed.
//! Every write of a store's orders holds the store's row lock, so two
//! instances never update one day's times at once.

use std::collections::HashMap;

use ordertrack_domain::report::Outcome;
use ordertrack_domain::rollup::{DayRollup, OrderOutcomes, RollupBuilder, day_of};
use ordertrack_domain::{OrderId, StoreId};
use sqlx::Row;
use sqlx::postgres::PgConnection;
use time::OffsetDateTime;

use super::orders::history;
use super::reports::report_rows;
use super::rows::Result;
use crate::codec;
use crate::{ReportDays, ReportDaysQuery, RollupRebuild, StoreError};

/// Adds `delta`'s counts to the store's day (and with `replace_times`,
/// makes `delta.times` its times).
async fn add_to_day(
    conn: &mut PgConnection,
    store: StoreId,
    day: &str,
    delta: &DayRollup,
    replace_times: bool,
) -> Result<()> {
    sqlx::query(codec::DAY_UPSERT_SQL)
        .bind(store.get())
        .bind(day)
        .bind(delta.orders)
        .bind(delta.completed)
        .bind(delta.cancelled)
        .bind(delta.revenue_minor)
        .bind(if replace_times {
            delta.times.encode()
        } else {
            Vec::new()
        })
        .bind(replace_times)
        .execute(&mut *conn)
        .await?;
    Ok(())
}

/// Counts a newly placed order on its day.
pub async fn order_placed(
    conn: &mut PgConnection,
    store: StoreId,
    timezone: &str,
    at: OffsetDateTime,
    total_minor: i64,
) -> Result<()> {
    let day = day_of(&codec::zone(timezone)?, at).to_string();
    let delta = DayRollup {
        orders: 1,
        revenue_minor: total_minor,
        ..DayRollup::default()
    };
    add_to_day(conn, store, &day, &delta, false).await
}

/// Applies an order's move between open, done and cancelled to the day it
/// was placed on (its history already has the move's entry).
pub async fn outcome_changed(
    conn: &mut PgConnection,
    order: OrderId,
    outcomes: &OrderOutcomes,
) -> Result<()> {
    let row = sqlx::query(codec::ROLLUP_ORDER_SQL)
        .bind(order.get())
        .fetch_one(&mut *conn)
        .await?;
    let store = StoreId::new(row.try_get("store_id")?);
    let total: i64 = row.try_get("total_minor")?;
    let timezone: String = row.try_get("timezone")?;
    let created = codec::from_micros(row.try_get("created_at")?)?;
    let day = day_of(&codec::zone(&timezone)?, created).to_string();
    let timed = outcomes.from == Outcome::Done || outcomes.to == Outcome::Done;
    let mut delta = DayRollup::default();
    let mut entries = Vec::new();
    if timed {
        let kept: Option<Vec<u8>> = sqlx::query_scalar(codec::DAY_TIMES_SQL)
            .bind(store.get())
            .bind(&day)
            .fetch_optional(&mut *conn)
            .await?;
        delta.times = codec::decode_times(kept.as_deref().unwrap_or_default())?;
        entries = history(conn, order).await?;
    }
    outcomes.apply(&mut delta, order, total, &entries);
    add_to_day(conn, store, &day, &delta, timed).await
}

pub async fn report_days(conn: &mut PgConnection, query: &ReportDaysQuery) -> Result<ReportDays> {
    let built_in: Option<String> = sqlx::query_scalar(codec::ROLLUP_ZONE_SQL)
        .bind(query.store.get())
        .fetch_optional(&mut *conn)
        .await?;
    let rows = sqlx::query(codec::report_days_sql(query.with_times))
        .bind(query.store.get())
        .bind(&query.from)
        .bind(&query.to)
        .fetch_all(&mut *conn)
        .await?;
    let mut days = Vec::with_capacity(rows.len());
    for row in &rows {
        let times: Option<Vec<u8>> = if query.with_times {
            row.try_get("times")?
        } else {
            None
        };
        days.push((
            row.try_get("day")?,
            codec::day_rollup(row, times.as_deref())?,
        ));
    }
    Ok(ReportDays { built_in, days })
}

pub async fn rebuild_report_days(conn: &mut PgConnection, rebuild: &RollupRebuild) -> Result<()> {
    let store = rebuild.store;
    let timezone: String = sqlx::query_scalar("SELECT timezone FROM stores WHERE id = $1")
        .bind(store.get())
        .fetch_optional(&mut *conn)
        .await?
        .ok_or(StoreError::NotFound("store"))?;
    let zone = codec::zone(&timezone)?;
    let rules: HashMap<_, _> = rebuild.rules.iter().cloned().collect();
    sqlx::query("DELETE FROM report_days WHERE store_id = $1")
        .bind(store.get())
        .execute(&mut *conn)
        .await?;
    let span = sqlx::query(codec::ORDER_SPAN_SQL)
        .bind(store.get())
        .fetch_one(&mut *conn)
        .await?;
    let (first, last): (Option<i64>, Option<i64>) = (span.try_get("first")?, span.try_get("last")?);
    let mut builder = RollupBuilder::default();
    for query in codec::rebuild_queries(store, first, last)? {
        let rows = report_rows(conn, query).await?;
        codec::rebuild_chunk(&mut builder, &zone, &rules, &rows);
    }
    for (day, rollup) in &builder.days {
        add_to_day(conn, store, &day.to_string(), rollup, true).await?;
    }
    sqlx::query(codec::ROLLUP_BUILT_SQL)
        .bind(store.get())
        .execute(&mut *conn)
        .await?;
    Ok(())
}
