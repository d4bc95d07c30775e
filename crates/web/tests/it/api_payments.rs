//! Payments (issue 14): a store offers payment methods, an order carries
//! its method and whether it is paid; the counter marks it paid (a driver
//! only for money taken at the door), managers and owners refund up to what
//! was paid; each change is version checked, in the history and on every
//! open stream; a workflow state may require payment first.

use serde_json::{Value, json};

use crate::support::*;

const ALL_METHODS: [&str; 4] = [
    "cash",
    "card_at_counter",
    "card_on_delivery",
    "prepaid_external",
];

/// A staffed restaurant store offering every payment method.
async fn store_with_every_method(app: &TestApp, slug: &str) -> StaffedStore {
    let store = app.staffed_store(slug, "restaurant", "P").await;
    let updated = app
        .patch(
            &format!("/stores/{slug}"),
            &store.owner.token,
            &json!({"payment_methods": ALL_METHODS}),
        )
        .await
        .expect(200);
    assert_eq!(updated["payment_methods"], json!(ALL_METHODS));
    store
}

/// A pickup order body paid by `method`.
fn pickup_paid_by(store: &StaffedStore, method: &str) -> Value {
    let mut body = pickup(&store.slug, &[(store.product_ids()[0], 2)]);
    body["payment"] = json!({"method": method});
    body
}

/// A delivery order paid by `method`, placed by `token`.
async fn delivery_paid_by(app: &TestApp, token: &str, store: &StaffedStore, method: &str) -> Value {
    let mut body = delivery(&store.slug, &[(store.product_ids()[0], 1)], "1 Main St");
    body["payment"] = json!({"method": method});
    app.place(token, &body).await.expect(201)
}

/// `POST /orders/{id}/payment` at the order's version.
async fn pay(app: &TestApp, token: &str, order: &Value, body: Value) -> Resp {
    let mut body = body;
    body["expected_version"] = json!(version(order));
    app.post(&format!("/orders/{}/payment", id(order)), token, &body)
        .await
}

async fn mark_paid(app: &TestApp, token: &str, order: &Value) -> Resp {
    pay(app, token, order, json!({"status": "paid"})).await
}

async fn refund(app: &TestApp, token: &str, order: &Value, amount: i64, reason: &str) -> Resp {
    pay(
        app,
        token,
        order,
        json!({"status": "refunded", "amount_minor": amount, "reason": reason}),
    )
    .await
}

/// A fresh server, Alice, a store offering every method (`slug`) and a
/// pickup order of Alice's paid by `method`.
async fn order_paid_by(slug: &str, method: &str) -> (TestApp, User, StaffedStore, Value) {
    let app = spawn_app().await;
    let alice = app.alice().await;
    let store = store_with_every_method(&app, slug).await;
    let order = app
        .place(&alice.token, &pickup_paid_by(&store, method))
        .await
        .expect(201);
    (app, alice, store, order)
}

fn payment_status(order: &Value) -> &str {
    order["payment"]["status"].as_str().unwrap_or_default()
}

#[tokio::test]
async fn each_method_the_store_offers_is_carried_on_the_order() {
    let app = spawn_app().await;
    let alice = app.alice().await;
    let store = app.staffed_store("payshop", "restaurant", "P").await;

    // A store offers cash until its owner says otherwise.
    let shown = app.store_detail(&store.slug).await;
    assert_eq!(shown["payment_methods"], json!(["cash"]), "{shown}");
    let unnamed = pickup(&store.slug, &[(store.product_ids()[0], 1)]);
    let by_default = app.place(&alice.token, &unnamed).await.expect(201);
    assert_eq!(
        by_default["payment"],
        json!({"method": "cash", "status": "unpaid", "paid_at": null, "refunded_minor": 0})
    );
    app.place(&alice.token, &pickup_paid_by(&store, "card_at_counter"))
        .await
        .expect_problem(422, "payment_method_not_offered");

    // Only owners set the methods; at least one; only known ones.
    let path = format!("/stores/{}", store.slug);
    app.patch(
        &path,
        &store.manager.token,
        &json!({"payment_methods": ["card_at_counter"]}),
    )
    .await
    .expect_problem(403, "forbidden");
    app.patch(&path, &store.owner.token, &json!({"payment_methods": []}))
        .await
        .expect_problem(422, "invalid_payment_methods");
    assert_eq!(
        app.patch(
            &path,
            &store.owner.token,
            &json!({"payment_methods": ["bitcoin"]})
        )
        .await
        .status,
        422
    );
    let updated = app
        .patch(
            &path,
            &store.owner.token,
            &json!({"payment_methods": ["card_at_counter", "cash", "card_at_counter"]}),
        )
        .await
        .expect(200);
    assert_eq!(
        updated["payment_methods"],
        json!(["card_at_counter", "cash"])
    );
    let preferred = app.place(&alice.token, &unnamed).await.expect(201);
    assert_eq!(
        preferred["payment"]["method"], "card_at_counter",
        "an order naming no method gets the store's first"
    );

    // Every method, once offered, is the order's; each is unpaid at first
    // and reads back the same.
    let store = store_with_every_method(&app, "payall").await;
    for method in ALL_METHODS {
        let order = app
            .place(&alice.token, &pickup_paid_by(&store, method))
            .await
            .expect(201);
        assert_eq!(order["payment"]["method"], method, "{order}");
        assert_eq!(payment_status(&order), "unpaid");
        let read = app.order(&alice.token, id(&order)).await;
        assert_eq!(read["payment"], order["payment"]);
        let listed = app
            .list(&store.owner.token, &format!("?store={}", store.slug))
            .await;
        let row = listed.iter().find(|o| id(o) == id(&order)).expect("listed");
        assert_eq!(row["payment"]["method"], method);
    }
}

