//! The bare write engine: the ceiling durable writes are measured against.
//!
//! No HTTP, no sign-in, no workflow: clients hand status changes to one
//! writer over a channel and wait for their acknowledgement, and the writer
//! commits whatever has queued up in one transaction — the order's row
//! (checked against its expected version), an event and a history row per
//! change, like ordertrack's own tables. SQLite: one connection in WAL mode
//! with `synchronous = FULL` (ordertrack's settings), prepared statements,
//! one fsync per batch. PostgreSQL: one connection, a fixed five statements
//! per batch whatever its size (`BEGIN`, three multi-row statements over
//! `unnest()` arrays, `COMMIT`).

use std::path::Path;
use std::time::{Duration, Instant};

use anyhow::Context;
use serde_json::json;
use sqlx::postgres::PgConnection;
use sqlx::{Connection, Row};
use tokio::sync::{mpsc, oneshot};

use crate::scenarios::Outcome;
use crate::stats::summarize;

/// Where the engine writes.
pub enum Target<'a> {
    /// A fresh SQLite file in this directory.
    Sqlite(&'a Path),
    /// An empty PostgreSQL database.
    Postgres(&'a str),
}

/// Most changes one transaction takes.
const MAX_BATCH: usize = 1024;

/// Orders each client cycles through.
const ORDERS_PER_CLIENT: i64 = 8;

/// Statuses a change moves an order to, in turn.
const STATUSES: [&str; 5] = ["confirmed", "preparing", "ready", "completed", "pending"];

/// An event body of the size ordertrack keeps per change.
const PAYLOAD: &str = r#"{"kind":"order.status_changed","store":"demo","from":"pending","to":"confirmed","by":{"id":3,"role":"cashier"},"order":{"number":"A-0001","total_minor":1250,"currency":"EUR","fulfilment":"pickup","items":[{"name":"Burger","quantity":1,"station":"grill","status":"queued"}]}}"#;

/// One status change waiting for the writer.
struct Change {
    order_id: i64,
    expected_version: i64,
    status: &'static str,
    done: oneshot::Sender<bool>,
}

/// Runs `clients` clients against the engine on `target` for `duration`.
pub async fn measure(
    target: Target<'_>, clients: usize, duration: Duration,
) -> anyhow::Result<Outcome> {
    let clients = clients.max(1);
    let orders = clients as i64 * ORDERS_PER_CLIENT;
    let (sender, receiver) = mpsc::channel::<Change>(clients * 2);
    let (backend, writer) = match target {
        Target::Sqlite(dir) => {
            let path = dir.join("bare-writer.db");
            let _ = std::fs::remove_file(&path);
            let conn = sqlite_open(&path, orders)?;
            let writer = tokio::task::spawn_blocking(move || sqlite_writer(conn, receiver));
            ("SQLite", writer)
        }
        Target::Postgres(url) => {
            let mut conn = PgConnection::connect(url)
                .await
                .context("the bare write engine's PostgreSQL connection")?;
            pg_prepare(&mut conn, orders).await?;
            let writer = tokio::spawn(pg_writer(conn, receiver));
            ("PostgreSQL", writer)
        }
    };

    let started = Instant::now();
    let deadline = started + duration;
    let mut tasks = Vec::with_capacity(clients);
    for client in 0..clients as i64 {
        let sender = sender.clone();
        tasks.push(tokio::spawn(async move {
            let mut versions = vec![1i64; ORDERS_PER_CLIENT as usize];
            let (mut latencies, mut refused) = (Vec::new(), 0u64);
            let mut turn = 0usize;
            while Instant::now() < deadline {
                let slot = turn % versions.len();
                turn += 1;
                let (done, acknowledged) = oneshot::channel();
                let change = Change {
                    order_id: 1 + client * ORDERS_PER_CLIENT + slot as i64,
                    expected_version: versions[slot],
                    status: STATUSES[(versions[slot] as usize) % STATUSES.len()],
                    done,
                };
                let t = Instant::now();
                if sender.send(change).await.is_err() {
                    break;
                }
                match acknowledged.await {
                    Ok(true) => {
                        latencies.push(t.elapsed().as_micros() as u64);
                        versions[slot] += 1;
                    }
                    Ok(false) => refused += 1,
                    Err(_) => break,
                }
            }
            (latencies, refused)
        }));
    }
    drop(sender);
    let (mut latencies, mut refused) = (Vec::new(), 0u64);
    for task in tasks {
        let (l, r) = task.await?;
        latencies.extend(l);
        refused += r;
    }
    let elapsed = started.elapsed().as_secs_f64();
    let batches = writer.await??;

    let mut o = Outcome::new(
        &format!("ceiling: bare write engine ({backend})"),
        json!({ "clients": clients, "seconds": duration.as_secs_f64(), "orders": orders,
                "max_batch": MAX_BATCH }),
    );
    let rate = latencies.len() as f64 / elapsed;
    o.throughput = Some(rate);
    o.unit = "writes/s".into();
    o.latency = Some(summarize(&mut latencies));
    o.ratio_basis = "write ceiling".into();
    o.metric("batches", batches);
    o.metric("mean_batch", rate * elapsed / batches.max(1) as f64);
    o.metric("errors", refused);
    if refused > 0 {
        o.notes
            .push(format!("{refused} changes refused (version mismatch)"));
    }
    Ok(o)
}

/// The next batch: waits for one change, then takes what else is queued.
fn take_batch(first: Change, receiver: &mut mpsc::Receiver<Change>) -> Vec<Change> {
    let mut batch = vec![first];
    while batch.len() < MAX_BATCH {
        match receiver.try_recv() {
            Ok(change) => batch.push(change),
            Err(_) => break,
        }
    }
    batch
}

fn now_text() -> String {
    time::OffsetDateTime::now_utc()
        .format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_default()
}

fn sqlite_open(path: &Path, orders: i64) -> anyhow::Result<rusqlite::Connection> {
    let mut conn = rusqlite::Connection::open(path)?;
    conn.pragma_update(None, "journal_mode", "WAL")?;
    conn.pragma_update(None, "synchronous", "FULL")?;
    conn.execute_batch(
        "CREATE TABLE orders (id INTEGER PRIMARY KEY, store_id INTEGER NOT NULL,
             status TEXT NOT NULL, version INTEGER NOT NULL, updated_at TEXT NOT NULL);
         CREATE TABLE events (id INTEGER PRIMARY KEY, store_id INTEGER NOT NULL,
             order_id INTEGER NOT NULL, order_version INTEGER NOT NULL,
             payload TEXT NOT NULL, at TEXT NOT NULL);
         CREATE INDEX events_store ON events (store_id, id);
         CREATE TABLE status_history (id INTEGER PRIMARY KEY, order_id INTEGER NOT NULL,
             status TEXT NOT NULL, at TEXT NOT NULL);
         CREATE INDEX status_history_order ON status_history (order_id, id);",
    )?;
    let tx = conn.transaction()?;
    {
        let mut insert = tx.prepare(
            "INSERT INTO orders (id, store_id, status, version, updated_at)
             VALUES (?1, 1, 'pending', 1, ?2)",
        )?;
        let at = now_text();
        for id in 1..=orders {
            insert.execute(rusqlite::params![id, at])?;
        }
    }
    tx.commit()?;
    Ok(conn)
}

