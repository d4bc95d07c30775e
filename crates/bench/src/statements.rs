//! `statements`: the SQL statements one request of each kind runs, on
//! SQLite and (with `--database-url`) on PostgreSQL.
//!
//! The server is the real binary, started with its statement events on
//! ([`LOG_FILTER`]): each statement it runs is one line of its log (see
//! `ordertrack_store::statements` for what the backends report), and
//! tower-http logs each answered request inside the server's request span,
//! which carries the request's id (never its path: paths carry tracking
//! tokens). Requests run one at a time. Around each measured request the
//! bench sends a marker, `GET /healthz` with `X-Request-Id: mark-N`, and
//! reads the log up to the marker's answer; the
//! server writes a request's statements before its answer, so the
//! statements between two markers are exactly those of the request between
//! them.

use std::time::Duration;

use anyhow::{Context, bail};
use ordertrack_store::statements::{Kind, Statements};
use reqwest::redirect::Policy;
use reqwest::{Client, RequestBuilder, StatusCode};
use serde::de::DeserializeOwned;
use serde_json::{Map, Value, json};
use tokio::sync::mpsc::UnboundedReceiver;

use crate::api::{self, Api, OrderInfo, STORE};
use crate::scenarios::{Outcome, customers, menu};
use crate::server::{Launch, Server};

/// The server's log filter for this scenario: statements (both backends)
/// and tower-http's answers, at DEBUG, inside the server's request spans
/// (INFO, with the request id); warnings.
pub const LOG_FILTER: &str = "warn,ordertrack_web=info,sqlx::query=debug,\
     ordertrack_store::sql=debug,tower_http::trace=debug";

/// Warm-up requests of each kind before the measured ones.
const WARM_UP: usize = 3;

/// The requests measured, in the order they run on each order.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Request {
    Place,
    Transition,
    PagePost,
    PagePostAndGet,
    Kitchen,
    Item,
    LastItem,
}

impl Request {
    const ALL: [Request; 7] = [
        Request::Place,
        Request::Transition,
        Request::PagePost,
        Request::PagePostAndGet,
        Request::Kitchen,
        Request::Item,
        Request::LastItem,
    ];

    fn name(self) -> &'static str {
        match self {
            Request::Place => "place an order",
            Request::Transition => "transition (API)",
            Request::PagePost => "transition (dashboard form POST)",
            Request::PagePostAndGet => "transition (dashboard POST + redirect GET)",
            Request::Kitchen => "kitchen screen",
            Request::Item => "item change (API)",
            Request::LastItem => "item change, last item (API; order → ready)",
        }
    }

    fn http(self) -> &'static str {
        match self {
            Request::Place => "POST /api/v1/orders (2 items)",
            Request::Transition => "POST /api/v1/orders/{id}/transitions (pending → confirmed)",
            Request::PagePost => {
                "POST /dashboard/{slug}/orders/{id}/transition (confirmed → preparing)"
            }
            Request::PagePostAndGet => "… then GET /dashboard/{slug}/orders/{id}?flash=moved",
            Request::Kitchen => "GET /kitchen/{slug}",
            Request::Item => "PATCH /api/v1/orders/{id}/items/{item} (ready; another item queued)",
            Request::LastItem => "PATCH /api/v1/orders/{id}/items/{item} (ready; the last one)",
        }
    }
}

/// One answer, read to the end.
struct Reply {
    status: StatusCode,
    location: Option<String>,
    text: String,
}

impl Reply {
    fn json<T: DeserializeOwned>(&self, what: &str) -> anyhow::Result<T> {
        if !self.status.is_success() {
            bail!("{what}: {} {}", self.status, self.text);
        }
        serde_json::from_str(&self.text).with_context(|| format!("{what}: unexpected answer"))
    }
}

/// Attributes the server's statements to the requests that ran them.
struct Probe {
    lines: UnboundedReceiver<String>,
    api: Api,
    marks: u64,
}