#[tokio::test]
async fn the_counter_marks_paid_drivers_only_at_the_door_and_others_get_403() {
    let (app, alice, store, order) = order_paid_by("paycounter", "cash").await;
    let bob = app.bob().await;
    for (who, token) in [
        ("kitchen", &store.kitchen.token),
        ("the customer", &alice.token),
    ] {
        let refused = mark_paid(&app, token, &order).await;
        assert_eq!(refused.status, 403, "{who}: {}", refused.body);
        refused.expect_problem(403, "forbidden");
    }
    // Those who cannot see the order: it does not exist for them.
    let other_cashier = app.login("cashier@demo.test").await;
    for (who, token) in [
        ("another customer", bob.token.as_str()),
        ("a driver (pickup order)", store.driver.token.as_str()),
        ("another store's cashier", other_cashier.as_str()),
    ] {
        let refused = mark_paid(&app, token, &order).await;
        assert_eq!(refused.status, 404, "{who}: {}", refused.body);
    }
    assert_eq!(
        payment_status(&app.order(&alice.token, id(&order)).await),
        "unpaid"
    );

    for (who, token) in [
        ("cashier", &store.cashier.token),
        ("manager", &store.manager.token),
        ("owner", &store.owner.token),
    ] {
        let order = app
            .place(&alice.token, &pickup_paid_by(&store, "card_at_counter"))
            .await
            .expect(201);
        let paid = mark_paid(&app, token, &order).await.expect(200);
        assert_eq!(payment_status(&paid), "paid", "{who}");
        assert!(paid["payment"]["paid_at"].is_string(), "{who}: {paid}");
        assert_eq!(paid["status"], order["status"], "{who}: the status stays");
        assert_eq!(version(&paid), version(&order) + 1);
        mark_paid(&app, token, &paid)
            .await
            .expect_problem(409, "already_paid");
    }

    // A driver takes the money for `*_on_delivery` methods only.
    let at_door = delivery_paid_by(&app, &alice.token, &store, "card_on_delivery").await;
    let paid = mark_paid(&app, &store.driver.token, &at_door)
        .await
        .expect(200);
    assert_eq!(payment_status(&paid), "paid");
    for method in ["cash", "card_at_counter", "prepaid_external"] {
        let order = delivery_paid_by(&app, &alice.token, &store, method).await;
        mark_paid(&app, &store.driver.token, &order)
            .await
            .expect_problem(403, "forbidden");
    }
}

