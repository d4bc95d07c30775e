//! Every built-in workflow walked end to end through the API by the roles
//! its data file names; wrong roles, wrong moves and terminal states refused;
//! the history is exactly the path taken.

use serde_json::{Value, json};

use crate::support::*;

/// Asserts a refused transition and that the order did not change.
async fn refused(app: &TestApp, token: &str, order: &Value, to: &str, http: u16, code: &str) {
    app.transition(token, id(order), to, version(order))
        .await
        .expect_problem(http, code);
    let now = app.order(token, id(order)).await;
    assert_eq!(
        version(&now),
        version(order),
        "refused `{to}` changed the order"
    );
    assert_eq!(status(&now), status(order));
}

/// The ids of the items in a problem's `pending_items`.
/// A driver's move of a pickup order: 404, it is not theirs to see.
async fn not_a_drivers(app: &TestApp, driver: &str, order: &Value, to: &str) {
    app.transition(driver, id(order), to, version(order))
        .await
        .expect_problem(404, "not_found");
}

fn pending_items(problem: &Value) -> Vec<i64> {
    problem["pending_items"]
        .as_array()
        .unwrap_or_else(|| panic!("no pending_items in {problem}"))
        .iter()
        .map(|v| v.as_i64().expect("item id"))
        .collect()
}

