//! Sign-in limits and store ownership under attack: concurrent wrong
//! passwords, floods of password hashing, lockouts aimed at an owner,
//! password spraying, and owners taking a store away from the platform.
//! Then the limits of the HTTP edge: slow and silent clients cut off by the
//! header, body and idle timeouts (never a live stream), connections per
//! address, live streams per user and per address, writes per session and
//! registrations per address.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::time::Duration;

use futures::future::join_all;
use futures::{SinkExt, StreamExt};
use ordertrack_app::SignInLimits;
use serde_json::{Value, json};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpSocket, TcpStream};

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
    app: &TestApp, client: &reqwest::Client, email: &str, password: &str,
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

// ---------------------------------------------------------------- the edge

/// Limits whose timeouts are short enough for a test to wait them out.
fn short_timeouts() -> Limits {
    Limits {
        header_read_timeout: Duration::from_secs(1),
        body_read_timeout: Duration::from_secs(1),
        idle_timeout: Duration::from_secs(1),
        ..Limits::default()
    }
}

fn with_limits(limits: Limits) -> Guards {
    Guards {
        limits,
        ..Guards::default()
    }
}

/// A raw connection to the server from `ip`.
async fn connect_from(app: &TestApp, ip: Ipv4Addr) -> TcpStream {
    let socket = TcpSocket::new_v4().expect("a socket");
    socket
        .bind(SocketAddr::new(ip.into(), 0))
        .expect("bind a loopback address");
    socket.connect(app.addr).await.expect("connect")
}

/// Everything the server sends until it closes the connection; panics if
/// it has not closed it within `WAIT` (a guard, not a measurement: the
/// limits under test are a second or so).
async fn read_until_closed(stream: &mut (impl AsyncRead + Unpin)) -> String {
    let mut received = Vec::new();
    let read = tokio::time::timeout(WAIT, async {
        let mut buffer = [0u8; 4096];
        loop {
            match stream.read(&mut buffer).await {
                Ok(0) | Err(_) => break,
                Ok(n) => received.extend_from_slice(&buffer[..n]),
            }
        }
    })
    .await;
    let text = String::from_utf8_lossy(&received).into_owned();
    assert!(
        read.is_ok(),
        "the server still holds the connection after {WAIT:?}; so far: {text:?}"
    );
    text
}

/// One `GET /healthz` on a kept-alive raw connection; the response head.
async fn healthz_on(stream: &mut TcpStream) -> String {
    stream
        .write_all(b"GET /healthz HTTP/1.1\r\nhost: test\r\n\r\n")
        .await
        .expect("send a request");
    let mut received = Vec::new();
    let mut buffer = [0u8; 1024];
    tokio::time::timeout(WAIT, async {
        // The health answer is small: its head and body come together.
        while !received.windows(4).any(|w| w == b"\r\n\r\n") {
            let n = stream.read(&mut buffer).await.expect("read the response");
            assert!(n > 0, "closed instead of answering");
            received.extend_from_slice(&buffer[..n]);
        }
    })
    .await
    .expect("an answer in time");
    String::from_utf8_lossy(&received).into_owned()
}

/// Sends `byte` every 100 ms, each well within any timeout of the one
/// before, until the server hangs up; what it sent before hanging up.
async fn trickle_until_closed(stream: &mut TcpStream, byte: &[u8]) -> String {
    let (mut reader, mut writer) = stream.split();
    let trickle = async {
        loop {
            tokio::time::sleep(Duration::from_millis(100)).await;
            if writer.write_all(byte).await.is_err() {
                // The server hung up: nothing more to send.
                std::future::pending::<()>().await;
            }
        }
    };
    tokio::select! {
        answer = read_until_closed(&mut reader) => answer,
        () = trickle => unreachable!("the trickle never ends by itself"),
    }
}

const SILENT_LOGIN: &[u8] = b"POST /api/v1/auth/login HTTP/1.1\r\nhost: test\r\n\
content-type: application/json\r\ncontent-length: 60000\r\n\r\n";

#[tokio::test]
async fn a_silent_request_body_is_cut_off_within_the_body_timeout() {
    let app = spawn_app_guarded(with_limits(short_timeouts())).await;
    let mut stream = connect_from(&app, Ipv4Addr::LOCALHOST).await;
    // The headers promise 60,000 bytes; none follow.
    stream.write_all(SILENT_LOGIN).await.expect("send headers");
    let answer = read_until_closed(&mut stream).await;
    assert!(answer.starts_with("HTTP/1.1 408"), "{answer}");
    assert!(answer.contains("\"code\":\"body_timeout\""), "{answer}");
}