#[tokio::test]
async fn managers_and_owners_refund_up_to_what_was_paid() {
    let (app, alice, store, order) = order_paid_by("payrefund", "card_at_counter").await;
    let total = order["total_minor"].as_i64().expect("a total");

    refund(&app, &store.manager.token, &order, 100, "cold")
        .await
        .expect_problem(409, "not_paid");
    let paid = mark_paid(&app, &store.cashier.token, &order)
        .await
        .expect(200);

    for token in [&store.cashier.token, &store.kitchen.token, &alice.token] {
        refund(&app, token, &paid, 100, "cold")
            .await
            .expect_problem(403, "forbidden");
    }
    refund(&app, &store.manager.token, &paid, total + 1, "too much")
        .await
        .expect_problem(422, "refund_too_large");
    refund(&app, &store.manager.token, &paid, 100, "  ")
        .await
        .expect_problem(422, "reason_required");
    refund(&app, &store.manager.token, &paid, 0, "nothing")
        .await
        .expect_problem(422, "invalid_amount");
    pay(
        &app,
        &store.manager.token,
        &paid,
        json!({"status": "refunded", "reason": "x"}),
    )
    .await
    .expect_problem(422, "invalid_amount");

    let partly = refund(&app, &store.manager.token, &paid, 100, "one cold burger")
        .await
        .expect(200);
    assert_eq!(payment_status(&partly), "partially_refunded");
    assert_eq!(partly["payment"]["refunded_minor"], 100);
    assert_eq!(partly["payment"]["paid_at"], paid["payment"]["paid_at"]);
    // What is left is the most that can go back.
    refund(
        &app,
        &store.owner.token,
        &partly,
        total - 100 + 1,
        "all of it",
    )
    .await
    .expect_problem(422, "refund_too_large");
    let refunded = refund(&app, &store.owner.token, &partly, total - 100, "all of it")
        .await
        .expect(200);
    assert_eq!(payment_status(&refunded), "refunded");
    assert_eq!(refunded["payment"]["refunded_minor"], total);
    refund(&app, &store.owner.token, &refunded, 1, "again")
        .await
        .expect_problem(409, "not_paid");
}

#[tokio::test]
async fn a_stale_version_is_a_conflict_and_changes_nothing() {
    let (app, alice, store, order) = order_paid_by("paystale", "cash").await;
    let confirmed = app.advance(&store.cashier.token, &order, "confirmed").await;

    let stale = mark_paid(&app, &store.cashier.token, &order).await;
    let problem = stale.expect_problem(409, "version_conflict");
    assert_eq!(problem["current_version"], version(&confirmed), "{problem}");
    let read = app.order(&alice.token, id(&order)).await;
    assert_eq!(payment_status(&read), "unpaid");
    assert_eq!(version(&read), version(&confirmed));

    let paid = mark_paid(&app, &store.cashier.token, &confirmed)
        .await
        .expect(200);
    refund(&app, &store.manager.token, &confirmed, 100, "late")
        .await
        .expect_problem(409, "version_conflict");
    assert_eq!(
        payment_status(&app.order(&alice.token, id(&paid)).await),
        "paid"
    );
}

#[tokio::test]
async fn every_payment_change_reaches_every_open_stream_and_the_history() {
    let (app, alice, store, order) = order_paid_by("paylive", "cash").await;

    let mut watchers = app
        .order_watchers(&order, &store.slug, &alice.token, &store.owner.token)
        .await;
    let token = order["tracking_token"].as_str().expect("a tracking token");

    let paid = mark_paid(&app, &store.cashier.token, &order)
        .await
        .expect(200);
    let refunded = refund(&app, &store.manager.token, &paid, 50, "a sauce was missing")
        .await
        .expect(200);

    for (who, stream) in &mut watchers {
        let first = stream.next_event().await.expect("the payment");
        assert_eq!(first.event.as_deref(), Some("payment_changed"), "{who}");
        let first = first.json();
        assert_eq!(first["type"], "payment_changed", "{who}: {first}");
        assert_eq!(first["payment"]["status"], "paid", "{who}: {first}");
        assert_eq!(first["summary"]["payment_status"], "paid", "{who}: {first}");
        assert_eq!(first["order_version"], version(&paid), "{who}: {first}");
        let second = stream.next_event().await.expect("the refund").json();
        assert_eq!(second["payment"]["status"], "partially_refunded", "{who}");
        assert_eq!(second["payment"]["amount_minor"], 50, "{who}");
        assert_eq!(second["note"], "a sauce was missing", "{who}");
        assert_eq!(second["order_version"], version(&refunded), "{who}");
    }

    let history = app.history(&alice.token, id(&order)).await;
    assert_eq!(history.len(), 3, "{history:?}");
    assert!(history[0].get("payment").is_none());
    assert_eq!(history[1]["payment"]["status"], "paid");
    assert_eq!(history[1]["payment"]["amount_minor"], order["total_minor"]);
    assert_eq!(history[1]["actor"]["role"], "cashier");
    assert_eq!(history[1]["from"], history[1]["to"], "the status stays");
    assert_eq!(history[2]["payment"]["status"], "partially_refunded");
    assert_eq!(history[2]["payment"]["amount_minor"], 50);
    assert_eq!(history[2]["note"], "a sauce was missing");
    assert_eq!(history[2]["actor"]["role"], "manager");
    let tracked = app.get(&format!("/track/{token}"), ANON).await.expect(200);
    assert_eq!(tracked["payment"]["status"], "partially_refunded");
    assert_eq!(tracked["history"][1]["payment"]["status"], "paid");
}

