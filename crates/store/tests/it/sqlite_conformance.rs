//! The SQLite store: the shared conformance suite, plus what only SQLite has
//! (WAL, embedded migrations, the file surviving a reopen, append-only triggers,
//! the commit listener).

use std::path::Path;
use std::sync::{Arc, Mutex};

use ordertrack_domain::{
    Actor, EventKind, Fulfilment, FulfilmentKind, OrderSummary, Role, Workflow, plan_transition,
};
use ordertrack_store::conformance::Backend;
use ordertrack_store::sqlite::SqliteOptions;
use ordertrack_store::{
    CommitListener, EventFilter, NewOrder, NewOrderLine, NewProduct, NewStore, NewUser,
    SqliteStore, Store, StoreError, StoredEvent,
};
use time::OffsetDateTime;

/// A fresh SQLite store in its own temporary directory.
async fn sqlite() -> Backend {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = SqliteStore::open(&dir.path().join("ordertrack.db"), SqliteOptions::default())
        .expect("open sqlite store");
    Backend::new(Arc::new(store), dir)
}

ordertrack_store::conformance_tests!(sqlite);

// ---- SQLite only ----

fn open(path: &Path) -> SqliteStore {
    SqliteStore::open(path, SqliteOptions::default()).expect("open sqlite store")
}

fn raw(path: &Path) -> rusqlite::Connection {
    rusqlite::Connection::open(path).expect("raw connection")
}

/// A store with one product and one customer, and an order placed and confirmed.
struct Seeded {
    order_id: i64,
    number: String,
}

async fn seed(store: &dyn Store) -> Seeded {
    let shop = store
        .create_store(NewStore {
            slug: "rosso".into(),
            name: "Rosso".into(),
            currency: "EUR".into(),
            workflow: "restaurant".into(),
            order_prefix: "R".into(),
        })
        .await
        .expect("create_store");
    let burger = store
        .create_product(
            shop.id,
            NewProduct {
                name: "Burger".into(),
                description: String::new(),
                price_minor: 950,
                station: "grill".into(),
                available: true,
            },
        )
        .await
        .expect("create_product");
    let alice = store
        .create_user(NewUser {
            email: "alice@example.test".into(),
            name: "Alice".into(),
            password_hash: "hash".into(),
            is_admin: false,
        })
        .await
        .expect("create_user");
    let workflow = Workflow::builtin("restaurant").expect("workflow");
    let customer = Actor {
        id: alice.id,
        role: Role::Customer,
    };
    let placed = store
        .place_order(NewOrder {
            store_id: shop.id,
            customer_id: alice.id,
            placed_by: customer,
            lines: vec![NewOrderLine {
                product: burger.id,
                name: burger.name.clone(),
                quantity: 2,
                unit_price_minor: burger.price_minor,
                notes: None,
                station: burger.station.clone(),
            }],
            fulfilment: Fulfilment {
                kind: FulfilmentKind::Pickup,
                address: None,
            },
            notes: None,
            currency: "EUR".into(),
            status: "pending".into(),
            summary: OrderSummary::of(&workflow, "", "pending", FulfilmentKind::Pickup),
            tracking_token: "00112233445566778899aabbccddeeff".into(),
            idempotency: None,
            at: OffsetDateTime::now_utc(),
        })
        .await
        .expect("place_order");
    let cashier = Actor {
        id: alice.id,
        role: Role::Cashier,
    };
    let change = plan_transition(
        &workflow,
        &placed.order,
        cashier,
        "confirmed",
        None,
        Some(1),
        OffsetDateTime::now_utc(),
    )
    .expect("plan");
    store
        .apply_status_change(change)
        .await
        .expect("apply_status_change");
    Seeded {
        order_id: placed.order.id,
        number: placed.order.number,
    }
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
    let first = SqliteStore::migrate(&path).expect("first migrate");
    assert!(first >= 1, "a fresh database gets every migration");
    assert_eq!(
        SqliteStore::migrate(&path).expect("second migrate"),
        0,
        "a migrated database needs nothing"
    );
    // Opening runs migrations too, and finds nothing to do.
    let store = open(&path);
    let seeded = seed(&store).await;
    assert_eq!(SqliteStore::migrate(&path).expect("third migrate"), 0);
    assert!(store.order(seeded.order_id).await.expect("order").is_some());
    let recorded: i64 = raw(&path)
        .query_row("SELECT COUNT(*) FROM schema_migrations", [], |row| {
            row.get(0)
        })
        .expect("schema_migrations");
    assert_eq!(recorded, first as i64);
}

