//! Every bad request is a 4xx `application/problem+json` with a `code`, and
//! changes nothing.

use reqwest::Method;
use serde_json::{Value, json};

use crate::support::*;

/// What a bad request must leave as it was: every order of the demo
/// restaurant and shop (id, status, version, items) and both catalogs.
#[derive(Debug, PartialEq)]
struct Snapshot {
    orders: Vec<Value>,
    shop_orders: Vec<Value>,
    products: Vec<Value>,
    shop_products: Vec<Value>,
    alice_orders: Vec<i64>,
}

struct World {
    app: TestApp,
    alice: User,
    owner: String,
    kitchen: String,
    seller: String,
    /// A pending restaurant order of Alice's.
    order: Value,
    products: Vec<i64>,
    shop_products: Vec<i64>,
}

impl World {
    async fn new() -> World {
        let app = spawn_app().await;
        let alice = app.alice().await;
        let owner = app.login("owner@demo.test").await;
        let kitchen = app.login("kitchen@demo.test").await;
        let seller = app.login("seller@demo.test").await;
        let products = app.product_ids(RESTAURANT).await;
        let shop_products = app.product_ids(SHOP).await;
        let order = app
            .place_order(
                &alice.token,
                RESTAURANT,
                &[(products[0], 1), (products[5], 2)],
            )
            .await;
        app.place_order(&alice.token, SHOP, &[(shop_products[0], 1)])
            .await;
        World {
            app,
            alice,
            owner,
            kitchen,
            seller,
            order,
            products,
            shop_products,
        }
    }

    async fn snapshot(&self) -> Snapshot {
        let app = &self.app;
        Snapshot {
            orders: app.store_orders(&self.owner, RESTAURANT).await,
            shop_orders: app.store_orders(&self.seller, SHOP).await,
            products: app.products(RESTAURANT).await,
            shop_products: app.products(SHOP).await,
            alice_orders: ids(&app.my_orders(&self.alice.token).await),
        }
    }

    fn order_id(&self) -> i64 {
        id(&self.order)
    }

    fn item_id(&self) -> i64 {
        item_ids(&self.order)[0]
    }
}

/// Asserts a problem (optionally with this exact status and code).
#[track_caller]
fn assert_problem(response: &Resp, status: u16, code: &str, what: &str) {
    let actual = response.problem();
    assert_eq!(
        (response.status.as_u16(), actual),
        (status, code),
        "{what}: {}",
        response.text
    );
}

#[tokio::test]
async fn malformed_json_is_400() {
    let w = World::new().await;
    let before = w.snapshot().await;
    let transitions = format!("/orders/{}/transitions", w.order_id());
    let items = format!("/orders/{}/items/{}", w.order_id(), w.item_id());
    let endpoints = [
        (
            Method::POST,
            "/orders",
            &w.alice.token,
            r#"{"store": "demo-restaurant", "items": ["#,
        ),
        (
            Method::POST,
            transitions.as_str(),
            &w.owner,
            r#"{"to": "confirmed""#,
        ),
        (
            Method::PATCH,
            items.as_str(),
            &w.kitchen,
            r#"{"status": "ready",}"#,
        ),
        (
            Method::POST,
            "/auth/login",
            &String::new(),
            r#"{"email": "alice@demo.test" "password": "x"}"#,
        ),
        (
            Method::POST,
            "/auth/register",
            &String::new(),
            r#"{"email": 'x@example.com'}"#,
        ),
    ];
    for (method, path, token, truncated) in endpoints {
        for body in ["{", "not json", "\u{0}", "{'to': 1}", "{\"", "}", truncated] {
            let response = w
                .app
                .raw(
                    method.clone(),
                    path,
                    token,
                    Some("application/json"),
                    body.to_owned(),
                )
                .await;
            assert_problem(
                &response,
                400,
                "malformed_json",
                &format!("{method} {path} {body:?}"),
            );
        }
    }
    // An empty body is not JSON either.
    let empty = w
        .app
        .raw(
            Method::POST,
            "/orders",
            &w.alice.token,
            Some("application/json"),
            "",
        )
        .await;
    assert!(matches!(empty.status.as_u16(), 400 | 422), "{}", empty.text);
    empty.problem();
    assert_eq!(w.snapshot().await, before);
}

