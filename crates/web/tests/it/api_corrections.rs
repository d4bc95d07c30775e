//! Corrections (issue 13): a manager or owner moves an order to any other
//! state of its workflow with a reason — a completed order back to ready,
//! say. The history marks it, every open stream carries it, the customer's
//! page says "Corrected by the store: …"; cashiers and customers may not.

use serde_json::{Value, json};

use crate::support::*;

async fn correct(app: &TestApp, token: &str, order: &Value, to: &str, reason: &str) -> Resp {
    app.post(
        &format!("/orders/{}/corrections", id(order)),
        token,
        &json!({"to": to, "reason": reason, "expected_version": version(order)}),
    )
    .await
}

/// A restaurant pickup order taken all the way to `completed`.
pub async fn completed_order(app: &TestApp, customer: &str) -> Value {
    let cashier = app.login("cashier@demo.test").await;
    let kitchen = app.login("kitchen@demo.test").await;
    let order = app.place_simple(customer, RESTAURANT).await;
    let order = app.advance(&cashier, &order, "confirmed").await;
    let mut order = app.advance(&kitchen, &order, "preparing").await;
    for item in item_ids(&order) {
        order = app
            .set_item(&kitchen, id(&order), item, "ready")
            .await
            .expect(200);
    }
    assert_eq!(status(&order), "ready");
    app.advance(&cashier, &order, "completed").await
}

#[tokio::test]
async fn a_manager_moves_a_completed_order_back_to_ready_with_a_reason() {
    let app = spawn_app().await;
    let alice = app.alice().await;
    let owner = app.login("owner@demo.test").await;
    let order = completed_order(&app, &alice.token).await;
    let manager_token = app.login("manager@demo.test").await;

    let (mut store_stream, _) = app
        .ready_sse(&format!("/stores/{RESTAURANT}/events"), Some(&owner))
        .await;
    let (mut order_stream, _) = app
        .ready_sse(
            &format!("/orders/{}/events", id(&order)),
            Some(&alice.token),
        )
        .await;
    let (mut guest_stream, _) = app
        .ready_sse(
            &format!(
                "/track/{}/events",
                order["tracking_token"].as_str().expect("token")
            ),
            None,
        )
        .await;

    let reason = "Handed to the wrong customer; remade";
    let corrected = correct(&app, &manager_token, &order, "ready", reason)
        .await
        .expect(200);
    assert_eq!(status(&corrected), "ready");
    assert_eq!(version(&corrected), version(&order) + 1);

    for (who, stream) in [
        ("the store", &mut store_stream),
        ("the customer", &mut order_stream),
        ("a guest", &mut guest_stream),
    ] {
        let event = stream.next_event().await.expect("the correction").json();
        assert_eq!(event["to"], "ready", "{who}: {event}");
        assert_eq!(event["from"], "completed", "{who}: {event}");
        assert_eq!(event["correction"], true, "{who}: {event}");
        assert_eq!(event["note"], reason, "{who}: {event}");
    }

    let history = app.history(&alice.token, id(&order)).await;
    let last = history.last().expect("history");
    assert_eq!(last["from"], "completed");
    assert_eq!(last["to"], "ready");
    assert_eq!(last["correction"], true);
    assert_eq!(last["note"], reason);
    assert_eq!(last["actor"]["role"], "manager");
    assert!(
        history[..history.len() - 1]
            .iter()
            .all(|entry| entry.get("correction").is_none()),
        "{history:?}"
    );

    // The customer's page says what happened.
    let html = reqwest::Client::new()
        .get(app.page_url(&format!(
            "/track/{}",
            order["tracking_token"].as_str().unwrap_or_default()
        )))
        .send()
        .await
        .expect("the tracking page")
        .text()
        .await
        .expect("its HTML");
    assert!(
        html.contains(&format!("Corrected by the store: {reason}")),
        "{html}"
    );

    // From ready, the order goes on as usual.
    let cashier = app.login("cashier@demo.test").await;
    app.advance(&cashier, &corrected, "completed").await;
}

