//! Harness for the stream tests: a real server on an ephemeral port over a
//! fresh database (SQLite in a temporary directory; or, with
//! `ORDERTRACK_TEST_BACKEND=postgres`, PostgreSQL in a throw-away schema),
//! an SSE client that parses frames off the wire, and small helpers for the
//! calls the tests make.
#![allow(dead_code)]

use std::sync::Arc;
use std::time::Duration;

use bytes::BytesMut;
use futures::StreamExt;
use ordertrack_app::orders::OrderRequest;
use ordertrack_app::{App, AuthConfig, Caller};
use ordertrack_domain::{Fulfilment, FulfilmentKind, ItemStatus, RequestedLine};
use ordertrack_realtime::Hub;
use ordertrack_store::conformance::TestSchema;
use ordertrack_store::sqlite::SqliteOptions;
use ordertrack_store::{CommitListener, EventFilter, SqliteStore, Store, StoredEvent};
use ordertrack_web::AppState;
use reqwest::StatusCode;
use reqwest::header::{AUTHORIZATION, HeaderMap};
use serde_json::{Value, json};
use tempfile::TempDir;
use tokio::net::TcpListener;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

/// The password of every demo account and every account the tests create.
pub const PASSWORD: &str = ordertrack_app::demo::DEMO_PASSWORD;
pub const RESTAURANT: &str = "demo-restaurant";
pub const SHOP: &str = "demo-shop";
/// How long anything that should happen "at once" may take, generously.
pub const WAIT: Duration = Duration::from_secs(10);

const SECRET: &[u8] = b"stream-tests-secret-0123456789-abcdefghijklmn";

/// A running server. Dropping it stops the server and deletes its database.
pub struct Server {
    /// `http://127.0.0.1:PORT`
    pub base: String,
    pub addr: std::net::SocketAddr,
    pub client: reqwest::Client,
    /// The application behind the server (its hub).
    pub app: App,
    /// Its store: the truth the streams are checked against.
    pub store: Arc<dyn Store>,
    shutdown: Option<oneshot::Sender<()>>,
    served: Option<JoinHandle<std::io::Result<()>>>,
    db: TestDb,
}

/// Where a server's data lives; dropping it deletes the database.
pub enum TestDb {
    /// The directory holding `ordertrack.db`.
    Sqlite(TempDir),
    Postgres(Box<TestSchema>),
}

const SQLITE_FILE: &str = "ordertrack.db";

/// A fresh, migrated store on the backend `ORDERTRACK_TEST_BACKEND` names
/// (`sqlite`, the default, or `postgres`), reporting commits to `listener`.
pub async fn open_test_store(listener: Arc<dyn CommitListener>) -> (Arc<dyn Store>, TestDb) {
    match std::env::var("ORDERTRACK_TEST_BACKEND").as_deref() {
        Ok("postgres") => {
            let schema = TestSchema::create()
                .await
                .unwrap_or_else(|why| panic!("ORDERTRACK_TEST_BACKEND=postgres but {why}"));
            let store = schema.open(8, Some(listener)).await;
            (Arc::new(store), TestDb::Postgres(Box::new(schema)))
        }
        Ok("sqlite") | Ok("") | Err(_) => {
            let dir = tempfile::tempdir().expect("a temporary directory");
            let store = SqliteStore::open(
                &dir.path().join(SQLITE_FILE),
                SqliteOptions {
                    listener: Some(listener),
                    ..SqliteOptions::default()
                },
            )
            .expect("open the database");
            (Arc::new(store), TestDb::Sqlite(dir))
        }
        Ok(other) => panic!("ORDERTRACK_TEST_BACKEND={other}: expected sqlite or postgres"),
    }
}

/// A seeded server whose sessions last an hour.
pub async fn spawn() -> Server {
    spawn_with_ttl(time::Duration::hours(1)).await
}

/// A seeded server whose sessions last `token_ttl`.
pub async fn spawn_with_ttl(token_ttl: time::Duration) -> Server {
    // Wired exactly like the binary's `open_app`: the hub hears every commit.
    let hub = Hub::new();
    let (store, db) = open_test_store(Arc::new(hub.clone())).await;
    let app = App::new(
        store.clone(),
        hub,
        AuthConfig {
            secret: SECRET.to_vec(),
            token_ttl,
        },
    );
    assert!(
        ordertrack_app::demo::seed(&app).await.expect("seed"),
        "fresh database"
    );
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("address");
    let (shutdown, stop) = oneshot::channel::<()>();
    let state = AppState { app: app.clone() };
    let served = tokio::spawn(ordertrack_web::serve(listener, state, async move {
        let _ = stop.await;
    }));
    Server {
        base: format!("http://{addr}"),
        addr,
        client: reqwest::Client::builder()
            .pool_max_idle_per_host(8)
            .build()
            .expect("client"),
        app,
        store,
        shutdown: Some(shutdown),
        served: Some(served),
        db,
    }
}

