//! Driver assignment (issue 14): the counter assigns one of the store's
//! drivers to a delivery (and unassigns), each change version checked, in
//! the history and on every open stream; the customer and a guest see the
//! driver's first name only. A driver moves only the orders assigned to
//! them, lists them (`driver=me`), takes the cash for them, and takes
//! unassigned ready deliveries themselves where the store allows it.

use ordertrack_domain::Role;
use serde_json::{Value, json};

use crate::support::*;

/// A staffed restaurant store (`slug`) with a second driver, Dana Driver,
/// whose full name the customer must not see.
async fn store_with_dana(app: &TestApp, slug: &str) -> (StaffedStore, User) {
    let store = app.staffed_store(slug, "restaurant", "D").await;
    let record = app.store_record(slug).await;
    let email = format!("dana@{slug}.test");
    let dana = app
        .app
        .create_user(&email, PASSWORD, "Dana Driver", false)
        .await
        .expect("an account");
    app.app
        .admin_set_membership(dana.id, record.id, Role::Driver)
        .await
        .expect("a driver");
    (store, app.user(&email).await)
}

/// A delivery order of `token`'s in `store`, handed off (`ready`).
async fn ready_delivery(app: &TestApp, token: &str, store: &StaffedStore) -> Value {
    let order = app
        .place_delivery(
            token,
            &store.slug,
            &[(store.product_ids()[0], 1)],
            "9 Elm Row",
        )
        .await;
    let order = app.advance(&store.cashier.token, &order, "confirmed").await;
    app.post(
        &format!("/orders/{}/bump", id(&order)),
        &store.cashier.token,
        &json!({"expected_version": version(&order)}),
    )
    .await
    .expect(200)
}

/// `DELETE /orders/{id}/assignment`.
async fn unassign(app: &TestApp, token: &str, order: &Value) -> Resp {
    app.delete(
        &format!(
            "/orders/{}/assignment?expected_version={}",
            id(order),
            version(order)
        ),
        token,
    )
    .await
}

/// `POST /orders/{id}/payment` marking it paid at the order's version.
async fn mark_paid(app: &TestApp, token: &str, order: &Value) -> Resp {
    app.post(
        &format!("/orders/{}/payment", id(order)),
        token,
        &json!({"status": "paid", "expected_version": version(order)}),
    )
    .await
}

#[tokio::test]
async fn an_unassigned_driver_gets_403_moving_the_order_and_the_assigned_one_moves_it() {
    let app = spawn_app().await;
    let alice = app.alice().await;
    let (store, dana) = store_with_dana(&app, "drv-move").await;
    let order = ready_delivery(&app, &alice.token, &store).await;
    assert_eq!(order["driver"], Value::Null, "{order}");

    // Nobody's yet: no driver moves it.
    for driver in [&store.driver, &dana] {
        app.transition(
            &driver.token,
            id(&order),
            "out_for_delivery",
            version(&order),
        )
        .await
        .expect_problem(403, "forbidden");
    }
    let assigned = app
        .assign_driver(&store.cashier.token, &order, dana.id)
        .await
        .expect(200);
    assert_eq!(
        assigned["driver"],
        json!({"id": dana.id, "name": "Dana Driver"})
    );
    assert_eq!(assigned["status"], "ready", "the status stays");
    assert_eq!(version(&assigned), version(&order) + 1);

    // Another driver still may not; Dana may.
    app.transition(
        &store.driver.token,
        id(&assigned),
        "out_for_delivery",
        version(&assigned),
    )
    .await
    .expect_problem(403, "forbidden");
    let out = app
        .advance(&dana.token, &assigned, "out_for_delivery")
        .await;
    let delivered = app.advance(&dana.token, &out, "delivered").await;
    assert_eq!(delivered["driver"]["id"], dana.id);

    // A finished order keeps its driver.
    let completed = app
        .advance(&store.cashier.token, &delivered, "completed")
        .await;
    unassign(&app, &store.cashier.token, &completed)
        .await
        .expect_problem(409, "order_finished");
}

