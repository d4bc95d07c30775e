//! The ETA window (`eta: {earliest, latest, basis}`) through the API and
//! the order stream: a new order's window comes from the workflow's
//! expected minutes until the store has finished enough orders, then from
//! their real durations (written through the store at chosen instants, as
//! the application would, since the application reads the clock); a
//! terminal order has none; a cancelled order teaches nothing.

use ordertrack_domain::{Actor, Order, Role, UserId, Workflow};
use ordertrack_store::StoreRecord;
use serde_json::Value;
use time::format_description::well_known::Rfc3339;
use time::{Duration, OffsetDateTime};

use crate::support::*;

const ETA_SHOP: &str = "eta-books";

fn retail() -> Workflow {
    Workflow::builtin("retail").expect("the built-in retail workflow")
}

/// An RFC 3339 field of `value`.
fn instant(value: &Value, field: &str) -> OffsetDateTime {
    let text = value[field]
        .as_str()
        .unwrap_or_else(|| panic!("{field} in {value}"));
    OffsetDateTime::parse(text, &Rfc3339).unwrap_or_else(|e| panic!("{field} {text}: {e}"))
}

/// The window's bounds as seconds after `from`, and its basis.
fn window(eta: &Value, from: OffsetDateTime) -> (i64, i64, &str) {
    (
        (instant(eta, "earliest") - from).whole_seconds(),
        (instant(eta, "latest") - from).whole_seconds(),
        eta["basis"].as_str().expect("a basis"),
    )
}

/// How long finished order `n` takes from placing to delivered:
/// 10,000 + 100·n seconds. Over orders 0…19 the nearest-rank p50 is
/// order 9's (10,900 s) and the p90 order 17's (11,700 s).
fn total_seconds(n: i64) -> i64 {
    10_000 + 100 * n
}

/// Places order `n` of the history (a day ago plus `n` hours) for
/// `customer` and walks it to delivered as the cashier: confirmed after
/// 600 s, processing after 3,600 s, shipped after 3,600 s, delivered after
/// the rest of [`total_seconds`].
async fn finished_order(
    app: &TestApp, shop: &StaffedStore, record: &StoreRecord, customer: &User, n: i64,
) -> Order {
    let cashier = Actor {
        id: UserId::new(shop.cashier.id),
        role: Role::Cashier,
    };
    let placed_at = OffsetDateTime::now_utc() - Duration::days(2) + Duration::hours(n);
    let steps = [
        ("confirmed", 600, None),
        ("processing", 3_600, None),
        ("shipped", 3_600, None),
        ("delivered", total_seconds(n) - 7_800, None),
    ];
    let lines = [(&shop.products[0], 1)];
    let placed = app
        .place_at(
            record,
            &retail(),
            UserId::new(customer.id),
            &lines,
            placed_at,
        )
        .await;
    app.walk(&retail(), placed, cashier, &steps).await
}

#[tokio::test]
async fn a_new_order_has_a_workflow_window_that_never_grows_and_a_terminal_one_none() {
    let app = spawn_app().await;
    let shop = app.staffed_store(ETA_SHOP, "retail", "E").await;
    let alice = app.alice().await;
    let product = shop.products[0].id.get();

    let order = app
        .place_order(&alice.token, ETA_SHOP, &[(product, 1)])
        .await;
    // pending 30 + confirmed 60 + processing 240 + shipped 1,440 minutes;
    // latest half as much again. Measured from entering the state.
    let (earliest, latest, basis) = window(&order["eta"], instant(&order, "created_at"));
    assert_eq!(
        (earliest, latest, basis),
        (1_770 * 60, 2_655 * 60, "workflow")
    );
    assert_eq!(order["eta_minutes"], 1_770, "the old field stays");
    assert_eq!(
        app.order(&alice.token, id(&order)).await["eta"],
        order["eta"]
    );

    // Moving on (sooner than expected) moves neither bound later.
    let confirmed = app.advance(&shop.cashier.token, &order, "confirmed").await;
    let (earliest2, latest2, basis2) = window(&confirmed["eta"], instant(&order, "created_at"));
    assert_eq!(basis2, "workflow");
    assert!(earliest2 <= earliest && latest2 <= latest, "{confirmed}");
    let entered = instant(&confirmed, "updated_at");
    assert_eq!(
        instant(&confirmed["eta"], "earliest"),
        entered + Duration::minutes(1_740)
    );

    // Terminal: cancelled and delivered orders have no window.
    let cancelled = app
        .move_order(&shop.cashier.token, id(&order), "cancelled")
        .await;
    assert_eq!(cancelled["eta"], Value::Null);
    assert_eq!(cancelled["eta_minutes"], Value::Null);
    let other = app
        .place_order(&alice.token, ETA_SHOP, &[(product, 1)])
        .await;
    for to in ["confirmed", "processing", "shipped", "delivered"] {
        app.move_order(&shop.cashier.token, id(&other), to).await;
    }
    assert_eq!(
        app.order(&alice.token, id(&other)).await["eta"],
        Value::Null
    );
    let listed = app
        .list(&shop.cashier.token, &format!("?store={ETA_SHOP}"))
        .await;
    assert!(listed.iter().all(|o| o["eta"] == Value::Null), "{listed:?}");
}

