//! The kitchen through the API: bump, hand-off and recall as single atomic
//! steps (all of it or nothing: items, status, history and events), who may
//! take them, the kitchen board (oldest first, per station, kitchen states
//! only), and a driver's order list (deliveries only, in the API and on the
//! dashboard page, counts included).

use ordertrack_domain::OrderId;
use ordertrack_store::{EventFilter, StoredEvent};
use serde_json::{Value, json};

use crate::support::*;

/// `POST /orders/{id}/bump`.
async fn bump(app: &TestApp, token: &str, order: i64, body: Value) -> Resp {
    app.post(&format!("/orders/{order}/bump"), token, &body)
        .await
}

/// Bumps `order` (one station's items, or the whole order) at the version
/// it has.
async fn bump_seen(app: &TestApp, token: &str, order: &Value, station: Option<&str>) -> Resp {
    let mut body = json!({"expected_version": version(order)});
    if let Some(station) = station {
        body["station"] = json!(station);
    }
    bump(app, token, id(order), body).await
}

/// `POST /orders/{id}/handoff` at `expected_version`.
async fn hand_off(app: &TestApp, token: &str, order: i64, expected_version: i64) -> Resp {
    app.post(
        &format!("/orders/{order}/handoff"),
        token,
        &json!({"expected_version": expected_version}),
    )
    .await
}

/// `POST /orders/{id}/recall`.
async fn recall(app: &TestApp, token: &str, order: i64) -> Resp {
    app.post_empty(&format!("/orders/{order}/recall"), token)
        .await
}

/// `GET /stores/{slug}/kitchen{query}`.
async fn board(app: &TestApp, token: &str, slug: &str, query: &str) -> Resp {
    app.get(&format!("/stores/{slug}/kitchen{query}"), token)
        .await
}

/// The ids of a board's orders, in the board's order.
fn board_ids(board: &Value) -> Vec<i64> {
    ids(board["items"].as_array().expect("board items"))
}

/// The stored events of one order.
async fn order_events(app: &TestApp, order: i64) -> Vec<StoredEvent> {
    app.store
        .events_after(EventFilter::Order(OrderId::new(order)), 0, 1000)
        .await
        .expect("events")
}

/// Everything a refused kitchen action must leave as it was: the order, its
/// history, its events and the global event position.
#[derive(Debug, PartialEq)]
struct Trace {
    order: Value,
    history: Vec<Value>,
    events: Vec<StoredEvent>,
    position: i64,
}

async fn trace(app: &TestApp, token: &str, order: i64) -> Trace {
    Trace {
        order: app.order(token, order).await,
        history: app.history(token, order).await,
        events: order_events(app, order).await,
        position: app.app.event_position().await.expect("event position"),
    }
}

/// The statuses of an order's items, in line order.
fn item_statuses(order: &Value) -> Vec<String> {
    order["items"]
        .as_array()
        .expect("items")
        .iter()
        .map(|item| item["status"].as_str().expect("item status").to_owned())
        .collect()
}

/// Alice's pickup order at the demo restaurant: a Classic Burger (grill)
/// and Fries (fryer).
async fn burger_and_fries(app: &TestApp, alice: &User) -> Value {
    let burger = app.product_id(RESTAURANT, "Classic Burger").await;
    let fries = app.product_id(RESTAURANT, "Fries").await;
    app.place_order(&alice.token, RESTAURANT, &[(burger, 1), (fries, 1)])
        .await
}