impl Probe {
    /// Sends `request` and returns its answer with the statements the
    /// server ran for it.
    async fn measure(&mut self, request: RequestBuilder) -> anyhow::Result<(Reply, Statements)> {
        self.settle().await?;
        let response = request.send().await?;
        let status = response.status();
        let location = response
            .headers()
            .get(reqwest::header::LOCATION)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned);
        let text = response.text().await?;
        let ran = self.settle().await?;
        Ok((
            Reply {
                status,
                location,
                text,
            },
            ran,
        ))
    }

    /// The statements logged since the last marker, up to a new one.
    async fn settle(&mut self) -> anyhow::Result<Statements> {
        self.marks += 1;
        let mark = format!("mark-{}", self.marks);
        self.api
            .client
            .get(self.api.url("/healthz"))
            .header("x-request-id", &mark)
            .send()
            .await?
            .error_for_status()?;
        let mut ran = Statements::new();
        // The server logs on its own (background work polls), so the
        // marker's answer is waited for as a whole, not line by line.
        let answered = async {
            while let Some(line) = self.lines.recv().await {
                match parse_line(&line) {
                    LogLine::Statement(sql) => ran.record(&sql),
                    LogLine::Answered(id) if id == mark => return Ok(()),
                    LogLine::Answered(_) | LogLine::Other => {}
                }
            }
            bail!("the server's output ended")
        };
        tokio::time::timeout(Duration::from_secs(10), answered)
            .await
            .with_context(|| format!("no answer to marker {mark} in the log within 10 s"))??;
        Ok(ran)
    }
}

/// What a line of the server's log says.
#[derive(Debug, PartialEq, Eq)]
enum LogLine {
    /// A statement ran (its SQL).
    Statement(String),
    /// A request (its request id) was answered.
    Answered(String),
    Other,
}

/// Reads a line of the server's default `tracing` format (no colours):
/// string fields are written Debug-quoted, span fields plain.
fn parse_line(line: &str) -> LogLine {
    if line.contains(" sqlx::query: ") {
        // sqlx leaves `db.statement` empty when `summary` is the whole statement.
        let sql = quoted_field(line, "db.statement")
            .filter(|s| !s.trim().is_empty())
            .or_else(|| quoted_field(line, "summary"));
        return sql.map_or(LogLine::Other, LogLine::Statement);
    }
    if line.contains(" ordertrack_store::sql: ") {
        return quoted_field(line, "statement").map_or(LogLine::Other, LogLine::Statement);
    }
    if line.contains(" tower_http::trace::on_response: ") {
        return quoted_field(line, "request_id").map_or(LogLine::Other, LogLine::Answered);
    }
    LogLine::Other
}

/// The value of `name="…"` in a log line (an event's field, or the first
/// of a span's), unescaped.
fn quoted_field(line: &str, name: &str) -> Option<String> {
    let start = [' ', '{'].into_iter().find_map(|before| {
        let key = format!("{before}{name}=\"");
        line.find(&key).map(|at| at + key.len())
    })?;
    let mut value = String::new();
    let mut chars = line[start..].chars();
    while let Some(c) = chars.next() {
        match c {
            '"' => return Some(value),
            '\\' => match chars.next()? {
                'n' => value.push('\n'),
                't' => value.push('\t'),
                'r' => value.push('\r'),
                '0' => value.push('\0'),
                'u' => {
                    // \u{hex}
                    let hex: String = chars.by_ref().skip(1).take_while(|&c| c != '}').collect();
                    value.push(
                        u32::from_str_radix(&hex, 16)
                            .ok()
                            .and_then(char::from_u32)?,
                    );
                }
                other => value.push(other),
            },
            c => value.push(c),
        }
    }
    None
}

/// A client like a browser's for one signed-in person: cookies kept,
/// redirects not followed (the bench follows them itself, to count them).
fn browser() -> anyhow::Result<Client> {
    Ok(Client::builder()
        .cookie_store(true)
        .redirect(Policy::none())
        .timeout(Duration::from_secs(60))
        .build()?)
}

/// The CSRF token of a page's forms.
fn csrf_field(html: &str) -> Option<String> {
    let key = "name=\"csrf\" value=\"";
    let start = html.find(key)? + key.len();
    let end = html[start..].find('"')?;
    Some(html[start..start + end].to_owned())
}

/// Each measured request's statements, by request kind.
type Measured = Vec<(Request, Vec<Statements>)>;

