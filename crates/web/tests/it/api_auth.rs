//! Accounts and sessions: register, login, logout, me.

use serde_json::json;

use crate::support::*;

#[tokio::test]
async fn a_customer_registers_and_is_signed_in_at_once() {
    let app = spawn_app().await;
    let response = app
        .post(
            "/auth/register",
            ANON,
            &json!({"email": "Carol@Example.com", "password": PASSWORD, "name": "Carol"}),
        )
        .await;
    let session = response.expect(201);
    let token = session["token"].as_str().expect("token");
    assert_eq!(session["user"]["email"], "carol@example.com");
    assert_eq!(session["user"]["name"], "Carol");
    assert!(session["user"]["id"].is_i64());
    assert!(session["user"].get("password_hash").is_none());

    let me = app.get("/auth/me", token).await.expect(200);
    assert_eq!(me["id"], session["user"]["id"]);
    assert_eq!(me["email"], "carol@example.com");
    assert_eq!(me["name"], "Carol");
    assert_eq!(me["memberships"], json!([]));
}

#[tokio::test]
async fn login_returns_a_working_token_and_an_http_only_cookie() {
    let app = spawn_app().await;
    let response = app.login_response("cashier@demo.test", PASSWORD).await;
    let cookie = response
        .headers
        .get("set-cookie")
        .and_then(|v| v.to_str().ok())
        .expect("a session cookie")
        .to_owned();
    let session = response.expect(200);
    let token = session["token"].as_str().expect("token").to_owned();
    assert_eq!(session["user"]["email"], "cashier@demo.test");
    assert!(cookie.starts_with(&format!("ordertrack_session={token}")));
    assert!(cookie.contains("HttpOnly"), "{cookie}");
    assert!(cookie.contains("SameSite="), "{cookie}");

    let me = app.get("/auth/me", &token).await.expect(200);
    assert_eq!(me["email"], "cashier@demo.test");
    assert_eq!(
        me["memberships"],
        json!([{"store": RESTAURANT, "store_id": me["memberships"][0]["store_id"], "role": "cashier"}])
    );

    // The same token works as the cookie pages send.
    let by_cookie = app
        .send(
            app.client
                .get(app.url("/auth/me"))
                .header("cookie", format!("ordertrack_session={token}")),
        )
        .await
        .expect(200);
    assert_eq!(by_cookie["id"], me["id"]);
}

#[tokio::test]
async fn me_lists_every_membership() {
    let app = spawn_app().await;
    let seller = app.login("seller@demo.test").await;
    let me = app.get("/auth/me", &seller).await.expect(200);
    assert_eq!(me["memberships"][0]["store"], SHOP);
    assert_eq!(me["memberships"][0]["role"], "owner");
    assert_eq!(me["memberships"].as_array().map(Vec::len), Some(1));

    let alice = app.login("alice@demo.test").await;
    let me = app.get("/auth/me", &alice).await.expect(200);
    assert_eq!(me["memberships"], json!([]));
}

#[tokio::test]
async fn wrong_password_or_unknown_email_is_401() {
    let app = spawn_app().await;
    app.login_response("alice@demo.test", "not-the-password")
        .await
        .expect_problem(401, "bad_credentials");
    app.login_response("nobody@demo.test", PASSWORD)
        .await
        .expect_problem(401, "bad_credentials");
    // The right password still works.
    app.login_response("alice@demo.test", PASSWORD)
        .await
        .expect(200);
}

#[tokio::test]
async fn repeated_failed_logins_are_throttled() {
    let app = spawn_app().await;
    let mut throttled = false;
    for _ in 0..12 {
        let response = app.login_response("bob@demo.test", "guessing-again").await;
        match response.status.as_u16() {
            401 => assert!(!throttled, "401 after 429: {}", response.text),
            429 => {
                response.expect_problem(429, "too_many_attempts");
                throttled = true;
            }
            other => panic!("unexpected {other}: {}", response.text),
        }
    }
    assert!(
        throttled,
        "12 wrong passwords in a row were never throttled"
    );
    // While throttled, even the right password is refused.
    app.login_response("bob@demo.test", PASSWORD)
        .await
        .expect_problem(429, "too_many_attempts");
    // Other accounts are not affected.
    app.login_response("alice@demo.test", PASSWORD)
        .await
        .expect(200);
}

