//! Placing, listing and reading orders: ownership from the token, store
//! isolation, pagination, search and the guest tracking view.

use std::collections::HashSet;

use serde_json::{Value, json};

use crate::support::*;

#[tokio::test]
async fn a_new_order_belongs_to_the_token_and_is_listed_in_the_very_next_request() {
    let app = spawn_app().await;
    let alice = app.alice().await;
    let bob = app.bob().await;
    let burger = app.product_id(RESTAURANT, "Classic Burger").await;
    let fries = app.product_id(RESTAURANT, "Fries").await;

    let order = app
        .place(
            &alice.token,
            &json!({
                "store": RESTAURANT,
                "items": [
                    {"product": burger, "quantity": 2, "notes": "no onions"},
                    {"product": fries, "quantity": 1},
                ],
                "fulfilment": {"type": "pickup"},
                "notes": "ring twice",
            }),
        )
        .await
        .expect(201);

    // The very next request sees it, first (newest first).
    let listed = app.my_orders(&alice.token).await;
    assert_eq!(ids(&listed), vec![id(&order)]);
    assert_eq!(listed[0]["customer_id"], alice.id);

    assert_eq!(order["customer_id"], alice.id);
    assert_eq!(order["store"], RESTAURANT);
    assert_eq!(order["status"], "pending");
    assert_eq!(order["version"], 1);
    assert_eq!(order["currency"], "EUR");
    assert_eq!(order["fulfilment"]["type"], "pickup");
    assert_eq!(order["notes"], "ring twice");
    let number = order["number"].as_str().expect("number");
    assert!(
        number.starts_with("R-") && number.len() == 8,
        "number {number}"
    );
    let token = order["tracking_token"].as_str().expect("tracking token");
    assert_eq!(token.len(), 32, "128 bits, hex");
    assert!(token.bytes().all(|b| b.is_ascii_hexdigit()));
    assert!(order["created_at"].is_string() && order["updated_at"].is_string());

    // Prices, names and stations come from the catalog.
    let items = order["items"].as_array().expect("items");
    assert_eq!(items.len(), 2);
    assert_eq!(items[0]["product"], burger);
    assert_eq!(items[0]["name"], "Classic Burger");
    assert_eq!(items[0]["quantity"], 2);
    assert_eq!(items[0]["unit_price_minor"], 950);
    assert_eq!(items[0]["station"], "grill");
    assert_eq!(items[0]["status"], "queued");
    assert_eq!(items[0]["notes"], "no onions");
    assert_eq!(items[1]["name"], "Fries");
    assert_eq!(items[1]["unit_price_minor"], 390);
    assert_eq!(items[1]["station"], "fryer");
    assert_eq!(order["total_minor"], 2 * 950 + 390);

    let history = app.history(&alice.token, id(&order)).await;
    assert_eq!(
        steps(&history),
        vec![step(None, "pending", "customer", &alice)]
    );
    assert_eq!(app.order(&alice.token, id(&order)).await, order);
    assert!(app.my_orders(&bob.token).await.is_empty());
}

#[tokio::test]
async fn a_forged_customer_id_never_decides_whose_order_it_is() {
    let app = spawn_app().await;
    let alice = app.alice().await;
    let bob = app.bob().await;
    let product = app.product_ids(RESTAURANT).await[0];

    let mut forged = pickup(RESTAURANT, &[(product, 1)]);
    forged["customer_id"] = json!(bob.id);
    let response = app.place(&alice.token, &forged).await;
    match response.status.as_u16() {
        422 => {
            // Refused as an unknown field: nothing was created for anyone.
            response.expect_problem(422, "invalid_body");
            assert!(response.text.contains("customer_id"), "{}", response.text);
            assert!(app.my_orders(&alice.token).await.is_empty());
        }
        201 => {
            // Accepted: then the field was ignored.
            assert_eq!(response.body["customer_id"], alice.id);
            assert_eq!(
                ids(&app.my_orders(&alice.token).await),
                vec![id(&response.body)]
            );
        }
        other => panic!("unexpected {other}: {}", response.text),
    }
    assert!(
        app.my_orders(&bob.token).await.is_empty(),
        "bob got an order he never placed"
    );
    let staff = app.login("cashier@demo.test").await;
    for order in app.store_orders(&staff, RESTAURANT).await {
        assert_ne!(order["customer_id"], bob.id);
    }
}

