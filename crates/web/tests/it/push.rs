//! Web Push (issue 16): a customer's browser subscribes — for their
//! account, or for one order through its tracking link — and a push
//! service (a real HTTP server in the test) gets one request per state the
//! customer is told of, each with a VAPID token and an encrypted payload
//! that `py_vapid` and `http_ece` (not the server's code) verify and
//! decrypt. A service answering 404 or 410 loses the subscription; opting
//! out stops the pushes; bad subscriptions are refused with 422.

use std::time::Duration;

use ordertrack_domain::UserId;
use ordertrack_store::PushOwner;
use reqwest::Method;
use serde_json::{Value, json};

use crate::support::*;

const SECOND: Duration = Duration::from_secs(1);

/// `POST /push/subscriptions` with `body` as the holder of `token`.
async fn subscribe(app: &TestApp, token: &str, body: &Value) -> Resp {
    app.post("/push/subscriptions", token, body).await
}

/// `DELETE /push/subscriptions` with `body` as the holder of `token`.
async fn unsubscribe(app: &TestApp, token: &str, body: &Value) -> Resp {
    app.send(
        app.request(Method::DELETE, "/push/subscriptions", token)
            .json(body),
    )
    .await
}

/// The endpoints of a customer's subscriptions, as stored.
async fn endpoints_of(app: &TestApp, user: &User) -> Vec<String> {
    app.store
        .push_subscriptions(PushOwner::User(UserId::new(user.id)))
        .await
        .expect("read the subscriptions")
        .into_iter()
        .map(|s| s.endpoint)
        .collect()
}

/// Places a pickup order and moves it through confirmed and preparing to
/// ready (its items made ready); the order.
async fn order_to_ready(app: &TestApp, store: &StaffedStore, customer: &User) -> Value {
    let order = app
        .place_order(&customer.token, &store.slug, &[(store.product_ids()[0], 1)])
        .await;
    let order = app.advance(&store.owner.token, &order, "confirmed").await;
    let order = app.advance(&store.owner.token, &order, "preparing").await;
    let order = app.all_items_ready(&store.kitchen.token, order).await;
    assert_eq!(status(&order), "ready", "{order}");
    order
}

#[tokio::test]
async fn each_chosen_state_reaches_the_browser_encrypted_and_signed() {
    if !push_verifier_available() {
        return;
    }
    let app = spawn_app().await;
    let store = app.staffed_store("push-diner", "restaurant", "P").await;
    let public_key = app.get("/push/public-key", "").await.expect(200)["public_key"]
        .as_str()
        .expect("a public key")
        .to_owned();
    assert_eq!(public_key, VAPID.public_key());

    // Alice subscribes her account; her flatmate follows one order's
    // tracking link in another browser; Bob subscribes too.
    let alice = app.alice().await;
    let bob = app.bob().await;
    let account_service = Receiver::start().await;
    let link_service = Receiver::start().await;
    let bobs_service = Receiver::start().await;
    let account = BrowserSubscription::new(&account_service.url);
    let saved = subscribe(&app, &alice.token, &account.body())
        .await
        .expect(201);
    assert_eq!(saved["scope"], "account");
    let bobs = BrowserSubscription::new(&bobs_service.url);
    subscribe(&app, &bob.token, &bobs.body()).await.expect(201);

    let order = app
        .place_order(&alice.token, &store.slug, &[(store.product_ids()[0], 1)])
        .await;
    let tracking = order["tracking_token"].as_str().expect("a tracking token");
    let link = BrowserSubscription::new(&link_service.url);
    let mut body = link.body();
    body["tracking_token"] = json!(tracking);
    let saved = subscribe(&app, "", &body).await.expect(201);
    assert_eq!(saved["scope"], "order");

    let order = app.advance(&store.owner.token, &order, "confirmed").await;
    let order = app.advance(&store.owner.token, &order, "preparing").await;
    let order = app.all_items_ready(&store.kitchen.token, order).await;
    assert_eq!(status(&order), "ready");
    app.advance(&store.cashier.token, &order, "completed").await;

    // Confirmed and ready notify; placing, preparing and completing do not.
    let number = order["number"].as_str().expect("a number");
    for (service, browser, url) in [
        (
            &account_service,
            &account,
            format!("/orders/{}", id(&order)),
        ),
        (&link_service, &link, format!("/track/{tracking}")),
    ] {
        let received = service.wait_for(2, 10 * SECOND).await;
        service.assert_stays_at(2, SECOND).await;
        let payloads: Vec<Value> = verify_pushes(browser, &public_key, &received)
            .into_iter()
            .map(|checked| checked.unwrap_or_else(|why| panic!("{why}")))
            .collect();
        let statuses: Vec<(&Value, &Value)> = payloads
            .iter()
            .map(|p| (&p["status"], &p["status_label"]))
            .collect();
        assert_eq!(
            statuses,
            [
                (&json!("confirmed"), &json!("Confirmed")),
                (&json!("ready"), &json!("Ready"))
            ]
        );
        for payload in &payloads {
            assert_eq!(payload["order_id"], json!(id(&order)));
            assert_eq!(payload["number"], json!(number));
            assert_eq!(payload["store"], json!("Store push-diner"), "{payload}");
            assert_eq!(payload["url"], json!(url));
        }
        // Another browser's keys do not open it.
        assert!(verify_pushes(&bobs, &public_key, &received[..1])[0].is_err());
    }
    // Alice's order is nothing of Bob's.
    bobs_service
        .assert_stays_at(0, Duration::from_millis(200))
        .await;
}