#[tokio::test]
async fn unknown_fields_are_refused() {
    let w = World::new().await;
    let before = w.snapshot().await;
    let p = w.products[0];
    let bodies = [
        json!({"store": RESTAURANT, "items": [{"product": p, "quantity": 1}], "fulfilment": {"type": "pickup"}, "customer_id": 1}),
        json!({"store": RESTAURANT, "items": [{"product": p, "quantity": 1}], "fulfilment": {"type": "pickup"}, "status": "completed"}),
        json!({"store": RESTAURANT, "items": [{"product": p, "quantity": 1, "price_minor": 1}], "fulfilment": {"type": "pickup"}}),
        json!({"store": RESTAURANT, "items": [{"product": p, "quantity": 1}], "fulfilment": {"type": "pickup", "eta": 1}}),
        json!({"store": RESTAURANT, "items": [{"product": p, "quantity": 1}], "fulfilment": {"type": "pickup"}, "currency": "USD"}),
    ];
    for body in &bodies {
        let response = w.app.place(&w.alice.token, body).await;
        assert_problem(&response, 422, "invalid_body", &body.to_string());
    }
    let path = format!("/orders/{}/transitions", w.order_id());
    for body in [
        json!({"to": "confirmed", "expected_version": 1, "actor": "owner"}),
        json!({"status": "confirmed"}),
        json!({"to": "confirmed", "version": 1}),
    ] {
        let response = w.app.post(&path, &w.owner, &body).await;
        assert_problem(&response, 422, "invalid_body", &body.to_string());
    }
    let response = w
        .app
        .patch(
            &format!("/orders/{}/items/{}", w.order_id(), w.item_id()),
            &w.kitchen,
            &json!({"status": "ready", "order_status": "ready"}),
        )
        .await;
    assert_problem(&response, 422, "invalid_body", "item");
    let response = w
        .app
        .post(
            &format!("/stores/{RESTAURANT}/products"),
            &w.owner,
            &json!({"name": "Soup", "price_minor": 500, "store_id": 2}),
        )
        .await;
    assert_problem(&response, 422, "invalid_body", "product");
    assert_eq!(w.snapshot().await, before);
}

#[tokio::test]
async fn wrong_types_and_missing_fields_are_refused() {
    let w = World::new().await;
    let before = w.snapshot().await;
    let p = w.products[0];
    for body in [
        json!({"store": 5, "items": [{"product": p, "quantity": 1}], "fulfilment": {"type": "pickup"}}),
        json!({"store": RESTAURANT, "items": {"product": p, "quantity": 1}, "fulfilment": {"type": "pickup"}}),
        json!({"store": RESTAURANT, "items": [{"product": p.to_string(), "quantity": 1}], "fulfilment": {"type": "pickup"}}),
        json!({"store": RESTAURANT, "items": [{"product": p, "quantity": "1"}], "fulfilment": {"type": "pickup"}}),
        json!({"store": RESTAURANT, "items": [{"product": p, "quantity": 1.5}], "fulfilment": {"type": "pickup"}}),
        json!({"store": RESTAURANT, "items": [{"product": p, "quantity": null}], "fulfilment": {"type": "pickup"}}),
        json!({"store": RESTAURANT, "items": [{"product": p, "quantity": true}], "fulfilment": {"type": "pickup"}}),
        json!({"store": RESTAURANT, "items": [{"product": p, "quantity": 1}], "fulfilment": {"type": "drone"}}),
        json!({"store": RESTAURANT, "items": [{"product": p, "quantity": 1}], "fulfilment": "pickup"}),
        json!({"store": RESTAURANT, "items": [{"product": p, "quantity": 1}]}),
        json!({"store": RESTAURANT, "fulfilment": {"type": "pickup"}}),
        json!({"items": [{"product": p, "quantity": 1}], "fulfilment": {"type": "pickup"}}),
        json!({"store": RESTAURANT, "items": [{"quantity": 1}], "fulfilment": {"type": "pickup"}}),
        json!({"store": RESTAURANT, "items": [{"product": p, "quantity": 1}], "fulfilment": {"type": "pickup"}, "notes": 7}),
        json!([]),
        json!("an order"),
        json!(null),
    ] {
        let response = w.app.place(&w.alice.token, &body).await;
        assert_problem(&response, 422, "invalid_body", &body.to_string());
    }
    let path = format!("/orders/{}/transitions", w.order_id());
    for body in [
        json!({"to": 5}),
        json!({"to": "confirmed", "expected_version": "1"}),
        json!({"to": "confirmed", "expected_version": 1.5}),
        json!({"to": ["confirmed"]}),
        json!({"note": "no target"}),
        json!({}),
    ] {
        let response = w.app.post(&path, &w.owner, &body).await;
        assert_problem(&response, 422, "invalid_body", &body.to_string());
    }
    assert_eq!(w.snapshot().await, before);
}

