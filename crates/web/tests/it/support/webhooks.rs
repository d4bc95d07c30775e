//! A webhook receiver for the tests: a real HTTP server on a loopback port
//! in the test process that records every request and answers as the test
//! scripts it; and the signature check, made by the `standardwebhooks`
//! Python package (`verify_webhook.py`), an implementation independent of
//! the server's.

use std::collections::{BTreeMap, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use serde_json::{Value, json};
use tokio::net::TcpListener;
use tokio::task::JoinHandle;

/// One request the receiver got, and what it answered.
#[derive(Debug, Clone)]
pub struct Received {
    /// Every header, names lower-case.
    pub headers: BTreeMap<String, String>,
    pub body: String,
    /// The body as it came (a push request's is binary).
    pub raw: Vec<u8>,
    /// The status it answered (or would have, had the sender waited).
    pub answered: u16,
}

impl Received {
    /// The `webhook-id` header.
    pub fn id(&self) -> &str {
        self.headers.get("webhook-id").map_or("", String::as_str)
    }
}

#[derive(Default)]
struct Script {
    received: Vec<Received>,
    /// Answers for the next requests, in order; then `otherwise`.
    next: VecDeque<u16>,
    otherwise: Option<u16>,
    /// Requests still to be answered only after a pause, and how long.
    slow: usize,
    pause: Duration,
}

/// A receiver listening on `http://127.0.0.1:PORT/hook`.
pub struct Receiver {
    pub url: String,
    script: Arc<Mutex<Script>>,
    task: JoinHandle<()>,
}

impl Drop for Receiver {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn hook(
    State(script): State<Arc<Mutex<Script>>>, headers: HeaderMap, body: Bytes,
) -> StatusCode {
    // Recorded as it arrives: a request the sender gives up on before the
    // answer (a timeout) counts too.
    let (answer, pause) = {
        let mut script = script.lock().expect("the receiver's script");
        let answer = match script.next.pop_front() {
            Some(status) => status,
            None => script.otherwise.unwrap_or(200),
        };
        let pause = (script.slow > 0).then_some(script.pause);
        script.slow = script.slow.saturating_sub(1);
        script.received.push(Received {
            headers: headers
                .iter()
                .map(|(name, value)| {
                    (
                        name.as_str().to_owned(),
                        value.to_str().unwrap_or_default().to_owned(),
                    )
                })
                .collect(),
            body: String::from_utf8_lossy(&body).into_owned(),
            raw: body.to_vec(),
            answered: answer,
        });
        (answer, pause)
    };
    if let Some(pause) = pause {
        tokio::time::sleep(pause).await;
    }
    StatusCode::from_u16(answer).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR)
}

impl Receiver {
    /// A receiver answering 200 to everything until told otherwise.
    pub async fn start() -> Receiver {
        let listener = TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind the receiver");
        let addr = listener.local_addr().expect("the receiver's address");
        let script = Arc::new(Mutex::new(Script::default()));
        let router = axum::Router::new()
            .route("/hook", axum::routing::post(hook))
            .with_state(script.clone());
        let task = tokio::spawn(async move {
            let _ = axum::serve(listener, router).await;
        });
        Receiver {
            url: format!("http://{addr}/hook"),
            script,
            task,
        }
    }

    fn script(&self) -> std::sync::MutexGuard<'_, Script> {
        self.script.lock().expect("the receiver's script")
    }

    /// Answers the next requests with these statuses, in order.
    pub fn answer_next(&self, statuses: &[u16]) {
        self.script().next.extend(statuses);
    }

    /// Answers the next `count` requests only after `pause`.
    pub fn answer_late(&self, count: usize, pause: Duration) {
        let mut script = self.script();
        script.slow = count;
        script.pause = pause;
    }

    /// Answers every request (after the scripted ones) with `status`.
    pub fn answer_always(&self, status: u16) {
        self.script().otherwise = Some(status);
    }

    /// What it got so far.
    pub fn received(&self) -> Vec<Received> {
        self.script().received.clone()
    }

    /// Waits until it has got `count` requests (at most `within`); all it got.
    pub async fn wait_for(&self, count: usize, within: Duration) -> Vec<Received> {
        let deadline = Instant::now() + within;
        loop {
            let received = self.received();
            if received.len() >= count {
                return received;
            }
            assert!(
                Instant::now() < deadline,
                "the receiver got {} requests in {within:?}, expected {count}: {received:#?}",
                received.len()
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// Waits `for_a_while` and checks that nothing more than `count`
    /// requests came.
    pub async fn assert_stays_at(&self, count: usize, for_a_while: Duration) {
        tokio::time::sleep(for_a_while).await;
        let received = self.received();
        assert_eq!(
            received.len(),
            count,
            "nothing more was to come: {received:#?}"
        );
    }
}

/// Whether the verifier runs here (Python 3 with `standardwebhooks`); when
/// it does not, the caller skips (and under `CI=true` fails).
pub fn verifier_available() -> bool {
    super::python_has(
        "standardwebhooks",
        "python3 with the standardwebhooks package (pip install standardwebhooks)",
    )
}

/// Each request checked by the `standardwebhooks` package with `secret`:
/// its payload when the signature verifies, else why not.
pub fn verify(secret: &str, received: &[Received]) -> Vec<Result<Value, String>> {
    let lines: Vec<Value> = received
        .iter()
        .map(|request| json!({"secret": secret, "headers": request.headers, "body": request.body}))
        .collect();
    super::run_verifier("verify_webhook.py", &lines)
}

/// The payloads of requests that must all verify under `secret`.
pub fn verified(secret: &str, received: &[Received]) -> Vec<Value> {
    verify(secret, received)
        .into_iter()
        .zip(received)
        .map(|(result, request)| {
            result.unwrap_or_else(|why| panic!("{why}: {request:#?} does not verify"))
        })
        .collect()
}
