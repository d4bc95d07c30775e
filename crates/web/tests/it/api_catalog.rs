//! Stores, catalogs and staff: who may change them, and that access follows
//! membership changes at once.

use std::collections::BTreeSet;

use serde_json::{Value, json};

use crate::support::*;

#[tokio::test]
async fn stores_and_their_catalogs_are_public() {
    let app = spawn_app().await;
    let stores = app.get("/stores", ANON).await.expect(200);
    let stores = stores.as_array().expect("a list");
    let find = |slug: &str| -> Value {
        stores
            .iter()
            .find(|s| s["slug"] == slug)
            .unwrap_or_else(|| panic!("{slug} not listed"))
            .clone()
    };
    let restaurant = find(RESTAURANT);
    assert!(restaurant["id"].is_i64());
    assert!(restaurant["name"].is_string());
    assert_eq!(restaurant["currency"], "EUR");
    assert_eq!(restaurant["workflow"], "restaurant");
    assert_eq!(find(SHOP)["workflow"], "retail");

    let detail = app.store_detail(RESTAURANT).await;
    assert_eq!(detail["slug"], RESTAURANT);
    assert_eq!(detail["workflow"], "restaurant");
    let products = detail["products"].as_array().expect("products");
    assert_eq!(products.len(), 12);
    for product in products {
        assert!(product["id"].is_i64(), "{product}");
        assert!(product["name"].is_string(), "{product}");
        assert!(
            product["price_minor"].as_i64().is_some_and(|p| p > 0),
            "{product}"
        );
        assert_eq!(product["available"], true, "{product}");
    }
    let stations: BTreeSet<&str> = products
        .iter()
        .map(|p| p["station"].as_str().unwrap())
        .collect();
    assert_eq!(stations, BTreeSet::from(["drinks", "fryer", "grill"]));
    let statuses: Vec<&str> = detail["statuses"]
        .as_array()
        .expect("statuses")
        .iter()
        .map(|s| s["key"].as_str().unwrap())
        .collect();
    assert_eq!(
        statuses,
        vec![
            "pending",
            "confirmed",
            "preparing",
            "cooking",
            "ready",
            "out_for_delivery",
            "delivered",
            "completed",
            "cancelled"
        ]
    );
    assert_eq!(
        app.get(&format!("/stores/{RESTAURANT}/products"), ANON)
            .await
            .expect(200),
        detail["products"]
    );
    app.get("/stores/no-such-store", ANON)
        .await
        .expect_problem(404, "not_found");
}

#[tokio::test]
async fn owners_and_managers_create_and_update_products() {
    let app = spawn_app().await;
    let owner = app.login("owner@demo.test").await;
    let manager = app.login("manager@demo.test").await;
    let admin = app.login("admin@demo.test").await;
    let alice = app.alice().await;
    let products = format!("/stores/{RESTAURANT}/products");

    let soup = app
        .post(
            &products,
            &owner,
            &json!({"name": "Tomato Soup", "description": "With basil", "price_minor": 650, "station": "Grill"}),
        )
        .await
        .expect(201);
    assert_eq!(soup["name"], "Tomato Soup");
    assert_eq!(soup["price_minor"], 650);
    assert_eq!(soup["station"], "grill");
    assert_eq!(soup["available"], true);
    let pie = app
        .post(
            &products,
            &manager,
            &json!({"name": "Apple Pie", "price_minor": 480}),
        )
        .await
        .expect(201);
    assert_eq!(pie["station"], "counter", "the default station");
    app.post(
        &products,
        &admin,
        &json!({"name": "Admin Special", "price_minor": 1}),
    )
    .await
    .expect(201);
    let listed = app.product_ids(RESTAURANT).await;
    assert_eq!(listed.len(), 15);
    assert!(listed.contains(&id(&soup)) && listed.contains(&id(&pie)));

    let updated = app
        .patch(
            &format!("{products}/{}", id(&soup)),
            &manager,
            &json!({"price_minor": 700}),
        )
        .await
        .expect(200);
    assert_eq!(updated["price_minor"], 700);
    assert_eq!(updated["name"], "Tomato Soup", "untouched fields stay");
    let order = app
        .place_order(&alice.token, RESTAURANT, &[(id(&soup), 2)])
        .await;
    assert_eq!(order["total_minor"], 1400);

    // Unavailable products cannot be ordered.
    let off = app
        .patch(
            &format!("{products}/{}", id(&soup)),
            &owner,
            &json!({"available": false}),
        )
        .await
        .expect(200);
    assert_eq!(off["available"], false);
    let shown = app
        .products(RESTAURANT)
        .await
        .into_iter()
        .find(|p| id(p) == id(&soup))
        .expect("still listed");
    assert_eq!(shown["available"], false);
    app.place(&alice.token, &pickup(RESTAURANT, &[(id(&soup), 1)]))
        .await
        .expect_problem(422, "unavailable_product");
    assert_eq!(app.my_orders(&alice.token).await.len(), 1);
    app.patch(
        &format!("{products}/{}", id(&soup)),
        &owner,
        &json!({"available": true}),
    )
    .await
    .expect(200);
    app.place_order(&alice.token, RESTAURANT, &[(id(&soup), 1)])
        .await;
}