/// One round: `n` orders through every measured request.
async fn round(
    probe: &mut Probe, people: &People, n: usize, measured: &mut Measured,
) -> anyhow::Result<()> {
    let api = probe.api.clone();
    let mut record = |request: Request, ran: Statements| {
        if let Some((_, all)) = measured.iter_mut().find(|(r, _)| *r == request) {
            all.push(ran);
        }
    };
    let mut orders = Vec::with_capacity(n);
    for _ in 0..n {
        let (reply, ran) = probe
            .measure(api.place_request(&people.customer, &people.products))
            .await?;
        orders.push(reply.json::<OrderInfo>("place")?);
        record(Request::Place, ran);
    }
    for order in &mut orders {
        let request = api.transition_request(&people.cashier, order.id, "confirmed", order.version);
        let (reply, ran) = probe.measure(request).await?;
        *order = reply.json("transition")?;
        record(Request::Transition, ran);
    }
    for order in &mut orders {
        let form = [
            ("csrf", people.csrf.clone()),
            ("to", "preparing".to_owned()),
            ("expected_version", order.version.to_string()),
        ];
        let url = api.url(&format!(
            "/dashboard/{STORE}/orders/{}/transition",
            order.id
        ));
        let (reply, posted) = probe
            .measure(people.cashier_browser.post(url).form(&form))
            .await?;
        let location = match (reply.status, reply.location) {
            (StatusCode::SEE_OTHER, Some(location)) if location.ends_with("flash=moved") => {
                location
            }
            (status, location) => bail!("dashboard transition: {status} to {location:?}"),
        };
        let (page, shown) = probe
            .measure(people.cashier_browser.get(api.url(&location)))
            .await?;
        if page.status != StatusCode::OK {
            bail!("dashboard after the transition: {}", page.status);
        }
        let mut both = posted.clone();
        both.add(&shown);
        record(Request::PagePost, posted);
        record(Request::PagePostAndGet, both);
        order.version += 1;
        *order = api
            .transition(&people.cashier, order.id, "cooking", order.version)
            .await?;
    }
    for _ in 0..n {
        let url = api.url(&format!("/kitchen/{STORE}"));
        let (reply, ran) = probe.measure(people.kitchen_browser.get(url)).await?;
        if reply.status != StatusCode::OK {
            bail!("kitchen screen: {}", reply.status);
        }
        record(Request::Kitchen, ran);
    }
    for order in &orders {
        let [first, last] = order.items.as_slice() else {
            bail!("order {} has {} items, not 2", order.id, order.items.len());
        };
        for (item, request) in [(first, Request::Item), (last, Request::LastItem)] {
            let patch = api.item_status_request(&people.cashier, order.id, item.id, "ready");
            let (reply, ran) = probe.measure(patch).await?;
            let changed: OrderInfo = reply.json("item change")?;
            if request == Request::LastItem && changed.status != "ready" {
                bail!("the last item ready left the order {}", changed.status);
            }
            record(request, ran);
        }
    }
    Ok(())
}

/// Who makes the requests.
struct People {
    customer: String,
    cashier: String,
    products: Vec<i64>,
    cashier_browser: Client,
    kitchen_browser: Client,
    /// The CSRF token of the cashier's dashboard forms.
    csrf: String,
}

async fn people(api: &Api) -> anyhow::Result<People> {
    let customer = customers(api).await?.swap_remove(0);
    let cashier = api.login("cashier@demo.test").await?;
    let (grill, drink) = menu(api).await?;
    // Signing in through a browser client keeps the session cookie in its jar.
    let cashier_browser = browser()?;
    Api::new(cashier_browser.clone(), api.base.clone())
        .login("cashier@demo.test")
        .await?;
    let kitchen_browser = browser()?;
    Api::new(kitchen_browser.clone(), api.base.clone())
        .login("kitchen@demo.test")
        .await?;
    // The dashboard sets the CSRF cookie its forms' hidden field repeats.
    let dashboard = cashier_browser
        .get(api.url(&format!("/dashboard/{STORE}")))
        .send()
        .await?
        .error_for_status()?
        .text()
        .await?;
    let csrf = csrf_field(&dashboard).context("no CSRF field on the dashboard")?;
    Ok(People {
        customer,
        cashier,
        products: vec![grill, drink],
        cashier_browser,
        kitchen_browser,
        csrf,
    })
}

