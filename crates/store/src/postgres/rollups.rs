//! Per-day report rollups on PostgreSQL: kept in the writer's transaction
//! as orders are placed and change outcome, read by the reports, rebuilt
//! from the orders when missing or after the store's time zone changed.
//! Every write of a store's orders holds the store's row lock, so two
//! instances never update one day's times at once.

use std::collections::{BTreeMap, HashMap};

use ordertrack_domain::report::Outcome;
use ordertrack_domain::rollup::{DayRollup, OrderOutcomes, RollupBuilder, day_of};
use ordertrack_domain::{HistoryEntry, OrderId, StoreId};
use sqlx::Row;
use sqlx::postgres::PgConnection;
use time::OffsetDateTime;

use super::reports::report_rows;
use super::rows::Result;
use crate::codec::{self, history_columns};
use crate::{ReportDays, ReportDaysQuery, RollupRebuild, StoreError};

/// A store's day and what to add to it: counts, and (with `replace_times`)
/// its times from now on.
pub struct DayDelta {
    pub store: StoreId,
    pub day: String,
    pub delta: DayRollup,
    pub replace_times: bool,
}

/// Adds each delta's counts to its store's day (and where `replace_times`,
/// makes `delta.times` its times): one statement for any number of days,
/// each day at most once.
async fn add_to_days(conn: &mut PgConnection, days: &[DayDelta]) -> Result<()> {
    if days.is_empty() {
        return Ok(());
    }
    let ints = |f: fn(&DayRollup) -> i64| -> Vec<i64> { days.iter().map(|d| f(&d.delta)).collect() };
    sqlx::query(
        "WITH d AS (
             SELECT * FROM UNNEST($1::int8[], $2::text[], $3::int8[], $4::int8[], $5::int8[],
                                  $6::int8[], $7::bytea[], $8::bool[])
                 AS d(store_id, day, orders, completed, cancelled, revenue_minor, times, replace)
         )
         INSERT INTO report_days (store_id, day, orders, completed, cancelled, revenue_minor, times)
         SELECT store_id, day, orders, completed, cancelled, revenue_minor, times FROM d
         ON CONFLICT (store_id, day) DO UPDATE SET
             orders = report_days.orders + excluded.orders,
             completed = report_days.completed + excluded.completed,
             cancelled = report_days.cancelled + excluded.cancelled,
             revenue_minor = report_days.revenue_minor + excluded.revenue_minor,
             times = CASE WHEN (SELECT d.replace FROM d
                                WHERE d.store_id = excluded.store_id AND d.day = excluded.day)
                          THEN excluded.times ELSE report_days.times END",
    )
    .bind(days.iter().map(|d| d.store.get()).collect::<Vec<_>>())
    .bind(days.iter().map(|d| d.day.as_str()).collect::<Vec<_>>())
    .bind(ints(|d| d.orders))
    .bind(ints(|d| d.completed))
    .bind(ints(|d| d.cancelled))
    .bind(ints(|d| d.revenue_minor))
    .bind(
        days.iter()
            .map(|d| {
                if d.replace_times {
                    d.delta.times.encode()
                } else {
                    Vec::new()
                }
            })
            .collect::<Vec<_>>(),
    )
    .bind(days.iter().map(|d| d.replace_times).collect::<Vec<_>>())
    .execute(&mut *conn)
    .await?;
    Ok(())
}

/// Newly placed orders, to count on their days.
pub struct Placed<'a> {
    pub store: StoreId,
    pub timezone: &'a str,
    pub at: OffsetDateTime,
    pub total_minor: i64,
}

