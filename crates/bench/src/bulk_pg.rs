//! Bulk-loads orders straight into the PostgreSQL database (server stopped,
//! schema migrated), producing the same data shape as the SQLite loader
//! (`bulk.rs`): `orders` (with `status_at`) and `order_items` rows, every
//! tenth order alice's, the rest spread over 999 extra customers, the same
//! status mix ([`bulk_status`]) and history ([`bulk_steps`]), 1–3 items per
//! order, one order every [`ORDER_SPACING_S`] seconds, the store's kept
//! ETA durations, and the store's order counter moved on. No `events` rows.
//!
//! Set-based: each batch is one `INSERT … SELECT … FROM generate_series`
//! for the orders, one for their items and one for their history, in its
//! own transaction with
//! `synchronous_commit = off` (the final commit is durable as usual). The
//! order ids are a block reserved from the `orders` identity sequence, so
//! items can name their order without reading ids back and the server's own
//! later inserts continue after the block. Unlike the SQLite loader this one
//! ends with `VACUUM (ANALYZE)` on the loaded tables (its time is part of the
//! load time): PostgreSQL's planner needs fresh statistics after a
//! million-row load, and the vacuum sets hint bits and the visibility map,
//! as autovacuum would shortly after such a load anyway, so the timed reads
//! neither write hint bits nor race an autovacuum. SQLite's planner does not
//! use statistics for these queries and has no such after-work.

use std::time::Instant;

use anyhow::Context;
use sqlx::postgres::PgConnection;
use sqlx::{AssertSqlSafe, Connection, Row};

use crate::bulk::{
    BulkStats, EXTRA_CUSTOMERS, ORDER_SPACING_S, bulk_status, bulk_steps, eta_samples, is_alice,
};

/// Orders per transaction.
const BATCH: i64 = 250_000;

/// The status of i is `statuses[i % 50]` (`bulk_status` repeats every 50).
const STATUS_PERIOD: usize = 50;

/// `bulk_status` over one period, for `$statuses[i % 50 + 1]` in SQL.
pub fn status_table() -> Vec<String> {
    (0..STATUS_PERIOD)
        .map(|i| bulk_status(i).to_owned())
        .collect()
}

/// [`bulk_steps`] over one period, for SQL: the states (comma-joined), the
/// seconds after placing of each (comma-joined), the last of them, and how
/// many (the order's version).
pub fn step_tables() -> (Vec<String>, Vec<String>, Vec<i64>, Vec<i64>) {
    let mut tables = (Vec::new(), Vec::new(), Vec::new(), Vec::new());
    for i in 0..STATUS_PERIOD {
        let steps = bulk_steps(i);
        let states: Vec<&str> = steps.iter().map(|s| s.0).collect();
        let seconds: Vec<String> = steps.iter().map(|s| s.1.to_string()).collect();
        tables.0.push(states.join(","));
        tables.1.push(seconds.join(","));
        tables.2.push(steps.last().map_or(0, |s| s.1));
        tables.3.push(steps.len() as i64);
    }
    tables
}

/// Order totals by `i % (3 * products)`: order i has `1 + i % 3` lines, line
/// l is product `(i + l) % products`, so the total repeats with that period.
pub fn total_table(prices: &[i64]) -> Vec<i64> {
    let p = prices.len();
    (0..3 * p)
        .map(|r| (0..1 + r % 3).map(|l| prices[(r + l) % p]).sum())
        .collect()
}

/// SQL for an order number `<prefix>-<seq, at least 6 digits>` — Rust's
/// `format!("{prefix}-{seq:06}")`: `lpad` alone would cut longer numbers.
pub fn number_sql(prefix: &str, seq: &str) -> String {
    format!(
        "{prefix} || '-' || CASE WHEN {seq} < 1000000 THEN lpad(({seq})::text, 6, '0') \
         ELSE ({seq})::text END"
    )
}

