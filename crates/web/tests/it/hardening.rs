//! Sign-in limits and store ownership under attack: concurrent wrong
//! passwords, floods of password hashing, lockouts aimed at an owner,
//! password spraying, and owners taking a store away from the platform.

use std::net::{IpAddr, Ipv4Addr};
use std::time::Duration;

use futures::future::join_all;
use ordertrack_app::SignInLimits;
use serde_json::json;

use crate::support::*;

/// A client whose connections come from `ip` (any 127.x address works on
/// Linux loopback).
fn client_from(ip: Ipv4Addr) -> reqwest::Client {
    reqwest::Client::builder()
        .local_address(IpAddr::V4(ip))
        .build()
        .expect("build an HTTP client")
}

async fn login_from(app: &TestApp, client: &reqwest::Client, email: &str, password: &str) -> Resp {
    login_forwarded(app, client, email, password, None).await
}

/// A sign-in whose request says, in `X-Forwarded-For`, whom it is for.
async fn login_forwarded(
    app: &TestApp,
    client: &reqwest::Client,
    email: &str,
    password: &str,
    forwarded_for: Option<&str>,
) -> Resp {
    let mut request = client
        .post(app.url("/auth/login"))
        .json(&json!({"email": email, "password": password}));
    if let Some(forwarded_for) = forwarded_for {
        request = request.header("x-forwarded-for", forwarded_for);
    }
    Resp::from(request.send().await.expect("send the login")).await
}

fn statuses(responses: &[Resp]) -> Vec<u16> {
    responses.iter().map(|r| r.status.as_u16()).collect()
}

/// A 429 says when to come back.
fn assert_throttled(response: &Resp) {
    response.expect_problem(429, "too_many_attempts");
    let retry_after: u64 = response
        .header("retry-after")
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| panic!("a 429 without Retry-After: {:?}", response.headers));
    assert!((1..=60).contains(&retry_after), "Retry-After {retry_after}");
}

#[tokio::test]
async fn login_throttle_is_not_raced_by_concurrent_wrong_passwords() {
    // Hashing waits as long as it takes: on a loaded machine no attempt is
    // turned away as busy, so every one is either checked or throttled.
    let app = spawn_app_guarded(Guards {
        sign_in: SignInLimits {
            hash_wait: Duration::from_secs(60),
            ..SignInLimits::default()
        },
        ..Guards::default()
    })
    .await;
    let passwords: Vec<String> = (0..30).map(|i| format!("wrong password {i}")).collect();
    let attempts = passwords
        .iter()
        .map(|password| app.login_response("alice@demo.test", password));
    let responses = join_all(attempts).await;
    let checked = responses.iter().filter(|r| r.status == 401).count();
    assert_eq!(
        checked,
        SignInLimits::default().per_account_and_ip as usize,
        "{:?}",
        statuses(&responses)
    );
    for response in responses.iter().filter(|r| r.status != 401) {
        assert_throttled(response);
    }
}

#[tokio::test]
async fn concurrent_password_hashing_is_bounded() {
    // One hash at a time, a short wait: a burst mostly gets turned away.
    let app = spawn_app_alone_guarded(Guards {
        sign_in: SignInLimits {
            concurrent_hashes: 1,
            hash_wait: Duration::from_millis(50),
            per_ip: 1_000,
            per_account_and_ip: 1_000,
            ..SignInLimits::default()
        },
        ..Guards::default()
    })
    .await;
    let before = rss_kib();
    let emails: Vec<String> = (0..64).map(|i| format!("nobody{i}@example.com")).collect();
    let attempts = emails
        .iter()
        .map(|email| app.login_response(email, "wrong password"));
    let responses = join_all(attempts).await;
    let grown_mib = rss_kib().saturating_sub(before) / 1024;
    let busy: Vec<&Resp> = responses.iter().filter(|r| r.status == 503).collect();
    assert!(
        !busy.is_empty(),
        "no request was turned away: {:?}",
        statuses(&responses)
    );
    for response in &busy {
        assert_eq!(response.content_type(), PROBLEM_JSON);
        assert_eq!(response.body["code"], "busy", "{}", response.text);
        assert!(
            response.header("retry-after").is_some(),
            "503 without Retry-After"
        );
    }
    assert!(
        responses
            .iter()
            .all(|r| matches!(r.status.as_u16(), 401 | 503)),
        "{:?}",
        statuses(&responses)
    );
    // 64 hashes at once would need over 1 GiB; one at a time, a few dozen MiB.
    assert!(grown_mib < 256, "memory grew by {grown_mib} MiB");

    // Turned-away attempts are not failures: the account still signs in,
    // and a sign-in after the burst gets its turn.
    app.login_response("alice@demo.test", PASSWORD)
        .await
        .expect(200);
}

#[tokio::test]
async fn the_right_password_from_another_ip_signs_in_while_an_account_is_under_attack() {
    let app = spawn_app().await;
    let attacker = client_from(Ipv4Addr::new(127, 0, 0, 1));
    let owner = client_from(Ipv4Addr::new(127, 0, 0, 2));
    for i in 0..SignInLimits::default().per_account_and_ip {
        login_from(&app, &attacker, "owner@demo.test", &format!("guess {i}"))
            .await
            .expect_problem(401, "bad_credentials");
    }
    // The attacker is stopped, even with the right password...
    assert_throttled(&login_from(&app, &attacker, "owner@demo.test", PASSWORD).await);
    // ...the owner, elsewhere, is not.
    login_from(&app, &owner, "owner@demo.test", PASSWORD)
        .await
        .expect(200);
}

