//! Headless Chromium (Debian's `chromium`) driven through chromiumoxide,
//! small DOM helpers that poll instead of sleep, and API shortcuts the
//! browser tests set their scenes with.
//!
//! Skip rule: without Chromium (`/usr/bin/chromium`, or the path in
//! `CHROMIUM`) the tests print a loud "SKIPPED" line and pass — except when
//! `CI=true`, where a missing browser is a failure.

use std::path::{Path, PathBuf};
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
use ordertrack_app::{App, Caller};
use serde_json::Value;
use tempfile::TempDir;
use tokio::task::JoinHandle;

use super::{PASSWORD, RESTAURANT, TestApp, id};

/// How long ordinary waits (page loads, sign-in, refreshes) may take.
pub const PATIENCE: Duration = Duration::from_secs(15);

// ---- setting the scene through the API ----------------------------------

impl TestApp {
    /// Places an order at the demo restaurant of `(product name, quantity)`
    /// lines, for `pickup` or `delivery` (to a test address).
    pub async fn order_dishes(
        &self, token: &str, lines: &[(&str, i64)], fulfilment: &str,
    ) -> Value {
        let mut items = Vec::new();
        for (name, quantity) in lines {
            items.push((self.product_id(RESTAURANT, name).await, *quantity));
        }
        match fulfilment {
            "pickup" => self.place_order(token, RESTAURANT, &items).await,
            "delivery" => {
                self.place_delivery(token, RESTAURANT, &items, "1 Test Street, Testville")
                    .await
            }
            other => panic!("no fulfilment {other}"),
        }
    }
}

/// Signs `email` in on `app` directly (no HTTP), for use cases called on an
/// application that is not being served.
pub async fn sign_in_directly(app: &App, email: &str) -> Caller {
    let signed_in = app
        .login(email, PASSWORD, std::net::Ipv4Addr::LOCALHOST.into())
        .await
        .expect("sign in");
    app.authenticate(&signed_in.token)
        .await
        .expect("authenticate")
}

/// Item ids of an order (API body) whose station is `station`.
pub fn items_at(order: &Value, station: &str) -> Vec<i64> {
    order["items"]
        .as_array()
        .expect("items")
        .iter()
        .filter(|i| i["station"] == station)
        .map(id)
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
    ordertrack_store::testing::skip(&format!(
        "chromium not found at {}; install Debian's `chromium` or set CHROMIUM=/path/to/it",
        path.display()
    ));
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
                // The HTTPS test servers have self-signed certificates.
                "--ignore-certificate-errors",
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

    /// Another window for the same person (shares cookies): unlike a
    /// background tab, its page counts as shown, so its timers run on time.
    pub async fn window(&self, person: &Person) -> Page {
        open_target(&self.browser, &person.context, true).await
    }

    /// Closes Chromium and waits for it to exit.
    pub async fn close(mut self) {
        let _ = tokio::time::timeout(Duration::from_secs(10), self.browser.close()).await;
        let _ = tokio::time::timeout(Duration::from_secs(10), self.browser.wait()).await;
        self.handler.abort();
    }
}

async fn new_tab(browser: &Browser, context: &BrowserContextId) -> Page {
    open_target(browser, context, false).await
}

async fn open_target(browser: &Browser, context: &BrowserContextId, window: bool) -> Page {
    let mut params = CreateTargetParams::builder()
        .url("about:blank")
        .browser_context_id(context.clone());
    // A new context's first page opens its window; asking for a window
    // only where one is wanted keeps that.
    if window {
        params = params.new_window(true);
    }
    let params = params.build().expect("target parameters");
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
pub async fn sign_in(page: &Page, server: &TestApp, email: &str) {
    sign_in_at(page, &server.base, email).await;
}

/// Signs in through the login form of the site at `base` (the server's
/// own, or a way to it such as a [`super::NetLink`]).
pub async fn sign_in_at(page: &Page, base: &str, email: &str) {
    goto(page, &format!("{base}/login")).await;
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
