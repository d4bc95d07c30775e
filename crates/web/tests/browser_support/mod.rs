//! Harness for the browser tests: a real order desk (restartable on the same
//! port, over a SQLite file that outlives it), headless Chromium driven
//! through chromiumoxide, and small DOM helpers that poll instead of sleep.
//!
//! Skip rule: without Chromium (`/usr/bin/chromium`, or the path in
//! `CHROMIUM`) the tests print a loud "SKIPPED" line and pass — except when
//! `CI=true`, where a missing browser is a failure.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use chromiumoxide::cdp::browser_protocol::browser::BrowserContextId;
use chromiumoxide::cdp::browser_protocol::emulation::SetDeviceMetricsOverrideParams;
use chromiumoxide::cdp::browser_protocol::page::CaptureScreenshotFormat;
use chromiumoxide::cdp::browser_protocol::target::{
    CreateBrowserContextParams, CreateTargetParams,
};
use chromiumoxide::cdp::js_protocol::runtime::EvaluateParams;
use chromiumoxide::page::ScreenshotParams;
use chromiumoxide::{Browser, BrowserConfig, Page};
use futures::StreamExt;
use ordertrack_app::{App, AuthConfig, Caller};
use ordertrack_realtime::Hub;
use ordertrack_store::SqliteStore;
use ordertrack_store::sqlite::SqliteOptions;
use ordertrack_web::AppState;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use tempfile::TempDir;
use tokio::net::TcpListener;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

/// The password of every demo account.
pub const PASSWORD: &str = ordertrack_app::demo::DEMO_PASSWORD;
/// The demo restaurant.
pub const RESTAURANT: &str = "demo-restaurant";
/// How long ordinary waits (page loads, sign-in, refreshes) may take.
pub const PATIENCE: Duration = Duration::from_secs(15);

const SECRET: &[u8] = b"browser-tests-secret-0123456789-abcdefghijklmn";

// ---- the server ------------------------------------------------------------

/// A real order desk on a fixed port over a SQLite file in a temporary
/// directory. It can be stopped and started again on the same port, over
/// the same file, as a restarted deployment would be.
pub struct Server {
    /// `http://127.0.0.1:PORT`
    pub base: String,
    pub port: u16,
    /// A plain HTTP client (no cookie store: tokens are passed explicitly).
    pub http: reqwest::Client,
    db: PathBuf,
    app: Option<App>,
    running: Option<(oneshot::Sender<()>, JoinHandle<()>)>,
    _dir: TempDir,
}

/// Opens the application over `db`, wired like the binary's `open_app`:
/// the hub hears every commit.
pub fn open_app(db: &Path) -> App {
    let hub = Hub::new();
    let store = SqliteStore::open(
        db,
        SqliteOptions {
            listener: Some(Arc::new(hub.clone())),
            ..SqliteOptions::default()
        },
    )
    .expect("open the database");
    App::new(
        Arc::new(store),
        hub,
        AuthConfig {
            secret: SECRET.to_vec(),
            token_ttl: time::Duration::hours(2),
        },
    )
}

fn spawn_server(listener: TcpListener, app: App) -> (oneshot::Sender<()>, JoinHandle<()>) {
    let (stop, stopped) = oneshot::channel::<()>();
    let task = tokio::spawn(async move {
        ordertrack_web::serve(listener, AppState { app }, async move {
            let _ = stopped.await;
        })
        .await
        .expect("the server runs");
    });
    (stop, task)
}

impl Server {
    /// A fresh database with the demo seeded, served on an ephemeral port.
    pub async fn start() -> Server {
        let dir = tempfile::tempdir().expect("create a temporary directory");
        let db = dir.path().join("ordertrack.db");
        let app = open_app(&db);
        assert!(
            ordertrack_app::demo::seed(&app)
                .await
                .expect("seed the demo"),
            "a fresh database is seeded"
        );
        let listener = TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind an ephemeral port");
        let port = listener.local_addr().expect("local address").port();
        let running = spawn_server(listener, app.clone());
        Server {
            base: format!("http://127.0.0.1:{port}"),
            port,
            http: reqwest::Client::builder()
                .redirect(reqwest::redirect::Policy::none())
                .build()
                .expect("build an HTTP client"),
            db,
            app: Some(app),
            running: Some(running),
            _dir: dir,
        }
    }

    /// `base` + `path`.
    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    /// The application behind the running server.
    pub fn app(&self) -> &App {
        self.app.as_ref().expect("the server is running")
    }