/// "Express" with `collected` requiring payment.
fn express_paid_first() -> Value {
    let mut workflow = crate::api_store_workflows::express();
    workflow["states"][1]["requires_paid"] = json!(true);
    workflow
}

#[tokio::test]
async fn requires_paid_blocks_the_state_until_the_order_is_paid() {
    let app = spawn_app().await;
    let alice = app.alice().await;
    let store = store_with_every_method(&app, "payfirst").await;
    let path = format!("/stores/{}/workflow", store.slug);

    // A state every order starts in, or a cancelled one, cannot require it.
    let mut broken = express_paid_first();
    broken["states"][0]["requires_paid"] = json!(true);
    broken["states"][2]["requires_paid"] = json!(true);
    let refused = app
        .send(
            app.request(reqwest::Method::PUT, &path, &store.owner.token)
                .json(&broken),
        )
        .await
        .expect(422);
    assert_eq!(refused["code"], "invalid_workflow", "{refused}");
    let paths: Vec<&str> = refused["errors"]
        .as_array()
        .expect("errors")
        .iter()
        .filter_map(|e| e["path"].as_str())
        .collect();
    assert!(paths.contains(&"states[0].requires_paid"), "{paths:?}");
    assert!(paths.contains(&"states[2].requires_paid"), "{paths:?}");

    app.send(
        app.request(reqwest::Method::PUT, &path, &store.owner.token)
            .json(&express_paid_first()),
    )
    .await
    .expect(200);
    let order = app
        .place(&alice.token, &pickup_paid_by(&store, "cash"))
        .await
        .expect(201);
    app.transition(
        &store.cashier.token,
        id(&order),
        "collected",
        version(&order),
    )
    .await
    .expect_problem(409, "payment_required");
    assert_eq!(
        status(&app.order(&alice.token, id(&order)).await),
        "pending"
    );

    // Cancelling an unpaid order is still possible; collecting a paid one is.
    let paid = mark_paid(&app, &store.cashier.token, &order)
        .await
        .expect(200);
    let collected = app.advance(&store.cashier.token, &paid, "collected").await;
    assert_eq!(payment_status(&collected), "paid");
    let other = app
        .place(&alice.token, &pickup_paid_by(&store, "cash"))
        .await
        .expect(201);
    app.advance(&alice.token, &other, "cancelled").await;
}

#[tokio::test]
async fn the_dashboard_shows_unpaid_orders_and_marks_them_paid_without_javascript() {
    let (app, alice, store, order) = order_paid_by("paydash", "card_at_counter").await;
    let dashboard = format!("/dashboard/{}", store.slug);

    let (code, html) = page(&app, &store.cashier.token, &dashboard).await;
    assert_eq!(code, 200, "{html}");
    assert!(html.contains(r#"data-payment="unpaid""#), "{html}");
    assert!(
        html.contains(&format!(r#"data-mark-paid="{}""#, id(&order))),
        "{html}"
    );
    // The kitchen sees the badge, not the button.
    let (_, kitchen) = page(&app, &store.kitchen.token, &dashboard).await;
    assert!(kitchen.contains(r#"data-payment="unpaid""#));
    assert!(!kitchen.contains("data-mark-paid"));

    let response = app
        .post_page_form(
            &store.cashier.token,
            &format!("/dashboard/{}/orders/{}/payment", store.slug, id(&order)),
            &[
                ("status", "paid"),
                ("expected_version", &version(&order).to_string()),
                ("back", "list"),
            ],
        )
        .await;
    assert_eq!(response.status().as_u16(), 303);
    let location = response
        .headers()
        .get("location")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned();
    assert_eq!(location, format!("{dashboard}?flash=paid"));
    assert_eq!(
        payment_status(&app.order(&alice.token, id(&order)).await),
        "paid"
    );
    let (_, html) = page(&app, &store.cashier.token, &dashboard).await;
    assert!(html.contains(r#"data-payment="paid""#), "{html}");
    assert!(!html.contains("data-mark-paid"), "{html}");

    // The customer's page says how and whether it is paid.
    let (code, mine) = page(&app, &alice.token, &format!("/orders/{}", id(&order))).await;
    assert_eq!(code, 200);
    assert!(mine.contains(r#"data-payment-status="paid""#), "{mine}");
    assert!(mine.contains("Card at the counter"), "{mine}");
}