#[tokio::test]
async fn only_managers_owners_and_admins_correct_and_only_with_a_reason() {
    let app = spawn_app().await;
    let alice = app.alice().await;
    let owner = app.login("owner@demo.test").await;
    let cashier = app.login("cashier@demo.test").await;
    let order = completed_order(&app, &alice.token).await;

    correct(&app, &cashier, &order, "ready", "oops")
        .await
        .expect_problem(403, "forbidden");
    correct(&app, &alice.token, &order, "ready", "oops")
        .await
        .expect_problem(403, "forbidden");
    let bob = app.bob().await;
    correct(&app, &bob.token, &order, "ready", "oops")
        .await
        .expect_problem(404, "not_found");
    correct(&app, &owner, &order, "ready", "   ")
        .await
        .expect_problem(422, "reason_required");
    correct(&app, &owner, &order, "teleported", "oops")
        .await
        .expect_problem(422, "unknown_status");
    correct(&app, &owner, &order, "completed", "oops")
        .await
        .expect_problem(409, "transition_not_allowed");
    let stale = json!({"to": "ready", "reason": "oops", "expected_version": version(&order) - 1});
    app.post(
        &format!("/orders/{}/corrections", id(&order)),
        &owner,
        &stale,
    )
    .await
    .expect_problem(409, "version_conflict");
    // Nothing changed.
    let now = app.order(&owner, id(&order)).await;
    assert_eq!(version(&now), version(&order));
    assert_eq!(status(&now), "completed");

    // The owner may; to any state, cancelled included.
    let cancelled = correct(&app, &owner, &order, "cancelled", "Refunded at the counter")
        .await
        .expect(200);
    assert_eq!(status(&cancelled), "cancelled");
}

#[tokio::test]
async fn an_item_is_corrected_whatever_the_order_state_by_managers_and_owners_only() {
    let app = spawn_app().await;
    let alice = app.alice().await;
    let manager = app.login("manager@demo.test").await;
    let kitchen = app.login("kitchen@demo.test").await;
    let order = completed_order(&app, &alice.token).await;
    let item = item_ids(&order)[0];
    let path = format!("/orders/{}/items/{item}", id(&order));
    let (mut stream, _) = app
        .ready_sse(
            &format!("/orders/{}/events", id(&order)),
            Some(&alice.token),
        )
        .await;

    // The kitchen's own rules refuse it on a finished order.
    app.set_item(&kitchen, id(&order), item, "preparing")
        .await
        .expect_problem(409, "order_finished");
    for (token, body, code, status) in [
        (
            &kitchen,
            json!({"status": "preparing", "correction": true, "reason": "x"}),
            "forbidden",
            403,
        ),
        (
            &alice.token,
            json!({"status": "preparing", "correction": true, "reason": "x"}),
            "forbidden",
            403,
        ),
        (
            &manager,
            json!({"status": "preparing", "correction": true}),
            "reason_required",
            422,
        ),
        (
            &manager,
            json!({"status": "ready", "correction": true, "reason": "x"}),
            "item_unchanged",
            409,
        ),
    ] {
        app.patch(&path, token, &body)
            .await
            .expect_problem(status, code);
    }

    let reason = "Burger came back: remaking it";
    let corrected = app
        .patch(
            &path,
            &manager,
            &json!({"status": "preparing", "correction": true, "reason": reason}),
        )
        .await
        .expect(200);
    assert_eq!(
        status(&corrected),
        "completed",
        "the order stays where it is"
    );
    assert_eq!(corrected["items"][0]["status"], "preparing");
    let event = stream.next_event().await.expect("the correction").json();
    assert_eq!(event["type"], "item_status_changed", "{event}");
    assert_eq!(event["correction"], true, "{event}");
    assert_eq!(event["note"], reason, "{event}");
    assert_eq!(event["item"]["to"], "preparing", "{event}");
}