#[tokio::test]
async fn restaurant_delivery_order_walks_the_whole_path_with_the_right_roles() {
    let app = spawn_app().await;
    let alice = app.alice().await;
    let cashier = app.user("cashier@demo.test").await;
    let kitchen = app.user("kitchen@demo.test").await;
    let driver = app.user("driver@demo.test").await;
    let owner = app.user("owner@demo.test").await;
    let burger = app.product_id(RESTAURANT, "Classic Burger").await;
    let fries = app.product_id(RESTAURANT, "Fries").await;

    let order = app
        .place_delivery(
            &alice.token,
            RESTAURANT,
            &[(burger, 1), (fries, 2)],
            "1 Main St",
        )
        .await;
    let items = item_ids(&order);
    assert_eq!(order["next_statuses"], json!(["cancelled"]));

    // pending → confirmed: cashier (not the customer, the kitchen or the driver).
    refused(&app, &alice.token, &order, "confirmed", 403, "forbidden").await;
    refused(&app, &kitchen.token, &order, "confirmed", 403, "forbidden").await;
    refused(&app, &driver.token, &order, "confirmed", 403, "forbidden").await;
    // Moves that exist, but not from here.
    refused(
        &app,
        &cashier.token,
        &order,
        "completed",
        409,
        "transition_not_allowed",
    )
    .await;
    refused(
        &app,
        &cashier.token,
        &order,
        "cooking",
        409,
        "transition_not_allowed",
    )
    .await;
    refused(
        &app,
        &kitchen.token,
        &order,
        "ready",
        409,
        "transition_not_allowed",
    )
    .await;
    refused(
        &app,
        &driver.token,
        &order,
        "delivered",
        409,
        "transition_not_allowed",
    )
    .await;
    refused(
        &app,
        &cashier.token,
        &order,
        "pending",
        409,
        "transition_not_allowed",
    )
    .await;
    let seen = app.order(&cashier.token, id(&order)).await;
    assert_eq!(seen["next_statuses"], json!(["confirmed", "cancelled"]));
    let order = app.advance(&cashier.token, &order, "confirmed").await;

    // confirmed → preparing → cooking: kitchen.
    refused(&app, &driver.token, &order, "preparing", 403, "forbidden").await;
    refused(&app, &alice.token, &order, "preparing", 403, "forbidden").await;
    let seen = app.order(&kitchen.token, id(&order)).await;
    assert_eq!(seen["next_statuses"], json!(["preparing"]));
    let order = app.advance(&kitchen.token, &order, "preparing").await;
    let order = app.advance(&kitchen.token, &order, "cooking").await;

    // cooking → ready needs every item ready.
    let problem = app
        .transition(&kitchen.token, id(&order), "ready", version(&order))
        .await
        .expect_problem(409, "items_not_ready")
        .clone();
    assert_eq!(pending_items(&problem), items);

    // The kitchen marks items; the order moves by itself with the last one.
    let order = app
        .set_item(&kitchen.token, id(&order), items[0], "preparing")
        .await
        .expect(200);
    assert_eq!((status(&order), version(&order)), ("cooking", 5));
    assert_eq!(order["items"][0]["status"], "preparing");
    let order = app
        .set_item(&kitchen.token, id(&order), items[0], "ready")
        .await
        .expect(200);
    assert_eq!((status(&order), version(&order)), ("cooking", 6));
    let problem = app
        .transition(&kitchen.token, id(&order), "ready", version(&order))
        .await
        .expect_problem(409, "items_not_ready")
        .clone();
    assert_eq!(pending_items(&problem), vec![items[1]]);
    let order = app
        .set_item(&kitchen.token, id(&order), items[1], "ready")
        .await
        .expect(200);
    assert_eq!(
        status(&order),
        "ready",
        "the last ready item advances the order"
    );
    assert_eq!(
        version(&order),
        8,
        "one version for the item, one for the move"
    );
    assert!(
        order["items"]
            .as_array()
            .unwrap()
            .iter()
            .all(|i| i["status"] == "ready")
    );

    // ready → out_for_delivery → delivered: driver.
    refused(
        &app,
        &kitchen.token,
        &order,
        "out_for_delivery",
        403,
        "forbidden",
    )
    .await;
    refused(
        &app,
        &alice.token,
        &order,
        "out_for_delivery",
        403,
        "forbidden",
    )
    .await;
    refused(&app, &driver.token, &order, "completed", 403, "forbidden").await;
    // A driver moves only the orders assigned to them.
    refused(
        &app,
        &driver.token,
        &order,
        "out_for_delivery",
        403,
        "forbidden",
    )
    .await;
    let order = app
        .assign_driver(&cashier.token, &order, driver.id)
        .await
        .expect(200);
    let seen = app.order(&driver.token, id(&order)).await;
    assert_eq!(seen["next_statuses"], json!(["out_for_delivery"]));
    let order = app.advance(&driver.token, &order, "out_for_delivery").await;
    // Once the food has left, nobody cancels.
    refused(
        &app,
        &owner.token,
        &order,
        "cancelled",
        409,
        "transition_not_allowed",
    )
    .await;
    let order = app.advance(&driver.token, &order, "delivered").await;

    // delivered → completed: cashier, not the driver.
    refused(&app, &driver.token, &order, "completed", 403, "forbidden").await;
    let order = app.advance(&cashier.token, &order, "completed").await;
    assert_eq!(order["next_statuses"], json!([]));
    assert_eq!(order["progress"], 100);

    // Terminal is final, for every role and every target.
    for to in ["cancelled", "pending", "ready", "delivered"] {
        refused(&app, &owner.token, &order, to, 409, "terminal_status").await;
    }
    refused(
        &app,
        &cashier.token,
        &order,
        "completed",
        409,
        "terminal_status",
    )
    .await;
    app.set_item(&kitchen.token, id(&order), items[0], "preparing")
        .await
        .expect_problem(409, "order_finished");

    let history = app.history(&alice.token, id(&order)).await;
    assert_eq!(
        steps(&history),
        vec![
            step(None, "pending", "customer", &alice),
            step(Some("pending"), "confirmed", "cashier", &cashier),
            step(Some("confirmed"), "preparing", "kitchen", &kitchen),
            step(Some("preparing"), "cooking", "kitchen", &kitchen),
            step(Some("cooking"), "ready", "kitchen", &kitchen),
            // The driver's assignment: the status stays.
            step(Some("ready"), "ready", "cashier", &cashier),
            step(Some("ready"), "out_for_delivery", "driver", &driver),
            step(Some("out_for_delivery"), "delivered", "driver", &driver),
            step(Some("delivered"), "completed", "cashier", &cashier),
        ]
    );
    assert_eq!(history[4]["note"], "all items ready");
    assert_chained(&history);
    // Staff see the same history.
    assert_eq!(app.history(&owner.token, id(&order)).await, history);
}