/// Orders of the batch `$lo ..= $hi` (`i`); the parameters are listed in [`load`].
pub fn orders_sql() -> String {
    format!(
        "INSERT INTO orders (id, store_id, number, customer_id, status, version, total_minor,
            currency, fulfilment, address, notes, tracking_token, created_at, updated_at,
            status_at)
         SELECT $1 + i, $2, {number},
                CASE WHEN i % 10 = 0 THEN $4 ELSE ($5::bigint[])[i % {customers} + 1] END,
                s.status, ($16::bigint[])[i % {period} + 1],
                ($6::bigint[])[i % $7 + 1], $8, 'pickup', NULL, NULL,
                'b' || lpad(to_hex(i), 31, '0'),
                s.placed, s.placed + s.entered, s.placed + s.entered
         FROM generate_series($11::bigint, $12::bigint) AS i,
              LATERAL (SELECT ($13::text[])[i % {period} + 1] AS status,
                              $9 - ($10 - i) * {spacing} AS placed,
                              ($15::bigint[])[i % {period} + 1] * 1000000 AS entered) AS s",
        number = number_sql("$3", "$14 + 1 + i"),
        customers = EXTRA_CUSTOMERS,
        period = STATUS_PERIOD,
        spacing = ORDER_SPACING_S * 1_000_000,
    )
}

/// History of the batch `$7 ..= $8`: each order's [`bulk_steps`], the
/// first by its customer, the rest by the cashier (`$4`).
pub fn history_sql() -> String {
    format!(
        "INSERT INTO status_history (order_id, from_status, to_status, actor_id, actor_role,
            note, at)
         SELECT $1 + i, CASE WHEN k = 1 THEN NULL ELSE p.states[k - 1] END, p.states[k],
                CASE WHEN k > 1 THEN $4 WHEN i % 10 = 0 THEN $2
                     ELSE ($3::bigint[])[i % {customers} + 1] END,
                CASE WHEN k = 1 THEN 'customer' ELSE 'cashier' END, NULL,
                $5 - ($6 - i) * {spacing} + p.seconds[k] * 1000000
         FROM generate_series($7::bigint, $8::bigint) AS i,
              LATERAL (SELECT string_to_array(($9::text[])[i % {period} + 1], ',') AS states,
                              string_to_array(($10::text[])[i % {period} + 1], ',')::bigint[]
                                  AS seconds) AS p,
              LATERAL generate_series(1, cardinality(p.states)) AS k",
        customers = EXTRA_CUSTOMERS,
        period = STATUS_PERIOD,
        spacing = ORDER_SPACING_S * 1_000_000,
    )
}

/// Items of the batch `$lo ..= $hi`: 1–3 per order, product `(i + l) % p`.
pub fn items_sql() -> String {
    format!(
        "INSERT INTO order_items (order_id, position, product_id, name, quantity,
            unit_price_minor, notes, station, status)
         SELECT $1 + i, l, ($2::bigint[])[(i + l) % $3 + 1], ($4::text[])[(i + l) % $3 + 1], 1,
                ($5::bigint[])[(i + l) % $3 + 1], NULL, ($6::text[])[(i + l) % $3 + 1],
                CASE WHEN ($7::text[])[i % {period} + 1] = 'completed' THEN 'ready'
                     ELSE 'queued' END
         FROM generate_series($8::bigint, $9::bigint) AS i,
              LATERAL generate_series(0, (i % 3)::int) AS l",
        period = STATUS_PERIOD,
    )
}

struct Product {
    id: i64,
    name: String,
    price: i64,
    station: String,
}

