//! `Idempotency-Key` on every change (not only placing an order): a change
//! sent again with its key — a queued action replayed twice — is answered
//! with the first response and changes nothing (no history entry, no
//! event); the key with another request is 422; keys belong to a session;
//! a stale expected version is a 409 carrying the order as it is now.

use ordertrack_domain::OrderId;
use ordertrack_store::{EventFilter, StoredEvent};
use reqwest::Method;
use serde_json::{Value, json};

use crate::support::*;

/// The stored events of one order.
async fn order_events(app: &TestApp, order: i64) -> Vec<StoredEvent> {
    app.store
        .events_after(EventFilter::Order(OrderId::new(order)), 0, 1000)
        .await
        .expect("events")
}

/// Sends a JSON change with an idempotency key.
async fn keyed(
    app: &TestApp, method: Method, path: &str, token: &str, key: &str, body: &Value,
) -> Resp {
    app.send(
        app.request(method, path, token)
            .header("Idempotency-Key", key)
            .json(body),
    )
    .await
}

/// What an order has been through: its history and events, counted.
async fn trail(app: &TestApp, token: &str, order: i64) -> (usize, usize) {
    (
        app.history(token, order).await.len(),
        order_events(app, order).await.len(),
    )
}

#[tokio::test]
async fn a_change_sent_twice_with_its_key_is_applied_once() {
    let app = spawn_app().await;
    let alice = app.alice().await;
    let kitchen = app.login("kitchen@demo.test").await;
    let cashier = app.login("cashier@demo.test").await;
    let order = app.place_simple(&alice.token, RESTAURANT).await;
    let order = app.advance(&cashier, &order, "confirmed").await;
    let order_id = id(&order);

    // An item tap, then a bump: each sent twice, as a replay after a lost
    // answer would.
    let item = item_ids(&order)[0];
    let item_path = format!("/orders/{order_id}/items/{item}");
    let tap = json!({"status": "preparing", "expected_version": version(&order)});
    let first = keyed(&app, Method::PATCH, &item_path, &kitchen, "tap-1", &tap).await;
    let first_body = first.expect(200);
    let after_first = trail(&app, &kitchen, order_id).await;
    let again = keyed(&app, Method::PATCH, &item_path, &kitchen, "tap-1", &tap).await;
    assert_eq!(again.header("idempotent-replayed"), Some("true"));
    assert_eq!(again.expect(200), first_body, "the first answer, replayed");
    assert_eq!(trail(&app, &kitchen, order_id).await, after_first);

    let bump_path = format!("/orders/{order_id}/bump");
    let bump = json!({"expected_version": version(&first_body)});
    let bumped = keyed(&app, Method::POST, &bump_path, &kitchen, "bump-1", &bump)
        .await
        .expect(200);
    let after_bump = trail(&app, &kitchen, order_id).await;
    assert!(after_bump.1 > after_first.1, "the bump wrote events");
    for _ in 0..2 {
        let replay = keyed(&app, Method::POST, &bump_path, &kitchen, "bump-1", &bump).await;
        assert_eq!(replay.header("idempotent-replayed"), Some("true"));
        assert_eq!(replay.expect(200), bumped);
    }
    assert_eq!(
        trail(&app, &kitchen, order_id).await,
        after_bump,
        "replays add no history and no events"
    );
    assert_eq!(
        version(&app.order(&kitchen, order_id).await),
        version(&bumped)
    );

    // A refused change is replayed as refused, too: the same 409.
    let stale = keyed(&app, Method::POST, &bump_path, &kitchen, "bump-2", &bump).await;
    stale.expect_problem(409, "version_conflict");
    let stale_again = keyed(&app, Method::POST, &bump_path, &kitchen, "bump-2", &bump).await;
    assert_eq!(stale_again.header("idempotent-replayed"), Some("true"));
    stale_again.expect_problem(409, "version_conflict");
}