    /// The database file.
    pub fn db(&self) -> &Path {
        &self.db
    }

    /// Stops the server through its shutdown future and waits until it has
    /// finished (its streams told to reconnect, in-flight requests done).
    pub async fn stop(&mut self) {
        let (stop, task) = self.running.take().expect("the server is running");
        let _ = stop.send(());
        tokio::time::timeout(Duration::from_secs(20), task)
            .await
            .expect("the server stops within 20 s")
            .expect("the server task ends cleanly");
        self.app = None;
    }

    /// Starts a new server over the same database file on the same port.
    pub async fn restart(&mut self) {
        assert!(self.running.is_none(), "stop the server first");
        let app = open_app(&self.db);
        let address = format!("127.0.0.1:{}", self.port);
        let mut attempt = 0;
        let listener = loop {
            match TcpListener::bind(&address).await {
                Ok(listener) => break listener,
                Err(error) if attempt < 50 => {
                    attempt += 1;
                    eprintln!("rebinding {address} failed ({error}); retrying");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
                Err(error) => panic!("could not bind {address} again: {error}"),
            }
        };
        self.running = Some(spawn_server(listener, app.clone()));
        self.app = Some(app);
    }

    // ---- the JSON API, for setting up and moving orders ----

    /// Signs in through the API and returns the bearer token.
    pub async fn token(&self, email: &str) -> String {
        let body = self
            .api(
                "",
                Method::POST,
                "/api/v1/auth/login",
                Some(json!({ "email": email, "password": PASSWORD })),
            )
            .await
            .ok();
        body["token"].as_str().expect("a session token").to_owned()
    }

    /// One API request.
    pub async fn api(
        &self,
        token: &str,
        method: Method,
        path: &str,
        body: Option<Value>,
    ) -> ApiResponse {
        let mut request = self.http.request(method, self.url(path));
        if !token.is_empty() {
            request = request.bearer_auth(token);
        }
        if let Some(body) = body {
            request = request.json(&body);
        }
        let response = request.send().await.expect("send the API request");
        let status = response.status();
        let text = response.text().await.expect("read the API response");
        ApiResponse {
            status,
            body: serde_json::from_str(&text).unwrap_or(Value::Null),
            text,
        }
    }

    /// Product ids of the demo restaurant by name.
    pub async fn product_id(&self, name: &str) -> i64 {
        let store = self
            .api(
                "",
                Method::GET,
                &format!("/api/v1/stores/{RESTAURANT}"),
                None,
            )
            .await
            .ok();
        store["products"]
            .as_array()
            .expect("products")
            .iter()
            .find(|p| p["name"] == name)
            .and_then(|p| p["id"].as_i64())
            .unwrap_or_else(|| panic!("no product {name}"))
    }

    /// Places an order at the demo restaurant through the API.
    pub async fn place_order(&self, token: &str, lines: &[(&str, i64)], fulfilment: &str) -> Value {
        let mut items = Vec::new();
        for (name, quantity) in lines {
            items.push(json!({ "product": self.product_id(name).await, "quantity": quantity }));
        }
        let address = (fulfilment == "delivery").then_some("1 Test Street, Testville");
        self.api(
            token,
            Method::POST,
            "/api/v1/orders",
            Some(json!({
                "store": RESTAURANT,
                "items": items,
                "fulfilment": { "type": fulfilment, "address": address },
            })),
        )
        .await
        .expect(201)
    }

    /// Moves an order through the API; panics unless it worked.
    pub async fn move_order(&self, token: &str, id: i64, to: &str) -> Value {
        self.api(
            token,
            Method::POST,
            &format!("/api/v1/orders/{id}/transitions"),
            Some(json!({ "to": to })),
        )
        .await
        .ok()
    }

    /// Sets one item's kitchen status through the API.
    pub async fn set_item(&self, token: &str, id: i64, item: i64, status: &str) -> Value {
        self.api(
            token,
            Method::PATCH,
            &format!("/api/v1/orders/{id}/items/{item}"),
            Some(json!({ "status": status })),
        )
        .await
        .ok()
    }

    /// Reads an order through the API.
    pub async fn order(&self, token: &str, id: i64) -> Value {
        self.api(token, Method::GET, &format!("/api/v1/orders/{id}"), None)
            .await
            .ok()
    }
}

/// Signs `email` in on `app` directly (no HTTP), for use cases called on an
/// application that is not being served.
pub async fn caller(app: &App, email: &str) -> Caller {
    let signed_in = app.login(email, PASSWORD).await.expect("sign in");
    app.authenticate(&signed_in.token)
        .await
        .expect("authenticate")
}

/// An API response, read to the end.
#[derive(Debug)]
pub struct ApiResponse {
    pub status: StatusCode,
    pub body: Value,
    pub text: String,
}

impl ApiResponse {
    /// Asserts a 2xx status and returns the body.
    #[track_caller]
    pub fn ok(self) -> Value {
        assert!(
            self.status.is_success(),
            "expected success, got {}: {}",
            self.status,
            self.text
        );
        self.body
    }