#[tokio::test]
async fn cashiers_kitchen_drivers_customers_and_other_stores_cannot_change_the_catalog() {
    let app = spawn_app().await;
    let products = format!("/stores/{RESTAURANT}/products");
    let burger = app.product_id(RESTAURANT, "Classic Burger").await;
    let before = app.products(RESTAURANT).await;

    for email in [
        "cashier@demo.test",
        "kitchen@demo.test",
        "driver@demo.test",
        "alice@demo.test",
        "seller@demo.test",
    ] {
        let token = app.login(email).await;
        app.post(
            &products,
            &token,
            &json!({"name": "Free Lunch", "price_minor": 0}),
        )
        .await
        .expect_problem(403, "forbidden");
        app.patch(
            &format!("{products}/{burger}"),
            &token,
            &json!({"price_minor": 1}),
        )
        .await
        .expect_problem(403, "forbidden");
    }
    assert_eq!(app.products(RESTAURANT).await, before);
}

#[tokio::test]
async fn a_product_is_only_reachable_through_its_own_store() {
    let app = spawn_app().await;
    let owner = app.login("owner@demo.test").await;
    let seller = app.login("seller@demo.test").await;
    let shop_product = app.product_ids(SHOP).await[0];
    let restaurant_product = app.product_ids(RESTAURANT).await[0];
    let shop_before = app.products(SHOP).await;
    let restaurant_before = app.products(RESTAURANT).await;

    app.patch(
        &format!("/stores/{RESTAURANT}/products/{shop_product}"),
        &owner,
        &json!({"price_minor": 1}),
    )
    .await
    .expect_problem(404, "not_found");
    app.patch(
        &format!("/stores/{SHOP}/products/{restaurant_product}"),
        &seller,
        &json!({"price_minor": 1}),
    )
    .await
    .expect_problem(404, "not_found");
    assert_eq!(app.products(SHOP).await, shop_before);
    assert_eq!(app.products(RESTAURANT).await, restaurant_before);
}

#[tokio::test]
async fn removing_a_staff_member_ends_their_access_at_once() {
    let app = spawn_app().await;
    let owner = app.login("owner@demo.test").await;
    let kitchen = app.user("kitchen@demo.test").await;
    let alice = app.alice().await;
    let order = app.place_simple(&alice.token, RESTAURANT).await;
    let item = item_ids(&order)[0];

    // Before: the kitchen sees and works the store's orders.
    assert_eq!(app.store_orders(&kitchen.token, RESTAURANT).await.len(), 1);
    app.order(&kitchen.token, id(&order)).await;
    let order = app
        .set_item(&kitchen.token, id(&order), item, "preparing")
        .await
        .expect(200);
    let staff = app
        .get(&format!("/stores/{RESTAURANT}/staff"), &owner)
        .await
        .expect(200);
    let kitchen_row = staff
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["user"]["id"] == kitchen.id)
        .expect("kitchen is staff")
        .clone();
    assert_eq!(kitchen_row["role"], "kitchen");

    let response = app
        .delete(
            &format!("/stores/{RESTAURANT}/staff/{}", kitchen.id),
            &owner,
        )
        .await;
    assert_eq!(response.status, 204, "{}", response.text);

    // After: the very same token, no access.
    let listed = app
        .get(&format!("/orders?store={RESTAURANT}"), &kitchen.token)
        .await;
    listed.problem();
    assert!(
        matches!(listed.status.as_u16(), 403 | 404),
        "{}",
        listed.text
    );
    app.get(&format!("/orders/{}", id(&order)), &kitchen.token)
        .await
        .expect_problem(404, "not_found");
    app.get(&format!("/orders/{}/history", id(&order)), &kitchen.token)
        .await
        .expect_problem(404, "not_found");
    app.set_item(&kitchen.token, id(&order), item, "ready")
        .await
        .expect_problem(404, "not_found");
    app.transition(&kitchen.token, id(&order), "cancelled", version(&order))
        .await
        .expect_problem(404, "not_found");
    let me = app.get("/auth/me", &kitchen.token).await.expect(200);
    assert_eq!(me["memberships"], json!([]));
    // Still signed in, now just a customer.
    assert!(app.my_orders(&kitchen.token).await.is_empty());

    let staff = app
        .get(&format!("/stores/{RESTAURANT}/staff"), &owner)
        .await
        .expect(200);
    assert!(
        staff
            .as_array()
            .unwrap()
            .iter()
            .all(|m| m["user"]["id"] != kitchen.id)
    );
    let now = app.order(&alice.token, id(&order)).await;
    assert_eq!(version(&now), version(&order));
    // Removing them again: they are not staff any more.
    app.delete(
        &format!("/stores/{RESTAURANT}/staff/{}", kitchen.id),
        &owner,
    )
    .await
    .expect_problem(404, "not_found");
}