#[tokio::test]
async fn kitchen_bumps_a_whole_order_to_its_hand_off_in_one_atomic_step() {
    let app = spawn_app().await;
    let alice = app.alice().await;
    let cashier = app.user("cashier@demo.test").await;
    let kitchen = app.user("kitchen@demo.test").await;
    let order = burger_and_fries(&app, &alice).await;
    let order = app.advance(&cashier.token, &order, "confirmed").await;
    let before = trace(&app, &kitchen.token, id(&order)).await;

    let bumped = bump_seen(&app, &kitchen.token, &order, None)
        .await
        .expect(200);

    // Two items ready, then confirmed → preparing → ready: four versions.
    assert_eq!(status(&bumped), "ready");
    assert_eq!(version(&bumped), version(&order) + 4);
    assert_eq!(item_statuses(&bumped), ["ready", "ready"]);
    assert_eq!(bumped, app.order(&kitchen.token, id(&order)).await);
    let history = app.history(&kitchen.token, id(&order)).await;
    assert_chained(&history);
    assert_eq!(
        steps(&history[before.history.len()..]),
        vec![
            step(Some("confirmed"), "preparing", "kitchen", &kitchen),
            step(Some("preparing"), "ready", "kitchen", &kitchen),
        ]
    );
    let events = order_events(&app, id(&order)).await;
    let new = &events[before.events.len()..];
    assert_eq!(
        new.iter()
            .map(|e| e.event.order_version)
            .collect::<Vec<_>>(),
        (version(&order) + 1..=version(&order) + 4).collect::<Vec<_>>(),
        "one event per step, versions consecutive"
    );
    assert_eq!(new[0].id, before.position + 1);
    for pair in new.windows(2) {
        assert_eq!(pair[1].id, pair[0].id + 1, "the bump's events are gap-free");
    }
    assert_eq!(
        app.app.event_position().await.expect("position"),
        before.position + 4
    );
}

#[tokio::test]
async fn a_station_bump_readies_its_items_and_the_last_station_advances_the_order() {
    let app = spawn_app().await;
    let alice = app.alice().await;
    let cashier = app.user("cashier@demo.test").await;
    let kitchen = app.user("kitchen@demo.test").await;
    let order = burger_and_fries(&app, &alice).await;
    let order = app.advance(&cashier.token, &order, "confirmed").await;
    let order = app.advance(&kitchen.token, &order, "preparing").await;

    let grill = bump_seen(&app, &kitchen.token, &order, Some("grill"))
        .await
        .expect(200);
    assert_eq!(item_statuses(&grill), ["ready", "queued"]);
    assert_eq!(status(&grill), "preparing", "the fryer is not done yet");
    assert_eq!(version(&grill), version(&order) + 1);

    // Nothing left for the grill.
    let again = bump_seen(&app, &kitchen.token, &grill, Some("grill")).await;
    again.expect_problem(409, "item_unchanged");

    let fryer = bump_seen(&app, &kitchen.token, &grill, Some("fryer"))
        .await
        .expect(200);
    assert_eq!(item_statuses(&fryer), ["ready", "ready"]);
    assert_eq!(status(&fryer), "ready", "the last item advances the order");
    assert_eq!(version(&fryer), version(&grill) + 2);
    let history = app.history(&kitchen.token, id(&order)).await;
    let last = history.last().expect("history");
    assert_eq!(last["to"], "ready");
    assert_eq!(last["note"], "all items ready");
}

#[tokio::test]
async fn cashier_manager_and_owner_may_bump_as_the_workflow_lets_them() {
    let app = spawn_app().await;
    let alice = app.alice().await;
    for email in ["cashier@demo.test", "manager@demo.test", "owner@demo.test"] {
        let staff = app.user(email).await;
        // From pending: these roles may take every step to the hand-off.
        let order = burger_and_fries(&app, &alice).await;
        let bumped = bump_seen(&app, &staff.token, &order, None)
            .await
            .expect(200);
        assert_eq!(status(&bumped), "ready", "{email}");
        let history = app.history(&staff.token, id(&order)).await;
        assert_eq!(
            history
                .iter()
                .map(|h| h["to"].as_str().expect("to"))
                .collect::<Vec<_>>(),
            ["pending", "confirmed", "preparing", "ready"],
            "{email}"
        );
    }
}

#[tokio::test]
async fn a_bump_whose_later_step_the_kitchen_may_not_take_changes_nothing() {
    let app = spawn_app().await;
    let alice = app.alice().await;
    let kitchen = app.user("kitchen@demo.test").await;
    // Pending: the kitchen could ready the items, but not confirm the order.
    let order = burger_and_fries(&app, &alice).await;
    let before = trace(&app, &kitchen.token, id(&order)).await;

    let refused = bump_seen(&app, &kitchen.token, &order, None).await;
    refused.expect_problem(403, "forbidden");
    assert_eq!(trace(&app, &kitchen.token, id(&order)).await, before);
    assert_eq!(item_statuses(&before.order), ["queued", "queued"]);

    // Handing it off is refused the same way.
    hand_off(&app, &kitchen.token, id(&order), version(&order))
        .await
        .expect_problem(403, "forbidden");
    assert_eq!(trace(&app, &kitchen.token, id(&order)).await, before);
}