#[tokio::test]
async fn quantities_must_be_between_1_and_99() {
    let w = World::new().await;
    let before = w.snapshot().await;
    let p = w.products[0];
    for quantity in [
        json!(0),
        json!(-1),
        json!(100),
        json!(i64::MIN),
        json!(i64::MAX),
    ] {
        let body = pickup(RESTAURANT, &[(p, 1)]);
        let mut body = body;
        body["items"][0]["quantity"] = quantity.clone();
        let response = w.app.place(&w.alice.token, &body).await;
        assert_problem(
            &response,
            422,
            "invalid_order",
            &format!("quantity {quantity}"),
        );
    }
    // Numbers no integer type holds.
    for quantity in [
        "1e20",
        "99999999999999999999",
        "-99999999999999999999",
        "1e400",
    ] {
        let body = format!(
            r#"{{"store":"{RESTAURANT}","items":[{{"product":{p},"quantity":{quantity}}}],"fulfilment":{{"type":"pickup"}}}}"#
        );
        let response = w
            .app
            .raw(
                Method::POST,
                "/orders",
                &w.alice.token,
                Some("application/json"),
                body,
            )
            .await;
        let code = response.problem().to_owned();
        assert!(
            matches!(
                code.as_str(),
                "invalid_body" | "malformed_json" | "invalid_order"
            ),
            "quantity {quantity}: {}",
            response.text
        );
    }
    // One good line does not carry a bad one.
    let response = w
        .app
        .place(
            &w.alice.token,
            &pickup(RESTAURANT, &[(p, 1), (w.products[1], 0)]),
        )
        .await;
    assert_problem(&response, 422, "invalid_order", "mixed lines");
    assert_eq!(w.snapshot().await, before);

    // The bounds themselves are fine.
    let order = w
        .app
        .place_order(&w.alice.token, RESTAURANT, &[(p, 99)])
        .await;
    assert_eq!(order["items"][0]["quantity"], 99);
}

#[tokio::test]
async fn an_order_needs_1_to_50_lines() {
    let w = World::new().await;
    let before = w.snapshot().await;
    let response = w.app.place(&w.alice.token, &pickup(RESTAURANT, &[])).await;
    assert_problem(&response, 422, "invalid_order", "no items");

    let many: Vec<(i64, i64)> = (0..51)
        .map(|n| (w.products[n % w.products.len()], 1))
        .collect();
    let response = w
        .app
        .place(&w.alice.token, &pickup(RESTAURANT, &many))
        .await;
    assert_problem(&response, 422, "invalid_order", "51 items");
    assert_eq!(w.snapshot().await, before);

    let order = w
        .app
        .place_order(&w.alice.token, RESTAURANT, &many[..50])
        .await;
    assert_eq!(order["items"].as_array().map(Vec::len), Some(50));
}