#[tokio::test]
async fn prices_and_totals_cannot_come_from_the_client() {
    let app = spawn_app().await;
    let alice = app.alice().await;
    let product = app.product_id(RESTAURANT, "BBQ Ribs").await;

    let mut body = pickup(RESTAURANT, &[(product, 1)]);
    body["items"][0]["unit_price_minor"] = json!(1);
    app.place(&alice.token, &body)
        .await
        .expect_problem(422, "invalid_body");
    let mut body = pickup(RESTAURANT, &[(product, 1)]);
    body["total_minor"] = json!(1);
    app.place(&alice.token, &body)
        .await
        .expect_problem(422, "invalid_body");
    assert!(app.my_orders(&alice.token).await.is_empty());

    let order = app
        .place_order(&alice.token, RESTAURANT, &[(product, 3)])
        .await;
    assert_eq!(order["total_minor"], 3 * 1690);
}

#[tokio::test]
async fn catalog_changes_do_not_change_placed_orders() {
    let app = spawn_app().await;
    let alice = app.alice().await;
    let owner = app.login("owner@demo.test").await;
    let product = app.product_id(RESTAURANT, "Lemonade").await;
    let order = app
        .place_order(&alice.token, RESTAURANT, &[(product, 2)])
        .await;

    app.patch(
        &format!("/stores/{RESTAURANT}/products/{product}"),
        &owner,
        &json!({"name": "Pink Lemonade", "price_minor": 999}),
    )
    .await
    .expect(200);

    let old = app.order(&alice.token, id(&order)).await;
    assert_eq!(old["items"][0]["name"], "Lemonade");
    assert_eq!(old["items"][0]["unit_price_minor"], 350);
    assert_eq!(old["total_minor"], 700);
    let new = app
        .place_order(&alice.token, RESTAURANT, &[(product, 2)])
        .await;
    assert_eq!(new["items"][0]["name"], "Pink Lemonade");
    assert_eq!(new["total_minor"], 1998);
}

#[tokio::test]
async fn delivery_orders_keep_their_address_and_pickup_orders_have_none() {
    let app = spawn_app().await;
    let alice = app.alice().await;
    let product = app.product_ids(RESTAURANT).await[0];

    let delivered = app
        .place_delivery(&alice.token, RESTAURANT, &[(product, 1)], "1 Main St")
        .await;
    assert_eq!(
        delivered["fulfilment"],
        json!({"type": "delivery", "address": "1 Main St"})
    );
    let mut body = pickup(RESTAURANT, &[(product, 1)]);
    body["fulfilment"]["address"] = json!("ignored for pickup");
    let picked = app.place(&alice.token, &body).await.expect(201);
    assert_eq!(picked["fulfilment"]["type"], "pickup");
    assert!(picked["fulfilment"]["address"].is_null());
}

#[tokio::test]
async fn order_numbers_count_up_per_store() {
    let app = spawn_app().await;
    let alice = app.alice().await;
    let first = app.place_simple(&alice.token, RESTAURANT).await;
    let second = app.place_simple(&alice.token, RESTAURANT).await;
    let shop = app.place_simple(&alice.token, SHOP).await;
    assert_eq!(first["number"], "R-000001");
    assert_eq!(second["number"], "R-000002");
    assert_eq!(shop["number"], "S-000001");
    assert_ne!(first["tracking_token"], second["tracking_token"]);
}

// ---- store isolation (seed 004) ----

#[tokio::test]
async fn staff_of_one_store_cannot_list_another_stores_orders() {
    let app = spawn_app().await;
    let other = app.staffed_store("harbour-grill", "restaurant", "H").await;
    let alice = app.alice().await;
    let theirs = app.place_simple(&alice.token, &other.slug).await;
    let ours = app.place_simple(&alice.token, RESTAURANT).await;

    for email in [
        "owner@demo.test",
        "manager@demo.test",
        "cashier@demo.test",
        "kitchen@demo.test",
        "driver@demo.test",
        "seller@demo.test",
    ] {
        let token = app.login(email).await;
        let response = app
            .get(&format!("/orders?store={}", other.slug), &token)
            .await;
        response.problem();
        assert!(
            matches!(response.status.as_u16(), 403 | 404),
            "{email}: {}",
            response.text
        );
        // Their own list (as a customer) does not leak it either.
        assert!(!ids(&app.my_orders(&token).await).contains(&id(&theirs)));
    }
    // And the other way round.
    let response = app
        .get(&format!("/orders?store={RESTAURANT}"), &other.owner.token)
        .await;
    response.problem();
    assert!(matches!(response.status.as_u16(), 403 | 404));

    // Each store's staff see exactly their own store's orders.
    let cashier = app.login("cashier@demo.test").await;
    assert_eq!(
        ids(&app.store_orders(&cashier, RESTAURANT).await),
        vec![id(&ours)]
    );
    assert_eq!(
        ids(&app.store_orders(&other.cashier.token, &other.slug).await),
        vec![id(&theirs)]
    );
}