#[tokio::test]
async fn forwarded_for_names_the_client_only_behind_a_trusted_proxy() {
    let proxy_ip = Ipv4Addr::new(127, 0, 0, 5);
    let app = spawn_app_guarded(Guards {
        trusted_proxies: vec![proxy_ip.into()],
        ..Guards::default()
    })
    .await;
    let limit = SignInLimits::default().per_account_and_ip;

    // A client talking to us directly cannot dodge the limit by claiming
    // a new address each time.
    let direct = client_from(Ipv4Addr::new(127, 0, 0, 6));
    for i in 0..limit {
        let claimed = format!("198.51.100.{i}");
        login_forwarded(&app, &direct, "owner@demo.test", "guess", Some(&claimed))
            .await
            .expect_problem(401, "bad_credentials");
    }
    let throttled = login_forwarded(
        &app,
        &direct,
        "owner@demo.test",
        PASSWORD,
        Some("192.0.2.99"),
    )
    .await;
    assert_throttled(&throttled);

    // Behind the trusted proxy, each client it names has its own limits.
    let proxy = client_from(proxy_ip);
    for _ in 0..limit {
        login_forwarded(&app, &proxy, "bob@demo.test", "guess", Some("198.51.100.1"))
            .await
            .expect_problem(401, "bad_credentials");
    }
    let attacker = login_forwarded(
        &app,
        &proxy,
        "bob@demo.test",
        PASSWORD,
        Some("198.51.100.1"),
    )
    .await;
    assert_throttled(&attacker);
    login_forwarded(
        &app,
        &proxy,
        "bob@demo.test",
        PASSWORD,
        Some("198.51.100.2"),
    )
    .await
    .expect(200);
}

#[tokio::test]
async fn spraying_one_password_across_accounts_is_limited_per_ip() {
    let app = spawn_app().await;
    let sprayer = client_from(Ipv4Addr::new(127, 0, 0, 3));
    let elsewhere = client_from(Ipv4Addr::new(127, 0, 0, 4));
    let per_ip = SignInLimits::default().per_ip;
    for i in 0..per_ip {
        login_from(
            &app,
            &sprayer,
            &format!("user{i}@example.com"),
            "Summer2026!",
        )
        .await
        .expect_problem(401, "bad_credentials");
    }
    assert_throttled(&login_from(&app, &sprayer, "alice@demo.test", "Summer2026!").await);
    assert_throttled(&login_from(&app, &sprayer, "bob@demo.test", "Summer2026!").await);
    // Other clients are not affected.
    login_from(&app, &elsewhere, "alice@demo.test", PASSWORD)
        .await
        .expect(200);
}

#[tokio::test]
async fn an_owner_cannot_take_a_platform_admins_powers() {
    let app = spawn_app().await;
    let owner = app.login("owner@demo.test").await;
    let admin = app.login("admin@demo.test").await;
    app.post(
        &format!("/stores/{RESTAURANT}/staff"),
        &owner,
        &json!({"email": "admin@demo.test", "role": "driver"}),
    )
    .await
    .expect(201);
    // Still every power an admin has there: managing staff and the catalog.
    app.get(&format!("/stores/{RESTAURANT}/staff"), &admin)
        .await
        .expect(200);
    app.post(
        &format!("/stores/{RESTAURANT}/staff"),
        &admin,
        &json!({"email": "kitchen@demo.test", "role": "manager"}),
    )
    .await
    .expect(201);
    let orders = app
        .get(&format!("/orders?store={RESTAURANT}"), &admin)
        .await;
    assert_eq!(orders.status, 200, "{}", orders.text);
}

#[tokio::test]
async fn the_last_owner_cannot_demote_or_remove_themselves() {
    let app = spawn_app().await;
    let owner = app.user("owner@demo.test").await;
    let admin = app.login("admin@demo.test").await;
    let staff_path = format!("/stores/{RESTAURANT}/staff");
    let before = app.get(&staff_path, &owner.token).await.expect(200);

    app.post(
        &staff_path,
        &owner.token,
        &json!({"email": "owner@demo.test", "role": "driver"}),
    )
    .await
    .expect_problem(409, "last_owner");
    let removed = app
        .delete(&format!("{staff_path}/{}", owner.id), &owner.token)
        .await;
    assert_eq!(removed.status, 409, "{}", removed.text);
    // Not even a platform admin leaves a store without an owner.
    app.delete(&format!("{staff_path}/{}", owner.id), &admin)
        .await
        .expect_problem(409, "last_owner");
    app.post(
        &staff_path,
        &admin,
        &json!({"email": "owner@demo.test", "role": "manager"}),
    )
    .await
    .expect_problem(409, "last_owner");
    assert_eq!(app.get(&staff_path, &owner.token).await.expect(200), before);

    // With a second owner, the first may step down.
    app.post(
        &staff_path,
        &owner.token,
        &json!({"email": "cashier@demo.test", "role": "owner"}),
    )
    .await
    .expect(201);
    app.post(
        &staff_path,
        &owner.token,
        &json!({"email": "owner@demo.test", "role": "manager"}),
    )
    .await
    .expect(201);
}