#[tokio::test]
async fn a_taken_email_cannot_register_again() {
    let app = spawn_app().await;
    for email in ["alice@demo.test", "ALICE@demo.test", " alice@demo.test "] {
        app.post(
            "/auth/register",
            ANON,
            &json!({"email": email, "password": "another-password", "name": "Mallory"}),
        )
        .await
        .expect_problem(409, "already_exists");
    }
    // Alice's account is untouched.
    let alice = app.alice().await;
    assert_eq!(alice.name, "Alice Customer");
}

#[tokio::test]
async fn registration_checks_email_password_and_name() {
    let app = spawn_app().await;
    for (body, code) in [
        (
            json!({"email": "not-an-email", "password": PASSWORD, "name": "X"}),
            "invalid_email",
        ),
        (
            json!({"email": "x@example.com", "password": "short", "name": "X"}),
            "invalid_password",
        ),
        (
            json!({"email": "x@example.com", "password": PASSWORD, "name": "   "}),
            "invalid_name",
        ),
        (
            json!({"email": "x@example.com", "password": PASSWORD, "name": "X", "is_admin": true}),
            "invalid_body",
        ),
        (
            json!({"email": "x@example.com", "password": PASSWORD}),
            "invalid_body",
        ),
    ] {
        app.post("/auth/register", ANON, &body)
            .await
            .expect_problem(422, code);
    }
    app.login_response("x@example.com", PASSWORD)
        .await
        .expect_problem(401, "bad_credentials");
}

#[tokio::test]
async fn logout_makes_the_token_stop_working() {
    let app = spawn_app().await;
    let alice = app.alice().await;
    let other_session = app.login("alice@demo.test").await;
    app.place_simple(&alice.token, RESTAURANT).await;

    let response = app.post_empty("/auth/logout", &alice.token).await;
    assert_eq!(response.status, 204, "{}", response.text);
    let cleared = response
        .headers
        .get("set-cookie")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    assert!(
        cleared.contains("Max-Age=0"),
        "cookie not cleared: {cleared}"
    );

    app.get("/auth/me", &alice.token)
        .await
        .expect_problem(401, "unauthenticated");
    app.get("/orders", &alice.token)
        .await
        .expect_problem(401, "unauthenticated");
    app.post_empty("/auth/logout", &alice.token)
        .await
        .expect_problem(401, "unauthenticated");

    // Only that session ended.
    assert_eq!(app.my_orders(&other_session).await.len(), 1);
}

#[tokio::test]
async fn expired_tokens_are_refused() {
    // Sessions that expire the moment they start.
    let app = spawn_app_with_ttl(time::Duration::seconds(-5)).await;
    let token = app.login("alice@demo.test").await;
    app.get("/auth/me", &token)
        .await
        .expect_problem(401, "unauthenticated");
    app.get("/orders", &token)
        .await
        .expect_problem(401, "unauthenticated");
}

