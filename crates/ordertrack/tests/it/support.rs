//! The binary as its users run it: `ordertrack` processes with nothing of
//! the caller's environment, their output collected line by line, the few
//! HTTP calls the tests make against them, and the store's event stream as
//! a client follows it.

use std::io::{BufRead, BufReader, Read};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc::{self, Receiver, Sender};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use futures::StreamExt;
use reqwest::StatusCode;
use serde_json::{Value, json};
use tokio::sync::mpsc::UnboundedSender;

/// The password of every demo account.
pub const DEMO_PASSWORD: &str = "demo-password";
/// The demo restaurant.
pub const RESTAURANT: &str = "demo-restaurant";

/// Settings from the environment that would change what the binary does.
const ENV: &[&str] = &[
    "ORDERTRACK_BIND",
    "ORDERTRACK_DATA_DIR",
    "ORDERTRACK_DATABASE_URL",
    "ORDERTRACK_DB_POOL_SIZE",
    "ORDERTRACK_DB_TIMEOUT_SECS",
    "ORDERTRACK_SECRET",
    "ORDERTRACK_NEW_PASSWORD",
    "ORDERTRACK_LOG",
    "ORDERTRACK_NATS_URL",
    "ORDERTRACK_NATS_SUBJECT",
    "ORDERTRACK_STORE_SIGNUP",
    "ORDERTRACK_LOG_FORMAT",
    "ORDERTRACK_METRICS_TOKEN",
    "ORDERTRACK_TLS_CERT",
    "ORDERTRACK_TLS_KEY",
    "ORDERTRACK_PUBLIC_URL",
];

/// `ordertrack <args> --data-dir <data_dir>`, without the caller's settings.
pub fn ordertrack(args: &[&str], data_dir: &Path) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_ordertrack"));
    command.args(args).arg("--data-dir").arg(data_dir);
    for name in ENV {
        command.env_remove(name);
    }
    command.env("NO_COLOR", "1").stdin(Stdio::null());
    command
}

/// `ordertrack <mode>` (`serve` or `demo`) on an ephemeral port.
pub fn serving(mode: &str, data_dir: &Path) -> Command {
    ordertrack(&[mode, "--bind", "127.0.0.1:0"], data_dir)
}

/// A running `ordertrack` process, killed when dropped.
pub struct Server {
    child: Child,
    /// `http://127.0.0.1:PORT`, as it printed it.
    pub base: String,
    lines: Receiver<String>,
    output: Arc<Mutex<Vec<String>>>,
}

/// Copies the lines of `stream` to `lines` and `output`.
fn forward(
    stream: impl Read + Send + 'static, lines: Sender<String>, output: Arc<Mutex<Vec<String>>>,
) {
    std::thread::spawn(move || {
        // Keep draining so the child never blocks on a full pipe.
        for line in BufReader::new(stream).lines() {
            let Ok(line) = line else { break };
            output.lock().expect("output").push(line.clone());
            let _ = lines.send(line);
        }
    });
}

impl Server {
    /// Starts `command` (see [`serving`]) and waits for the line announcing
    /// its URL.
    pub fn start(command: &mut Command) -> Server {
        let mut child = command
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start ordertrack");
        let (sender, lines) = mpsc::channel();
        let output = Arc::new(Mutex::new(Vec::new()));
        forward(
            child.stdout.take().expect("stdout"),
            sender.clone(),
            output.clone(),
        );
        forward(child.stderr.take().expect("stderr"), sender, output.clone());
        let mut server = Server {
            child,
            base: String::new(),
            lines,
            output,
        };
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let Some(line) = server.next_line(deadline) else {
                panic!(
                    "ordertrack never said where it listens; output:\n{}",
                    server.output()
                );
            };
            if let Some(url) = line.trim().strip_prefix("ordertrack listening on ") {
                assert!(url.starts_with("http://127.0.0.1:"), "unexpected URL {url}");
                server.base = url.trim_end_matches('/').to_owned();
                return server;
            }
        }
    }

    /// The next line of output, waiting until `deadline` at most.
    pub fn next_line(&self, deadline: Instant) -> Option<String> {
        self.lines
            .recv_timeout(deadline.saturating_duration_since(Instant::now()))
            .ok()
    }

    /// The next line of output within `wait`.
    pub fn line_within(&self, wait: Duration) -> Option<String> {
        self.lines.recv_timeout(wait).ok()
    }

    /// Everything it has printed so far.
    pub fn output(&self) -> String {
        self.output.lock().expect("output").join("\n")
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    /// SIGKILL (what `Child::kill` sends on unix): no shutdown, no flush.
    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.kill();
    }
}

/// A client for calls that must answer in time (not for streams).
pub fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .timeout(Duration::from_secs(60))
        .build()
        .expect("client")
}

/// `POST /api/v1/auth/login`: the status and body.
pub async fn login(
    client: &reqwest::Client, server: &Server, email: &str, password: &str,
) -> (StatusCode, Value) {
    let response = client
        .post(server.url("/api/v1/auth/login"))
        .json(&json!({ "email": email, "password": password }))
        .send()
        .await
        .expect("login request");
    let status = response.status();
    (status, response.json().await.unwrap_or(Value::Null))
}

/// Signs in (asserts success) and returns the session token.
pub async fn token(
    client: &reqwest::Client, server: &Server, email: &str, password: &str,
) -> String {
    let (status, body) = login(client, server, email, password).await;
    assert_eq!(status, StatusCode::OK, "login {email}: {body}");
    body["token"]
        .as_str()
        .unwrap_or_else(|| panic!("login {email} gave no token: {body}"))
        .to_owned()
}