    /// Asserts the status and returns the body.
    #[track_caller]
    pub fn expect(self, status: u16) -> Value {
        assert_eq!(
            self.status.as_u16(),
            status,
            "unexpected status: {}",
            self.text
        );
        self.body
    }
}

/// Item ids of an order (API body) whose station is `station`.
pub fn items_at(order: &Value, station: &str) -> Vec<i64> {
    order["items"]
        .as_array()
        .expect("items")
        .iter()
        .filter(|i| i["station"] == station)
        .map(|i| i["id"].as_i64().expect("item id"))
        .collect()
}

// ---- the browser -----------------------------------------------------------

/// The Chromium to drive, or `None` (after a loud message) when there is
/// none; with `CI=true` a missing Chromium panics instead.
pub fn chromium() -> Option<PathBuf> {
    let path = std::env::var_os("CHROMIUM")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("/usr/bin/chromium"));
    if path.is_file() {
        return Some(path);
    }
    if std::env::var("CI").is_ok_and(|v| v == "true") {
        panic!(
            "chromium not found at {} (set CHROMIUM): browser tests cannot be skipped in CI",
            path.display()
        );
    }
    // Straight to the process's stderr: the test harness captures
    // `eprintln!` of passing tests, and this must not go unseen.
    let banner = format!(
        "\n==================================================================\n\
         SKIPPED: chromium not found at {}\n\
         \x20        install Debian's `chromium` or set CHROMIUM=/path/to/it\n\
         ==================================================================\n\n",
        path.display()
    );
    let _ = std::io::Write::write_all(&mut std::io::stderr(), banner.as_bytes());
    None
}

/// One headless Chromium with a fresh profile. People are isolated browser
/// contexts in it (own cookies and storage, like incognito windows).
pub struct Chrome {
    browser: Browser,
    handler: JoinHandle<()>,
    _profile: TempDir,
}

impl Chrome {
    /// Launches Chromium, or returns `None` when the tests must be skipped.
    pub async fn launch() -> Option<Chrome> {
        let executable = chromium()?;
        let profile = tempfile::tempdir().expect("create a profile directory");
        let config = BrowserConfig::builder()
            .chrome_executable(executable)
            .user_data_dir(profile.path())
            .no_sandbox()
            .window_size(1280, 900)
            .viewport(None)
            .launch_timeout(Duration::from_secs(60))
            .request_timeout(Duration::from_secs(30))
            .args([
                "--headless",
                "--no-sandbox",
                "--disable-gpu",
                "--disable-background-networking",
                "--disable-component-update",
                "--no-first-run",
                "--disable-sync",
            ])
            .build()
            .expect("browser configuration");
        let (browser, mut handler) = Browser::launch(config).await.expect("launch Chromium");
        let handler = tokio::spawn(async move {
            while let Some(event) = handler.next().await {
                if let Err(error) = event {
                    // Chromium went away (normal at close); nothing to drive any more.
                    if matches!(error, chromiumoxide::error::CdpError::Ws(_)) {
                        break;
                    }
                }
            }
        });
        Some(Chrome {
            browser,
            handler,
            _profile: profile,
        })
    }

    /// A new person: an isolated browser context with one blank tab.
    pub async fn person(&self) -> Person {
        let context = self
            .browser
            .create_browser_context(CreateBrowserContextParams::default())
            .await
            .expect("create a browser context");
        let page = new_tab(&self.browser, &context).await;
        Person { context, page }
    }

    /// Another tab for the same person (shares cookies).
    pub async fn tab(&self, person: &Person) -> Page {
        new_tab(&self.browser, &person.context).await
    }