#[tokio::test]
async fn restaurant_pickup_order_goes_from_ready_to_completed() {
    let app = spawn_app().await;
    let alice = app.alice().await;
    let cashier = app.user("cashier@demo.test").await;
    let kitchen = app.user("kitchen@demo.test").await;
    let driver = app.user("driver@demo.test").await;
    let burger = app.product_id(RESTAURANT, "Veggie Burger").await;
    let lemonade = app.product_id(RESTAURANT, "Lemonade").await;

    let order = app
        .place_order(&alice.token, RESTAURANT, &[(burger, 1), (lemonade, 1)])
        .await;
    let items = item_ids(&order);
    let order = app.advance(&cashier.token, &order, "confirmed").await;
    let order = app.advance(&kitchen.token, &order, "preparing").await;
    // Items ready while preparing: straight to ready (no cooking step).
    app.set_item(&kitchen.token, id(&order), items[1], "ready")
        .await
        .expect(200);
    let order = app
        .set_item(&kitchen.token, id(&order), items[0], "ready")
        .await
        .expect(200);
    assert_eq!(status(&order), "ready");

    // Pickup orders are never delivered: not a driver's, they do not exist
    // for one.
    app.get(&format!("/orders/{}", id(&order)), &driver.token)
        .await
        .expect_problem(404, "not_found");
    not_a_drivers(&app, &driver.token, &order, "out_for_delivery").await;
    refused(
        &app,
        &cashier.token,
        &order,
        "delivered",
        409,
        "transition_not_allowed",
    )
    .await;
    refused(&app, &kitchen.token, &order, "completed", 403, "forbidden").await;
    refused(&app, &alice.token, &order, "completed", 403, "forbidden").await;
    let seen = app.order(&cashier.token, id(&order)).await;
    assert_eq!(seen["next_statuses"], json!(["completed", "cancelled"]));
    let order = app.advance(&cashier.token, &order, "completed").await;
    refused(
        &app,
        &cashier.token,
        &order,
        "cancelled",
        409,
        "terminal_status",
    )
    .await;

    let history = app.history(&alice.token, id(&order)).await;
    assert_eq!(
        steps(&history),
        vec![
            step(None, "pending", "customer", &alice),
            step(Some("pending"), "confirmed", "cashier", &cashier),
            step(Some("confirmed"), "preparing", "kitchen", &kitchen),
            step(Some("preparing"), "ready", "kitchen", &kitchen),
            step(Some("ready"), "completed", "cashier", &cashier),
        ]
    );
}

#[tokio::test]
async fn delivery_orders_cannot_skip_the_delivery() {
    let app = spawn_app().await;
    let alice = app.alice().await;
    let manager = app.user("manager@demo.test").await;
    let product = app.product_id(RESTAURANT, "Iced Tea").await;
    let order = app
        .place_delivery(&alice.token, RESTAURANT, &[(product, 1)], "9 Side Rd")
        .await;
    let order = app.advance(&manager.token, &order, "confirmed").await;
    let order = app.advance(&manager.token, &order, "preparing").await;
    let order = app
        .set_item(&manager.token, id(&order), item_ids(&order)[0], "ready")
        .await
        .expect(200);
    assert_eq!(status(&order), "ready");
    refused(
        &app,
        &manager.token,
        &order,
        "completed",
        409,
        "transition_not_allowed",
    )
    .await;
    let seen = app.order(&manager.token, id(&order)).await;
    assert_eq!(
        seen["next_statuses"],
        json!(["out_for_delivery", "cancelled"])
    );
}