#[tokio::test]
async fn driver_me_lists_only_the_orders_assigned_to_the_caller() {
    let app = spawn_app().await;
    let alice = app.alice().await;
    let (store, dana) = store_with_dana(&app, "drv-list").await;
    let first = ready_delivery(&app, &alice.token, &store).await;
    let second = ready_delivery(&app, &alice.token, &store).await;
    let third = ready_delivery(&app, &alice.token, &store).await;
    app.assign_driver(&store.manager.token, &first, dana.id)
        .await
        .expect(200);
    app.assign_driver(&store.manager.token, &third, dana.id)
        .await
        .expect(200);
    app.assign_driver(&store.manager.token, &second, store.driver.id)
        .await
        .expect(200);

    let mine = format!("?store={}&driver=me", store.slug);
    assert_eq!(
        ids(&app.list(&dana.token, &mine).await),
        [id(&third), id(&first)]
    );
    assert_eq!(
        ids(&app.list(&store.driver.token, &mine).await),
        [id(&second)]
    );
    // A driver's plain list is theirs too; the counter sees every order.
    assert_eq!(
        ids(&app.store_orders(&dana.token, &store.slug).await),
        [id(&third), id(&first)]
    );
    assert_eq!(
        app.store_orders(&store.cashier.token, &store.slug)
            .await
            .len(),
        3
    );
    assert!(
        app.list(&store.cashier.token, &mine).await.is_empty(),
        "nothing is assigned to the cashier"
    );
    let dana_orders = app.list(&dana.token, &mine).await;
    assert!(
        dana_orders
            .iter()
            .all(|order| order["driver"]["id"] == dana.id),
        "{dana_orders:?}"
    );

    app.get(
        &format!("/orders?store={}&driver=7", store.slug),
        &dana.token,
    )
    .await
    .expect_problem(422, "invalid_driver_filter");
    app.get("/orders?driver=me", &dana.token)
        .await
        .expect_problem(422, "invalid_driver_filter");
}

#[tokio::test]
async fn only_a_driver_of_the_store_is_assigned_by_the_counter_and_others_get_403_or_404() {
    let app = spawn_app().await;
    let alice = app.alice().await;
    let bob = app.bob().await;
    let (store, dana) = store_with_dana(&app, "drv-who").await;
    let other = app.staffed_store("drv-other", "restaurant", "O").await;
    let order = ready_delivery(&app, &alice.token, &store).await;

    // The user named must be a driver of this store.
    for (who, user) in [
        ("the kitchen", store.kitchen.id),
        ("the cashier", store.cashier.id),
        ("the customer", alice.id),
        ("another store's driver", other.driver.id),
        ("nobody", 999_999),
    ] {
        let refused = app.assign_driver(&store.owner.token, &order, user).await;
        assert_eq!(refused.status, 422, "{who}: {}", refused.body);
        refused.expect_problem(422, "not_a_driver");
    }

    // Wrong roles: 403, whoever they name.
    for (who, token) in [
        ("the customer", &alice.token),
        ("the kitchen", &store.kitchen.token),
        ("a driver (self-assignment off)", &dana.token),
    ] {
        let refused = app.assign_driver(token, &order, dana.id).await;
        assert_eq!(refused.status, 403, "{who}: {}", refused.body);
        let refused = unassign(&app, token, &order).await;
        assert_eq!(refused.status, 403, "{who}: {}", refused.body);
    }
    // Other stores and other customers: it does not exist.
    for (who, token) in [
        ("another store's owner", &other.owner.token),
        ("another store's driver", &other.driver.token),
        ("another customer", &bob.token),
    ] {
        let refused = app.assign_driver(token, &order, dana.id).await;
        assert_eq!(refused.status, 404, "{who}: {}", refused.body);
        let refused = unassign(&app, token, &order).await;
        assert_eq!(refused.status, 404, "{who}: {}", refused.body);
    }
    let unchanged = app.order(&store.owner.token, id(&order)).await;
    assert_eq!(version(&unchanged), version(&order), "nothing was written");

    // The counter: cashier, manager, owner. The same driver again writes
    // nothing; a stale version is a conflict.
    let assigned = app
        .assign_driver(&store.cashier.token, &order, dana.id)
        .await
        .expect(200);
    let again = app
        .assign_driver(&store.manager.token, &assigned, dana.id)
        .await
        .expect(200);
    assert_eq!(version(&again), version(&assigned));
    let stale = app
        .assign_driver(&store.owner.token, &order, store.driver.id)
        .await;
    assert_eq!(
        stale.expect_problem(409, "version_conflict")["current_version"],
        version(&assigned)
    );
    let moved = app
        .assign_driver(&store.owner.token, &assigned, store.driver.id)
        .await
        .expect(200);
    assert_eq!(moved["driver"]["id"], store.driver.id);
    let none = unassign(&app, &store.manager.token, &moved)
        .await
        .expect(200);
    assert_eq!(none["driver"], Value::Null);

    // Only a delivery has a driver.
    let pickup = app
        .place_order(&alice.token, &store.slug, &[(store.product_ids()[0], 1)])
        .await;
    app.assign_driver(&store.cashier.token, &pickup, dana.id)
        .await
        .expect_problem(409, "not_a_delivery");

    // Every change is in the history, the status unchanged.
    let history = app.history(&store.owner.token, id(&order)).await;
    let assignments: Vec<(&str, &str)> = history
        .iter()
        .filter_map(|entry| {
            Some((
                entry["assignment"].as_str()?,
                entry["actor"]["role"].as_str()?,
            ))
        })
        .collect();
    assert_eq!(
        assignments,
        [
            ("assigned", "cashier"),
            ("assigned", "owner"),
            ("unassigned", "manager")
        ]
    );
    assert!(
        history
            .iter()
            .filter(|entry| entry.get("assignment").is_some())
            .all(|entry| entry["from"] == entry["to"]),
        "{history:?}"
    );
}