#[tokio::test]
async fn staff_of_one_store_cannot_read_or_change_another_stores_orders() {
    let app = spawn_app().await;
    let other = app.staffed_store("harbour-grill", "restaurant", "H").await;
    let alice = app.alice().await;
    let order = app.place_simple(&alice.token, &other.slug).await;
    let order_id = id(&order);
    let item = item_ids(&order)[0];

    for email in [
        "owner@demo.test",
        "manager@demo.test",
        "cashier@demo.test",
        "kitchen@demo.test",
        "driver@demo.test",
        "seller@demo.test",
    ] {
        let token = app.login(email).await;
        app.get(&format!("/orders/{order_id}"), &token)
            .await
            .expect_problem(404, "not_found");
        app.get(&format!("/orders/{order_id}/history"), &token)
            .await
            .expect_problem(404, "not_found");
        for to in ["confirmed", "cancelled"] {
            app.transition(&token, order_id, to, 1)
                .await
                .expect_problem(404, "not_found");
        }
        app.set_item(&token, order_id, item, "ready")
            .await
            .expect_problem(404, "not_found");
    }

    let now = app.order(&other.cashier.token, order_id).await;
    assert_eq!(status(&now), "pending");
    assert_eq!(version(&now), 1);
    assert_eq!(now["items"][0]["status"], "queued");
    assert_eq!(app.history(&other.cashier.token, order_id).await.len(), 1);
}

#[tokio::test]
async fn a_customer_with_orders_in_two_stores_sees_both() {
    let app = spawn_app().await;
    let other = app.staffed_store("harbour-grill", "restaurant", "H").await;
    let alice = app.alice().await;
    let bob = app.bob().await;
    let restaurant = app.place_simple(&alice.token, RESTAURANT).await;
    let shop = app.place_simple(&alice.token, SHOP).await;
    let harbour = app.place_simple(&alice.token, &other.slug).await;
    app.place_simple(&bob.token, RESTAURANT).await;

    let mine = app.my_orders(&alice.token).await;
    assert_eq!(ids(&mine), vec![id(&harbour), id(&shop), id(&restaurant)]);
    let stores: Vec<&str> = mine.iter().map(|o| o["store"].as_str().unwrap()).collect();
    assert_eq!(stores, vec!["harbour-grill", SHOP, RESTAURANT]);
    // Each one in its own store's workflow.
    assert!(mine.iter().all(|o| o["status"] == "pending"));
    for order in &mine {
        app.order(&alice.token, id(order)).await;
    }
    // Her status filter works across stores.
    let cashier = app.login("cashier@demo.test").await;
    app.advance(&cashier, &restaurant, "confirmed").await;
    assert_eq!(
        ids(&app.list(&alice.token, "?status=pending").await),
        vec![id(&harbour), id(&shop)]
    );
    assert_eq!(
        ids(&app.list(&alice.token, "?status=confirmed").await),
        vec![id(&restaurant)]
    );
}

// ---- pagination and search ----

/// Follows `next_cursor` from `query` to the end; returns the pages.
async fn all_pages(app: &TestApp, token: &str, query: &str) -> Vec<Vec<Value>> {
    let mut pages = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        let path = match &cursor {
            Some(cursor) => format!("/orders{query}&cursor={cursor}"),
            None => format!("/orders{query}"),
        };
        let body = app.get(&path, token).await.expect(200);
        pages.push(body["items"].as_array().expect("items").clone());
        match body["next_cursor"].as_str() {
            Some(next) => cursor = Some(next.to_owned()),
            None => {
                assert!(body["next_cursor"].is_null());
                return pages;
            }
        }
        assert!(pages.len() <= 10, "pagination does not end");
    }
}