/// The SQLite writer (a blocking thread); returns how many batches it
/// committed.
fn sqlite_writer(
    mut conn: rusqlite::Connection, mut receiver: mpsc::Receiver<Change>,
) -> anyhow::Result<u64> {
    let mut batches = 0;
    while let Some(first) = receiver.blocking_recv() {
        let batch = take_batch(first, &mut receiver);
        let at = now_text();
        let tx = conn.transaction()?;
        let mut applied = Vec::with_capacity(batch.len());
        {
            let mut update = tx.prepare_cached(
                "UPDATE orders SET status = ?1, version = version + 1, updated_at = ?2
                 WHERE id = ?3 AND version = ?4",
            )?;
            let mut event = tx.prepare_cached(
                "INSERT INTO events (store_id, order_id, order_version, payload, at)
                 VALUES (1, ?1, ?2, ?3, ?4)",
            )?;
            let mut history = tx.prepare_cached(
                "INSERT INTO status_history (order_id, status, at) VALUES (?1, ?2, ?3)",
            )?;
            for change in &batch {
                let ok = update.execute(rusqlite::params![
                    change.status,
                    at,
                    change.order_id,
                    change.expected_version
                ])? == 1;
                if ok {
                    event.execute(rusqlite::params![
                        change.order_id,
                        change.expected_version + 1,
                        PAYLOAD,
                        at
                    ])?;
                    history.execute(rusqlite::params![change.order_id, change.status, at])?;
                }
                applied.push(ok);
            }
        }
        tx.commit()?;
        batches += 1;
        for (change, ok) in batch.into_iter().zip(applied) {
            let _ = change.done.send(ok);
        }
    }
    Ok(batches)
}

async fn pg_prepare(conn: &mut PgConnection, orders: i64) -> anyhow::Result<()> {
    sqlx::raw_sql(
        "CREATE TABLE orders (id BIGINT PRIMARY KEY, store_id BIGINT NOT NULL,
             status TEXT NOT NULL, version BIGINT NOT NULL, updated_at TIMESTAMPTZ NOT NULL);
         CREATE TABLE events (id BIGSERIAL PRIMARY KEY, store_id BIGINT NOT NULL,
             order_id BIGINT NOT NULL, order_version BIGINT NOT NULL,
             payload TEXT NOT NULL, at TIMESTAMPTZ NOT NULL);
         CREATE INDEX events_store ON events (store_id, id);
         CREATE TABLE status_history (id BIGSERIAL PRIMARY KEY, order_id BIGINT NOT NULL,
             status TEXT NOT NULL, at TIMESTAMPTZ NOT NULL);
         CREATE INDEX status_history_order ON status_history (order_id, id);",
    )
    .execute(&mut *conn)
    .await?;
    sqlx::query(
        "INSERT INTO orders (id, store_id, status, version, updated_at)
         SELECT g, 1, 'pending', 1, now() FROM generate_series(1, $1::bigint) AS g",
    )
    .bind(orders)
    .execute(&mut *conn)
    .await?;
    Ok(())
}