#[tokio::test]
async fn a_page_form_replayed_with_its_key_is_applied_once() {
    let app = spawn_app().await;
    let alice = app.alice().await;
    let cashier = app.login("cashier@demo.test").await;
    let order = app.place_simple(&alice.token, RESTAURANT).await;
    let order_id = id(&order);
    let csrf = app.session_csrf(&cashier).await;
    let path = format!("/dashboard/{RESTAURANT}/orders/{order_id}/transition");
    let post = || async {
        reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .expect("a client")
            .post(app.page_url(&path))
            .header(
                reqwest::header::COOKIE,
                format!("ordertrack_session={cashier}"),
            )
            .header("Idempotency-Key", "form-1")
            .form(&[
                ("csrf", csrf.as_str()),
                ("to", "confirmed"),
                ("expected_version", "1"),
            ])
            .send()
            .await
            .expect("a form post")
    };
    let first = post().await;
    assert_eq!(first.status(), 303);
    let location = first.headers()["location"].clone();
    assert!(!location.to_str().unwrap_or("").contains("conflict"));
    let before = trail(&app, &cashier, order_id).await;
    let again = post().await;
    assert_eq!(again.status(), 303);
    assert_eq!(again.headers()["location"], location, "the same redirect");
    assert_eq!(again.headers()["idempotent-replayed"], "true");
    assert_eq!(trail(&app, &cashier, order_id).await, before);
    assert_eq!(version(&app.order(&cashier, order_id).await), 2);
}

#[tokio::test]
async fn a_key_with_another_request_is_refused_and_keys_belong_to_a_session() {
    let app = spawn_app().await;
    let alice = app.alice().await;
    let cashier = app.login("cashier@demo.test").await;
    let manager = app.login("manager@demo.test").await;
    let order = app.place_simple(&alice.token, RESTAURANT).await;
    let path = format!("/orders/{}/transitions", id(&order));
    let confirm = json!({"to": "confirmed", "expected_version": 1});
    keyed(&app, Method::POST, &path, &cashier, "k", &confirm)
        .await
        .expect(200);
    let other = json!({"to": "cancelled", "expected_version": 2});
    keyed(&app, Method::POST, &path, &cashier, "k", &other)
        .await
        .expect_problem(422, "idempotency_key_reused");
    // The manager's "k" is their own: it runs (and meets the moved order).
    keyed(&app, Method::POST, &path, &manager, "k", &confirm)
        .await
        .expect_problem(409, "version_conflict");
    keyed(&app, Method::POST, &path, &cashier, "", &confirm)
        .await
        .expect_problem(422, "invalid_idempotency_key");
    assert_eq!(version(&app.order(&cashier, id(&order)).await), 2);
}

#[tokio::test]
async fn a_stale_version_is_a_conflict_carrying_the_order_as_it_is_now() {
    let app = spawn_app().await;
    let alice = app.alice().await;
    let cashier = app.login("cashier@demo.test").await;
    let kitchen = app.login("kitchen@demo.test").await;
    let order = app.place_simple(&alice.token, RESTAURANT).await;
    let moved = app.advance(&cashier, &order, "confirmed").await;
    let order_id = id(&order);

    let transition = app
        .post(
            &format!("/orders/{order_id}/transitions"),
            &cashier,
            &json!({"to": "cancelled", "expected_version": 1}),
        )
        .await;
    let problem = transition.expect_problem(409, "version_conflict");
    assert_eq!(problem["current_version"], 2);
    assert_eq!(problem["order"]["status"], "confirmed");
    assert_eq!(problem["order"]["version"], version(&moved));

    let item = item_ids(&order)[0];
    let tap = app
        .patch(
            &format!("/orders/{order_id}/items/{item}"),
            &kitchen,
            &json!({"status": "preparing", "expected_version": 1}),
        )
        .await;
    let problem = tap.expect_problem(409, "version_conflict");
    assert_eq!(problem["order"]["version"], 2);
    assert_eq!(problem["order"]["items"][0]["status"], "queued");

    let recall = app
        .post_empty(
            &format!("/orders/{order_id}/recall?expected_version=1"),
            &kitchen,
        )
        .await;
    assert_eq!(recall.status, 409, "{}", recall.text);
    assert_eq!(
        trail(&app, &cashier, order_id).await.0,
        2,
        "placed and confirmed, nothing else"
    );
}