#[tokio::test]
async fn the_customer_and_a_guest_see_the_first_name_live_and_staff_the_whole_name() {
    let app = spawn_app().await;
    let alice = app.alice().await;
    let (store, dana) = store_with_dana(&app, "drv-live").await;
    let order = ready_delivery(&app, &alice.token, &store).await;
    let token = order["tracking_token"].as_str().expect("a tracking token");
    let mut watchers = app
        .order_watchers(&order, &store.slug, &alice.token, &store.owner.token)
        .await;

    let assigned = app
        .assign_driver(&store.cashier.token, &order, dana.id)
        .await
        .expect(200);
    let unassigned = unassign(&app, &store.cashier.token, &assigned)
        .await
        .expect(200);
    for (who, stream) in &mut watchers {
        let first = stream.next_event().await.expect("the assignment");
        assert_eq!(first.event.as_deref(), Some("driver_assigned"), "{who}");
        let text = first.data.clone().unwrap_or_default();
        let first = first.json();
        assert_eq!(
            first["assignment"],
            json!({"driver": {"name": "Dana"}}),
            "{who}: {first}"
        );
        assert_eq!(first["order_version"], version(&assigned), "{who}");
        assert!(!text.contains("Dana Driver"), "{who}: {text}");
        let second = stream.next_event().await.expect("the unassignment");
        assert_eq!(second.event.as_deref(), Some("driver_unassigned"), "{who}");
        let second = second.json();
        assert_eq!(second["assignment"], json!({"driver": null}), "{who}");
        assert_eq!(second["order_version"], version(&unassigned), "{who}");
    }

    let assigned = app
        .assign_driver(&store.cashier.token, &unassigned, dana.id)
        .await
        .expect(200);
    // The customer: the first name; the staff: the whole name.
    let seen = app.order(&alice.token, id(&order)).await;
    assert_eq!(seen["driver"], json!({"id": dana.id, "name": "Dana"}));
    let seen = app.order(&store.owner.token, id(&order)).await;
    assert_eq!(seen["driver"]["name"], "Dana Driver");
    // A guest: the first name, no id.
    let tracked = app.get(&format!("/track/{token}"), ANON).await.expect(200);
    assert_eq!(tracked["driver"], json!({"name": "Dana"}));
    assert_eq!(tracked["version"], assigned["version"]);
    assert!(!tracked.to_string().contains("Dana Driver"), "{tracked}");
    // The customer's page says who brings it.
    let (status, html) = page(&app, &alice.token, &format!("/orders/{}", id(&order))).await;
    assert_eq!(status, 200);
    assert!(html.contains("data-driver-name>Dana<"), "{html}");
    assert!(!html.contains("Dana Driver"));
}

