//! The PostgreSQL store: the shared conformance suite, plus what only a
//! server database shared by several instances needs (migrations under a
//! lock, gap-free event positions across instances, idempotent placement
//! across instances, the commit listener, append-only history).
//!
//! Every test gets a throw-away schema in the database at
//! `ORDERTRACK_TEST_DATABASE_URL` (default
//! `postgres://postgres@127.0.0.1:5432/postgres`), dropped when it ends.
//! Where no PostgreSQL is reachable each test says `SKIPPED` on stderr and
//! passes, except with `CI=true`, where it fails.

use std::collections::HashSet;
use std::sync::Arc;
use std::time::{Duration, Instant};

use ordertrack_domain::{Actor, EventKind, OrderId, Role, UserId, Workflow, plan_transition};
use ordertrack_store::conformance::{Backend, TestSchema};
use ordertrack_store::postgres::PgConnectOptions;
use ordertrack_store::{
    CommitListener, EventFilter, NewProduct, NewStore, PostgresRepository, Repository, StoreError,
    StoredEvent,
};
use sqlx::{PgConnection, Row};
use time::OffsetDateTime;

use crate::support::*;

/// The shared throw-away schema, opened the way these tests open stores.
struct Schema(TestSchema);

impl Schema {
    /// A new empty schema, or `None` (after saying why) without a server.
    async fn create() -> Option<Schema> {
        TestSchema::create_or_skip().await.map(Schema)
    }

    fn name(&self) -> &str {
        self.0.name()
    }

    /// Connection options whose tables live in this schema.
    fn options(&self) -> PgConnectOptions {
        self.0.options()
    }

    async fn open(&self, listener: Option<Arc<dyn CommitListener>>) -> PostgresRepository {
        self.0.open(4, listener).await
    }

    /// A plain connection into the schema, for looking under the store.
    async fn raw(&self) -> PgConnection {
        self.0.raw().await
    }
}

/// A fresh PostgreSQL store in its own schema, or `None` without a server.
async fn postgres() -> Option<Backend> {
    let schema = Schema::create().await?;
    let store = schema.open(None).await;
    Some(Backend::new(Arc::new(store), schema))
}

ordertrack_store::conformance_tests!(postgres);

// ---- PostgreSQL only ----

#[tokio::test]
async fn migrations_are_idempotent() {
    let Some(schema) = Schema::create().await else {
        return;
    };
    let timeout = Duration::from_secs(10);
    let first = PostgresRepository::migrate_with(&schema.options(), timeout)
        .await
        .expect("first migrate");
    assert!(first >= 1, "a fresh database gets every migration");
    assert_eq!(
        PostgresRepository::migrate_with(&schema.options(), timeout)
            .await
            .expect("second migrate"),
        0,
        "a migrated database needs nothing"
    );
    // Opening runs migrations too, and finds nothing to do.
    let store = schema.open(None).await;
    let f = shop(&store).await;
    place_and_confirm(&store, &f).await;
    assert_eq!(
        PostgresRepository::migrate_with(&schema.options(), timeout)
            .await
            .expect("third migrate"),
        0
    );
    assert_eq!(store.last_event_position().await.expect("position"), 2);
    let recorded: i64 = sqlx::query("SELECT COUNT(*) FROM schema_migrations")
        .fetch_one(&mut schema.raw().await)
        .await
        .expect("schema_migrations")
        .get(0);
    assert_eq!(recorded, first as i64);
}