#[tokio::test]
async fn a_stale_expected_version_is_a_conflict_and_changes_nothing() {
    let app = spawn_app().await;
    let alice = app.alice().await;
    let cashier = app.user("cashier@demo.test").await;
    let kitchen = app.user("kitchen@demo.test").await;
    let order = burger_and_fries(&app, &alice).await;
    let seen = app.advance(&cashier.token, &order, "confirmed").await;
    // Someone taps an item after the kitchen's screen was drawn.
    app.set_item(&kitchen.token, id(&seen), item_ids(&seen)[0], "preparing")
        .await
        .expect(200);
    let before = trace(&app, &kitchen.token, id(&order)).await;

    let stale = bump(
        &app,
        &kitchen.token,
        id(&order),
        json!({"expected_version": version(&seen)}),
    )
    .await;
    let problem = stale.expect_problem(409, "version_conflict");
    assert_eq!(problem["current_version"], version(&seen) + 1);
    assert_eq!(trace(&app, &kitchen.token, id(&order)).await, before);

    let stale = hand_off(&app, &kitchen.token, id(&order), version(&seen)).await;
    let problem = stale.expect_problem(409, "version_conflict");
    assert_eq!(problem["current_version"], version(&seen) + 1);
    assert_eq!(trace(&app, &kitchen.token, id(&order)).await, before);
}

#[tokio::test]
async fn customers_drivers_and_other_stores_may_not_bump_or_hand_off() {
    let app = spawn_app().await;
    let alice = app.alice().await;
    let bob = app.bob().await;
    let cashier = app.user("cashier@demo.test").await;
    let driver = app.user("driver@demo.test").await;
    let other = app.staffed_store("other-diner", "restaurant", "O").await;
    let order = burger_and_fries(&app, &alice).await;
    let order = app.advance(&cashier.token, &order, "confirmed").await;
    let before = trace(&app, &cashier.token, id(&order)).await;
    let body = json!({"expected_version": version(&order)});

    // Her own order: she may see it, not work it.
    bump(&app, &alice.token, id(&order), body.clone())
        .await
        .expect_problem(403, "forbidden");
    hand_off(&app, &alice.token, id(&order), version(&order))
        .await
        .expect_problem(403, "forbidden");
    // The driver does not cook; a pickup order does not even exist for them.
    bump(&app, &driver.token, id(&order), body.clone())
        .await
        .expect_problem(404, "not_found");
    hand_off(&app, &driver.token, id(&order), version(&order))
        .await
        .expect_problem(404, "not_found");
    // For anyone else the order does not exist.
    for token in [&bob.token, &other.kitchen.token, &other.owner.token] {
        bump(&app, token, id(&order), body.clone())
            .await
            .expect_problem(404, "not_found");
        hand_off(&app, token, id(&order), version(&order))
            .await
            .expect_problem(404, "not_found");
        recall(&app, token, id(&order))
            .await
            .expect_problem(404, "not_found");
    }
    bump(&app, ANON, id(&order), body.clone())
        .await
        .expect_problem(401, "unauthenticated");
    bump(&app, &cashier.token, id(&order) + 1000, body)
        .await
        .expect_problem(404, "not_found");
    assert_eq!(trace(&app, &cashier.token, id(&order)).await, before);
}

