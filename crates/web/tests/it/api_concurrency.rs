//! Races: optimistic versions on transitions, idempotent creates, parallel
//! item updates and order numbering.

use std::collections::HashSet;

use futures::future::join_all;
use reqwest::Method;
use serde_json::{Value, json};

use crate::support::*;

/// Places the same request `n` times at once with one Idempotency-Key.
async fn place_in_parallel(
    app: &TestApp, token: &str, key: &str, body: &Value, n: usize,
) -> Vec<Resp> {
    join_all((0..n).map(|_| {
        app.send(
            app.request(Method::POST, "/orders", token)
                .header("Idempotency-Key", key)
                .json(body),
        )
    }))
    .await
}

async fn place_with_key(app: &TestApp, token: &str, key: &str, body: &Value) -> Resp {
    app.send(
        app.request(Method::POST, "/orders", token)
            .header("Idempotency-Key", key)
            .json(body),
    )
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn fifty_concurrent_transitions_with_one_version_let_exactly_one_through() {
    let app = spawn_app().await;
    let alice = app.alice().await;
    let staff = [
        app.user("cashier@demo.test").await,
        app.user("manager@demo.test").await,
        app.user("owner@demo.test").await,
    ];
    let order = app.place_simple(&alice.token, RESTAURANT).await;
    assert_eq!(version(&order), 1);

    let responses = join_all(
        (0..50).map(|n| app.transition(&staff[n % staff.len()].token, id(&order), "confirmed", 1)),
    )
    .await;

    let winners: Vec<&Resp> = responses.iter().filter(|r| r.status == 200).collect();
    assert_eq!(winners.len(), 1, "exactly one transition succeeds");
    let winner = &winners[0].body;
    assert_eq!((status(winner), version(winner)), ("confirmed", 2));
    let losers: Vec<&Resp> = responses.iter().filter(|r| r.status != 200).collect();
    for response in &losers {
        response.problem();
        assert_eq!(response.status, 409, "{}", response.text);
    }

    let history = app.history(&alice.token, id(&order)).await;
    assert_chained(&history);
    let path: Vec<(Option<&str>, &str)> = history
        .iter()
        .map(|h| (h["from"].as_str(), h["to"].as_str().unwrap()))
        .collect();
    assert_eq!(
        path,
        vec![(None, "pending"), (Some("pending"), "confirmed")],
        "exactly one new history entry"
    );
    let winner_id = history[1]["actor"]["id"].as_i64().unwrap();
    assert!(staff.iter().any(|s| s.id == winner_id));
    let now = app.order(&alice.token, id(&order)).await;
    assert_eq!((status(&now), version(&now)), ("confirmed", 2));

    // Every loser sent a stale expected_version, so every loser is told the
    // current one (the contract: "stale expected_version → 409 with the
    // current version").
    let without_version: Vec<&str> = losers
        .iter()
        .filter(|r| r.body["current_version"] != 2)
        .map(|r| r.text.as_str())
        .collect();
    assert!(
        without_version.is_empty(),
        "{} of {} conflicts lack current_version 2, e.g. {}",
        without_version.len(),
        losers.len(),
        without_version[0]
    );
}

#[tokio::test]
async fn a_stale_expected_version_is_409_with_the_current_version() {
    let app = spawn_app().await;
    let alice = app.alice().await;
    let cashier = app.login("cashier@demo.test").await;
    let order = app.place_simple(&alice.token, RESTAURANT).await;
    let confirmed = app.advance(&cashier, &order, "confirmed").await;

    // A move that is allowed now, decided on an old version.
    let problem = app
        .transition(&cashier, id(&order), "cancelled", 1)
        .await
        .expect_problem(409, "version_conflict")
        .clone();
    assert_eq!(problem["current_version"], 2);
    // A version from the future is just as stale.
    let problem = app
        .transition(&cashier, id(&order), "cancelled", 7)
        .await
        .expect_problem(409, "version_conflict")
        .clone();
    assert_eq!(problem["current_version"], 2);

    // The lost race of the test above, made deterministic: a second
    // "confirm" sent with the version both clients saw.
    let late = app.transition(&cashier, id(&order), "confirmed", 1).await;
    late.problem();
    assert_eq!(late.status, 409, "{}", late.text);
    assert_eq!(
        late.body["current_version"], 2,
        "a stale expected_version must be answered with the current version: {}",
        late.text
    );

    // Nothing changed (`next_statuses` differs by role, so compare the order itself).
    let now = app.order(&alice.token, id(&order)).await;
    for field in ["status", "version", "updated_at", "items"] {
        assert_eq!(now[field], confirmed[field], "{field}");
    }
    assert_eq!(app.history(&alice.token, id(&order)).await.len(), 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_transitions_without_a_version_still_happen_once() {
    let app = spawn_app().await;
    let alice = app.alice().await;
    let cashier = app.login("cashier@demo.test").await;
    let order = app.place_simple(&alice.token, RESTAURANT).await;
    let path = format!("/orders/{}/transitions", id(&order));
    let body = json!({"to": "cancelled"});

    let responses = join_all((0..50).map(|_| app.post(&path, &cashier, &body))).await;
    assert_eq!(responses.iter().filter(|r| r.status == 200).count(), 1);
    for response in responses.iter().filter(|r| r.status != 200) {
        response.expect_problem(409, "terminal_status");
    }
    let history = app.history(&alice.token, id(&order)).await;
    assert_eq!(history.len(), 2);
    assert_chained(&history);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_item_updates_advance_the_order_exactly_once() {
    let app = spawn_app().await;
    let alice = app.alice().await;
    let cashier = app.login("cashier@demo.test").await;
    let kitchen = app.login("kitchen@demo.test").await;
    let products = app.product_ids(RESTAURANT).await;
    let order = app
        .place_order(
            &alice.token,
            RESTAURANT,
            &[(products[0], 1), (products[5], 1), (products[9], 1)],
        )
        .await;
    let order = app.advance(&cashier, &order, "confirmed").await;
    let order = app.advance(&kitchen, &order, "preparing").await;
    let order = app.advance(&kitchen, &order, "cooking").await;

    let responses = join_all(
        item_ids(&order)
            .into_iter()
            .map(|item| app.set_item(&kitchen, id(&order), item, "ready")),
    )
    .await;
    for response in responses {
        response.expect(200);
    }
    let now = app.order(&alice.token, id(&order)).await;
    assert_eq!(status(&now), "ready");
    assert_eq!(version(&now), version(&order) + 3 + 1);
    let history = app.history(&alice.token, id(&order)).await;
    let ready: Vec<&Value> = history.iter().filter(|h| h["to"] == "ready").collect();
    assert_eq!(ready.len(), 1, "one automatic move: {history:?}");
    assert_eq!(ready[0]["from"], "cooking");
    assert_chained(&history);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn twenty_parallel_creates_with_one_idempotency_key_make_one_order() {
    let app = spawn_app().await;
    let alice = app.alice().await;
    let products = app.product_ids(RESTAURANT).await;
    let body = pickup(RESTAURANT, &[(products[0], 2), (products[9], 1)]);

    let responses = place_in_parallel(&app, &alice.token, "checkout-7f3a", &body, 20).await;
    let mut created = 0;
    let mut order_ids = HashSet::new();
    for response in &responses {
        match response.status.as_u16() {
            201 => created += 1,
            200 => {}
            other => panic!("unexpected {other}: {}", response.text),
        }
        order_ids.insert(id(&response.body));
        assert_eq!(response.body["customer_id"], alice.id);
        assert_eq!(response.body["total_minor"], 2 * 950 + 350);
    }
    assert_eq!(created, 1, "exactly one response reports a new order");
    assert_eq!(order_ids.len(), 1, "every response names the same order");

    let mine = app.my_orders(&alice.token).await;
    assert_eq!(ids(&mine), order_ids.into_iter().collect::<Vec<_>>());
    let cashier = app.login("cashier@demo.test").await;
    assert_eq!(app.store_orders(&cashier, RESTAURANT).await.len(), 1);
    assert_eq!(mine[0]["number"], "R-000001");
    assert_eq!(app.history(&alice.token, id(&mine[0])).await.len(), 1);

    // A later retry still returns the original order, as it is now.
    let confirmed = app.advance(&cashier, &mine[0], "confirmed").await;
    let retry = place_with_key(&app, &alice.token, "checkout-7f3a", &body)
        .await
        .expect(200);
    assert_eq!(id(&retry), id(&confirmed));
    assert_eq!(status(&retry), "confirmed");
    assert_eq!(app.my_orders(&alice.token).await.len(), 1);
}

#[tokio::test]
async fn the_same_idempotency_key_with_a_different_body_is_422() {
    let app = spawn_app().await;
    let alice = app.alice().await;
    let products = app.product_ids(RESTAURANT).await;
    let first = place_with_key(
        &app,
        &alice.token,
        "k-1",
        &pickup(RESTAURANT, &[(products[0], 1)]),
    )
    .await
    .expect(201);

    for different in [
        pickup(RESTAURANT, &[(products[0], 2)]),
        pickup(RESTAURANT, &[(products[1], 1)]),
        delivery(RESTAURANT, &[(products[0], 1)], "1 Main St"),
        {
            let mut body = pickup(RESTAURANT, &[(products[0], 1)]);
            body["notes"] = json!("extra napkins");
            body
        },
        pickup(SHOP, &[(app.product_ids(SHOP).await[0], 1)]),
    ] {
        place_with_key(&app, &alice.token, "k-1", &different)
            .await
            .expect_problem(422, "idempotency_key_reused");
    }
    assert_eq!(ids(&app.my_orders(&alice.token).await), vec![id(&first)]);

    // Parallel mismatches change nothing either.
    let responses = place_in_parallel(
        &app,
        &alice.token,
        "k-1",
        &pickup(RESTAURANT, &[(products[0], 3)]),
        10,
    )
    .await;
    for response in responses {
        response.expect_problem(422, "idempotency_key_reused");
    }
    assert_eq!(ids(&app.my_orders(&alice.token).await), vec![id(&first)]);

    // A new key is a new order.
    place_with_key(
        &app,
        &alice.token,
        "k-2",
        &pickup(RESTAURANT, &[(products[0], 2)]),
    )
    .await
    .expect(201);
    assert_eq!(app.my_orders(&alice.token).await.len(), 2);
}

#[tokio::test]
async fn an_idempotency_key_belongs_to_one_customer() {
    let app = spawn_app().await;
    let alice = app.alice().await;
    let bob = app.bob().await;
    let products = app.product_ids(RESTAURANT).await;
    let body = pickup(RESTAURANT, &[(products[0], 1)]);
    let hers = place_with_key(&app, &alice.token, "shared-key", &body)
        .await
        .expect(201);
    // Bob using the same key and body gets his own order, never hers.
    let his = place_with_key(&app, &bob.token, "shared-key", &body)
        .await
        .expect(201);
    assert_ne!(id(&his), id(&hers));
    assert_eq!(his["customer_id"], bob.id);
    assert_ne!(his["tracking_token"], hers["tracking_token"]);
    assert_eq!(ids(&app.my_orders(&bob.token).await), vec![id(&his)]);
    assert_eq!(ids(&app.my_orders(&alice.token).await), vec![id(&hers)]);
}

#[tokio::test]
async fn bad_idempotency_keys_are_refused() {
    let app = spawn_app().await;
    let alice = app.alice().await;
    let body = pickup(RESTAURANT, &[(app.product_ids(RESTAURANT).await[0], 1)]);
    place_with_key(&app, &alice.token, "", &body)
        .await
        .expect_problem(422, "invalid_idempotency_key");
    place_with_key(&app, &alice.token, &"k".repeat(256), &body)
        .await
        .expect_problem(422, "invalid_idempotency_key");
    let non_ascii = app
        .send(
            app.request(Method::POST, "/orders", &alice.token)
                .header(
                    "Idempotency-Key",
                    reqwest::header::HeaderValue::from_bytes(b"caf\xe9").unwrap(),
                )
                .json(&body),
        )
        .await;
    non_ascii.expect_problem(400, "invalid_idempotency_key");
    assert!(app.my_orders(&alice.token).await.is_empty());
    // The longest accepted key works.
    place_with_key(&app, &alice.token, &"k".repeat(255), &body)
        .await
        .expect(201);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_orders_get_distinct_gapless_numbers() {
    let app = spawn_app().await;
    let alice = app.alice().await;
    let bob = app.bob().await;
    let products = app.product_ids(RESTAURANT).await;
    let bodies: Vec<Value> = (0..30)
        .map(|n| pickup(RESTAURANT, &[(products[n % products.len()], 1)]))
        .collect();
    let responses = join_all(bodies.iter().enumerate().map(|(n, body)| {
        let token = if n % 2 == 0 { &alice.token } else { &bob.token };
        app.place(token, body)
    }))
    .await;
    let mut numbers: Vec<String> = responses
        .into_iter()
        .map(|r| r.expect(201)["number"].as_str().unwrap().to_owned())
        .collect();
    numbers.sort();
    let expected: Vec<String> = (1..=30).map(|n| format!("R-{n:06}")).collect();
    assert_eq!(numbers, expected);
    assert_eq!(app.my_orders(&alice.token).await.len(), 15);
    assert_eq!(app.my_orders(&bob.token).await.len(), 15);
}