#[tokio::test]
async fn migration_20_gives_kept_durations_their_band_of_the_day() {
    let Some(schema) = Schema::create().await else {
        return;
    };
    let store = schema.open(None).await;
    let f = shop(&store).await;
    let sql = samples_before_bands(&store, &f).await;
    drop(store);
    let mut raw = schema.raw().await;
    for statement in sql {
        sqlx::raw_sql(sqlx::AssertSqlSafe(statement))
            .execute(&mut raw)
            .await
            .expect("back to before migration 20");
    }
    let timeout = Duration::from_secs(10);
    let ran = PostgresRepository::migrate_with(&schema.options(), timeout)
        .await
        .expect("migrate");
    assert_eq!(ran, 1);
    samples_have_their_bands(&schema.open(None).await, &f).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn instances_starting_together_migrate_once() {
    let Some(schema) = Schema::create().await else {
        return;
    };
    let mut starting = Vec::new();
    for _ in 0..6 {
        let options = schema.options();
        starting.push(tokio::spawn(async move {
            PostgresRepository::migrate_with(&options, Duration::from_secs(30)).await
        }));
    }
    let mut applied = 0;
    for start in starting {
        applied += start
            .await
            .expect("task")
            .expect("concurrent migrations must not fail");
    }
    let recorded: i64 = sqlx::query("SELECT COUNT(*) FROM schema_migrations")
        .fetch_one(&mut schema.raw().await)
        .await
        .expect("schema_migrations")
        .get(0);
    assert_eq!(applied as i64, recorded, "each migration ran exactly once");
}

const WRITERS: usize = 8;
const CHANGES_PER_WRITER: usize = 500;

/// 8 tasks × 500 changes on one store, through two instances (two writers,
/// two connections, committing concurrently), while a reader keeps resuming
/// from the last id it saw: it sees every event exactly once, in order, and
/// the ids it sees are consecutive. Each instance's listener gets its own
/// commits in id order.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_writers_on_two_instances_resume_gap_free() {
    let Some(schema) = Schema::create().await else {
        return;
    };
    let recorders = [Arc::new(Recorder::default()), Arc::new(Recorder::default())];
    let instances: Vec<Arc<PostgresRepository>> = vec![
        Arc::new(schema.open(Some(recorders[0].clone())).await),
        Arc::new(schema.open(Some(recorders[1].clone())).await),
    ];
    let f = Arc::new(shop(&*instances[0]).await);
    let total = WRITERS * CHANGES_PER_WRITER;

    let reader = {
        let store = instances[1].clone();
        let shop = f.shop.id;
        tokio::spawn(async move {
            let deadline = Instant::now() + Duration::from_secs(240);
            let mut seen: Vec<StoredEvent> = Vec::new();
            let mut resumes = 0;
            while seen.len() < total && Instant::now() < deadline {
                let after = seen.last().map_or(0, |e| e.id);
                let page = store
                    .events_after(EventFilter::Store(shop), after, 100)
                    .await
                    .expect("events_after");
                resumes += 1;
                if let Some(first) = page.first() {
                    assert_eq!(
                        first.id,
                        after + 1,
                        "resuming after {after} must continue at the next id"
                    );
                }
                for pair in page.windows(2) {
                    assert_eq!(pair[1].id, pair[0].id + 1, "ids are consecutive");
                }
                if page.is_empty() {
                    tokio::time::sleep(Duration::from_millis(1)).await;
                }
                seen.extend(page);
            }
            (seen, resumes)
        })
    };

    let started = Instant::now();
    let mut writers = Vec::new();
    for n in 0..WRITERS {
        let store = instances[n % 2].clone();
        let f = f.clone();
        writers.push(tokio::spawn(async move {
            for _ in 0..CHANGES_PER_WRITER / 2 {
                place_and_confirm(&*store, &f).await;
            }
        }));
    }
    for writer in writers {
        writer.await.expect("writer task");
    }
    let elapsed = started.elapsed();
    let (streamed, resumes) = reader.await.expect("reader task");
    eprintln!(
        "{total} changes by {WRITERS} writers on 2 instances in {elapsed:?}; the reader resumed {resumes} times"
    );

    let stored = instances[0]
        .events_after(EventFilter::Store(f.shop.id), 0, (total * 2) as u32)
        .await
        .expect("events_after");
    assert_eq!(stored.len(), total, "exactly the committed events");
    assert_eq!(
        stored.iter().map(|e| e.id).collect::<Vec<_>>(),
        (1..=total as i64).collect::<Vec<_>>(),
        "ids are 1..=N: gap-free, in commit order"
    );
    assert_eq!(
        stored.iter().map(|e| e.store_seq).collect::<Vec<_>>(),
        (1..=total as i64).collect::<Vec<_>>(),
        "the store's sequence is 1..=N"
    );
    assert_eq!(
        streamed, stored,
        "a reader resuming from the last id it saw gets every event, once, in order"
    );
    for event in &stored {
        let expected = match event.event.kind {
            EventKind::OrderCreated => 1,
            EventKind::StatusChanged => 2,
            other => panic!("unexpected event {other:?}"),
        };
        assert_eq!(event.event.order_version, expected);
    }
    assert_eq!(
        instances[1].last_event_position().await.expect("position"),
        total as i64
    );

    // Each listener saw its own instance's commits, in id order; together,
    // every event exactly once.
    let mut all = Vec::new();
    for recorder in &recorders {
        let ids = recorder.ids();
        assert!(!ids.is_empty(), "both instances wrote");
        assert!(
            ids.windows(2).all(|pair| pair[0] < pair[1]),
            "a listener gets its commits in id order"
        );
        all.extend(ids);
    }
    all.sort_unstable();
    assert_eq!(all, (1..=total as i64).collect::<Vec<_>>());
}

