//! Who may do what: the seed-002 security table over real HTTP.

use reqwest::Method;
use serde_json::{Value, json};

use crate::support::*;

/// Reads an order as its customer, for checking that nothing changed.
async fn unchanged(app: &TestApp, token: &str, order: &Value) {
    let now = app.order(token, id(order)).await;
    assert_eq!(status(&now), status(order), "status changed: {now}");
    assert_eq!(version(&now), version(order), "version changed: {now}");
    assert_eq!(now["items"], order["items"], "items changed: {now}");
}

#[tokio::test]
async fn customer_cannot_change_an_order_status() {
    let app = spawn_app().await;
    let alice = app.alice().await;
    let order = app.place_simple(&alice.token, RESTAURANT).await;

    for to in ["confirmed", "preparing", "ready", "completed"] {
        app.transition(&alice.token, id(&order), to, version(&order))
            .await
            .expect_problem(403, "forbidden");
    }
    unchanged(&app, &alice.token, &order).await;
    assert_eq!(app.history(&alice.token, id(&order)).await.len(), 1);
}

#[tokio::test]
async fn customer_cannot_change_item_statuses() {
    let app = spawn_app().await;
    let alice = app.alice().await;
    let order = app.place_simple(&alice.token, RESTAURANT).await;
    let item = item_ids(&order)[0];

    app.set_item(&alice.token, id(&order), item, "ready")
        .await
        .expect_problem(403, "forbidden");
    unchanged(&app, &alice.token, &order).await;
}

#[tokio::test]
async fn customer_may_cancel_only_while_the_workflow_allows_it() {
    let app = spawn_app().await;
    let alice = app.alice().await;
    let cashier = app.login("cashier@demo.test").await;

    // Pending: the customer may cancel.
    let first = app.place_simple(&alice.token, RESTAURANT).await;
    let cancelled = app.advance(&alice.token, &first, "cancelled").await;
    assert_eq!(cancelled["next_statuses"], json!([]));

    // Confirmed: only the store may cancel.
    let second = app.place_simple(&alice.token, RESTAURANT).await;
    assert_eq!(second["next_statuses"], json!(["cancelled"]));
    let confirmed = app.advance(&cashier, &second, "confirmed").await;
    app.transition(
        &alice.token,
        id(&confirmed),
        "cancelled",
        version(&confirmed),
    )
    .await
    .expect_problem(403, "forbidden");
    let seen = app.order(&alice.token, id(&confirmed)).await;
    assert_eq!(status(&seen), "confirmed");
    assert_eq!(seen["next_statuses"], json!([]));
}

#[tokio::test]
async fn customer_cannot_read_or_touch_another_customers_order() {
    let app = spawn_app().await;
    let alice = app.alice().await;
    let bob = app.bob().await;
    let order = app.place_simple(&alice.token, RESTAURANT).await;
    let order_id = id(&order);
    let item = item_ids(&order)[0];

    app.get(&format!("/orders/{order_id}"), &bob.token)
        .await
        .expect_problem(404, "not_found");
    app.get(&format!("/orders/{order_id}/history"), &bob.token)
        .await
        .expect_problem(404, "not_found");
    // Even the one move a customer may make on their own order.
    app.transition(&bob.token, order_id, "cancelled", version(&order))
        .await
        .expect_problem(404, "not_found");
    app.set_item(&bob.token, order_id, item, "ready")
        .await
        .expect_problem(404, "not_found");

    // Not found looks exactly like an id that does not exist.
    let missing = app.get("/orders/99999999", &bob.token).await;
    missing.expect_problem(404, "not_found");
    let hidden = app.get(&format!("/orders/{order_id}"), &bob.token).await;
    assert_eq!(hidden.body, missing.body);

    assert!(app.my_orders(&bob.token).await.is_empty());
    unchanged(&app, &alice.token, &order).await;
    assert_eq!(app.history(&alice.token, order_id).await.len(), 1);
}