#[tokio::test]
async fn orders_are_paged_newest_first_without_duplicates() {
    let app = spawn_app().await;
    let alice = app.alice().await;
    let bob = app.bob().await;
    let products = app.product_ids(RESTAURANT).await;
    let mut placed = Vec::new();
    for n in 0..25 {
        let product = products[n % products.len()];
        placed.push(id(&app
            .place_order(&alice.token, RESTAURANT, &[(product, 1)])
            .await));
        if n % 5 == 0 {
            app.place_simple(&bob.token, RESTAURANT).await;
        }
    }
    let newest_first: Vec<i64> = placed.iter().rev().copied().collect();

    let pages = all_pages(&app, &alice.token, "?limit=10").await;
    let sizes: Vec<usize> = pages.iter().map(Vec::len).collect();
    assert_eq!(sizes, vec![10, 10, 5]);
    let seen: Vec<i64> = pages.iter().flat_map(|page| ids(page)).collect();
    assert_eq!(seen, newest_first, "every order once, newest first");
    assert_eq!(seen.iter().collect::<HashSet<_>>().len(), 25);

    // Exactly 20: the second page is the last one.
    let mut twenty = newest_first.clone();
    twenty.truncate(20);
    let first = app.get("/orders?limit=20", &alice.token).await.expect(200);
    assert_eq!(ids(first["items"].as_array().unwrap()), twenty);
    let cursor = first["next_cursor"].as_str().expect("a next page");
    let last = app
        .get(&format!("/orders?limit=20&cursor={cursor}"), &alice.token)
        .await
        .expect(200);
    assert_eq!(last["items"].as_array().map(Vec::len), Some(5));
    assert!(last["next_cursor"].is_null());

    // The default page is 20 and everything fits in one page of 100.
    let default = app.get("/orders", &alice.token).await.expect(200);
    assert_eq!(default["items"].as_array().map(Vec::len), Some(20));
    let all = app.get("/orders?limit=100", &alice.token).await.expect(200);
    assert_eq!(ids(all["items"].as_array().unwrap()), newest_first);
    assert!(all["next_cursor"].is_null());

    // Staff page through the whole store the same way.
    let cashier = app.login("cashier@demo.test").await;
    let pages = all_pages(&app, &cashier, &format!("?store={RESTAURANT}&limit=10")).await;
    let seen: Vec<i64> = pages.iter().flat_map(|page| ids(page)).collect();
    assert_eq!(seen.len(), 30);
    assert!(
        seen.windows(2).all(|w| w[0] > w[1]),
        "newest first: {seen:?}"
    );
}

#[tokio::test]
async fn new_orders_do_not_shift_a_page_in_progress() {
    let app = spawn_app().await;
    let alice = app.alice().await;
    let mut placed = Vec::new();
    for _ in 0..6 {
        placed.push(id(&app.place_simple(&alice.token, RESTAURANT).await));
    }
    let first = app.get("/orders?limit=3", &alice.token).await.expect(200);
    let cursor = first["next_cursor"]
        .as_str()
        .expect("a next page")
        .to_owned();
    app.place_simple(&alice.token, RESTAURANT).await;
    let second = app
        .get(&format!("/orders?limit=3&cursor={cursor}"), &alice.token)
        .await
        .expect(200);
    assert_eq!(
        ids(second["items"].as_array().unwrap()),
        vec![placed[2], placed[1], placed[0]]
    );
}

#[tokio::test]
async fn staff_filter_store_orders_by_status_and_search_by_number_or_customer() {
    let app = spawn_app().await;
    let alice = app.alice().await;
    let bob = app.bob().await;
    let cashier = app.login("cashier@demo.test").await;
    let a1 = app.place_simple(&alice.token, RESTAURANT).await;
    let b1 = app.place_simple(&bob.token, RESTAURANT).await;
    let a2 = app.place_simple(&alice.token, RESTAURANT).await;
    let b2 = app.place_simple(&bob.token, RESTAURANT).await;
    app.advance(&cashier, &a1, "confirmed").await;
    app.advance(&cashier, &b2, "confirmed").await;

    let store = format!("?store={RESTAURANT}");
    assert_eq!(
        ids(&app
            .list(&cashier, &format!("{store}&status=confirmed"))
            .await),
        vec![id(&b2), id(&a1)]
    );
    assert_eq!(
        ids(&app.list(&cashier, &format!("{store}&status=pending")).await),
        vec![id(&a2), id(&b1)]
    );
    assert!(
        app.list(&cashier, &format!("{store}&status=completed"))
            .await
            .is_empty()
    );
    app.get(&format!("/orders{store}&status=teleported"), &cashier)
        .await
        .expect_problem(422, "unknown_status");

    // By number, whole or in part.
    let number = b1["number"].as_str().unwrap();
    assert_eq!(
        ids(&app.list(&cashier, &format!("{store}&q={number}")).await),
        vec![id(&b1)]
    );
    assert_eq!(
        ids(&app.list(&cashier, &format!("{store}&q=000003")).await),
        vec![id(&a2)]
    );
    // By customer name, case-insensitively.
    assert_eq!(
        ids(&app.list(&cashier, &format!("{store}&q=Bob")).await),
        vec![id(&b2), id(&b1)]
    );
    assert_eq!(
        ids(&app.list(&cashier, &format!("{store}&q=alice")).await),
        vec![id(&a2), id(&a1)]
    );
    // Combined with a status.
    assert_eq!(
        ids(&app
            .list(&cashier, &format!("{store}&q=Alice&status=pending"))
            .await),
        vec![id(&a2)]
    );
    // Wildcards are literal.
    assert!(
        app.list(&cashier, &format!("{store}&q=%25"))
            .await
            .is_empty()
    );
    assert!(app.list(&cashier, &format!("{store}&q=_")).await.is_empty());
    assert!(
        app.list(&cashier, &format!("{store}&q=nobody"))
            .await
            .is_empty()
    );
}