#[tokio::test]
async fn ready_is_allowed_by_hand_once_every_item_is_ready() {
    let app = spawn_app().await;
    let alice = app.alice().await;
    let kitchen = app.user("kitchen@demo.test").await;
    let cashier = app.user("cashier@demo.test").await;
    let products = app.product_ids(RESTAURANT).await;
    let order = app
        .place_order(
            &alice.token,
            RESTAURANT,
            &[(products[0], 1), (products[5], 1)],
        )
        .await;
    let order = app.advance(&cashier.token, &order, "confirmed").await;
    // Items become ready while the order is only confirmed: no automatic move.
    for item in item_ids(&order) {
        let now = app
            .set_item(&kitchen.token, id(&order), item, "ready")
            .await
            .expect(200);
        assert_eq!(status(&now), "confirmed");
    }
    let order = app.order(&kitchen.token, id(&order)).await;
    refused(
        &app,
        &kitchen.token,
        &order,
        "ready",
        409,
        "transition_not_allowed",
    )
    .await;
    let order = app.advance(&kitchen.token, &order, "preparing").await;
    let order = app.advance(&kitchen.token, &order, "ready").await;
    assert_eq!(version(&order), 6);
    let history = app.history(&alice.token, id(&order)).await;
    let path: Vec<&str> = history.iter().map(|h| h["to"].as_str().unwrap()).collect();
    assert_eq!(path, vec!["pending", "confirmed", "preparing", "ready"]);
}

#[tokio::test]
async fn an_order_cannot_be_ready_while_items_are_pending() {
    let app = spawn_app().await;
    let alice = app.alice().await;
    let kitchen = app.user("kitchen@demo.test").await;
    let cashier = app.user("cashier@demo.test").await;
    let products = app.product_ids(RESTAURANT).await;
    let order = app
        .place_order(
            &alice.token,
            RESTAURANT,
            &[(products[0], 1), (products[6], 2), (products[10], 3)],
        )
        .await;
    let items = item_ids(&order);
    let order = app.advance(&cashier.token, &order, "confirmed").await;
    let order = app.advance(&kitchen.token, &order, "preparing").await;
    let order = app.advance(&kitchen.token, &order, "cooking").await;
    let order = app
        .set_item(&kitchen.token, id(&order), items[1], "ready")
        .await
        .expect(200);

    for token in [&kitchen.token, &cashier.token] {
        let problem = app
            .transition(token, id(&order), "ready", version(&order))
            .await
            .expect_problem(409, "items_not_ready")
            .clone();
        assert_eq!(pending_items(&problem), vec![items[0], items[2]]);
    }
    // Without a version the rule holds just the same.
    let response = app
        .post(
            &format!("/orders/{}/transitions", id(&order)),
            &kitchen.token,
            &json!({"to": "ready"}),
        )
        .await;
    assert_eq!(
        pending_items(response.expect_problem(409, "items_not_ready")),
        vec![items[0], items[2]]
    );

    let now = app.order(&kitchen.token, id(&order)).await;
    assert_eq!((status(&now), version(&now)), ("cooking", version(&order)));
    assert_eq!(app.history(&alice.token, id(&order)).await.len(), 4);
}

#[tokio::test]
async fn item_changes_are_checked() {
    let app = spawn_app().await;
    let alice = app.alice().await;
    let kitchen = app.user("kitchen@demo.test").await;
    let driver = app.user("driver@demo.test").await;
    let products = app.product_ids(RESTAURANT).await;
    let order = app
        .place_order(&alice.token, RESTAURANT, &[(products[0], 1)])
        .await;
    let other = app
        .place_order(&alice.token, RESTAURANT, &[(products[1], 1)])
        .await;
    let item = item_ids(&order)[0];

    // A pickup order does not exist for the driver.
    app.set_item(&driver.token, id(&order), item, "ready")
        .await
        .expect_problem(404, "not_found");
    app.set_item(&kitchen.token, id(&order), item, "queued")
        .await
        .expect_problem(409, "item_unchanged");
    app.set_item(&kitchen.token, id(&order), item_ids(&other)[0], "ready")
        .await
        .expect_problem(404, "not_found");
    app.set_item(&kitchen.token, id(&order), 99_999_999, "ready")
        .await
        .expect_problem(404, "not_found");
    let now = app.order(&kitchen.token, id(&order)).await;
    assert_eq!(version(&now), 1);
    assert_eq!(now["items"][0]["status"], "queued");
    assert_eq!(version(&app.order(&kitchen.token, id(&other)).await), 1);
}