#[tokio::test]
async fn gone_subscriptions_are_removed_failures_retried_and_opting_out_stops_pushes() {
    let app = spawn_app().await;
    let store = app.staffed_store("push-grill", "restaurant", "G").await;
    let alice = app.alice().await;
    let gone = Receiver::start().await;
    gone.answer_always(410);
    let missing = Receiver::start().await;
    missing.answer_always(404);
    let flaky = Receiver::start().await;
    flaky.answer_next(&[500]);
    for service in [&gone, &missing, &flaky] {
        subscribe(
            &app,
            &alice.token,
            &BrowserSubscription::new(&service.url).body(),
        )
        .await
        .expect(201);
    }
    // Subscribing the same browser again replaces it (new keys), no twin.
    let again = BrowserSubscription::new(&flaky.url);
    subscribe(&app, &alice.token, &again.body())
        .await
        .expect(201);
    assert_eq!(endpoints_of(&app, &alice).await.len(), 3);

    let order = order_to_ready(&app, &store, &alice).await;
    // 410 and 404: one request each, and the subscription is gone.
    gone.wait_for(1, 10 * SECOND).await;
    missing.wait_for(1, 10 * SECOND).await;
    // The 500 is retried: confirmed twice, then ready.
    let received = flaky.wait_for(3, 10 * SECOND).await;
    assert_eq!(
        received.iter().map(|r| r.answered).collect::<Vec<_>>(),
        [500, 200, 200]
    );
    gone.assert_stays_at(1, SECOND).await;
    missing.assert_stays_at(1, Duration::ZERO).await;
    assert_eq!(
        endpoints_of(&app, &alice).await,
        std::slice::from_ref(&flaky.url)
    );

    // Opting out: nothing more, and opting out again is no error.
    unsubscribe(&app, &alice.token, &json!({"endpoint": flaky.url}))
        .await
        .expect(204);
    unsubscribe(&app, &alice.token, &json!({"endpoint": flaky.url}))
        .await
        .expect(204);
    assert!(endpoints_of(&app, &alice).await.is_empty());
    app.advance(&store.cashier.token, &order, "completed").await;
    let next = app
        .place_order(&alice.token, &store.slug, &[(store.product_ids()[0], 1)])
        .await;
    app.advance(&store.owner.token, &next, "confirmed").await;
    flaky.assert_stays_at(3, SECOND).await;
    gone.assert_stays_at(1, Duration::ZERO).await;
}

#[tokio::test]
async fn bad_subscriptions_are_refused() {
    let app = spawn_app().await;
    let alice = app.alice().await;
    let service = Receiver::start().await;
    let good = BrowserSubscription::new(&service.url).body();

    // Without a session or a tracking link: whose would it be?
    subscribe(&app, "", &good)
        .await
        .expect_problem(401, "unauthenticated");
    unsubscribe(&app, "", &json!({"endpoint": service.url}))
        .await
        .expect_problem(401, "unauthenticated");
    // A tracking link that names no order.
    let mut unknown = good.clone();
    unknown["tracking_token"] = json!("0123456789abcdef0123456789abcdef");
    subscribe(&app, "", &unknown).await.expect(404);

    let with = |path: &str, value: Value| {
        let mut body = good.clone();
        let mut target = &mut body;
        let parts: Vec<&str> = path.split('.').collect();
        for part in &parts[..parts.len() - 1] {
            target = &mut target[*part];
        }
        target[parts[parts.len() - 1]] = value;
        body
    };
    for (what, body, code) in [
        ("no keys", json!({"endpoint": service.url}), "invalid_body"),
        (
            "an unknown field",
            with("expirationTime", json!(null)),
            "invalid_body",
        ),
        (
            "a number as endpoint",
            with("endpoint", json!(7)),
            "invalid_body",
        ),
        (
            "not a URL",
            with("endpoint", json!("push service")),
            "invalid_push_subscription",
        ),
        (
            "not http(s)",
            with("endpoint", json!("ftp://127.0.0.1/push")),
            "invalid_push_subscription",
        ),
        (
            "credentials in the URL",
            with("endpoint", json!("http://user:pw@127.0.0.1:9/push")),
            "invalid_push_subscription",
        ),
        (
            "an endpoint too long",
            with(
                "endpoint",
                json!(format!("{}?{}", service.url, "a".repeat(2100))),
            ),
            "invalid_push_subscription",
        ),
        (
            "p256dh not base64url",
            with("keys.p256dh", json!("not a key!")),
            "invalid_push_subscription",
        ),
        (
            "p256dh not a curve point",
            with("keys.p256dh", json!("B".repeat(87))),
            "invalid_push_subscription",
        ),
        (
            "an auth secret of 15 bytes",
            with("keys.auth", json!("AAAAAAAAAAAAAAAAAAAA")),
            "invalid_push_subscription",
        ),
    ] {
        let response = subscribe(&app, &alice.token, &body).await;
        assert_eq!(response.status, 422, "{what}: {}", response.text);
        assert_eq!(response.problem(), code, "{what}");
    }
    assert!(endpoints_of(&app, &alice).await.is_empty());
    subscribe(&app, &alice.token, &good).await.expect(201);
}