#[tokio::test]
async fn customer_cannot_list_a_stores_orders() {
    let app = spawn_app().await;
    let alice = app.alice().await;
    let bob = app.bob().await;
    app.place_simple(&alice.token, RESTAURANT).await;

    let listed = app
        .get(&format!("/orders?store={RESTAURANT}"), &bob.token)
        .await;
    let code = listed.problem();
    assert!(
        matches!(listed.status.as_u16(), 403 | 404),
        "{code}: {}",
        listed.text
    );
}

#[tokio::test]
async fn unknown_status_is_rejected_and_changes_nothing() {
    let app = spawn_app().await;
    let alice = app.alice().await;
    let owner = app.login("owner@demo.test").await;
    let order = app.place_simple(&alice.token, RESTAURANT).await;

    for to in [
        "teleported",
        "",
        "CONFIRMED",
        "shipped",
        "confirmed; DROP TABLE orders",
    ] {
        let response = app
            .transition(&owner, id(&order), to, version(&order))
            .await;
        response.problem();
        assert!(
            matches!(response.status.as_u16(), 400 | 422),
            "`{to}`: {}",
            response.text
        );
        assert_eq!(response.body["code"], "unknown_status", "`{to}`");
    }
    unchanged(&app, &alice.token, &order).await;
}

/// Moves an order from a store's dashboard as a browser does (session and
/// CSRF cookies, CSRF field); the status of the final answer.
async fn dashboard_move(app: &TestApp, token: &str, slug: &str, order: &Value, to: &str) -> u16 {
    let csrf = app.session_csrf(token).await;
    let version = version(order).to_string();
    app.client
        .post(format!(
            "{}/dashboard/{slug}/orders/{}/transition",
            app.base,
            id(order)
        ))
        .header(
            reqwest::header::COOKIE,
            format!("ordertrack_session={token}"),
        )
        .form(&[
            ("csrf", csrf.as_str()),
            ("to", to),
            ("expected_version", &version),
        ])
        .send()
        .await
        .expect("dashboard form post")
        .status()
        .as_u16()
}

#[tokio::test]
async fn a_dashboard_moves_only_its_own_stores_orders_and_only_for_its_staff() {
    let app = spawn_app().await;
    let alice = app.alice().await;
    let cashier = app.login("cashier@demo.test").await;
    let order = app.place_simple(&alice.token, RESTAURANT).await;
    let shop_order = app.place_simple(&alice.token, SHOP).await;

    // Another store's order through this store's dashboard, this store's
    // order through a dashboard whose staff the caller is not, and the
    // customer on the dashboard — even for the move they may make.
    for (token, slug, order, to) in [
        (&cashier, RESTAURANT, &shop_order, "confirmed"),
        (&cashier, SHOP, &order, "confirmed"),
        (&alice.token, RESTAURANT, &order, "cancelled"),
    ] {
        assert_eq!(
            dashboard_move(&app, token, slug, order, to).await,
            404,
            "{slug} dashboard, order {}",
            id(order)
        );
    }
    unchanged(&app, &alice.token, &order).await;
    unchanged(&app, &alice.token, &shop_order).await;

    // The store's staff on its own dashboard: moved, then the order page.
    assert_eq!(
        dashboard_move(&app, &cashier, RESTAURANT, &order, "confirmed").await,
        200
    );
    let moved = app.order(&alice.token, id(&order)).await;
    assert_eq!(status(&moved), "confirmed");
    assert_eq!(version(&moved), version(&order) + 1);
}

#[tokio::test]
async fn admin_may_read_any_order() {
    let app = spawn_app().await;
    let alice = app.alice().await;
    let admin = app.login("admin@demo.test").await;
    let order = app.place_simple(&alice.token, RESTAURANT).await;

    let seen = app.order(&admin, id(&order)).await;
    assert_eq!(seen["customer_id"], alice.id);
    assert_eq!(app.history(&admin, id(&order)).await.len(), 1);
}

