//! What the integration tests of every crate share: how a test that needs
//! an outside service (PostgreSQL, NATS, Chromium) behaves without it, and
//! orders placed at a chosen instant ([`order_placed_at`]: the application
//! reads the clock, tests that need a history at known times hand these to
//! the store). The throw-away PostgreSQL schemas they run on are
//! [`TestSchema`](crate::conformance::TestSchema).

use std::io::Write as _;
use std::sync::atomic::{AtomicU64, Ordering};

use ordertrack_domain::{
    Actor, Fulfilment, FulfilmentKind, OrderLine, OrderSummary, PaymentMethod, Role, UserId,
    Workflow, order_total,
};
use time::OffsetDateTime;

use crate::{NewOrder, Product, StoreRecord};

/// 32 hex characters, unique within the process.
fn tracking_token() -> String {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let count = COUNTER.fetch_add(1, Ordering::Relaxed);
    let nanos = OffsetDateTime::now_utc().unix_timestamp_nanos() as u64;
    format!("{nanos:016x}{count:016x}")
}

/// A pickup order as the application builds it — `lines` of `shop`'s
/// products at their prices, for `customer` (placing it themselves), in
/// `workflow`'s first state under the store's built-in workflow — placed
/// at `at`.
pub fn order_placed_at(
    shop: &StoreRecord, workflow: &Workflow, customer: UserId, lines: &[(&Product, u32)],
    at: OffsetDateTime,
) -> NewOrder {
    let initial = workflow.initial().key.clone();
    NewOrder {
        store_id: shop.id,
        customer_id: customer,
        placed_by: Actor {
            id: customer,
            role: Role::Customer,
        },
        lines: lines
            .iter()
            .map(|(product, quantity)| OrderLine {
                product: product.id,
                name: product.name.clone(),
                quantity: *quantity,
                unit_price_minor: product.price_minor,
                notes: None,
                station: product.station.clone(),
            })
            .collect(),
        total_minor: order_total(
            lines
                .iter()
                .map(|(product, quantity)| (product.price_minor, *quantity)),
        )
        .expect("a small total"),
        fulfilment: Fulfilment {
            kind: FulfilmentKind::Pickup,
            address: None,
        },
        notes: None,
        currency: shop.currency.clone(),
        summary: OrderSummary::of(workflow, "", &initial, FulfilmentKind::Pickup),
        status: initial,
        workflow_version: 0,
        tracking_token: tracking_token(),
        payment_method: PaymentMethod::Cash,
        idempotency: None,
        at,
    }
}

/// Skips the calling test because `missing` (what is not there, and how
/// to provide it): says so loudly on stderr, and the caller returns. With
/// `CI=true` it panics instead — CI must run every test.
pub fn skip(missing: &str) {
    if std::env::var("CI").is_ok_and(|ci| ci == "true") {
        panic!("{missing} — CI=true: tests that need it must not be skipped");
    }
    // Straight to the process's stderr: the test harness captures
    // `eprintln!` of passing tests, and this must not go unseen.
    let banner = format!(
        "\n==================================================================\n\
         SKIPPED: {missing}\n\
         ==================================================================\n\n"
    );
    let _ = std::io::stderr().lock().write_all(banner.as_bytes());
}

/// Puts store `id` in time zone `zone` (an IANA name).
pub async fn set_zone(store: &dyn crate::Repository, id: ordertrack_domain::StoreId, zone: &str) {
    store
        .update_store_settings(
            id,
            crate::StoreSettingsPatch {
                timezone: Some(ordertrack_domain::StoreZone::parse(zone).expect("a time zone")),
                ..crate::StoreSettingsPatch::default()
            },
        )
        .await
        .expect("update the store's settings")
        .expect("the store exists");
}