#[tokio::test]
async fn a_trickling_request_body_is_cut_off_within_the_body_timeout() {
    // What is bounded is the whole body, not the gaps between its bytes.
    let app = spawn_app_guarded(with_limits(short_timeouts())).await;
    let mut stream = connect_from(&app, Ipv4Addr::LOCALHOST).await;
    stream.write_all(SILENT_LOGIN).await.expect("send headers");
    let answer = trickle_until_closed(&mut stream, b" ").await;
    assert!(answer.starts_with("HTTP/1.1 408"), "{answer}");
}

#[tokio::test]
async fn slow_request_headers_are_cut_off_within_the_header_timeout() {
    let app = spawn_app_guarded(with_limits(Limits {
        // Longer than the guard: only the header timeout can end this.
        idle_timeout: WAIT * 3,
        ..short_timeouts()
    }))
    .await;
    let mut stream = connect_from(&app, Ipv4Addr::LOCALHOST).await;
    stream
        .write_all(b"GET /healthz HTTP/1.1\r\n")
        .await
        .expect("send the request line");
    let answer = trickle_until_closed(&mut stream, b"x").await;
    assert_eq!(answer, "", "closed without an answer");
}

#[tokio::test]
async fn an_idle_keep_alive_connection_is_closed_after_the_idle_timeout() {
    let app = spawn_app_guarded(with_limits(Limits {
        header_read_timeout: WAIT * 3,
        ..short_timeouts()
    }))
    .await;
    let mut stream = connect_from(&app, Ipv4Addr::LOCALHOST).await;
    let head = healthz_on(&mut stream).await;
    assert!(head.starts_with("HTTP/1.1 200"), "{head}");
    // Kept alive for the next request, but none comes.
    assert_eq!(read_until_closed(&mut stream).await, "");
}

#[tokio::test]
async fn live_streams_are_not_cut_by_the_timeouts() {
    let app = spawn_app_guarded(with_limits(short_timeouts())).await;
    let owner = app.login("owner@demo.test").await;
    let alice = app.login("alice@demo.test").await;
    let burger = app.product_id(RESTAURANT, "Classic Burger").await;
    let order = id(&app.place_order(&alice, RESTAURANT, &[(burger, 1)]).await);
    let (mut sse, _) = app
        .ready_sse(&format!("/stores/{RESTAURANT}/events"), Some(&owner))
        .await;
    let mut ws = ws_open(&app, Some(&owner)).await.expect("a WebSocket");
    ws.send(tokio_tungstenite::tungstenite::Message::text(
        json!({"type": "subscribe", "id": "s", "topic": "store", "store": RESTAURANT}).to_string(),
    ))
    .await
    .expect("subscribe");
    assert_eq!(ws_next(&mut ws).await["type"], "subscribed");
    assert_eq!(ws_next(&mut ws).await["type"], "ready");

    // Quiet for longer than every timeout (and no heartbeat comes sooner
    // than 15 s), then a change: both streams are still there to see it.
    tokio::time::sleep(Duration::from_secs(3)).await;
    app.move_order(&owner, order, "confirmed").await;
    let frame = sse
        .next_event()
        .await
        .expect("the SSE stream is still open");
    assert_eq!(frame.json()["order_id"], order);
    let message = ws_next(&mut ws).await;
    assert_eq!(message["type"], "event", "{message}");
    assert_eq!(message["event"]["order_id"], order);
}

type Ws =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

/// Opens a WebSocket (signed in with `token`, if any); `Err` carries the
/// status of a refused handshake.
async fn ws_open(app: &TestApp, token: Option<&str>) -> Result<Ws, u16> {
    use tokio_tungstenite::tungstenite::Error;
    use tokio_tungstenite::tungstenite::client::IntoClientRequest;
    let mut request = format!("ws://{}/api/v1/ws", app.addr)
        .into_client_request()
        .expect("a WebSocket request");
    if let Some(token) = token {
        let bearer = format!("Bearer {token}").parse().expect("a header value");
        request.headers_mut().insert("authorization", bearer);
    }
    match tokio_tungstenite::connect_async(request).await {
        Ok((ws, _)) => Ok(ws),
        Err(Error::Http(response)) => Err(response.status().as_u16()),
        Err(other) => panic!("WebSocket handshake failed: {other}"),
    }
}