/// Starts a server with its statement log, measures, stops it.
async fn measure_server(
    bin: &std::path::Path, data_root: &std::path::Path, launch: Launch, requests: usize,
) -> anyhow::Result<Measured> {
    let mut server = Server::start_fresh(bin, data_root, launch).await?;
    let result = async {
        let lines = server
            .log_lines
            .take()
            .context("the server's log is not being read")?;
        let api = Api::new(api::client(None), server.base.clone());
        let mut probe = Probe {
            lines,
            api: api.clone(),
            marks: 0,
        };
        let people = people(&api).await?;
        let mut warm_up: Measured = Vec::new();
        round(&mut probe, &people, WARM_UP, &mut warm_up).await?;
        let mut measured: Measured = Request::ALL.iter().map(|&r| (r, Vec::new())).collect();
        round(&mut probe, &people, requests, &mut measured).await?;
        Ok(measured)
    }
    .await;
    server.stop().await?;
    result
}

/// The mean of `counts`.
fn mean(counts: impl Iterator<Item = u64>, n: usize) -> f64 {
    counts.sum::<u64>() as f64 / n.max(1) as f64
}

fn outcome(backend: &str, request: Request, all: &[Statements]) -> Outcome {
    let n = all.len();
    let mut o = Outcome::new(
        &format!("statements {backend}: {}", request.name()),
        json!({ "backend": backend, "request": request.http(), "requests": n,
                "warm_up": WARM_UP }),
    );
    o.throughput = Some(mean(all.iter().map(Statements::total), n));
    o.unit = "statements/request".into();
    for kind in Kind::ALL {
        o.metric(kind.name(), mean(all.iter().map(|s| s.of_kind(kind)), n));
    }
    o.metric(
        "min",
        all.iter().map(Statements::total).min().unwrap_or_default(),
    );
    o.metric(
        "max",
        all.iter().map(Statements::total).max().unwrap_or_default(),
    );
    let mut sum = Statements::new();
    for ran in all {
        sum.add(ran);
    }
    let by_statement: Map<String, Value> = sum
        .iter()
        .map(|(text, count)| (text.to_owned(), json!(count as f64 / n.max(1) as f64)))
        .collect();
    o.metric("by_statement", by_statement);
    o
}

/// What `statements` needs from the command line.
pub struct Args<'a> {
    pub server_bin: &'a std::path::Path,
    pub data_root: &'a std::path::Path,
    /// Measured requests of each kind, per backend.
    pub requests: usize,
    /// The scratch database for the PostgreSQL run, if there is one.
    pub postgres: Option<String>,
}

/// Measures on SQLite and, given a scratch database, on PostgreSQL.
pub async fn statements(args: Args<'_>) -> anyhow::Result<Vec<Outcome>> {
    let mut backends = vec![("sqlite", None)];
    if let Some(url) = args.postgres {
        backends.push(("postgresql", Some(url)));
    }
    let mut out = Vec::new();
    for (backend, database_url) in backends {
        eprintln!("[bench] statements on {backend}");
        let launch = Launch {
            database_url,
            log_statements: true,
            ..Launch::default()
        };
        let measured = measure_server(args.server_bin, args.data_root, launch, args.requests)
            .await
            .with_context(|| format!("statements on {backend}"))?;
        out.extend(
            measured
                .iter()
                .map(|(request, all)| outcome(backend, *request, all)),
        );
    }
    Ok(out)
}