    /// Closes Chromium and waits for it to exit.
    pub async fn close(mut self) {
        let _ = tokio::time::timeout(Duration::from_secs(10), self.browser.close()).await;
        let _ = tokio::time::timeout(Duration::from_secs(10), self.browser.wait()).await;
        self.handler.abort();
    }
}

async fn new_tab(browser: &Browser, context: &BrowserContextId) -> Page {
    let params = CreateTargetParams::builder()
        .url("about:blank")
        .browser_context_id(context.clone())
        .build()
        .expect("target parameters");
    let page = browser.new_page(params).await.expect("open a tab");
    set_viewport(&page, 1280, 900, false).await;
    page
}

/// Someone using the order desk in their own browser context.
pub struct Person {
    context: BrowserContextId,
    /// Their first tab.
    pub page: Page,
}

// ---- page helpers -----------------------------------------------------------

/// Evaluates `js` (an expression; promises are awaited) and returns its value
/// (`Null` for `undefined`).
pub async fn try_eval(page: &Page, js: &str) -> Result<Value, String> {
    let params = EvaluateParams::builder()
        .expression(js)
        .return_by_value(true)
        .await_promise(true)
        .build()
        .map_err(|e| e.to_string())?;
    let result = page
        .evaluate_expression(params)
        .await
        .map_err(|e| e.to_string())?;
    Ok(result.value().cloned().unwrap_or(Value::Null))
}

/// Evaluates `js`; panics when it throws.
pub async fn eval(page: &Page, js: &str) -> Value {
    match try_eval(page, js).await {
        Ok(value) => value,
        Err(error) => panic!("evaluating `{js}` failed: {error}"),
    }
}

/// A string the page evaluates to.
pub async fn text(page: &Page, js: &str) -> String {
    match eval(page, js).await {
        Value::String(s) => s,
        Value::Null => String::new(),
        other => other.to_string(),
    }
}

/// What the page shows, for failure messages.
pub async fn describe(page: &Page) -> String {
    try_eval(
        page,
        "JSON.stringify({ url: location.href, live: document.querySelector('[data-live-text]')?.textContent, \
         main: (document.querySelector('main') || document.body)?.innerText.slice(0, 800) })",
    )
    .await
    .map(|v| v.as_str().unwrap_or_default().to_owned())
    .unwrap_or_else(|e| format!("(page not readable: {e})"))
}