#[tokio::test]
async fn kitchen_cannot_bump_another_stores_order() {
    let app = spawn_app().await;
    let other = app.staffed_store("night-grill", "restaurant", "N").await;
    let kitchen = app.user("kitchen@demo.test").await;
    let alice = app.alice().await;
    let burger = other.products[0].id;
    let order = app
        .place_order(&alice.token, &other.slug, &[(burger.get(), 1)])
        .await;
    let order = app.advance(&other.cashier.token, &order, "confirmed").await;
    let before = trace(&app, &other.owner.token, id(&order)).await;
    bump_seen(&app, &kitchen.token, &order, None)
        .await
        .expect_problem(404, "not_found");
    assert_eq!(trace(&app, &other.owner.token, id(&order)).await, before);
    // Its own kitchen may.
    let bumped = bump_seen(&app, &other.kitchen.token, &order, None)
        .await
        .expect(200);
    assert_eq!(status(&bumped), "ready");
}

#[tokio::test]
async fn hand_off_waits_for_every_station_then_moves_in_one_step() {
    let app = spawn_app().await;
    let alice = app.alice().await;
    let cashier = app.user("cashier@demo.test").await;
    let kitchen = app.user("kitchen@demo.test").await;
    let order = burger_and_fries(&app, &alice).await;
    let order = app.advance(&cashier.token, &order, "confirmed").await;
    let [burger, fries] = item_ids(&order)[..] else {
        panic!("two items");
    };
    let order = app
        .set_item(&kitchen.token, id(&order), burger, "ready")
        .await
        .expect(200);
    let before = trace(&app, &kitchen.token, id(&order)).await;

    let waiting = hand_off(&app, &kitchen.token, id(&order), version(&order)).await;
    let problem = waiting.expect_problem(409, "items_not_ready");
    assert_eq!(problem["pending_items"], json!([fries]));
    assert!(
        problem["detail"]
            .as_str()
            .is_some_and(|d| d.contains("every station")),
        "{problem}"
    );
    assert_eq!(trace(&app, &kitchen.token, id(&order)).await, before);

    let order = app
        .set_item(&kitchen.token, id(&order), fries, "ready")
        .await
        .expect(200);
    assert_eq!(
        status(&order),
        "confirmed",
        "nothing advances from confirmed"
    );
    let handed = hand_off(&app, &kitchen.token, id(&order), version(&order))
        .await
        .expect(200);
    assert_eq!(status(&handed), "ready");
    assert_eq!(version(&handed), version(&order) + 2);
    assert_eq!(item_statuses(&handed), item_statuses(&order));
    let history = app.history(&kitchen.token, id(&order)).await;
    assert_eq!(
        steps(&history[history.len() - 2..]),
        vec![
            step(Some("confirmed"), "preparing", "kitchen", &kitchen),
            step(Some("preparing"), "ready", "kitchen", &kitchen),
        ]
    );

    // Handed off already.
    hand_off(&app, &kitchen.token, id(&order), version(&handed))
        .await
        .expect_problem(409, "transition_not_allowed");
}

#[tokio::test]
async fn recall_without_a_way_back_in_the_workflow_is_a_clear_conflict() {
    let app = spawn_app().await;
    let alice = app.alice().await;
    let cashier = app.user("cashier@demo.test").await;
    let kitchen = app.user("kitchen@demo.test").await;
    let order = burger_and_fries(&app, &alice).await;
    let order = app.advance(&cashier.token, &order, "confirmed").await;

    // Not handed off yet: nothing to recall.
    let early = recall(&app, &kitchen.token, id(&order)).await;
    early.expect_problem(409, "transition_not_allowed");

    let handed = bump_seen(&app, &kitchen.token, &order, None)
        .await
        .expect(200);
    let before = trace(&app, &kitchen.token, id(&order)).await;
    for token in [&kitchen.token, &cashier.token] {
        let refused = recall(&app, token, id(&order)).await;
        let problem = refused.expect_problem(409, "transition_not_allowed");
        let detail = problem["detail"].as_str().unwrap_or_default();
        assert!(
            detail.contains("no way back") && detail.contains("`ready`"),
            "{problem}"
        );
    }
    assert_eq!(trace(&app, &kitchen.token, id(&order)).await, before);
    assert_eq!(status(&handed), "ready");
}