/// 20 identical requests with one idempotency key, sent at once through
/// two instances: one order, one event; every request gets that order.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn idempotent_placement_across_instances() {
    let Some(schema) = Schema::create().await else {
        return;
    };
    let instances: Vec<Arc<PostgresRepository>> = vec![
        Arc::new(schema.open(None).await),
        Arc::new(schema.open(None).await),
    ];
    let f = Arc::new(shop(&*instances[0]).await);
    let request = new_order(&f, Some(("key-1", "hash-1")));
    let mut tasks = Vec::new();
    for n in 0..20 {
        let store = instances[n % 2].clone();
        let request = request.clone();
        tasks.push(tokio::spawn(
            async move { store.place_order(request).await },
        ));
    }
    let mut created = 0;
    let mut ids = HashSet::new();
    for task in tasks {
        let placed = task
            .await
            .expect("task")
            .expect("an identical request succeeds");
        created += usize::from(placed.created);
        ids.insert(placed.order.id);
    }
    assert_eq!(created, 1, "exactly one request creates the order");
    assert_eq!(ids.len(), 1, "every request gets the same order");
    let events = instances[1]
        .events_after(EventFilter::Store(f.shop.id), 0, 100)
        .await
        .expect("events");
    assert_eq!(events.len(), 1, "one order_created event");
    assert!(matches!(
        instances[1]
            .place_order(new_order(&f, Some(("key-1", "hash-2"))))
            .await,
        Err(StoreError::IdempotencyMismatch)
    ));
    // The next order gets the next number: the losers used none.
    let next = instances[0]
        .place_order(new_order(&f, None))
        .await
        .expect("place_order");
    assert_eq!(next.order.number, "R-000002");
}

/// Many status changes at once land in one batch, where changes of
/// distinct orders are applied together: each still succeeds or fails on
/// its own (stale, unknown order, unknown actor, same order twice), and
/// only the successful ones leave history and events.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn status_changes_in_one_batch_fail_alone() {
    let Some(schema) = Schema::create().await else {
        return;
    };
    let recorder = Arc::new(Recorder::default());
    let store = Arc::new(schema.open(Some(recorder.clone())).await);
    let f = shop(&*store).await;
    let workflow = Workflow::builtin("restaurant").expect("workflow");
    let cashier = Actor {
        id: f.customer.id,
        role: Role::Cashier,
    };
    for round in 0..5 {
        let mut orders = Vec::new();
        for _ in 0..12 {
            orders.push(
                store
                    .place_order(new_order(&f, None))
                    .await
                    .expect("place_order")
                    .order,
            );
        }
        let plan = |order: &ordertrack_domain::Order| {
            plan_transition(
                &workflow,
                order,
                cashier,
                "confirmed",
                None,
                Some(order.version),
                OffsetDateTime::now_utc(),
            )
            .expect("plan")
        };
        // (change, what must come of it)
        let mut requests = Vec::new();
        for order in &orders[..8] {
            requests.push((plan(order), "ok"));
        }
        requests.push((plan(&orders[0]), "conflict")); // the same order twice
        let mut stale = plan(&orders[8]);
        stale.expected_version = 7;
        requests.push((stale, "stale"));
        let mut ghost = plan(&orders[9]);
        ghost.order_id = OrderId::new(ghost.order_id.get() + 1_000_000);
        requests.push((ghost, "not found"));
        let mut stranger = plan(&orders[10]);
        stranger.history.actor.id = UserId::new(stranger.history.actor.id.get() + 1_000_000);
        requests.push((stranger, "error"));
        for order in &orders[11..] {
            requests.push((plan(order), "ok"));
        }

        let before = store
            .events_after(EventFilter::Store(f.shop.id), 0, 10_000)
            .await
            .expect("events")
            .len();
        let mut tasks = Vec::new();
        for (change, expected) in requests {
            let store = store.clone();
            tasks.push(tokio::spawn(async move {
                (
                    store.apply_status_change(change.clone()).await,
                    change,
                    expected,
                )
            }));
        }
        let mut applied = 0;
        for task in tasks {
            let (result, change, expected) = task.await.expect("task");
            match (expected, &result) {
                ("ok", Ok(order)) => {
                    applied += 1;
                    assert_eq!(order.id, change.order_id);
                    assert_eq!(order.version, 2);
                    assert_eq!(order.status, "confirmed");
                }
                // The duplicate may run first; then the planned "ok" one conflicts.
                ("conflict", Err(StoreError::VersionConflict { current: 2 }))
                | ("conflict", Ok(_))
                | ("stale", Err(StoreError::VersionConflict { current: 1 }))
                | ("not found", Err(StoreError::NotFound(_)))
                | ("error", Err(_)) => applied += usize::from(result.is_ok()),
                ("ok", Err(StoreError::VersionConflict { current: 2 }))
                    if change.order_id == orders[0].id => {}
                _ => panic!("round {round}: expected {expected}, got {result:?}"),
            }
        }
        assert_eq!(applied, 9, "round {round}: 9 orders confirmed once each");
        for (n, order) in orders.iter().enumerate() {
            let now = store.order(order.id).await.expect("order").expect("order");
            let history = store.history(order.id).await.expect("history");
            let changed = n < 8 || n == 11;
            assert_eq!(now.version, if changed { 2 } else { 1 }, "order {n}");
            assert_eq!(history.len(), if changed { 2 } else { 1 }, "order {n}");
        }
        let events = store
            .events_after(EventFilter::Store(f.shop.id), 0, 10_000)
            .await
            .expect("events");
        assert_eq!(
            events.len(),
            before + 9,
            "round {round}: one event per change"
        );
        assert_eq!(
            events.iter().map(|e| e.store_seq).collect::<Vec<_>>(),
            (1..=events.len() as i64).collect::<Vec<_>>()
        );
        assert_eq!(
            events.iter().map(|e| e.id).collect::<Vec<_>>(),
            (1..=events.len() as i64).collect::<Vec<_>>()
        );
    }
    let stored = store.events_since(0, 10_000).await.expect("events");
    assert_eq!(*recorder.0.lock().expect("lock"), stored);
}