/// Polls until `condition` (a JS expression) is truthy; `false` on timeout.
/// Exceptions and navigations in between count as "not yet".
pub async fn poll(page: &Page, condition: &str, timeout: Duration) -> bool {
    let js =
        format!("(() => {{ try {{ return !!({condition}); }} catch (_) {{ return false; }} }})()");
    let deadline = Instant::now() + timeout;
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        if let Ok(Ok(Value::Bool(true))) =
            tokio::time::timeout(left.max(Duration::from_millis(50)), try_eval(page, &js)).await
        {
            return true;
        }
        if Instant::now() >= deadline {
            return false;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
}

/// Waits until `condition` (a JS expression) is truthy; panics with what
/// the page shows when it is not within `timeout`.
pub async fn wait_for(page: &Page, condition: &str, timeout: Duration) {
    let started = Instant::now();
    if !poll(page, condition, timeout).await {
        panic!(
            "waited {:?} for `{condition}`; the page shows {}",
            started.elapsed(),
            describe(page).await
        );
    }
}

/// Opens `url` and waits until the page (after any redirect) has loaded.
pub async fn goto(page: &Page, url: &str) {
    page.goto(url)
        .await
        .unwrap_or_else(|e| panic!("open {url}: {e}"));
    wait_for(
        page,
        "location.protocol.startsWith('http') && document.readyState === 'complete'",
        PATIENCE,
    )
    .await;
}

/// A JS string literal.
pub fn js_string(text: &str) -> String {
    serde_json::to_string(text).expect("a string serialises")
}

/// Sets a form field's value and fires `input`/`change` like typing would.
pub async fn fill(page: &Page, selector: &str, value: &str) {
    let done = eval(
        page,
        &format!(
            "(() => {{ const el = document.querySelector({}); if (!el) return false; \
             el.value = {}; el.dispatchEvent(new Event('input', {{ bubbles: true }})); \
             el.dispatchEvent(new Event('change', {{ bubbles: true }})); return true; }})()",
            js_string(selector),
            js_string(value)
        ),
    )
    .await;
    assert_eq!(
        done,
        Value::Bool(true),
        "no field `{selector}` on {}",
        describe(page).await
    );
}

/// Clicks the element (as a user's click would: submit buttons submit their
/// form with themselves as the submitter).
pub async fn click(page: &Page, selector: &str) {
    let done = eval(
        page,
        &format!(
            "(() => {{ const el = document.querySelector({}); if (!el) return 'missing'; \
             if (el.disabled) return 'disabled'; el.scrollIntoView({{ block: 'center' }}); el.click(); return 'clicked'; }})()",
            js_string(selector)
        ),
    )
    .await;
    assert_eq!(
        done,
        Value::String("clicked".into()),
        "cannot click `{selector}` on {}",
        describe(page).await
    );
}

/// Signs in through the login form and waits for the signed-in page.
pub async fn sign_in(page: &Page, server: &Server, email: &str) {
    goto(page, &server.url("/login")).await;
    fill(page, "input[name=email]", email).await;
    fill(page, "input[name=password]", PASSWORD).await;
    click(page, "form[action='/login'] button[type=submit]").await;
    wait_for(
        page,
        "location.pathname !== '/login' && document.readyState === 'complete' \
         && !!document.querySelector('form[action=\"/logout\"]')",
        PATIENCE,
    )
    .await;
}

/// Marks the document, to prove later that it was not reloaded.
pub async fn mark(page: &Page) {
    eval(page, "window.__marker = 1").await;
}

/// Asserts the document marked by [`mark`] is still the same one.
pub async fn assert_not_reloaded(page: &Page) {
    assert_eq!(
        eval(page, "window.__marker === 1").await,
        Value::Bool(true),
        "the page was reloaded: {}",
        describe(page).await
    );
}

/// Waits until the live indicator says the stream is live.
pub async fn wait_live(page: &Page) {
    wait_for(
        page,
        "document.querySelector('[data-live-text]').textContent.startsWith('Live')",
        PATIENCE,
    )
    .await;
}

/// The tracker's status label.
pub async fn status_label(page: &Page) -> String {
    text(
        page,
        "document.querySelector('#tracker .status-label')?.textContent.trim()",
    )
    .await
}

/// How many timeline entries the tracker shows.
pub async fn timeline_len(page: &Page) -> i64 {
    eval(
        page,
        "document.querySelectorAll('#tracker ol.timeline li').length",
    )
    .await
    .as_i64()
    .unwrap_or(-1)
}

/// Emulates a screen `width` × `height` CSS pixels.
pub async fn set_viewport(page: &Page, width: i64, height: i64, mobile: bool) {
    page.execute(SetDeviceMetricsOverrideParams::new(
        width, height, 1.0, mobile,
    ))
    .await
    .expect("set the viewport");
}

async fn settle(page: &Page) {
    let _ = try_eval(
        page,
        "new Promise(r => requestAnimationFrame(() => requestAnimationFrame(() => r(true))))",
    )
    .await;
}

/// `<workspace>/screenshots`.
pub fn screenshot_dir() -> PathBuf {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../screenshots");
    std::fs::create_dir_all(&dir).expect("create the screenshots folder");
    dir.canonicalize().expect("screenshots folder")
}

/// The two widths every main screen is shot at.
pub const SCREENS: [(&str, i64, i64, bool); 2] =
    [("phone", 390, 844, true), ("desktop", 1280, 900, false)];

/// Writes `<name>-phone.png` and `<name>-desktop.png` of the whole page
/// (up to 3000 px tall) and returns the files written.
pub async fn screenshots(page: &Page, name: &str) -> Vec<PathBuf> {
    let dir = screenshot_dir();
    let mut written = Vec::new();
    for (suffix, width, height, mobile) in SCREENS {
        set_viewport(page, width, height, mobile).await;
        settle(page).await;
        let full = eval(page, "document.documentElement.scrollHeight")
            .await
            .as_i64()
            .unwrap_or(height)
            .clamp(height, 3000);
        set_viewport(page, width, full, mobile).await;
        settle(page).await;
        let png = page
            .screenshot(
                ScreenshotParams::builder()
                    .format(CaptureScreenshotFormat::Png)
                    .build(),
            )
            .await
            .unwrap_or_else(|e| panic!("screenshot of {name}: {e}"));
        assert!(png.starts_with(b"\x89PNG"), "a PNG for {name}");
        let path = dir.join(format!("{name}-{suffix}.png"));
        std::fs::write(&path, png).expect("write the screenshot");
        written.push(path);
    }
    set_viewport(page, 1280, 900, false).await;
    written
}