/// The PostgreSQL writer; returns how many batches it committed.
async fn pg_writer(
    mut conn: PgConnection, mut receiver: mpsc::Receiver<Change>,
) -> anyhow::Result<u64> {
    let mut batches = 0;
    while let Some(first) = receiver.recv().await {
        let batch = take_batch(first, &mut receiver);
        let ids: Vec<i64> = batch.iter().map(|c| c.order_id).collect();
        let versions: Vec<i64> = batch.iter().map(|c| c.expected_version).collect();
        let statuses: Vec<&str> = batch.iter().map(|c| c.status).collect();
        let mut tx = conn.begin().await?;
        let rows = sqlx::query(
            "UPDATE orders AS o SET status = u.status, version = o.version + 1, updated_at = now()
             FROM unnest($1::bigint[], $2::bigint[], $3::text[]) AS u(id, version, status)
             WHERE o.id = u.id AND o.version = u.version
             RETURNING o.id",
        )
        .bind(&ids)
        .bind(&versions)
        .bind(&statuses)
        .fetch_all(&mut *tx)
        .await?;
        let applied: std::collections::HashSet<i64> =
            rows.iter().map(|row| row.get::<i64, _>(0)).collect();
        let done: Vec<&Change> = batch
            .iter()
            .filter(|c| applied.contains(&c.order_id))
            .collect();
        let ids: Vec<i64> = done.iter().map(|c| c.order_id).collect();
        let next: Vec<i64> = done.iter().map(|c| c.expected_version + 1).collect();
        let statuses: Vec<&str> = done.iter().map(|c| c.status).collect();
        let payloads: Vec<&str> = done.iter().map(|_| PAYLOAD).collect();
        sqlx::query(
            "INSERT INTO events (store_id, order_id, order_version, payload, at)
             SELECT 1, u.id, u.version, u.payload, now()
             FROM unnest($1::bigint[], $2::bigint[], $3::text[]) AS u(id, version, payload)",
        )
        .bind(&ids)
        .bind(&next)
        .bind(&payloads)
        .execute(&mut *tx)
        .await?;
        sqlx::query(
            "INSERT INTO status_history (order_id, status, at)
             SELECT u.id, u.status, now() FROM unnest($1::bigint[], $2::text[]) AS u(id, status)",
        )
        .bind(&ids)
        .bind(&statuses)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        batches += 1;
        for change in batch {
            let ok = applied.contains(&change.order_id);
            let _ = change.done.send(ok);
        }
    }
    Ok(batches)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every acknowledged change left exactly one event, one history row
    /// and one version step; none was refused.
    fn check(o: &Outcome, (events, history, steps): (i64, i64, i64)) {
        let acknowledged = o.latency.expect("latencies").count as i64;
        assert!(acknowledged > 0, "{o:?}");
        assert_eq!(o.metrics["errors"], 0);
        assert_eq!(
            (events, history, steps),
            (acknowledged, acknowledged, acknowledged)
        );
    }

    const COUNTS: &str =
        "SELECT (SELECT count(*) FROM events), (SELECT count(*) FROM status_history),
                                 (SELECT CAST(sum(version - 1) AS BIGINT) FROM orders)";

    #[tokio::test]
    async fn the_sqlite_engine_commits_every_acknowledged_change_once() {
        let dir = tempfile::tempdir().expect("tempdir");
        let o = measure(Target::Sqlite(dir.path()), 8, Duration::from_millis(300))
            .await
            .expect("the engine runs");
        let conn = rusqlite::Connection::open(dir.path().join("bare-writer.db")).expect("open");
        let counts = conn
            .query_row(COUNTS, [], |row| {
                Ok((row.get(0)?, row.get(1)?, row.get(2)?))
            })
            .expect("counts");
        check(&o, counts);
    }

    #[tokio::test]
    async fn the_postgres_engine_commits_every_acknowledged_change_once() {
        let Some(admin) = crate::pg::test_admin("bare_writer::the_postgres_engine…").await else {
            return;
        };
        let db = admin.create_db().await.expect("a scratch database");
        let result = async {
            let o = measure(Target::Postgres(&db.url), 8, Duration::from_millis(300)).await?;
            let mut conn = PgConnection::connect(&db.url).await?;
            let row = sqlx::query(COUNTS).fetch_one(&mut conn).await?;
            anyhow::Ok((o, (row.try_get(0)?, row.try_get(1)?, row.try_get(2)?)))
        }
        .await;
        admin.drop_quietly(&db).await;
        let (o, counts) = result.expect("the engine runs");
        check(&o, counts);
    }
}
