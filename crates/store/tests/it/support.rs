//! What both backends' tests set up: a shop with one product and one
//! customer, orders for it (placed, then confirmed), and a listener that
//! records what the writer reports after each commit — and the check both
//! make of it.

use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};

use ordertrack_domain::{
    Actor, DayBand, Fulfilment, FulfilmentKind, Order, OrderLine, OrderSummary, Role, Workflow,
    plan_transition,
};
use ordertrack_store::conformance::{assert_published_in_full, sign_kim_in_and_out};
use ordertrack_store::{
    CommitListener, LogEntry, NewOrder, NewProduct, NewStore, NewUser, Product, Repository,
    StoreError, StoreRecord, User,
};
use time::OffsetDateTime;

/// Records what a store's writer reports after each commit.
#[derive(Default)]
pub struct Recorder(pub Mutex<Vec<LogEntry>>);

impl CommitListener for Recorder {
    fn committed(&self, events: &[LogEntry]) {
        self.0.lock().expect("lock").extend_from_slice(events);
    }
}

impl Recorder {
    /// The ids of the log entries reported so far.
    pub fn ids(&self) -> Vec<i64> {
        self.0
            .lock()
            .expect("lock")
            .iter()
            .map(LogEntry::id)
            .collect()
    }
}

/// A store ("rosso") selling a burger, and a customer.
pub struct Shop {
    pub shop: StoreRecord,
    pub burger: Product,
    pub customer: User,
}

/// Creates the [`Shop`].
pub async fn shop(store: &dyn Repository) -> Shop {
    let shop = store
        .create_store(NewStore {
            slug: "rosso".into(),
            name: "Rosso".into(),
            currency: "EUR".parse().expect("a currency code"),
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
    let customer = store
        .create_user(NewUser {
            email: "alice@example.test".into(),
            name: "Alice".into(),
            password_hash: "hash".into(),
            is_admin: false,
        })
        .await
        .expect("create_user");
    Shop {
        shop,
        burger,
        customer,
    }
}

fn tracking_token() -> String {
    static COUNT: AtomicU64 = AtomicU64::new(0);
    let nanos = OffsetDateTime::now_utc().unix_timestamp_nanos() as u64;
    format!("{nanos:016x}{:016x}", COUNT.fetch_add(1, Ordering::Relaxed))
}

/// A pickup order of two burgers by the customer, with an optional
/// idempotency `(key, request hash)`.
pub fn new_order(f: &Shop, idempotency: Option<(&str, &str)>) -> NewOrder {
    let workflow = Workflow::builtin("restaurant").expect("workflow");
    NewOrder {
        store_id: f.shop.id,
        customer_id: f.customer.id,
        placed_by: Actor {
            id: f.customer.id,
            role: Role::Customer,
        },
        lines: vec![OrderLine {
            product: f.burger.id,
            name: f.burger.name.clone(),
            quantity: 2,
            unit_price_minor: f.burger.price_minor,
            notes: None,
            station: f.burger.station.clone(),
        }],
        fulfilment: Fulfilment {
            kind: FulfilmentKind::Pickup,
            address: None,
        },
        notes: None,
        currency: "EUR".parse().expect("a currency code"),
        total_minor: 2 * f.burger.price_minor,
        status: "pending".into(),
        workflow_version: 0,
        summary: OrderSummary::of(&workflow, "", "pending", FulfilmentKind::Pickup),
        tracking_token: tracking_token(),
        payment_method: ordertrack_domain::PaymentMethod::Cash,
        idempotency: idempotency.map(|(key, hash)| (key.into(), hash.into())),
        at: OffsetDateTime::now_utc(),
    }
}

/// Places an order and confirms it (two events); returns the confirmed order.
pub async fn place_and_confirm(store: &dyn Repository, f: &Shop) -> Order {
    let placed = store
        .place_order(new_order(f, None))
        .await
        .expect("place_order");
    let workflow = Workflow::builtin("restaurant").expect("workflow");
    let cashier = Actor {
        id: f.customer.id,
        role: Role::Cashier,
    };
    let change = plan_transition(
        &workflow,
        &placed.order,
        cashier,
        "confirmed",
        None,
        Some(placed.order.version),
        OffsetDateTime::now_utc(),
    )
    .expect("plan");
    store
        .apply_status_change(change)
        .await
        .expect("apply_status_change")
}

/// On a store reporting its commits to `recorder`: an order placed and
/// confirmed, then a stale change refused. The listener got exactly the
/// committed events, in order; the refused change published nothing; a
/// logout is published as an access change.
pub async fn listener_sees_exactly_the_committed_events(
    store: &dyn Repository, recorder: &Recorder,
) {
    let f = shop(store).await;
    let order = place_and_confirm(store, &f).await;
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

    // A logout is published as an access change.
    let logged_out = sign_kim_in_and_out(store).await;
    let stored = store.events_since(0, 100).await.expect("events");
    let published = recorder.0.lock().expect("lock").clone();
    assert_published_in_full(&published, &stored, logged_out);
}

/// Kept durations as migration 20 finds them (no band column yet), for
/// the shop once in Berlin: `(entered, band)` — when each sample's order
/// entered its state (seconds since the epoch; every sample is 600 s long)
/// and the band it must get. 2026-03-02 05:30, 13:30 and 20:30 UTC are
/// 06:30, 14:30 and 21:30 in Berlin: each in another band than in UTC.
pub const SAMPLES_BEFORE_BANDS: [(i64, DayBand); 3] = [
    (1_772_429_400, DayBand::Morning),
    (1_772_458_200, DayBand::Afternoon),
    (1_772_483_400, DayBand::Night),
];

/// Puts the shop in Berlin; returns the statements that take the database
/// back to before migration 20 with [`SAMPLES_BEFORE_BANDS`] kept.
pub async fn samples_before_bands(store: &dyn Repository, f: &Shop) -> Vec<String> {
    ordertrack_store::testing::set_zone(store, f.shop.id, "Europe/Berlin").await;
    let mut sql = vec![
        "ALTER TABLE eta_samples DROP COLUMN band".to_owned(),
        "DELETE FROM schema_migrations WHERE version = 20".to_owned(),
    ];
    for (entered, _) in SAMPLES_BEFORE_BANDS {
        sql.push(format!(
            "INSERT INTO eta_samples (store_id, fulfilment, state, seconds, at)
             VALUES ({}, 'pickup', 'pending', 600, {})",
            f.shop.id.get(),
            (entered + 600) * 1_000_000
        ));
    }
    sql
}

/// After migration 20 ran again: every kept sample has its band.
pub async fn samples_have_their_bands(store: &dyn Repository, f: &Shop) {
    let kept = store
        .store_durations(f.shop.id)
        .await
        .expect("store_durations");
    let mut bands: Vec<Option<DayBand>> = kept.samples.iter().map(|s| s.band).collect();
    bands.sort();
    let mut expected: Vec<Option<DayBand>> = SAMPLES_BEFORE_BANDS
        .iter()
        .map(|&(_, band)| Some(band))
        .collect();
    expected.sort();
    assert_eq!(bands, expected, "{kept:?}");
}