#[tokio::test]
async fn the_assigned_driver_takes_the_cash_and_nobody_else_on_the_road_does() {
    let app = spawn_app().await;
    let alice = app.alice().await;
    let (store, dana) = store_with_dana(&app, "drv-cash").await;
    let order = ready_delivery(&app, &alice.token, &store).await;
    assert_eq!(order["payment"]["method"], "cash");
    mark_paid(&app, &dana.token, &order)
        .await
        .expect_problem(403, "forbidden");
    let assigned = app
        .assign_driver(&store.cashier.token, &order, dana.id)
        .await
        .expect(200);
    mark_paid(&app, &store.driver.token, &assigned)
        .await
        .expect_problem(403, "forbidden");
    let out = app
        .advance(&dana.token, &assigned, "out_for_delivery")
        .await;
    let cash = mark_paid(&app, &dana.token, &out).await.expect(200);
    assert_eq!(cash["payment"]["status"], "paid");
    let history = app.history(&store.owner.token, id(&order)).await;
    let last = history.last().expect("an entry");
    assert_eq!(last["payment"]["status"], "paid");
    assert_eq!(last["actor"]["id"], dana.id);
}

#[tokio::test]
async fn where_the_store_allows_it_drivers_take_unassigned_ready_deliveries_themselves() {
    let app = spawn_app().await;
    let alice = app.alice().await;
    let (store, dana) = store_with_dana(&app, "drv-self").await;
    let waiting = app
        .place_delivery(
            &alice.token,
            &store.slug,
            &[(store.product_ids()[0], 1)],
            "1 Oak",
        )
        .await;
    let ready = ready_delivery(&app, &alice.token, &store).await;

    // Off by default: a driver sees nothing unassigned and takes nothing.
    let shown = app.store_detail(&store.slug).await;
    assert_eq!(shown["driver_self_assign"], false, "{shown}");
    assert!(app.store_orders(&dana.token, &store.slug).await.is_empty());
    app.assign_driver(&dana.token, &ready, dana.id)
        .await
        .expect_problem(403, "forbidden");

    // Owners switch it on (managers may not).
    let path = format!("/stores/{}", store.slug);
    app.patch(
        &path,
        &store.manager.token,
        &json!({"driver_self_assign": true}),
    )
    .await
    .expect_problem(403, "forbidden");
    let updated = app
        .patch(
            &path,
            &store.owner.token,
            &json!({"driver_self_assign": true}),
        )
        .await
        .expect(200);
    assert_eq!(updated["driver_self_assign"], true);

    // Unassigned ready deliveries show in a driver's list; not the ones
    // still in the kitchen.
    assert_eq!(
        ids(&app.store_orders(&dana.token, &store.slug).await),
        [id(&ready)]
    );
    // A driver takes one for themselves only.
    app.assign_driver(&dana.token, &ready, store.driver.id)
        .await
        .expect_problem(403, "forbidden");
    let taken = app
        .assign_driver(&dana.token, &ready, dana.id)
        .await
        .expect(200);
    assert_eq!(taken["driver"]["id"], dana.id);
    app.assign_driver(&store.driver.token, &taken, store.driver.id)
        .await
        .expect_problem(409, "already_assigned");
    unassign(&app, &store.driver.token, &taken)
        .await
        .expect_problem(403, "forbidden");
    assert!(
        app.store_orders(&store.driver.token, &store.slug)
            .await
            .is_empty(),
        "taken: no longer there for the others"
    );
    // And gives it back.
    let back = unassign(&app, &dana.token, &taken).await.expect(200);
    assert_eq!(back["driver"], Value::Null);
    assert_eq!(
        ids(&app.store_orders(&store.driver.token, &store.slug).await),
        [id(&ready)]
    );
    assert_ne!(id(&waiting), id(&ready));
}
