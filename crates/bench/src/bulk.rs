//! Bulk-loads orders straight into the SQLite file (server stopped), mirroring
//! `crates/store/migrations/sqlite/0001_init.sql`: `orders` and
//! `order_items` rows (what order lists read), the store's order counter,
//! and 999 extra customers. No `status_history`/`events` rows: lists never
//! read them.

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
                    currency, fulfilment, address, notes, tracking_token, created_at, updated_at)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, 'pickup', NULL, NULL, ?8, ?9, ?9)",
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
                let at = now_us - ((n - i) as i64) * 1_000_000;
                let token = format!("b{:031x}", i);
                let version = if status == "completed" { 5 } else { 2 };
                order_stmt.execute(params![
                    store_id, number, customer, status, version, total, currency, token, at
                ])?;
                let order_id = tx.last_insert_rowid();
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn status_mix_and_alice_share() {
        let confirmed = (0..1000).filter(|&i| bulk_status(i) == "confirmed").count();
        assert_eq!(confirmed, 20);
        assert_eq!((0..1000).filter(|&i| is_alice(i)).count(), 100);
    }

    #[test]
    fn loads_into_the_real_schema() {
        // The migration is the server's; load into a copy of it.
        let dir = tempfile::tempdir().unwrap();
        let db = dir.path().join("t.db");
        let conn = Connection::open(&db).unwrap();
        conn.execute_batch(include_str!("../../store/migrations/sqlite/0001_init.sql"))
            .unwrap();
        conn.execute_batch(
            "INSERT INTO users (email, name, password_hash, created_at)
                 VALUES ('alice@demo.test', 'Alice', 'x', 0);
             INSERT INTO stores (slug, name, currency, workflow, order_prefix, created_at)
                 VALUES ('demo-restaurant', 'R', 'EUR', 'restaurant', 'R', 0);
             INSERT INTO products (store_id, name, price_minor, station, created_at)
                 VALUES (1, 'Fries', 390, 'fryer', 0), (1, 'Lemonade', 350, 'drinks', 0);",
        )
        .unwrap();
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
    }
}