#[tokio::test]
async fn terminal_states_are_final() {
    let app = spawn_app().await;
    let alice = app.alice().await;
    let owner = app.user("owner@demo.test").await;
    let kitchen = app.user("kitchen@demo.test").await;
    let order = app.place_simple(&alice.token, RESTAURANT).await;
    let order = app.advance(&alice.token, &order, "cancelled").await;
    assert_eq!(order["next_statuses"], json!([]));

    let states = app.store_detail(RESTAURANT).await["statuses"]
        .as_array()
        .expect("statuses")
        .iter()
        .map(|s| s["key"].as_str().unwrap().to_owned())
        .collect::<Vec<_>>();
    assert_eq!(states.len(), 9);
    for to in &states {
        for token in [&owner.token, &alice.token] {
            refused(&app, token, &order, to, 409, "terminal_status").await;
        }
    }
    app.set_item(&kitchen.token, id(&order), item_ids(&order)[0], "ready")
        .await
        .expect_problem(409, "order_finished");
    let history = app.history(&owner.token, id(&order)).await;
    assert_eq!(
        steps(&history),
        vec![
            step(None, "pending", "customer", &alice),
            step(Some("pending"), "cancelled", "customer", &alice),
        ]
    );
}

#[tokio::test]
async fn staff_cancel_until_the_food_leaves_the_kitchen() {
    let app = spawn_app().await;
    let alice = app.alice().await;
    let cashier = app.user("cashier@demo.test").await;
    let kitchen = app.user("kitchen@demo.test").await;
    let order = app.place_simple(&alice.token, RESTAURANT).await;
    let order = app.advance(&cashier.token, &order, "confirmed").await;
    let order = app.advance(&kitchen.token, &order, "preparing").await;
    let order = app.advance(&kitchen.token, &order, "cooking").await;
    refused(&app, &kitchen.token, &order, "cancelled", 403, "forbidden").await;
    let order = app.advance(&cashier.token, &order, "cancelled").await;
    let path: Vec<String> = steps(&app.history(&alice.token, id(&order)).await)
        .into_iter()
        .map(|s| s.1)
        .collect();
    assert_eq!(
        path,
        vec!["pending", "confirmed", "preparing", "cooking", "cancelled"]
    );
}