/// One customer's idempotency key raced by two instances for two different
/// stores (which they do not lock against each other): the unique key
/// decides, one order is placed, every other request replays it or is
/// refused as a mismatch, and nothing else is written.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn idempotency_key_races_across_stores() {
    let Some(schema) = Schema::create().await else {
        return;
    };
    let instances: Vec<Arc<PostgresRepository>> = vec![
        Arc::new(schema.open(None).await),
        Arc::new(schema.open(None).await),
    ];
    let rosso = shop(&*instances[0]).await;
    let verde_shop = instances[0]
        .create_store(NewStore {
            slug: "verde".into(),
            name: "Verde".into(),
            currency: "EUR".parse().expect("a currency code"),
            workflow: "restaurant".into(),
            order_prefix: "V".into(),
        })
        .await
        .expect("create_store");
    let salad = instances[0]
        .create_product(
            verde_shop.id,
            NewProduct {
                name: "Salad".into(),
                description: String::new(),
                price_minor: 700,
                station: "cold".into(),
                available: true,
            },
        )
        .await
        .expect("create_product");
    let verde = Shop {
        shop: verde_shop,
        burger: salad,
        customer: rosso.customer.clone(),
    };
    for round in 0..5 {
        let key = format!("key-{round}");
        let mut tasks = Vec::new();
        for n in 0..20 {
            let store = instances[n % 2].clone();
            let (shop, hash) = if n % 2 == 0 {
                (&rosso, "hash-rosso")
            } else {
                (&verde, "hash-verde")
            };
            let request = new_order(shop, Some((&key, hash)));
            tasks.push(tokio::spawn(
                async move { store.place_order(request).await },
            ));
        }
        let mut created = 0;
        let mut orders = HashSet::new();
        for task in tasks {
            match task.await.expect("task") {
                Ok(placed) => {
                    created += usize::from(placed.created);
                    orders.insert(placed.order.id);
                }
                Err(StoreError::IdempotencyMismatch) => {}
                Err(other) => panic!("round {round}: {other:?}"),
            }
        }
        assert_eq!(created, 1, "round {round}: one order is placed");
        assert_eq!(orders.len(), 1, "round {round}: replays get that order");
    }
    let mut total = 0;
    for shop in [&rosso, &verde] {
        let events = instances[1]
            .events_after(EventFilter::Store(shop.shop.id), 0, 100)
            .await
            .expect("events");
        assert_eq!(
            events.iter().map(|e| e.store_seq).collect::<Vec<_>>(),
            (1..=events.len() as i64).collect::<Vec<_>>()
        );
        total += events.len();
    }
    assert_eq!(total, 5, "one order (and event) per key");
}