impl Server {
    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    pub fn hub(&self) -> &Hub {
        self.app.hub()
    }

    /// A second, independent store over this server's database (the same
    /// SQLite file, or the same PostgreSQL schema), as after a restart.
    pub async fn reopen_store(&self) -> Arc<dyn Store> {
        match &self.db {
            TestDb::Sqlite(dir) => Arc::new(
                SqliteStore::open(&dir.path().join(SQLITE_FILE), SqliteOptions::default())
                    .expect("reopen"),
            ),
            TestDb::Postgres(schema) => Arc::new(schema.open(1, None).await),
        }
    }

    /// Starts the graceful shutdown; returns the serve task to await.
    pub fn shut_down(&mut self) -> JoinHandle<std::io::Result<()>> {
        let _ = self.shutdown.take().expect("not yet shut down").send(());
        self.served.take().expect("serving")
    }

    // ---- plain HTTP ----

    pub fn request(
        &self,
        method: reqwest::Method,
        path: &str,
        token: Option<&str>,
    ) -> reqwest::RequestBuilder {
        let builder = self.client.request(method, self.url(path));
        match token {
            Some(token) => builder.header(AUTHORIZATION, format!("Bearer {token}")),
            None => builder,
        }
    }

    pub async fn get(&self, path: &str, token: &str) -> Resp {
        Resp::of(self.request(reqwest::Method::GET, path, Some(token))).await
    }

    pub async fn post(&self, path: &str, token: &str, body: &Value) -> Resp {
        Resp::of(
            self.request(reqwest::Method::POST, path, Some(token))
                .json(body),
        )
        .await
    }

    pub async fn patch(&self, path: &str, token: &str, body: &Value) -> Resp {
        Resp::of(
            self.request(reqwest::Method::PATCH, path, Some(token))
                .json(body),
        )
        .await
    }

    pub async fn delete(&self, path: &str, token: &str) -> Resp {
        Resp::of(self.request(reqwest::Method::DELETE, path, Some(token))).await
    }

    /// Signs in over HTTP; returns the bearer token.
    pub async fn login(&self, email: &str) -> String {
        let resp = Resp::of(
            self.request(reqwest::Method::POST, "/api/v1/auth/login", None)
                .json(&json!({"email": email, "password": PASSWORD})),
        )
        .await;
        assert_eq!(resp.status, StatusCode::OK, "login {email}: {}", resp.text);
        resp.body["token"].as_str().expect("token").to_owned()
    }

    /// Registers a customer over HTTP; returns (token, user id).
    pub async fn register(&self, email: &str, name: &str) -> (String, i64) {
        let resp = Resp::of(
            self.request(reqwest::Method::POST, "/api/v1/auth/register", None)
                .json(&json!({"email": email, "password": PASSWORD, "name": name})),
        )
        .await;
        assert_eq!(resp.status, StatusCode::CREATED, "register: {}", resp.text);
        (
            resp.body["token"].as_str().expect("token").to_owned(),
            resp.body["user"]["id"].as_i64().expect("id"),
        )
    }

    /// The caller behind a token, for calling the App directly.
    pub async fn caller(&self, token: &str) -> Caller {
        self.app.authenticate(token).await.expect("a valid token")
    }

    /// The product ids of a store, by name.
    pub async fn product(&self, store: &str, name: &str) -> i64 {
        let found = self
            .app
            .store_with_products(store)
            .await
            .expect("store exists");
        found
            .products
            .iter()
            .find(|p| p.name == name)
            .unwrap_or_else(|| panic!("{store} sells {name}"))
            .id
    }

    /// Places a pickup order over HTTP; returns the order body.
    pub async fn place(&self, token: &str, store: &str, products: &[i64]) -> Value {
        let items: Vec<Value> = products
            .iter()
            .map(|p| json!({"product": p, "quantity": 1}))
            .collect();
        let resp = self
            .post(
                "/api/v1/orders",
                token,
                &json!({"store": store, "items": items, "fulfilment": {"type": "pickup"}}),
            )
            .await;
        assert_eq!(resp.status, StatusCode::CREATED, "place: {}", resp.text);
        resp.body
    }