#[tokio::test]
async fn after_twenty_finished_orders_the_window_is_learned_and_the_stream_carries_it() {
    let app = spawn_app().await;
    let shop = app.staffed_store(ETA_SHOP, "retail", "E").await;
    let record = app.store_record(ETA_SHOP).await;
    let alice = app.alice().await;
    let product = shop.products[0].id.get();

    for n in 0..19 {
        finished_order(&app, &shop, &record, &alice, n).await;
    }
    // A cancelled order does not count.
    let customer = Actor {
        id: UserId::new(alice.id),
        role: Role::Customer,
    };
    let placed_at = OffsetDateTime::now_utc() - Duration::days(1);
    let lines = [(&shop.products[0], 1)];
    let placed = app
        .place_at(&record, &retail(), UserId::new(alice.id), &lines, placed_at)
        .await;
    app.walk(&retail(), placed, customer, &[("cancelled", 60, None)])
        .await;
    let early = app
        .place_order(&alice.token, ETA_SHOP, &[(product, 1)])
        .await;
    assert_eq!(
        early["eta"]["basis"], "workflow",
        "19 finished orders: {early}"
    );

    finished_order(&app, &shop, &record, &alice, 19).await;
    let order = app
        .place_order(&alice.token, ETA_SHOP, &[(product, 1)])
        .await;
    let created = instant(&order, "created_at");
    assert_eq!(
        window(&order["eta"], created),
        (10_900, 11_700, "learned"),
        "{order}"
    );
    assert_eq!(order["eta_minutes"], 1_770, "the old field stays");

    // The order's stream: its creation and each change carry the window of
    // the state they leave it in, measured from the event.
    let path = format!("/orders/{}/events", id(&order));
    let mut stream = app.sse(&path, Some(&alice.token), Some(0)).await;
    let created_event = stream.next_event().await.expect("the creation").json();
    assert_eq!(created_event["type"], "order_created", "{created_event}");
    assert_eq!(created_event["summary"]["eta"], order["eta"]);

    app.advance(&shop.cashier.token, &order, "confirmed").await;
    let moved = stream.next_event().await.expect("the change").json();
    assert_eq!(moved["to"], "confirmed", "{moved}");
    // From confirmed: 600 s less than from placing.
    assert_eq!(
        window(&moved["summary"]["eta"], instant(&moved, "at")),
        (10_300, 11_100, "learned"),
        "{moved}"
    );
}

