//! The conformance suite every [`Repository`](crate::Repository) implementation must pass.
//!
//! The suite is written once, against the trait only, so every backend runs
//! the same cases. Each case is a `pub async fn case(store: Arc<dyn Repository>)`
//! that panics when the backend breaks the contract; it expects a fresh,
//! empty, migrated store. A backend's test file provides a factory and
//! expands [`conformance_tests!`](crate::conformance_tests), which makes one
//! `#[tokio::test]` per case (the test crate needs `tokio` with the `macros`
//! and `rt-multi-thread` features):
//!
//! ```text
//! async fn sqlite() -> ordertrack_store::conformance::Backend {
//!     let dir = tempfile::tempdir().unwrap();
//!     let store = SqliteRepository::open(&dir.path().join("t.db"), Default::default()).unwrap();
//!     ordertrack_store::conformance::Backend::new(Arc::new(store), dir)
//! }
//! ordertrack_store::conformance_tests!(sqlite);
//! ```
//!
//! Orders and their changes are decided with the domain's own functions
//! (`plan_transition`, `plan_item_status`, `plan_bump`, `plan_hand_off`,
//! `order_total`, `OrderSummary::of`), as the
//! application does, so the cases exercise exactly what the store is given
//! in production.

use std::any::Any;
use std::collections::{BTreeMap, HashSet};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration as StdDuration, Instant};

use ordertrack_domain::{
    Actor, AssignedDriver, AssignmentStep, DayBand, EventKind, Fulfilment, FulfilmentKind,
    Fulfilments, ItemId, ItemStatus, ItemStatusChange, KitchenError, OpeningHours, Order, OrderId,
    OrderPlan, Payment, PaymentMethod, PaymentMethods, PaymentRequest, PaymentStatus, PaymentStep,
    PlanStep, ProductId, Role, StatusChange, StatusKey, StoreId, StoreStatus, StoreZone, UserId,
    Workflow, order_created, plan_assignment, plan_bump, plan_hand_off, plan_item_status,
    plan_payment, plan_transition,
};
use time::{Duration, OffsetDateTime};

use crate::{
    Acceptance, AccessChange, AccessEvent, CacheMarks, DriverScope, EventFilter, IdempotencyClaim,
    IdempotencyOutcome, Identity, Invitation, LogEntry, NewInvitation, NewOrder, NewPrintJob,
    NewPrinter, NewProduct, NewReview, NewSession, NewStore, NewStoreWorkflow, NewUser,
    OrderInStore, OrderKey, OrderPage, OrderQuery, OrderScope, PlacedOrder, PrintKind,
    PrintOutcome, PrintStatus, Product, ProductPatch, ReportQuery, ReportRows, Repository,
    StoreError, StoreOpening, StoreRecord, StoreSettings, StoreSettingsPatch, StoreWorkflow,
    StoredEvent, StoredResponse, User,
};
use crate::{AttemptOutcome, DeliveryState, NewWebhook, WebhookAttempt, WebhookEnqueue};

/// A store under test plus whatever keeps its data alive (a temporary
/// directory, a throw-away database schema, ...) until the test ends.
pub struct Backend {
    // Field order matters: the store is dropped before its guard.
    store: Arc<dyn Repository>,
    _guard: Box<dyn Any + Send>,
}

impl Backend {
    /// A fresh, empty, migrated store and the guard that cleans up after it.
    pub fn new(store: Arc<dyn Repository>, guard: impl Any + Send) -> Self {
        Backend {
            store,
            _guard: Box::new(guard),
        }
    }

    /// The store under test.
    pub fn store(&self) -> Arc<dyn Repository> {
        self.store.clone()
    }
}

/// What a backend's factory returns: a [`Backend`], or `Option<Backend>`
/// for a backend that may be missing where the tests run (an external
/// database server): `None` skips the case.
pub trait IntoBackend {
    /// The backend to test, or `None` to skip.
    fn into_backend(self) -> Option<Backend>;
}

impl IntoBackend for Backend {
    fn into_backend(self) -> Option<Backend> {
        Some(self)
    }
}

impl IntoBackend for Option<Backend> {
    fn into_backend(self) -> Option<Backend> {
        self
    }
}

/// Expands to one `#[tokio::test]` per conformance case, in a module named
/// `store_conformance`. `$factory` is the path of an
/// `async fn() -> ordertrack_store::conformance::Backend` that returns a
/// fresh, empty store for each test (or of one returning
/// `Option<Backend>`; see [`IntoBackend`]).
#[macro_export]
macro_rules! conformance_tests {
    ($factory:path) => {
        $crate::conformance_tests!(@cases $factory;
            users,
            sessions,
            stores,
            store_settings,
            store_workflows,
            memberships,
            invitations,
            products,
            store_menu,
            place_order,
            idempotency,
            change_idempotency_keys,
            orders_scopes,
            orders_status_filter,
            orders_search,
            orders_search_wildcards_are_literal,
            orders_paging,
            status_counts,
            apply_status_change,
            payment_changes,
            answers_as_the_change_leaves_the_order,
            driver_assignment,
            reviews,
            printing,
            apply_item_change,
            orders_status_set_fulfilment_and_oldest_first,
            apply_plan,
            failed_plans_write_nothing,
            events_after,
            events_since,
            access_changes,
            cache_marks,
            last_event_position,
            report_rows,
            report_rollups_match_the_history,
            eta_durations,
            eta_durations_keep_the_most_recent,
            queued_orders_are_the_oldest_in_the_statuses,
            failed_requests_write_nothing,
            concurrent_writers_keep_events_gap_free,
            concurrent_changes_with_same_version,
            concurrent_mixed_changes,
            concurrent_creations,
            webhooks,
            webhook_deliveries,
            email_outbox,
            outbox_pruning,
        );
    };
    (@cases $factory:path; $($case:ident),+ $(,)?) => {
        /// The backend-independent store conformance suite.
        mod store_conformance {
            #[allow(unused_imports)]
            use super::*;
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
                async fn $case() {
                    // A factory may return `Option<Backend>`: `None` skips
                    // the case (the factory says why).
                    let Some(backend) =
                        $crate::conformance::IntoBackend::into_backend($factory().await)
                    else {
                        return;
                    };
                    $crate::conformance::$case(backend.store()).await;
                    drop(backend);
                }
            )+
        }
    };
}

// ---- fixtures ----

/// The current time, truncated to microseconds (what every backend keeps).
fn now() -> OffsetDateTime {
    let now = OffsetDateTime::now_utc();
    now.replace_nanosecond(now.nanosecond() / 1_000 * 1_000)
        .expect("a valid nanosecond")
}

fn restaurant() -> Workflow {
    Workflow::builtin("restaurant").expect("the built-in restaurant workflow")
}

async fn user(store: &dyn Repository, email: &str, name: &str) -> User {
    store
        .create_user(NewUser {
            email: email.into(),
            name: name.into(),
            password_hash: format!("hash-of-{email}"),
            is_admin: false,
        })
        .await
        .expect("create_user")
}

/// Kim, signed in at `at` for an hour (session `kim-session`).
async fn kim_signed_in(store: &dyn Repository, at: OffsetDateTime) -> User {
    let kim = user(store, "kim@example.test", "Kim").await;
    store
        .create_session(NewSession {
            id: "kim-session".into(),
            user_id: kim.id,
            expires_at: at + Duration::hours(1),
        })
        .await
        .expect("create_session");
    kim
}

/// Signs Kim in and out again; returns the access change the logout logs
/// (what a backend's commit listener must hear of it).
pub async fn sign_kim_in_and_out(store: &dyn Repository) -> crate::AccessChange {
    kim_signed_in(store, now()).await;
    store
        .delete_session("kim-session")
        .await
        .expect("delete_session");
    crate::AccessChange::SessionEnded {
        session_id: "kim-session".into(),
    }
}

/// Checks what a backend's commit listener heard (`published`) after an
/// order was placed and confirmed, a change was refused, and Kim signed in
/// and out: exactly the log as stored, ending with the logout.
pub fn assert_published_in_full(
    published: &[LogEntry], stored: &[LogEntry], logged_out: crate::AccessChange,
) {
    assert_eq!(published, stored);
    assert_eq!(
        published
            .iter()
            .filter_map(LogEntry::order_event)
            .map(|e| e.event.kind)
            .collect::<Vec<_>>(),
        vec![EventKind::OrderCreated, EventKind::StatusChanged]
    );
    assert_eq!(
        published.last(),
        Some(&LogEntry::Access(AccessEvent {
            id: published.len() as i64,
            change: logged_out,
        }))
    );
}

async fn shop(store: &dyn Repository, slug: &str, name: &str, prefix: &str) -> StoreRecord {
    store
        .create_store(NewStore {
            slug: slug.into(),
            name: name.into(),
            currency: "EUR".parse().expect("a currency code"),
            workflow: "restaurant".into(),
            order_prefix: prefix.into(),
        })
        .await
        .expect("create_store")
}

async fn product(
    store: &dyn Repository, shop: &StoreRecord, name: &str, price_minor: i64, station: &str,
) -> Product {
    store
        .create_product(
            shop.id,
            NewProduct {
                name: name.into(),
                description: format!("{name}, freshly made"),
                price_minor,
                station: station.into(),
                available: true,
            },
        )
        .await
        .expect("create_product")
}

/// A restaurant with a small menu, a customer and a cashier.
struct Fixture {
    shop: StoreRecord,
    menu: Vec<Product>,
    customer: User,
    cashier: User,
}

impl Fixture {
    async fn new(store: &dyn Repository) -> Self {
        let shop = shop(store, "rosso", "Rosso", "R").await;
        let menu = vec![
            product(store, &shop, "Burger", 950, "grill").await,
            product(store, &shop, "Fries", 390, "fryer").await,
            product(store, &shop, "Lemonade", 350, "drinks").await,
        ];
        let customer = user(store, "alice@example.test", "Alice Anders").await;
        let cashier = user(store, "cashier@example.test", "Cass Cashier").await;
        store
            .set_membership(cashier.id, shop.id, Role::Cashier)
            .await
            .expect("set_membership");
        Fixture {
            shop,
            menu,
            customer,
            cashier,
        }
    }

    fn cashier(&self) -> Actor {
        Actor {
            id: self.cashier.id,
            role: Role::Cashier,
        }
    }

    /// Burger ×2 and Fries ×1.
    fn lines(&self) -> Vec<(&Product, u32)> {
        vec![(&self.menu[0], 2), (&self.menu[1], 1)]
    }
}

fn customer_actor(customer: &User) -> Actor {
    Actor {
        id: customer.id,
        role: Role::Customer,
    }
}

/// An order request as the application builds it.
fn new_order(shop: &StoreRecord, customer: &User, lines: &[(&Product, u32)]) -> NewOrder {
    crate::testing::order_placed_at(shop, &restaurant(), customer.id, lines, now())
}

async fn place(
    store: &dyn Repository, shop: &StoreRecord, customer: &User, lines: &[(&Product, u32)],
) -> Order {
    let placed = store
        .place_order(new_order(shop, customer, lines))
        .await
        .expect("place_order");
    assert!(placed.created, "a new order is reported as created");
    placed.order
}

/// Decides a status change the way the application does.
fn plan(order: &Order, actor: Actor, to: &str) -> StatusChange {
    plan_transition(
        &restaurant(),
        order,
        actor,
        to,
        None,
        Some(order.version),
        now(),
    )
    .unwrap_or_else(|e| panic!("{} -> {to} must be allowed: {e}", order.status))
}

/// Decides marking an order paid the way the application does.
fn plan_paid(order: &Order, actor: Actor) -> StatusChange {
    plan_payment(
        &restaurant(),
        order,
        actor,
        PaymentRequest::Paid { note: None },
        Some(order.version),
        now(),
    )
    .expect("the order can be marked paid")
}

/// Decides and applies a status change.
async fn advance(store: &dyn Repository, order: &Order, actor: Actor, to: &str) -> Order {
    store
        .apply_status_change(plan(order, actor, to))
        .await
        .unwrap_or_else(|e| panic!("apply_status_change {} -> {to}: {e}", order.status))
}

/// A second store, "verde", with a salad, and a second customer, Bob.
async fn verde_and_bob(store: &dyn Repository) -> (StoreRecord, Product, User) {
    let verde = shop(store, "verde", "Verde", "V").await;
    let salad = product(store, &verde, "Salad", 700, "cold").await;
    let bob = user(store, "bob@example.test", "Bob Brown").await;
    (verde, salad, bob)
}

/// A kitchen member, Kai, as an actor.
async fn cook(store: &dyn Repository) -> Actor {
    let kitchen = user(store, "kai@example.test", "Kai Kitchen").await;
    Actor {
        id: kitchen.id,
        role: Role::Kitchen,
    }
}

/// Patches a store's product: the product afterwards, `None` if the store
/// has no such product.
async fn patch_product(
    store: &dyn Repository, shop: StoreId, product: ProductId, patch: ProductPatch,
) -> Option<Product> {
    store
        .update_product(shop, product, patch)
        .await
        .expect("update_product")
}

async fn events(store: &dyn Repository, filter: EventFilter) -> Vec<StoredEvent> {
    store
        .events_after(filter, 0, 10_000)
        .await
        .expect("events_after")
}

async fn order_ids(store: &dyn Repository, query: OrderQuery) -> Vec<OrderId> {
    store
        .orders(query)
        .await
        .expect("orders")
        .orders
        .iter()
        .map(|o| o.id)
        .collect()
}

/// How many orders a scope lists (up to 100).
async fn order_count(store: &dyn Repository, scope: OrderScope) -> usize {
    order_ids(store, query(scope)).await.len()
}

fn query(scope: OrderScope) -> OrderQuery {
    OrderQuery::newest(scope, 100)
}

fn search(shop: &StoreRecord, text: &str) -> OrderQuery {
    OrderQuery {
        search: Some(text.into()),
        ..query(OrderScope::Store(shop.id))
    }
}

fn assert_strictly_increasing(events: &[StoredEvent]) {
    for pair in events.windows(2) {
        assert!(
            pair[0].id < pair[1].id,
            "event ids must increase: {} then {}",
            pair[0].id,
            pair[1].id
        );
    }
}

fn assert_store_seq_gap_free(events: &[StoredEvent]) {
    let seqs: Vec<i64> = events.iter().map(|e| e.store_seq).collect();
    let expected: Vec<i64> = (1..=events.len() as i64).collect();
    assert_eq!(
        seqs, expected,
        "store_seq must be exactly 1..=n in id order"
    );
}

// ---- users and sessions ----

/// Users: create, unique email (case-insensitive), lookups.
pub async fn users(store: Arc<dyn Repository>) {
    let store = &*store;
    let alice = store
        .create_user(NewUser {
            email: "Alice@Example.TEST".into(),
            name: "Alice Anders".into(),
            password_hash: "hash-a".into(),
            is_admin: false,
        })
        .await
        .expect("create_user");
    assert_eq!(alice.email, "alice@example.test", "emails are lower-cased");
    assert_eq!(alice.name, "Alice Anders");
    assert!(!alice.is_admin);

    let admin = store
        .create_user(NewUser {
            email: "root@example.test".into(),
            name: "Root".into(),
            password_hash: "hash-r".into(),
            is_admin: true,
        })
        .await
        .expect("create admin");
    assert!(admin.is_admin);
    assert_ne!(admin.id, alice.id);

    for email in ["alice@example.test", "ALICE@example.test"] {
        let duplicate = store
            .create_user(NewUser {
                email: email.into(),
                name: "Another Alice".into(),
                password_hash: "hash-b".into(),
                is_admin: false,
            })
            .await;
        assert!(
            matches!(duplicate, Err(StoreError::Conflict(_))),
            "a taken email ({email}) is a Conflict, got {duplicate:?}"
        );
    }

    // Confusable with alice's (a Cyrillic `а` in either part): taken too.
    for email in ["\u{430}lice@example.test", "alice@ex\u{430}mple.test"] {
        let confusable = store
            .create_user(NewUser {
                email: email.into(),
                name: "Mallory".into(),
                password_hash: "hash-m".into(),
                is_admin: false,
            })
            .await;
        assert!(
            matches!(confusable, Err(StoreError::Conflict(_))),
            "an email confusable with a taken one ({email}) is a Conflict, got {confusable:?}"
        );
    }

    for email in [
        "alice@example.test",
        "ALICE@EXAMPLE.TEST",
        "Alice@Example.Test",
    ] {
        let credentials = store
            .user_credentials(email)
            .await
            .expect("user_credentials")
            .unwrap_or_else(|| panic!("{email} finds alice"));
        assert_eq!(credentials.user, alice);
        assert_eq!(credentials.password_hash, "hash-a");
    }
    assert!(
        store
            .user_credentials("nobody@example.test")
            .await
            .expect("user_credentials")
            .is_none()
    );

    assert_eq!(
        store.user(alice.id).await.expect("user"),
        Some(alice.clone())
    );
    assert_eq!(
        store.user(admin.id).await.expect("user"),
        Some(admin.clone())
    );
    assert_eq!(
        store
            .user(UserId::new(alice.id.max(admin.id).get() + 1000))
            .await
            .expect("user"),
        None
    );
}

/// The identity of the live session `session-live` at `at`.
async fn live_identity(store: &dyn Repository, at: OffsetDateTime) -> Identity {
    store
        .session_identity("session-live", at)
        .await
        .expect("session_identity")
        .expect("a live session has an identity")
}

/// Sessions: a live session yields the identity with its memberships;
/// expired and deleted sessions yield nothing.
pub async fn sessions(store: Arc<dyn Repository>) {
    let store = &*store;
    let alice = user(store, "alice@example.test", "Alice").await;
    let shop = shop(store, "rosso", "Rosso", "R").await;
    let at = now();
    store
        .create_session(NewSession {
            id: "session-live".into(),
            user_id: alice.id,
            expires_at: at + Duration::hours(1),
        })
        .await
        .expect("create_session");
    store
        .create_session(NewSession {
            id: "session-expired".into(),
            user_id: alice.id,
            expires_at: at - Duration::seconds(1),
        })
        .await
        .expect("create_session");

    let identity = live_identity(store, at).await;
    assert_eq!(identity.user, alice);
    assert_eq!(identity.session_id, "session-live");
    assert!(identity.memberships.is_empty());
    assert_eq!(identity.role_in(shop.id), None);

    store
        .set_membership(alice.id, shop.id, Role::Kitchen)
        .await
        .expect("set_membership");
    let identity = live_identity(store, at).await;
    assert_eq!(identity.memberships.len(), 1);
    assert_eq!(identity.memberships[0].store_id, shop.id);
    assert_eq!(identity.memberships[0].store_slug, "rosso");
    assert_eq!(identity.memberships[0].role, Role::Kitchen);
    assert_eq!(identity.role_in(shop.id), Some(Role::Kitchen));

    // Every membership, by store slug; the user's read once.
    let other = self::shop(store, "azzurro", "Azzurro", "A").await;
    store
        .set_membership(alice.id, other.id, Role::Owner)
        .await
        .expect("set_membership");
    let identity = live_identity(store, at).await;
    assert_eq!(identity.user, alice);
    let held: Vec<_> = identity
        .memberships
        .iter()
        .map(|m| (m.store_id, m.store_slug.as_str(), m.role))
        .collect();
    assert_eq!(
        held,
        [
            (other.id, "azzurro", Role::Owner),
            (shop.id, "rosso", Role::Kitchen)
        ]
    );

    assert!(
        store
            .session_identity("session-expired", at)
            .await
            .expect("session_identity")
            .is_none(),
        "an expired session has no identity"
    );
    assert!(
        store
            .session_identity("session-live", at + Duration::hours(2))
            .await
            .expect("session_identity")
            .is_none(),
        "a session is dead once its expiry has passed"
    );
    assert!(
        store
            .session_identity("no-such-session", at)
            .await
            .expect("session_identity")
            .is_none()
    );

    store
        .delete_session("session-live")
        .await
        .expect("delete_session");
    assert!(
        store
            .session_identity("session-live", at)
            .await
            .expect("session_identity")
            .is_none(),
        "a deleted session has no identity"
    );
    store
        .delete_session("no-such-session")
        .await
        .expect("deleting an unknown session is not an error");
}

// ---- stores, staff and products ----

/// Stores: create, unique slug, list by name, lookups.
pub async fn stores(store: Arc<dyn Repository>) {
    let store = &*store;
    assert!(store.stores().await.expect("stores").is_empty());
    let bravo = shop(store, "bravo-bar", "Bravo Bar", "B").await;
    let alpha = store
        .create_store(NewStore {
            slug: "alpha-shop".into(),
            name: "Alpha Shop".into(),
            currency: "USD".parse().expect("a currency code"),
            workflow: "retail".into(),
            order_prefix: "A".into(),
        })
        .await
        .expect("create_store");
    assert_eq!(alpha.slug, "alpha-shop");
    assert_eq!(alpha.name, "Alpha Shop");
    assert_eq!(alpha.currency, "USD");
    assert_eq!(alpha.workflow, "retail");
    assert_eq!(alpha.order_prefix, "A");
    assert_ne!(alpha.id, bravo.id);

    let duplicate = store
        .create_store(NewStore {
            slug: "bravo-bar".into(),
            name: "Another Bravo".into(),
            currency: "EUR".parse().expect("a currency code"),
            workflow: "restaurant".into(),
            order_prefix: "X".into(),
        })
        .await;
    assert!(
        matches!(duplicate, Err(StoreError::Conflict(_))),
        "a taken slug is a Conflict, got {duplicate:?}"
    );

    assert_eq!(
        store.stores().await.expect("stores"),
        vec![alpha.clone(), bravo.clone()],
        "stores are listed by name"
    );
    assert_eq!(
        store.store_by_slug("alpha-shop").await.expect("by slug"),
        Some(alpha.clone())
    );
    assert_eq!(store.store_by_slug("nope").await.expect("by slug"), None);
    assert_eq!(
        store.store(bravo.id).await.expect("by id"),
        Some(bravo.clone())
    );
    assert_eq!(
        store
            .store(StoreId::new(alpha.id.max(bravo.id).get() + 1000))
            .await
            .expect("by id"),
        None
    );
}