    /// Moves an order over HTTP; returns the order body.
    pub async fn transition(&self, token: &str, order: i64, to: &str) -> Value {
        let resp = self
            .post(
                &format!("/api/v1/orders/{order}/transitions"),
                token,
                &json!({"to": to}),
            )
            .await;
        assert_eq!(
            resp.status,
            StatusCode::OK,
            "transition to {to}: {}",
            resp.text
        );
        resp.body
    }

    /// Sets an item's status over HTTP; returns the order body.
    pub async fn set_item(&self, token: &str, order: i64, item: i64, status: &str) -> Value {
        let resp = self
            .patch(
                &format!("/api/v1/orders/{order}/items/{item}"),
                token,
                &json!({"status": status}),
            )
            .await;
        assert_eq!(
            resp.status,
            StatusCode::OK,
            "item {item} to {status}: {}",
            resp.text
        );
        resp.body
    }

    /// Places a pickup order through the App (fast, for bulk changes).
    pub async fn place_direct(
        &self,
        caller: &Caller,
        store: &str,
        products: &[i64],
    ) -> (i64, Vec<i64>) {
        let placed = self
            .app
            .place_order(
                caller,
                OrderRequest {
                    store: store.to_owned(),
                    items: products
                        .iter()
                        .map(|p| RequestedLine {
                            product: *p,
                            quantity: 1,
                            notes: None,
                        })
                        .collect(),
                    fulfilment: Fulfilment {
                        kind: FulfilmentKind::Pickup,
                        address: None,
                    },
                    notes: None,
                },
                None,
            )
            .await
            .expect("place an order");
        let order = placed.order;
        (order.id, order.items.iter().map(|i| i.id).collect())
    }

    /// Sets an item's status through the App.
    pub async fn set_item_direct(
        &self,
        caller: &Caller,
        order: i64,
        item: i64,
        status: ItemStatus,
    ) {
        self.app
            .set_item_status(caller, order, item, status)
            .await
            .expect("set the item status");
    }

    /// The newest event position.
    pub async fn position(&self) -> i64 {
        self.store.last_event_position().await.expect("position")
    }

    /// The truth: every event of `filter` after `after`, in commit order.
    pub async fn events_after(&self, filter: EventFilter, after: i64) -> Vec<StoredEvent> {
        self.store
            .events_after(filter, after, 1_000_000)
            .await
            .expect("events")
    }

    // ---- streams ----

    /// Opens an SSE stream; `Err` carries the refusal.
    pub async fn try_sse(
        &self,
        path: &str,
        token: Option<&str>,
        last_event_id: Option<i64>,
    ) -> Result<Sse, Resp> {
        let mut builder = self
            .request(reqwest::Method::GET, path, token)
            .header("accept", "text/event-stream");
        if let Some(id) = last_event_id {
            builder = builder.header("last-event-id", id.to_string());
        }
        Sse::open(builder).await
    }

    /// Opens an SSE stream that must be accepted.
    pub async fn sse(&self, path: &str, token: Option<&str>, last_event_id: Option<i64>) -> Sse {
        match self.try_sse(path, token, last_event_id).await {
            Ok(sse) => sse,
            Err(resp) => panic!("{path} refused: {} {}", resp.status, resp.text),
        }
    }

    /// Opens a fresh stream and waits for its `ready` frame; returns the stream
    /// and the position it announced.
    pub async fn ready_sse(&self, path: &str, token: Option<&str>) -> (Sse, i64) {
        let mut sse = self.sse(path, token, None).await;
        let ready = sse.next_event().await.expect("a ready frame");
        assert_eq!(ready.event.as_deref(), Some("ready"), "{ready:?}");
        let position = ready.id_num();
        (sse, position)
    }
}

/// A complete response.
#[derive(Debug)]
pub struct Resp {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub text: String,
    pub body: Value,
}

impl Resp {
    pub async fn of(builder: reqwest::RequestBuilder) -> Resp {
        let response = builder.send().await.expect("send the request");
        Resp::read(response).await
    }

    pub async fn read(response: reqwest::Response) -> Resp {
        let status = response.status();
        let headers = response.headers().clone();
        let text = response.text().await.expect("read the body");
        let body = serde_json::from_str(&text).unwrap_or(Value::Null);
        Resp {
            status,
            headers,
            text,
            body,
        }
    }

    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }
}

/// One SSE frame as the client parsed it (fields per the SSE spec).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Frame {
    pub id: Option<String>,
    pub event: Option<String>,
    /// `data:` lines joined with `\n`.
    pub data: Option<String>,
    pub retry: Option<u64>,
    /// Comment lines (`: heartbeat`).
    pub comments: Vec<String>,
}

