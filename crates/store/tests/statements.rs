//! The statement counter sees what each backend runs: the conformance case
//! that places orders is counted as its inserts, reads and transactions, on
//! SQLite and on PostgreSQL; a SQLite store opened while the statement
//! events are off reports nothing. Reading a session with its memberships
//! (every signed-in request does) is one statement on either backend.
//!
//! PostgreSQL: a throw-away schema on `ORDERTRACK_TEST_DATABASE_URL`
//! (default `postgres://postgres@127.0.0.1:5432/postgres`); without a
//! server the test says `SKIPPED` and passes, except with `CI=true`.

use std::sync::{Arc, OnceLock};

use ordertrack_domain::Role;
use ordertrack_store::conformance::{self, TestSchema};
use ordertrack_store::sqlite::SqliteOptions;
use ordertrack_store::statements::{Kind, StatementCounter, Statements};
use ordertrack_store::{NewSession, NewStore, NewUser, Repository, SqliteRepository};
use tokio::sync::{Mutex, MutexGuard};
use tracing_subscriber::prelude::*;

/// The process's counter. A `tracing` subscriber has to be global: the
/// writers run on threads and tasks of their own.
fn counter() -> &'static StatementCounter {
    static COUNTER: OnceLock<StatementCounter> = OnceLock::new();
    COUNTER.get_or_init(|| {
        let counter = StatementCounter::new();
        tracing_subscriber::registry()
            .with(counter.clone().with_filter(StatementCounter::filter()))
            .init();
        counter
    })
}

/// The counter sees every store in the process: tests take turns.
async fn turn() -> MutexGuard<'static, ()> {
    static TURN: Mutex<()> = Mutex::const_new(());
    TURN.lock().await
}

/// What running the `place_order` conformance case on `store` ran.
async fn place_orders(store: Arc<dyn Repository>) -> Statements {
    let before = counter().snapshot();
    conformance::place_order(store).await;
    counter().snapshot().since(&before)
}

/// The case places five orders, reads them back, and runs every write in
/// a transaction that `begin` opened and COMMIT (or ROLLBACK) ended.
fn assert_counted(ran: &Statements, begin: &str) {
    assert!(
        ran.starting_with("INSERT INTO orders ") >= 5,
        "five orders inserted: {ran:#?}"
    );
    assert!(ran.of_kind(Kind::Read) > 0, "reads counted: {ran:#?}");
    let opened = ran.count(begin);
    assert!(opened > 0, "{begin} counted: {ran:#?}");
    assert_eq!(
        opened,
        ran.count("COMMIT") + ran.count("ROLLBACK"),
        "every transaction opened is ended: {ran:#?}"
    );
    assert_eq!(
        Kind::ALL.iter().map(|&kind| ran.of_kind(kind)).sum::<u64>(),
        ran.total()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn placing_orders_is_counted_on_sqlite() {
    counter();
    let _turn = turn().await;
    let dir = tempfile::tempdir().expect("tempdir");
    let store = SqliteRepository::open(&dir.path().join("ordertrack.db"), SqliteOptions::default())
        .expect("open sqlite store");
    let ran = place_orders(Arc::new(store)).await;
    assert_counted(&ran, "BEGIN IMMEDIATE");
    assert!(ran.count("SAVEPOINT request") > 0, "savepoints counted");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn placing_orders_is_counted_on_postgresql() {
    counter();
    let _turn = turn().await;
    let Some(schema) = TestSchema::create_or_skip().await else {
        return;
    };
    let store = schema.open(4, None).await;
    let ran = place_orders(Arc::new(store)).await;
    assert_counted(&ran, "BEGIN");
    assert!(
        ran.count("SAVEPOINT request") > 0,
        "the writer's savepoints counted"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sqlite_store_opened_while_statement_events_are_off_reports_nothing() {
    counter();
    let _turn = turn().await;
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("ordertrack.db");
    let store = tracing::subscriber::with_default(tracing::subscriber::NoSubscriber::new(), || {
        SqliteRepository::open(&path, SqliteOptions::default())
    })
    .expect("open sqlite store");
    let ran = place_orders(Arc::new(store)).await;
    assert_eq!(ran, Statements::new(), "no callback registered");
}

/// What signing in with a live session runs, for a user who is staff of
/// two stores.
async fn signing_in(store: Arc<dyn Repository>) -> Statements {
    let user = store
        .create_user(NewUser {
            email: "casey@example.test".into(),
            name: "Casey".into(),
            password_hash: "not a real hash".into(),
            is_admin: false,
        })
        .await
        .expect("create_user");
    for slug in ["rosso", "verde"] {
        let shop = store
            .create_store(NewStore {
                slug: slug.into(),
                name: slug.into(),
                currency: "EUR".parse().expect("a currency code"),
                workflow: "restaurant".into(),
                order_prefix: "R".into(),
            })
            .await
            .expect("create_store");
        store
            .set_membership(user.id, shop.id, Role::Cashier)
            .await
            .expect("set_membership");
    }
    let now = time::OffsetDateTime::now_utc();
    store
        .create_session(NewSession {
            id: "session".into(),
            user_id: user.id,
            expires_at: now + time::Duration::hours(1),
        })
        .await
        .expect("create_session");
    let before = counter().snapshot();
    let identity = store
        .session_identity("session", now)
        .await
        .expect("session_identity")
        .expect("a live session");
    let ran = counter().snapshot().since(&before);
    assert_eq!(identity.memberships.len(), 2);
    ran
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_session_and_its_memberships_are_one_statement_on_sqlite() {
    counter();
    let _turn = turn().await;
    let dir = tempfile::tempdir().expect("tempdir");
    let store = SqliteRepository::open(&dir.path().join("ordertrack.db"), SqliteOptions::default())
        .expect("open sqlite store");
    let ran = signing_in(Arc::new(store)).await;
    assert_eq!((ran.total(), ran.of_kind(Kind::Read)), (1, 1), "{ran:#?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_session_and_its_memberships_are_one_statement_on_postgresql() {
    counter();
    let _turn = turn().await;
    let Some(schema) = TestSchema::create_or_skip().await else {
        return;
    };
    let store = schema.open(4, None).await;
    let ran = signing_in(Arc::new(store)).await;
    assert_eq!((ran.total(), ran.of_kind(Kind::Read)), (1, 1), "{ran:#?}");
}