#[tokio::test]
async fn kitchen_workflow_walks_end_to_end() {
    let app = spawn_app().await;
    let store = app.staffed_store("corner-kitchen", "kitchen", "K").await;
    let alice = app.alice().await;
    let products = store.product_ids();
    let detail = app.store_detail(&store.slug).await;
    assert_eq!(detail["workflow"], "kitchen");
    let keys: Vec<&str> = detail["statuses"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["key"].as_str().unwrap())
        .collect();
    assert_eq!(
        keys,
        vec![
            "pending",
            "confirmed",
            "preparing",
            "ready",
            "completed",
            "cancelled"
        ]
    );

    let order = app
        .place_order(
            &alice.token,
            &store.slug,
            &[(products[0], 2), (products[2], 1)],
        )
        .await;
    assert_eq!(order["number"], "K-000001");
    let items = item_ids(&order);
    // `cooking` is a restaurant status, not a kitchen one.
    refused(
        &app,
        &store.cashier.token,
        &order,
        "cooking",
        422,
        "unknown_status",
    )
    .await;
    refused(&app, &alice.token, &order, "confirmed", 403, "forbidden").await;
    let order = app.advance(&store.cashier.token, &order, "confirmed").await;
    // A pickup order does not exist for a driver (the next step, taken at
    // the version read here, shows that nothing changed).
    not_a_drivers(&app, &store.driver.token, &order, "preparing").await;
    let order = app.advance(&store.kitchen.token, &order, "preparing").await;
    let problem = app
        .transition(&store.kitchen.token, id(&order), "ready", version(&order))
        .await
        .expect_problem(409, "items_not_ready")
        .clone();
    assert_eq!(pending_items(&problem), items);
    app.set_item(&store.kitchen.token, id(&order), items[0], "ready")
        .await
        .expect(200);
    let order = app
        .set_item(&store.kitchen.token, id(&order), items[1], "ready")
        .await
        .expect(200);
    assert_eq!(status(&order), "ready");
    refused(&app, &alice.token, &order, "completed", 403, "forbidden").await;
    not_a_drivers(&app, &store.driver.token, &order, "completed").await;
    let order = app.advance(&store.cashier.token, &order, "completed").await;
    refused(
        &app,
        &store.owner.token,
        &order,
        "cancelled",
        409,
        "terminal_status",
    )
    .await;

    let history = app.history(&alice.token, id(&order)).await;
    assert_eq!(
        steps(&history),
        vec![
            step(None, "pending", "customer", &alice),
            step(Some("pending"), "confirmed", "cashier", &store.cashier),
            step(Some("confirmed"), "preparing", "kitchen", &store.kitchen),
            step(Some("preparing"), "ready", "kitchen", &store.kitchen),
            step(Some("ready"), "completed", "cashier", &store.cashier),
        ]
    );
}

/// Seed 003's kitchen runs without a cashier: the kitchen role alone takes
/// an order from received to completed, and may decline one it cannot make.
#[tokio::test]
async fn kitchen_workflow_walks_end_to_end_by_the_kitchen_alone() {
    let app = spawn_app().await;
    let store = app.staffed_store("corner-kitchen", "kitchen", "K").await;
    let alice = app.alice().await;
    let kitchen = &store.kitchen;
    let order = app.place_simple(&alice.token, &store.slug).await;
    let seen = app.order(&kitchen.token, id(&order)).await;
    assert_eq!(seen["next_statuses"], json!(["confirmed", "cancelled"]));
    let order = app.advance(&kitchen.token, &order, "confirmed").await;
    let order = app.advance(&kitchen.token, &order, "preparing").await;
    let order = app.all_items_ready(&kitchen.token, order).await;
    assert_eq!(status(&order), "ready");
    let order = app.advance(&kitchen.token, &order, "completed").await;
    let history = app.history(&alice.token, id(&order)).await;
    assert_eq!(
        steps(&history),
        vec![
            step(None, "pending", "customer", &alice),
            step(Some("pending"), "confirmed", "kitchen", kitchen),
            step(Some("confirmed"), "preparing", "kitchen", kitchen),
            step(Some("preparing"), "ready", "kitchen", kitchen),
            step(Some("ready"), "completed", "kitchen", kitchen),
        ]
    );

    // An order it cannot make, it declines.
    let declined = app.place_simple(&alice.token, &store.slug).await;
    let declined = app.advance(&kitchen.token, &declined, "cancelled").await;
    assert_eq!(status(&declined), "cancelled");
}

#[tokio::test]
async fn kitchen_workflow_orders_may_be_cancelled_by_the_customer_only_while_pending() {
    let app = spawn_app().await;
    let store = app.staffed_store("corner-kitchen", "kitchen", "K").await;
    let alice = app.alice().await;
    let first = app.place_simple(&alice.token, &store.slug).await;
    app.advance(&alice.token, &first, "cancelled").await;
    let second = app.place_simple(&alice.token, &store.slug).await;
    let second = app
        .advance(&store.manager.token, &second, "confirmed")
        .await;
    refused(&app, &alice.token, &second, "cancelled", 403, "forbidden").await;
    app.advance(&store.manager.token, &second, "cancelled")
        .await;
}