#[tokio::test]
async fn pages_show_the_window_as_text_and_staff_a_due_time_late_once_past() {
    let app = spawn_app().await;
    let kitchen = app.staffed_store("eta-kitchen", "kitchen", "K").await;
    let alice = app.alice().await;
    let product = kitchen.products[0].id.get();

    // pending 3 + confirmed 5 + preparing 12 + ready 5 minutes: 25–38 min
    // (latest half as much again, rounded up to the minute).
    let order = app
        .place_order(&alice.token, "eta-kitchen", &[(product, 1)])
        .await;
    let (code, tracker) = page(&app, &alice.token, &format!("/orders/{}", id(&order))).await;
    assert_eq!(code, 200);
    assert!(tracker.contains("data-eta-earliest"), "{tracker}");
    assert!(tracker.contains("in about 25–38 min"), "{tracker}");

    // Retail's long path reads as a day and time, never "1770 min".
    let retail = app.staffed_store(ETA_SHOP, "retail", "E").await;
    let parcel = app
        .place_order(&alice.token, ETA_SHOP, &[(retail.products[0].id.get(), 1)])
        .await;
    let (_, tracker) = page(&app, &alice.token, &format!("/orders/{}", id(&parcel))).await;
    assert!(
        tracker.contains("Expected <strong data-eta-text>by "),
        "{tracker}"
    );
    assert!(!tracker.contains("1770 min"), "{tracker}");

    // Staff: "due" on the dashboard and the kitchen's cards; an order
    // placed long ago and still waiting is late.
    let record = app.store_record("eta-kitchen").await;
    let lines = [(&kitchen.products[0], 1)];
    app.place_at(
        &record,
        &Workflow::builtin("kitchen").expect("the kitchen workflow"),
        UserId::new(alice.id),
        &lines,
        OffsetDateTime::now_utc() - Duration::hours(2),
    )
    .await;
    let (_, dashboard) = page(&app, &kitchen.cashier.token, "/dashboard/eta-kitchen").await;
    assert_eq!(dashboard.matches("class=\"due\"").count(), 1, "{dashboard}");
    assert_eq!(
        dashboard.matches("class=\"due late\"").count(),
        1,
        "{dashboard}"
    );
    app.advance(&kitchen.cashier.token, &order, "confirmed")
        .await;
    let (_, board) = page(&app, &kitchen.kitchen.token, "/kitchen/eta-kitchen").await;
    assert!(board.contains("class=\"due\""), "{board}");
    assert!(board.contains("data-clock"), "{board}");
}

/// The kitchen bumps `order` (as last seen) to its hand-off.
async fn bump(app: &TestApp, token: &str, order: &Value) -> Value {
    app.post(
        &format!("/orders/{}/bump", id(order)),
        token,
        &serde_json::json!({"expected_version": version(order)}),
    )
    .await
    .expect(200)
}

#[tokio::test]
async fn an_orders_latest_moves_earlier_as_the_orders_ahead_of_it_are_bumped() {
    let app = spawn_app().await;
    let shop = app.staffed_store("eta-queue", "kitchen", "Q").await;
    let alice = app.alice().await;
    let product = shop.products[0].id.get();
    let mut ahead = Vec::new();
    for _ in 0..4 {
        ahead.push(
            app.place_order(&alice.token, "eta-queue", &[(product, 1)])
                .await,
        );
    }
    let order = app
        .place_order(&alice.token, "eta-queue", &[(product, 1)])
        .await;
    // The order waits in `pending`, so its window is measured from placing
    // throughout and moves only with the queue. Alone: pending 3 +
    // confirmed 5 + preparing 12 + ready 5 = 25 min, latest half as much
    // again. The kitchen works on 3 orders at once; each order ahead
    // beyond them adds a third of the kitchen's part (confirmed +
    // preparing: 17 min, p90 25.5 min): 340 s to earliest, 510 s to latest.
    let placed = instant(&order, "created_at");
    let alone = (1_500, 2_250);
    let queued = |beyond: i64| (alone.0 + 340 * beyond, alone.1 + 510 * beyond, "workflow");
    assert_eq!(window(&order["eta"], placed), queued(2), "4 ahead: {order}");
    let seen = app.order(&alice.token, id(&order)).await;
    assert_eq!(window(&seen["eta"], placed), queued(2), "{seen}");

    // Confirming an order ahead keeps it in the kitchen's queue.
    let first = app
        .advance(&shop.cashier.token, &ahead[0], "confirmed")
        .await;
    let seen = app.order(&alice.token, id(&order)).await;
    assert_eq!(window(&seen["eta"], placed), queued(2), "{seen}");

    // The kitchen bumps the orders ahead to their hand-off, one by one.
    let mut latest = instant(&seen["eta"], "latest");
    for (bumped, beyond) in [(first, 1), (ahead[1].clone(), 0)] {
        let bumped = bump(&app, &shop.kitchen.token, &bumped).await;
        assert_eq!(bumped["status"], "ready", "{bumped}");
        let seen = app.order(&alice.token, id(&order)).await;
        assert_eq!(window(&seen["eta"], placed), queued(beyond), "{seen}");
        assert!(instant(&seen["eta"], "latest") < latest, "{seen}");
        latest = instant(&seen["eta"], "latest");
        // Staff see the same window on the store's list.
        let listed = app
            .list(&shop.cashier.token, "?store=eta-queue&status=pending")
            .await;
        let row = listed
            .iter()
            .find(|o| o["id"] == order["id"])
            .expect("the order is listed");
        assert_eq!(row["eta"], seen["eta"]);
    }
    // Within the lanes, bumping more moves nothing.
    bump(&app, &shop.kitchen.token, &ahead[2]).await;
    let seen = app.order(&alice.token, id(&order)).await;
    assert_eq!(window(&seen["eta"], placed), queued(0), "{seen}");
}