#[tokio::test]
async fn the_board_lists_orders_in_kitchen_states_oldest_first_by_station() {
    let app = spawn_app().await;
    let alice = app.alice().await;
    let bob = app.bob().await;
    let cashier = app.user("cashier@demo.test").await;
    let kitchen = app.user("kitchen@demo.test").await;
    let lemonade = app.product_id(RESTAURANT, "Lemonade").await;

    let pending = burger_and_fries(&app, &alice).await;
    let oldest = burger_and_fries(&app, &bob).await;
    let drinks = app
        .place_order(&alice.token, RESTAURANT, &[(lemonade, 2)])
        .await;
    let handed_off = burger_and_fries(&app, &alice).await;
    let cancelled = burger_and_fries(&app, &bob).await;
    let newest = burger_and_fries(&app, &bob).await;
    // Moved in another order than placed: the board goes by age.
    let newest = app.advance(&cashier.token, &newest, "confirmed").await;
    let drinks = app.advance(&cashier.token, &drinks, "confirmed").await;
    let drinks = app.advance(&kitchen.token, &drinks, "preparing").await;
    let oldest = app.advance(&cashier.token, &oldest, "confirmed").await;
    let handed_off = app.advance(&cashier.token, &handed_off, "confirmed").await;
    bump_seen(&app, &kitchen.token, &handed_off, None)
        .await
        .expect(200);
    app.advance(&cashier.token, &cancelled, "cancelled").await;

    let all = board(&app, &kitchen.token, RESTAURANT, "")
        .await
        .expect(200);
    assert_eq!(
        board_ids(&all),
        vec![id(&oldest), id(&drinks), id(&newest)],
        "confirmed and preparing orders, oldest first; not {} (pending)",
        id(&pending)
    );
    assert_eq!(all["store"], RESTAURANT);
    assert_eq!(all["station"], Value::Null);
    assert_eq!(all["stations"], json!(["drinks", "fryer", "grill"]));
    // Each order as the order endpoints show it.
    for item in all["items"].as_array().expect("items") {
        assert_eq!(item, &app.order(&kitchen.token, id(item)).await);
    }

    let grill = board(&app, &kitchen.token, RESTAURANT, "?station=grill")
        .await
        .expect(200);
    assert_eq!(board_ids(&grill), vec![id(&oldest), id(&newest)]);
    assert_eq!(grill["station"], "grill");
    let bar = board(&app, &kitchen.token, RESTAURANT, "?station=drinks")
        .await
        .expect(200);
    assert_eq!(board_ids(&bar), vec![id(&drinks)]);

    // A station that is done with an order no longer sees it.
    bump_seen(&app, &kitchen.token, &oldest, Some("grill"))
        .await
        .expect(200);
    let grill = board(&app, &kitchen.token, RESTAURANT, "?station=grill")
        .await
        .expect(200);
    assert_eq!(board_ids(&grill), vec![id(&newest)]);
    let fryer = board(&app, &kitchen.token, RESTAURANT, "?station=fryer")
        .await
        .expect(200);
    assert_eq!(board_ids(&fryer), vec![id(&oldest), id(&newest)]);
    assert!(
        board(&app, &kitchen.token, RESTAURANT, "?station=pastry")
            .await
            .expect(200)["items"]
            .as_array()
            .is_some_and(Vec::is_empty)
    );
}

#[tokio::test]
async fn the_board_is_for_the_stores_staff_only() {
    let app = spawn_app().await;
    let alice = app.alice().await;
    let other = app.staffed_store("late-kitchen", "kitchen", "L").await;
    for email in [
        "kitchen@demo.test",
        "cashier@demo.test",
        "owner@demo.test",
        "admin@demo.test",
    ] {
        let token = app.login(email).await;
        board(&app, &token, RESTAURANT, "").await.expect(200);
    }
    board(&app, &alice.token, RESTAURANT, "")
        .await
        .expect_problem(404, "not_found");
    board(&app, &other.kitchen.token, RESTAURANT, "")
        .await
        .expect_problem(404, "not_found");
    board(&app, ANON, RESTAURANT, "")
        .await
        .expect_problem(401, "unauthenticated");
    let kitchen = app.login("kitchen@demo.test").await;
    board(&app, &kitchen, "no-such-store", "")
        .await
        .expect_problem(404, "not_found");
    board(&app, &kitchen, RESTAURANT, "?colour=red")
        .await
        .expect_problem(400, "invalid_query");
    // A store whose workflow has no kitchen (retail) has an empty board.
    let seller = app.login("seller@demo.test").await;
    let shop = board(&app, &seller, SHOP, "").await.expect(200);
    assert_eq!(shop["items"], json!([]));
}