#[tokio::test]
async fn commit_listener_sees_exactly_the_committed_events() {
    let Some(schema) = Schema::create().await else {
        return;
    };
    let recorder = Arc::new(Recorder::default());
    let store = schema.open(Some(recorder.clone())).await;
    listener_sees_exactly_the_committed_events(&store, &recorder).await;
}

#[tokio::test]
async fn status_history_is_append_only() {
    let Some(schema) = Schema::create().await else {
        return;
    };
    let store = schema.open(None).await;
    let f = shop(&store).await;
    place_and_confirm(&store, &f).await;
    let mut conn = schema.raw().await;
    for sql in [
        "UPDATE status_history SET to_status = 'completed'",
        "DELETE FROM status_history",
        "TRUNCATE status_history",
    ] {
        let error = sqlx::query(sql)
            .execute(&mut conn)
            .await
            .expect_err("changing status history must fail");
        assert!(
            error.to_string().contains("append-only"),
            "unexpected error: {error}"
        );
    }
    let rows: i64 = sqlx::query("SELECT COUNT(*) FROM status_history")
        .fetch_one(&mut conn)
        .await
        .expect("count")
        .get(0);
    assert_eq!(rows, 2);
}

/// The database drops the store's connections (a restart, a failover, an
/// idle timeout): the next writes and reads work on new connections.
#[tokio::test]
async fn lost_connections_are_replaced() {
    let Some(schema) = Schema::create().await else {
        return;
    };
    let store = schema.open(None).await;
    let f = shop(&store).await;
    place_and_confirm(&store, &f).await;
    let mut conn = schema.raw().await;
    let killed: i64 = sqlx::query(
        "SELECT COUNT(pg_terminate_backend(pid)) FROM pg_stat_activity
         WHERE application_name = $1 AND pid <> pg_backend_pid()",
    )
    .bind(schema.name())
    .fetch_one(&mut conn)
    .await
    .expect("terminate")
    .get(0);
    assert!(
        killed >= 2,
        "the writer's and a reader's connection were dropped"
    );
    tokio::time::sleep(Duration::from_millis(100)).await;

    place_and_confirm(&store, &f).await;
    assert_eq!(store.last_event_position().await.expect("position"), 4);
    let events = store
        .events_after(EventFilter::Store(f.shop.id), 0, 100)
        .await
        .expect("events");
    assert_eq!(
        events.iter().map(|e| e.id).collect::<Vec<_>>(),
        vec![1, 2, 3, 4]
    );
}

#[tokio::test]
async fn data_survives_reconnect() {
    let Some(schema) = Schema::create().await else {
        return;
    };
    let store = schema.open(None).await;
    let f = shop(&store).await;
    place_and_confirm(&store, &f).await;
    let events = store
        .events_after(EventFilter::Store(f.shop.id), 0, 100)
        .await
        .expect("events");
    drop(store);

    let reopened = schema.open(None).await;
    assert_eq!(
        reopened
            .events_after(EventFilter::Store(f.shop.id), 0, 100)
            .await
            .expect("events"),
        events
    );
    // Positions continue where they were.
    place_and_confirm(&reopened, &f).await;
    assert_eq!(reopened.last_event_position().await.expect("position"), 4);
    assert!(
        reopened
            .user_credentials("ALICE@example.test")
            .await
            .expect("credentials")
            .is_some()
    );
}

/// A statement cut off by the server's statement timeout is the store's
/// `TimedOut` (answered 503 with `Retry-After`, never a 500): what a report
/// over a very long range meets.
#[tokio::test]
async fn a_statement_past_the_timeout_is_timed_out() {
    let Some(schema) = Schema::create().await else {
        return;
    };
    let mut conn = schema.raw().await;
    sqlx::query("SET statement_timeout = '20ms'")
        .execute(&mut conn)
        .await
        .expect("set a statement timeout");
    let error = sqlx::query("SELECT pg_sleep(2)")
        .execute(&mut conn)
        .await
        .expect_err("the timeout cuts it off");
    assert!(
        matches!(StoreError::from(error), StoreError::TimedOut),
        "a timed-out statement"
    );
}
