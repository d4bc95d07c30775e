//! Webhooks (issue 16): an owner registers endpoints for the store's order
//! events; deliveries follow Standard Webhooks — checked here by the
//! `standardwebhooks` Python package, not by the server's own code — come
//! once per successful delivery, in event order per endpoint, are retried
//! on failure (also across a restart), stop at 410, and never go to a
//! private address unless the operator allows it.

use std::time::Duration;

use ordertrack_store::NewWebhook;
use serde_json::{Value, json};

use crate::support::*;

const SECOND: Duration = Duration::from_secs(1);

/// `POST /stores/{slug}/webhooks` for `url` and `events` (asserts 201).
async fn add_webhook(app: &TestApp, store: &StaffedStore, url: &str, events: Value) -> Value {
    let created = app
        .post(
            &format!("/stores/{}/webhooks", store.slug),
            &store.owner.token,
            &json!({"url": url, "events": events}),
        )
        .await
        .expect(201);
    assert!(
        created["secret"]
            .as_str()
            .is_some_and(|s| s.starts_with("whsec_")),
        "{created}"
    );
    created
}

/// `GET /stores/{slug}/webhooks` as the owner.
async fn listed(app: &TestApp, store: &StaffedStore) -> Value {
    app.get(
        &format!("/stores/{}/webhooks", store.slug),
        &store.owner.token,
    )
    .await
    .expect(200)
}

fn secret(webhook: &Value) -> &str {
    webhook["secret"].as_str().expect("a secret")
}

/// The endpoint's delivery log.
async fn deliveries(app: &TestApp, store: &StaffedStore, webhook: &Value) -> Vec<Value> {
    app.get(
        &format!("/stores/{}/webhooks/{}/deliveries", store.slug, id(webhook)),
        &store.owner.token,
    )
    .await
    .expect(200)["items"]
        .as_array()
        .expect("items")
        .clone()
}