#[tokio::test]
async fn requests_without_credentials_are_401_everywhere() {
    let app = spawn_app().await;
    let alice = app.alice().await;
    let order = app.place_simple(&alice.token, RESTAURANT).await;
    let order_id = id(&order);
    let item = item_ids(&order)[0];
    let product = app.product_ids(RESTAURANT).await[0];

    let requests: Vec<(Method, String, Option<Value>)> = vec![
        (Method::GET, "/auth/me".into(), None),
        (Method::POST, "/auth/logout".into(), None),
        (Method::GET, "/orders".into(), None),
        (Method::GET, format!("/orders?store={RESTAURANT}"), None),
        (
            Method::POST,
            "/orders".into(),
            Some(pickup(RESTAURANT, &[(product, 1)])),
        ),
        (Method::GET, format!("/orders/{order_id}"), None),
        (Method::GET, format!("/orders/{order_id}/history"), None),
        (
            Method::POST,
            format!("/orders/{order_id}/transitions"),
            Some(json!({"to": "cancelled", "expected_version": 1})),
        ),
        (
            Method::PATCH,
            format!("/orders/{order_id}/items/{item}"),
            Some(json!({"status": "ready"})),
        ),
        (
            Method::POST,
            format!("/stores/{RESTAURANT}/products"),
            Some(json!({"name": "Free Lunch", "price_minor": 0})),
        ),
        (
            Method::PATCH,
            format!("/stores/{RESTAURANT}/products/{product}"),
            Some(json!({"price_minor": 1})),
        ),
        (Method::GET, format!("/stores/{RESTAURANT}/staff"), None),
        (
            Method::POST,
            format!("/stores/{RESTAURANT}/staff"),
            Some(json!({"email": "alice@demo.test", "role": "owner"})),
        ),
        (
            Method::DELETE,
            format!("/stores/{RESTAURANT}/staff/{}", alice.id),
            None,
        ),
    ];
    let tampered = {
        // Same header and claims, different signature.
        let (rest, signature) = alice.token.rsplit_once('.').expect("a JWT");
        let flipped: String = signature.chars().rev().collect();
        format!("{rest}.{flipped}")
    };
    for credentials in [ANON, "not-a-token", tampered.as_str()] {
        for (method, path, body) in &requests {
            let mut builder = app.request(method.clone(), path, credentials);
            if let Some(body) = body {
                builder = builder.json(body);
            }
            let response = app.send(builder).await;
            response.expect_problem(401, "unauthenticated");
            assert_eq!(
                response
                    .headers
                    .get("www-authenticate")
                    .and_then(|v| v.to_str().ok()),
                Some("Bearer"),
                "{method} {path}"
            );
        }
    }
    // A header that is not a bearer token counts as no credentials.
    let basic = app
        .send(
            app.client
                .get(app.url("/orders"))
                .header("authorization", "Basic YWxpY2U6ZGVtby1wYXNzd29yZA=="),
        )
        .await;
    basic.expect_problem(401, "unauthenticated");

    // Nothing above changed anything.
    let orders = app.my_orders(&alice.token).await;
    assert_eq!(ids(&orders), vec![order_id]);
    unchanged(&app, &alice.token, &order).await;
    assert_eq!(app.product_ids(RESTAURANT).await.len(), 12);
}

#[tokio::test]
async fn public_endpoints_need_no_credentials() {
    let app = spawn_app().await;
    let stores = app.get("/stores", ANON).await.expect(200);
    assert_eq!(stores.as_array().map(Vec::len), Some(2));
    app.get(&format!("/stores/{RESTAURANT}"), ANON)
        .await
        .expect(200);
    let health = app
        .send(app.client.get(format!("{}/healthz", app.base)))
        .await;
    assert_eq!(health.status, 200);
}
