//! What the HTTP fuzz targets share: one order desk per fuzzing process,
//! built as the binary builds it ([`Application::build`], the demo seeded,
//! on a throw-away SQLite file), its router called in-process — no sockets,
//! so a run makes thousands of requests a second — and the one verdict
//! every answer must pass: no 5xx, and every 4xx of the API a problem+json.
//! A panic anywhere (handler or task) aborts the process: libFuzzer's hook
//! sees it before the server's catch-panic layer could turn it into a 500.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, OnceLock};

use axum::body::Body;
use axum::extract::ConnectInfo;
use axum::http::{HeaderValue, Method, Request, Response, header};
use ordertrack_app::{EmailConfig, SignInLimits, StoreSignup, WebhookConfig};
use ordertrack_web::{Application, Database, Limits, Settings};
use tower::ServiceExt as _;

/// The CSRF token the form targets carry, as cookie and field (seeds
/// hold it, so mutated forms get past the check).
pub const CSRF: &str = "0123456789abcdef0123456789abcdef";

/// Who a request comes from, picked by one input byte: anonymous, a
/// customer, each staff role of the restaurant, the platform admin.
const CALLERS: [Option<&str>; 6] = [
    None,
    Some("alice@demo.test"),
    Some("cashier@demo.test"),
    Some("kitchen@demo.test"),
    Some("owner@demo.test"),
    Some("admin@demo.test"),
];

/// The restaurant every request is about.
pub const SLUG: &str = "demo-restaurant";

/// Requests between fresh orders: the fuzzer moves its order along, and a
/// finished order would refuse every change.
const ORDER_EVERY: u64 = 64;

/// The order requests name (`{order}`, `{item}`, `{tracking}`).
struct Current {
    order: i64,
    item: i64,
    tracking: String,
}

/// The order desk under test.
pub struct Desk {
    runtime: tokio::runtime::Runtime,
    router: axum::Router,
    tokens: Vec<Option<String>>,
    product: i64,
    current: Mutex<Current>,
    requests: AtomicU64,
    _data: tempfile::TempDir,
}