/// A store's own workflow versions: numbered from 1 per store, read one by
/// one or the newest, never changed; orders record the version they were
/// placed under (0 by default: the store's built-in).
pub async fn store_workflows(store: Arc<dyn Repository>) {
    let store = &*store;
    let f = Fixture::new(store).await;
    let other = shop(store, "verde", "Verde", "V").await;
    assert_eq!(
        store
            .latest_store_workflow(f.shop.id)
            .await
            .expect("latest"),
        None
    );
    assert_eq!(
        store.store_workflow(f.shop.id, 1).await.expect("version"),
        None
    );
    let at = OffsetDateTime::from_unix_timestamp(1_700_000_000).expect("time");
    let add = |shop: &StoreRecord, name: &str, definition: &str| NewStoreWorkflow {
        store_id: shop.id,
        name: name.into(),
        definition: definition.into(),
        at,
    };
    let first = store
        .add_store_workflow(add(&f.shop, "mine", r#"{"name":"mine"}"#))
        .await
        .expect("add");
    assert_eq!(
        first,
        StoreWorkflow {
            store_id: f.shop.id,
            version: 1,
            name: "mine".into(),
            definition: r#"{"name":"mine"}"#.into(),
            created_at: at,
        }
    );
    let second = store
        .add_store_workflow(add(&f.shop, "mine-2", "{}"))
        .await
        .expect("add");
    assert_eq!(second.version, 2);
    // Versions are per store.
    let elsewhere = store
        .add_store_workflow(add(&other, "theirs", "{}"))
        .await
        .expect("add");
    assert_eq!(elsewhere.version, 1);

    assert_eq!(
        store
            .latest_store_workflow(f.shop.id)
            .await
            .expect("latest"),
        Some(second.clone())
    );
    assert_eq!(
        store.store_workflow(f.shop.id, 1).await.expect("version"),
        Some(first)
    );
    assert_eq!(
        store.store_workflow(other.id, 2).await.expect("version"),
        None
    );

    // An order keeps the version it was placed under.
    let default = place(store, &f.shop, &f.customer, &f.lines()).await;
    assert_eq!(default.workflow_version, 0);
    let placed = store
        .place_order(NewOrder {
            workflow_version: 2,
            ..new_order(&f.shop, &f.customer, &f.lines())
        })
        .await
        .expect("place_order")
        .order;
    assert_eq!(placed.workflow_version, 2);
    let read = store.order(placed.id).await.expect("order").expect("found");
    assert_eq!(read.workflow_version, 2);
    let moved = advance(store, &placed, f.cashier(), "confirmed").await;
    assert_eq!(moved.workflow_version, 2);
}

/// Store settings: a store opened with settings and an owner (one
/// transaction), listed and read with its settings, changed field by field;
/// stores created without settings have the defaults.
pub async fn store_settings(store: Arc<dyn Repository>) {
    let store = &*store;
    let plain = shop(store, "plain-shop", "Plain Shop", "P").await;
    let owner = user(store, "owner@settings.test", "Olga Owner").await;
    let berlin = StoreZone::parse("Europe/Berlin").expect("a zone");
    let hours: OpeningHours = serde_json::from_str(
        r#"{"friday":[{"open":"18:00","close":"02:00"}],"sunday":[{"open":"09:00","close":"17:00"}]}"#,
    )
    .expect("hours");
    let opened = store
        .open_store(StoreOpening {
            store: NewStore {
                slug: "night-owl".into(),
                name: "Night Owl".into(),
                currency: "EUR".parse().expect("a currency code"),
                workflow: "kitchen".into(),
                order_prefix: "N".into(),
            },
            settings: StoreSettings {
                status: StoreStatus::PendingApproval,
                timezone: berlin.clone(),
                accepting_orders: true,
                fulfilment: Fulfilments::new(&[FulfilmentKind::Pickup]).expect("a set"),
                opening_hours: Some(hours.clone()),
                payment_methods: PaymentMethods::new(&[
                    PaymentMethod::CardAtCounter,
                    PaymentMethod::Cash,
                ])
                .expect("a set"),
                driver_self_assign: true,
                print_trigger: "preparing".into(),
                email: crate::EmailSettings {
                    states: vec!["ready".into(), "completed".into()],
                    subject: Some("{order_number} is {status}".into()),
                    body: Some("Hello,\n{tracking_url}".into()),
                },
            },
            owner: Some(owner.id),
        })
        .await
        .expect("open_store");
    assert_eq!(opened.store.slug, "night-owl");
    assert!(opened.settings.driver_self_assign);
    assert_eq!(opened.store.order_prefix, "N");
    assert_eq!(opened.settings.status, StoreStatus::PendingApproval);
    assert_eq!(opened.settings.timezone, berlin);
    assert_eq!(opened.settings.opening_hours, Some(hours.clone()));
    assert_eq!(opened.settings.email.states, ["ready", "completed"]);
    assert_eq!(
        opened.settings.email.body.as_deref(),
        Some("Hello,\n{tracking_url}")
    );
    assert!(!opened.settings.fulfilment.offers(FulfilmentKind::Delivery));
    assert_eq!(
        opened.settings.payment_methods.methods(),
        [PaymentMethod::CardAtCounter, PaymentMethod::Cash],
        "payment methods keep their order: the first is the preferred"
    );
    let staff = store.staff(opened.store.id).await.expect("staff");
    assert_eq!(staff.len(), 1);
    assert_eq!((staff[0].user.id, staff[0].role), (owner.id, Role::Owner));
    assert_eq!(
        store.store_by_slug("night-owl").await.expect("by slug"),
        Some(opened.store.clone()),
        "the plain read sees the store opened with settings"
    );

    // Defaults for a store created without settings.
    let read = store
        .store_with_settings("plain-shop")
        .await
        .expect("read")
        .expect("the store");
    assert_eq!(read.store, plain);
    assert_eq!(read.settings, StoreSettings::default());
    assert_eq!(store.store_with_settings("nope").await.expect("read"), None);
    let listed = store.stores_with_settings().await.expect("list");
    assert_eq!(
        listed
            .iter()
            .map(|s| s.store.slug.as_str())
            .collect::<Vec<_>>(),
        ["night-owl", "plain-shop"],
        "listed by name"
    );
    assert_eq!(listed[0], opened);

    // A taken slug or an unknown owner writes nothing.
    let taken = store
        .open_store(StoreOpening {
            store: NewStore {
                slug: "plain-shop".into(),
                name: "Again".into(),
                currency: "EUR".parse().expect("a currency code"),
                workflow: "retail".into(),
                order_prefix: "A".into(),
            },
            settings: StoreSettings::default(),
            owner: Some(owner.id),
        })
        .await;
    assert!(matches!(taken, Err(StoreError::Conflict(_))), "{taken:?}");
    let orphan = store
        .open_store(StoreOpening {
            store: NewStore {
                slug: "orphan".into(),
                name: "Orphan".into(),
                currency: "EUR".parse().expect("a currency code"),
                workflow: "retail".into(),
                order_prefix: "O".into(),
            },
            settings: StoreSettings::default(),
            owner: Some(UserId::new(owner.id.get() + 1000)),
        })
        .await;
    assert!(matches!(orphan, Err(StoreError::NotFound(_))), "{orphan:?}");
    assert_eq!(store.store_by_slug("orphan").await.expect("read"), None);

    // Changes, one field at a time; the rest stays.
    let paused = store
        .update_store_settings(
            opened.store.id,
            StoreSettingsPatch {
                accepting_orders: Some(false),
                ..StoreSettingsPatch::default()
            },
        )
        .await
        .expect("update")
        .expect("the store");
    assert!(!paused.settings.accepting_orders);
    assert_eq!(paused.settings.opening_hours, Some(hours));
    let approved = store
        .update_store_settings(
            opened.store.id,
            StoreSettingsPatch {
                name: Some("Night Owl Kitchen".into()),
                status: Some(StoreStatus::Active),
                timezone: Some(StoreZone::utc()),
                fulfilment: Some(Fulfilments::both()),
                opening_hours: Some(None),
                payment_methods: Some(PaymentMethods::default()),
                driver_self_assign: Some(false),
                print_trigger: Some(crate::DEFAULT_PRINT_TRIGGER.into()),
                email_states: Some(crate::EmailSettings::default().states),
                email_subject: Some(None),
                email_body: Some(None),
                ..StoreSettingsPatch::default()
            },
        )
        .await
        .expect("update")
        .expect("the store");
    assert_eq!(approved.store.name, "Night Owl Kitchen");
    assert_eq!(
        approved.settings,
        StoreSettings {
            accepting_orders: false,
            ..StoreSettings::default()
        }
    );
    assert_eq!(
        store
            .store_with_settings("night-owl")
            .await
            .expect("read")
            .as_ref(),
        Some(&approved),
        "the change is what is read back"
    );
    assert_eq!(
        store
            .update_store_settings(
                StoreId::new(opened.store.id.get() + 1000),
                StoreSettingsPatch::default()
            )
            .await
            .expect("update"),
        None
    );
}

/// Memberships: set, replace, remove; staff lists and identities follow at once.
pub async fn memberships(store: Arc<dyn Repository>) {
    let store = &*store;
    let rosso = shop(store, "rosso", "Rosso", "R").await;
    let verde = shop(store, "verde", "Verde", "V").await;
    let at = now();
    let kim = kim_signed_in(store, at).await;
    let lee = user(store, "lee@example.test", "Lee").await;
    let roles_of_kim = || async {
        let identity = store
            .session_identity("kim-session", at)
            .await
            .expect("session_identity")
            .expect("identity");
        identity
            .memberships
            .iter()
            .map(|m| (m.store_slug.clone(), m.role))
            .collect::<BTreeMap<_, _>>()
    };

    store
        .set_membership(kim.id, rosso.id, Role::Cashier)
        .await
        .expect("set");
    store
        .set_membership(lee.id, rosso.id, Role::Kitchen)
        .await
        .expect("set");
    store
        .set_membership(kim.id, verde.id, Role::Driver)
        .await
        .expect("set");

    let staff: BTreeMap<_, _> = store
        .staff(rosso.id)
        .await
        .expect("staff")
        .into_iter()
        .map(|m| (m.user.email.clone(), (m.user, m.role)))
        .collect();
    assert_eq!(staff.len(), 2);
    assert_eq!(staff["kim@example.test"], (kim.clone(), Role::Cashier));
    assert_eq!(staff["lee@example.test"], (lee.clone(), Role::Kitchen));
    assert_eq!(
        roles_of_kim().await,
        BTreeMap::from([
            ("rosso".to_owned(), Role::Cashier),
            ("verde".to_owned(), Role::Driver)
        ])
    );

    // Setting again replaces the role instead of adding a second one.
    store
        .set_membership(kim.id, rosso.id, Role::Manager)
        .await
        .expect("replace");
    let kims: Vec<_> = store
        .staff(rosso.id)
        .await
        .expect("staff")
        .into_iter()
        .filter(|m| m.user.id == kim.id)
        .collect();
    assert_eq!(kims.len(), 1, "one membership per user and store");
    assert_eq!(kims[0].role, Role::Manager);
    assert_eq!(roles_of_kim().await["rosso"], Role::Manager);

    assert!(
        store
            .remove_membership(kim.id, rosso.id)
            .await
            .expect("remove")
    );
    assert!(
        !store
            .remove_membership(kim.id, rosso.id)
            .await
            .expect("remove"),
        "removing a non-member reports false"
    );
    let staff = store.staff(rosso.id).await.expect("staff");
    assert_eq!(staff.len(), 1);
    assert_eq!(staff[0].user, lee);
    assert_eq!(
        roles_of_kim().await,
        BTreeMap::from([("verde".to_owned(), Role::Driver)]),
        "the identity reflects a removal on the very next lookup"
    );
    assert_eq!(
        store.staff(verde.id).await.expect("staff").len(),
        1,
        "other stores are untouched"
    );

    let unknown = store
        .set_membership(
            UserId::new(kim.id.max(lee.id).get() + 1000),
            rosso.id,
            Role::Cashier,
        )
        .await;
    assert!(
        unknown.is_err(),
        "a membership for an unknown user must fail"
    );
}

/// Products: create, partial update, tenant isolation, catalog order.
fn invitation_to(
    shop: &StoreRecord, inviter: &User, email: &str, role: Role, hash: &str,
    expires_at: OffsetDateTime,
) -> NewInvitation {
    NewInvitation {
        store_id: shop.id,
        email: email.into(),
        role,
        token_hash: hash.into(),
        invited_by: inviter.id,
        created_at: expires_at - Duration::days(7),
        expires_at,
    }
}

/// Invitations: read back by their hash with their store; accepted once
/// (marking them used and giving the role in one write, a changed role
/// logged like any), never after their expiry; of two concurrent
/// acceptances exactly one wins.
pub async fn invitations(store: Arc<dyn Repository>) {
    let repo = &*store;
    let rosso = shop(repo, "rosso", "Rosso", "R").await;
    let at = now();
    let kim = kim_signed_in(repo, at).await;
    let olga = user(repo, "olga@example.test", "Olga").await;
    let lee = user(repo, "lee@example.test", "Lee").await;
    let week = at + Duration::days(7);
    let kims_roles = || async {
        repo.session_identity("kim-session", at)
            .await
            .expect("session_identity")
            .expect("identity")
            .memberships
            .iter()
            .map(|m| (m.store_slug.clone(), m.role))
            .collect::<Vec<_>>()
    };

    let created = repo
        .create_invitation(invitation_to(
            &rosso,
            &olga,
            "kim@example.test",
            Role::Cashier,
            "h1",
            week,
        ))
        .await
        .expect("create_invitation");
    let expected = Invitation {
        id: created.id,
        store: rosso.clone(),
        email: "kim@example.test".into(),
        role: Role::Cashier,
        expires_at: week,
        used_at: None,
    };
    assert_eq!(created, expected);
    assert_eq!(
        repo.invitation("h1").await.expect("invitation"),
        Some(expected.clone())
    );
    assert_eq!(repo.invitation("nope").await.expect("invitation"), None);
    let mut elsewhere = invitation_to(&rosso, &olga, "x@example.test", Role::Cashier, "h0", week);
    elsewhere.store_id = StoreId::new(rosso.id.get() + 1000);
    assert!(matches!(
        repo.create_invitation(elsewhere).await,
        Err(StoreError::NotFound(_))
    ));

    // Accepted once: used, and Kim is staff.
    let accepted = repo
        .accept_invitation("h1", kim.id, at)
        .await
        .expect("accept");
    let used = Invitation {
        used_at: Some(at),
        ..expected
    };
    assert_eq!(accepted, Acceptance::Accepted(used.clone()));
    assert_eq!(kims_roles().await, [("rosso".to_owned(), Role::Cashier)]);
    assert_eq!(repo.invitation("h1").await.expect("invitation"), Some(used));
    assert_eq!(
        repo.accept_invitation("h1", kim.id, at)
            .await
            .expect("accept again"),
        Acceptance::Used
    );
    assert_eq!(
        repo.accept_invitation("nope", kim.id, at)
            .await
            .expect("accept unknown"),
        Acceptance::Unknown
    );

    // Expired: nothing changes.
    repo.create_invitation(invitation_to(
        &rosso,
        &olga,
        "kim@example.test",
        Role::Manager,
        "h2",
        at,
    ))
    .await
    .expect("create_invitation");
    assert_eq!(
        repo.accept_invitation("h2", kim.id, at)
            .await
            .expect("accept expired"),
        Acceptance::Expired
    );
    assert_eq!(kims_roles().await, [("rosso".to_owned(), Role::Cashier)]);
    assert_eq!(
        repo.invitation("h2")
            .await
            .expect("invitation")
            .and_then(|i| i.used_at),
        None
    );

    // A new role for a member is logged as the membership write logs it.
    let before = repo.last_event_position().await.expect("position");
    repo.create_invitation(invitation_to(
        &rosso,
        &olga,
        "kim@example.test",
        Role::Manager,
        "h3",
        week,
    ))
    .await
    .expect("create_invitation");
    assert!(matches!(
        repo.accept_invitation("h3", kim.id, at)
            .await
            .expect("accept"),
        Acceptance::Accepted(_)
    ));
    assert_eq!(kims_roles().await, [("rosso".to_owned(), Role::Manager)]);
    assert_eq!(
        repo.events_since(before, 10).await.expect("events_since"),
        [LogEntry::Access(AccessEvent {
            id: before + 1,
            change: AccessChange::StaffChanged {
                user_id: kim.id,
                store_id: rosso.id,
                role: Some(Role::Manager),
            },
        })]
    );

    // Two acceptances at once: one wins.
    repo.create_invitation(invitation_to(
        &rosso,
        &olga,
        "lee@example.test",
        Role::Kitchen,
        "h4",
        week,
    ))
    .await
    .expect("create_invitation");
    let (first, second) = tokio::join!(
        store.accept_invitation("h4", lee.id, at),
        store.accept_invitation("h4", lee.id, at)
    );
    let mut outcomes = [first.expect("accept"), second.expect("accept")];
    outcomes.sort_by_key(|outcome| matches!(outcome, Acceptance::Used));
    assert!(
        matches!(outcomes[0], Acceptance::Accepted(_)),
        "{outcomes:?}"
    );
    assert_eq!(outcomes[1], Acceptance::Used);
}

/// Placing an order's one read: the store with its settings, its newest
/// workflow, every product and the cache marks, each as its own read
/// gives it.
pub async fn store_menu(store: Arc<dyn Repository>) {
    let store = &*store;
    assert_eq!(store.store_menu("nowhere").await.expect("menu"), None);
    let rosso = shop(store, "rosso", "Rosso", "R").await;
    let verde = shop(store, "verde", "Verde", "V").await;
    let empty = store
        .store_menu("rosso")
        .await
        .expect("menu")
        .expect("rosso");
    assert_eq!(empty.workflow, None, "no workflow uploaded: the built-in");
    assert!(empty.products.is_empty());

    let pizza = product(store, &rosso, "Pizza", 900, "oven").await;
    let bread = product(store, &rosso, "Bread", 300, "oven").await;
    product(store, &verde, "Salad", 700, "cold").await;
    let bread = patch_product(
        store,
        rosso.id,
        bread.id,
        ProductPatch {
            available: Some(false),
            ..ProductPatch::default()
        },
    )
    .await
    .expect("the product exists");
    let at = OffsetDateTime::from_unix_timestamp(1_700_000_000).expect("time");
    for (shop, name) in [(&rosso, "first"), (&rosso, "second"), (&verde, "theirs")] {
        store
            .add_store_workflow(NewStoreWorkflow {
                store_id: shop.id,
                name: name.into(),
                definition: format!(r#"{{"name":"{name}","note":"it's \"quoted\""}}"#),
                at,
            })
            .await
            .expect("add");
    }

    let menu = store
        .store_menu("rosso")
        .await
        .expect("menu")
        .expect("rosso");
    assert_eq!(
        Some(menu.store.clone()),
        store.store_with_settings("rosso").await.expect("store")
    );
    assert_eq!(
        menu.workflow,
        store.latest_store_workflow(rosso.id).await.expect("latest")
    );
    assert_eq!(menu.workflow.as_ref().map(|w| w.version), Some(2));
    assert_eq!(
        menu.products,
        vec![pizza, bread],
        "every product of the store, unavailable ones too, by id"
    );
    assert_eq!(menu.marks, store.cache_marks().await.expect("marks"));
    assert!(
        menu.marks.config > empty.marks.config,
        "a new workflow moves the config mark the menu carries"
    );

    // Many at once, of several stores and of none (PostgreSQL gathers
    // concurrent reads into one statement): each gets what it would alone.
    let verde_menu = store.store_menu("verde").await.expect("menu");
    let asked: Vec<&str> = (0..120)
        .map(|n| ["rosso", "verde", "nowhere"][n % 3])
        .collect();
    let reads = asked.iter().map(|slug| store.store_menu(slug));
    let found = futures::future::join_all(reads).await;
    for (slug, found) in asked.iter().zip(found) {
        let alone = match *slug {
            "rosso" => Some(menu.clone()),
            "verde" => verde_menu.clone(),
            _ => None,
        };
        assert_eq!(found.expect("menu"), alone, "{slug}");
    }
}

pub async fn products(store: Arc<dyn Repository>) {
    let store = &*store;
    let rosso = shop(store, "rosso", "Rosso", "R").await;
    let verde = shop(store, "verde", "Verde", "V").await;
    let names = ["Pizza", "Antipasti", "Zucchini", "Bread"];
    let mut created = Vec::new();
    for (n, name) in names.iter().enumerate() {
        let made = product(store, &rosso, name, 100 * (n as i64 + 1), "oven").await;
        assert_eq!(made.store_id, rosso.id);
        assert_eq!(made.name, *name);
        assert_eq!(made.description, format!("{name}, freshly made"));
        assert_eq!(made.price_minor, 100 * (n as i64 + 1));
        assert_eq!(made.station, "oven");
        assert!(made.available);
        created.push(made);
    }
    let other = product(store, &verde, "Salad", 700, "cold").await;
    assert_eq!(
        store.products(rosso.id).await.expect("products"),
        created,
        "a catalog is in the order products were added"
    );
    assert_eq!(
        store.products(verde.id).await.expect("products"),
        vec![other.clone()]
    );

    let antipasti = |patch| patch_product(store, rosso.id, created[1].id, patch);
    let updated = antipasti(ProductPatch {
        price_minor: Some(1234),
        available: Some(false),
        ..ProductPatch::default()
    })
    .await
    .expect("the product exists");
    let expected = Product {
        price_minor: 1234,
        available: false,
        ..created[1].clone()
    };
    assert_eq!(
        updated, expected,
        "fields not in the patch keep their values"
    );

    let renamed = antipasti(ProductPatch {
        name: Some("Antipasti misti".into()),
        description: Some("For two".into()),
        station: Some("cold".into()),
        ..ProductPatch::default()
    })
    .await
    .expect("the product exists");
    let expected = Product {
        name: "Antipasti misti".into(),
        description: "For two".into(),
        station: "cold".into(),
        ..expected
    };
    assert_eq!(renamed, expected);
    let unchanged = antipasti(ProductPatch::default()).await;
    assert_eq!(
        unchanged,
        Some(expected.clone()),
        "an empty patch changes nothing"
    );

    // Another store's product is not found, and stays as it was.
    let one_cent = || ProductPatch {
        price_minor: Some(1),
        ..ProductPatch::default()
    };
    let foreign = patch_product(store, rosso.id, other.id, one_cent()).await;
    assert_eq!(foreign, None);
    assert_eq!(
        store.products(verde.id).await.expect("products"),
        vec![other]
    );
    let unknown = ProductId::new(created.iter().map(|p| p.id.get()).max().unwrap_or(0) + 1000);
    let missing = patch_product(store, rosso.id, unknown, one_cent()).await;
    assert_eq!(missing, None);

    let mut catalog = created.clone();
    catalog[1] = expected;
    assert_eq!(
        store.products(rosso.id).await.expect("products"),
        catalog,
        "updates keep the catalog order"
    );
}

// ---- orders ----

/// Placing an order: numbering, totals, items, first history entry, event, token.
pub async fn place_order(store: Arc<dyn Repository>) {
    let store = &*store;
    let f = Fixture::new(store).await;
    let verde = shop(store, "verde", "Verde", "V").await;
    let salad = product(store, &verde, "Salad", 700, "cold").await;

    let mut request = new_order(&f.shop, &f.customer, &f.lines());
    request.fulfilment = Fulfilment {
        kind: FulfilmentKind::Delivery,
        address: Some("1 Main Street".into()),
    };
    request.notes = Some("ring twice".into());
    request.lines[0].notes = Some("no onions".into());
    let token = request.tracking_token.clone();
    let at = request.at;
    let summary = request.summary.clone();
    let placed = store.place_order(request).await.expect("place_order");
    assert!(placed.created);
    let first = placed.order;
    assert_eq!(
        store.order(first.id).await.expect("order").as_ref(),
        Some(&first),
        "the answer is the order as stored"
    );

    assert_eq!(first.number, "R-000001");
    assert_eq!(first.store_id, f.shop.id);
    assert_eq!(first.store_slug, "rosso");
    assert_eq!(first.customer_id, f.customer.id);
    assert_eq!(first.customer_name, "Alice Anders");
    assert_eq!(first.status, "pending");
    assert_eq!(first.version, 1);
    assert_eq!(
        first.total_minor,
        2 * 950 + 390,
        "total = sum of price × quantity"
    );
    assert_eq!(first.currency, "EUR");
    assert_eq!(
        first.fulfilment,
        Fulfilment {
            kind: FulfilmentKind::Delivery,
            address: Some("1 Main Street".into())
        }
    );
    assert_eq!(first.notes.as_deref(), Some("ring twice"));
    assert_eq!(first.tracking_token, token);
    assert_eq!(first.created_at, at);
    assert_eq!(first.updated_at, at);
    assert_eq!(first.items.len(), 2);
    for (item, (product, quantity)) in first.items.iter().zip(f.lines()) {
        assert_eq!(item.product, product.id);
        assert_eq!(item.name, product.name);
        assert_eq!(item.quantity, quantity);
        assert_eq!(item.unit_price_minor, product.price_minor);
        assert_eq!(item.station, product.station);
        assert_eq!(item.status, ItemStatus::Queued, "new items are queued");
    }
    assert_eq!(first.items[0].notes.as_deref(), Some("no onions"));
    assert_eq!(first.items[1].notes, None);
    assert_ne!(first.items[0].id, first.items[1].id);

    assert_eq!(
        store.order(first.id).await.expect("order"),
        Some(first.clone()),
        "the placed order reads back as returned"
    );

    let history = store.history(first.id).await.expect("history");
    assert_eq!(history.len(), 1, "one history entry for the creation");
    assert_eq!(history[0].from, None);
    assert_eq!(history[0].to, "pending");
    assert_eq!(history[0].actor, customer_actor(&f.customer));
    assert_eq!(history[0].at, at);

    let created = events(store, EventFilter::Order(first.id)).await;
    assert_eq!(created.len(), 1, "one event for the creation");
    assert_eq!(created[0].event.kind, EventKind::OrderCreated);
    assert_eq!(created[0].event.kind.as_str(), "order_created");
    assert_eq!(created[0].event.order_version, 1);
    assert_eq!(created[0].event.summary.number, "R-000001");
    assert_eq!(created[0].store_seq, 1);
    let (expected_history, expected_event) =
        order_created(&first, summary, customer_actor(&f.customer));
    assert_eq!(history[0], expected_history);
    assert_eq!(created[0].event, expected_event);

    // Numbers count per store, independently.
    let second = place(store, &f.shop, &f.customer, &f.lines()).await;
    let third = place(store, &verde, &f.customer, &[(&salad, 1)]).await;
    let fourth = place(store, &f.shop, &f.customer, &[(&f.menu[2], 3)]).await;
    let fifth = place(store, &verde, &f.customer, &[(&salad, 2)]).await;
    assert_eq!(second.number, "R-000002");
    assert_eq!(third.number, "V-000001");
    assert_eq!(fourth.number, "R-000003");
    assert_eq!(fifth.number, "V-000002");
    assert_eq!(fourth.total_minor, 3 * 350);
    assert_eq!(fifth.total_minor, 1400);
    assert_eq!(third.currency, "EUR");
    assert_eq!(third.store_slug, "verde");
    let ids: HashSet<OrderId> = [&first, &second, &third, &fourth, &fifth]
        .iter()
        .map(|o| o.id)
        .collect();
    assert_eq!(ids.len(), 5, "order ids are unique");

    assert_eq!(
        store
            .order(OrderId::new(fifth.id.get() + 1000))
            .await
            .expect("order"),
        None
    );

    // With its store, by id or by token, in one read.
    let rosso = store
        .store(f.shop.id)
        .await
        .expect("store")
        .expect("the shop");
    let with_store = OrderInStore {
        order: first.clone(),
        store: rosso,
        marks: store.cache_marks().await.expect("cache_marks"),
    };
    assert_eq!(
        store
            .order_in_store(OrderKey::Id(first.id))
            .await
            .expect("order_in_store"),
        Some(with_store.clone())
    );
    assert_eq!(
        store
            .order_in_store(OrderKey::TrackingToken(first.tracking_token.clone()))
            .await
            .expect("order_in_store"),
        Some(with_store)
    );
    let in_verde = store
        .order_in_store(OrderKey::Id(third.id))
        .await
        .expect("order_in_store")
        .expect("the third order");
    assert_eq!(
        (in_verde.order, in_verde.store),
        (third.clone(), verde.clone())
    );
    assert_eq!(
        store
            .order_in_store(OrderKey::TrackingToken(fifth.tracking_token.clone()))
            .await
            .expect("order_in_store")
            .map(|found| found.order.id),
        Some(fifth.id)
    );
    for missing in [
        OrderKey::Id(OrderId::new(fifth.id.get() + 1000)),
        OrderKey::TrackingToken("0123456789abcdef0123456789abcdef".into()),
    ] {
        assert_eq!(
            store.order_in_store(missing).await.expect("order_in_store"),
            None
        );
    }

    // Many reads at once, the same orders several times among them and one
    // that does not exist (PostgreSQL gathers concurrent reads into one
    // statement): each gets what it would alone.
    let unknown = OrderId::new(fifth.id.get() + 1000);
    let asked: Vec<OrderId> = (0..200)
        .map(|n| [first.id, third.id, fifth.id, unknown][n % 4])
        .collect();
    let reads = asked
        .iter()
        .map(|&id| store.order_in_store(OrderKey::Id(id)));
    let found = futures::future::join_all(reads).await;
    for (id, found) in asked.iter().zip(found) {
        let found = found.expect("order_in_store").map(|found| found.order);
        let alone = [&first, &third, &fifth]
            .into_iter()
            .find(|order| order.id == *id)
            .cloned();
        assert_eq!(found, alone, "order {id:?}");
    }

    // The total is the domain's: the store keeps what it is given.
    let given = store
        .place_order(NewOrder {
            total_minor: 4321,
            ..new_order(&f.shop, &f.customer, &f.lines())
        })
        .await
        .expect("place_order");
    assert_eq!(given.order.total_minor, 4321);
    assert_eq!(
        store
            .order(given.order.id)
            .await
            .expect("order")
            .map(|o| o.total_minor),
        Some(4321)
    );

    let unknown_store = store
        .place_order(NewOrder {
            store_id: StoreId::new(f.shop.id.max(verde.id).get() + 1000),
            ..new_order(&f.shop, &f.customer, &f.lines())
        })
        .await;
    assert!(
        unknown_store.is_err(),
        "an order for an unknown store fails"
    );
}

/// Idempotency keys of changes: a claim runs once, its recorded response is
/// replayed, another request under the key is refused, a released key runs
/// again, keys are per scope and forgotten past their retention.
pub async fn change_idempotency_keys(store: Arc<dyn Repository>) {
    let store = &*store;
    let now = OffsetDateTime::now_utc();
    let claim = |scope: &str, key: &str, fingerprint: &str, at: OffsetDateTime| IdempotencyClaim {
        scope: scope.into(),
        key: key.into(),
        fingerprint: fingerprint.into(),
        at,
        forget_before: at - Duration::hours(24),
    };
    let claimed = |c| async move { store.claim_idempotency_key(c).await.expect("claim") };
    assert_eq!(
        claimed(claim("s1", "k", "f1", now)).await,
        IdempotencyOutcome::Claimed
    );
    assert_eq!(
        claimed(claim("s1", "k", "f1", now)).await,
        IdempotencyOutcome::InProgress,
        "the same request while the first runs"
    );
    assert_eq!(
        claimed(claim("s1", "k", "f2", now)).await,
        IdempotencyOutcome::Mismatch
    );
    assert_eq!(
        claimed(claim("s2", "k", "f2", now)).await,
        IdempotencyOutcome::Claimed,
        "another scope's key is its own"
    );
    let response = StoredResponse {
        status: 303,
        content_type: None,
        location: Some("/kitchen/x?flash=moved".into()),
        body: b"\x00binary\xff".to_vec(),
    };
    store
        .complete_idempotency_key("s1".into(), "k".into(), response.clone())
        .await
        .expect("complete");
    for _ in 0..2 {
        assert_eq!(
            claimed(claim("s1", "k", "f1", now)).await,
            IdempotencyOutcome::Replay(response.clone())
        );
    }
    // Releasing a completed key keeps it; releasing a running one frees it.
    store
        .release_idempotency_key("s1".into(), "k".into())
        .await
        .expect("release");
    assert_eq!(
        claimed(claim("s1", "k", "f1", now)).await,
        IdempotencyOutcome::Replay(response.clone())
    );
    store
        .release_idempotency_key("s2".into(), "k".into())
        .await
        .expect("release");
    assert_eq!(
        claimed(claim("s2", "k", "f3", now)).await,
        IdempotencyOutcome::Claimed
    );
    // A day later the key is forgotten: it may be used again.
    assert_eq!(
        claimed(claim("s1", "k", "f9", now + Duration::hours(25))).await,
        IdempotencyOutcome::Claimed
    );
}

/// Idempotency keys: replay returns the original, a changed request is refused,
/// keys are per customer.
pub async fn idempotency(store: Arc<dyn Repository>) {
    let store = &*store;
    let f = Fixture::new(store).await;
    let bob = user(store, "bob@example.test", "Bob Brown").await;
    let keyed = |customer: &User, key: &str, hash: &str| NewOrder {
        idempotency: Some((key.into(), hash.into())),
        ..new_order(&f.shop, customer, &f.lines())
    };

    let original = store
        .place_order(keyed(&f.customer, "key-1", "hash-1"))
        .await
        .expect("place_order");
    assert!(original.created);
    assert_eq!(original.order.number, "R-000001");

    for _ in 0..3 {
        let replay: PlacedOrder = store
            .place_order(keyed(&f.customer, "key-1", "hash-1"))
            .await
            .expect("an idempotent replay succeeds");
        assert!(!replay.created, "a replay is not a new order");
        assert_eq!(
            replay.order, original.order,
            "a replay returns the original order"
        );
    }
    let mismatch = store
        .place_order(keyed(&f.customer, "key-1", "hash-2"))
        .await;
    assert!(
        matches!(mismatch, Err(StoreError::IdempotencyMismatch)),
        "the same key with another request is refused, got {mismatch:?}"
    );

    let shop_events = events(store, EventFilter::Store(f.shop.id)).await;
    assert_eq!(shop_events.len(), 1, "replays write no events");
    assert_eq!(
        order_count(store, OrderScope::Store(f.shop.id)).await,
        1,
        "replays create no orders"
    );
    assert_eq!(
        store
            .history(original.order.id)
            .await
            .expect("history")
            .len(),
        1
    );

    // Keys belong to a customer: bob's identical key is independent.
    let bobs = store
        .place_order(keyed(&bob, "key-1", "hash-1"))
        .await
        .expect("place_order");
    assert!(bobs.created);
    assert_ne!(bobs.order.id, original.order.id);
    assert_eq!(bobs.order.customer_id, bob.id);
    assert_eq!(
        bobs.order.number, "R-000002",
        "replays and refused requests use up no order numbers"
    );
    let bobs_other_hash = store.place_order(keyed(&bob, "key-1", "hash-2")).await;
    assert!(matches!(
        bobs_other_hash,
        Err(StoreError::IdempotencyMismatch)
    ));

    // A new key is a new order; no key is always a new order.
    let second = store
        .place_order(keyed(&f.customer, "key-2", "hash-1"))
        .await
        .expect("place_order");
    assert!(second.created);
    assert_ne!(second.order.id, original.order.id);
    let a = place(store, &f.shop, &f.customer, &f.lines()).await;
    let b = place(store, &f.shop, &f.customer, &f.lines()).await;
    assert_ne!(a.id, b.id);
    assert_eq!(events(store, EventFilter::Store(f.shop.id)).await.len(), 5);
}

/// Order lists: a customer's across stores, a store's own, newest first.
pub async fn orders_scopes(store: Arc<dyn Repository>) {
    let store = &*store;
    let f = Fixture::new(store).await;
    let (verde, salad, bob) = verde_and_bob(store).await;

    let a1 = place(store, &f.shop, &f.customer, &f.lines()).await;
    let b1 = place(store, &f.shop, &bob, &f.lines()).await;
    let a2 = place(store, &verde, &f.customer, &[(&salad, 1)]).await;
    let b2 = place(store, &verde, &bob, &[(&salad, 1)]).await;
    let a3 = place(store, &f.shop, &f.customer, &f.lines()).await;

    assert_eq!(
        order_ids(store, query(OrderScope::Customer(f.customer.id))).await,
        vec![a3.id, a2.id, a1.id],
        "a customer's orders across stores, newest first"
    );
    assert_eq!(
        order_ids(store, query(OrderScope::Customer(bob.id))).await,
        vec![b2.id, b1.id]
    );
    assert_eq!(
        order_ids(store, query(OrderScope::Store(f.shop.id))).await,
        vec![a3.id, b1.id, a1.id],
        "a store's orders, newest first"
    );
    assert_eq!(
        order_ids(store, query(OrderScope::Store(verde.id))).await,
        vec![b2.id, a2.id]
    );
    assert!(
        order_ids(store, query(OrderScope::Customer(f.cashier.id)))
            .await
            .is_empty()
    );

    // Listed orders are complete, items included.
    let page = store
        .orders(query(OrderScope::Store(f.shop.id)))
        .await
        .expect("orders");
    assert_eq!(page.next_before, None);
    assert_eq!(page.orders[0], a3);
    assert_eq!(page.orders[2], a1);
}

/// Order lists filtered by status.
pub async fn orders_status_filter(store: Arc<dyn Repository>) {
    let store = &*store;
    let f = Fixture::new(store).await;
    let o1 = place(store, &f.shop, &f.customer, &f.lines()).await;
    let o2 = place(store, &f.shop, &f.customer, &f.lines()).await;
    let o3 = place(store, &f.shop, &f.customer, &f.lines()).await;
    let o2 = advance(store, &o2, f.cashier(), "confirmed").await;
    let o3 = advance(store, &o3, f.cashier(), "cancelled").await;

    let with_status = |scope: OrderScope, status: &str| OrderQuery {
        statuses: vec![status.into()],
        ..query(scope)
    };
    assert_eq!(
        order_ids(store, with_status(OrderScope::Store(f.shop.id), "pending")).await,
        vec![o1.id]
    );
    assert_eq!(
        order_ids(
            store,
            with_status(OrderScope::Store(f.shop.id), "confirmed")
        )
        .await,
        vec![o2.id]
    );
    assert_eq!(
        order_ids(
            store,
            with_status(OrderScope::Customer(f.customer.id), "cancelled")
        )
        .await,
        vec![o3.id]
    );
    assert!(
        order_ids(store, with_status(OrderScope::Store(f.shop.id), "ready"))
            .await
            .is_empty()
    );
}

/// Search matches the order number or the customer's name, case-insensitively,
/// within the scope.
pub async fn orders_search(store: Arc<dyn Repository>) {
    let store = &*store;
    let f = Fixture::new(store).await;
    let (verde, salad, bob) = verde_and_bob(store).await;

    let r1 = place(store, &f.shop, &f.customer, &f.lines()).await; // R-000001 Alice
    let r2 = place(store, &f.shop, &bob, &f.lines()).await; // R-000002 Bob
    let _v1 = place(store, &verde, &bob, &[(&salad, 1)]).await; // V-000001 Bob
    let _v2 = place(store, &verde, &f.customer, &[(&salad, 1)]).await; // V-000002 Alice
    let r3 = place(store, &f.shop, &f.customer, &f.lines()).await; // R-000003 Alice

    assert_eq!(
        order_ids(store, search(&f.shop, "R-000002")).await,
        vec![r2.id]
    );
    assert_eq!(
        order_ids(store, search(&f.shop, "r-000002")).await,
        vec![r2.id],
        "number search ignores case"
    );
    assert_eq!(
        order_ids(store, search(&f.shop, "000002")).await,
        vec![r2.id],
        "a number fragment matches, and only in the scope's store"
    );
    assert_eq!(
        order_ids(store, search(&f.shop, "alice")).await,
        vec![r3.id, r1.id]
    );
    assert_eq!(
        order_ids(store, search(&f.shop, "ALICE anders")).await,
        vec![r3.id, r1.id],
        "name search ignores case"
    );
    assert_eq!(order_ids(store, search(&f.shop, "rown")).await, vec![r2.id]);
    assert!(order_ids(store, search(&f.shop, "carol")).await.is_empty());
    assert!(
        order_ids(store, search(&f.shop, "V-000001"))
            .await
            .is_empty()
    );

    let pending_alice = OrderQuery {
        statuses: vec!["pending".into()],
        ..search(&f.shop, "alice")
    };
    let r3 = advance(store, &r3, f.cashier(), "confirmed").await;
    assert_eq!(
        order_ids(store, pending_alice).await,
        vec![r1.id],
        "search and status filter combine"
    );
    assert_eq!(r3.status, "confirmed");
}

/// `%` and `_` in a search are literal characters, not wildcards.
pub async fn orders_search_wildcards_are_literal(store: Arc<dyn Repository>) {
    let store = &*store;
    let f = Fixture::new(store).await;
    let odd = user(store, "odd@example.test", "Per_Cent 100%").await;
    let plain = place(store, &f.shop, &f.customer, &f.lines()).await;
    let special = place(store, &f.shop, &odd, &f.lines()).await;

    assert_eq!(
        order_ids(store, search(&f.shop, "%")).await,
        vec![special.id],
        "`%` only matches a literal percent sign"
    );
    assert_eq!(
        order_ids(store, search(&f.shop, "_")).await,
        vec![special.id],
        "`_` only matches a literal underscore"
    );
    assert_eq!(
        order_ids(store, search(&f.shop, "0%")).await,
        vec![special.id]
    );
    assert_eq!(
        order_ids(store, search(&f.shop, "r_cent")).await,
        vec![special.id]
    );
    assert!(
        order_ids(store, search(&f.shop, "R-00000_"))
            .await
            .is_empty(),
        "`_` does not stand for any one character"
    );
    assert!(
        order_ids(store, search(&f.shop, "A%e")).await.is_empty(),
        "`%` does not stand for any run of characters"
    );
    assert!(order_ids(store, search(&f.shop, "\\")).await.is_empty());
    assert_eq!(
        order_ids(store, search(&f.shop, "R-000001")).await,
        vec![plain.id]
    );
}

/// Cursor paging: newest first, `limit` per page, `next_before` until the last page.
pub async fn orders_paging(store: Arc<dyn Repository>) {
    let store = &*store;
    let f = Fixture::new(store).await;
    let mut placed = Vec::new();
    for _ in 0..7 {
        placed.push(place(store, &f.shop, &f.customer, &f.lines()).await.id);
    }
    let newest_first: Vec<OrderId> = placed.iter().rev().copied().collect();

    for scope in [
        OrderScope::Store(f.shop.id),
        OrderScope::Customer(f.customer.id),
    ] {
        for limit in [1_u32, 2, 3, 7, 10] {
            let mut seen = Vec::new();
            let mut before = None;
            let mut pages = 0;
            loop {
                let page: OrderPage = store
                    .orders(OrderQuery {
                        before,
                        limit,
                        ..query(scope.clone())
                    })
                    .await
                    .expect("orders");
                pages += 1;
                assert!(
                    page.orders.len() <= limit as usize,
                    "a page holds at most `limit`"
                );
                seen.extend(page.orders.iter().map(|o| o.id));
                match page.next_before {
                    Some(next) => {
                        assert_eq!(
                            page.orders.len(),
                            limit as usize,
                            "only the last page may be short"
                        );
                        before = Some(next);
                    }
                    None => break,
                }
                assert!(pages <= 10, "paging must end");
            }
            assert_eq!(
                seen, newest_first,
                "pages of {limit} cover every order once, newest first"
            );
            assert_eq!(pages, 7_usize.div_ceil(limit as usize).max(1));
        }
    }

    let older = store
        .orders(OrderQuery {
            before: Some(placed[3]),
            limit: 100,
            ..query(OrderScope::Store(f.shop.id))
        })
        .await
        .expect("orders");
    assert_eq!(
        older.orders.iter().map(|o| o.id).collect::<Vec<_>>(),
        vec![placed[2], placed[1], placed[0]],
        "`before` is exclusive"
    );
    assert_eq!(older.next_before, None);
}

/// Status counts per store, and per fulfilment.
pub async fn status_counts(store: Arc<dyn Repository>) {
    let store = &*store;
    let f = Fixture::new(store).await;
    let verde = shop(store, "verde", "Verde", "V").await;
    assert!(
        store
            .status_counts(f.shop.id, None)
            .await
            .expect("counts")
            .is_empty()
    );
    let mut orders = Vec::new();
    for _ in 0..5 {
        orders.push(place(store, &f.shop, &f.customer, &f.lines()).await);
    }
    advance(store, &orders[0], f.cashier(), "confirmed").await;
    advance(store, &orders[1], f.cashier(), "confirmed").await;
    advance(store, &orders[2], f.cashier(), "cancelled").await;

    let counts: BTreeMap<String, i64> = store
        .status_counts(f.shop.id, None)
        .await
        .expect("counts")
        .into_iter()
        .collect();
    assert_eq!(
        counts,
        BTreeMap::from([
            ("cancelled".to_owned(), 1),
            ("confirmed".to_owned(), 2),
            ("pending".to_owned(), 2),
        ])
    );
    assert!(
        store
            .status_counts(verde.id, None)
            .await
            .expect("counts")
            .is_empty()
    );

    // Counted per fulfilment: what a driver's dashboard shows.
    store
        .place_order(NewOrder {
            fulfilment: Fulfilment {
                kind: FulfilmentKind::Delivery,
                address: Some("3 Low Road".into()),
            },
            ..new_order(&f.shop, &f.customer, &f.lines())
        })
        .await
        .expect("place_order");
    let count = |fulfilment| async move {
        store
            .status_counts(f.shop.id, Some(fulfilment))
            .await
            .expect("counts")
    };
    assert_eq!(
        count(FulfilmentKind::Delivery).await,
        vec![("pending".to_owned(), 1)]
    );
    assert_eq!(
        count(FulfilmentKind::Pickup).await,
        vec![
            ("cancelled".to_owned(), 1),
            ("confirmed".to_owned(), 2),
            ("pending".to_owned(), 2),
        ]
    );
}

/// Status changes: version check, history, event.
pub async fn apply_status_change(store: Arc<dyn Repository>) {
    let store = &*store;
    let f = Fixture::new(store).await;
    let workflow = restaurant();
    let order = place(store, &f.shop, &f.customer, &f.lines()).await;

    let change = plan_transition(
        &workflow,
        &order,
        f.cashier(),
        "confirmed",
        Some("thanks!".into()),
        Some(1),
        now(),
    )
    .expect("pending -> confirmed");
    let at = change.history.at;
    let confirmed = store
        .apply_status_change(change.clone())
        .await
        .expect("apply_status_change");
    assert_eq!(confirmed.status, "confirmed");
    assert_eq!(confirmed.version, 2);
    assert_eq!(confirmed.updated_at, at);
    assert_eq!(confirmed.created_at, order.created_at);
    assert_eq!(confirmed.items, order.items);
    assert_eq!(confirmed.number, order.number);
    assert_eq!(
        store.order(order.id).await.expect("order"),
        Some(confirmed.clone())
    );

    let history = store.history(order.id).await.expect("history");
    assert_eq!(history.len(), 2);
    assert_eq!(history[1], change.history);
    assert_eq!(history[1].from.as_deref(), Some("pending"));
    assert_eq!(history[1].to, "confirmed");
    assert_eq!(history[1].actor, f.cashier());
    assert_eq!(history[1].note.as_deref(), Some("thanks!"));

    let order_events = events(store, EventFilter::Order(order.id)).await;
    assert_eq!(order_events.len(), 2);
    assert_eq!(order_events[1].event, change.event);
    assert_eq!(order_events[1].event.kind, EventKind::StatusChanged);
    assert_eq!(order_events[1].event.order_version, 2);
    assert_eq!(order_events[1].store_seq, 2);

    // Deciding on the old version again is stale.
    let stale = store
        .apply_status_change(plan(&order, f.cashier(), "cancelled"))
        .await;
    assert!(
        matches!(stale, Err(StoreError::VersionConflict { current: 2 })),
        "a stale expected version reports the current one, got {stale:?}"
    );
    assert_eq!(
        store.order(order.id).await.expect("order"),
        Some(confirmed.clone())
    );

    // Cancelling records an order_cancelled event.
    let cancel = plan(&confirmed, f.cashier(), "cancelled");
    let cancelled = store
        .apply_status_change(cancel.clone())
        .await
        .expect("cancel");
    assert_eq!(cancelled.status, "cancelled");
    assert_eq!(cancelled.version, 3);
    let order_events = events(store, EventFilter::Order(order.id)).await;
    assert_eq!(order_events.len(), 3);
    assert_eq!(order_events[2].event.kind, EventKind::OrderCancelled);
    assert_eq!(order_events[2].event, cancel.event);
    let path: Vec<_> = store
        .history(order.id)
        .await
        .expect("history")
        .into_iter()
        .map(|h| (h.from.map(String::from), String::from(h.to)))
        .collect();
    assert_eq!(
        path,
        vec![
            (None, "pending".to_owned()),
            (Some("pending".to_owned()), "confirmed".to_owned()),
            (Some("confirmed".to_owned()), "cancelled".to_owned()),
        ]
    );

    // An order that does not exist.
    let mut ghost = plan(&confirmed, f.cashier(), "preparing");
    ghost.order_id = OrderId::new(order.id.get() + 1000);
    ghost.event.order_id = OrderId::new(order.id.get() + 1000);
    let missing = store.apply_status_change(ghost).await;
    assert!(
        matches!(missing, Err(StoreError::NotFound(_))),
        "a change to an unknown order is NotFound, got {missing:?}"
    );
    assert_eq!(events(store, EventFilter::Store(f.shop.id)).await.len(), 3);
}

/// Payment changes: placed with its method and unpaid; marked paid and
/// refunded through `apply_status_change` (the status stays), each with its
/// history entry and event, version checked.
pub async fn payment_changes(store: Arc<dyn Repository>) {
    let store = &*store;
    let f = Fixture::new(store).await;
    let workflow = restaurant();
    let order = store
        .place_order(NewOrder {
            payment_method: PaymentMethod::CardAtCounter,
            ..new_order(&f.shop, &f.customer, &f.lines())
        })
        .await
        .expect("place_order")
        .order;
    assert_eq!(order.payment, Payment::unpaid(PaymentMethod::CardAtCounter));
    let paid = plan_paid(&order, f.cashier());
    let after = store
        .apply_status_change(paid.clone())
        .await
        .expect("mark paid");
    assert_eq!(after.status, order.status, "the status stays");
    assert_eq!(after.version, order.version + 1);
    assert_eq!(after.payment.status, PaymentStatus::Paid);
    assert_eq!(after.payment.paid_at, Some(paid.history.at));
    assert_eq!(after.payment.method, PaymentMethod::CardAtCounter);
    assert_eq!(
        store.order(order.id).await.expect("order"),
        Some(after.clone())
    );
    let history = store.history(order.id).await.expect("history");
    assert_eq!(history.len(), 2);
    assert_eq!(history[1], paid.history);
    assert_eq!(
        history[1].payment,
        Some(PaymentStep {
            status: PaymentStatus::Paid,
            amount_minor: order.total_minor
        })
    );
    assert_eq!(history[0].payment, None);
    let order_events = events(store, EventFilter::Order(order.id)).await;
    assert_eq!(order_events.len(), 2);
    assert_eq!(order_events[1].event, paid.event);
    assert_eq!(order_events[1].event.kind, EventKind::PaymentChanged);

    // The same decision again is stale; nothing changes.
    let stale = store.apply_status_change(paid).await;
    assert!(
        matches!(stale, Err(StoreError::VersionConflict { current }) if current == after.version),
        "{stale:?}"
    );

    // A partial refund, then the rest.
    let manager = Actor {
        role: Role::Manager,
        ..f.cashier()
    };
    let refund = |order: &Order, amount_minor: i64| {
        plan_payment(
            &workflow,
            order,
            manager,
            PaymentRequest::Refund {
                amount_minor,
                reason: "cold".into(),
            },
            Some(order.version),
            now(),
        )
        .expect("a manager refunds")
    };
    let partly = store
        .apply_status_change(refund(&after, 100))
        .await
        .expect("partial refund");
    assert_eq!(partly.payment.status, PaymentStatus::PartiallyRefunded);
    assert_eq!(partly.payment.refunded_minor, 100);
    assert_eq!(
        partly.payment.paid_at, after.payment.paid_at,
        "paid_at stays"
    );
    let rest = order.total_minor - 100;
    let refunded = store
        .apply_status_change(refund(&partly, rest))
        .await
        .expect("full refund");
    assert_eq!(refunded.payment.status, PaymentStatus::Refunded);
    assert_eq!(refunded.payment.refunded_minor, order.total_minor);
    let history = store.history(order.id).await.expect("history");
    assert_eq!(
        history
            .iter()
            .map(|entry| entry.payment)
            .collect::<Vec<_>>(),
        [
            None,
            Some(PaymentStep {
                status: PaymentStatus::Paid,
                amount_minor: order.total_minor
            }),
            Some(PaymentStep {
                status: PaymentStatus::PartiallyRefunded,
                amount_minor: 100
            }),
            Some(PaymentStep {
                status: PaymentStatus::Refunded,
                amount_minor: rest
            }),
        ]
    );
    assert_eq!(history[3].note.as_deref(), Some("cold"));
}

/// A change that says how it leaves the order (as the application's do) is
/// answered with exactly what a read of the order gives afterwards: status
/// changes, payments, item changes with and without their automatic
/// advance. A stale one is refused all the same.
pub async fn answers_as_the_change_leaves_the_order(store: Arc<dyn Repository>) {
    let store = &*store;
    let f = Fixture::new(store).await;
    let workflow = restaurant();
    let cook = cook(store).await;
    let order = place(store, &f.shop, &f.customer, &f.lines()).await;

    /// The answer is the order the change said it leaves, and what a read
    /// gives afterwards.
    async fn answered(
        store: &dyn Repository, said: Option<Box<Order>>, answer: Result<Order, StoreError>,
    ) -> Order {
        let said = said.expect("the change tells how it leaves the order");
        let answer = answer.expect("the change applies");
        assert_eq!(answer, *said);
        assert_eq!(
            store.order(answer.id).await.expect("order"),
            Some(answer.clone())
        );
        answer
    }
    async fn status(store: &dyn Repository, order: &Order, mut change: StatusChange) -> Order {
        change.after = order.after_status_change(&change).map(Box::new);
        let said = change.after.clone();
        answered(store, said, store.apply_status_change(change).await).await
    }
    async fn item(store: &dyn Repository, order: &Order, mut change: ItemStatusChange) -> Order {
        change.after = order.after_item_change(&change).map(Box::new);
        let said = change.after.clone();
        answered(store, said, store.apply_item_change(change).await).await
    }

    let order = status(store, &order, plan(&order, f.cashier(), "confirmed")).await;
    assert_eq!(order.status, "confirmed");
    let order = status(store, &order, plan(&order, cook, "preparing")).await;
    let (burger, fries) = (order.items[0].id, order.items[1].id);
    let stale_base = order.clone();
    let change = plan_item_status(&workflow, &order, cook, burger, ItemStatus::Ready, now())
        .expect("queued -> ready");
    assert!(change.then.is_none());
    let order = item(store, &order, change).await;
    assert_eq!(order.items[0].status, ItemStatus::Ready);
    let change = plan_item_status(&workflow, &order, cook, fries, ItemStatus::Ready, now())
        .expect("queued -> ready");
    assert!(
        change.then.is_some(),
        "the last item ready advances the order"
    );
    let order = item(store, &order, change).await;
    assert_eq!(order.status, "ready");
    let paid = plan_paid(&order, f.cashier());
    let order = status(store, &order, paid).await;
    assert_eq!(order.payment.status, PaymentStatus::Paid);
    assert_eq!(order.status, "ready", "a payment keeps the status");

    // Decided on a version the order has left: refused, whatever it says.
    let mut stale = plan(&stale_base, f.cashier(), "cancelled");
    stale.after = stale_base.after_status_change(&stale).map(Box::new);
    assert!(stale.after.is_some());
    let refused = store.apply_status_change(stale).await;
    assert!(
        matches!(refused, Err(StoreError::VersionConflict { current }) if current == order.version),
        "{refused:?}"
    );
    assert_eq!(store.order(order.id).await.expect("order"), Some(order));
}

/// Reviews: one per order (a second is a conflict), read back with the
/// order's number and customer's name; a store's pages, newest first, with
/// the count and rating sum of all of them.
pub async fn reviews(store: Arc<dyn Repository>) {
    let store = &*store;
    let f = Fixture::new(store).await;
    let first = place(store, &f.shop, &f.customer, &f.lines()).await;
    let second = place(store, &f.shop, &f.customer, &f.lines()).await;
    let review = |order: &Order, rating: u8, comment: Option<&str>| NewReview {
        order_id: order.id,
        store_id: order.store_id,
        customer_id: order.customer_id,
        rating,
        comment: comment.map(str::to_owned),
        at: now(),
    };
    assert_eq!(store.review(first.id).await.expect("read"), None);
    let written = store
        .add_review(review(&first, 5, Some("Crisp and hot")))
        .await
        .expect("add_review");
    assert_eq!(written.order_id, first.id);
    assert_eq!(written.order_number, first.number);
    assert_eq!(written.customer_name, f.customer.name);
    assert_eq!(
        (written.rating, written.comment.as_deref()),
        (5, Some("Crisp and hot"))
    );
    assert_eq!(
        store.review(first.id).await.expect("read"),
        Some(written.clone())
    );
    let again = store.add_review(review(&first, 1, None)).await;
    assert!(matches!(again, Err(StoreError::Conflict(_))), "{again:?}");
    assert_eq!(
        store.review(first.id).await.expect("read"),
        Some(written.clone())
    );
    let later = store
        .add_review(review(&second, 2, None))
        .await
        .expect("add_review");

    let page = store
        .store_reviews(f.shop.id, None, 1)
        .await
        .expect("store_reviews");
    assert_eq!(page.reviews, vec![later]);
    assert_eq!((page.count, page.rating_sum), (2, 7));
    assert_eq!(page.next_before, Some(second.id));
    let rest = store
        .store_reviews(f.shop.id, page.next_before, 1)
        .await
        .expect("store_reviews");
    assert_eq!(rest.reviews, vec![written]);
    assert_eq!(rest.next_before, None);
    assert_eq!((rest.count, rest.rating_sum), (2, 7));
    let (verde, _, _) = verde_and_bob(store).await;
    let none = store
        .store_reviews(verde.id, None, 10)
        .await
        .expect("store_reviews");
    assert_eq!((none.reviews.len(), none.count, none.rating_sum), (0, 0, 0));
}

/// Driver assignment: through `apply_status_change` (the status stays),
/// the order reads back with its driver's id and name, each change with
/// its history entry and event, version checked; a driver's list holds
/// their orders and, when asked, the unassigned ones in given statuses.
pub async fn driver_assignment(store: Arc<dyn Repository>) {
    let store = &*store;
    let f = Fixture::new(store).await;
    let workflow = restaurant();
    let dana = user(store, "dana@example.test", "Dana Driver").await;
    let delivery = || NewOrder {
        fulfilment: Fulfilment {
            kind: FulfilmentKind::Delivery,
            address: Some("2 High Street".into()),
        },
        ..new_order(&f.shop, &f.customer, &f.lines())
    };
    let order = store.place_order(delivery()).await.expect("place").order;
    let other = store.place_order(delivery()).await.expect("place").order;
    assert_eq!(order.driver, None);
    let driver = AssignedDriver {
        id: dana.id,
        name: dana.name.clone(),
    };
    let assign = plan_assignment(
        &workflow,
        &order,
        f.cashier(),
        Some(driver.clone()),
        false,
        Some(order.version),
        now(),
    )
    .expect("a cashier assigns")
    .expect("a change");
    let assigned = store
        .apply_status_change(assign.clone())
        .await
        .expect("assign");
    assert_eq!(assigned.driver, Some(driver.clone()));
    assert_eq!(assigned.status, order.status, "the status stays");
    assert_eq!(assigned.version, order.version + 1);
    assert_eq!(assigned.payment, order.payment, "the payment stays");
    assert_eq!(
        store.order(order.id).await.expect("order"),
        Some(assigned.clone())
    );
    let stale = store.apply_status_change(assign.clone()).await;
    assert!(
        matches!(stale, Err(StoreError::VersionConflict { current }) if current == assigned.version),
        "{stale:?}"
    );

    let mine = |or_unassigned_in: Vec<StatusKey>| OrderQuery {
        driver: Some(DriverScope {
            driver: dana.id,
            or_unassigned_in,
        }),
        ..OrderQuery::newest(OrderScope::Store(f.shop.id), 10)
    };
    let ids = |page: OrderPage| page.orders.iter().map(|o| o.id).collect::<Vec<_>>();
    assert_eq!(
        ids(store.orders(mine(Vec::new())).await.expect("orders")),
        [order.id]
    );
    assert_eq!(
        ids(store
            .orders(mine(vec![other.status.clone()]))
            .await
            .expect("orders")),
        [other.id, order.id],
        "and the unassigned ones in the statuses asked for"
    );
    assert_eq!(
        ids(store
            .orders(mine(vec!["ready".into()]))
            .await
            .expect("orders")),
        [order.id]
    );

    let unassign = plan_assignment(&workflow, &assigned, f.cashier(), None, false, None, now())
        .expect("a cashier unassigns")
        .expect("a change");
    let unassigned = store
        .apply_status_change(unassign.clone())
        .await
        .expect("unassign");
    assert_eq!(unassigned.driver, None);
    let history = store.history(order.id).await.expect("history");
    assert_eq!(
        history.iter().map(|e| e.assignment).collect::<Vec<_>>(),
        [
            None,
            Some(AssignmentStep {
                driver: Some(dana.id)
            }),
            Some(AssignmentStep { driver: None }),
        ]
    );
    assert_eq!(history[1], assign.history);
    let order_events = events(store, EventFilter::Order(order.id)).await;
    assert_eq!(
        order_events
            .iter()
            .map(|e| e.event.kind)
            .collect::<Vec<_>>(),
        [
            EventKind::OrderCreated,
            EventKind::DriverAssigned,
            EventKind::DriverUnassigned
        ]
    );
    assert_eq!(order_events[1].event, assign.event);
    assert_eq!(order_events[2].event, unassign.event);
}

/// Printing: a store's printers (added, listed, removed with their jobs);
/// the follower's cursor moves only from where it is, with the jobs it
/// queues, all or nothing; due jobs are claimed once (an attempt counted,
/// leased until the given time), finished as printed or failed with a
/// retry time, and listed per order.
pub async fn printing(store: Arc<dyn Repository>) {
    let store = &*store;
    let f = Fixture::new(store).await;
    let order = place(store, &f.shop, &f.customer, &f.lines()).await;
    let at = now();
    let new_printer = |name: &str, stations: &[&str], receipts: bool| NewPrinter {
        setup: crate::PrinterSetup {
            store_id: f.shop.id,
            name: name.into(),
            host: "10.0.0.7".into(),
            port: 9100,
            stations: stations.iter().map(|s| (*s).to_owned()).collect(),
            receipts,
            enabled: true,
        },
        at,
    };
    let grill = store
        .add_printer(new_printer("Grill", &["grill", "fryer"], false))
        .await
        .expect("add_printer");
    assert_eq!(
        (
            grill.name.as_str(),
            grill.port,
            grill.stations.len(),
            grill.receipts
        ),
        ("Grill", 9100, 2, false)
    );
    let counter = store
        .add_printer(new_printer("Counter", &[], true))
        .await
        .expect("add_printer");
    assert_eq!(
        store.printers(f.shop.id).await.expect("printers"),
        vec![grill.clone(), counter.clone()]
    );

    let start = store.print_cursor().await.expect("print_cursor");
    let job = |printer: i64, kind: PrintKind, station: Option<&str>| NewPrintJob {
        order_id: order.id,
        store_id: f.shop.id,
        printer_id: printer,
        kind,
        station: station.map(str::to_owned),
        at,
    };
    let jobs = vec![
        job(grill.id, PrintKind::Ticket, Some("grill")),
        job(counter.id, PrintKind::Receipt, None),
    ];
    assert!(
        store
            .queue_print_jobs(start, start + 5, jobs.clone())
            .await
            .expect("queue_print_jobs")
    );
    assert_eq!(store.print_cursor().await.expect("cursor"), start + 5);
    // From a position the cursor has left: nothing is written.
    assert!(
        !store
            .queue_print_jobs(start, start + 9, jobs)
            .await
            .expect("queue_print_jobs")
    );
    assert_eq!(store.print_cursor().await.expect("cursor"), start + 5);
    let queued = store.print_jobs(order.id).await.expect("print_jobs");
    assert_eq!(queued.len(), 2);
    assert_eq!(queued[0].printer_name, "Grill");
    assert_eq!(queued[0].station.as_deref(), Some("grill"));
    assert_eq!(queued[1].kind, PrintKind::Receipt);
    assert!(
        queued
            .iter()
            .all(|j| j.status == PrintStatus::Queued && j.attempts == 0)
    );

    let lease = at + Duration::minutes(2);
    let claimed = store
        .claim_print_jobs(at, lease, 10)
        .await
        .expect("claim_print_jobs");
    assert_eq!(claimed.len(), 2);
    assert!(
        claimed
            .iter()
            .all(|j| j.attempts == 1 && j.next_attempt_at == Some(lease))
    );
    assert!(
        store
            .claim_print_jobs(at, lease, 10)
            .await
            .expect("claim")
            .is_empty(),
        "a claimed job is not claimed again before its lease ends"
    );
    assert_eq!(store.next_print_attempt().await.expect("next"), Some(lease));

    store
        .finish_print_job(claimed[0].id, PrintOutcome::Printed { at })
        .await
        .expect("finish");
    let retry = at + Duration::seconds(2);
    store
        .finish_print_job(
            claimed[1].id,
            PrintOutcome::Failed {
                error: "connection refused".into(),
                retry_at: Some(retry),
            },
        )
        .await
        .expect("finish");
    let done = store.print_jobs(order.id).await.expect("print_jobs");
    assert_eq!(
        (done[0].status, done[0].printed_at, done[0].next_attempt_at),
        (PrintStatus::Printed, Some(at), None)
    );
    assert_eq!(done[1].status, PrintStatus::Failed);
    assert_eq!(done[1].last_error.as_deref(), Some("connection refused"));
    assert_eq!(store.next_print_attempt().await.expect("next"), Some(retry));
    let again = store
        .claim_print_jobs(retry, lease, 10)
        .await
        .expect("claim");
    assert_eq!(again.len(), 1);
    assert_eq!((again[0].id, again[0].attempts), (claimed[1].id, 2));

    let reprint = store
        .queue_print_job(job(grill.id, PrintKind::Ticket, Some("fryer")))
        .await
        .expect("queue_print_job");
    assert_eq!(
        (reprint.status, reprint.station.as_deref()),
        (PrintStatus::Queued, Some("fryer"))
    );

    // Removing a printer removes its jobs; another store's id is no match.
    let (verde, _, _) = verde_and_bob(store).await;
    assert!(
        !store
            .remove_printer(verde.id, grill.id)
            .await
            .expect("remove")
    );
    assert!(
        store
            .remove_printer(f.shop.id, grill.id)
            .await
            .expect("remove")
    );
    assert!(
        !store
            .remove_printer(f.shop.id, grill.id)
            .await
            .expect("remove")
    );
    assert_eq!(
        store.printers(f.shop.id).await.expect("printers"),
        vec![counter]
    );
    let left = store.print_jobs(order.id).await.expect("print_jobs");
    assert_eq!(left.len(), 1);
    assert_eq!(left[0].printer_name, "Counter");
}

/// Item changes: item status, version, event; the automatic advance when
/// the last item becomes ready is applied in the same transaction.
pub async fn apply_item_change(store: Arc<dyn Repository>) {
    let store = &*store;
    let f = Fixture::new(store).await;
    let workflow = restaurant();
    let cook = cook(store).await;
    let order = place(store, &f.shop, &f.customer, &f.lines()).await;
    let order = advance(store, &order, f.cashier(), "confirmed").await;
    let order = advance(store, &order, cook, "preparing").await;
    assert_eq!(order.version, 3);
    let (burger, fries) = (order.items[0].id, order.items[1].id);

    let change = plan_item_status(
        &workflow,
        &order,
        cook,
        burger,
        ItemStatus::Preparing,
        now(),
    )
    .expect("queued -> preparing");
    assert!(change.then.is_none());
    let order = store
        .apply_item_change(change.clone())
        .await
        .expect("apply_item_change");
    assert_eq!(order.version, 4);
    assert_eq!(order.status, "preparing");
    assert_eq!(order.items[0].status, ItemStatus::Preparing);
    assert_eq!(order.items[1].status, ItemStatus::Queued);
    assert_eq!(order.updated_at, change.event.at);
    let order_events = events(store, EventFilter::Order(order.id)).await;
    assert_eq!(order_events.len(), 4);
    assert_eq!(order_events[3].event, change.event);
    assert_eq!(order_events[3].event.kind, EventKind::ItemStatusChanged);
    assert_eq!(store.history(order.id).await.expect("history").len(), 3);

    let change = plan_item_status(&workflow, &order, cook, burger, ItemStatus::Ready, now())
        .expect("preparing -> ready");
    assert!(change.then.is_none(), "fries are not ready yet");
    let order = store.apply_item_change(change).await.expect("burger ready");
    assert_eq!(order.version, 5);

    // A stale item change changes nothing.
    let stale_base = order.clone();
    let change = plan_item_status(&workflow, &order, cook, fries, ItemStatus::Ready, now())
        .expect("queued -> ready");
    let then = change
        .then
        .clone()
        .expect("the last item ready advances the order");
    assert_eq!(then.to, "ready");
    let order = store
        .apply_item_change(change.clone())
        .await
        .expect("fries ready");
    assert_eq!(
        order.version, 7,
        "the item change and the advance are two versions"
    );
    assert_eq!(order.status, "ready");
    assert!(order.items.iter().all(|i| i.status == ItemStatus::Ready));
    let order_events = events(store, EventFilter::Order(order.id)).await;
    assert_eq!(order_events.len(), 7);
    assert_eq!(order_events[5].event, change.event);
    assert_eq!(order_events[5].event.order_version, 6);
    assert_eq!(order_events[6].event, then.event);
    assert_eq!(order_events[6].event.kind, EventKind::StatusChanged);
    assert_eq!(order_events[6].event.order_version, 7);
    assert!(order_events[5].id < order_events[6].id);
    let history = store.history(order.id).await.expect("history");
    assert_eq!(history.len(), 4);
    assert_eq!(history[3], then.history);
    assert_eq!(history[3].from.as_deref(), Some("preparing"));
    assert_eq!(history[3].to, "ready");

    let stale = store
        .apply_item_change(
            plan_item_status(
                &workflow,
                &stale_base,
                cook,
                fries,
                ItemStatus::Preparing,
                now(),
            )
            .expect("plan"),
        )
        .await;
    assert!(
        matches!(stale, Err(StoreError::VersionConflict { current: 7 })),
        "a stale item change reports the current version, got {stale:?}"
    );
    assert_eq!(
        store.order(order.id).await.expect("order"),
        Some(order.clone())
    );
    assert_eq!(events(store, EventFilter::Order(order.id)).await.len(), 7);
}

/// Order lists by a set of statuses, by fulfilment, and oldest first.
pub async fn orders_status_set_fulfilment_and_oldest_first(store: Arc<dyn Repository>) {
    let store = &*store;
    let f = Fixture::new(store).await;
    let delivery = |lines: &[(&Product, u32)]| NewOrder {
        fulfilment: Fulfilment {
            kind: FulfilmentKind::Delivery,
            address: Some("2 High Street".into()),
        },
        ..new_order(&f.shop, &f.customer, lines)
    };
    let o1 = place(store, &f.shop, &f.customer, &f.lines()).await;
    let o2 = store
        .place_order(delivery(&f.lines()))
        .await
        .expect("place_order")
        .order;
    let o3 = place(store, &f.shop, &f.customer, &f.lines()).await;
    let o4 = store
        .place_order(delivery(&f.lines()))
        .await
        .expect("place_order")
        .order;
    advance(store, &o2, f.cashier(), "confirmed").await;
    let o3 = advance(store, &o3, f.cashier(), "confirmed").await;
    advance(store, &o3, f.cashier(), "preparing").await;

    let kitchen = || OrderQuery {
        statuses: vec!["confirmed".into(), "preparing".into(), "cooking".into()],
        ..query(OrderScope::Store(f.shop.id))
    };
    assert_eq!(order_ids(store, kitchen()).await, vec![o3.id, o2.id]);
    assert_eq!(
        order_ids(
            store,
            OrderQuery {
                oldest_first: true,
                ..kitchen()
            }
        )
        .await,
        vec![o2.id, o3.id],
        "oldest first"
    );
    let deliveries = |scope: OrderScope| OrderQuery {
        fulfilment: Some(FulfilmentKind::Delivery),
        ..query(scope)
    };
    assert_eq!(
        order_ids(store, deliveries(OrderScope::Store(f.shop.id))).await,
        vec![o4.id, o2.id]
    );
    assert_eq!(
        order_ids(store, deliveries(OrderScope::Customer(f.customer.id))).await,
        vec![o4.id, o2.id]
    );
    assert_eq!(
        order_ids(
            store,
            OrderQuery {
                fulfilment: Some(FulfilmentKind::Pickup),
                ..kitchen()
            }
        )
        .await,
        vec![o3.id],
        "statuses and fulfilment combine"
    );
    let oldest = store
        .orders(OrderQuery {
            oldest_first: true,
            limit: 2,
            ..query(OrderScope::Store(f.shop.id))
        })
        .await
        .expect("orders");
    assert_eq!(
        oldest.orders.iter().map(|o| o.id).collect::<Vec<_>>(),
        vec![o1.id, o2.id],
        "the oldest `limit` orders"
    );
    assert_eq!(
        oldest.next_before, None,
        "an oldest-first list has no pages"
    );
    assert_eq!(oldest.orders[0].items, o1.items, "with their items");
}

/// Decides a kitchen plan the way the application does.
fn bump(order: &Order, actor: Actor, station: Option<&str>) -> OrderPlan {
    plan_bump(
        &restaurant(),
        order,
        actor,
        station,
        Some(order.version),
        now(),
    )
    .unwrap_or_else(|e| panic!("bump of a {} order must be allowed: {e}", order.status))
}

/// Asserts that `stored` are exactly the plan's events, in order, with
/// consecutive ids and store sequence numbers.
#[track_caller]
fn assert_plan_events(stored: &[StoredEvent], plan: &OrderPlan) {
    assert_eq!(
        stored.iter().map(|e| &e.event).collect::<Vec<_>>(),
        plan.steps.iter().map(PlanStep::event).collect::<Vec<_>>(),
        "one event per step, in order"
    );
    for pair in stored.windows(2) {
        assert_eq!(
            pair[1].id,
            pair[0].id + 1,
            "a plan's event ids are consecutive"
        );
        assert_eq!(pair[1].store_seq, pair[0].store_seq + 1);
    }
}

/// A plan of several steps commits them all: items, statuses, consecutive
/// versions, one history entry per status step and one event per step.
pub async fn apply_plan(store: Arc<dyn Repository>) {
    let store = &*store;
    let f = Fixture::new(store).await;
    let cook = cook(store).await;
    let order = place(store, &f.shop, &f.customer, &f.lines()).await;
    let order = advance(store, &order, f.cashier(), "confirmed").await;
    let history_before = store.history(order.id).await.expect("history");
    let position = store.last_event_position().await.expect("position");

    // A whole bump: both items ready, confirmed → preparing → ready.
    let plan = bump(&order, cook, None);
    assert_eq!(plan.steps.len(), 4);
    let at = plan.steps[3].event().at;
    let done = store.apply_plan(plan.clone()).await.expect("apply_plan");
    assert_eq!(done.status, "ready");
    assert_eq!(done.version, order.version + 4);
    assert_eq!(done.version, plan.final_version());
    assert!(done.items.iter().all(|i| i.status == ItemStatus::Ready));
    assert_eq!(done.updated_at, at);
    assert_eq!(
        store.order(order.id).await.expect("order"),
        Some(done.clone())
    );
    let written = events(store, EventFilter::Order(order.id)).await;
    assert_eq!(written.len(), 2 + 4);
    assert_plan_events(&written[2..], &plan);
    assert_eq!(written[2].id, position + 1);
    assert_eq!(
        written[2..]
            .iter()
            .map(|e| e.event.order_version)
            .collect::<Vec<_>>(),
        vec![3, 4, 5, 6]
    );
    let history = store.history(order.id).await.expect("history");
    let mut expected = history_before.clone();
    expected.extend(plan.steps.iter().filter_map(|step| match step {
        PlanStep::Status(change) => Some(change.history.clone()),
        PlanStep::Item(_) => None,
    }));
    assert_eq!(history, expected);

    // A station's bump that readies the last item: the automatic advance
    // is part of the plan.
    let drink = place(store, &f.shop, &f.customer, &[(&f.menu[2], 2)]).await;
    let drink = advance(store, &drink, f.cashier(), "confirmed").await;
    let drink = advance(store, &drink, cook, "preparing").await;
    let plan = bump(&drink, cook, Some("drinks"));
    assert_eq!(plan.steps.len(), 2);
    let ready = store.apply_plan(plan.clone()).await.expect("apply_plan");
    assert_eq!((ready.status.as_str(), ready.version), ("ready", 5));
    let written = events(store, EventFilter::Order(drink.id)).await;
    assert_plan_events(&written[written.len() - 2..], &plan);
    assert_store_seq_gap_free(&events(store, EventFilter::Store(f.shop.id)).await);

    // A hand-off plan has only status steps.
    let handed = place(store, &f.shop, &f.customer, &[(&f.menu[2], 1)]).await;
    let handed = advance(store, &handed, f.cashier(), "confirmed").await;
    let mut all_ready = handed.clone();
    for item in handed.items.iter() {
        let change = plan_item_status(
            &restaurant(),
            &all_ready,
            cook,
            item.id,
            ItemStatus::Ready,
            now(),
        )
        .expect("item ready");
        all_ready = store.apply_item_change(change).await.expect("item");
    }
    let plan = plan_hand_off(&restaurant(), &all_ready, cook, None, now()).expect("hand-off");
    let handed = store.apply_plan(plan.clone()).await.expect("apply_plan");
    assert_eq!(handed.status, "ready");
    assert_eq!(handed.version, all_ready.version + 2);
}

/// What a failed write must leave as it was.
#[derive(Debug, PartialEq)]
struct Snapshot {
    order: Option<Order>,
    history: Vec<ordertrack_domain::HistoryEntry>,
    events: Vec<StoredEvent>,
    position: i64,
}

impl Snapshot {
    async fn take(store: &dyn Repository, order: &Order) -> Snapshot {
        Snapshot {
            order: store.order(order.id).await.expect("order"),
            history: store.history(order.id).await.expect("history"),
            events: events(store, EventFilter::Store(order.store_id)).await,
            position: store.last_event_position().await.expect("position"),
        }
    }
}

/// A plan that fails — stale, a missing item, a broken later step, an
/// unknown order — writes nothing: no item, status, version, history,
/// event or sequence number.
pub async fn failed_plans_write_nothing(store: Arc<dyn Repository>) {
    let store = &*store;
    let f = Fixture::new(store).await;
    let order = place(store, &f.shop, &f.customer, &f.lines()).await;
    let decided_on = advance(store, &order, f.cashier(), "confirmed").await;
    let stale_plan = bump(&decided_on, f.cashier(), None);
    let current = advance(store, &decided_on, f.cashier(), "preparing").await;
    let snapshot = Snapshot::take(store, &current).await;
    let before = snapshot.events.clone();
    let position = snapshot.position;
    assert_eq!(snapshot.order.as_ref(), Some(&current));

    // Decided on a version that is gone.
    let stale = store.apply_plan(stale_plan).await;
    assert!(
        matches!(stale, Err(StoreError::VersionConflict { current: 3 })),
        "a stale plan reports the current version, got {stale:?}"
    );
    assert_eq!(Snapshot::take(store, &current).await, snapshot);

    // The second item does not exist: the first item's change goes too.
    let mut missing_item = bump(&current, f.cashier(), None);
    let PlanStep::Item(second) = &mut missing_item.steps[1] else {
        panic!("a bump starts with its items");
    };
    second.item.id =
        ItemId::new(current.items.iter().map(|i| i.id.get()).max().unwrap_or(0) + 1000);
    let missing = store.apply_plan(missing_item).await;
    assert!(
        matches!(missing, Err(StoreError::NotFound(_))),
        "a missing item is NotFound, got {missing:?}"
    );
    assert_eq!(Snapshot::take(store, &current).await, snapshot);

    // A later step that does not follow on: everything before it goes too.
    let mut broken = bump(&current, f.cashier(), None);
    let last = broken.steps.len() - 1;
    let PlanStep::Status(change) = &mut broken.steps[last] else {
        panic!("a whole bump ends with its hand-off");
    };
    change.expected_version += 5;
    assert!(
        matches!(
            store.apply_plan(broken).await,
            Err(StoreError::VersionConflict { .. })
        ),
        "a step out of sequence fails the plan"
    );
    assert_eq!(Snapshot::take(store, &current).await, snapshot);

    // An order that does not exist.
    let mut ghost = bump(&current, f.cashier(), None);
    ghost.order_id = OrderId::new(ghost.order_id.get() + 1000);
    for step in &mut ghost.steps {
        if let PlanStep::Status(change) = step {
            change.order_id = OrderId::new(change.order_id.get() + 1000);
        }
    }
    assert!(
        matches!(store.apply_plan(ghost).await, Err(StoreError::NotFound(_))),
        "a plan for an unknown order is NotFound"
    );
    assert_eq!(Snapshot::take(store, &current).await, snapshot);

    // The planner refuses what it cannot decide; nothing reaches the store.
    assert!(matches!(
        plan_bump(&restaurant(), &current, f.cashier(), None, Some(2), now()),
        Err(KitchenError::StaleVersion { .. })
    ));

    // The order still takes a good plan, and sequences have no holes.
    let plan = bump(&current, f.cashier(), None);
    let done = store.apply_plan(plan.clone()).await.expect("apply_plan");
    assert_eq!(done.version, current.version + plan.steps.len() as i64);
    let after = events(store, EventFilter::Store(f.shop.id)).await;
    assert_eq!(after[..before.len()], before[..]);
    assert_eq!(after[before.len()].id, position + 1);
    assert_plan_events(&after[before.len()..], &plan);
    assert_store_seq_gap_free(&after);
}

// ---- events ----

/// Event reads: filters, id order, exclusive `after`, limit, per-store sequences.
pub async fn events_after(store: Arc<dyn Repository>) {
    let store = &*store;
    let f = Fixture::new(store).await;
    let (verde, salad, bob) = verde_and_bob(store).await;
    let salads = [(&salad, 1)];

    // (order, kind) in the order the changes are made.
    let a1 = place(store, &f.shop, &f.customer, &f.lines()).await;
    let b1 = place(store, &f.shop, &bob, &f.lines()).await;
    let a2 = place(store, &verde, &f.customer, &salads).await;
    advance(store, &a1, f.cashier(), "confirmed").await;
    advance(store, &b1, customer_actor(&bob), "cancelled").await;
    advance(store, &a2, f.cashier(), "confirmed").await;
    let made = [
        (a1.id, EventKind::OrderCreated),
        (b1.id, EventKind::OrderCreated),
        (a2.id, EventKind::OrderCreated),
        (a1.id, EventKind::StatusChanged),
        (b1.id, EventKind::OrderCancelled),
        (a2.id, EventKind::StatusChanged),
    ];
    let summary = |events: &[StoredEvent]| {
        events
            .iter()
            .map(|e| (e.event.order_id, e.event.kind))
            .collect::<Vec<_>>()
    };
    let pick = |wanted: &dyn Fn(OrderId) -> bool| {
        made.iter()
            .filter(|(order, _)| wanted(*order))
            .copied()
            .collect::<Vec<_>>()
    };

    let rosso_events = events(store, EventFilter::Store(f.shop.id)).await;
    let verde_events = events(store, EventFilter::Store(verde.id)).await;
    assert_eq!(summary(&rosso_events), pick(&|o| o == a1.id || o == b1.id));
    assert_eq!(summary(&verde_events), pick(&|o| o == a2.id));
    assert!(rosso_events.iter().all(|e| e.event.store_id == f.shop.id));
    assert_store_seq_gap_free(&rosso_events);
    assert_store_seq_gap_free(&verde_events);

    let alice_events = events(store, EventFilter::Customer(f.customer.id)).await;
    assert_eq!(summary(&alice_events), pick(&|o| o == a1.id || o == a2.id));
    assert!(
        alice_events
            .iter()
            .all(|e| e.event.customer_id == f.customer.id)
    );
    let bob_events = events(store, EventFilter::Customer(bob.id)).await;
    assert_eq!(summary(&bob_events), pick(&|o| o == b1.id));
    let a1_events = events(store, EventFilter::Order(a1.id)).await;
    assert_eq!(summary(&a1_events), pick(&|o| o == a1.id));
    assert_eq!(
        a1_events
            .iter()
            .map(|e| e.event.order_version)
            .collect::<Vec<_>>(),
        vec![1, 2]
    );
    assert!(
        events(store, EventFilter::Customer(f.cashier.id))
            .await
            .is_empty()
    );

    // Every event, in id order, is the order the changes were made in.
    let mut all: Vec<StoredEvent> = rosso_events
        .iter()
        .chain(verde_events.iter())
        .cloned()
        .collect();
    all.sort_by_key(|e| e.id);
    assert_eq!(summary(&all), made.to_vec(), "ids follow commit order");
    assert_strictly_increasing(&all);
    for filtered in [&rosso_events, &alice_events, &a1_events] {
        assert_strictly_increasing(filtered);
    }
    // Each event comes back with the JSON its watchers get, made once when
    // it was written.
    for event in &all {
        assert_eq!(
            event.public_json.as_deref(),
            Some(event.event.public_json().as_str()),
            "event {} keeps its public JSON",
            event.id
        );
    }

    // `after` is exclusive; `limit` caps the page; paging loses nothing.
    let after = store
        .events_after(EventFilter::Store(f.shop.id), rosso_events[1].id, 100)
        .await
        .expect("events_after");
    assert_eq!(after, rosso_events[2..].to_vec());
    let first_two = store
        .events_after(EventFilter::Store(f.shop.id), 0, 2)
        .await
        .expect("events_after");
    assert_eq!(first_two, rosso_events[..2].to_vec());
    let last = rosso_events.last().expect("events").id;
    assert!(
        store
            .events_after(EventFilter::Store(f.shop.id), last, 100)
            .await
            .expect("events_after")
            .is_empty()
    );
    let mut paged = Vec::new();
    let mut position = 0;
    loop {
        let page = store
            .events_after(EventFilter::Customer(f.customer.id), position, 1)
            .await
            .expect("events_after");
        let Some(event) = page.last() else { break };
        assert_eq!(page.len(), 1);
        position = event.id;
        paged.extend(page);
    }
    assert_eq!(paged, alice_events);

    assert_eq!(
        store.last_event_position().await.expect("position"),
        all.last().expect("events").id
    );
}

/// The newest event's position.
pub async fn events_since(store: Arc<dyn Repository>) {
    let store = &*store;
    let f = Fixture::new(store).await;
    let verde = shop(store, "verde", "Verde", "V").await;
    let salad = product(store, &verde, "Salad", 700, "cold").await;
    let start = store.last_event_position().await.expect("position");
    let a1 = place(store, &f.shop, &f.customer, &f.lines()).await;
    let a2 = place(store, &verde, &f.customer, &[(&salad, 1)]).await;
    advance(store, &a1, f.cashier(), "confirmed").await;
    advance(store, &a2, f.cashier(), "confirmed").await;

    // Every store's events, in id order, gap-free.
    let all = store.events_since(start, 100).await.expect("events_since");
    assert_eq!(
        all.iter()
            .map(|e| {
                let e = e.order_event().expect("an order event");
                (e.event.order_id, e.event.store_id)
            })
            .collect::<Vec<_>>(),
        vec![
            (a1.id, f.shop.id),
            (a2.id, verde.id),
            (a1.id, f.shop.id),
            (a2.id, verde.id)
        ]
    );
    for (offset, event) in all.iter().enumerate() {
        assert_eq!(event.id(), start + 1 + offset as i64, "gap-free ids");
    }
    for event in all.iter().filter_map(LogEntry::order_event) {
        let kept = event.public_json.as_deref();
        assert_eq!(kept, Some(event.event.public_json().as_str()));
    }
    assert_eq!(
        all.last().map(LogEntry::id),
        Some(store.last_event_position().await.expect("position"))
    );
    // `after` is exclusive, `limit` caps the page, paging loses nothing.
    let page = store.events_since(all[0].id(), 2).await.expect("page");
    assert_eq!(page, all[1..3].to_vec());
    let mut paged = Vec::new();
    let mut after = start;
    loop {
        let page = store.events_since(after, 1).await.expect("page");
        let Some(last) = page.last() else { break };
        after = last.id();
        paged.extend(page);
    }
    assert_eq!(paged, all);
    assert!(
        store
            .events_since(all[3].id(), 10)
            .await
            .expect("empty")
            .is_empty()
    );
}

/// Logouts and staff changes are logged in the event log with the change
/// (and only real changes are): `events_since` reads them back between the
/// order events, in the same gap-free positions; no stream filter matches
/// them.
pub async fn access_changes(store: Arc<dyn Repository>) {
    let store = &*store;
    let f = Fixture::new(store).await;
    let kim = kim_signed_in(store, now()).await;
    let start = store.last_event_position().await.expect("position");
    let staff_changed = |role| AccessChange::StaffChanged {
        user_id: kim.id,
        store_id: f.shop.id,
        role,
    };

    // Joining, and being given the role one has, ends nothing: not logged.
    for role in [Role::Owner, Role::Owner] {
        store
            .set_membership(kim.id, f.shop.id, role)
            .await
            .expect("set_membership");
    }
    let order = place(store, &f.shop, &f.customer, &f.lines()).await;
    store
        .set_membership(kim.id, f.shop.id, Role::Driver)
        .await
        .expect("demote");
    assert!(
        store
            .remove_membership(kim.id, f.shop.id)
            .await
            .expect("remove")
    );
    assert!(
        !store
            .remove_membership(kim.id, f.shop.id)
            .await
            .expect("remove again"),
        "nobody to remove"
    );
    store
        .delete_session("kim-session")
        .await
        .expect("delete_session");
    store
        .delete_session("kim-session")
        .await
        .expect("an ended session ends again, quietly");

    let all = store.events_since(start, 100).await.expect("events_since");
    let access = |offset: i64, change| {
        LogEntry::Access(AccessEvent {
            id: start + offset,
            change,
        })
    };
    assert_eq!(all.len(), 4, "{all:?}");
    assert_eq!(
        all[0].order_event().map(|e| e.event.order_id),
        Some(order.id)
    );
    assert_eq!(
        all[1..],
        [
            access(2, staff_changed(Some(Role::Driver))),
            access(3, staff_changed(None)),
            access(
                4,
                AccessChange::SessionEnded {
                    session_id: "kim-session".into()
                }
            ),
        ]
    );
    assert_eq!(
        store.last_event_position().await.expect("position"),
        start + 4
    );
    // Streams replay order events only.
    for filter in [
        EventFilter::Order(order.id),
        EventFilter::Customer(f.customer.id),
        EventFilter::Store(f.shop.id),
    ] {
        let events = events(store, filter).await;
        assert_eq!(events.len(), 1, "{events:?}");
        assert_eq!(events[0].id, start + 1);
    }
    // A failed change logs nothing.
    let unknown_user = UserId::new(kim.id.get() + 1000);
    assert!(
        store
            .set_membership(unknown_user, f.shop.id, Role::Cashier)
            .await
            .is_err()
    );
    assert_eq!(
        store.last_event_position().await.expect("position"),
        start + 4
    );
}

/// The cache marks move with exactly the changes caches depend on, in
/// their transactions: the access mark with every logout and staff role
/// given, changed or taken away; the configuration mark with every store
/// settings change and workflow version. Orders, sign-ins and changes that
/// change nothing leave both where they are.
pub async fn cache_marks(store: Arc<dyn Repository>) {
    let store = &*store;
    let f = Fixture::new(store).await;
    let kim = kim_signed_in(store, now()).await;
    let marks = || async { store.cache_marks().await.expect("cache_marks") };
    let start = marks().await;
    let moved = |access: i64, config: i64| CacheMarks {
        access: start.access + access,
        config: start.config + config,
    };

    // Placing and changing orders, signing in: nothing a cache keeps.
    let order = place(store, &f.shop, &f.customer, &f.lines()).await;
    advance(store, &order, f.cashier(), "confirmed").await;
    store
        .create_session(NewSession {
            id: "kim-second-session".into(),
            user_id: kim.id,
            expires_at: now() + Duration::hours(1),
        })
        .await
        .expect("create_session");
    assert_eq!(marks().await, moved(0, 0));

    // A role given, the same role again (no change), another role, taken away.
    let access = |n: i64| moved(n, 0);
    store
        .set_membership(kim.id, f.shop.id, Role::Kitchen)
        .await
        .expect("give");
    assert_eq!(marks().await, access(1), "a role given");
    store
        .set_membership(kim.id, f.shop.id, Role::Kitchen)
        .await
        .expect("give again");
    assert_eq!(marks().await, access(1), "the same role changes nothing");
    store
        .set_membership(kim.id, f.shop.id, Role::Driver)
        .await
        .expect("change");
    assert_eq!(marks().await, access(2), "a role changed");
    assert!(
        store
            .remove_membership(kim.id, f.shop.id)
            .await
            .expect("remove")
    );
    assert_eq!(marks().await, access(3), "a role taken away");
    assert!(
        !store
            .remove_membership(kim.id, f.shop.id)
            .await
            .expect("again")
    );
    store.delete_session("kim-session").await.expect("logout");
    assert_eq!(marks().await, access(4), "a logout");
    store.delete_session("kim-session").await.expect("again");
    assert_eq!(marks().await, access(4), "nothing to end, nothing moved");
    // A failed change (an unknown user) moves nothing.
    let failed = store
        .set_membership(UserId::new(kim.id.get() + 1000), f.shop.id, Role::Cashier)
        .await;
    assert!(failed.is_err());
    assert_eq!(marks().await, access(4));

    // A store's settings and workflow.
    let before = marks().await;
    let paused = StoreSettingsPatch {
        accepting_orders: Some(false),
        ..StoreSettingsPatch::default()
    };
    let updated = store.update_store_settings(f.shop.id, paused).await;
    assert!(updated.expect("update").is_some());
    assert_eq!(marks().await.config, before.config + 1, "settings changed");
    let unknown_store = StoreId::new(f.shop.id.get() + 1000);
    let missing = store
        .update_store_settings(unknown_store, StoreSettingsPatch::default())
        .await
        .expect("update unknown");
    assert!(missing.is_none());
    assert_eq!(marks().await.config, before.config + 1, "no such store");
    store
        .add_store_workflow(NewStoreWorkflow {
            store_id: f.shop.id,
            name: "mine".into(),
            definition: r#"{"name":"mine"}"#.into(),
            at: now(),
        })
        .await
        .expect("add workflow");
    assert_eq!(
        marks().await,
        CacheMarks {
            access: before.access,
            config: before.config + 2
        },
        "a workflow version added"
    );
    // An order read with its store carries the marks of its snapshot.
    let found = store
        .order_in_store(OrderKey::Id(order.id))
        .await
        .expect("order_in_store")
        .expect("the order");
    assert_eq!(found.marks, marks().await);
}

pub async fn last_event_position(store: Arc<dyn Repository>) {
    let store = &*store;
    assert_eq!(
        store.last_event_position().await.expect("position"),
        0,
        "an empty store is at 0"
    );
    let f = Fixture::new(store).await;
    assert_eq!(
        store.last_event_position().await.expect("position"),
        0,
        "users, stores and products are not order events"
    );
    let order = place(store, &f.shop, &f.customer, &f.lines()).await;
    let created = events(store, EventFilter::Order(order.id)).await;
    assert_eq!(
        store.last_event_position().await.expect("position"),
        created[0].id
    );
    assert!(created[0].id > 0);
    let order = advance(store, &order, f.cashier(), "confirmed").await;
    let position = store.last_event_position().await.expect("position");
    assert_eq!(
        position,
        events(store, EventFilter::Order(order.id)).await[1].id
    );
    assert!(position > created[0].id);

    // A refused change does not move it.
    let stale = store
        .apply_status_change(plan(
            &Order {
                version: 1,
                ..order.clone()
            },
            f.cashier(),
            "preparing",
        ))
        .await;
    assert!(stale.is_err());
    assert_eq!(
        store.last_event_position().await.expect("position"),
        position
    );
}

// ---- reports ----

/// Report rows: a store's orders placed in `[from, until)`, oldest first
/// (`until` excluded, other stores' left out), with their history only
/// when asked for, each order's oldest first.
/// A store's kept durations to done, as (status, seconds), sorted; all
/// of pickup orders.
async fn kept(store: &dyn Repository, shop: &StoreRecord) -> Vec<(String, i64)> {
    let mut kept: Vec<(String, i64)> = store
        .store_durations(shop.id)
        .await
        .expect("store_durations")
        .samples
        .into_iter()
        .map(|sample| {
            assert_eq!(sample.fulfilment, FulfilmentKind::Pickup);
            (sample.state.as_str().to_owned(), sample.seconds)
        })
        .collect();
    kept.sort();
    kept
}

/// The kitchen's bump of `order` (all its stations) as if decided at `at`.
fn bump_at(order: &Order, cook: Actor, at: OffsetDateTime) -> OrderPlan {
    let mut plan = bump(order, cook, None);
    for step in &mut plan.steps {
        match step {
            PlanStep::Item(item) => item.event.at = at,
            PlanStep::Status(change) => {
                change.history.at = at;
                change.event.at = at;
            }
        }
    }
    plan
}

/// The status change `change` as if decided at `at`.
fn decided_at(mut change: StatusChange, at: OffsetDateTime) -> StatusChange {
    change.history.at = at;
    change.event.at = at;
    change
}

/// An order's move to done keeps, in the same write, how long it took
/// from each status it entered to done, and the band of the store's day
/// it entered it in; the order knows when it entered its status;
/// cancelled orders and corrections keep nothing.
pub async fn eta_durations(store: Arc<dyn Repository>) {
    let store = &*store;
    let f = Fixture::new(store).await;
    let cook = cook(store).await;
    crate::testing::set_zone(store, f.shop.id, "Europe/Berlin").await;
    // 2026-03-02 13:50 in Berlin (12:50 UTC): the order enters every
    // status at lunch but `ready`, at 14:00 in Berlin's afternoon (13:00
    // UTC would still be lunch).
    let base = OffsetDateTime::from_unix_timestamp(1_772_455_800).expect("an instant");
    let placed = store
        .place_order(crate::testing::order_placed_at(
            &f.shop,
            &restaurant(),
            f.customer.id,
            &f.lines(),
            base,
        ))
        .await
        .expect("place_order")
        .order;
    assert_eq!(placed.status_since, base);
    assert!(kept(store, &f.shop).await.is_empty());
    let mut order = placed;
    for (to, seconds) in [("confirmed", 60), ("preparing", 120), ("cooking", 300)] {
        let at = base + Duration::seconds(seconds);
        order = store
            .apply_status_change(decided_at(plan(&order, f.cashier(), to), at))
            .await
            .expect("apply_status_change");
        assert_eq!(order.status_since, at);
    }
    // The kitchen's bump to ready (items ready on the way).
    let ready_at = base + Duration::seconds(600);
    order = store
        .apply_plan(bump_at(&order, cook, ready_at))
        .await
        .expect("apply_plan");
    assert_eq!(
        (order.status.as_str(), order.status_since),
        ("ready", ready_at)
    );
    // An item event does not move `status_since`; nothing kept before done.
    assert!(kept(store, &f.shop).await.is_empty());
    let done = decided_at(
        plan(&order, f.cashier(), "completed"),
        base + Duration::seconds(900),
    );
    assert!(done.finishes);
    assert!(!done.durations_at_once);
    store.apply_status_change(done).await.expect("complete");
    // The write leaves them to the follower of the event log, whose round
    // keeps them (once, though two instances' rounds run at the same time).
    assert!(kept(store, &f.shop).await.is_empty());
    let (first, second) = tokio::join!(
        store.keep_followed_durations(1_000),
        store.keep_followed_durations(1_000)
    );
    let (first, second) = (first.expect("a round"), second.expect("a round"));
    let (round, other) = match first.orders {
        1 => (first, second),
        _ => (second, first),
    };
    assert_eq!(
        (round.orders, &round.stores[..], round.more),
        (1, &[f.shop.id][..], false)
    );
    assert_eq!((other.orders, other.stores.len()), (0, 0), "kept once");
    let again = store
        .keep_followed_durations(1_000)
        .await
        .expect("a follower round");
    assert_eq!((again.orders, again.stores.len()), (0, 0));
    assert_eq!(
        kept(store, &f.shop).await,
        [
            ("confirmed".to_owned(), 840),
            ("cooking".to_owned(), 600),
            ("pending".to_owned(), 900),
            ("preparing".to_owned(), 780),
            ("ready".to_owned(), 300),
        ]
    );
    // Each with the band of the store's day its status was entered in.
    let kept_with_bands = store
        .store_durations(f.shop.id)
        .await
        .expect("store_durations");
    assert_eq!(kept_with_bands.zone.name(), "Europe/Berlin");
    let mut bands: Vec<(String, Option<DayBand>)> = kept_with_bands
        .samples
        .into_iter()
        .map(|sample| (sample.state.as_str().to_owned(), sample.band))
        .collect();
    bands.sort();
    let lunch = Some(DayBand::Lunch);
    assert_eq!(
        bands,
        [
            ("confirmed".to_owned(), lunch),
            ("cooking".to_owned(), lunch),
            ("pending".to_owned(), lunch),
            ("preparing".to_owned(), lunch),
            ("ready".to_owned(), Some(DayBand::Afternoon)),
        ]
    );

    // A cancelled order and a correction to done keep nothing.
    let second = place(store, &f.shop, &f.customer, &f.lines()).await;
    let cancelled = plan(&second, f.cashier(), "cancelled");
    assert!(!cancelled.finishes);
    store.apply_status_change(cancelled).await.expect("cancel");
    let third = place(store, &f.shop, &f.customer, &f.lines()).await;
    let owner = Actor {
        id: f.cashier.id,
        role: Role::Manager,
    };
    let corrected = ordertrack_domain::plan_correction(
        &restaurant(),
        &third,
        owner,
        "completed",
        "paid at the counter",
        Some(third.version),
        now(),
    )
    .expect("a manager may correct");
    assert!(!corrected.finishes);
    store.apply_status_change(corrected).await.expect("correct");
    let round = store
        .keep_followed_durations(1_000)
        .await
        .expect("a follower round");
    assert_eq!(round.orders, 0);
    assert_eq!(kept(store, &f.shop).await.len(), 5);

    // A change told to keep its durations at once (its store still
    // learning) has them kept by its own write, and not again by the
    // follower.
    let mut fourth = finished_at(
        store,
        &f.shop,
        &f.customer,
        &f.lines(),
        (f.cashier(), cook),
        base,
        1_200,
    )
    .await;
    fourth.durations_at_once = true;
    store.apply_status_change(fourth).await.expect("complete");
    let with_fourth = kept(store, &f.shop).await;
    assert!(
        with_fourth.contains(&("pending".to_owned(), 1_200)),
        "{with_fourth:?}"
    );
    let round = store
        .keep_followed_durations(1_000)
        .await
        .expect("a follower round");
    assert_eq!(round.orders, 0);
    assert_eq!(kept(store, &f.shop).await, with_fourth);
}

/// A store's queue: the oldest orders in the given statuses, oldest
/// first, at most the limit; other statuses and other stores' orders left
/// out.
pub async fn queued_orders_are_the_oldest_in_the_statuses(store: Arc<dyn Repository>) {
    let store = &*store;
    let f = Fixture::new(store).await;
    let mut placed = Vec::new();
    for _ in 0..5 {
        placed.push(place(store, &f.shop, &f.customer, &f.lines()).await);
    }
    // The second is confirmed, the fourth cancelled.
    store
        .apply_status_change(plan(&placed[1], f.cashier(), "confirmed"))
        .await
        .expect("confirm");
    store
        .apply_status_change(plan(&placed[3], f.cashier(), "cancelled"))
        .await
        .expect("cancel");
    let other = shop(store, "azzurro", "Azzurro", "A").await;
    let tea = product(store, &other, "Tea", 200, "drinks").await;
    place(store, &other, &f.customer, &[(&tea, 1)]).await;
    let last = store.last_event_position().await.expect("last event");
    let queue = async |statuses: &[&str], limit| {
        let queued = store
            .queued_orders(
                f.shop.id,
                statuses.iter().map(|&s| StatusKey::from(s)).collect(),
                limit,
            )
            .await
            .expect("queued_orders");
        // Every read says which point of the log it is as of.
        assert_eq!(queued.as_of, last, "as of the log's last entry");
        queued.ids
    };
    let ids = |picked: &[usize]| -> Vec<OrderId> { picked.iter().map(|&n| placed[n].id).collect() };
    assert_eq!(
        queue(&["pending", "confirmed"], 10).await,
        ids(&[0, 1, 2, 4])
    );
    assert_eq!(queue(&["confirmed", "pending"], 3).await, ids(&[0, 1, 2]));
    assert_eq!(queue(&["pending"], 10).await, ids(&[0, 2, 4]));
    assert!(queue(&[], 10).await.is_empty());
    assert!(queue(&["ready"], 10).await.is_empty());
}

/// Places an order of `shop` at `placed_at`, confirms it (as `staff.0`),
/// has the kitchen (`staff.1`) bump it, and plans its completion
/// `seconds` after placing.
async fn finished_at(
    store: &dyn Repository, shop: &StoreRecord, customer: &User, lines: &[(&Product, u32)],
    staff: (Actor, Actor), placed_at: OffsetDateTime, seconds: i64,
) -> StatusChange {
    let (cashier, cook) = staff;
    let mut order = store
        .place_order(crate::testing::order_placed_at(
            shop,
            &restaurant(),
            customer.id,
            lines,
            placed_at,
        ))
        .await
        .expect("place_order")
        .order;
    order = advance(store, &order, cashier, "confirmed").await;
    store
        .apply_plan(bump(&order, cook, None))
        .await
        .expect("bump");
    order = store.order(order.id).await.expect("order").expect("found");
    decided_at(
        plan(&order, cashier, "completed"),
        placed_at + Duration::seconds(seconds),
    )
}

/// How many durations `shop` keeps per status.
async fn kept_per_status(store: &dyn Repository, shop: &StoreRecord) -> BTreeMap<String, usize> {
    let mut counts = BTreeMap::new();
    for (state, _) in kept(store, shop).await {
        *counts.entry(state).or_default() += 1;
    }
    counts
}

/// Kept durations are bounded: the most recent
/// [`WINDOW_SAMPLES`](ordertrack_domain::eta::WINDOW_SAMPLES) per store,
/// fulfilment and status, the oldest dropped as new orders finish — also
/// when several finish at once — and other stores' untouched.
pub async fn eta_durations_keep_the_most_recent(store: Arc<dyn Repository>) {
    let shared = store.clone();
    let store = &*store;
    let f = Fixture::new(store).await;
    let cook = cook(store).await;
    let window = ordertrack_domain::eta::WINDOW_SAMPLES;
    let base = now() - Duration::days(1);
    let (verde, salad, bob) = verde_and_bob(store).await;
    let other = finished_at(
        store,
        &verde,
        &bob,
        &[(&salad, 1)],
        (f.cashier(), cook),
        base,
        500,
    )
    .await;
    store.apply_status_change(other).await.expect("complete");
    store
        .keep_followed_durations(1_000)
        .await
        .expect("a follower round");
    let verde_kept = kept(store, &verde).await;
    assert!(!verde_kept.is_empty());
    let small = |n: usize| i64::try_from(n).expect("small");
    let lines = f.lines();
    // Order n, placed n seconds after `base`, takes 1,000 + n seconds from
    // placing to completed.
    let nth = |n: usize| {
        let placed_at = base + Duration::seconds(small(n));
        let (shop, customer) = (&f.shop, &f.customer);
        finished_at(
            store,
            shop,
            customer,
            &lines,
            (f.cashier(), cook),
            placed_at,
            1_000 + small(n),
        )
    };
    // Kept by each order's own write (a store still learning).
    for n in 0..window + 3 {
        let mut done = nth(n).await;
        done.durations_at_once = true;
        store.apply_status_change(done).await.expect("complete");
    }
    let pending = |kept: Vec<(String, i64)>| -> Vec<i64> {
        kept.into_iter()
            .filter(|(state, _)| state == "pending")
            .map(|(_, seconds)| seconds)
            .collect()
    };
    let first = pending(kept(store, &f.shop).await);
    assert_eq!(first.len(), window);
    // The three oldest (1,000 … 1,002 s) are gone.
    assert_eq!(first.first(), Some(&1_003));
    assert_eq!(first.last(), Some(&(1_000 + small(window + 2))));
    let per_status = kept_per_status(store, &f.shop).await;
    assert!(per_status.len() >= 3, "{per_status:?}");
    assert!(per_status.values().all(|&n| n == window), "{per_status:?}");

    // More finish, several at once (a batch of the writer), left to the
    // follower, whose rounds read a few events at a time: still the
    // newest WINDOW_SAMPLES of every status.
    store
        .keep_followed_durations(100_000)
        .await
        .expect("a follower round");
    let mut more = Vec::new();
    for n in window + 3..window + 9 {
        more.push(nth(n).await);
    }
    let finishing: Vec<_> = more
        .into_iter()
        .map(|done| {
            let store = shared.clone();
            tokio::spawn(async move { store.apply_status_change(done).await })
        })
        .collect();
    for finished in finishing {
        finished.await.expect("the task").expect("complete");
    }
    let mut followed = 0;
    let mut rounds = 0;
    loop {
        let round = store
            .keep_followed_durations(5)
            .await
            .expect("a follower round");
        followed += round.orders;
        rounds += 1;
        if !round.more {
            break;
        }
    }
    assert_eq!(followed, 6, "every finished order kept once");
    assert!(rounds > 1, "rounds of at most 5 events: {rounds}");
    assert_eq!(kept_per_status(store, &f.shop).await, per_status);
    let last = pending(kept(store, &f.shop).await);
    assert_eq!(last.first(), Some(&1_009));
    assert_eq!(last.last(), Some(&(1_000 + small(window + 8))));

    // More than a window's worth finishes before one round: the round
    // keeps the newest WINDOW_SAMPLES of each status, as if it had kept
    // them all and trimmed.
    for n in window + 9..2 * window + 13 {
        let done = nth(n).await;
        store.apply_status_change(done).await.expect("complete");
    }
    let round = store
        .keep_followed_durations(100_000)
        .await
        .expect("a follower round");
    assert_eq!(round.orders, window + 4);
    assert_eq!(kept_per_status(store, &f.shop).await, per_status);
    let newest = pending(kept(store, &f.shop).await);
    let expected: Vec<i64> = (window + 13..2 * window + 13)
        .map(|n| 1_000 + small(n))
        .collect();
    assert_eq!(newest, expected);
    assert_eq!(kept(store, &verde).await, verde_kept, "another store's");
}

pub async fn report_rows(store: Arc<dyn Repository>) {
    let store = &*store;
    let f = Fixture::new(store).await;
    let (verde, salad, bob) = verde_and_bob(store).await;
    let noon = OffsetDateTime::from_unix_timestamp(1_780_000_000).expect("an instant");
    let place_at = |shop: &StoreRecord, customer: &User, lines: &[(&Product, u32)], at| {
        let mut new = new_order(shop, customer, lines);
        new.at = at;
        async move { store.place_order(new).await.expect("place_order").order }
    };
    let before = place_at(
        &f.shop,
        &f.customer,
        &f.lines(),
        noon - Duration::seconds(1),
    )
    .await;
    let first = place_at(&f.shop, &f.customer, &f.lines(), noon).await;
    let second = place_at(
        &f.shop,
        &f.customer,
        &f.lines()[..1],
        noon + Duration::hours(1),
    )
    .await;
    let at_end = place_at(&f.shop, &f.customer, &f.lines(), noon + Duration::hours(2)).await;
    place_at(&verde, &bob, &[(&salad, 1)], noon + Duration::minutes(5)).await;
    let mut change = plan(&second, f.cashier(), "confirmed");
    change.history.at = noon + Duration::hours(1) + Duration::minutes(3);
    store
        .apply_status_change(change)
        .await
        .expect("apply_status_change");

    let until = noon + Duration::hours(2);
    let rows = store
        .report_rows(ReportQuery {
            store: f.shop.id,
            from: noon,
            until,
            with_history: false,
        })
        .await
        .expect("report_rows");
    assert_eq!(
        rows.orders.iter().map(|o| o.id).collect::<Vec<_>>(),
        vec![first.id, second.id]
    );
    assert!(rows.steps.is_empty(), "no history unless asked for");
    let read = &rows.orders[1];
    assert_eq!(read.number, second.number);
    assert_eq!(read.placed_at, noon + Duration::hours(1));
    assert_eq!(read.total_minor, second.total_minor);
    assert_eq!(read.status, "confirmed");
    assert_eq!(read.workflow_version, 0);

    let with_history = store
        .report_rows(ReportQuery {
            store: f.shop.id,
            from: noon,
            until,
            with_history: true,
        })
        .await
        .expect("report_rows with history");
    assert_eq!(with_history.orders, rows.orders);
    let steps: Vec<(OrderId, &str, OffsetDateTime, Role)> = with_history
        .steps
        .iter()
        .map(|s| {
            (
                s.order_id,
                s.entry.to.as_str(),
                s.entry.at,
                s.entry.actor.role,
            )
        })
        .collect();
    assert_eq!(
        steps,
        vec![
            (first.id, "pending", noon, Role::Customer),
            (
                second.id,
                "pending",
                noon + Duration::hours(1),
                Role::Customer
            ),
            (
                second.id,
                "confirmed",
                noon + Duration::hours(1) + Duration::minutes(3),
                Role::Cashier
            ),
        ]
    );
    assert!(
        !with_history
            .orders
            .iter()
            .any(|o| o.id == before.id || o.id == at_end.id),
        "the range is [from, until)"
    );
    let empty = store
        .report_rows(ReportQuery {
            store: verde.id,
            from: noon + Duration::hours(3),
            until: noon + Duration::hours(4),
            with_history: true,
        })
        .await
        .expect("an empty range");
    assert_eq!(empty, ReportRows::default());
}

/// A small seeded generator (xorshift64*), so a failing fixture can be
/// replayed from its seed.
struct Seeded(u64);

impl Seeded {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }
}

/// The sales and times reports of `range` on `zone` computed from the raw
/// orders and history, as the reports did before rollups.
async fn raw_reports(
    store: &dyn Repository, shop: &StoreRecord, zone: &StoreZone,
    range: &ordertrack_domain::report::ReportRange, order: &[&str],
) -> (
    ordertrack_domain::report::SalesReport,
    ordertrack_domain::report::TimesReport,
) {
    use ordertrack_domain::report::{self, Outcome};
    let (from, until) = range.bounds(zone).expect("a range in reach");
    let rows = store
        .report_rows(ReportQuery {
            store: shop.id,
            from,
            until,
            with_history: true,
        })
        .await
        .expect("report_rows");
    let rules = ordertrack_domain::rollup::OutcomeRules::of(&restaurant());
    let sales = report::sales_report(
        range,
        zone,
        rows.orders
            .iter()
            .map(|o| (o.placed_at, o.total_minor, rules.outcome(&o.status))),
    );
    let timelines: Vec<_> = rows
        .orders
        .iter()
        .filter(|o| rules.outcome(&o.status) == Outcome::Done)
        .filter_map(|o| {
            let steps: Vec<_> = rows
                .steps
                .iter()
                .filter(|s| s.order_id == o.id)
                .cloned()
                .collect();
            report::timeline(o.id, &steps, |s| rules.is_done(s))
        })
        .collect();
    (sales, report::times_report(&timelines, order))
}

/// The same reports from the store's per-day rollups; `None` while they
/// are not built in `zone`.
async fn rollup_reports(
    store: &dyn Repository, shop: &StoreRecord, zone: &StoreZone,
    range: &ordertrack_domain::report::ReportRange, order: &[&str],
) -> Option<(
    ordertrack_domain::report::SalesReport,
    ordertrack_domain::report::TimesReport,
)> {
    use ordertrack_domain::rollup;
    let found = store
        .report_days(crate::ReportDaysQuery {
            store: shop.id,
            from: range.from().to_string(),
            to: range.to().to_string(),
            with_times: true,
        })
        .await
        .expect("report_days");
    if found.built_in.as_deref() != Some(zone.name()) {
        return None;
    }
    let days = rollup::days_by_date(found.days);
    Some((
        rollup::sales_from_days(range, &days),
        rollup::times_from_days(days.values().map(|d| &d.times), order),
    ))
}

/// Rebuilds the shop's rollups under the restaurant workflow.
async fn rebuild_rollups(store: &dyn Repository, shop: &StoreRecord) {
    store
        .rebuild_report_days(crate::RollupRebuild {
            store: shop.id,
            rules: vec![(
                0,
                ordertrack_domain::rollup::OutcomeRules::of(&restaurant()),
            )],
        })
        .await
        .expect("rebuild_report_days");
}

/// The per-day rollups kept as orders are placed and change (workflow
/// steps, cancellations, a manager's corrections — out of done, done after
/// cancelled, cancelled after completed) give exactly the sales and times
/// the orders' history gives, over a random fixture spanning a DST change;
/// a rebuild gives the same; a zone change needs a rebuild, after which
/// the days are the new zone's.
pub async fn report_rollups_match_the_history(store: Arc<dyn Repository>) {
    use ordertrack_domain::report::ReportRange;
    let store = &*store;
    let f = Fixture::new(store).await;
    let berlin = StoreZone::parse("Europe/Berlin").expect("a zone");
    let zone_patch = |zone: &StoreZone| StoreSettingsPatch {
        timezone: Some(zone.clone()),
        ..StoreSettingsPatch::default()
    };
    store
        .update_store_settings(f.shop.id, zone_patch(&berlin))
        .await
        .expect("set the zone");
    // Built (empty) in the zone the store opened with; now stale.
    let day = |text: &str| text.parse().expect("a date");
    let range = ReportRange::new(day("2026-03-24"), day("2026-04-03")).expect("a range");
    let workflow = restaurant();
    let order: Vec<&str> = workflow.states().iter().map(|s| s.key.as_str()).collect();
    assert!(
        rollup_reports(store, &f.shop, &berlin, &range, &order)
            .await
            .is_none()
    );
    rebuild_rollups(store, &f.shop).await;

    let seed = std::env::var("ORDERTRACK_ROLLUP_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| {
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(7, |d| d.as_nanos() as u64)
                | 1
        });
    eprintln!("report rollups fixture seed {seed} (ORDERTRACK_ROLLUP_SEED repeats it)");
    let mut rng = Seeded(seed);
    // Around Berlin's spring-forward (2026-03-29 02:00 → 03:00 local).
    let start = OffsetDateTime::from_unix_timestamp(1_774_483_200).expect("2026-03-26 UTC");
    let manager = Actor {
        id: f.cashier.id,
        role: Role::Manager,
    };
    let states: Vec<String> = workflow
        .states()
        .iter()
        .map(|s| s.key.to_string())
        .collect();
    // The first orders take set paths, so every run has them: completed
    // then cancelled by a manager; completed, corrected back to cooking,
    // completed again; cancelled, then corrected to completed.
    let usual = ["confirmed", "preparing", "cooking", "ready", "completed"];
    let scripted: [Vec<&str>; 3] = [
        [&usual[..], &["cancelled"]].concat(),
        [&usual[..], &["cooking", "ready", "completed"]].concat(),
        vec!["cancelled", "completed"],
    ];
    for n in 0..60 {
        let at = start + Duration::seconds(rng.below(6 * 86_400) as i64);
        let mut new = new_order(
            &f.shop,
            &f.customer,
            &f.lines()[..1 + rng.below(2) as usize],
        );
        new.at = at;
        let mut order = store.place_order(new).await.expect("place_order").order;
        let mut clock = at;
        // Mostly the usual path to done; sometimes a correction anywhere.
        let path: Vec<String> = match scripted.get(n) {
            Some(path) => path.iter().map(|s| (*s).to_owned()).collect(),
            None => (0..rng.below(9) as usize)
                .map(|step| match usual.get(step) {
                    Some(next) if rng.below(5) > 0 => (*next).to_owned(),
                    _ => states[rng.below(states.len() as u64) as usize].clone(),
                })
                .collect(),
        };
        for to in path {
            clock += Duration::seconds(1 + rng.below(600) as i64);
            if to == order.status.as_str() {
                continue;
            }
            let change = plan_transition(&workflow, &order, f.cashier(), &to, None, None, clock)
                .or_else(|_| {
                    ordertrack_domain::plan_correction(
                        &workflow,
                        &order,
                        manager,
                        &to,
                        "fixing the board",
                        None,
                        clock,
                    )
                });
            let Ok(change) = change else {
                assert!(
                    n >= scripted.len(),
                    "{} -> {to} is a set step",
                    order.status
                );
                continue;
            };
            order = store
                .apply_status_change(change)
                .await
                .expect("apply_status_change");
        }
    }

    let raw = raw_reports(store, &f.shop, &berlin, &range, &order).await;
    let kept = rollup_reports(store, &f.shop, &berlin, &range, &order)
        .await
        .expect("built in the store's zone");
    assert_eq!(kept.0, raw.0, "sales, seed {seed}");
    assert_eq!(kept.1, raw.1, "times, seed {seed}");
    assert!(
        raw.0.totals.orders == 60 && raw.1.to_done.count > 0,
        "seed {seed}"
    );
    // A sub-range (days cut at the store's midnights).
    let part = ReportRange::new(day("2026-03-28"), day("2026-03-30")).expect("a range");
    assert_eq!(
        rollup_reports(store, &f.shop, &berlin, &part, &order).await,
        Some(raw_reports(store, &f.shop, &berlin, &part, &order).await),
        "seed {seed}"
    );

    // A rebuild from the orders gives the same days.
    rebuild_rollups(store, &f.shop).await;
    assert_eq!(
        rollup_reports(store, &f.shop, &berlin, &range, &order).await,
        Some(raw.clone()),
        "rebuilt, seed {seed}"
    );

    // Another zone: stale until rebuilt, then that zone's days.
    let auckland = StoreZone::parse("Pacific/Auckland").expect("a zone");
    store
        .update_store_settings(f.shop.id, zone_patch(&auckland))
        .await
        .expect("change the zone");
    assert!(
        rollup_reports(store, &f.shop, &auckland, &range, &order)
            .await
            .is_none()
    );
    rebuild_rollups(store, &f.shop).await;
    let moved = raw_reports(store, &f.shop, &auckland, &range, &order).await;
    assert_ne!(moved.0.days, raw.0.days, "the days moved with the zone");
    assert_eq!(
        rollup_reports(store, &f.shop, &auckland, &range, &order).await,
        Some(moved),
        "seed {seed}"
    );
}

/// A failing request writes nothing: no order, history, event or sequence number.
pub async fn failed_requests_write_nothing(store: Arc<dyn Repository>) {
    let store = &*store;
    let f = Fixture::new(store).await;
    let workflow = restaurant();
    let order = place(store, &f.shop, &f.customer, &f.lines()).await;
    let confirmed = advance(store, &order, f.cashier(), "confirmed").await;
    let before_events = events(store, EventFilter::Store(f.shop.id)).await;
    let before_history = store.history(order.id).await.expect("history");
    let position = store.last_event_position().await.expect("position");

    // A stale status change.
    let stale = store
        .apply_status_change(plan(&order, f.cashier(), "cancelled"))
        .await;
    assert!(matches!(
        stale,
        Err(StoreError::VersionConflict { current: 2 })
    ));

    // An order line for a product that does not exist.
    let mut bad_line = new_order(&f.shop, &f.customer, &f.lines());
    bad_line.lines[1].product =
        ProductId::new(f.menu.iter().map(|p| p.id.get()).max().unwrap_or(0) + 1000);
    assert!(
        store.place_order(bad_line).await.is_err(),
        "an order line must refer to an existing product"
    );

    // An idempotency mismatch.
    let keyed = |hash: &str| NewOrder {
        idempotency: Some(("k".into(), hash.into())),
        ..new_order(&f.shop, &f.customer, &f.lines())
    };
    let keyed_order = store.place_order(keyed("h1")).await.expect("keyed order");
    assert!(keyed_order.created);
    assert_eq!(
        keyed_order.order.number, "R-000002",
        "the failed order used no number"
    );
    assert!(matches!(
        store.place_order(keyed("h2")).await,
        Err(StoreError::IdempotencyMismatch)
    ));

    // An item change on an item of another order.
    let mut foreign_item = plan_item_status(
        &workflow,
        &confirmed,
        f.cashier(),
        confirmed.items[0].id,
        ItemStatus::Preparing,
        now(),
    )
    .expect("plan");
    foreign_item.order_id = keyed_order.order.id;
    foreign_item.expected_version = keyed_order.order.version;
    foreign_item.event.order_id = keyed_order.order.id;
    assert!(
        store.apply_item_change(foreign_item).await.is_err(),
        "an item change must name an item of that order"
    );
    assert_eq!(
        store.order(keyed_order.order.id).await.expect("order"),
        Some(keyed_order.order.clone()),
        "the refused item change left the order's version alone"
    );

    // An item change whose automatic advance is stale: neither part is applied.
    let preparing = advance(store, &confirmed, f.cashier(), "preparing").await;
    let one_item = place(store, &f.shop, &f.customer, &[(&f.menu[2], 1)]).await;
    let one_item = advance(store, &one_item, f.cashier(), "confirmed").await;
    let one_item = advance(store, &one_item, f.cashier(), "preparing").await;
    let mut change = plan_item_status(
        &workflow,
        &one_item,
        f.cashier(),
        one_item.items[0].id,
        ItemStatus::Ready,
        now(),
    )
    .expect("plan");
    let then = change.then.as_mut().expect("the only item ready advances");
    then.expected_version += 10;
    let checkpoint = events(store, EventFilter::Store(f.shop.id)).await;
    let failed = store.apply_item_change(change).await;
    assert!(
        failed.is_err(),
        "a failing advance fails the whole item change"
    );
    assert_eq!(
        store.order(one_item.id).await.expect("order"),
        Some(one_item.clone()),
        "the item change was rolled back with its advance"
    );
    assert_eq!(store.history(one_item.id).await.expect("history").len(), 3);
    assert_eq!(
        events(store, EventFilter::Store(f.shop.id)).await,
        checkpoint,
        "no events from the failed item change"
    );

    // Only the successful requests left traces, and sequences have no holes.
    assert_eq!(store.history(order.id).await.expect("history").len(), 3);
    assert_eq!(
        store.history(order.id).await.expect("history")[..2],
        before_history[..]
    );
    let after_events = events(store, EventFilter::Store(f.shop.id)).await;
    assert_eq!(after_events[..before_events.len()], before_events[..]);
    assert_eq!(
        after_events
            .iter()
            .map(|e| (e.event.order_id, e.event.kind))
            .collect::<Vec<_>>(),
        vec![
            (order.id, EventKind::OrderCreated),
            (order.id, EventKind::StatusChanged),
            (keyed_order.order.id, EventKind::OrderCreated),
            (order.id, EventKind::StatusChanged),
            (one_item.id, EventKind::OrderCreated),
            (one_item.id, EventKind::StatusChanged),
            (one_item.id, EventKind::StatusChanged),
        ]
    );
    assert_store_seq_gap_free(&after_events);
    assert!(after_events[2].id > position);
    assert_eq!(preparing.version, 3);
    assert_eq!(
        order_count(store, OrderScope::Store(f.shop.id)).await,
        3,
        "failed requests created no orders"
    );
}

// ---- concurrency ----

const WRITERS: usize = 8;
const CHANGES_PER_WRITER: usize = 50;

/// Many writers on one store: every event is stored once, ids are unique and
/// increasing, the store's sequence is exactly 1..=N, and a reader that keeps
/// resuming from the last id it saw while the writers run misses nothing.
pub async fn concurrent_writers_keep_events_gap_free(store: Arc<dyn Repository>) {
    let f = Arc::new(Fixture::new(&*store).await);
    let total = WRITERS * CHANGES_PER_WRITER * 2;

    let reader = {
        let store = store.clone();
        let shop = f.shop.id;
        tokio::spawn(async move {
            let deadline = Instant::now() + StdDuration::from_secs(60);
            let mut seen: Vec<StoredEvent> = Vec::new();
            while seen.len() < total && Instant::now() < deadline {
                let after = seen.last().map_or(0, |e| e.id);
                let page = store
                    .events_after(EventFilter::Store(shop), after, 64)
                    .await
                    .expect("events_after");
                if page.is_empty() {
                    tokio::time::sleep(StdDuration::from_millis(2)).await;
                }
                seen.extend(page);
            }
            seen
        })
    };

    let mut writers = Vec::new();
    for _ in 0..WRITERS {
        let store = store.clone();
        let f = f.clone();
        writers.push(tokio::spawn(async move {
            let mut orders = Vec::new();
            for _ in 0..CHANGES_PER_WRITER {
                let order = place(&*store, &f.shop, &f.customer, &f.lines()).await;
                let order = advance(&*store, &order, f.cashier(), "confirmed").await;
                orders.push(order.id);
            }
            orders
        }));
    }
    let mut orders = Vec::new();
    for writer in writers {
        orders.extend(writer.await.expect("writer task"));
    }
    let streamed = reader.await.expect("reader task");

    let stored = store
        .events_after(EventFilter::Store(f.shop.id), 0, (total * 2) as u32)
        .await
        .expect("events_after");
    assert_eq!(stored.len(), total, "exactly the committed events");
    assert_strictly_increasing(&stored);
    assert_store_seq_gap_free(&stored);
    let ids: HashSet<i64> = stored.iter().map(|e| e.id).collect();
    assert_eq!(ids.len(), total, "event ids are unique");
    assert_eq!(
        streamed, stored,
        "a reader resuming from the last id it saw gets every event, once, in order"
    );

    let distinct: HashSet<OrderId> = orders.iter().copied().collect();
    assert_eq!(distinct.len(), WRITERS * CHANGES_PER_WRITER);
    let mut per_order: BTreeMap<OrderId, Vec<(EventKind, i64)>> = BTreeMap::new();
    for event in &stored {
        per_order
            .entry(event.event.order_id)
            .or_default()
            .push((event.event.kind, event.event.order_version));
    }
    assert_eq!(per_order.len(), distinct.len());
    for (order, kinds) in &per_order {
        assert!(distinct.contains(order));
        assert_eq!(
            kinds,
            &vec![(EventKind::OrderCreated, 1), (EventKind::StatusChanged, 2)],
            "order {order}: created, then confirmed"
        );
    }
    let numbers: HashSet<String> = store
        .orders(OrderQuery {
            limit: 1000,
            ..query(OrderScope::Store(f.shop.id))
        })
        .await
        .expect("orders")
        .orders
        .into_iter()
        .map(|o| o.number)
        .collect();
    let expected: HashSet<String> = (1..=distinct.len()).map(|n| format!("R-{n:06}")).collect();
    assert_eq!(numbers, expected, "order numbers are unique and gap-free");
    assert_eq!(
        store.last_event_position().await.expect("position"),
        stored.last().expect("events").id
    );
}

/// Many changes decided on the same version of one order: exactly one wins.
pub async fn concurrent_changes_with_same_version(store: Arc<dyn Repository>) {
    let f = Fixture::new(&*store).await;
    let order = place(&*store, &f.shop, &f.customer, &f.lines()).await;
    let mut tasks = Vec::new();
    for n in 0..20 {
        let store = store.clone();
        let to = if n % 2 == 0 { "confirmed" } else { "cancelled" };
        let change = plan(&order, f.cashier(), to);
        tasks.push(tokio::spawn(async move {
            store
                .apply_status_change(change.clone())
                .await
                .map(|_| change)
        }));
    }
    let mut winners = Vec::new();
    for task in tasks {
        match task.await.expect("task") {
            Ok(change) => winners.push(change),
            Err(StoreError::VersionConflict { current }) => assert_eq!(current, 2),
            Err(other) => panic!("a losing change is a VersionConflict, got {other:?}"),
        }
    }
    assert_eq!(
        winners.len(),
        1,
        "exactly one change with the same version wins"
    );
    let winner = &winners[0];
    let now_order = store.order(order.id).await.expect("order").expect("order");
    assert_eq!(now_order.version, 2);
    assert_eq!(now_order.status, winner.to);
    let history = store.history(order.id).await.expect("history");
    assert_eq!(history.len(), 2);
    assert_eq!(history[1], winner.history);
    let order_events = events(&*store, EventFilter::Order(order.id)).await;
    assert_eq!(order_events.len(), 2);
    assert_eq!(order_events[1].event, winner.event);
    assert_store_seq_gap_free(&events(&*store, EventFilter::Store(f.shop.id)).await);
}

/// Item and status changes of many orders at once (a server store takes
/// them in one batch): each request gets its own result, the applied ones
/// their events in order, the refused ones nothing.
pub async fn concurrent_mixed_changes(store: Arc<dyn Repository>) {
    let f = Fixture::new(&*store).await;
    let workflow = restaurant();
    let cook = cook(&*store).await;
    // An order in the kitchen: version 3, burger and fries queued.
    let in_kitchen = || async {
        let order = place(&*store, &f.shop, &f.customer, &f.lines()).await;
        let order = advance(&*store, &order, f.cashier(), "confirmed").await;
        advance(&*store, &order, cook, "preparing").await
    };
    let item = |order: &Order, n: usize, to: ItemStatus| {
        plan_item_status(&workflow, order, cook, order.items[n].id, to, now()).expect("plan")
    };

    // What each request expects: Ok(version, status, event kinds) or an error.
    enum Want {
        Applied(i64, &'static str, Vec<EventKind>),
        Conflict(i64),
        NotFound(&'static str),
    }
    enum Request {
        Item(Box<ItemStatusChange>),
        Status(Box<StatusChange>),
    }
    let mut requests: Vec<(i64, Request, Want)> = Vec::new();
    for _ in 0..6 {
        let order = in_kitchen().await;
        let change = item(&order, 0, ItemStatus::Preparing);
        let want = Want::Applied(4, "preparing", vec![EventKind::ItemStatusChanged]);
        requests.push((order.id.get(), Request::Item(Box::new(change)), want));
    }
    for _ in 0..3 {
        // The last item ready: the order advances too.
        let order = in_kitchen().await;
        let order = store
            .apply_item_change(item(&order, 0, ItemStatus::Ready))
            .await
            .expect("burger ready");
        let change = item(&order, 1, ItemStatus::Ready);
        assert!(change.then.is_some());
        let want = Want::Applied(
            6,
            "ready",
            vec![EventKind::ItemStatusChanged, EventKind::StatusChanged],
        );
        requests.push((order.id.get(), Request::Item(Box::new(change)), want));
    }
    for _ in 0..4 {
        let order = place(&*store, &f.shop, &f.customer, &f.lines()).await;
        let change = plan(&order, f.cashier(), "confirmed");
        let want = Want::Applied(2, "confirmed", vec![EventKind::StatusChanged]);
        requests.push((order.id.get(), Request::Status(Box::new(change)), want));
    }
    {
        // A stale item change.
        let order = in_kitchen().await;
        let stale = item(&order, 1, ItemStatus::Preparing);
        store
            .apply_item_change(item(&order, 0, ItemStatus::Preparing))
            .await
            .expect("burger preparing");
        requests.push((
            order.id.get(),
            Request::Item(Box::new(stale)),
            Want::Conflict(4),
        ));
    }
    {
        // An item the order does not have.
        let order = in_kitchen().await;
        let mut change = item(&order, 0, ItemStatus::Preparing);
        change.item.id = ItemId::new(i64::MAX);
        requests.push((
            order.id.get(),
            Request::Item(Box::new(change)),
            Want::NotFound("order item"),
        ));
    }
    {
        // A stale status change.
        let order = place(&*store, &f.shop, &f.customer, &f.lines()).await;
        let stale = plan(&order, f.cashier(), "cancelled");
        advance(&*store, &order, f.cashier(), "confirmed").await;
        requests.push((
            order.id.get(),
            Request::Status(Box::new(stale)),
            Want::Conflict(2),
        ));
    }
    let before = events(&*store, EventFilter::Store(f.shop.id)).await.len();

    let mut tasks = Vec::new();
    for (order_id, request, want) in requests {
        let store = store.clone();
        tasks.push(tokio::spawn(async move {
            let result = match request {
                Request::Item(change) => store.apply_item_change(*change).await,
                Request::Status(change) => store.apply_status_change(*change).await,
            };
            (order_id, result, want)
        }));
    }
    let mut applied = 0;
    for task in tasks {
        let (order_id, result, want) = task.await.expect("task");
        let stored = store
            .order(OrderId::new(order_id))
            .await
            .expect("order")
            .expect("order");
        let kinds: Vec<EventKind> = events(&*store, EventFilter::Order(OrderId::new(order_id)))
            .await
            .iter()
            .map(|e| e.event.kind)
            .collect();
        match (result, want) {
            (Ok(order), Want::Applied(version, status, tail)) => {
                assert_eq!(order, stored, "the result is the order as stored");
                assert_eq!(order.version, version);
                assert_eq!(order.status, status);
                assert!(kinds.ends_with(&tail), "order {order_id}: {kinds:?}");
                assert_eq!(kinds.len() as i64, version, "one event per version");
                applied += tail.len();
            }
            (Err(StoreError::VersionConflict { current }), Want::Conflict(want)) => {
                assert_eq!(current, want);
                assert_eq!(stored.version, want, "a refused change writes nothing");
                assert_eq!(kinds.len() as i64, want);
            }
            (Err(StoreError::NotFound(what)), Want::NotFound(want)) => {
                assert_eq!(what, want);
                assert_eq!(stored.version, 3, "a refused change writes nothing");
                assert!(stored.items.iter().all(|i| i.status == ItemStatus::Queued));
                assert_eq!(kinds.len(), 3);
            }
            (result, _) => panic!("order {order_id}: unexpected {result:?}"),
        }
    }
    let stored = events(&*store, EventFilter::Store(f.shop.id)).await;
    assert_eq!(stored.len(), before + applied, "exactly the applied events");
    assert_strictly_increasing(&stored);
    assert_store_seq_gap_free(&stored);
    let mut versions: BTreeMap<i64, i64> = BTreeMap::new();
    for event in &stored {
        let last = versions.entry(event.event.order_id.get()).or_default();
        assert_eq!(
            event.event.order_version,
            *last + 1,
            "an order's events in version order"
        );
        *last = event.event.order_version;
    }
    let all = store.events_since(0, 100_000).await.expect("events_since");
    for pair in all.windows(2) {
        assert_eq!(pair[0].id() + 1, pair[1].id(), "event ids are gap-free");
    }
}

/// New orders placed at once (a server store places them in one batch):
/// each request gets its own result. The good ones are numbered
/// consecutively, each with its event, history entry and place in the
/// day's rollup; one with a line of an unknown product fails alone and
/// writes nothing; one of an unknown store is refused; two requests with
/// one idempotency key make one order.
pub async fn concurrent_creations(store: Arc<dyn Repository>) {
    let f = Fixture::new(&*store).await;
    enum Want {
        Created,
        Keyed,
        Refused,
        NoStore,
    }
    let mut requests: Vec<(NewOrder, Want)> = Vec::new();
    for n in 0..10 {
        let mut request = new_order(&f.shop, &f.customer, &f.lines());
        let want = match n {
            3 => {
                request.lines[1].product =
                    ProductId::new(f.menu.iter().map(|p| p.id.get()).max().unwrap_or(0) + 1000);
                Want::Refused
            }
            5 | 8 => {
                request.idempotency = Some(("twice".into(), "same request".into()));
                Want::Keyed
            }
            6 => {
                request.store_id = StoreId::new(f.shop.id.get() + 1000);
                Want::NoStore
            }
            _ => Want::Created,
        };
        requests.push((request, want));
    }
    let total = requests[0].0.total_minor;
    let tasks: Vec<_> = requests
        .into_iter()
        .map(|(request, want)| {
            let store = store.clone();
            tokio::spawn(async move { (store.place_order(request).await, want) })
        })
        .collect();
    let mut placed: Vec<Order> = Vec::new();
    let mut keyed: Vec<PlacedOrder> = Vec::new();
    for task in tasks {
        match task.await.expect("task") {
            (Ok(order), Want::Created) => {
                assert!(order.created);
                placed.push(order.order);
            }
            (Ok(order), Want::Keyed) => keyed.push(order),
            (Err(StoreError::NotFound("store")), Want::NoStore) => {}
            (Err(_), Want::Refused) => {}
            (result, _) => panic!("unexpected {result:?}"),
        }
    }
    assert_eq!(keyed.len(), 2);
    assert_eq!(
        keyed[0].order.id, keyed[1].order.id,
        "one order for one key"
    );
    assert_eq!(
        keyed.iter().filter(|k| k.created).count(),
        1,
        "the other is a replay"
    );
    let original = keyed.into_iter().find(|k| k.created).expect("created");
    placed.push(original.order);
    assert_eq!(placed.len(), 7);

    let mut numbers: Vec<&str> = placed.iter().map(|o| o.number.as_str()).collect();
    numbers.sort_unstable();
    let want: Vec<String> = (1..=7).map(|n| format!("R-{n:06}")).collect();
    assert_eq!(numbers, want, "consecutive numbers, none used by a failure");
    assert_eq!(order_count(&*store, OrderScope::Store(f.shop.id)).await, 7);
    for order in &placed {
        assert_eq!(
            store.order(order.id).await.expect("order").as_ref(),
            Some(order),
            "the result is the order as stored"
        );
        assert_eq!(order.items.len(), 2);
        assert_eq!(store.history(order.id).await.expect("history").len(), 1);
    }
    let stored = events(&*store, EventFilter::Store(f.shop.id)).await;
    assert_eq!(stored.len(), 7, "one event per order placed");
    assert!(
        stored
            .iter()
            .all(|e| e.event.kind == EventKind::OrderCreated)
    );
    assert_store_seq_gap_free(&stored);
    let all = store.events_since(0, 100_000).await.expect("events_since");
    for pair in all.windows(2) {
        assert_eq!(pair[0].id() + 1, pair[1].id(), "event ids are gap-free");
    }
    let days = store
        .report_days(crate::ReportDaysQuery {
            store: f.shop.id,
            from: "0000-01-01".into(),
            to: "9999-12-31".into(),
            with_times: false,
        })
        .await
        .expect("report_days");
    let (orders, revenue) = days.days.iter().fold((0, 0), |(n, r), (_, day)| {
        (n + day.orders, r + day.revenue_minor)
    });
    assert_eq!(
        (orders, revenue),
        (7, 7 * total),
        "every order counted once"
    );
}

// ---- Throw-away PostgreSQL schemas, for tests against a real server ----

/// The server tests use unless `ORDERTRACK_TEST_DATABASE_URL` names another.
pub const DEFAULT_TEST_DATABASE_URL: &str = "postgres://postgres@127.0.0.1:5432/postgres";

/// The PostgreSQL server tests use: `ORDERTRACK_TEST_DATABASE_URL`, or
/// [`DEFAULT_TEST_DATABASE_URL`].
pub fn test_server_options() -> crate::postgres::PgConnectOptions {
    test_server_url()
        .parse()
        .expect("ORDERTRACK_TEST_DATABASE_URL is not a PostgreSQL URL")
}

/// The URL of the server tests use (see [`test_server_options`]).
fn test_server_url() -> String {
    std::env::var("ORDERTRACK_TEST_DATABASE_URL")
        .ok()
        .filter(|url| !url.trim().is_empty())
        .unwrap_or_else(|| DEFAULT_TEST_DATABASE_URL.to_owned())
}

/// Where the server is, without any password the URL may hold.
fn server_name(options: &crate::postgres::PgConnectOptions) -> String {
    format!(
        "{}:{}/{}",
        options.get_host(),
        options.get_port(),
        options.get_database().unwrap_or_default()
    )
}

async fn connect_server(
    options: &crate::postgres::PgConnectOptions,
) -> Result<sqlx::PgConnection, String> {
    use sqlx::Connection as _;
    match tokio::time::timeout(
        StdDuration::from_secs(5),
        sqlx::PgConnection::connect_with(options),
    )
    .await
    {
        Ok(Ok(conn)) => Ok(conn),
        Ok(Err(error)) => Err(error.to_string()),
        Err(_) => Err("timed out".into()),
    }
}

/// A throw-away schema on the test server, with a unique name; dropped
/// (with everything in it) when this is.
pub struct TestSchema {
    url: String,
    server: crate::postgres::PgConnectOptions,
    name: String,
}

impl TestSchema {
    /// A new empty schema, or why the server could not be reached.
    pub async fn create() -> Result<TestSchema, String> {
        use sqlx::Connection as _;
        static COUNT: AtomicU64 = AtomicU64::new(0);
        let url = test_server_url();
        let server = test_server_options();
        let mut conn = connect_server(&server).await.map_err(|why| {
            format!(
                "PostgreSQL not reachable at {} ({why}); set ORDERTRACK_TEST_DATABASE_URL",
                server_name(&server)
            )
        })?;
        let nanos = OffsetDateTime::now_utc().unix_timestamp_nanos() as u64;
        let name = format!(
            "t_{}_{}_{:x}",
            std::process::id(),
            COUNT.fetch_add(1, Ordering::Relaxed),
            nanos & 0xffff_ffff
        );
        sqlx::raw_sql(sqlx::AssertSqlSafe(format!("CREATE SCHEMA {name}")))
            .execute(&mut conn)
            .await
            .expect("create a test schema");
        let _ = conn.close().await;
        Ok(TestSchema { url, server, name })
    }

    /// A new empty schema; or, without a server, `None` after a loud
    /// `SKIPPED` on stderr — except with `CI=true`, where it panics.
    pub async fn create_or_skip() -> Option<TestSchema> {
        match TestSchema::create().await {
            Ok(schema) => Some(schema),
            Err(message) => {
                crate::testing::skip(&message);
                None
            }
        }
    }

    /// The schema's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// A database URL whose tables live in this schema, its connections
    /// named after the schema: what a server under test is given.
    pub fn url(&self) -> String {
        let separator = if self.url.contains('?') { '&' } else { '?' };
        format!(
            "{}{separator}options[search_path]={name}&application_name={name}",
            self.url,
            name = self.name
        )
    }

    /// Connection options whose tables live in this schema.
    pub fn options(&self) -> crate::postgres::PgConnectOptions {
        self.server
            .clone()
            .options([("search_path", self.name.as_str())])
    }

    /// A migrated store in this schema, its connections named after the
    /// schema (so a test can find them).
    pub async fn open(
        &self, pool_size: u32, listener: Option<Arc<dyn crate::CommitListener>>,
    ) -> crate::PostgresRepository {
        crate::PostgresRepository::connect_with(
            self.options().application_name(&self.name),
            crate::postgres::PostgresOptions {
                pool_size,
                timeout: StdDuration::from_secs(10),
                listener,
            },
        )
        .await
        .expect("open the postgres store")
    }

    /// A plain connection into the schema, for looking under the store.
    pub async fn raw(&self) -> sqlx::PgConnection {
        use sqlx::Connection as _;
        sqlx::PgConnection::connect_with(&self.options())
            .await
            .expect("raw connection")
    }
}

impl Drop for TestSchema {
    fn drop(&mut self) {
        // Dropping needs a runtime, and this may run inside one: use a fresh
        // thread with its own.
        let server = self.server.clone();
        let sql = format!("DROP SCHEMA IF EXISTS {} CASCADE", self.name);
        let name = self.name.clone();
        let dropped = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("runtime");
            runtime.block_on(async move {
                use sqlx::Connection as _;
                let mut conn = connect_server(&server).await?;
                // The test's own connections may still hold locks in the
                // schema (a worker's transaction when the test ended), and
                // their tasks cannot run while this thread is joined: wait
                // a little, then end those sessions and try again.
                sqlx::raw_sql("SET lock_timeout = '2s'")
                    .execute(&mut conn)
                    .await
                    .map_err(|e| e.to_string())?;
                let mut attempts = 0;
                loop {
                    attempts += 1;
                    match sqlx::raw_sql(sqlx::AssertSqlSafe(sql.clone()))
                        .execute(&mut conn)
                        .await
                    {
                        Ok(_) => break,
                        Err(error) if attempts >= 5 => return Err(error.to_string()),
                        Err(_) => {
                            sqlx::query(
                                "SELECT pg_terminate_backend(l.pid) FROM pg_locks l
                                 JOIN pg_class c ON c.oid = l.relation
                                 JOIN pg_namespace n ON n.oid = c.relnamespace
                                 WHERE n.nspname = $1 AND l.pid <> pg_backend_pid()",
                            )
                            .bind(&name)
                            .execute(&mut conn)
                            .await
                            .map_err(|e| e.to_string())?;
                        }
                    }
                }
                let _ = conn.close().await;
                Ok::<(), String>(())
            })
        })
        .join();
        if let Ok(Err(error)) = dropped {
            eprintln!("could not drop test schema {}: {error}", self.name);
        }
    }
}

// ---- webhooks ----

fn new_webhook(shop: &StoreRecord, url: &str, events: &[&str]) -> NewWebhook {
    NewWebhook {
        store_id: shop.id,
        url: url.into(),
        events: events.iter().map(|e| (*e).to_owned()).collect(),
        enabled: true,
        secret: format!("whsec_{url}"),
        created_at: now(),
    }
}

/// Endpoints: added after the log's position, listed per store, rotated
/// (the old secret kept until a time), deleted with their deliveries.
pub async fn webhooks(store: Arc<dyn Repository>) {
    let store = &*store;
    let f = Fixture::new(store).await;
    place(store, &f.shop, &f.customer, &f.lines()).await;
    let before = store.last_event_position().await.expect("position");
    let hook = store
        .create_webhook(new_webhook(&f.shop, "http://a.test/hook", &["*"]))
        .await
        .expect("create_webhook");
    assert_eq!(hook.after_event, before, "it gets what comes after it");
    assert_eq!(
        (
            hook.store_id,
            hook.url.as_str(),
            hook.events.clone(),
            hook.enabled
        ),
        (f.shop.id, "http://a.test/hook", vec!["*".to_owned()], true)
    );
    assert_eq!(
        (hook.previous_secret.clone(), hook.disabled_reason.clone()),
        (None, None)
    );
    let mut off = new_webhook(&f.shop, "http://b.test/hook", &["order.created"]);
    off.enabled = false;
    let off = store.create_webhook(off).await.expect("create_webhook");
    let (verde, _, _) = verde_and_bob(store).await;
    let elsewhere = store
        .create_webhook(new_webhook(&verde, "http://c.test/hook", &["*"]))
        .await
        .expect("create_webhook");

    assert_eq!(
        store.webhooks(f.shop.id).await.expect("webhooks"),
        vec![hook.clone(), off.clone()]
    );
    let enabled: Vec<_> = store
        .enabled_webhooks()
        .await
        .expect("enabled_webhooks")
        .into_iter()
        .map(|w| w.id)
        .collect();
    assert_eq!(enabled, vec![hook.id, elsewhere.id]);

    let until = now() + Duration::hours(24);
    let rotated = store
        .rotate_webhook_secret(f.shop.id, hook.id, "whsec_new".into(), until)
        .await
        .expect("rotate")
        .expect("the endpoint");
    assert_eq!(rotated.secret, "whsec_new");
    assert_eq!(
        rotated.previous_secret.as_deref(),
        Some(hook.secret.as_str())
    );
    assert_eq!(rotated.previous_secret_until, Some(until));
    assert_eq!(
        rotated.signing_secrets(now()),
        vec!["whsec_new", hook.secret.as_str()]
    );
    assert_eq!(rotated.signing_secrets(until), vec!["whsec_new"]);
    // Another store's endpoint is not this store's to rotate or delete.
    assert_eq!(
        store
            .rotate_webhook_secret(verde.id, hook.id, "whsec_x".into(), until)
            .await
            .expect("rotate"),
        None
    );
    assert!(
        !store
            .delete_webhook(verde.id, hook.id)
            .await
            .expect("delete")
    );
    assert!(
        store
            .delete_webhook(f.shop.id, off.id)
            .await
            .expect("delete")
    );
    assert!(
        !store
            .delete_webhook(f.shop.id, off.id)
            .await
            .expect("delete")
    );
    assert_eq!(
        store.webhooks(f.shop.id).await.expect("webhooks"),
        vec![rotated]
    );
}

/// Deliveries: written with the cursor's move (only from where it was),
/// claimed one per endpoint in event order, recorded, retried; 410 turns
/// the endpoint off; deleting it deletes them.
pub async fn webhook_deliveries(store: Arc<dyn Repository>) {
    let store = &*store;
    let f = Fixture::new(store).await;
    let start = store.webhook_cursor().await.expect("cursor");
    assert_eq!(start, store.last_event_position().await.expect("position"));
    let a = store
        .create_webhook(new_webhook(&f.shop, "http://a.test/", &["*"]))
        .await
        .expect("create_webhook");
    let b = store
        .create_webhook(new_webhook(&f.shop, "http://b.test/", &["*"]))
        .await
        .expect("create_webhook");
    place(store, &f.shop, &f.customer, &f.lines()).await;
    place(store, &f.shop, &f.customer, &f.lines()).await;
    let upto = store.last_event_position().await.expect("position");
    let (e1, e2) = (upto - 1, upto);
    let at = now();
    let batch = WebhookEnqueue {
        after: start,
        upto,
        deliveries: vec![(a.id, e1), (a.id, e2), (b.id, e2)],
        at,
    };
    assert!(
        store
            .enqueue_webhook_deliveries(batch.clone())
            .await
            .expect("enqueue")
    );
    assert_eq!(store.webhook_cursor().await.expect("cursor"), upto);
    // From a stale position: nothing written.
    assert!(
        !store
            .enqueue_webhook_deliveries(batch)
            .await
            .expect("enqueue")
    );
    assert_eq!(
        store.webhook_deliveries(a.id, 10).await.expect("log").len(),
        2
    );
    assert_eq!(store.next_webhook_attempt().await.expect("next"), Some(at));

    // One per endpoint, its oldest event first.
    let until = at + Duration::seconds(30);
    let claimed = store
        .claim_webhook_deliveries(at, until, 10)
        .await
        .expect("claim");
    let mut heads: Vec<_> = claimed
        .iter()
        .map(|c| (c.webhook.id, c.delivery.event_id))
        .collect();
    heads.sort();
    assert_eq!(heads, vec![(a.id, e1), (b.id, e2)]);
    let first = claimed
        .iter()
        .find(|c| c.webhook.id == a.id)
        .expect("a's head");
    assert_eq!(first.webhook, a);
    assert_eq!(first.delivery.state, DeliveryState::Pending);
    assert_eq!(first.delivery.event_kind, "order_created");
    // Claimed: nobody else gets them until the claim runs out.
    assert!(
        store
            .claim_webhook_deliveries(at, until, 10)
            .await
            .expect("claim")
            .is_empty()
    );
    assert_eq!(
        store.next_webhook_attempt().await.expect("next"),
        Some(until)
    );

    // a's first fails and is due again later; its second waits behind it.
    let retry_at = at + Duration::minutes(5);
    store
        .record_webhook_attempt(WebhookAttempt {
            delivery: first.delivery.id,
            at,
            http_status: Some(500),
            duration_ms: 12,
            error: None,
            outcome: AttemptOutcome::RetryAt(retry_at),
        })
        .await
        .expect("record");
    let b_head = claimed
        .iter()
        .find(|c| c.webhook.id == b.id)
        .expect("b's head");
    store
        .record_webhook_attempt(WebhookAttempt {
            delivery: b_head.delivery.id,
            at,
            http_status: Some(410),
            duration_ms: 3,
            error: None,
            outcome: AttemptOutcome::EndpointGone,
        })
        .await
        .expect("record");
    let log = store.webhook_deliveries(a.id, 10).await.expect("log");
    let retried = log.iter().find(|d| d.event_id == e1).expect("e1");
    assert_eq!(
        (
            retried.state,
            retried.attempts,
            retried.http_status,
            retried.duration_ms
        ),
        (DeliveryState::Pending, 1, Some(500), Some(12))
    );
    assert_eq!(retried.next_attempt_at, Some(retry_at));
    assert_eq!(log[0].event_id, e2, "newest first");
    let gone = &store.webhooks(f.shop.id).await.expect("webhooks")[1];
    assert!(!gone.enabled);
    assert_eq!(gone.disabled_reason.as_deref(), Some(crate::GONE_REASON));
    assert_eq!(
        store.webhook_deliveries(b.id, 10).await.expect("log")[0].state,
        DeliveryState::Failed
    );
    assert_eq!(
        store.next_webhook_attempt().await.expect("next"),
        Some(retry_at)
    );
    assert!(
        store
            .claim_webhook_deliveries(at + Duration::minutes(1), until, 10)
            .await
            .expect("claim")
            .is_empty(),
        "not due yet, and e2 waits behind e1"
    );

    // Due now, on the owner's say: delivered; then e2 is the head.
    let again = store
        .retry_webhook_delivery(a.id, retried.id, at)
        .await
        .expect("retry")
        .expect("the delivery");
    assert_eq!(again.next_attempt_at, Some(at));
    assert_eq!(
        store
            .retry_webhook_delivery(b.id, retried.id, at)
            .await
            .expect("retry"),
        None,
        "another endpoint's delivery"
    );
    let claimed = store
        .claim_webhook_deliveries(at, until, 10)
        .await
        .expect("claim");
    assert_eq!(claimed.len(), 1);
    assert_eq!(claimed[0].delivery.event_id, e1);
    store
        .record_webhook_attempt(WebhookAttempt {
            delivery: claimed[0].delivery.id,
            at,
            http_status: Some(204),
            duration_ms: 5,
            error: None,
            outcome: AttemptOutcome::Delivered,
        })
        .await
        .expect("record");
    let claimed = store
        .claim_webhook_deliveries(at, until, 10)
        .await
        .expect("claim");
    assert_eq!(claimed.len(), 1);
    assert_eq!(claimed[0].delivery.event_id, e2);
    store
        .record_webhook_attempt(WebhookAttempt {
            delivery: claimed[0].delivery.id,
            at,
            http_status: None,
            duration_ms: 10_000,
            error: Some("timed out".into()),
            outcome: AttemptOutcome::GaveUp,
        })
        .await
        .expect("record");
    let log = store.webhook_deliveries(a.id, 10).await.expect("log");
    let states: Vec<_> = log
        .iter()
        .map(|d| (d.event_id, d.state, d.attempts))
        .collect();
    assert_eq!(
        states,
        vec![
            (e2, DeliveryState::Failed, 1),
            (e1, DeliveryState::Delivered, 2)
        ]
    );
    assert_eq!(log[0].error.as_deref(), Some("timed out"));
    assert_eq!(store.next_webhook_attempt().await.expect("next"), None);

    assert!(store.delete_webhook(f.shop.id, a.id).await.expect("delete"));
    assert!(
        store
            .webhook_deliveries(a.id, 10)
            .await
            .expect("log")
            .is_empty()
    );
}

// ---- customer e-mail ----

/// Mail jobs: made with the cursor's move (only from where it was), one
/// per event and recipient however often they are made, claimed once
/// until the claim runs out, recorded; opt-outs.
pub async fn email_outbox(store: Arc<dyn Repository>) {
    use crate::{EmailAttempt, EmailEnqueue, EmailOutcome};
    let store = &*store;
    let f = Fixture::new(store).await;
    let start = store.email_cursor().await.expect("cursor");
    assert_eq!(start, store.last_event_position().await.expect("position"));
    place(store, &f.shop, &f.customer, &f.lines()).await;
    place(store, &f.shop, &f.customer, &f.lines()).await;
    let upto = store.last_event_position().await.expect("position");
    let (e1, e2) = (upto - 1, upto);
    let at = now();
    let batch = EmailEnqueue {
        after: start,
        upto,
        jobs: vec![
            (e1, f.customer.id),
            (e2, f.customer.id),
            (e2, f.customer.id),
        ],
        at,
    };
    assert!(store.enqueue_emails(batch.clone()).await.expect("enqueue"));
    assert_eq!(store.email_cursor().await.expect("cursor"), upto);
    // From a stale position: nothing written.
    assert!(!store.enqueue_emails(batch).await.expect("enqueue"));
    // The same (event, recipient) again, from the right position: kept once.
    let again = EmailEnqueue {
        after: upto,
        upto,
        jobs: vec![(e2, f.customer.id)],
        at,
    };
    assert!(store.enqueue_emails(again).await.expect("enqueue"));
    let jobs = store.email_jobs(e2).await.expect("jobs");
    assert_eq!(jobs.len(), 1, "{jobs:?}");
    assert_eq!((jobs[0].state.as_str(), jobs[0].attempts), ("pending", 0));
    assert_eq!(store.next_email_attempt().await.expect("next"), Some(at));

    let until = at + Duration::seconds(30);
    let claimed = store.claim_emails(at, until, 10).await.expect("claim");
    assert_eq!(
        claimed.iter().map(|j| j.event_id).collect::<Vec<_>>(),
        [e1, e2],
        "oldest event first"
    );
    assert!(claimed.iter().all(|j| j.user_id == f.customer.id));
    // Claimed: nobody else gets them until the claim runs out.
    assert!(
        store
            .claim_emails(at, until, 10)
            .await
            .expect("claim")
            .is_empty()
    );
    assert_eq!(store.next_email_attempt().await.expect("next"), Some(until));

    // The first is retried later, the second sent.
    let retry_at = at + Duration::minutes(2);
    for (job, outcome) in [
        (&claimed[0], EmailOutcome::RetryAt(retry_at)),
        (&claimed[1], EmailOutcome::Sent),
    ] {
        store
            .record_email_attempt(EmailAttempt {
                job: job.id,
                at,
                error: None,
                outcome,
            })
            .await
            .expect("record");
    }
    assert_eq!(
        store.next_email_attempt().await.expect("next"),
        Some(retry_at)
    );
    assert!(
        store
            .claim_emails(at + Duration::minutes(1), until, 10)
            .await
            .expect("claim")
            .is_empty(),
        "not due yet"
    );
    let again = store
        .claim_emails(retry_at, retry_at + Duration::seconds(30), 10)
        .await
        .expect("claim");
    assert_eq!(again.len(), 1);
    assert_eq!((again[0].event_id, again[0].attempts), (e1, 1));
    let sent = store.email_jobs(e2).await.expect("jobs");
    assert_eq!((sent[0].state.as_str(), sent[0].attempts), ("sent", 1));

    // Opting out and back in; an unknown user is not found.
    assert!(!store.email_opted_out(f.customer.id).await.expect("read"));
    for _ in 0..2 {
        store
            .set_email_opt_out(f.customer.id, true, at)
            .await
            .expect("opt out");
    }
    assert!(store.email_opted_out(f.customer.id).await.expect("read"));
    assert!(!store.email_opted_out(f.cashier.id).await.expect("read"));
    store
        .set_email_opt_out(f.customer.id, false, at)
        .await
        .expect("opt in");
    assert!(!store.email_opted_out(f.customer.id).await.expect("read"));
    let unknown = UserId::new(f.customer.id.get() + 1000);
    assert!(matches!(
        store.set_email_opt_out(unknown, true, at).await,
        Err(StoreError::NotFound(_))
    ));
}

/// Finished outbox jobs made before the retention's start are deleted, a
/// bounded batch at a time; recent ones, and pending ones however old,
/// stay.
pub async fn outbox_pruning(store: Arc<dyn Repository>) {
    use crate::{
        EmailAttempt, EmailEnqueue, EmailOutcome, NewPushSubscription, Outbox, PushAttempt,
        PushEnqueue, PushEvent, PushOutcome, PushOwner,
    };
    let store = &*store;
    let f = Fixture::new(store).await;
    let hook = store
        .create_webhook(new_webhook(&f.shop, "http://a.test/", &["*"]))
        .await
        .expect("create_webhook");
    let other_hook = store
        .create_webhook(new_webhook(&f.shop, "http://b.test/", &["*"]))
        .await
        .expect("create_webhook");
    store
        .save_push_subscription(NewPushSubscription {
            owner: PushOwner::User(f.customer.id),
            endpoint: "https://push.test/a".into(),
            p256dh: "key".into(),
            auth: "secret".into(),
            created_at: now(),
        })
        .await
        .expect("subscribe");
    let mut events = Vec::new();
    for _ in 0..3 {
        let order = place(store, &f.shop, &f.customer, &f.lines()).await;
        events.push(PushEvent {
            event_id: store.last_event_position().await.expect("position"),
            order_id: order.id,
            customer_id: f.customer.id,
        });
    }
    let (e1, e2, e3) = (events[0].event_id, events[1].event_id, events[2].event_id);
    let upto = e3;
    let at = now();
    // Made 40 days ago (events 1 and 2) and yesterday (event 3).
    let (old, recent) = (at - Duration::days(40), at - Duration::days(1));
    let cutoff = at - Duration::days(30);
    let later = at + Duration::hours(1);

    let (c, k) = (f.customer.id, f.cashier.id);
    let after = store.email_cursor().await.expect("cursor");
    for (after, jobs, made) in [
        (after, vec![(e1, c), (e1, k), (e2, c)], old),
        (upto, vec![(e3, c)], recent),
    ] {
        let batch = EmailEnqueue {
            after,
            upto,
            jobs,
            at: made,
        };
        assert!(store.enqueue_emails(batch).await.expect("enqueue"));
    }
    let after = store.push_cursor().await.expect("cursor");
    for (after, events, made) in [
        (after, events[..2].to_vec(), old),
        (upto, events[2..].to_vec(), recent),
    ] {
        let batch = PushEnqueue {
            after,
            upto,
            events,
            at: made,
        };
        assert!(store.enqueue_push_jobs(batch).await.expect("enqueue"));
    }
    let after = store.webhook_cursor().await.expect("cursor");
    for (after, deliveries, made) in [
        (after, vec![(hook.id, e1), (hook.id, e2)], old),
        (upto, vec![(other_hook.id, e3)], recent),
    ] {
        let batch = WebhookEnqueue {
            after,
            upto,
            deliveries,
            at: made,
        };
        assert!(
            store
                .enqueue_webhook_deliveries(batch)
                .await
                .expect("enqueue")
        );
    }

    // Event 2's jobs stay pending (a retry is due later); the rest finish.
    for job in store.claim_emails(at, later, 10).await.expect("claim") {
        let outcome = match (job.event_id, job.user_id == c) {
            (e, _) if e == e2 => EmailOutcome::RetryAt(later),
            (_, true) => EmailOutcome::Sent,
            (_, false) => EmailOutcome::GaveUp,
        };
        let attempt = EmailAttempt {
            job: job.id,
            at,
            error: None,
            outcome,
        };
        store.record_email_attempt(attempt).await.expect("record");
    }
    for job in store.claim_push_jobs(at, later, 10).await.expect("claim") {
        let outcome = match job.event_id {
            e if e == e2 => PushOutcome::RetryAt(later),
            e if e == e1 => PushOutcome::Sent,
            _ => PushOutcome::GaveUp,
        };
        let attempt = PushAttempt {
            job: job.id,
            at,
            http_status: None,
            error: None,
            outcome,
        };
        store.record_push_attempt(attempt).await.expect("record");
    }
    // One endpoint's queue: event 1 delivered, then event 2 retried later.
    for round in 0..2 {
        let claimed = store
            .claim_webhook_deliveries(at, later, 10)
            .await
            .expect("claim");
        assert_eq!(claimed.len(), 2 - round, "{claimed:?}");
        for head in claimed {
            let outcome = if head.delivery.event_id == e2 {
                AttemptOutcome::RetryAt(later)
            } else {
                AttemptOutcome::Delivered
            };
            let attempt = WebhookAttempt {
                delivery: head.delivery.id,
                at,
                http_status: Some(200),
                duration_ms: 1,
                error: None,
                outcome,
            };
            store.record_webhook_attempt(attempt).await.expect("record");
        }
    }

    // Bounded: one at a time, until none is left.
    let prune = |outbox, before, limit| async move {
        store
            .prune_outbox(outbox, before, limit)
            .await
            .expect("prune")
    };
    assert_eq!(prune(Outbox::Email, cutoff, 1).await, 1);
    assert_eq!(prune(Outbox::Email, cutoff, 1).await, 1);
    assert_eq!(prune(Outbox::Email, cutoff, 1).await, 0);
    assert_eq!(prune(Outbox::Push, cutoff, 10).await, 1);
    assert_eq!(prune(Outbox::Webhooks, cutoff, 10).await, 1);
    for outbox in [Outbox::Email, Outbox::Push, Outbox::Webhooks] {
        assert_eq!(prune(outbox, cutoff, 10).await, 0, "{outbox:?}");
    }
    let states = |jobs: Vec<crate::EmailJobRecord>| {
        jobs.into_iter().map(|job| job.state).collect::<Vec<_>>()
    };
    assert!(store.email_jobs(e1).await.expect("jobs").is_empty());
    assert_eq!(
        states(store.email_jobs(e2).await.expect("jobs")),
        ["pending"]
    );
    assert_eq!(states(store.email_jobs(e3).await.expect("jobs")), ["sent"]);
    let log = |webhook| async move {
        store
            .webhook_deliveries(webhook, 10)
            .await
            .expect("log")
            .into_iter()
            .map(|d| (d.event_id, d.state))
            .collect::<Vec<_>>()
    };
    assert_eq!(log(hook.id).await, [(e2, DeliveryState::Pending)]);
    assert_eq!(log(other_hook.id).await, [(e3, DeliveryState::Delivered)]);

    // With the retention's start after them, the recent finished ones go
    // too; the pending ones are still there to be sent.
    let everything = at + Duration::minutes(1);
    for outbox in [Outbox::Email, Outbox::Push, Outbox::Webhooks] {
        assert_eq!(prune(outbox, everything, 10).await, 1, "{outbox:?}");
    }
    assert_eq!(
        states(store.email_jobs(e2).await.expect("jobs")),
        ["pending"]
    );
    assert!(store.email_jobs(e3).await.expect("jobs").is_empty());
    assert_eq!(log(hook.id).await, [(e2, DeliveryState::Pending)]);
    assert!(log(other_hook.id).await.is_empty());
    assert_eq!(store.next_push_attempt().await.expect("next"), Some(later));
    let retried = store
        .claim_push_jobs(later, later, 10)
        .await
        .expect("claim");
    assert_eq!(
        retried.iter().map(|job| job.event_id).collect::<Vec<_>>(),
        [e2]
    );
}