/// Loads `n` orders for `store_slug` into the database at `url`.
pub async fn load(url: &str, store_slug: &str, n: usize) -> anyhow::Result<BulkStats> {
    let started = Instant::now();
    let mut conn = PgConnection::connect(url)
        .await
        .with_context(|| format!("connecting to {url}"))?;
    sqlx::raw_sql("SET synchronous_commit = off; SET client_min_messages = warning")
        .execute(&mut conn)
        .await?;
    let row = sqlx::query(
        "SELECT id, order_prefix, last_order_seq, currency FROM stores WHERE slug = $1",
    )
    .bind(store_slug)
    .fetch_optional(&mut conn)
    .await?
    .context("the demo store is missing")?;
    let (store_id, prefix, last_seq, currency): (i64, String, i64, String) = (
        row.try_get(0)?,
        row.try_get(1)?,
        row.try_get(2)?,
        row.try_get(3)?,
    );
    let products: Vec<Product> = sqlx::query(
        "SELECT id, name, price_minor, station FROM products WHERE store_id = $1 ORDER BY id",
    )
    .bind(store_id)
    .fetch_all(&mut conn)
    .await?
    .iter()
    .map(|r| {
        Ok(Product {
            id: r.try_get(0)?,
            name: r.try_get(1)?,
            price: r.try_get(2)?,
            station: r.try_get(3)?,
        })
    })
    .collect::<Result<_, sqlx::Error>>()?;
    anyhow::ensure!(!products.is_empty(), "the demo store has no products");
    let row = sqlx::query("SELECT id, password_hash FROM users WHERE email = 'alice@demo.test'")
        .fetch_one(&mut conn)
        .await
        .context("alice is missing")?;
    let (alice, hash): (i64, String) = (row.try_get(0)?, row.try_get(1)?);
    let cashier: i64 = sqlx::query_scalar("SELECT id FROM users WHERE email = 'cashier@demo.test'")
        .fetch_one(&mut conn)
        .await
        .context("the cashier is missing")?;
    let now_us = (time::OffsetDateTime::now_utc().unix_timestamp_nanos() / 1000) as i64;

    // The extra customers, then their ids in customer order.
    sqlx::query(
        "INSERT INTO users (email, name, password_hash, is_admin, created_at)
         SELECT 'bulk' || c || '@bench.test', 'Bulk Customer ' || c, $1, FALSE, $2
         FROM generate_series(0, $3::bigint - 1) AS c
         ON CONFLICT (email) DO NOTHING",
    )
    .bind(&hash)
    .bind(now_us)
    .bind(EXTRA_CUSTOMERS as i64)
    .execute(&mut conn)
    .await?;
    let customers: Vec<i64> = sqlx::query_scalar(
        "SELECT u.id FROM generate_series(0, $1::bigint - 1) AS c
         JOIN users u ON u.email = 'bulk' || c || '@bench.test' ORDER BY c",
    )
    .bind(EXTRA_CUSTOMERS as i64)
    .fetch_all(&mut conn)
    .await?;
    anyhow::ensure!(
        customers.len() == EXTRA_CUSTOMERS,
        "extra customers missing"
    );

    // Reserve ids first ..= first + n - 1 from the identity sequence.
    let n64 = n as i64;
    let first: i64 = sqlx::query_scalar(
        "SELECT GREATEST(nextval(pg_get_serial_sequence('orders', 'id')),
                         COALESCE((SELECT max(id) FROM orders), 0) + 1)",
    )
    .fetch_one(&mut conn)
    .await?;
    sqlx::query("SELECT setval(pg_get_serial_sequence('orders', 'id'), $1)")
        .bind(first + n64 - 1)
        .execute(&mut conn)
        .await?;

    let statuses = status_table();
    let totals = total_table(&products.iter().map(|p| p.price).collect::<Vec<_>>());
    let ids: Vec<i64> = products.iter().map(|p| p.id).collect();
    let names: Vec<String> = products.iter().map(|p| p.name.clone()).collect();
    let prices: Vec<i64> = products.iter().map(|p| p.price).collect();
    let stations: Vec<String> = products.iter().map(|p| p.station.clone()).collect();
    let (orders_sql, items_sql, history_sql) = (orders_sql(), items_sql(), history_sql());
    let (step_states, step_seconds, entered, versions) = step_tables();
    let mut items = 0u64;
    let mut lo = 0i64;
    while lo < n64 {
        let hi = (lo + BATCH).min(n64) - 1;
        let mut tx = conn.begin().await?;
        sqlx::query(AssertSqlSafe(orders_sql.clone()))
            .bind(first) // $1
            .bind(store_id)
            .bind(&prefix)
            .bind(alice)
            .bind(&customers) // $5
            .bind(&totals)
            .bind(totals.len() as i64)
            .bind(&currency)
            .bind(now_us)
            .bind(n64) // $10
            .bind(lo)
            .bind(hi)
            .bind(&statuses)
            .bind(last_seq) // $14
            .bind(&entered)
            .bind(&versions) // $16
            .execute(&mut *tx)
            .await
            .context("inserting orders")?;
        items += sqlx::query(AssertSqlSafe(items_sql.clone()))
            .bind(first) // $1
            .bind(&ids)
            .bind(ids.len() as i64)
            .bind(&names)
            .bind(&prices) // $5
            .bind(&stations)
            .bind(&statuses)
            .bind(lo)
            .bind(hi) // $9
            .execute(&mut *tx)
            .await
            .context("inserting order items")?
            .rows_affected();
        sqlx::query(AssertSqlSafe(history_sql.clone()))
            .bind(first) // $1
            .bind(alice)
            .bind(&customers)
            .bind(cashier)
            .bind(now_us) // $5
            .bind(n64)
            .bind(lo)
            .bind(hi)
            .bind(&step_states)
            .bind(&step_seconds) // $10
            .execute(&mut *tx)
            .await
            .context("inserting status history")?;
        sqlx::query("UPDATE stores SET last_order_seq = $2 WHERE id = $1")
            .bind(store_id)
            .bind(last_seq + hi + 1)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        lo = hi + 1;
    }
    let (kept_states, kept_seconds): (Vec<&str>, Vec<i64>) = eta_samples(n).into_iter().unzip();
    sqlx::query(
        "INSERT INTO eta_samples (store_id, fulfilment, state, seconds, at)
         SELECT $1, 'pickup', s.state, s.seconds, $4
         FROM UNNEST($2::text[], $3::bigint[]) AS s(state, seconds)",
    )
    .bind(store_id)
    .bind(&kept_states)
    .bind(&kept_seconds)
    .bind(now_us)
    .execute(&mut conn)
    .await
    .context("inserting kept durations")?;
    let loaded_s = started.elapsed().as_secs_f64();
    sqlx::raw_sql("SET synchronous_commit = on")
        .execute(&mut conn)
        .await?;
    // Not in one string with the SET: VACUUM refuses a transaction block.
    sqlx::raw_sql("VACUUM (ANALYZE) users, orders, order_items, status_history, eta_samples")
        .execute(&mut conn)
        .await?;
    eprintln!(
        "[bench] bulk_pg: {n} orders, {items} items inserted in {loaded_s:.1} s; \
         VACUUM (ANALYZE) {:.1} s",
        started.elapsed().as_secs_f64() - loaded_s
    );
    let db_bytes: i64 = sqlx::query_scalar("SELECT pg_database_size(current_database())")
        .fetch_one(&mut conn)
        .await?;
    conn.close().await?;
    Ok(BulkStats {
        orders: n,
        items: items as usize,
        alice_orders: (0..n).filter(|&i| is_alice(i)).count(),
        confirmed_orders: (0..n).filter(|&i| bulk_status(i) == "confirmed").count(),
        seconds: started.elapsed().as_secs_f64(),
        db_bytes: db_bytes as u64,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tables_follow_the_sqlite_loader() {
        let statuses = status_table();
        assert_eq!(statuses.len(), 50);
        for i in [0usize, 1, 2, 3, 4, 49, 50, 51, 999_999] {
            assert_eq!(statuses[i % 50], bulk_status(i), "{i}");
        }
        let prices = [100, 20, 3];
        let totals = total_table(&prices);
        assert_eq!(totals.len(), 9);
        for i in 0..100usize {
            let lines = 1 + i % 3;
            let want: i64 = (0..lines).map(|l| prices[(i + l) % prices.len()]).sum();
            assert_eq!(totals[i % totals.len()], want, "{i}");
        }
        // One product: every line is the same one.
        assert_eq!(total_table(&[7]), vec![7, 14, 21]);
    }

    #[test]
    fn order_numbers_are_never_cut() {
        let sql = number_sql("$3", "$14 + 1 + i");
        assert!(sql.contains("lpad(($14 + 1 + i)::text, 6, '0')"), "{sql}");
        assert!(sql.contains("ELSE ($14 + 1 + i)::text"), "{sql}");
    }

    #[test]
    fn statements_name_every_column_of_the_schema() {
        let schema = include_str!("../../store/migrations/postgres/0001_init.sql");
        let columns = |table: &str| -> Vec<String> {
            let start = schema
                .find(&format!("CREATE TABLE {table} ("))
                .unwrap_or_else(|| panic!("no table {table}"));
            let body = &schema[start..];
            let body = &body[body.find('(').unwrap() + 1..body.find("\n);").unwrap()];
            body.lines()
                .map(str::trim)
                .filter(|l| !l.is_empty() && !l.starts_with("UNIQUE") && !l.starts_with("--"))
                .map(|l| l.split_whitespace().next().unwrap().to_owned())
                .collect()
        };
        let listed = |sql: &str| -> Vec<String> {
            let start = sql.find('(').unwrap() + 1;
            let end = sql.find(')').unwrap();
            sql[start..end]
                .split(',')
                .map(|c| c.trim().to_owned())
                .collect()
        };
        // Columns added by later migrations follow (the rest keep defaults).
        let mut order_columns = columns("orders");
        order_columns.push("status_at".into());
        assert_eq!(listed(&orders_sql()), order_columns);
        assert_eq!(
            listed(&history_sql()),
            [
                "order_id",
                "from_status",
                "to_status",
                "actor_id",
                "actor_role",
                "note",
                "at"
            ]
        );
        // Items take their ids from the identity.
        let mut item_columns = columns("order_items");
        item_columns.retain(|c| c != "id");
        assert_eq!(listed(&items_sql()), item_columns);
    }

    /// Against the local PostgreSQL when it answers (skipped otherwise): the
    /// real migration in a scratch database, 120 orders.
    #[tokio::test]
    async fn loads_into_the_real_schema() {
        let Some(admin) = crate::pg::test_admin("bulk_pg::loads_into_the_real_schema").await else {
            return;
        };
        let db = admin.create_db().await.unwrap();
        let result = async {
            ordertrack_store::PostgresRepository::migrate(
                &db.url,
                std::time::Duration::from_secs(30),
            )
            .await?;
            let mut conn = PgConnection::connect(&db.url).await?;
            sqlx::raw_sql(crate::bulk::tests::DEMO_ROWS)
                .execute(&mut conn)
                .await?;
            sqlx::raw_sql(
                "INSERT INTO orders (store_id, number, customer_id, status, version,
                     total_minor, currency, fulfilment, tracking_token, created_at, updated_at)
                     VALUES (1, 'R-000001', 1, 'pending', 1, 390, 'EUR', 'pickup', 't', 0, 0);
                 UPDATE stores SET last_order_seq = 1;",
            )
            .execute(&mut conn)
            .await?;
            let stats = load(&db.url, "demo-restaurant", 120).await?;
            assert_eq!(stats.orders, 120);
            assert_eq!(stats.alice_orders, 12);
            assert_eq!(stats.items, 40 + 80 + 120);
            let row = sqlx::query(
                "SELECT (SELECT count(*) FROM orders), last_order_seq,
                        (SELECT number FROM orders ORDER BY id DESC LIMIT 1),
                        (SELECT count(*) FROM orders WHERE status = 'confirmed'),
                        (SELECT total_minor FROM orders WHERE number = 'R-000003'),
                        (SELECT count(*) FROM order_items WHERE order_id =
                            (SELECT id FROM orders WHERE number = 'R-000003'))
                 FROM stores",
            )
            .fetch_one(&mut conn)
            .await?;
            let counts: (i64, i64, String, i64, i64, i64) = (
                row.try_get(0)?,
                row.try_get(1)?,
                row.try_get(2)?,
                row.try_get(3)?,
                row.try_get(4)?,
                row.try_get(5)?,
            );
            // Order 3 is the bulk's i = 1: two lines, Lemonade + Fries.
            assert_eq!(counts, (121, 121, "R-000121".into(), 3, 740, 2));
            let steps: usize = (0..120).map(|i| bulk_steps(i).len()).sum();
            let row = sqlx::query(
                "SELECT (SELECT count(*) FROM status_history),
                        (SELECT max(h.at) = o.status_at FROM status_history h
                         WHERE h.order_id = o.id),
                        (SELECT count(*) FROM eta_samples)
                 FROM orders o WHERE o.number = 'R-000006'",
            )
            .fetch_one(&mut conn)
            .await?;
            let history: (i64, bool, i64) = (row.try_get(0)?, row.try_get(1)?, row.try_get(2)?);
            assert_eq!(history, (steps as i64, true, eta_samples(120).len() as i64));
            // The server's next order gets the id after the block.
            let next: i64 = sqlx::query_scalar(
                "INSERT INTO orders (store_id, number, customer_id, status, version,
                     total_minor, currency, fulfilment, tracking_token, created_at, updated_at)
                 VALUES (1, 'R-000122', 1, 'pending', 1, 1, 'EUR', 'pickup', 'u', 0, 0)
                 RETURNING id",
            )
            .fetch_one(&mut conn)
            .await?;
            assert_eq!(next, 122);
            conn.close().await?;
            Ok::<_, anyhow::Error>(())
        }
        .await;
        admin.drop_quietly(&db).await;
        result.unwrap();
    }
}