#[tokio::test]
async fn retail_order_walks_end_to_end_by_the_seller_and_a_driver() {
    let app = spawn_app().await;
    let alice = app.alice().await;
    let seller = app.user("seller@demo.test").await;
    let driver = app.user("driver@demo.test").await;
    // The seller takes on the restaurant's driver for deliveries.
    app.post(
        &format!("/stores/{SHOP}/staff"),
        &seller.token,
        &json!({"email": "driver@demo.test", "role": "driver"}),
    )
    .await
    .expect(201);

    let products = app.product_ids(SHOP).await;
    let order = app
        .place_delivery(
            &alice.token,
            SHOP,
            &[(products[0], 1), (products[3], 5)],
            "7 Shop St",
        )
        .await;
    assert_eq!(order["total_minor"], 1900 + 5 * 400);
    refused(&app, &alice.token, &order, "confirmed", 403, "forbidden").await;
    refused(&app, &driver.token, &order, "confirmed", 403, "forbidden").await;
    refused(
        &app,
        &seller.token,
        &order,
        "shipped",
        409,
        "transition_not_allowed",
    )
    .await;
    // Restaurant staff have no say in the shop.
    let cashier = app.login("cashier@demo.test").await;
    app.transition(&cashier, id(&order), "confirmed", 1)
        .await
        .expect_problem(404, "not_found");

    let order = app.advance(&seller.token, &order, "confirmed").await;
    let order = app.advance(&seller.token, &order, "processing").await;
    refused(&app, &driver.token, &order, "shipped", 403, "forbidden").await;
    let order = app.advance(&seller.token, &order, "shipped").await;
    // Once shipped it cannot be cancelled.
    refused(
        &app,
        &seller.token,
        &order,
        "cancelled",
        409,
        "transition_not_allowed",
    )
    .await;
    let order = app
        .assign_driver(&seller.token, &order, driver.id)
        .await
        .expect(200);
    let seen = app.order(&driver.token, id(&order)).await;
    assert_eq!(seen["next_statuses"], json!(["delivered"]));
    let order = app.advance(&driver.token, &order, "delivered").await;
    assert_eq!(order["progress"], 100);
    for to in ["cancelled", "shipped", "pending"] {
        refused(&app, &seller.token, &order, to, 409, "terminal_status").await;
    }

    let history = app.history(&alice.token, id(&order)).await;
    assert_eq!(
        steps(&history),
        vec![
            step(None, "pending", "customer", &alice),
            step(Some("pending"), "confirmed", "owner", &seller),
            step(Some("confirmed"), "processing", "owner", &seller),
            step(Some("processing"), "shipped", "owner", &seller),
            step(Some("shipped"), "shipped", "owner", &seller),
            step(Some("shipped"), "delivered", "driver", &driver),
        ]
    );
}

#[tokio::test]
async fn transition_notes_are_kept_in_the_history() {
    let app = spawn_app().await;
    let alice = app.alice().await;
    let cashier = app.user("cashier@demo.test").await;
    let order = app.place_simple(&alice.token, RESTAURANT).await;
    let moved = app
        .post(
            &format!("/orders/{}/transitions", id(&order)),
            &cashier.token,
            &json!({"to": "confirmed", "note": "table 4", "expected_version": 1}),
        )
        .await
        .expect(200);
    assert_eq!(status(&moved), "confirmed");
    let history = app.history(&alice.token, id(&order)).await;
    assert_eq!(history[1]["note"], "table 4");
    assert!(history[1]["at"].is_string());
    assert_eq!(history[1]["actor"]["id"], cashier.id);
}