impl Frame {
    /// A frame that only keeps the connection warm.
    pub fn is_comment(&self) -> bool {
        self.id.is_none() && self.event.is_none() && self.data.is_none() && self.retry.is_none()
    }

    /// A frame that only sets the reconnection delay.
    pub fn is_retry_only(&self) -> bool {
        self.retry.is_some() && self.id.is_none() && self.event.is_none() && self.data.is_none()
    }

    pub fn id_num(&self) -> i64 {
        self.id
            .as_deref()
            .and_then(|id| id.parse().ok())
            .unwrap_or_else(|| panic!("a numeric id in {self:?}"))
    }

    pub fn json(&self) -> Value {
        serde_json::from_str(self.data.as_deref().unwrap_or_default())
            .unwrap_or_else(|e| panic!("JSON data in {self:?}: {e}"))
    }
}

/// Splits an SSE byte stream into frames, per the SSE spec.
#[derive(Default)]
pub struct FrameParser {
    buffer: BytesMut,
    pending: Frame,
}

impl FrameParser {
    pub fn push(&mut self, bytes: &[u8]) {
        self.buffer.extend_from_slice(bytes);
    }

    /// The next complete frame, if one has arrived.
    pub fn next_frame(&mut self) -> Option<Frame> {
        loop {
            let newline = self.buffer.iter().position(|b| *b == b'\n')?;
            let mut line = self.buffer.split_to(newline + 1);
            line.truncate(newline);
            if line.last() == Some(&b'\r') {
                line.truncate(line.len() - 1);
            }
            let line = String::from_utf8(line.to_vec()).expect("UTF-8 stream");
            if line.is_empty() {
                let frame = std::mem::take(&mut self.pending);
                if frame != Frame::default() {
                    return Some(frame);
                }
                continue;
            }
            if let Some(comment) = line.strip_prefix(':') {
                self.pending.comments.push(comment.trim().to_owned());
                continue;
            }
            let (field, value) = match line.split_once(':') {
                Some((field, value)) => (field, value.strip_prefix(' ').unwrap_or(value)),
                None => (line.as_str(), ""),
            };
            match field {
                "id" => self.pending.id = Some(value.to_owned()),
                "event" => self.pending.event = Some(value.to_owned()),
                "data" => {
                    let data = self.pending.data.get_or_insert_with(String::new);
                    if !data.is_empty() {
                        data.push('\n');
                    }
                    data.push_str(value);
                }
                "retry" => self.pending.retry = value.parse().ok(),
                other => panic!("unknown SSE field {other:?} in {line:?}"),
            }
        }
    }
}

/// An open SSE stream, parsed incrementally off the wire.
pub struct Sse {
    pub status: StatusCode,
    pub headers: HeaderMap,
    body: futures::stream::BoxStream<'static, reqwest::Result<bytes::Bytes>>,
    parser: FrameParser,
    pub ended: bool,
}

impl Sse {
    pub async fn open(builder: reqwest::RequestBuilder) -> Result<Sse, Resp> {
        let response = builder.send().await.expect("send the stream request");
        if response.status() != StatusCode::OK {
            return Err(Resp::read(response).await);
        }
        Ok(Sse {
            status: response.status(),
            headers: response.headers().clone(),
            body: response.bytes_stream().boxed(),
            parser: FrameParser::default(),
            ended: false,
        })
    }

    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }

    /// The next frame of any kind, `None` at the end of the stream. Panics
    /// if nothing arrives within [`WAIT`].
    pub async fn next_frame(&mut self) -> Option<Frame> {
        self.next_frame_within(WAIT)
            .await
            .expect("a frame (or the end of the stream) arrives in time")
    }

    /// The next frame within `wait`: `Err` on timeout, `Ok(None)` at the end.
    pub async fn next_frame_within(&mut self, wait: Duration) -> Result<Option<Frame>, ()> {
        let deadline = tokio::time::Instant::now() + wait;
        loop {
            if let Some(frame) = self.parser.next_frame() {
                return Ok(Some(frame));
            }
            if self.ended {
                return Ok(None);
            }
            match tokio::time::timeout_at(deadline, self.body.next()).await {
                Err(_) => return Err(()),
                Ok(Some(Ok(chunk))) => self.parser.push(&chunk),
                // A reset connection ends the stream like a clean end does.
                Ok(Some(Err(_))) | Ok(None) => self.ended = true,
            }
        }
    }

    /// The next frame that is not a comment or a bare `retry:`.
    pub async fn next_event(&mut self) -> Option<Frame> {
        loop {
            let frame = self.next_frame().await?;
            if !frame.is_comment() && !frame.is_retry_only() {
                return Some(frame);
            }
        }
    }

    /// The next event within `wait`; `Err` on timeout.
    pub async fn next_event_within(&mut self, wait: Duration) -> Result<Option<Frame>, ()> {
        let deadline = tokio::time::Instant::now() + wait;
        loop {
            let left = deadline.saturating_duration_since(tokio::time::Instant::now());
            match self.next_frame_within(left).await? {
                Some(frame) if frame.is_comment() || frame.is_retry_only() => continue,
                other => return Ok(other),
            }
        }
    }

    /// The next `n` events (panics if the stream ends first).
    pub async fn events(&mut self, n: usize) -> Vec<Frame> {
        let mut frames = Vec::with_capacity(n);
        while frames.len() < n {
            let frame = self
                .next_event()
                .await
                .unwrap_or_else(|| panic!("stream ended after {} of {n} events", frames.len()));
            frames.push(frame);
        }
        frames
    }

    /// Waits for the end of the stream; returns the frames (other than
    /// comments) that came before it.
    pub async fn until_end(&mut self) -> Vec<Frame> {
        let mut seen = Vec::new();
        while let Some(frame) = self.next_frame().await {
            if !frame.is_comment() {
                seen.push(frame);
            }
        }
        seen
    }
}