/// `GET path`, signed in with `token` or not: the status and body.
pub async fn get(
    client: &reqwest::Client, server: &Server, path: &str, token: Option<&str>,
) -> (StatusCode, Value) {
    let mut request = client.get(server.url(path));
    if let Some(token) = token {
        request = request.bearer_auth(token);
    }
    let response = request.send().await.expect("GET");
    let status = response.status();
    (status, response.json().await.unwrap_or(Value::Null))
}

/// The order desk as its two busiest users reach it: Alice orders, the
/// cashier confirms, at the demo restaurant of one server.
#[derive(Clone)]
pub struct Desk {
    pub client: reqwest::Client,
    /// The server's `http://127.0.0.1:PORT`.
    pub base: String,
    /// Alice's session token.
    pub alice: String,
    /// The cashier's session token.
    pub cashier: String,
    /// The restaurant's products.
    pub products: Vec<i64>,
}

impl Desk {
    /// Signs Alice and the cashier in on `server` and reads the menu.
    pub async fn signed_in(client: &reqwest::Client, server: &Server) -> Desk {
        Desk {
            client: client.clone(),
            base: server.base.clone(),
            alice: token(client, server, "alice@demo.test", DEMO_PASSWORD).await,
            cashier: token(client, server, "cashier@demo.test", DEMO_PASSWORD).await,
            products: product_ids(client, server).await,
        }
    }

    /// Alice places a pickup order of `(product, quantity)` lines.
    pub async fn place(
        &self, items: &[(i64, i64)], notes: Option<&str>,
    ) -> reqwest::Result<reqwest::Response> {
        let items: Vec<Value> = items
            .iter()
            .map(|(product, quantity)| json!({ "product": product, "quantity": quantity }))
            .collect();
        self.client
            .post(format!("{}/api/v1/orders", self.base))
            .bearer_auth(&self.alice)
            .json(&json!({
                "store": RESTAURANT,
                "items": items,
                "fulfilment": { "type": "pickup" },
                "notes": notes,
            }))
            .send()
            .await
    }

    /// The cashier confirms order `id`, expecting it at version 1.
    pub async fn confirm(&self, id: i64) -> reqwest::Result<reqwest::Response> {
        self.transition(&self.cashier, id, "confirmed", 1).await
    }

    /// The holder of `token` moves order `id` to `to`, expecting it at
    /// `version`.
    pub async fn transition(
        &self, token: &str, id: i64, to: &str, version: i64,
    ) -> reqwest::Result<reqwest::Response> {
        self.client
            .post(format!("{}/api/v1/orders/{id}/transitions", self.base))
            .bearer_auth(token)
            .json(&json!({ "to": to, "expected_version": version }))
            .send()
            .await
    }

    /// The cashier sets item `item` of order `id` to `status`.
    pub async fn set_item(
        &self, id: i64, item: i64, status: &str,
    ) -> reqwest::Result<reqwest::Response> {
        self.client
            .patch(format!("{}/api/v1/orders/{id}/items/{item}", self.base))
            .bearer_auth(&self.cashier)
            .json(&json!({ "status": status }))
            .send()
            .await
    }
}

/// The ids of the demo restaurant's products.
pub async fn product_ids(client: &reqwest::Client, server: &Server) -> Vec<i64> {
    let (status, menu) = get(
        client,
        server,
        &format!("/api/v1/stores/{RESTAURANT}"),
        None,
    )
    .await;
    assert_eq!(status, StatusCode::OK, "menu: {menu}");
    menu["products"]
        .as_array()
        .expect("products")
        .iter()
        .map(|p| p["id"].as_i64().expect("id"))
        .collect()
}

/// One event as an SSE client saw it.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct Seen {
    pub id: i64,
    pub order: i64,
    pub version: i64,
}

/// Opens the store stream of `base` (from `after`, if given). Once the
/// headers are in, the server has subscribed: nothing committed later is
/// missed. Then spawns a reader that sends every event, until the
/// connection ends.
pub async fn follow(
    client: reqwest::Client, base: String, token: String, after: Option<i64>,
    events: UnboundedSender<Seen>,
) -> tokio::task::JoinHandle<()> {
    let url = format!("{base}/api/v1/stores/{RESTAURANT}/events");
    follow_url(client, url, token, after, events).await
}

/// Opens the stream at `url`, as [`follow`] does.
pub async fn follow_url(
    client: reqwest::Client, url: String, token: String, after: Option<i64>,
    events: UnboundedSender<Seen>,
) -> tokio::task::JoinHandle<()> {
    let mut request = client.get(&url).bearer_auth(&token);
    if let Some(after) = after {
        request = request.header("Last-Event-ID", after.to_string());
    }
    let response = request.send().await.expect("open the stream");
    assert_eq!(response.status(), StatusCode::OK, "{url}");
    tokio::spawn(read(response, events))
}

/// Sends every event of an SSE response to `events`, until it ends.
pub async fn read(response: reqwest::Response, events: UnboundedSender<Seen>) {
    let mut body = response.bytes_stream();
    let mut buffer = String::new();
    while let Some(Ok(chunk)) = body.next().await {
        buffer.push_str(&String::from_utf8_lossy(&chunk));
        while let Some(end) = buffer.find("\n\n") {
            let frame: String = buffer.drain(..end + 2).collect();
            let Some(data) = frame.lines().find_map(|l| l.strip_prefix("data: ")) else {
                continue;
            };
            let Ok(event) = serde_json::from_str::<Value>(data) else {
                continue;
            };
            let (Some(id), Some(order), Some(version)) = (
                event["id"].as_i64(),
                event["order_id"].as_i64(),
                event["order_version"].as_i64(),
            ) else {
                continue;
            };
            if events.send(Seen { id, order, version }).is_err() {
                return;
            }
        }
    }
}