/// The next JSON message on a WebSocket.
async fn ws_next(ws: &mut Ws) -> Value {
    use tokio_tungstenite::tungstenite::Message;
    loop {
        let message = tokio::time::timeout(WAIT, ws.next())
            .await
            .expect("a WebSocket message in time")
            .expect("the socket is open")
            .expect("a message");
        if let Message::Text(text) = message {
            return serde_json::from_str(text.as_str()).expect("a JSON message");
        }
    }
}

/// A refusal for a limit: 429 problem+json with `code` and a `Retry-After`.
#[track_caller]
fn assert_limited(response: &Resp, code: &str) {
    response.expect_problem(429, code);
    let retry_after: u64 = response
        .header("retry-after")
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| panic!("a 429 without Retry-After: {:?}", response.headers));
    assert!(retry_after >= 1, "Retry-After {retry_after}");
}

/// Opens an SSE stream through `client` (whose source address it has).
async fn sse_from(
    app: &TestApp, client: &reqwest::Client, path: &str, token: Option<&str>,
) -> Result<Sse, Resp> {
    let mut request = client
        .get(app.url(path))
        .header("accept", "text/event-stream");
    if let Some(token) = token {
        request = request.bearer_auth(token);
    }
    Sse::open(request).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_401st_stream_of_one_user_is_refused_with_429() {
    let limit = Limits::default().streams_per_user;
    let files = open_files_limit();
    assert!(
        files >= 4 * limit as u64,
        "this test opens {limit} streams (both ends live in this process) and needs at least \
         {} open files; the soft limit is {files}: run `ulimit -n 65536` first (as .ci/run does)",
        4 * limit
    );
    let app = spawn_app().await;
    let owner = app.login("owner@demo.test").await;
    let store = format!("/stores/{RESTAURANT}/events");
    // Half over SSE, half over WebSocket: they are counted together.
    let sse: Vec<Sse> = futures::stream::iter(0..limit / 2)
        .map(|_| app.sse(&store, Some(&owner), None))
        .buffer_unordered(50)
        .collect()
        .await;
    let sockets: Vec<Ws> = futures::stream::iter(0..limit - limit / 2)
        .map(|_| async { ws_open(&app, Some(&owner)).await.expect("a WebSocket") })
        .buffer_unordered(50)
        .collect()
        .await;
    assert_eq!(sse.len() + sockets.len(), limit);

    let refused = app
        .try_sse(&store, Some(&owner), None)
        .await
        .err()
        .expect("the 401st stream is refused");
    assert_limited(&refused, "too_many_streams");
    assert_eq!(ws_open(&app, Some(&owner)).await.err(), Some(429));
    // A signed-in session of the same user is the same user.
    let again = app.login("owner@demo.test").await;
    let refused = app.try_sse("/me/events", Some(&again), None).await.err();
    assert_limited(&refused.expect("refused"), "too_many_streams");
    // Other users are not affected.
    let alice = app.login("alice@demo.test").await;
    app.ready_sse("/me/events", Some(&alice)).await;

    // A stream that closes gives its place back.
    drop(sse);
    tokio::time::timeout(WAIT, async {
        while app.try_sse(&store, Some(&owner), None).await.is_err() {
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    })
    .await
    .expect("room for a stream once others closed");
    drop(sockets);
}

#[tokio::test]
async fn live_streams_per_ip_are_limited_whoever_opens_them() {
    let app = spawn_app_guarded(with_limits(Limits {
        streams_per_ip: 3,
        ..Limits::default()
    }))
    .await;
    let here = client_from(Ipv4Addr::new(127, 0, 0, 1));
    let there = client_from(Ipv4Addr::new(127, 0, 0, 2));
    let alice = app.login("alice@demo.test").await;
    let bob = app.login("bob@demo.test").await;
    let burger = app.product_id(RESTAURANT, "Classic Burger").await;
    let order = app.place_order(&alice, RESTAURANT, &[(burger, 1)]).await;
    let tracking = order["tracking_token"]
        .as_str()
        .expect("a tracking token")
        .to_owned();
    let track = format!("/track/{tracking}/events");

    let mut open = Vec::new();
    open.push(sse_from(&app, &here, "/me/events", Some(&alice)).await.ok());
    open.push(sse_from(&app, &here, "/me/events", Some(&bob)).await.ok());
    // Signed out, too.
    open.push(sse_from(&app, &here, &track, None).await.ok());
    assert!(open.iter().all(Option::is_some), "three streams open");
    let refused = sse_from(&app, &here, &track, None).await.err();
    assert_limited(&refused.expect("the fourth is refused"), "too_many_streams");
    let refused = sse_from(&app, &here, "/me/events", Some(&bob)).await.err();
    assert_limited(&refused.expect("whoever asks"), "too_many_streams");
    // Another address has its own share.
    if let Err(refused) = sse_from(&app, &there, "/me/events", Some(&bob)).await {
        panic!("a stream from elsewhere refused: {}", refused.text);
    }
}

#[tokio::test]
async fn connections_per_ip_are_capped_when_accepted() {
    let proxy = Ipv4Addr::new(127, 0, 0, 5);
    let app = spawn_app_guarded(Guards {
        limits: Limits {
            connections_per_ip: 3,
            ..Limits::default()
        },
        trusted_proxies: vec![proxy.into()],
        ..Guards::default()
    })
    .await;
    let here = Ipv4Addr::new(127, 0, 0, 6);
    let mut held = Vec::new();
    for _ in 0..3 {
        let mut stream = connect_from(&app, here).await;
        // Answered: the server has accepted and counted it.
        assert!(healthz_on(&mut stream).await.starts_with("HTTP/1.1 200"));
        held.push(stream);
    }
    let mut fourth = connect_from(&app, here).await;
    let refused = read_until_closed(&mut fourth).await;
    assert!(refused.starts_with("HTTP/1.1 429"), "{refused}");
    assert!(refused.contains("retry-after: "), "{refused}");
    assert!(refused.contains("too_many_connections"), "{refused}");

    // Elsewhere is not affected, and a trusted proxy (all its clients
    // share its address) is not counted.
    let mut elsewhere = connect_from(&app, Ipv4Addr::new(127, 0, 0, 7)).await;
    assert!(healthz_on(&mut elsewhere).await.starts_with("HTTP/1.1 200"));
    let mut through_proxy = Vec::new();
    for _ in 0..5 {
        let mut stream = connect_from(&app, proxy).await;
        assert!(healthz_on(&mut stream).await.starts_with("HTTP/1.1 200"));
        through_proxy.push(stream);
    }

    // A connection that closes gives its place back.
    drop(held.pop());
    tokio::time::timeout(WAIT, async {
        loop {
            let mut stream = connect_from(&app, here).await;
            let mut buffer = [0u8; 16];
            stream
                .write_all(b"GET /healthz HTTP/1.1\r\nhost: test\r\n\r\n")
                .await
                .ok();
            if let Ok(n) = stream.read(&mut buffer).await
                && buffer[..n].starts_with(b"HTTP/1.1 200")
            {
                break;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    })
    .await
    .expect("room for a connection once one closed");
}

#[tokio::test]
async fn one_session_makes_at_most_its_share_of_writes_a_minute() {
    let app = spawn_app_guarded(with_limits(Limits {
        writes_per_token: 3,
        ..Limits::default()
    }))
    .await;
    let alice = app.login("alice@demo.test").await;
    let burger = app.product_id(RESTAURANT, "Classic Burger").await;
    let order = pickup(RESTAURANT, &[(burger, 1)]);
    for _ in 0..3 {
        app.place(&alice, &order).await.expect(201);
    }
    assert_limited(&app.place(&alice, &order).await, "too_many_writes");
    // Every write counts, whatever it is; reads do not.
    assert_limited(
        &app.post_empty("/auth/logout", &alice).await,
        "too_many_writes",
    );
    app.get("/auth/me", &alice).await.expect(200);
    // Other sessions have their own share.
    let bob = app.login("bob@demo.test").await;
    app.place(&bob, &order).await.expect(201);
}

#[tokio::test]
async fn registrations_are_limited_per_ip() {
    let app = spawn_app_guarded(Guards {
        sign_in: SignInLimits {
            registrations_per_ip: 2,
            ..SignInLimits::default()
        },
        ..Guards::default()
    })
    .await;
    let here = client_from(Ipv4Addr::new(127, 0, 0, 8));
    let there = client_from(Ipv4Addr::new(127, 0, 0, 9));
    let register = |client: &reqwest::Client, email: &str| {
        let request = client.post(app.url("/auth/register")).json(&json!({
            "email": email, "password": PASSWORD, "name": "New Customer"
        }));
        async move { Resp::from(request.send().await.expect("send")).await }
    };
    // Refused input costs nothing and does not count.
    for _ in 0..3 {
        register(&here, "not an email").await.expect(422);
    }
    register(&here, "one@example.com").await.expect(201);
    register(&here, "two@example.com").await.expect(201);
    assert_limited(
        &register(&here, "three@example.com").await,
        "too_many_registrations",
    );
    register(&there, "three@example.com").await.expect(201);
}