#[tokio::test]
async fn oversized_bodies_are_413() {
    let w = World::new().await;
    let before = w.snapshot().await;
    let mut body = pickup(RESTAURANT, &[(w.products[0], 1)]);
    body["notes"] = json!("x".repeat(70 * 1024));
    let response = w.app.place(&w.alice.token, &body).await;
    assert_problem(&response, 413, "body_too_large", "70 KiB of notes");

    // Also when it is many lines rather than one long field.
    let lines: Vec<Value> = (0..5000)
        .map(|_| json!({"product": w.products[0], "quantity": 1, "notes": "extra crispy please"}))
        .collect();
    let body = json!({"store": RESTAURANT, "items": lines, "fulfilment": {"type": "pickup"}});
    assert!(body.to_string().len() > 64 * 1024);
    let response = w.app.place(&w.alice.token, &body).await;
    assert_problem(&response, 413, "body_too_large", "5000 lines");

    // And for other endpoints, and without a Content-Length (chunked).
    let transition = format!("/orders/{}/transitions", w.order_id());
    let response = w
        .app
        .post(
            &transition,
            &w.owner,
            &json!({"to": "confirmed", "note": "y".repeat(100_000)}),
        )
        .await;
    assert_problem(&response, 413, "body_too_large", "transition");
    let chunks: Vec<Result<String, std::io::Error>> = std::iter::once(Ok(format!(
        r#"{{"store":"{RESTAURANT}","items":[],"notes":""#
    )))
    .chain((0..80).map(|_| Ok("z".repeat(1024))))
    .chain(std::iter::once(Ok(r#""}"#.to_owned())))
    .collect();
    let stream = futures::stream::iter(chunks);
    let response = w
        .app
        .raw(
            Method::POST,
            "/orders",
            &w.alice.token,
            Some("application/json"),
            reqwest::Body::wrap_stream(stream),
        )
        .await;
    assert_problem(&response, 413, "body_too_large", "chunked");
    assert_eq!(w.snapshot().await, before);
}

#[tokio::test]
async fn a_body_needs_a_json_content_type() {
    let w = World::new().await;
    let before = w.snapshot().await;
    let body = pickup(RESTAURANT, &[(w.products[0], 1)]).to_string();
    for content_type in [
        None,
        Some("text/plain"),
        Some("application/x-www-form-urlencoded"),
    ] {
        let response = w
            .app
            .raw(
                Method::POST,
                "/orders",
                &w.alice.token,
                content_type,
                body.clone(),
            )
            .await;
        assert_problem(
            &response,
            415,
            "unsupported_media_type",
            &format!("{content_type:?}"),
        );
    }
    let response = w
        .app
        .raw(
            Method::POST,
            &format!("/orders/{}/transitions", w.order_id()),
            &w.owner,
            None,
            r#"{"to":"confirmed"}"#,
        )
        .await;
    assert_problem(&response, 415, "unsupported_media_type", "transition");
    assert_eq!(w.snapshot().await, before);
}

#[tokio::test]
async fn unknown_and_foreign_products_are_refused() {
    let w = World::new().await;
    let before = w.snapshot().await;
    for product in [99_999_999, 0, -1, w.shop_products[0]] {
        let response = w
            .app
            .place(
                &w.alice.token,
                &pickup(RESTAURANT, &[(w.products[0], 1), (product, 1)]),
            )
            .await;
        assert_problem(
            &response,
            422,
            "unknown_product",
            &format!("product {product}"),
        );
    }
    // A restaurant product in a shop order.
    let response = w
        .app
        .place(&w.alice.token, &pickup(SHOP, &[(w.products[0], 1)]))
        .await;
    assert_problem(
        &response,
        422,
        "unknown_product",
        "restaurant product in the shop",
    );
    // An unknown store.
    for store in ["no-such-store", "", "../demo-restaurant"] {
        let response = w
            .app
            .place(&w.alice.token, &pickup(store, &[(w.products[0], 1)]))
            .await;
        let code = response.problem().to_owned();
        assert!(
            matches!(response.status.as_u16(), 404 | 422),
            "store {store:?}: {code} {}",
            response.text
        );
    }
    assert_eq!(w.snapshot().await, before);
}

#[tokio::test]
async fn delivery_needs_an_address() {
    let w = World::new().await;
    let before = w.snapshot().await;
    let p = w.products[0];
    for fulfilment in [
        json!({"type": "delivery"}),
        json!({"type": "delivery", "address": null}),
        json!({"type": "delivery", "address": ""}),
        json!({"type": "delivery", "address": "   "}),
        json!({"type": "delivery", "address": "a".repeat(301)}),
    ] {
        let body = json!({"store": RESTAURANT, "items": [{"product": p, "quantity": 1}], "fulfilment": fulfilment});
        let response = w.app.place(&w.alice.token, &body).await;
        assert_problem(&response, 422, "invalid_order", &fulfilment.to_string());
    }
    // Notes have a limit too.
    let mut body = pickup(RESTAURANT, &[(p, 1)]);
    body["notes"] = json!("n".repeat(501));
    let response = w.app.place(&w.alice.token, &body).await;
    assert_problem(&response, 422, "invalid_order", "long order notes");
    let mut body = pickup(RESTAURANT, &[(p, 1)]);
    body["items"][0]["notes"] = json!("n".repeat(501));
    let response = w.app.place(&w.alice.token, &body).await;
    assert_problem(&response, 422, "invalid_order", "long item notes");
    assert_eq!(w.snapshot().await, before);
}

#[tokio::test]
async fn bad_order_ids_are_4xx() {
    let w = World::new().await;
    let before = w.snapshot().await;
    let cases: [(&str, u16, &str); 7] = [
        ("abc", 400, "invalid_path"),
        ("1.5", 400, "invalid_path"),
        ("99999999999999999999", 400, "invalid_path"),
        ("%20", 400, "invalid_path"),
        ("-1", 404, "not_found"),
        ("0", 404, "not_found"),
        ("99999999", 404, "not_found"),
    ];
    for (bad, status, code) in cases {
        for token in [&w.alice.token, &w.owner] {
            let response = w.app.get(&format!("/orders/{bad}"), token).await;
            assert_problem(&response, status, code, &format!("GET /orders/{bad}"));
            let response = w.app.get(&format!("/orders/{bad}/history"), token).await;
            assert_problem(&response, status, code, &format!("history {bad}"));
            let response = w
                .app
                .post(
                    &format!("/orders/{bad}/transitions"),
                    token,
                    &json!({"to": "cancelled"}),
                )
                .await;
            assert_problem(&response, status, code, &format!("transition {bad}"));
        }
        let response = w
            .app
            .patch(
                &format!("/orders/{bad}/items/{}", w.item_id()),
                &w.kitchen,
                &json!({"status": "ready"}),
            )
            .await;
        assert_problem(&response, status, code, &format!("item of order {bad}"));
        let response = w
            .app
            .patch(
                &format!("/orders/{}/items/{bad}", w.order_id()),
                &w.kitchen,
                &json!({"status": "ready"}),
            )
            .await;
        assert_problem(&response, status, code, &format!("item {bad}"));
    }
    // Unknown paths are problems too.
    for path in ["/orders/1/nope", "/nope", "/orders/1/items"] {
        let response = w.app.get(path, &w.alice.token).await;
        response.problem();
        assert!(
            matches!(response.status.as_u16(), 404 | 405),
            "{path}: {}",
            response.text
        );
    }
    assert_eq!(w.snapshot().await, before);
}

#[tokio::test]
async fn unknown_status_and_unknown_item_status_change_nothing() {
    let w = World::new().await;
    let before = w.snapshot().await;
    for to in [
        "teleported",
        "Confirmed",
        " confirmed",
        "processing",
        "shipped",
    ] {
        let response = w.app.transition(&w.owner, w.order_id(), to, 1).await;
        response.problem();
        assert!(
            matches!(response.status.as_u16(), 400 | 422),
            "{to}: {}",
            response.text
        );
        assert_eq!(response.body["code"], "unknown_status", "{to}");
    }
    for status in [
        json!("burnt"),
        json!("READY"),
        json!(""),
        json!(1),
        json!(null),
    ] {
        let response = w
            .app
            .patch(
                &format!("/orders/{}/items/{}", w.order_id(), w.item_id()),
                &w.kitchen,
                &json!({"status": status}),
            )
            .await;
        // (serde_json reports a non-string enum as a syntax error: 400.)
        response.problem();
        assert!(
            matches!(response.status.as_u16(), 400 | 422),
            "item status {status}: {}",
            response.text
        );
    }
    // A note over 500 characters.
    let response = w
        .app
        .post(
            &format!("/orders/{}/transitions", w.order_id()),
            &w.owner,
            &json!({"to": "confirmed", "note": "n".repeat(501)}),
        )
        .await;
    assert_problem(&response, 422, "invalid_note", "long note");
    assert_eq!(w.snapshot().await, before);
    assert_eq!(w.app.history(&w.alice.token, w.order_id()).await.len(), 1);
}

#[tokio::test]
async fn bad_list_queries_are_4xx() {
    let w = World::new().await;
    let before = w.snapshot().await;
    for query in [
        "cursor=abc",
        "cursor=-5",
        "cursor=0",
        "cursor=1.5",
        "cursor=%00",
    ] {
        let response = w.app.get(&format!("/orders?{query}"), &w.alice.token).await;
        assert_problem(&response, 422, "invalid_cursor", query);
        let response = w
            .app
            .get(&format!("/orders?store={RESTAURANT}&{query}"), &w.owner)
            .await;
        assert_problem(&response, 422, "invalid_cursor", query);
    }
    for query in [
        "limit=abc",
        "limit=-1",
        "limit=1.5",
        "limit=99999999999",
        "page=2",
        "customer_id=1",
    ] {
        let response = w.app.get(&format!("/orders?{query}"), &w.alice.token).await;
        assert_problem(&response, 400, "invalid_query", query);
    }
    let response = w
        .app
        .get(
            &format!("/orders?store={RESTAURANT}&status=teleported"),
            &w.owner,
        )
        .await;
    assert_problem(&response, 422, "unknown_status", "status filter");
    let response = w
        .app
        .get(
            &format!("/orders?store={RESTAURANT}&q={}", "q".repeat(101)),
            &w.owner,
        )
        .await;
    assert_problem(&response, 422, "invalid_search", "long search");
    let response = w.app.get("/orders?store=no-such-store", &w.owner).await;
    assert_problem(&response, 404, "not_found", "unknown store");
    // Out-of-range limits are clamped, not errors.
    let page = w
        .app
        .get("/orders?limit=0", &w.alice.token)
        .await
        .expect(200);
    assert_eq!(page["items"].as_array().map(Vec::len), Some(1));
    let page = w
        .app
        .get("/orders?limit=1000", &w.alice.token)
        .await
        .expect(200);
    assert_eq!(page["items"].as_array().map(Vec::len), Some(2));
    assert_eq!(w.snapshot().await, before);
}

#[tokio::test]
async fn bad_product_and_staff_requests_are_refused() {
    let w = World::new().await;
    let before = w.snapshot().await;
    let products = format!("/stores/{RESTAURANT}/products");
    for (body, code) in [
        (json!({"price_minor": 100}), "invalid_product"),
        (json!({"name": "Soup"}), "invalid_product"),
        (json!({"name": "", "price_minor": 100}), "invalid_product"),
        (
            json!({"name": "Soup", "price_minor": -1}),
            "invalid_product",
        ),
        (
            json!({"name": "Soup", "price_minor": 100_000_001}),
            "invalid_product",
        ),
        (
            json!({"name": "n".repeat(101), "price_minor": 100}),
            "invalid_product",
        ),
        (
            json!({"name": "Soup", "price_minor": "100"}),
            "invalid_body",
        ),
        (json!({"name": "Soup", "price_minor": 1.5}), "invalid_body"),
    ] {
        let response = w.app.post(&products, &w.owner, &body).await;
        assert_problem(&response, 422, code, &body.to_string());
    }
    let response = w
        .app
        .patch(
            &format!("{products}/{}", w.products[0]),
            &w.owner,
            &json!({"price_minor": -5}),
        )
        .await;
    assert_problem(&response, 422, "invalid_product", "negative price");
    let response = w
        .app
        .patch(
            &format!("{products}/abc"),
            &w.owner,
            &json!({"price_minor": 5}),
        )
        .await;
    assert_problem(&response, 400, "invalid_path", "product abc");

    let staff = format!("/stores/{RESTAURANT}/staff");
    for (body, status, code) in [
        (
            json!({"email": "alice@demo.test", "role": "chef"}),
            422,
            "invalid_body",
        ),
        (
            json!({"email": "alice@demo.test", "role": "customer"}),
            422,
            "invalid_role",
        ),
        (
            json!({"email": "alice@demo.test", "role": "admin"}),
            422,
            "invalid_role",
        ),
        (
            json!({"email": "nobody@demo.test", "role": "kitchen"}),
            404,
            "not_found",
        ),
        (json!({"email": "alice@demo.test"}), 422, "invalid_body"),
    ] {
        let response = w.app.post(&staff, &w.owner, &body).await;
        assert_problem(&response, status, code, &body.to_string());
    }
    let response = w.app.delete(&format!("{staff}/abc"), &w.owner).await;
    assert_problem(&response, 400, "invalid_path", "staff abc");
    let response = w.app.delete(&format!("{staff}/99999999"), &w.owner).await;
    assert_problem(&response, 404, "not_found", "unknown staff");
    let me = w.app.get("/auth/me", &w.alice.token).await.expect(200);
    assert_eq!(me["memberships"], json!([]));
    assert_eq!(w.snapshot().await, before);
}

#[tokio::test]
async fn wrong_methods_are_problems_too() {
    let w = World::new().await;
    let before = w.snapshot().await;
    let order = format!("/orders/{}", w.order_id());
    let transitions = format!("/orders/{}/transitions", w.order_id());
    for (method, path) in [
        (Method::DELETE, order.as_str()),
        (Method::PUT, order.as_str()),
        (Method::GET, transitions.as_str()),
        (Method::DELETE, "/orders"),
        (Method::GET, "/auth/login"),
    ] {
        let response = w
            .app
            .send(w.app.request(method.clone(), path, &w.alice.token))
            .await;
        assert_eq!(response.status, 405, "{method} {path}: {}", response.text);
        assert!(
            response.content_type().starts_with(PROBLEM_JSON),
            "{method} {path}: 405 without a problem body (content-type `{}`, body {:?})",
            response.content_type(),
            response.text
        );
        response.problem();
    }
    assert_eq!(w.snapshot().await, before);
}

/// Found by fuzzing (`request_bodies`): a redirect to a location holding
/// control or non-ASCII characters — here a kitchen form's `back` — made
/// the redirect helper panic (a 500, and no answer to the tap). Now a
/// `back` with control characters is not a same-site path and the tap goes
/// back to the kitchen page; any other byte a header may not carry is
/// percent-encoded. The header cannot be split, the tap lands.
#[tokio::test]
async fn a_redirect_with_control_or_non_ascii_characters_is_percent_encoded() {
    let app = spawn_app().await;
    let alice = app.alice().await;
    let kitchen = app.login("kitchen@demo.test").await;
    let csrf = app.session_csrf(&kitchen).await;
    let not_following = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .expect("client");
    let cases = [
        (
            "/kitchen/demo-restaurant?x=1\r\nSet-Cookie: evil=1\u{7}\u{0}/ café",
            "/kitchen/demo-restaurant",
        ),
        (
            "/kitchen/demo-restaurant?q=café au lait",
            "/kitchen/demo-restaurant?q=caf%C3%A9%20au%20lait",
        ),
    ];
    for (back, location) in cases {
        let order = app.place_simple(&alice.token, RESTAURANT).await;
        let response = not_following
            .post(format!(
                "{}/kitchen/{RESTAURANT}/orders/{}/items/{}",
                app.base,
                id(&order),
                item_ids(&order)[0]
            ))
            .header(
                reqwest::header::COOKIE,
                format!("ordertrack_session={kitchen}"),
            )
            .form(&[("csrf", csrf.as_str()), ("back", back)])
            .send()
            .await
            .expect("kitchen form post");
        assert_eq!(response.status(), 303, "back {back:?}");
        assert_eq!(response.headers()["location"], location);
        assert!(
            response
                .headers()
                .get_all("set-cookie")
                .iter()
                .all(|cookie| !cookie.as_bytes().starts_with(b"evil")),
            "no header was smuggled in"
        );
        let after = app
            .get(&format!("/orders/{}", id(&order)), &kitchen)
            .await
            .ok();
        assert_eq!(after["items"][0]["status"], "preparing", "the tap landed");
    }
}

/// Found by fuzzing (`stream_positions`): a GET of the WebSocket endpoint
/// that is no handshake got a plain-text rejection. It is a problem+json
/// 4xx like every other bad request.
#[tokio::test]
async fn a_websocket_request_without_a_handshake_is_a_problem() {
    let app = spawn_app().await;
    let alice = app.alice().await;
    let plain = app.get("/ws", &alice.token).await;
    assert_problem(&plain, 400, "invalid_websocket_upgrade", "a plain GET");
    let keyless = app
        .send(
            app.request(Method::GET, "/ws", ANON)
                .header("connection", "upgrade")
                .header("upgrade", "websocket")
                .header("sec-websocket-version", "13"),
        )
        .await;
    assert_problem(
        &keyless,
        400,
        "invalid_websocket_upgrade",
        "a handshake without Sec-WebSocket-Key",
    );
}
