//! What a guest with a tracking link gets, on every channel — the order as
//! JSON, its live stream (live, replayed and as a snapshot), its page and
//! the page's fragment — names nobody: no customer id, name, e-mail,
//! address or order notes (those are for the order's customer and the
//! store's staff).

use serde_json::json;

use crate::support::*;

const ADDRESS: &str = "17 Quiet Lane, Flat 3";
const NOTES: &str = "Leave it with the neighbour";

/// Asserts that `payload` (what `channel` sent) names nobody.
fn names_nobody(channel: &str, payload: &str, alice: &User) {
    for personal in [
        "customer_id",
        "customer_name",
        "alice@demo.test",
        alice.name.as_str(),
        ADDRESS,
        NOTES,
    ] {
        assert!(
            !payload.contains(personal),
            "{channel} carries {personal:?}: {payload}"
        );
    }
}

#[tokio::test]
async fn a_guest_tracking_link_names_nobody_on_any_channel() {
    let app = spawn_app().await;
    let alice = app.alice().await;
    let cashier = app.login("cashier@demo.test").await;
    let product = app.product_ids(RESTAURANT).await[0];
    let mut body = delivery(RESTAURANT, &[(product, 1)], ADDRESS);
    body["notes"] = json!(NOTES);
    let order = app.place(&alice.token, &body).await.expect(201);
    let token = order["tracking_token"].as_str().expect("a tracking token");
    let order_id = id(&order);
    // The order's own customer does see all of it.
    assert_eq!(order["fulfilment"]["address"], ADDRESS);
    assert_eq!(order["notes"], NOTES);

    let track = format!("/track/{token}");
    let events = format!("/track/{token}/events");
    let (mut live, from) = app.ready_sse(&events, None).await;
    app.move_order(&cashier, order_id, "confirmed").await;
    let frame = live.next_event().await.expect("the change, live");
    assert_eq!(frame.json()["order_id"], order_id);
    names_nobody(
        "the live stream",
        frame.data.as_deref().unwrap_or_default(),
        &alice,
    );

    // Replayed from before the change, and from the start.
    for after in [from, 0] {
        let mut replayed = app.sse(&events, None, Some(after)).await;
        let frame = replayed.next_event().await.expect("a replayed event");
        let expected = if after == 0 {
            "order_created"
        } else {
            "status_changed"
        };
        assert_eq!(frame.event.as_deref(), Some(expected), "{frame:?}");
        names_nobody(
            "a replayed event",
            frame.data.as_deref().unwrap_or_default(),
            &alice,
        );
    }
    // Too far ahead: a snapshot.
    let mut resumed = app.sse(&events, None, Some(999_999_999)).await;
    let snapshot = resumed.next_event().await.expect("a snapshot");
    assert_eq!(snapshot.event.as_deref(), Some("snapshot"));
    names_nobody(
        "the snapshot",
        snapshot.data.as_deref().unwrap_or_default(),
        &alice,
    );

    let json = app.get(&track, ANON).await;
    assert_eq!(json.status, 200, "{}", json.text);
    names_nobody("the tracking JSON", &json.text, &alice);

    let client = reqwest::Client::new();
    for page in [track.clone(), format!("{track}/tracker")] {
        let html = client
            .get(app.page_url(&page))
            .send()
            .await
            .expect("the tracking page")
            .text()
            .await
            .expect("its HTML");
        assert!(html.contains("Confirmed"), "{page}: {html}");
        names_nobody(&page, &html, &alice);
    }

    // Staff watching the store still get the customer's id.
    let (mut store, _) = app
        .ready_sse(&format!("/stores/{RESTAURANT}/events"), Some(&cashier))
        .await;
    app.move_order(&cashier, order_id, "preparing").await;
    let frame = store.next_event().await.expect("the change");
    assert_eq!(frame.json()["customer_id"], alice.id);
}