/// The table: one row per request kind, one column per backend.
pub fn print_table(results: &[Outcome]) {
    let backends: Vec<&str> = ["sqlite", "postgresql"]
        .into_iter()
        .filter(|b| results.iter().any(|o| o.params["backend"] == *b))
        .collect();
    let cell = |o: &Outcome| {
        let m = |k: &str| o.metrics.get(k).and_then(Value::as_f64).unwrap_or(0.0);
        let spread = if m("min") == m("max") {
            String::new()
        } else {
            format!(" [{}–{}]", m("min"), m("max"))
        };
        format!(
            "{} = {}r {}w {}t{}{}",
            fmt(o.throughput.unwrap_or(0.0)),
            fmt(m("read")),
            fmt(m("write")),
            fmt(m("transaction")),
            if m("other") > 0.0 {
                format!(" {}o", fmt(m("other")))
            } else {
                String::new()
            },
            spread
        )
    };
    println!(
        "\nSQL statements per request (mean; r = reads, w = writes, t = transaction control, \
         o = other; [min–max] when requests differed)"
    );
    print!("{:<46}", "request");
    for backend in &backends {
        print!(" {backend:<28}");
    }
    println!();
    for request in Request::ALL {
        print!("{:<46}", request.name());
        for backend in &backends {
            let found = results
                .iter()
                .find(|o| o.params["backend"] == *backend && o.params["request"] == request.http());
            print!(" {:<28}", found.map(cell).unwrap_or_default());
        }
        println!();
    }
    for o in results {
        println!("\n{}:", o.scenario);
        if let Some(Value::Object(by)) = o.metrics.get("by_statement") {
            for (text, count) in by {
                let count = count.as_f64().unwrap_or(0.0);
                let short: String = text.chars().take(110).collect();
                let more = if short.len() < text.len() { " …" } else { "" };
                println!("  {:>5}  {short}{more}", fmt(count));
            }
        }
    }
}

/// A mean: whole numbers without decimals.
fn fmt(v: f64) -> String {
    if v.fract() == 0.0 {
        format!("{v:.0}")
    } else {
        format!("{v:.2}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_sqlx_statement_lines() {
        let long = r#"2026-01-01T00:00:00.000000Z DEBUG request{method=GET uri=/kitchen/demo-restaurant version=HTTP/1.1}: sqlx::query: summary="SELECT o.id, o.number …" db.statement="\n\nSELECT o.id, o.number\n  FROM orders o WHERE o.note = 'a \"b\"'\n" rows_affected=0 rows_returned=3 elapsed=1.2ms elapsed_secs=0.0012"#;
        assert_eq!(
            parse_line(long),
            LogLine::Statement(
                "\n\nSELECT o.id, o.number\n  FROM orders o WHERE o.note = 'a \"b\"'\n".into()
            )
        );
        let short = r#"2026-01-01T00:00:00.000000Z DEBUG sqlx::query: summary="COMMIT" db.statement="" rows_affected=0 rows_returned=0 elapsed=1ms elapsed_secs=0.001"#;
        assert_eq!(parse_line(short), LogLine::Statement("COMMIT".into()));
    }

    #[test]
    fn reads_the_stores_own_statement_lines() {
        let line = r#"2026-01-01T00:00:00.000000Z DEBUG ordertrack_store::sql: statement="SELECT 1\tFROM x WHERE y = '\u{1b}'""#;
        assert_eq!(
            parse_line(line),
            LogLine::Statement("SELECT 1\tFROM x WHERE y = '\u{1b}'".into())
        );
    }

    #[test]
    fn reads_which_request_was_answered() {
        let line = r#"2026-01-01T00:00:00.000000Z DEBUG request{request_id="mark-7" method=GET route="/healthz"}: tower_http::trace::on_response: finished processing request latency=0 ms status=200"#;
        assert_eq!(parse_line(line), LogLine::Answered("mark-7".into()));
        let started = r#"2026-01-01T00:00:00.000000Z DEBUG request{request_id="mark-7" method=GET route="/healthz"}: tower_http::trace::on_request: started processing request"#;
        assert_eq!(parse_line(started), LogLine::Other);
        assert_eq!(
            parse_line("ordertrack listening on http://127.0.0.1:1"),
            LogLine::Other
        );
    }

    #[test]
    fn finds_the_csrf_field_of_a_form() {
        let html = r#"<form method="post"><input type="hidden" name="csrf" value="00ff"><button>Go</button></form>"#;
        assert_eq!(csrf_field(html).as_deref(), Some("00ff"));
        assert_eq!(csrf_field("<p>no form</p>"), None);
    }

    #[test]
    fn every_request_kind_has_its_own_description() {
        let mut http: Vec<&str> = Request::ALL.iter().map(|r| r.http()).collect();
        http.sort_unstable();
        http.dedup();
        assert_eq!(http.len(), Request::ALL.len());
    }
}
