//! HTTPS served by the order desk itself (issue 16): HTTP/2 by ALPN, many
//! live streams on one connection, `Secure` cookies and HSTS, and a browser
//! following an order live over HTTPS.

use std::time::Duration;

use ordertrack_web::{Limits, TlsFiles};
use reqwest::Version;
use serde_json::json;
use tempfile::TempDir;

use crate::support::*;

/// A self-signed certificate for `localhost`, in a folder that lives as
/// long as the returned guard.
fn certificate() -> (TempDir, TlsFiles) {
    let dir = tempfile::tempdir().expect("a temporary directory");
    let generated =
        rcgen::generate_simple_self_signed(vec!["localhost".to_owned()]).expect("a certificate");
    let files = TlsFiles {
        cert: dir.path().join("cert.pem"),
        key: dir.path().join("key.pem"),
    };
    std::fs::write(&files.cert, generated.cert.pem()).expect("write the certificate");
    std::fs::write(&files.key, generated.key_pair.serialize_pem()).expect("write the key");
    (dir, files)
}

/// A demo server on HTTPS; with `connections_per_ip`, that many
/// connections from this client at most.
async fn https_app(files: &TlsFiles, connections_per_ip: usize) -> TestApp {
    spawn_app_guarded(Guards {
        tls: Some(files.clone()),
        limits: Limits {
            connections_per_ip,
            ..Limits::default()
        },
        ..Guards::default()
    })
    .await
}

#[tokio::test]
async fn ten_streams_share_one_http2_connection_and_all_receive_a_change() {
    let (_dir, files) = certificate();
    // One connection per client address: ten streams fit only if HTTP/2
    // carries them all on it.
    let app = https_app(&files, 1).await;
    assert!(app.base.starts_with("https://"), "{}", app.base);
    let owner = app.login("owner@demo.test").await;
    let response = app
        .client
        .get(app.url("/stores/demo-restaurant"))
        .bearer_auth(&owner)
        .send()
        .await
        .expect("GET over HTTPS");
    assert_eq!(response.status(), 200);
    assert_eq!(response.version(), Version::HTTP_2);
    assert_eq!(
        response
            .headers()
            .get("strict-transport-security")
            .and_then(|value| value.to_str().ok()),
        Some("max-age=31536000")
    );

    let mut streams = Vec::new();
    for _ in 0..10 {
        let (sse, _) = app
            .ready_sse("/stores/demo-restaurant/events", Some(&owner))
            .await;
        streams.push(sse);
    }
    let alice = app.login("alice@demo.test").await;
    let products = app.product_ids("demo-restaurant").await;
    let order = app
        .post(
            "/orders",
            &alice,
            &pickup("demo-restaurant", &[(products[0], 1)]),
        )
        .await
        .expect(201);
    for sse in &mut streams {
        let event = tokio::time::timeout(Duration::from_secs(10), sse.next_event())
            .await
            .expect("the change arrives")
            .expect("an event");
        assert_eq!(event.json()["order_id"], order["id"], "{event:?}");
    }
}

#[tokio::test]
async fn cookies_set_over_https_are_secure() {
    let (_dir, files) = certificate();
    let app = https_app(&files, 0).await;
    let response = app
        .client
        .post(app.url("/auth/login"))
        .json(&json!({"email": "alice@demo.test", "password": PASSWORD}))
        .send()
        .await
        .expect("sign in over HTTPS");
    assert_eq!(response.status(), 200);
    let cookie = response
        .headers()
        .get("set-cookie")
        .and_then(|value| value.to_str().ok())
        .expect("a session cookie")
        .to_owned();
    assert!(cookie.starts_with("__Host-ordertrack_session="), "{cookie}");
    assert!(cookie.contains("; Secure"), "{cookie}");

    // Over plain HTTP neither the cookie nor the answer claims HTTPS.
    let plain = spawn_app().await;
    let response = plain
        .client
        .post(plain.url("/auth/login"))
        .json(&json!({"email": "alice@demo.test", "password": PASSWORD}))
        .send()
        .await
        .expect("sign in over HTTP");
    let cookie = response
        .headers()
        .get("set-cookie")
        .and_then(|value| value.to_str().ok())
        .unwrap_or_default()
        .to_owned();
    assert!(!cookie.contains("Secure"), "{cookie}");
    assert!(
        response
            .headers()
            .get("strict-transport-security")
            .is_none()
    );
}

#[tokio::test]
async fn the_order_page_over_https_follows_a_change_live() {
    let Some(chrome) = Chrome::launch().await else {
        return;
    };
    let (_dir, files) = certificate();
    let server = https_app(&files, 0).await;
    let alice_token = server.login("alice@demo.test").await;
    let cashier = server.login("cashier@demo.test").await;
    let order = server
        .order_dishes(&alice_token, &[("Classic Burger", 1)], "pickup")
        .await;
    let id = id(&order);

    let alice = chrome.person().await;
    let customer = &alice.page;
    sign_in(customer, &server, "alice@demo.test").await;
    goto(customer, &server.page_url(&format!("/orders/{id}"))).await;
    assert_eq!(
        eval(customer, "location.protocol").await,
        serde_json::Value::String("https:".into())
    );
    wait_live(customer).await;
    mark(customer).await;
    server.move_order(&cashier, id, "confirmed").await;
    wait_for(
        customer,
        "document.querySelector('#tracker .status-label')?.textContent.trim() === 'Confirmed'",
        PATIENCE,
    )
    .await;
    assert_not_reloaded(customer).await;
    chrome.close().await;
}
