//! Issue 12, finding 7 (and the input hygiene it asks for): each test is
//! named after what an attacker could do, and failed before the fix.

use std::net::IpAddr;

use reqwest::StatusCode;
use reqwest::header::{COOKIE, LOCATION, SET_COOKIE};
use serde_json::{Value, json};

use crate::support::*;

fn no_redirects() -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .expect("an HTTP client")
}

/// A signed-out visitor's CSRF cookie and field, from the login page.
async fn signed_out_csrf(app: &TestApp, client: &reqwest::Client) -> (String, String) {
    let page = client
        .get(app.page_url("/login"))
        .send()
        .await
        .expect("the login page");
    let cookie = set_cookies(&page)
        .into_iter()
        .find_map(|c| {
            c.strip_prefix("ordertrack_csrf=")
                .map(|v| v.split(';').next().unwrap_or_default().to_owned())
        })
        .expect("a CSRF cookie");
    let field = csrf_field(&page.text().await.expect("the page"));
    assert_eq!(cookie, field, "double submit: the field repeats the cookie");
    (cookie, field)
}

fn set_cookies(response: &reqwest::Response) -> Vec<String> {
    response
        .headers()
        .get_all(SET_COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .map(str::to_owned)
        .collect()
}

/// Signs in through the login form with `next`; the response (not followed).
async fn form_login(app: &TestApp, client: &reqwest::Client, next: &str) -> reqwest::Response {
    let (cookie, csrf) = signed_out_csrf(app, client).await;
    client
        .post(app.page_url("/login"))
        .header(COOKIE, format!("ordertrack_csrf={cookie}"))
        .form(&[
            ("csrf", csrf.as_str()),
            ("email", "alice@demo.test"),
            ("password", PASSWORD),
            ("next", next),
        ])
        .send()
        .await
        .expect("the login form")
}

// ---- 7a ----

type WsResult = Result<u16, String>;

/// Opens `/api/v1/ws` with these headers; the handshake's status.
async fn ws_status(app: &TestApp, headers: &[(&'static str, String)]) -> WsResult {
    use tokio_tungstenite::tungstenite::client::IntoClientRequest;
    let mut request = format!("ws://{}/api/v1/ws", app.addr)
        .into_client_request()
        .expect("a request");
    for (name, value) in headers {
        request
            .headers_mut()
            .insert(*name, value.parse().expect("a header value"));
    }
    match tokio_tungstenite::connect_async(request).await {
        Ok((_, response)) => Ok(response.status().as_u16()),
        Err(tokio_tungstenite::tungstenite::Error::Http(response)) => {
            let body = response
                .body()
                .as_ref()
                .map(|b| String::from_utf8_lossy(b).into_owned())
                .unwrap_or_default();
            let content_type = response
                .headers()
                .get("content-type")
                .and_then(|v| v.to_str().ok())
                .unwrap_or("");
            assert!(
                content_type.starts_with(PROBLEM_JSON) && body.contains("cross_origin"),
                "a refusal is a problem: {content_type} {body}"
            );
            Ok(response.status().as_u16())
        }
        Err(error) => Err(error.to_string()),
    }
}

#[tokio::test]
async fn finding_7a_a_websocket_signed_in_by_cookie_opens_only_from_this_site() {
    let app = spawn_app().await;
    let alice = app.alice().await;
    let cookie = format!("ordertrack_session={}", alice.token);
    let own = format!("http://{}", app.addr);

    // Another site's script opening a socket: the browser sends the cookie.
    for origin in [
        "https://evil.example",
        "null",
        &format!("http://{}.evil.example", app.addr),
    ] {
        let headers = [("cookie", cookie.clone()), ("origin", origin.to_owned())];
        assert_eq!(ws_status(&app, &headers).await, Ok(403), "Origin {origin}");
    }
    assert_eq!(
        ws_status(&app, &[("cookie", cookie.clone())]).await,
        Ok(403),
        "no Origin"
    );

    // This site's own pages may.
    assert_eq!(
        ws_status(&app, &[("cookie", cookie.clone()), ("origin", own)]).await,
        Ok(101)
    );
    // A Bearer token is never sent by itself: from anywhere.
    assert_eq!(
        ws_status(
            &app,
            &[
                ("authorization", format!("Bearer {}", alice.token)),
                ("origin", "https://evil.example".into()),
            ]
        )
        .await,
        Ok(101)
    );
    // No credentials at all (tracking links only): from anywhere.
    assert_eq!(
        ws_status(&app, &[("origin", "https://evil.example".into())]).await,
        Ok(101)
    );
}

// ---- 7b ----

#[tokio::test]
async fn finding_7b_next_and_back_lead_only_to_paths_on_this_site() {
    let app = spawn_app().await;
    let client = no_redirects();

    // The login page keeps only a same-site `next` for its form.
    for (query, kept) in [
        ("next=/orders", "/orders"),
        ("next=/%09/evil.example/x", "/"),
        ("next=//evil.example", "/"),
        ("next=/%5Cevil.example", "/"),
        ("next=https://evil.example", "/"),
        ("next=/orders%0D%0ASet-Cookie:%20x=1", "/"),
    ] {
        let page = client
            .get(app.page_url(&format!("/login?{query}")))
            .send()
            .await
            .expect("the login page");
        assert_eq!(page.status(), StatusCode::OK, "{query}");
        let html = page.text().await.expect("the page");
        assert!(
            html.contains(&format!("name=\"next\" value=\"{kept}\"")),
            "{query}: the form should go on to {kept}"
        );
    }

    // Signing in goes on only to a same-site path, and a control character
    // in `next` is no server error.
    for (next, location) in [
        ("/orders", "/orders"),
        ("/\t/evil.example/x", "/"),
        ("/\\evil.example", "/"),
        ("/orders\r\nSet-Cookie: x=1", "/"),
        ("/orders\u{202e}", "/"),
    ] {
        let response = form_login(&app, &client, next).await;
        assert_eq!(response.status(), StatusCode::SEE_OTHER, "{next:?}");
        assert_eq!(
            response
                .headers()
                .get(LOCATION)
                .and_then(|v| v.to_str().ok()),
            Some(location),
            "{next:?}"
        );
    }

    // The kitchen's `back`: a control character once made a 500.
    let kitchen = app.login("kitchen@demo.test").await;
    let csrf = app.session_csrf(&kitchen).await;
    let alice = app.alice().await;
    let order = app.place_simple(&alice.token, RESTAURANT).await;
    let owner = app.login("owner@demo.test").await;
    let order = app.advance(&owner, &order, "confirmed").await;
    let order = app.advance(&owner, &order, "preparing").await;
    for (back, location) in [
        (
            format!("/kitchen/{RESTAURANT}?station=grill"),
            format!("/kitchen/{RESTAURANT}?station=grill"),
        ),
        (
            format!("/kitchen/{RESTAURANT}\r\nSet-Cookie: x=1"),
            format!("/kitchen/{RESTAURANT}"),
        ),
        (
            "//evil.example".to_owned(),
            format!("/kitchen/{RESTAURANT}"),
        ),
    ] {
        let response = client
            .post(app.page_url(&format!(
                "/kitchen/{RESTAURANT}/orders/{}/items/{}",
                id(&order),
                item_ids(&order)[0]
            )))
            .header(COOKIE, format!("ordertrack_session={kitchen}"))
            .form(&[("csrf", csrf.as_str()), ("back", back.as_str())])
            .send()
            .await
            .expect("a kitchen tap");
        assert_eq!(response.status(), StatusCode::SEE_OTHER, "{back:?}");
        assert_eq!(
            response
                .headers()
                .get(LOCATION)
                .and_then(|v| v.to_str().ok()),
            Some(location.as_str()),
            "{back:?}"
        );
    }
}

// ---- 7c ----

/// A server behind a (trusted) TLS-terminating proxy on 127.0.0.1.
async fn behind_a_proxy() -> TestApp {
    spawn_app_guarded(Guards {
        trusted_proxies: vec![IpAddr::from([127, 0, 0, 1])],
        ..Guards::default()
    })
    .await
}

#[tokio::test]
async fn finding_7c_cookies_are_secure_and_host_prefixed_over_https() {
    let app = behind_a_proxy().await;
    let client = no_redirects();
    let login = |https: bool| {
        let mut request = client
            .post(app.url("/auth/login"))
            .json(&json!({"email": "alice@demo.test", "password": PASSWORD}));
        if https {
            request = request.header("x-forwarded-proto", "https");
        }
        request.send()
    };

    // Over HTTPS (the proxy says so): Secure, under the __Host- name.
    let secure = login(true).await.expect("login");
    let cookie = set_cookies(&secure).join("\n");
    assert!(
        cookie.starts_with("__Host-ordertrack_session=") && cookie.contains("; Secure"),
        "{cookie}"
    );
    assert!(
        cookie.contains("Path=/") && !cookie.contains("Domain="),
        "{cookie}"
    );
    let token = secure.json::<Value>().await.expect("a session")["token"]
        .as_str()
        .expect("a token")
        .to_owned();
    // The __Host- cookie signs the browser in.
    let me = client
        .get(app.url("/auth/me"))
        .header(COOKIE, format!("__Host-ordertrack_session={token}"))
        .send()
        .await
        .expect("me");
    assert_eq!(me.status(), StatusCode::OK);
    // The CSRF cookie too.
    let page = client
        .get(app.page_url("/login"))
        .header("x-forwarded-proto", "https")
        .send()
        .await
        .expect("the login page");
    let csrf = set_cookies(&page).join("\n");
    assert!(
        csrf.starts_with("__Host-ordertrack_csrf=") && csrf.contains("; Secure"),
        "{csrf}"
    );

    // Plain HTTP (the demo on localhost) keeps working: no Secure, or the
    // browser would never send the cookie back.
    let plain = set_cookies(&login(false).await.expect("login")).join("\n");
    assert!(
        plain.starts_with("ordertrack_session=") && !plain.contains("Secure"),
        "{plain}"
    );
}

#[tokio::test]
async fn finding_7c_only_a_trusted_proxy_can_say_a_request_came_over_https() {
    let app = spawn_app().await;
    let response = no_redirects()
        .post(app.url("/auth/login"))
        .header("x-forwarded-proto", "https")
        .json(&json!({"email": "alice@demo.test", "password": PASSWORD}))
        .send()
        .await
        .expect("login");
    let cookie = set_cookies(&response).join("\n");
    assert!(cookie.starts_with("ordertrack_session="), "{cookie}");
}

#[tokio::test]
async fn finding_7c_the_csrf_token_is_bound_to_the_session_and_rotated_at_sign_in() {
    let app = spawn_app().await;
    let client = no_redirects();
    let alice = app.alice().await;
    let bob = app.bob().await;
    let order = app.place_simple(&alice.token, RESTAURANT).await;
    let cancel = |session: String, csrf_cookie: Option<String>, csrf: String| {
        let cookies = match csrf_cookie {
            Some(c) => format!("ordertrack_session={session}; ordertrack_csrf={c}"),
            None => format!("ordertrack_session={session}"),
        };
        client
            .post(app.page_url(&format!("/orders/{}/cancel", id(&order))))
            .header(COOKIE, cookies)
            .form(&[("csrf", csrf)])
            .send()
    };

    // A double-submit pair the attacker knows (or planted) is not enough.
    let (cookie, field) = signed_out_csrf(&app, &client).await;
    let forged = cancel(alice.token.clone(), Some(cookie), field)
        .await
        .expect("post");
    assert_eq!(forged.status(), StatusCode::FORBIDDEN);
    // Nor is another session's token.
    let bobs = app.session_csrf(&bob.token).await;
    let other = cancel(alice.token.clone(), None, bobs).await.expect("post");
    assert_eq!(other.status(), StatusCode::FORBIDDEN);
    assert_eq!(
        status(&app.order(&alice.token, id(&order)).await),
        "pending"
    );

    // A new sign-in has a new token, and the sign-in replaces the
    // signed-out CSRF cookie too.
    let before = app.session_csrf(&alice.token).await;
    let response = form_login(&app, &client, "/").await;
    assert!(
        set_cookies(&response)
            .iter()
            .any(|c| c.starts_with("ordertrack_csrf=")),
        "a new CSRF cookie at sign-in"
    );
    let again = app.alice().await;
    let after = app.session_csrf(&again.token).await;
    assert_ne!(before, after);

    // The session's own token works.
    let own = cancel(alice.token.clone(), None, before)
        .await
        .expect("post");
    assert_eq!(own.status(), StatusCode::SEE_OTHER);
    assert_eq!(
        status(&app.order(&alice.token, id(&order)).await),
        "cancelled"
    );
}

// ---- 7d ----

#[tokio::test]
async fn finding_7d_an_item_cannot_go_back_to_queued_after_its_order_advanced_to_ready() {
    let app = spawn_app().await;
    let alice = app.alice().await;
    let owner = app.login("owner@demo.test").await;
    let kitchen = app.login("kitchen@demo.test").await;
    let order = app.place_simple(&alice.token, RESTAURANT).await;
    let order = app.advance(&owner, &order, "confirmed").await;
    let order = app.advance(&owner, &order, "preparing").await;
    let item = item_ids(&order)[0];

    // The last item ready: the order moves to `ready` by itself.
    app.set_item(&kitchen, id(&order), item, "ready").await.ok();
    let ready = app.order(&owner, id(&order)).await;
    assert_eq!(status(&ready), "ready");

    for back in ["queued", "preparing"] {
        app.set_item(&kitchen, id(&order), item, back)
            .await
            .expect_problem(409, "kitchen_done");
    }
    let still = app.order(&owner, id(&order)).await;
    assert_eq!(version(&still), version(&ready), "nothing changed");
    assert_eq!(still["items"][0]["status"], "ready");
}

// ---- 7e ----

#[tokio::test]
async fn finding_7e_the_customer_cancel_form_only_cancels_and_only_for_the_customer() {
    let app = spawn_app().await;
    let client = no_redirects();
    let alice = app.alice().await;
    let cashier = app.login("cashier@demo.test").await;
    let post = |token: String, order: i64, to: &'static str| {
        let client = client.clone();
        let app = &app;
        async move {
            let csrf = app.session_csrf(&token).await;
            client
                .post(app.page_url(&format!("/orders/{order}/cancel")))
                .header(COOKIE, format!("ordertrack_session={token}"))
                .form(&[("csrf", csrf.as_str()), ("to", to)])
                .send()
                .await
                .expect("the cancel form")
                .status()
        }
    };

    // Staff posting the customer's form: not their order to cancel as its
    // customer, let alone to confirm.
    let order = app.place_simple(&alice.token, RESTAURANT).await;
    assert_eq!(post(cashier.clone(), id(&order), "confirmed").await, 404);
    assert_eq!(post(cashier.clone(), id(&order), "cancelled").await, 404);
    let unchanged = app.order(&alice.token, id(&order)).await;
    assert_eq!(status(&unchanged), "pending");
    assert_eq!(version(&unchanged), version(&order));

    // The customer: whatever `to` says, it cancels.
    assert_eq!(
        post(alice.token.clone(), id(&order), "confirmed").await,
        303
    );
    let history = app.history(&alice.token, id(&order)).await;
    let last = history.last().expect("history");
    assert_eq!(last["to"], "cancelled");
    assert_eq!(last["actor"]["role"], "customer");

    // Not once the store has accepted it (the workflow says so).
    let accepted = app.place_simple(&alice.token, RESTAURANT).await;
    app.advance(&cashier, &accepted, "confirmed").await;
    assert_eq!(
        post(alice.token.clone(), id(&accepted), "cancelled").await,
        403
    );
    assert_eq!(
        status(&app.order(&alice.token, id(&accepted)).await),
        "confirmed"
    );
}

// ---- 7f ----

#[tokio::test]
async fn finding_7f_control_and_bidi_characters_are_refused_naming_the_field() {
    let app = spawn_app().await;
    let alice = app.alice().await;
    let owner = app.login("owner@demo.test").await;
    let product = app.product_ids(RESTAURANT).await[0];

    let refused = |resp: Resp, field: &str| {
        let body = resp.expect_problem(422, "invalid_characters").clone();
        assert!(
            body["detail"]
                .as_str()
                .is_some_and(|d| d.starts_with(field)),
            "the detail names `{field}`: {body}"
        );
    };
    for name in ["Eve\u{0}", "\u{1b}[31mEve", "Eve\u{202e}gnp.exe"] {
        let resp = app
            .post(
                "/auth/register",
                ANON,
                &json!({"email": "eve@example.test", "password": PASSWORD, "name": name}),
            )
            .await;
        refused(resp, "name");
    }
    let resp = app
        .post(
            "/auth/register",
            ANON,
            &json!({"email": "eve\u{7}@example.test", "password": PASSWORD, "name": "Eve"}),
        )
        .await;
    refused(resp, "email");

    let order = |notes: &str, line_notes: &str, address: &str| {
        json!({
            "store": RESTAURANT,
            "items": [{"product": product, "quantity": 1, "notes": line_notes}],
            "fulfilment": {"type": "delivery", "address": address},
            "notes": notes,
        })
    };
    refused(
        app.place(&alice.token, &order("ring\u{1b}", "", "1 Main St"))
            .await,
        "notes",
    );
    refused(
        app.place(&alice.token, &order("", "no\u{0}onions", "1 Main St"))
            .await,
        "items.notes",
    );
    refused(
        app.place(&alice.token, &order("", "", "1 Main St\u{2067}"))
            .await,
        "fulfilment.address",
    );
    // Line breaks and tabs are fine in a note or an address.
    let placed = app
        .place(
            &alice.token,
            &order("ring twice\r\n\tthen wait", "", "Flat 2\n1 Main St"),
        )
        .await
        .expect(201);

    let resp = app
        .post(
            &format!("/orders/{}/transitions", id(&placed)),
            &owner,
            &json!({"to": "confirmed", "note": "ok\u{0}"}),
        )
        .await;
    refused(resp, "note");
    let resp = app
        .post(
            &format!("/stores/{RESTAURANT}/products"),
            &owner,
            &json!({"name": "Burger\u{202e}", "price_minor": 100}),
        )
        .await;
    refused(resp, "name");
}

#[tokio::test]
async fn finding_7f_an_email_confusable_with_an_existing_account_cannot_register() {
    let app = spawn_app().await;
    for email in [
        "\u{430}lice@demo.test",  // Cyrillic а
        "alice@dem\u{3bf}.test",  // Greek ο
        " ALICE@demo.test ",      // case and spaces
        "\u{ff41}lice@demo.test", // full-width ａ (NFKC: a)
    ] {
        app.post(
            "/auth/register",
            ANON,
            &json!({"email": email, "password": PASSWORD, "name": "Mallory"}),
        )
        .await
        .expect_problem(409, "already_exists");
    }
    // The normalised address signs in as the account it names.
    let body = app
        .login_response("\u{ff41}lice@demo.test", PASSWORD)
        .await
        .expect(200);
    assert_eq!(body["user"]["email"], "alice@demo.test");
    // Unrelated addresses register as before.
    app.register("alicia@demo.test", "Alicia").await;
}

// ---- 7g ----

#[tokio::test]
async fn finding_7g_a_driver_sees_only_deliveries() {
    let app = spawn_app().await;
    let alice = app.alice().await;
    let driver = app.login("driver@demo.test").await;
    let product = app.product_ids(RESTAURANT).await[0];
    let pickup = app.place_simple(&alice.token, RESTAURANT).await;
    let delivery = app
        .place_delivery(&alice.token, RESTAURANT, &[(product, 1)], "1 Main St")
        .await;
    // A driver lists the orders assigned to them.
    let driver_id = app.user("driver@demo.test").await.id;
    let owner = app.login("owner@demo.test").await;
    app.assign_driver(&owner, &delivery, driver_id)
        .await
        .expect(200);

    let listed = ids(&app.store_orders(&driver, RESTAURANT).await);
    assert!(listed.contains(&id(&delivery)), "{listed:?}");
    assert!(!listed.contains(&id(&pickup)), "{listed:?}");

    // The dashboard counts only what the list shows.
    let dashboard = app
        .get(&format!("/orders?store={RESTAURANT}&limit=100"), &driver)
        .await
        .expect(200);
    let every = dashboard["items"].as_array().expect("items");
    assert!(
        every.iter().all(|o| o["fulfilment"]["type"] == "delivery"),
        "{dashboard}"
    );
}

#[tokio::test]
async fn finding_7g_a_driver_cannot_read_a_pickup_order_by_id_history_or_stream() {
    let app = spawn_app().await;
    let alice = app.alice().await;
    let driver = app.login("driver@demo.test").await;
    let owner = app.login("owner@demo.test").await;
    let product = app.product_ids(RESTAURANT).await[0];
    let pickup = id(&app.place_simple(&alice.token, RESTAURANT).await);
    let delivery = id(&app
        .place_delivery(&alice.token, RESTAURANT, &[(product, 1)], "1 Main St")
        .await);

    // By id, its history, its stream: the pickup order does not exist for
    // the driver; the delivery does.
    app.get(&format!("/orders/{pickup}"), &driver)
        .await
        .expect_problem(404, "not_found");
    app.get(&format!("/orders/{pickup}/history"), &driver)
        .await
        .expect_problem(404, "not_found");
    let refused = app
        .try_sse(&format!("/orders/{pickup}/events"), Some(&driver), None)
        .await
        .err()
        .expect("the pickup order's stream is refused");
    refused.expect_problem(404, "not_found");
    app.get(&format!("/orders/{delivery}"), &driver)
        .await
        .expect(200);
    app.get(&format!("/orders/{delivery}/history"), &driver)
        .await
        .expect(200);

    // The store stream's snapshot lists deliveries only.
    let store_events = format!("/stores/{RESTAURANT}/events");
    let mut resumed = app.sse(&store_events, Some(&driver), Some(999_999)).await;
    let snapshot = resumed.next_event().await.expect("a snapshot");
    assert_eq!(snapshot.event.as_deref(), Some("snapshot"));
    let shown = snapshot.json()["orders"]
        .as_array()
        .expect("orders")
        .iter()
        .map(id)
        .collect::<Vec<_>>();
    assert!(shown.contains(&delivery), "{shown:?}");
    assert!(!shown.contains(&pickup), "{shown:?}");

    // Live, and replayed from before both changes: the pickup's change is
    // not sent; the delivery's is.
    let (mut live, from) = app.ready_sse(&store_events, Some(&driver)).await;
    app.move_order(&owner, pickup, "confirmed").await;
    app.move_order(&owner, delivery, "confirmed").await;
    let event = live
        .next_event()
        .await
        .expect("the delivery's change")
        .json();
    assert_eq!(event["order_id"], delivery, "{event}");
    assert_eq!(event["summary"]["fulfilment"], "delivery", "{event}");
    let mut replayed = app.sse(&store_events, Some(&driver), Some(from)).await;
    let event = replayed.next_event().await.expect("the delivery's change");
    assert_eq!(event.json()["order_id"], delivery, "{event:?}");
}

// ---- 7h ----

#[tokio::test]
async fn finding_7h_database_files_are_created_owner_only() {
    use std::os::unix::fs::PermissionsExt;
    let app = spawn_app().await;
    let Some(db) = app.sqlite_path() else {
        eprintln!("SKIPPED: the database is PostgreSQL; its files are the server's");
        return;
    };
    // Something written, so the WAL is in use.
    let alice = app.alice().await;
    app.place_simple(&alice.token, RESTAURANT).await;
    for suffix in ["", "-wal", "-shm"] {
        let path = format!("{}{suffix}", db.display());
        let mode = std::fs::metadata(&path)
            .unwrap_or_else(|e| panic!("{path}: {e}"))
            .permissions()
            .mode()
            & 0o777;
        assert_eq!(mode, 0o600, "{path}: {mode:o}");
    }
}