/// Waits until the endpoint's log has a delivery matching `wanted`
/// (described as `what`); that delivery.
async fn wait_for_delivery(
    app: &TestApp, store: &StaffedStore, webhook: &Value, what: &str,
    wanted: impl Fn(&Value) -> bool,
) -> Value {
    let deadline = std::time::Instant::now() + 15 * SECOND;
    loop {
        let log = deliveries(app, store, webhook).await;
        if let Some(found) = log.iter().find(|d| wanted(d)) {
            return found.clone();
        }
        assert!(
            std::time::Instant::now() < deadline,
            "no delivery {what}: {log:#?}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Waits until the endpoint's delivery of `event` is in `state`; the delivery.
async fn delivery_in(
    app: &TestApp, store: &StaffedStore, webhook: &Value, event: i64, state: &str,
) -> Value {
    wait_for_delivery(app, store, webhook, &format!("of {event} {state}"), |d| {
        d["event_id"] == json!(event) && d["state"] == json!(state)
    })
    .await
}

/// A server guarded so, a staffed restaurant `slug` and a receiver; `None`
/// (the test skips, or under `CI=true` fails) without the verifier.
async fn hooked(slug: &str, guards: Guards) -> Option<(TestApp, StaffedStore, Receiver)> {
    if !verifier_available() {
        return None;
    }
    let app = spawn_app_guarded(guards).await;
    let store = app.staffed_store(slug, "restaurant", "H").await;
    Some((app, store, Receiver::start().await))
}

/// The event ids of what arrived, in arrival order.
fn arrival_ids(received: &[Received]) -> Vec<i64> {
    received
        .iter()
        .map(|r| r.id().parse().expect("a numeric webhook-id"))
        .collect()
}

#[tokio::test]
async fn every_event_arrives_signed_once_and_in_order() {
    let Some((app, store, everything)) = hooked("hooked-diner", Guards::default()).await else {
        return;
    };
    let status_only = Receiver::start().await;
    let all = add_webhook(&app, &store, &everything.url, json!(["*"])).await;
    let some = add_webhook(
        &app,
        &store,
        &status_only.url,
        json!(["order.status_changed"]),
    )
    .await;

    let alice = app.alice().await;
    let order = app
        .place_order(&alice.token, &store.slug, &[(store.product_ids()[0], 2)])
        .await;
    let order = app.advance(&store.owner.token, &order, "confirmed").await;
    let order = app.advance(&store.owner.token, &order, "preparing").await;
    app.post(
        &format!("/orders/{}/payment", id(&order)),
        &store.cashier.token,
        &json!({"status": "paid", "expected_version": version(&order)}),
    )
    .await
    .expect(200);

    let received = everything.wait_for(4, 10 * SECOND).await;
    everything.assert_stays_at(4, SECOND).await;
    let payloads = verified(secret(&all), &received);
    let types: Vec<&str> = payloads
        .iter()
        .map(|p| p["type"].as_str().unwrap_or(""))
        .collect();
    assert_eq!(
        types,
        [
            "order.created",
            "order.status_changed",
            "order.status_changed",
            "order.payment_changed"
        ]
    );
    // `webhook-id` is the event's position, the body's `data.id` too; in
    // order, each once.
    let ids = arrival_ids(&received);
    assert!(ids.windows(2).all(|w| w[0] < w[1]), "{ids:?}");
    for (payload, event) in payloads.iter().zip(&ids) {
        assert_eq!(payload["data"]["id"], json!(event));
        assert_eq!(payload["data"]["order_id"], json!(id(&order)));
        assert!(
            payload["timestamp"]
                .as_str()
                .is_some_and(|t| t.contains('T'))
        );
    }
    assert_eq!(payloads[2]["data"]["to"], json!("preparing"));
    assert_eq!(received[0].headers["content-type"], "application/json");
    // The other secret does not verify these.
    assert!(verify(secret(&some), &received[..1])[0].is_err());

    // The status-only endpoint got the two status changes, nothing else.
    let changes = status_only.wait_for(2, 10 * SECOND).await;
    status_only
        .assert_stays_at(2, Duration::from_millis(300))
        .await;
    let payloads = verified(secret(&some), &changes);
    assert!(payloads.iter().all(|p| p["type"] == "order.status_changed"));
    assert_eq!(arrival_ids(&changes), [ids[1], ids[2]]);

    // The log: each delivered at the first attempt with its answer.
    let log = deliveries(&app, &store, &all).await;
    assert_eq!(log.len(), 4, "{log:#?}");
    for entry in &log {
        assert_eq!(entry["state"], "delivered", "{entry}");
        assert_eq!(entry["attempt"], 1);
        assert_eq!(entry["http_status"], 200);
        assert!(entry["duration_ms"].as_i64().is_some());
        assert_eq!(entry["next_retry_at"], Value::Null);
    }
    assert_eq!(
        log[0]["event_type"], "order.payment_changed",
        "newest first"
    );

    // The list shows both endpoints, without their secrets.
    let listed = listed(&app, &store).await;
    assert_eq!(ids_of(&listed), [id(&all), id(&some)]);
    assert!(listed[0].get("secret").is_none(), "{listed}");
    assert_eq!(listed[1]["events"], json!(["order.status_changed"]));
}

fn ids_of(list: &Value) -> Vec<i64> {
    list.as_array().expect("a list").iter().map(id).collect()
}

#[tokio::test]
async fn failures_are_retried_in_order_and_given_up_after_the_schedule() {
    let guards = Guards {
        webhook_retries: Some(vec![Duration::from_millis(300); 2]),
        ..Guards::default()
    };
    let Some((app, store, receiver)) = hooked("flaky-diner", guards).await else {
        return;
    };
    let webhook = add_webhook(&app, &store, &receiver.url, json!(["*"])).await;
    // The first event: 500, 503, then 200. The second waits its turn.
    receiver.answer_next(&[500, 503]);
    let alice = app.alice().await;
    let order = app.place_simple(&alice.token, &store.slug).await;
    app.advance(&store.owner.token, &order, "confirmed").await;

    let received = receiver.wait_for(4, 10 * SECOND).await;
    receiver.assert_stays_at(4, SECOND).await;
    verified(secret(&webhook), &received);
    let ids = arrival_ids(&received);
    assert_eq!(ids, [ids[0], ids[0], ids[0], ids[0] + 1], "{received:#?}");
    let answered: Vec<u16> = received.iter().map(|r| r.answered).collect();
    assert_eq!(answered, [500, 503, 200, 200]);
    let first = delivery_in(&app, &store, &webhook, ids[0], "delivered").await;
    assert_eq!(
        (first["attempt"].clone(), first["http_status"].clone()),
        (json!(3), json!(200))
    );

    // Always failing: three attempts (the first and two retries), then
    // given up — and the next event goes on.
    receiver.answer_next(&[500, 500, 500]);
    let second = app.place_simple(&alice.token, &store.slug).await;
    let received = receiver.wait_for(7, 10 * SECOND).await;
    let created = arrival_ids(&received)[4];
    let failed = delivery_in(&app, &store, &webhook, created, "failed").await;
    assert_eq!(failed["attempt"], 3);
    assert_eq!(failed["http_status"], 500);
    assert_eq!(arrival_ids(&received)[4..7], [created; 3]);
    // Once given up, the next one came (the order's confirmation).
    app.advance(&store.owner.token, &second, "confirmed").await;
    let received = receiver.wait_for(8, 10 * SECOND).await;
    assert_eq!(arrival_ids(&received)[7], created + 1);

    // The owner sends the given-up one again: delivered, same id.
    app.post_empty(
        &format!(
            "/stores/{}/webhooks/{}/deliveries/{}/retry",
            store.slug,
            id(&webhook),
            id(&failed)
        ),
        &store.owner.token,
    )
    .await
    .expect(202);
    let received = receiver.wait_for(9, 10 * SECOND).await;
    assert_eq!(arrival_ids(&received)[8], created);
    verified(secret(&webhook), &received);
    let retried = delivery_in(&app, &store, &webhook, created, "delivered").await;
    assert_eq!(retried["attempt"], 4);
}

#[tokio::test]
async fn an_endpoint_too_slow_to_answer_gets_the_event_again() {
    let guards = Guards {
        webhook_retries: Some(vec![Duration::from_millis(200)]),
        webhook_timeout: Some(Duration::from_millis(500)),
        ..Guards::default()
    };
    let Some((app, store, receiver)) = hooked("slow-diner", guards).await else {
        return;
    };
    let webhook = add_webhook(&app, &store, &receiver.url, json!(["*"])).await;
    receiver.answer_late(1, 3 * SECOND);
    let alice = app.alice().await;
    app.place_simple(&alice.token, &store.slug).await;
    // The answer would come too late: the attempt fails at the timeout,
    // and the second attempt is delivered.
    let received = receiver.wait_for(2, 10 * SECOND).await;
    assert_eq!(received[0].id(), received[1].id());
    let event = arrival_ids(&received)[0];
    let delivered = delivery_in(&app, &store, &webhook, event, "delivered").await;
    assert_eq!(delivered["attempt"], 2);
    verified(secret(&webhook), &received);
}

#[tokio::test]
async fn a_gone_endpoint_is_turned_off() {
    let app = spawn_app().await;
    let store = app.staffed_store("gone-diner", "restaurant", "G").await;
    let receiver = Receiver::start().await;
    let webhook = add_webhook(&app, &store, &receiver.url, json!(["*"])).await;
    receiver.answer_always(410);
    let alice = app.alice().await;
    let order = app.place_simple(&alice.token, &store.slug).await;
    let received = receiver.wait_for(1, 10 * SECOND).await;
    let event = arrival_ids(&received)[0];
    let failed = delivery_in(&app, &store, &webhook, event, "failed").await;
    assert_eq!(
        (failed["attempt"].clone(), failed["http_status"].clone()),
        (json!(1), json!(410))
    );
    let listed = listed(&app, &store).await;
    assert_eq!(listed[0]["enabled"], false, "{listed}");
    assert!(
        listed[0]["disabled_reason"]
            .as_str()
            .is_some_and(|r| r.contains("410"))
    );
    // Nothing more goes to it.
    app.advance(&store.owner.token, &order, "confirmed").await;
    receiver.assert_stays_at(1, SECOND).await;
}

#[tokio::test]
async fn a_restart_during_the_backoff_still_delivers() {
    let guards = Guards {
        webhook_retries: Some(vec![2 * SECOND]),
        ..Guards::default()
    };
    let Some((mut app, store, receiver)) = hooked("restart-diner", guards).await else {
        return;
    };
    let webhook = add_webhook(&app, &store, &receiver.url, json!(["order.created"])).await;
    receiver.answer_next(&[500]);
    let alice = app.alice().await;
    app.place_simple(&alice.token, &store.slug).await;
    let first = receiver.wait_for(1, 10 * SECOND).await;
    // The retry is 2 s away: stop the server now, start it again over the
    // same database.
    app.stop().await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(
        receiver.received().len(),
        1,
        "a stopped server sends nothing"
    );
    app.restart().await;
    let received = receiver.wait_for(2, 15 * SECOND).await;
    receiver.assert_stays_at(2, SECOND).await;
    assert_eq!(received[0].id(), first[0].id());
    assert_eq!(
        received[1].id(),
        first[0].id(),
        "the same event, the same id"
    );
    assert_eq!(received[1].answered, 200);
    assert_eq!(received[0].body, received[1].body);
    verified(secret(&webhook), &received);
    let event = arrival_ids(&received)[0];
    let delivered = delivery_in(&app, &store, &webhook, event, "delivered").await;
    assert_eq!(delivered["attempt"], 2);
}

#[tokio::test]
async fn private_addresses_are_refused_without_the_operators_flag() {
    let app = spawn_app_guarded(Guards {
        refuse_private_webhooks: true,
        ..Guards::default()
    })
    .await;
    let store = app.staffed_store("private-diner", "restaurant", "P").await;
    let path = format!("/stores/{}/webhooks", store.slug);
    // Refused before anything is sent: none of these is ever contacted.
    for url in [
        "http://127.0.0.1:9/hook",
        "http://localhost:9/hook",
        "http://10.0.0.1/hook",
        "http://192.168.1.20/hook",
        "http://172.16.0.1/hook",
        "http://169.254.169.254/latest/meta-data",
        "http://[fd00:ec2::254]/latest",
        "http://[::1]/hook",
        "http://0.0.0.0/hook",
        "https://[::ffff:127.0.0.1]/hook",
    ] {
        app.post(
            &path,
            &store.owner.token,
            &json!({"url": url, "events": ["*"]}),
        )
        .await
        .expect_problem(422, "webhook_address_refused");
    }
    for url in ["ftp://example.com/hook", "not a url", "http:///nohost"] {
        app.post(
            &path,
            &store.owner.token,
            &json!({"url": url, "events": ["*"]}),
        )
        .await
        .expect_problem(422, "invalid_webhook_url");
    }
    let listed = app.get(&path, &store.owner.token).await.expect(200);
    assert_eq!(listed, json!([]));

    // An endpoint that got in by another way (say, the flag was on when it
    // was added) is checked again on every delivery: nothing reaches it.
    let receiver = Receiver::start().await;
    let record = app.store_record(&store.slug).await;
    let planted = app
        .store
        .create_webhook(NewWebhook {
            store_id: record.id,
            url: receiver.url.clone(),
            events: vec!["*".into()],
            enabled: true,
            secret: "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw".into(),
            created_at: ordertrack_app::now(),
        })
        .await
        .expect("an endpoint");
    let alice = app.alice().await;
    app.place_simple(&alice.token, &store.slug).await;
    let planted = json!({"id": planted.id.get()});
    let refused = wait_for_delivery(&app, &store, &planted, "attempted", |d| {
        d["attempt"].as_i64() >= Some(1)
    })
    .await;
    assert_eq!(refused["http_status"], Value::Null, "{refused}");
    assert!(
        refused["error"]
            .as_str()
            .is_some_and(|e| e.contains("not a public address")),
        "{refused}"
    );
    assert!(receiver.received().is_empty());
}

#[tokio::test]
async fn only_the_stores_owners_manage_its_webhooks() {
    let app = spawn_app().await;
    let store = app.staffed_store("owned-diner", "restaurant", "O").await;
    let other = app.staffed_store("other-diner", "restaurant", "Q").await;
    let alice = app.alice().await;
    let admin = app.login("admin@demo.test").await;
    let receiver = Receiver::start().await;
    let webhook = add_webhook(&app, &store, &receiver.url, json!(["*"])).await;
    let path = format!("/stores/{}/webhooks", store.slug);
    let body = json!({"url": receiver.url, "events": ["*"]});
    for (token, status) in [
        (&store.manager.token, 403),
        (&store.cashier.token, 403),
        (&store.kitchen.token, 403),
        (&store.driver.token, 403),
        (&other.owner.token, 404),
        (&alice.token, 404),
    ] {
        let code = if status == 403 {
            "forbidden"
        } else {
            "not_found"
        };
        app.get(&path, token).await.expect_problem(status, code);
        app.post(&path, token, &body)
            .await
            .expect_problem(status, code);
        for sub in ["deliveries"] {
            app.get(&format!("{path}/{}/{sub}", id(&webhook)), token)
                .await
                .expect_problem(status, code);
        }
        app.post_empty(&format!("{path}/{}/rotate-secret", id(&webhook)), token)
            .await
            .expect_problem(status, code);
        app.delete(&format!("{path}/{}", id(&webhook)), token)
            .await
            .expect_problem(status, code);
    }
    app.get(&path, "")
        .await
        .expect_problem(401, "unauthenticated");
    // Another store's owner cannot reach this store's endpoint through
    // their own store either.
    app.delete(
        &format!("/stores/{}/webhooks/{}", other.slug, id(&webhook)),
        &other.owner.token,
    )
    .await
    .expect_problem(404, "not_found");
    // Platform admins may; the owner deletes.
    app.get(&path, &admin).await.expect(200);
    app.delete(&format!("{path}/{}", id(&webhook)), &store.owner.token)
        .await
        .expect(204);
    app.delete(&format!("{path}/{}", id(&webhook)), &store.owner.token)
        .await
        .expect_problem(404, "not_found");
    assert_eq!(
        app.get(&path, &store.owner.token).await.expect(200),
        json!([])
    );
}

#[tokio::test]
async fn a_rotated_secret_signs_beside_the_old_one_for_a_day() {
    let Some((app, store, receiver)) = hooked("rotating-diner", Guards::default()).await else {
        return;
    };
    let old = add_webhook(&app, &store, &receiver.url, json!(["*"])).await;
    let rotated = app
        .post_empty(
            &format!("/stores/{}/webhooks/{}/rotate-secret", store.slug, id(&old)),
            &store.owner.token,
        )
        .await
        .expect(200);
    assert_eq!(id(&rotated), id(&old));
    assert_ne!(secret(&rotated), secret(&old));
    let until = time::OffsetDateTime::parse(
        rotated["previous_secret_expires_at"]
            .as_str()
            .expect("an expiry"),
        &time::format_description::well_known::Rfc3339,
    )
    .expect("RFC 3339");
    let in_a_day = time::OffsetDateTime::now_utc() + time::Duration::hours(24);
    assert!(
        (until - in_a_day).abs() < time::Duration::minutes(1),
        "{until}"
    );

    let alice = app.alice().await;
    app.place_simple(&alice.token, &store.slug).await;
    let received = receiver.wait_for(1, 10 * SECOND).await;
    let signatures = &received[0].headers["webhook-signature"];
    assert_eq!(signatures.split(' ').count(), 2, "{signatures}");
    assert!(signatures.split(' ').all(|s| s.starts_with("v1,")));
    // Receivers holding either secret verify it.
    verified(secret(&old), &received);
    verified(secret(&rotated), &received);
    assert!(verify("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw", &received)[0].is_err());
}

#[tokio::test]
async fn bad_webhook_requests_are_refused_with_a_reason() {
    let app = spawn_app().await;
    let store = app.staffed_store("strict-diner", "restaurant", "S").await;
    let path = format!("/stores/{}/webhooks", store.slug);
    let url = "http://127.0.0.1:9/hook";
    for events in [
        json!([]),
        json!(["order.eaten"]),
        json!(["*", "order.created"]),
    ] {
        app.post(
            &path,
            &store.owner.token,
            &json!({"url": url, "events": events}),
        )
        .await
        .expect_problem(422, "invalid_webhook_events");
    }
    app.post(
        &path,
        &store.owner.token,
        &json!({"url": url, "events": ["*"], "secret": "mine"}),
    )
    .await
    .expect_problem(422, "invalid_body");
    let long = format!("http://127.0.0.1:9/{}", "a".repeat(2100));
    app.post(
        &path,
        &store.owner.token,
        &json!({"url": long, "events": ["*"]}),
    )
    .await
    .expect_problem(422, "invalid_webhook_url");
    app.get(&format!("{path}/999999/deliveries"), &store.owner.token)
        .await
        .expect_problem(404, "not_found");
    app.post_empty(&format!("{path}/999999/rotate-secret"), &store.owner.token)
        .await
        .expect_problem(404, "not_found");
    let created = app
        .post(
            &path,
            &store.owner.token,
            &json!({"url": url, "events": ["order.created"], "enabled": false}),
        )
        .await
        .expect(201);
    assert_eq!(created["enabled"], false);
    app.post_empty(
        &format!("{path}/{}/deliveries/999999/retry", id(&created)),
        &store.owner.token,
    )
    .await
    .expect_problem(404, "not_found");
    app.get(&format!("{path}/abc/deliveries"), &store.owner.token)
        .await
        .expect_problem(400, "invalid_path");
}
