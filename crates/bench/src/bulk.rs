//! Bulk-loads orders straight into the SQLite file (server stopped, schema
//! migrated), mirroring what the server writes: `orders` (with `status_at`)
//! and `order_items` rows (what order lists read), each order's
//! `status_history` along the restaurant workflow up to its status (what
//! the times report reads), the store's kept ETA durations (`eta_samples`,
//! as the server keeps them: 200 per status), the store's order counter,
//! and 999 extra customers. One order every [`ORDER_SPACING_S`] seconds up
//! to now: 1,000,000 orders span 347 days. No `events` rows: neither lists
//! nor reports read them.

use std::path::Path;
use std::time::Instant;

use anyhow::Context;
use rusqlite::{Connection, params};
use serde::Serialize;

/// Extra customers besides alice; alice gets every tenth order.
pub const EXTRA_CUSTOMERS: usize = 999;
const BATCH: usize = 50_000;

#[derive(Debug, Serialize)]
pub struct BulkStats {
    pub orders: usize,
    pub items: usize,
    pub alice_orders: usize,
    pub confirmed_orders: usize,
    pub seconds: f64,
    pub db_bytes: u64,
}

/// Status of the i-th bulk order: mostly completed, 2% each of a few live states.
pub fn bulk_status(i: usize) -> &'static str {
    match i % 50 {
        0 => "confirmed",
        1 => "pending",
        2 => "cooking",
        3 => "cancelled",
        _ => "completed",
    }
}

/// Seconds between two bulk orders' placing (a busy store, day and night).
pub const ORDER_SPACING_S: i64 = 30;

/// The statuses the i-th bulk order entered, each with the seconds after
/// its placing: the restaurant workflow's path up to [`bulk_status`], the
/// time in each state varying a little with `i % 50` (so the pattern, like
/// the status, repeats every 50 orders).
pub fn bulk_steps(i: usize) -> Vec<(&'static str, i64)> {
    let path: &[&str] = match bulk_status(i) {
        "pending" => &["pending"],
        "confirmed" => &["pending", "confirmed"],
        "cooking" => &["pending", "confirmed", "preparing", "cooking"],
        "cancelled" => &["pending", "cancelled"],
        _ => &[
            "pending",
            "confirmed",
            "preparing",
            "cooking",
            "ready",
            "completed",
        ],
    };
    // Seconds in pending, confirmed, preparing, cooking, ready.
    let jitter = ((i % 50) % 7) as i64 * 20;
    let stays = [60 + jitter, 120, 300 + jitter, 600 + 2 * jitter, 420];
    let mut at = 0;
    path.iter()
        .enumerate()
        .map(|(k, state)| {
            if k > 0 {
                at += stays[k - 1];
            }
            (*state, at)
        })
        .collect()
}

/// The store's kept ETA durations as the server keeps them: for each of
/// the last [`ETA_SAMPLES`] completed bulk orders of `n`, seconds from
/// entering each status to done.
pub fn eta_samples(n: usize) -> Vec<(&'static str, i64)> {
    (0..n)
        .rev()
        .filter(|&i| bulk_status(i) == "completed")
        .take(ETA_SAMPLES)
        .flat_map(|i| {
            let steps = bulk_steps(i);
            let done = steps.last().map_or(0, |&(_, at)| at);
            steps
                .into_iter()
                .filter(|&(state, _)| state != "completed")
                .map(move |(state, at)| (state, done - at))
        })
        .collect()
}

/// Durations kept per status (the server's `WINDOW_SAMPLES`).
pub const ETA_SAMPLES: usize = 200;

/// Whether the i-th bulk order is alice's.
pub fn is_alice(i: usize) -> bool {
    i.is_multiple_of(10)
}