/// 2026-03-02 (a Monday) plus `day` days at `hour`:`minute` in Berlin
/// (UTC+1 throughout: summer time starts on the 29th).
fn berlin(day: i64, hour: i64, minute: i64) -> OffsetDateTime {
    OffsetDateTime::from_unix_timestamp(1_772_409_600).expect("2026-03-02T00:00:00Z")
        + Duration::days(day)
        + Duration::hours(hour - 1)
        + Duration::minutes(minute)
}

#[tokio::test]
async fn an_order_gets_the_window_of_its_band_of_the_day_once_that_band_has_enough_orders() {
    let app = spawn_app().await;
    let shop = app.staffed_store(ETA_SHOP, "retail", "E").await;
    app.patch(
        &format!("/stores/{ETA_SHOP}"),
        &shop.owner.token,
        &serde_json::json!({"timezone": "Europe/Berlin"}),
    )
    .await
    .expect(200);
    let record = app.store_record(ETA_SHOP).await;
    let alice = app.alice().await;
    let cashier = Actor {
        id: UserId::new(shop.cashier.id),
        role: Role::Cashier,
    };
    let lines = [(&shop.products[0], 1)];
    let workflow = retail();
    let place = |at| app.place_at(&record, &workflow, UserId::new(alice.id), &lines, at);
    // A history on a fixed clock: 20 lunch orders (placed at 12:00 in
    // Berlin) take 600 + 10·n seconds to delivered, 20 evening orders
    // (19:00) 1,800 + 10·n.
    for n in 0..20 {
        for (hour, total) in [(12, 600), (19, 1_800)] {
            let placed = place(berlin(n, hour, 0)).await;
            let steps = [
                ("confirmed", 60, None),
                ("processing", 60, None),
                ("shipped", 60, None),
                ("delivered", total + 10 * n - 180, None),
            ];
            app.walk(&retail(), placed, cashier, &steps).await;
        }
    }

    // Nearest-rank p50 and p90 of 20: the 10th and 18th.
    let at_lunch = place(berlin(30, 12, 30)).await;
    let at_dinner = place(berlin(30, 19, 30)).await;
    let afternoon = place(berlin(30, 15, 0)).await;
    for (order, expected, band) in [
        (&at_lunch, (690, 770), Some("lunch")),
        (&at_dinner, (1_890, 1_970), Some("evening")),
        // No afternoon orders yet: all 40 together (the 20th and 36th).
        (&afternoon, (790, 1_950), None),
    ] {
        let seen = app.order(&alice.token, order.id.get()).await;
        let (earliest, latest, basis) = window(&seen["eta"], order.status_since);
        assert_eq!(
            (earliest, latest, basis),
            (expected.0, expected.1, "learned"),
            "{seen}"
        );
        assert_eq!(seen["eta"]["band"].as_str(), band, "{seen}");
    }
}