#[tokio::test]
async fn data_survives_close_and_reopen() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("ordertrack.db");
    let store = open(&path);
    let seeded = seed(&store).await;
    let order = store.order(seeded.order_id).await.expect("order");
    let history = store.history(seeded.order_id).await.expect("history");
    let events = store
        .events_after(EventFilter::Order(seeded.order_id), 0, 100)
        .await
        .expect("events");
    let position = store.last_event_position().await.expect("position");
    drop(store);

    let reopened = open(&path);
    let again = reopened.order(seeded.order_id).await.expect("order");
    assert_eq!(again, order);
    let again = again.expect("the order is still there");
    assert_eq!(again.number, seeded.number);
    assert_eq!(again.status, "confirmed");
    assert_eq!(again.version, 2);
    assert_eq!(
        reopened.history(seeded.order_id).await.expect("history"),
        history
    );
    assert_eq!(
        reopened
            .events_after(EventFilter::Order(seeded.order_id), 0, 100)
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
            [seeded.order_id],
            |row| row.get(0),
        )
        .expect("count")
    };
    assert_eq!(rows(), 2);

    let update = conn.execute(
        "UPDATE status_history SET to_status = 'completed' WHERE order_id = ?1",
        [seeded.order_id],
    );
    let error = update.expect_err("UPDATE on status_history must fail");
    assert!(
        error.to_string().contains("append-only"),
        "unexpected error: {error}"
    );
    let delete = conn.execute(
        "DELETE FROM status_history WHERE order_id = ?1",
        [seeded.order_id],
    );
    let error = delete.expect_err("DELETE on status_history must fail");
    assert!(
        error.to_string().contains("append-only"),
        "unexpected error: {error}"
    );
    assert_eq!(rows(), 2);
    let history = store.history(seeded.order_id).await.expect("history");
    assert_eq!(history.len(), 2);
    assert_eq!(history[1].to, "confirmed");
}

/// Records what the writer reports after each commit.
#[derive(Default)]
struct Recorder(Mutex<Vec<StoredEvent>>);

impl CommitListener for Recorder {
    fn committed(&self, events: &[StoredEvent]) {
        self.0.lock().expect("lock").extend_from_slice(events);
    }
}

#[tokio::test]
async fn commit_listener_sees_exactly_the_committed_events() {
    let dir = tempfile::tempdir().expect("tempdir");
    let recorder = Arc::new(Recorder::default());
    let store = SqliteStore::open(
        &dir.path().join("ordertrack.db"),
        SqliteOptions {
            readers: 2,
            listener: Some(recorder.clone()),
        },
    )
    .expect("open");
    let seeded = seed(&store).await;

    // A refused change publishes nothing.
    let order = store
        .order(seeded.order_id)
        .await
        .expect("order")
        .expect("order");
    let workflow = Workflow::builtin("restaurant").expect("workflow");
    let actor = Actor {
        id: order.customer_id,
        role: Role::Cashier,
    };
    let mut stale = plan_transition(
        &workflow,
        &order,
        actor,
        "preparing",
        None,
        None,
        OffsetDateTime::now_utc(),
    )
    .expect("plan");
    stale.expected_version = 1;
    assert!(matches!(
        store.apply_status_change(stale).await,
        Err(StoreError::VersionConflict { current: 2 })
    ));

    let stored = store
        .events_after(EventFilter::Order(seeded.order_id), 0, 100)
        .await
        .expect("events");
    let published = recorder.0.lock().expect("lock").clone();
    assert_eq!(published, stored);
    assert_eq!(
        published.iter().map(|e| e.event.kind).collect::<Vec<_>>(),
        vec![EventKind::OrderCreated, EventKind::StatusChanged]
    );
}