// ---- the guest tracking view ----

#[tokio::test]
async fn tracking_link_works_without_sign_in_and_hides_personal_data() {
    let app = spawn_app().await;
    let alice = app.alice().await;
    let cashier = app.login("cashier@demo.test").await;
    let product = app.product_ids(RESTAURANT).await[0];
    let mut body = delivery(RESTAURANT, &[(product, 2)], "42 Secret Lane");
    body["notes"] = json!("the gate code is 1234");
    let order = app.place(&alice.token, &body).await.expect(201);
    let order = app.advance(&cashier, &order, "confirmed").await;
    let token = order["tracking_token"].as_str().unwrap();

    let tracked = app.get(&format!("/track/{token}"), ANON).await;
    let text = tracked.text.clone();
    let tracked = tracked.expect(200);
    assert_eq!(tracked["id"], order["id"]);
    assert_eq!(tracked["number"], order["number"]);
    assert_eq!(tracked["status"], "confirmed");
    assert_eq!(tracked["version"], order["version"]);
    assert_eq!(tracked["total_minor"], order["total_minor"]);
    assert_eq!(tracked["items"][0]["name"], order["items"][0]["name"]);
    assert_eq!(tracked["items"][0]["quantity"], 2);
    let history: Vec<(&str, &str)> = tracked["history"]
        .as_array()
        .expect("history")
        .iter()
        .map(|h| (h["to"].as_str().unwrap(), h["role"].as_str().unwrap()))
        .collect();
    assert_eq!(
        history,
        vec![("pending", "customer"), ("confirmed", "cashier")]
    );
    for field in [
        "customer_id",
        "customer_name",
        "address",
        "notes",
        "tracking_token",
    ] {
        assert!(
            tracked.get(field).is_none(),
            "the guest view shows `{field}`: {text}"
        );
    }
    for entry in tracked["history"].as_array().unwrap() {
        assert!(
            entry.get("actor").is_none(),
            "the guest view names people: {text}"
        );
    }
    for secret in ["42 Secret Lane", "Alice", "alice@demo.test", "gate code"] {
        assert!(
            !text.contains(secret),
            "the guest view leaks `{secret}`: {text}"
        );
    }
    // The guest view is the same when signed in as someone else.
    let bob = app.bob().await;
    assert_eq!(
        app.get(&format!("/track/{token}"), &bob.token)
            .await
            .expect(200)["number"],
        order["number"]
    );
}

#[tokio::test]
async fn unknown_tracking_tokens_are_404() {
    let app = spawn_app().await;
    let alice = app.alice().await;
    let order = app.place_simple(&alice.token, RESTAURANT).await;
    let real = order["tracking_token"].as_str().unwrap().to_owned();
    let mut wrong = real.clone();
    wrong.replace_range(0..1, if real.starts_with('0') { "1" } else { "0" });
    for token in [
        wrong.as_str(),
        "00000000000000000000000000000000",
        "nope",
        &real.to_uppercase().replace(char::is_numeric, "Z"),
        &format!("{real}00"),
        &"a".repeat(500),
        &id(&order).to_string(),
    ] {
        app.get(&format!("/track/{token}"), ANON)
            .await
            .expect_problem(404, "not_found");
    }
}
