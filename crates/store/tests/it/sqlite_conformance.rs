//! The SQLite store: the shared conformance suite, plus what only SQLite has
//! (WAL, embedded migrations, the file surviving a reopen, append-only triggers,
//! the commit listener).

use std::path::Path;
use std::sync::Arc;

use ordertrack_domain::Order;
use ordertrack_store::conformance::Backend;
use ordertrack_store::sqlite::SqliteOptions;
use ordertrack_store::{EventFilter, Repository, SqliteRepository};

use crate::support::*;

/// A fresh SQLite store in its own temporary directory.
async fn sqlite() -> Backend {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = open(&dir.path().join("ordertrack.db"));
    Backend::new(Arc::new(store), dir)
}

ordertrack_store::conformance_tests!(sqlite);

// ---- SQLite only ----

fn open(path: &Path) -> SqliteRepository {
    SqliteRepository::open(path, SqliteOptions::default()).expect("open sqlite store")
}

fn raw(path: &Path) -> rusqlite::Connection {
    rusqlite::Connection::open(path).expect("raw connection")
}

/// The [`Shop`] with an order placed and confirmed; returns the order.
async fn seed(store: &dyn Repository) -> Order {
    let f = shop(store).await;
    place_and_confirm(store, &f).await
}

#[tokio::test]
async fn database_runs_in_wal_mode() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("ordertrack.db");
    let store = open(&path);
    seed(&store).await;
    let mode: String = raw(&path)
        .query_row("PRAGMA journal_mode", [], |row| row.get(0))
        .expect("journal_mode");
    assert_eq!(mode.to_lowercase(), "wal");
    assert_eq!(store.path(), path);
}

#[tokio::test]
async fn migrations_are_idempotent() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("ordertrack.db");
    let first = SqliteRepository::migrate(&path).expect("first migrate");
    assert!(first >= 1, "a fresh database gets every migration");
    assert_eq!(
        SqliteRepository::migrate(&path).expect("second migrate"),
        0,
        "a migrated database needs nothing"
    );
    // Opening runs migrations too, and finds nothing to do.
    let store = open(&path);
    let seeded = seed(&store).await;
    assert_eq!(SqliteRepository::migrate(&path).expect("third migrate"), 0);
    assert!(store.order(seeded.id).await.expect("order").is_some());
    let recorded: i64 = raw(&path)
        .query_row("SELECT COUNT(*) FROM schema_migrations", [], |row| {
            row.get(0)
        })
        .expect("schema_migrations");
    assert_eq!(recorded, first as i64);
}

#[tokio::test]
async fn migration_20_gives_kept_durations_their_band_of_the_day() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("ordertrack.db");
    let store = open(&path);
    let f = shop(&store).await;
    let sql = samples_before_bands(&store, &f).await;
    drop(store);
    let raw = raw(&path);
    for statement in sql {
        raw.execute_batch(&statement)
            .expect("back to before migration 20");
    }
    drop(raw);
    assert_eq!(SqliteRepository::migrate(&path).expect("migrate"), 1);
    samples_have_their_bands(&open(&path), &f).await;
}

#[tokio::test]
async fn data_survives_close_and_reopen() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("ordertrack.db");
    let store = open(&path);
    let seeded = seed(&store).await;
    let order = store.order(seeded.id).await.expect("order");
    let history = store.history(seeded.id).await.expect("history");
    let events = store
        .events_after(EventFilter::Order(seeded.id), 0, 100)
        .await
        .expect("events");
    let position = store.last_event_position().await.expect("position");
    drop(store);

    let reopened = open(&path);
    let again = reopened.order(seeded.id).await.expect("order");
    assert_eq!(again, order);
    let again = again.expect("the order is still there");
    assert_eq!(again.number, seeded.number);
    assert_eq!(again.status, "confirmed");
    assert_eq!(again.version, 2);
    assert_eq!(reopened.history(seeded.id).await.expect("history"), history);
    assert_eq!(
        reopened
            .events_after(EventFilter::Order(seeded.id), 0, 100)
            .await
            .expect("events"),
        events
    );
    assert_eq!(
        reopened.last_event_position().await.expect("position"),
        position
    );
    assert!(
        reopened
            .user_credentials("alice@example.test")
            .await
            .expect("credentials")
            .is_some()
    );
    let shop = reopened
        .store_by_slug("rosso")
        .await
        .expect("store")
        .expect("the store is still there");
    assert_eq!(reopened.products(shop.id).await.expect("products").len(), 1);
}

#[tokio::test]
async fn status_history_is_append_only() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("ordertrack.db");
    let store = open(&path);
    let seeded = seed(&store).await;
    let conn = raw(&path);
    let rows = || -> i64 {
        conn.query_row(
            "SELECT COUNT(*) FROM status_history WHERE order_id = ?1",
            [seeded.id.get()],
            |row| row.get(0),
        )
        .expect("count")
    };
    assert_eq!(rows(), 2);

    let update = conn.execute(
        "UPDATE status_history SET to_status = 'completed' WHERE order_id = ?1",
        [seeded.id.get()],
    );
    let error = update.expect_err("UPDATE on status_history must fail");
    assert!(
        error.to_string().contains("append-only"),
        "unexpected error: {error}"
    );
    let delete = conn.execute(
        "DELETE FROM status_history WHERE order_id = ?1",
        [seeded.id.get()],
    );
    let error = delete.expect_err("DELETE on status_history must fail");
    assert!(
        error.to_string().contains("append-only"),
        "unexpected error: {error}"
    );
    assert_eq!(rows(), 2);
    let history = store.history(seeded.id).await.expect("history");
    assert_eq!(history.len(), 2);
    assert_eq!(history[1].to, "confirmed");
}

#[tokio::test]
async fn commit_listener_sees_exactly_the_committed_events() {
    let dir = tempfile::tempdir().expect("tempdir");
    let recorder = Arc::new(Recorder::default());
    let store = SqliteRepository::open(
        &dir.path().join("ordertrack.db"),
        SqliteOptions {
            readers: 2,
            listener: Some(recorder.clone()),
        },
    )
    .expect("open");
    listener_sees_exactly_the_committed_events(&store, &recorder).await;
}