pub fn load(db: &Path, store_slug: &str, n: usize) -> anyhow::Result<BulkStats> {
    let started = Instant::now();
    let mut conn = Connection::open(db).with_context(|| format!("opening {}", db.display()))?;
    conn.pragma_update(None, "synchronous", "OFF")?;
    conn.pragma_update(None, "cache_size", -262_144)?;
    conn.pragma_update(None, "foreign_keys", "ON")?;

    let (store_id, prefix, last_seq, currency): (i64, String, i64, String) = conn
        .query_row(
            "SELECT id, order_prefix, last_order_seq, currency FROM stores WHERE slug = ?1",
            [store_slug],
            |row| Ok((row.get(0)?, row.get(1)?, row.get(2)?, row.get(3)?)),
        )
        .context("the demo store is missing")?;
    let products: Vec<(i64, String, i64, String)> = conn
        .prepare(
            "SELECT id, name, price_minor, station FROM products WHERE store_id = ?1 ORDER BY id",
        )?
        .query_map([store_id], |row| {
            Ok((row.get(0)?, row.get(1)?, row.get(2)?, row.get(3)?))
        })?
        .collect::<Result<_, _>>()?;
    anyhow::ensure!(!products.is_empty(), "the demo store has no products");
    let (alice, hash): (i64, String) = conn.query_row(
        "SELECT id, password_hash FROM users WHERE email = 'alice@demo.test'",
        [],
        |row| Ok((row.get(0)?, row.get(1)?)),
    )?;
    let cashier: i64 = conn.query_row(
        "SELECT id FROM users WHERE email = 'cashier@demo.test'",
        [],
        |row| row.get(0),
    )?;
    let now_us = (time::OffsetDateTime::now_utc().unix_timestamp_nanos() / 1000) as i64;

    let mut customers = Vec::with_capacity(EXTRA_CUSTOMERS);
    {
        let tx = conn.transaction()?;
        {
            let mut insert = tx.prepare(
                "INSERT OR IGNORE INTO users (email, name, password_hash, is_admin, created_at)
                 VALUES (?1, ?2, ?3, 0, ?4)",
            )?;
            let mut select = tx.prepare("SELECT id FROM users WHERE email = ?1")?;
            for c in 0..EXTRA_CUSTOMERS {
                let email = format!("bulk{c}@bench.test");
                insert.execute(params![email, format!("Bulk Customer {c}"), hash, now_us])?;
                customers.push(select.query_row([&email], |row| row.get::<_, i64>(0))?);
            }
        }
        tx.commit()?;
    }

    let (mut items, mut alice_orders, mut confirmed) = (0usize, 0usize, 0usize);
    let mut done = 0usize;
    while done < n {
        let end = (done + BATCH).min(n);
        let tx = conn.transaction()?;
        {
            let mut order_stmt = tx.prepare(
                "INSERT INTO orders (store_id, number, customer_id, status, version, total_minor,
                    currency, fulfilment, address, notes, tracking_token, created_at, updated_at,
                    status_at)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, 'pickup', NULL, NULL, ?8, ?9, ?10, ?10)",
            )?;
            let mut history_stmt = tx.prepare(
                "INSERT INTO status_history (order_id, from_status, to_status, actor_id,
                    actor_role, note, at)
                 VALUES (?1, ?2, ?3, ?4, ?5, NULL, ?6)",
            )?;
            let mut item_stmt = tx.prepare(
                "INSERT INTO order_items (order_id, position, product_id, name, quantity,
                    unit_price_minor, notes, station, status)
                 VALUES (?1, ?2, ?3, ?4, 1, ?5, NULL, ?6, ?7)",
            )?;
            for i in done..end {
                let seq = last_seq + 1 + i as i64;
                let number = format!("{prefix}-{seq:06}");
                let customer = if is_alice(i) {
                    alice_orders += 1;
                    alice
                } else {
                    customers[i % EXTRA_CUSTOMERS]
                };
                let status = bulk_status(i);
                if status == "confirmed" {
                    confirmed += 1;
                }
                let lines = 1 + i % 3;
                let total: i64 = (0..lines)
                    .map(|l| products[(i + l) % products.len()].2)
                    .sum();
                let at = now_us - ((n - i) as i64) * ORDER_SPACING_S * 1_000_000;
                let token = format!("b{:031x}", i);
                let steps = bulk_steps(i);
                let version = steps.len() as i64;
                let status_at = at + steps.last().map_or(0, |&(_, s)| s) * 1_000_000;
                order_stmt.execute(params![
                    store_id, number, customer, status, version, total, currency, token, at,
                    status_at
                ])?;
                let order_id = tx.last_insert_rowid();
                let mut from = None;
                for (state, seconds) in steps {
                    let (actor, role) = match from {
                        None => (customer, "customer"),
                        Some(_) => (cashier, "cashier"),
                    };
                    history_stmt.execute(params![
                        order_id,
                        from,
                        state,
                        actor,
                        role,
                        at + seconds * 1_000_000
                    ])?;
                    from = Some(state);
                }
                let item_status = if status == "completed" {
                    "ready"
                } else {
                    "queued"
                };
                for l in 0..lines {
                    let (pid, name, price, station) = &products[(i + l) % products.len()];
                    item_stmt.execute(params![
                        order_id,
                        l as i64,
                        pid,
                        name,
                        price,
                        station,
                        item_status
                    ])?;
                    items += 1;
                }
            }
        }
        tx.execute(
            "UPDATE stores SET last_order_seq = ?2 WHERE id = ?1",
            params![store_id, last_seq + end as i64],
        )?;
        tx.commit()?;
        done = end;
    }
    {
        let tx = conn.transaction()?;
        {
            let mut insert = tx.prepare(
                "INSERT INTO eta_samples (store_id, fulfilment, state, seconds, at)
                 VALUES (?1, 'pickup', ?2, ?3, ?4)",
            )?;
            for (state, seconds) in eta_samples(n) {
                insert.execute(params![store_id, state, seconds, now_us])?;
            }
        }
        tx.commit()?;
    }
    conn.pragma_update(None, "synchronous", "FULL")?;
    conn.query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |_| Ok(()))?;
    drop(conn);
    let db_bytes = std::fs::metadata(db).map(|m| m.len()).unwrap_or(0);
    Ok(BulkStats {
        orders: n,
        items,
        alice_orders,
        confirmed_orders: confirmed,
        seconds: started.elapsed().as_secs_f64(),
        db_bytes,
    })
}