#[tokio::test]
async fn adding_a_staff_member_grants_access_at_once() {
    let app = spawn_app().await;
    let owner = app.login("owner@demo.test").await;
    let carol = app.register("carol@example.com", "Carol").await;
    let alice = app.alice().await;
    let order = app.place_simple(&alice.token, RESTAURANT).await;
    app.get(&format!("/orders/{}", id(&order)), &carol.token)
        .await
        .expect_problem(404, "not_found");

    let added = app
        .post(
            &format!("/stores/{RESTAURANT}/staff"),
            &owner,
            &json!({"email": "Carol@Example.com", "role": "cashier"}),
        )
        .await
        .expect(201);
    assert_eq!(added["user"]["id"], carol.id);
    assert_eq!(added["role"], "cashier");

    // The token she already had now works as a cashier's.
    let me = app.get("/auth/me", &carol.token).await.expect(200);
    assert_eq!(me["memberships"][0]["store"], RESTAURANT);
    assert_eq!(me["memberships"][0]["role"], "cashier");
    app.advance(&carol.token, &order, "confirmed").await;
    let history = app.history(&alice.token, id(&order)).await;
    assert_eq!(
        history[1]["actor"],
        json!({"id": carol.id, "role": "cashier"})
    );

    // Promoting replaces the role.
    app.post(
        &format!("/stores/{RESTAURANT}/staff"),
        &owner,
        &json!({"email": "carol@example.com", "role": "manager"}),
    )
    .await
    .expect(201);
    let me = app.get("/auth/me", &carol.token).await.expect(200);
    assert_eq!(me["memberships"].as_array().map(Vec::len), Some(1), "{me}");
    assert_eq!(me["memberships"][0]["role"], "manager");
}

#[tokio::test]
async fn only_owners_manage_staff() {
    let app = spawn_app().await;
    let owner = app.user("owner@demo.test").await;
    let cashier = app.user("cashier@demo.test").await;
    let staff = format!("/stores/{RESTAURANT}/staff");
    let before = app.get(&staff, &owner.token).await.expect(200);

    for email in [
        "manager@demo.test",
        "cashier@demo.test",
        "kitchen@demo.test",
        "alice@demo.test",
        "seller@demo.test",
    ] {
        let token = app.login(email).await;
        // A read of the back office: for those who are not its staff it
        // does not exist.
        let outsider = matches!(email, "alice@demo.test" | "seller@demo.test");
        let (status, code) = if outsider {
            (404, "not_found")
        } else {
            (403, "forbidden")
        };
        app.get(&staff, &token).await.expect_problem(status, code);
        app.post(
            &staff,
            &token,
            &json!({"email": "bob@demo.test", "role": "owner"}),
        )
        .await
        .expect_problem(403, "forbidden");
        app.delete(&format!("{staff}/{}", cashier.id), &token)
            .await
            .expect_problem(403, "forbidden");
    }
    app.delete(&format!("{staff}/{}", owner.id), &owner.token)
        .await
        .expect_problem(409, "cannot_remove_self");
    assert_eq!(app.get(&staff, &owner.token).await.expect(200), before);
    let bob = app.bob().await;
    let me = app.get("/auth/me", &bob.token).await.expect(200);
    assert_eq!(me["memberships"], json!([]));
}