/// An instance keeps the sessions it resolved, so a transition reads no
/// session of its own; yet every access change — a role given, changed or
/// taken away, a logout — is seen by the very next request.
#[tokio::test]
async fn kept_sessions_save_reads_and_follow_every_access_change() {
    let app = spawn_app().await;
    let alice = app.alice().await;
    let cashier = app.user("cashier@demo.test").await;
    let owner = app.user("owner@demo.test").await;
    let stats = || app.app.session_cache_stats();

    // Warm: the cashier's session is read once, then kept.
    let mut orders = Vec::new();
    for _ in 0..3 {
        orders.push(id(&app.place_simple(&alice.token, RESTAURANT).await));
    }
    app.get("/auth/me", &cashier.token).await.expect(200);
    let before = stats();
    for order in orders {
        app.move_order(&cashier.token, order, "confirmed").await;
    }
    let after = stats();
    assert_eq!(
        after.reads, before.reads,
        "kept sessions are not read again"
    );
    assert!(after.hits >= before.hits + 3, "{before:?} → {after:?}");

    // A role given is seen by the next request (a kept session without it
    // is not used).
    let newcomer = app.register("newcomer@example.test", "Newcomer").await;
    let second = id(&app.place_simple(&alice.token, RESTAURANT).await);
    app.get("/auth/me", &newcomer.token).await.expect(200);
    app.get(&format!("/orders/{second}"), &newcomer.token)
        .await
        .expect(404);
    app.post(
        &format!("/stores/{RESTAURANT}/staff"),
        &owner.token,
        &json!({"email": "newcomer@example.test", "role": "cashier"}),
    )
    .await
    .expect(201);
    app.move_order(&newcomer.token, second, "confirmed").await;

    // A role changed: a driver may not confirm.
    let third = id(&app.place_simple(&alice.token, RESTAURANT).await);
    app.post(
        &format!("/stores/{RESTAURANT}/staff"),
        &owner.token,
        &json!({"email": "newcomer@example.test", "role": "driver"}),
    )
    .await
    .expect(201);
    let refused = app
        .post(
            &format!("/orders/{third}/transitions"),
            &newcomer.token,
            &json!({"to": "confirmed"}),
        )
        .await;
    assert!(
        matches!(refused.status.as_u16(), 403 | 404),
        "a driver confirmed: {}",
        refused.status
    );

    // A role taken away.
    app.delete(
        &format!("/stores/{RESTAURANT}/staff/{}", newcomer.id),
        &owner.token,
    )
    .await
    .expect(204);
    app.post(
        &format!("/orders/{third}/transitions"),
        &newcomer.token,
        &json!({"to": "confirmed"}),
    )
    .await
    .expect(404);

    // A logout, through another instance's store write as through this one:
    // the session ends in the store, and the kept copy is not used.
    app.store
        .delete_session(&app.caller(&cashier.token).await.session_id)
        .await
        .expect("end the session in the store");
    app.post(
        &format!("/orders/{third}/transitions"),
        &cashier.token,
        &json!({"to": "confirmed"}),
    )
    .await
    .expect(401);
    app.get("/auth/me", &cashier.token).await.expect(401);
}

/// Placing an order reads the store, its workflow, its products and the
/// cache marks in one read, and checks a kept session against those marks:
/// no session read of its own, yet a session ended elsewhere is refused by
/// the very next order — before anything is told about the store.
#[tokio::test]
async fn placing_orders_uses_kept_sessions_and_sees_a_logout_at_once() {
    let app = spawn_app().await;
    let alice = app.alice().await;
    let stats = || app.app.session_cache_stats();
    let product = app.product_ids(RESTAURANT).await[0];

    app.place_order(&alice.token, RESTAURANT, &[(product, 1)])
        .await;
    let before = stats();
    for _ in 0..3 {
        app.place_order(&alice.token, RESTAURANT, &[(product, 1)])
            .await;
    }
    let after = stats();
    assert_eq!(
        after.reads, before.reads,
        "kept sessions are not read again"
    );
    assert!(after.hits >= before.hits + 3, "{before:?} → {after:?}");

    // Unknown stores are 404 to a signed-in customer.
    app.place(&alice.token, &pickup("nowhere", &[(product, 1)]))
        .await
        .expect_problem(404, "not_found");

    // A logout through another instance's store write.
    app.store
        .delete_session(&app.caller(&alice.token).await.session_id)
        .await
        .expect("end the session in the store");
    let placed_before = app.store.last_event_position().await.expect("position");
    app.place(&alice.token, &pickup(RESTAURANT, &[(product, 1)]))
        .await
        .expect_problem(401, "unauthenticated");
    app.place(&alice.token, &pickup("nowhere", &[(product, 1)]))
        .await
        .expect_problem(401, "unauthenticated");
    assert_eq!(
        app.store.last_event_position().await.expect("position"),
        placed_before,
        "nothing was placed"
    );
}