/// Builds the per-day report rollups of `slug` from the bulk-loaded orders
/// with the store's own rebuild — what a server does once at start for a
/// database without them — so the restarted server starts at once and its
/// start time stays the figure of a normal start. Returns the seconds it
/// took.
pub async fn build_rollups(
    database_url: Option<&str>, db: &std::path::Path, slug: &str,
) -> anyhow::Result<f64> {
    use std::sync::Arc;

    use anyhow::Context;
    use ordertrack_domain::Workflow;
    use ordertrack_domain::rollup::OutcomeRules;
    use ordertrack_store::{PostgresRepository, Repository, RollupRebuild, SqliteRepository};

    let started = std::time::Instant::now();
    let store: Arc<dyn Repository> = match database_url {
        Some(url) => Arc::new(PostgresRepository::connect(url, Default::default()).await?),
        None => Arc::new(SqliteRepository::open(db, Default::default())?),
    };
    let shop = store
        .store_by_slug(slug)
        .await?
        .with_context(|| format!("no store `{slug}`"))?;
    let workflow =
        Workflow::builtin(shop.workflow.as_str()).context("the store's built-in workflow")?;
    store
        .rebuild_report_days(RollupRebuild {
            store: shop.id,
            rules: vec![(0, OutcomeRules::of(&workflow))],
        })
        .await?;
    Ok(started.elapsed().as_secs_f64())
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    #[test]
    fn status_mix_and_alice_share() {
        let confirmed = (0..1000).filter(|&i| bulk_status(i) == "confirmed").count();
        assert_eq!(confirmed, 20);
        assert_eq!((0..1000).filter(|&i| is_alice(i)).count(), 100);
    }

    /// The accounts, store and products a loader expects, as the demo has
    /// them (both loaders' tests start from these rows).
    pub(crate) const DEMO_ROWS: &str = "INSERT INTO users (email, name, password_hash, created_at)
             VALUES ('alice@demo.test', 'Alice', 'x', 0),
                    ('cashier@demo.test', 'Cashier', 'x', 0);
         INSERT INTO stores (slug, name, currency, workflow, order_prefix, created_at)
             VALUES ('demo-restaurant', 'R', 'EUR', 'restaurant', 'R', 0);
         INSERT INTO products (store_id, name, price_minor, station, created_at)
             VALUES (1, 'Fries', 390, 'fryer', 0), (1, 'Lemonade', 350, 'drinks', 0);";

    #[test]
    fn loads_into_the_real_schema() {
        // The migration is the server's; load into a copy of it.
        let dir = tempfile::tempdir().unwrap();
        let db = dir.path().join("t.db");
        ordertrack_store::SqliteRepository::migrate(&db).unwrap();
        let conn = Connection::open(&db).unwrap();
        conn.execute_batch(DEMO_ROWS).unwrap();
        drop(conn);
        let stats = load(&db, "demo-restaurant", 120).unwrap();
        assert_eq!(stats.orders, 120);
        assert_eq!(stats.alice_orders, 12);
        let conn = Connection::open(&db).unwrap();
        let (orders, last): (i64, i64) = conn
            .query_row(
                "SELECT (SELECT count(*) FROM orders), last_order_seq FROM stores",
                [],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .unwrap();
        assert_eq!((orders, last), (120, 120));
        let number: String = conn
            .query_row(
                "SELECT number FROM orders ORDER BY id DESC LIMIT 1",
                [],
                |r| r.get(0),
            )
            .unwrap();
        assert_eq!(number, "R-000120");
        // Every order has its history; a completed one its whole path,
        // ending when it entered its status.
        let (history, last_at, status_at, kept): (i64, i64, i64, i64) = conn
            .query_row(
                "SELECT (SELECT count(*) FROM status_history),
                        (SELECT max(at) FROM status_history WHERE order_id = o.id),
                        o.status_at, (SELECT count(*) FROM eta_samples)
                 FROM orders o WHERE o.number = 'R-000005'",
                [],
                |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)),
            )
            .unwrap();
        let steps: usize = (0..120).map(|i| bulk_steps(i).len()).sum();
        assert_eq!(history, steps as i64);
        assert_eq!(last_at, status_at);
        assert_eq!(kept, eta_samples(120).len() as i64);
    }

    #[test]
    fn steps_follow_the_workflow_to_each_status() {
        for i in 0..50 {
            let steps = bulk_steps(i);
            assert_eq!(steps.first().map(|s| s.0), Some("pending"));
            assert_eq!(steps.last().map(|s| s.0), Some(bulk_status(i)), "{i}");
            assert!(steps.windows(2).all(|w| w[0].1 < w[1].1), "{i}: {steps:?}");
        }
        // Order 7 (completed, no jitter): 60 + 120 + 300 + 600 + 420 s.
        assert_eq!(bulk_steps(7).last(), Some(&("completed", 1_500)));
        let kept = eta_samples(1_000);
        assert_eq!(
            kept.iter().filter(|s| s.0 == "pending").count(),
            ETA_SAMPLES
        );
        assert_eq!(kept.len(), 5 * ETA_SAMPLES);
    }
}