/// The resident set size of this process (the server runs in it), in KiB.
pub fn rss_kib() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").expect("/proc/self/status");
    status
        .lines()
        .find_map(|line| line.strip_prefix("VmRSS:"))
        .and_then(|rest| rest.trim().trim_end_matches("kB").trim().parse().ok())
        .expect("VmRSS in /proc/self/status")
}

/// The soft limit on open files of this process.
pub fn open_files_limit() -> u64 {
    let limits = std::fs::read_to_string("/proc/self/limits").expect("/proc/self/limits");
    limits
        .lines()
        .find(|line| line.starts_with("Max open files"))
        .and_then(|line| line.split_whitespace().nth(3))
        .and_then(|soft| soft.parse().ok())
        .unwrap_or(u64::MAX)
}

/// A tiny deterministic PRNG (xorshift64*), so runs can be replayed from the seed.
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Rng {
        Rng(seed.max(1))
    }

    /// A seed from the clock, printed so a failing run can be repeated.
    pub fn from_clock(label: &str) -> Rng {
        let seed = std::env::var("STREAM_TEST_SEED")
            .ok()
            .and_then(|s| s.parse().ok())
            .unwrap_or_else(|| {
                std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .map(|d| d.as_nanos() as u64)
                    .unwrap_or(1)
            });
        println!("{label}: STREAM_TEST_SEED={seed}");
        Rng::new(seed)
    }

    pub fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    /// A number in `range`.
    pub fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }

    pub fn between(&mut self, low: u64, high: u64) -> u64 {
        low + self.below(high - low + 1)
    }
}

/// An HTTP/1.1 response read off a raw socket: the head, then the chunked
/// body fed to an SSE parser.
#[derive(Default)]
pub struct RawResponse {
    pub head: Option<String>,
    buffer: BytesMut,
    pub frames: FrameParser,
    /// The terminating zero-size chunk arrived: the server ended the stream.
    pub finished: bool,
    pub body_bytes: usize,
}

impl RawResponse {
    pub fn push(&mut self, bytes: &[u8]) {
        self.buffer.extend_from_slice(bytes);
        if self.head.is_none() {
            let Some(end) = self.buffer.windows(4).position(|w| w == b"\r\n\r\n") else {
                return;
            };
            let head = self.buffer.split_to(end + 4);
            self.head = Some(String::from_utf8_lossy(&head).into_owned());
        }
        while !self.finished {
            let Some(line_end) = self.buffer.windows(2).position(|w| w == b"\r\n") else {
                return;
            };
            let line = std::str::from_utf8(&self.buffer[..line_end]).expect("chunk size line");
            let size = usize::from_str_radix(line.split(';').next().unwrap_or("").trim(), 16)
                .unwrap_or_else(|_| panic!("a chunk size, not {line:?}"));
            if self.buffer.len() < line_end + 2 + size + 2 {
                return;
            }
            let _ = self.buffer.split_to(line_end + 2);
            let data = self.buffer.split_to(size);
            let _ = self.buffer.split_to(2);
            if size == 0 {
                self.finished = true;
            } else {
                self.body_bytes += size;
                self.frames.push(&data);
            }
        }
    }
}