impl Desk {
    /// The process's desk, built on first use.
    pub fn get() -> &'static Desk {
        static DESK: OnceLock<Desk> = OnceLock::new();
        DESK.get_or_init(Desk::build)
    }

    fn build() -> Desk {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .expect("runtime");
        let data = tempfile::tempdir().expect("temporary folder");
        let application = runtime
            .block_on(Application::build(Settings {
                database: Database::Sqlite(data.path().join("fuzz.db")),
                secret: vec![7; 32],
                token_ttl: time::Duration::days(1),
                // The fuzzer is one client making thousands of accounts and
                // changes a minute: the per-client limits would answer 429
                // to most inputs and hide the code behind them.
                sign_in: SignInLimits {
                    registrations_per_ip: u32::MAX,
                    ..SignInLimits::default()
                },
                trusted_proxies: Vec::new(),
                limits: Limits {
                    writes_per_token: 0,
                    ..Limits::default()
                },
                nats: None,
                seed_demo: true,
                // Any account may open a store: inputs reach that code too.
                store_signup: StoreSignup::Open,
                metrics_token: None,
                tls: None,
                public_https: false,
                printing: Default::default(),
                serving: false,
                webhooks: WebhookConfig::default(),
                email: EmailConfig::default(),
                push: Default::default(),
                asset_salt: None,
            }))
            .expect("build the order desk");
        let mut desk = Desk {
            runtime,
            router: application.router(),
            tokens: Vec::new(),
            product: 0,
            current: Mutex::new(Current {
                order: 0,
                item: 0,
                tracking: String::new(),
            }),
            requests: AtomicU64::new(0),
            _data: data,
        };
        desk.tokens = CALLERS
            .iter()
            .map(|email| email.map(|email| desk.sign_in(email)))
            .collect();
        let store = desk
            .try_json(Method::GET, &format!("/api/v1/stores/{SLUG}"), None, None)
            .expect("the restaurant");
        desk.product = store["products"][0]["id"].as_i64().expect("a product");
        desk.new_order();
        desk
    }

    /// Sends `request` and waits for the answer's head (a stream's body is
    /// left unread and dropped).
    pub fn send(&self, mut request: Request<Body>) -> Response<Body> {
        // As the server's accept loop does: the peer address, one for all.
        request
            .extensions_mut()
            .insert(ConnectInfo(SocketAddr::from(([127, 0, 0, 1], 40_000))));
        let router = self.router.clone();
        match self.runtime.block_on(router.oneshot(request)) {
            Ok(response) => response,
            Err(infallible) => match infallible {},
        }
    }

    /// The verdict on the answer to a request for `path`: no 5xx; an API
    /// refusal is a problem+json.
    pub fn check(&self, path: &str, response: &Response<Body>) {
        let status = response.status();
        assert!(
            !status.is_server_error(),
            "{path}: {status} — bad input must get a 4xx"
        );
        if status.is_client_error() && path.starts_with("/api/") {
            let content_type = response
                .headers()
                .get(header::CONTENT_TYPE)
                .and_then(|value| value.to_str().ok())
                .unwrap_or("");
            assert!(
                content_type.starts_with("application/problem+json"),
                "{path}: {status} with content-type `{content_type}`, not a problem"
            );
        }
        if self.requests.fetch_add(1, Ordering::Relaxed) % ORDER_EVERY == ORDER_EVERY - 1 {
            self.new_order();
        }
    }

    /// `template` with `{slug}`, `{order}`, `{item}`, `{product}` and
    /// `{tracking}` filled in.
    pub fn path(&self, template: &str) -> String {
        let current = self.current.lock().expect("lock");
        template
            .replace("{slug}", SLUG)
            .replace("{order}", &current.order.to_string())
            .replace("{item}", &current.item.to_string())
            .replace("{product}", &self.product.to_string())
            .replace("{tracking}", &current.tracking)
    }

    /// A request from caller number `caller` (modulo the callers): its
    /// bearer token, and the CSRF cookie forms check.
    pub fn request(&self, method: Method, uri: &str, caller: u8) -> axum::http::request::Builder {
        let token = &self.tokens[usize::from(caller) % self.tokens.len()];
        let mut request = Request::builder()
            .method(method)
            .uri(uri)
            .header(header::COOKIE, format!("ordertrack_csrf={CSRF}"));
        if let Some(token) = token {
            request = request.header(header::AUTHORIZATION, format!("Bearer {token}"));
        }
        request
    }

    /// Places a fresh order as Alice and makes it the one requests name.
    /// If the fuzzer has made that impossible (the product withdrawn), the
    /// old order stays.
    fn new_order(&self) {
        let body = serde_json::json!({
            "store": SLUG,
            "items": [{ "product": self.product, "quantity": 2 }],
            "fulfilment": { "type": "pickup" },
        });
        let Some(order) = self.try_json(Method::POST, "/api/v1/orders", Some(1), Some(body)) else {
            return;
        };
        let (Some(order), Some(item), Some(tracking)) = (
            order["id"].as_i64(),
            order["items"][0]["id"].as_i64(),
            order["tracking_token"].as_str(),
        ) else {
            return;
        };
        *self.current.lock().expect("lock") = Current {
            order,
            item,
            tracking: tracking.to_owned(),
        };
    }

    fn sign_in(&self, email: &str) -> String {
        let body =
            serde_json::json!({ "email": email, "password": ordertrack_app::demo::DEMO_PASSWORD });
        let session = self
            .try_json(Method::POST, "/api/v1/auth/login", None, Some(body))
            .expect("sign in");
        session["token"]
            .as_str()
            .expect("a session token")
            .to_owned()
    }

    /// A setup call: its JSON answer, if it succeeded.
    fn try_json(
        &self, method: Method, path: &str, caller: Option<u8>, body: Option<serde_json::Value>,
    ) -> Option<serde_json::Value> {
        let request = match caller {
            Some(caller) => self.request(method, path, caller),
            None => Request::builder().method(method).uri(path),
        }
        .header(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        )
        .body(Body::from(body.map_or_else(String::new, |b| b.to_string())))
        .expect("request");
        let response = self.send(request);
        if !response.status().is_success() {
            return None;
        }
        let bytes = self
            .runtime
            .block_on(axum::body::to_bytes(response.into_body(), usize::MAX))
            .ok()?;
        serde_json::from_slice(&bytes).ok()
    }
}

/// `bytes` as a URI query: what a URI may hold as it is stays (so `%`
/// escapes, `&` and `=` reach the parsers), anything else is `%XX`.
pub fn query(bytes: &[u8]) -> String {
    let mut out = String::with_capacity(bytes.len());
    for &byte in bytes {
        if byte.is_ascii_alphanumeric() || b"-._~!$&'()*+,;=:@/?%".contains(&byte) {
            out.push(char::from(byte));
        } else {
            out.push_str(&format!("%{byte:02X}"));
        }
    }
    out
}