/// Counts newly placed orders on their days (one statement).
pub async fn orders_placed(conn: &mut PgConnection, placed: &[Placed<'_>]) -> Result<()> {
    let mut days: BTreeMap<(StoreId, String), DayRollup> = BTreeMap::new();
    for order in placed {
        let day = day_of(&codec::zone(order.timezone)?, order.at).to_string();
        let delta = days.entry((order.store, day)).or_default();
        delta.orders += 1;
        delta.revenue_minor = delta.revenue_minor.saturating_add(order.total_minor);
    }
    let days: Vec<DayDelta> = days
        .into_iter()
        .map(|((store, day), delta)| DayDelta {
            store,
            day,
            delta,
            replace_times: false,
        })
        .collect();
    add_to_days(conn, &days).await
}

/// Applies orders' moves between open, done and cancelled to the days they
/// were placed on (their history already has each move's entry; each order
/// at most once): a fixed number of statements whatever their number —
/// the orders, the kept times and the histories of the days and orders
/// that finish or un-finish, then one write of every day.
pub async fn outcomes_changed(
    conn: &mut PgConnection,
    changes: &[(OrderId, &OrderOutcomes)],
) -> Result<()> {
    if changes.is_empty() {
        return Ok(());
    }
    let ids: Vec<i64> = changes.iter().map(|(order, _)| order.get()).collect();
    // Per order: its store, the day it counts on, its total.
    let mut orders: HashMap<i64, (StoreId, String, i64)> = HashMap::with_capacity(ids.len());
    for row in sqlx::query(
        "SELECT o.id, o.store_id, o.created_at, o.total_minor, s.timezone
         FROM orders o JOIN stores s ON s.id = o.store_id WHERE o.id = ANY($1)",
    )
    .bind(&ids)
        .fetch_all(&mut *conn)
        .await?
    {
        let timezone: String = row.try_get("timezone")?;
        let created = codec::from_micros(row.try_get("created_at")?)?;
        orders.insert(
            row.try_get("id")?,
            (
                StoreId::new(row.try_get("store_id")?),
                day_of(&codec::zone(&timezone)?, created).to_string(),
                row.try_get("total_minor")?,
            ),
        );
    }
    let timed = |outcomes: &OrderOutcomes| {
        outcomes.from == Outcome::Done || outcomes.to == Outcome::Done
    };
    let mut days: BTreeMap<(StoreId, String), DayDelta> = BTreeMap::new();
    let mut timed_orders = Vec::new();
    for (order, outcomes) in changes {
        let (store, day, _) = orders
            .get(&order.get())
            .ok_or(StoreError::NotFound("order"))?;
        let entry = days
            .entry((*store, day.clone()))
            .or_insert_with(|| DayDelta {
                store: *store,
                day: day.clone(),
                delta: DayRollup::default(),
                replace_times: false,
            });
        if timed(outcomes) {
            entry.replace_times = true;
            timed_orders.push(order.get());
        }
    }
    let mut histories: HashMap<i64, Vec<HistoryEntry>> = HashMap::new();
    if !timed_orders.is_empty() {
        // The days' kept times, which the timed moves change and replace.
        let (stores, keys): (Vec<i64>, Vec<&str>) = days
            .values()
            .filter(|d| d.replace_times)
            .map(|d| (d.store.get(), d.day.as_str()))
            .unzip();
        let kept = sqlx::query(
            "SELECT r.store_id, r.day, r.times FROM report_days r
             JOIN UNNEST($1::int8[], $2::text[]) AS k(store_id, day)
               ON r.store_id = k.store_id AND r.day = k.day",
        )
        .bind(&stores)
        .bind(&keys)
        .fetch_all(&mut *conn)
        .await?;
        for row in &kept {
            let key = (StoreId::new(row.try_get("store_id")?), row.try_get("day")?);
            if let Some(day) = days.get_mut(&key) {
                let times: Vec<u8> = row.try_get("times")?;
                day.delta.times = codec::decode_times(&times)?;
            }
        }
        for row in sqlx::query(concat!(
            "SELECT order_id, ",
            history_columns!(),
            " FROM status_history WHERE order_id = ANY($1) ORDER BY order_id, id"
        ))
        .bind(&timed_orders)
        .fetch_all(&mut *conn)
        .await?
        {
            histories
                .entry(row.try_get("order_id")?)
                .or_default()
                .push(codec::history_entry(&row)?);
        }
    }
    // In the changes' order, as one change after the other would.
    for (order, outcomes) in changes {
        let (store, day, total) = &orders[&order.get()];
        if let Some(entry) = days.get_mut(&(*store, day.clone())) {
            let history = histories.get(&order.get()).map(Vec::as_slice);
            outcomes.apply(&mut entry.delta, *order, *total, history.unwrap_or_default());
        }
    }
    add_to_days(conn, &days.into_values().collect::<Vec<_>>()).await
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
    let days: Vec<DayDelta> = builder
        .days
        .iter()
        .map(|(day, rollup)| DayDelta {
            store,
            day: day.to_string(),
            delta: rollup.clone(),
            replace_times: true,
        })
        .collect();
    add_to_days(conn, &days).await?;
    sqlx::query(codec::ROLLUP_BUILT_SQL)
        .bind(store.get())
        .execute(&mut *conn)
        .await?;
    Ok(())
}