#[tokio::test]
async fn kitchen_bodies_refuse_unknown_fields_and_need_a_version() {
    let app = spawn_app().await;
    let alice = app.alice().await;
    let cashier = app.user("cashier@demo.test").await;
    let order = burger_and_fries(&app, &alice).await;
    let order = app.advance(&cashier.token, &order, "confirmed").await;
    let before = trace(&app, &cashier.token, id(&order)).await;
    let path = |action: &str| format!("/orders/{}/{action}", id(&order));
    for (action, body) in [
        (
            "bump",
            json!({"expected_version": version(&order), "colour": "red"}),
        ),
        ("bump", json!({"station": "grill"})),
        ("bump", json!({"expected_version": "two"})),
        (
            "handoff",
            json!({"expected_version": version(&order), "station": "grill"}),
        ),
        ("handoff", json!({})),
    ] {
        app.post(&path(action), &cashier.token, &body)
            .await
            .expect_problem(422, "invalid_body");
    }
    app.raw(
        reqwest::Method::POST,
        &path("bump"),
        &cashier.token,
        Some("application/json"),
        "{",
    )
    .await
    .expect_problem(400, "malformed_json");
    app.post("/orders/not-a-number/bump", &cashier.token, &json!({}))
        .await
        .expect_problem(400, "invalid_path");
    assert_eq!(trace(&app, &cashier.token, id(&order)).await, before);
}

#[tokio::test]
async fn a_drivers_order_list_has_only_deliveries() {
    let app = spawn_app().await;
    let alice = app.alice().await;
    let cashier = app.user("cashier@demo.test").await;
    let driver = app.user("driver@demo.test").await;
    let burger = app.product_id(RESTAURANT, "Classic Burger").await;
    let pickup = app
        .place_order(&alice.token, RESTAURANT, &[(burger, 1)])
        .await;
    let delivery = app
        .place_delivery(&alice.token, RESTAURANT, &[(burger, 2)], "1 Main St")
        .await;
    let later_pickup = app
        .place_order(&alice.token, RESTAURANT, &[(burger, 3)])
        .await;
    // A driver lists the orders assigned to them.
    app.assign_driver(&cashier.token, &delivery, driver.id)
        .await
        .expect(200);

    assert_eq!(
        ids(&app.store_orders(&driver.token, RESTAURANT).await),
        vec![id(&delivery)]
    );
    assert_eq!(
        ids(&app.store_orders(&cashier.token, RESTAURANT).await),
        vec![id(&later_pickup), id(&delivery), id(&pickup)]
    );
    assert_eq!(
        ids(&app
            .list(
                &driver.token,
                &format!("?store={RESTAURANT}&status=pending")
            )
            .await),
        vec![id(&delivery)]
    );
    // Pages of one: the driver's cursor walks deliveries only.
    let page = app
        .get(
            &format!("/orders?store={RESTAURANT}&limit=1"),
            &driver.token,
        )
        .await
        .expect(200);
    assert_eq!(
        ids(page["items"].as_array().expect("items")),
        vec![id(&delivery)]
    );
    assert_eq!(page["next_cursor"], Value::Null);

    // The dashboard page shows the driver the same.
    let page = app
        .client
        .get(format!("{}/dashboard/{RESTAURANT}", app.base))
        .bearer_auth(&driver.token)
        .send()
        .await
        .expect("dashboard");
    assert_eq!(page.status(), 200);
    let html = page.text().await.expect("html");
    assert!(html.contains(&format!("data-order-id=\"{}\"", id(&delivery))));
    assert!(
        html.contains("1 Main St"),
        "the driver's card shows the address"
    );
    for hidden in [&pickup, &later_pickup] {
        assert!(
            !html.contains(&format!("data-order-id=\"{}\"", id(hidden))),
            "the driver's dashboard shows pickup order {}",
            id(hidden)
        );
    }
}
