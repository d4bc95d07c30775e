//! Durability under crashes, cycle after cycle: `ordertrack demo` runs a
//! mixed write load (orders placed, moved along their workflow, their items
//! prepared, some cancelled), is SIGKILLed at a random moment and restarted
//! on the same data. After every kill the database itself is read — the
//! SQLite file opened read-only, the PostgreSQL schema over a connection of
//! the test's own — and checked:
//!
//! - every acknowledged write is there, as the server answered it (the
//!   order's status and item statuses at the acknowledged version);
//! - nothing is half-written: each order's events run from version 1 to
//!   its version without a gap, replaying them gives its status, its items'
//!   statuses and its status history exactly; event ids are gap-free, each
//!   store's positions consecutive and its counters agree with its rows;
//! - SQLite's `PRAGMA integrity_check` is `ok`;
//! - every event a store stream delivered before the kill is in the log,
//!   and the stream, resumed on the restarted server with the last
//!   `Last-Event-ID` it saw, continues with exactly the store's next events:
//!   no gap, no duplicate.
//!
//! `ORDERTRACK_CRASH_CYCLES` sets the kills per backend (default 10, what
//! CI runs); `ORDERTRACK_CRASH_SEED` repeats the kill moments of an earlier
//! run (each run prints its seed). The PostgreSQL run needs a server (a
//! throw-away schema, see [`TestSchema`]) and skips loudly without one
//! unless `CI=true`. With `ORDERTRACK_CRASH_RESTART_PG=1` it also restarts
//! PostgreSQL itself once, halfway, in immediate mode (a crash of the
//! database server) while the order desk is down: `pg_ctlcluster 15 main`,
//! or the cluster named by the variable's value instead
//! (`ORDERTRACK_CRASH_RESTART_PG="16 crash"`). Off by default: a restart
//! cuts off every other test using that server.

use std::collections::{BTreeMap, HashMap};
use std::path::Path;
use std::process::Command;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use ordertrack_store::conformance::TestSchema;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde_json::Value;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

use crate::support::*;

/// Concurrent writers, each taking its own orders through their workflow.
const TASKS: usize = 8;
/// How long the load runs before a kill: a random time in this range (ms).
const LOAD_MS: std::ops::Range<u64> = 150..900;
/// The PostgreSQL instance's signing key (a SQLite instance keeps its own
/// in its data folder).
const PG_SECRET: &str = "crash-loop-test-secret-0123456789abcdef";
/// The SQLite database in the data folder.
const SQLITE_FILE: &str = "ordertrack.db";

/// Kills per backend: `ORDERTRACK_CRASH_CYCLES`, default 10.
fn cycles() -> usize {
    std::env::var("ORDERTRACK_CRASH_CYCLES")
        .ok()
        .and_then(|cycles| cycles.trim().parse().ok())
        .unwrap_or(10)
}

/// The seed of the kill moments: `ORDERTRACK_CRASH_SEED`, else a fresh one.
fn seed() -> u64 {
    std::env::var("ORDERTRACK_CRASH_SEED")
        .ok()
        .and_then(|seed| seed.trim().parse().ok())
        .unwrap_or_else(|| rand::rng().random())
}

/// The PostgreSQL cluster to restart halfway (`VERSION NAME`), if asked.
fn cluster_to_restart() -> Option<String> {
    match std::env::var("ORDERTRACK_CRASH_RESTART_PG").ok()?.trim() {
        "" | "0" => None,
        "1" => Some("15 main".to_owned()),
        cluster => Some(cluster.to_owned()),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn acknowledged_writes_survive_repeated_sigkill_on_sqlite() {
    crash_loop(Backend::Sqlite).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn acknowledged_writes_survive_repeated_sigkill_on_postgres() {
    let Some(schema) = TestSchema::create_or_skip().await else {
        return;
    };
    crash_loop(Backend::Postgres(Box::new(schema))).await;
}

/// Where the data of the server under test lives.
enum Backend {
    /// The SQLite file in the data folder.
    Sqlite,
    /// A throw-away PostgreSQL schema.
    Postgres(Box<TestSchema>),
}

/// The server under test and its data, across restarts.
struct Crashing {
    backend: Backend,
    dir: tempfile::TempDir,
}

impl Crashing {
    fn name(&self) -> &'static str {
        match self.backend {
            Backend::Sqlite => "SQLite",
            Backend::Postgres(_) => "PostgreSQL",
        }
    }

    /// `ordertrack demo` on the data (seeded on the first start only).
    fn start(&self) -> Server {
        let mut command = serving("demo", self.dir.path());
        // Request logs would only slow the load down.
        command.env("ORDERTRACK_LOG", "warn");
        if let Backend::Postgres(schema) = &self.backend {
            command
                .args(["--database-url", &schema.url()])
                .args(["--secret", PG_SECRET]);
        }
        Server::start(&mut command)
    }

    /// What the database holds, read while no server runs.
    async fn contents(&self) -> Contents {
        match &self.backend {
            Backend::Sqlite => read_sqlite(&self.dir.path().join(SQLITE_FILE)),
            Backend::Postgres(schema) => read_postgres(schema).await,
        }
    }
}

/// Restarts PostgreSQL in immediate mode (no checkpoint: it recovers from
/// its write-ahead log, as after a crash) and waits until `schema` answers.
async fn restart_postgres(cluster: &str, schema: &TestSchema) {
    let mut command = Command::new("pg_ctlcluster");
    command
        .arg("--skip-systemctl-redirect")
        .args(cluster.split_whitespace())
        .args(["restart", "-m", "immediate"]);
    let status = command.status().expect("run pg_ctlcluster");
    assert!(status.success(), "{command:?}: {status}");
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        use sqlx::Connection as _;
        match sqlx::PgConnection::connect_with(&schema.options()).await {
            Ok(connection) => {
                let _ = connection.close().await;
                return;
            }
            Err(error) => assert!(
                Instant::now() < deadline,
                "PostgreSQL is not back after the restart: {error}"
            ),
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// One acknowledged write: the order as the server answered it.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Ack {
    order: i64,
    version: i64,
    status: String,
    /// (item id, status), in id order.
    items: Vec<(i64, String)>,
}

impl Ack {
    /// The acknowledgement an order body (the answer to a write) makes.
    fn of(body: &Value) -> Option<Ack> {
        let mut items = body["items"]
            .as_array()?
            .iter()
            .map(|item| Some((item["id"].as_i64()?, item["status"].as_str()?.to_owned())))
            .collect::<Option<Vec<_>>>()?;
        items.sort();
        Some(Ack {
            order: body["id"].as_i64()?,
            version: body["version"].as_i64()?,
            status: body["status"].as_str()?.to_owned(),
            items,
        })
    }
}

/// Why a writer stopped.
enum Stopped {
    /// The server is gone (the kill): nothing more to do.
    Dead,
    /// The server answered something other than success.
    Unexpected(String),
}

/// The write load of one cycle.
struct Load {
    desk: Desk,
    acks: Mutex<Vec<Ack>>,
    unexpected: Mutex<Vec<String>>,
    in_flight: AtomicUsize,
    stop: AtomicBool,
}

impl Load {
    /// One writer: order after order, each taken through its workflow,
    /// until the server stops answering or the cycle ends.
    async fn run(self: Arc<Self>, task: usize, cycle: usize) {
        let mut n = task + TASKS * 10_000 * cycle;
        while !self.stop.load(Ordering::SeqCst) {
            n += TASKS;
            match self.one_order(n).await {
                Ok(()) => {}
                Err(Stopped::Dead) => break,
                Err(Stopped::Unexpected(what)) => {
                    self.unexpected.lock().expect("lock").push(what);
                    break;
                }
            }
        }
    }

    /// Places order `n` and moves it on: most are confirmed, prepared item
    /// by item (the last ready item moves the order to `ready` by itself)
    /// and completed; some are cancelled by the customer while pending, or
    /// by the cashier while in the kitchen.
    async fn one_order(&self, n: usize) -> Result<(), Stopped> {
        let desk = &self.desk;
        let products = &desk.products;
        let lines = [
            (products[n % products.len()], 1 + (n / 7) as i64 % 3),
            (products[(n / 3 + 5) % products.len()], 1),
        ];
        let notes = format!("crash loop order {n}");
        let mut order = self
            .write("place", desk.place(&lines, Some(&notes)))
            .await?;
        let id = order.order;
        if n.is_multiple_of(6) {
            self.write(
                "cancel",
                desk.transition(&desk.alice, id, "cancelled", order.version),
            )
            .await?;
            return Ok(());
        }
        for to in ["confirmed", "preparing"] {
            order = self
                .write(to, desk.transition(&desk.cashier, id, to, order.version))
                .await?;
        }
        if n % 6 == 3 {
            self.write(
                "cancel",
                desk.transition(&desk.cashier, id, "cancelled", order.version),
            )
            .await?;
            return Ok(());
        }
        let items: Vec<i64> = order.items.iter().map(|(item, _)| *item).collect();
        for item in items {
            for status in ["preparing", "ready"] {
                order = self.write(status, desk.set_item(id, item, status)).await?;
            }
        }
        if order.status != "ready" {
            return Err(Stopped::Unexpected(format!(
                "order {id}: every item ready, yet {}",
                order.status
            )));
        }
        self.write(
            "complete",
            desk.transition(&desk.cashier, id, "completed", order.version),
        )
        .await?;
        Ok(())
    }

    /// Sends one write; a success is acknowledged (recorded as answered).
    async fn write(
        &self, what: &str, request: impl Future<Output = reqwest::Result<reqwest::Response>>,
    ) -> Result<Ack, Stopped> {
        self.in_flight.fetch_add(1, Ordering::SeqCst);
        let answer = async {
            let response = request.await.map_err(|_| Stopped::Dead)?;
            let status = response.status();
            // A body cut off by the kill is no acknowledgement.
            let body: Value = response.json().await.map_err(|_| Stopped::Dead)?;
            if !status.is_success() {
                return Err(Stopped::Unexpected(format!("{what}: {status} {body}")));
            }
            Ack::of(&body)
                .ok_or_else(|| Stopped::Unexpected(format!("{what}: not an order: {body}")))
        }
        .await;
        self.in_flight.fetch_sub(1, Ordering::SeqCst);
        let ack = answer?;
        self.acks.lock().expect("lock").push(ack.clone());
        Ok(ack)
    }
}

/// A client of the restaurant's event stream that resumes after every
/// restart from the last event it saw, as a browser's `EventSource` does.
struct Follower {
    client: reqwest::Client,
    token: String,
    seen: Vec<Seen>,
    events: mpsc::UnboundedReceiver<Seen>,
    sender: mpsc::UnboundedSender<Seen>,
    reader: Option<JoinHandle<()>>,
}

impl Follower {
    fn new(token: &str) -> Follower {
        let (sender, events) = mpsc::unbounded_channel();
        Follower {
            client: reqwest::Client::new(),
            token: token.to_owned(),
            seen: Vec::new(),
            events,
            sender,
            reader: None,
        }
    }

    /// Opens the stream on `server`, from the last event seen (from the
    /// start of the log the first time).
    async fn resume(&mut self, server: &Server) {
        let after = self.seen.last().map_or(0, |seen| seen.id);
        let reader = follow(
            self.client.clone(),
            server.base.clone(),
            self.token.clone(),
            Some(after),
            self.sender.clone(),
        )
        .await;
        self.reader = Some(reader);
    }

    /// Everything the stream delivered before its server died.
    async fn ended(&mut self) {
        if let Some(reader) = self.reader.take() {
            reader.await.expect("stream reader");
        }
        while let Ok(seen) = self.events.try_recv() {
            self.seen.push(seen);
        }
    }

    /// Receives until the stream has delivered event `last` (or a while
    /// has passed).
    async fn catch_up(&mut self, last: i64) {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
        while self.seen.last().is_none_or(|seen| seen.id < last) {
            match tokio::time::timeout_at(deadline, self.events.recv()).await {
                Ok(Some(seen)) => self.seen.push(seen),
                _ => return,
            }
        }
    }
}

/// Columns read as text, so that one query reads the same on both backends
/// (ordered by the table's column: PostgreSQL would sort by the text).
type Rows = Vec<Vec<Option<String>>>;

/// The tables the checks read, in write order.
const QUERIES: [&str; 5] = [
    "SELECT CAST(id AS TEXT), slug, CAST(last_order_seq AS TEXT), CAST(last_event_seq AS TEXT)
     FROM stores ORDER BY stores.id",
    "SELECT CAST(id AS TEXT), CAST(store_id AS TEXT), number, status, CAST(version AS TEXT)
     FROM orders ORDER BY orders.id",
    "SELECT CAST(id AS TEXT), CAST(order_id AS TEXT), status FROM order_items ORDER BY order_items.id",
    "SELECT CAST(order_id AS TEXT), from_status, to_status FROM status_history ORDER BY status_history.id",
    "SELECT CAST(id AS TEXT), CAST(store_id AS TEXT), CAST(store_seq AS TEXT),
            CAST(order_id AS TEXT), kind, CAST(order_version AS TEXT), payload
     FROM events ORDER BY events.id",
];

/// Reads the SQLite file read-only (after the kill: its write-ahead log as
/// the crash left it) and runs `PRAGMA integrity_check`.
fn read_sqlite(path: &Path) -> Contents {
    use rusqlite::{Connection, OpenFlags};
    let connection = Connection::open_with_flags(path, OpenFlags::SQLITE_OPEN_READ_ONLY)
        .unwrap_or_else(|error| panic!("open {} read-only: {error}", path.display()));
    let rows = |sql: &str| -> Rows {
        let mut statement = connection.prepare(sql).expect(sql);
        let columns = statement.column_count();
        statement
            .query_map([], |row| {
                (0..columns)
                    .map(|i| row.get::<_, Option<String>>(i))
                    .collect()
            })
            .expect(sql)
            .collect::<Result<_, _>>()
            .expect(sql)
    };
    let tables = QUERIES.map(rows);
    let head = rows("SELECT CAST(COALESCE(MAX(id), 0) AS TEXT) FROM events");
    let integrity = rows("PRAGMA integrity_check")
        .into_iter()
        .map(|row| row.into_iter().flatten().collect::<String>())
        .collect::<Vec<_>>()
        .join("; ");
    Contents::new(tables, &head, Some(integrity))
}

/// Reads the schema's tables, and the event log's head row, in one
/// snapshot — once the killed server's connections are gone: PostgreSQL
/// finishes a COMMIT the server sent before it died.
async fn read_postgres(schema: &TestSchema) -> Contents {
    use sqlx::{Connection as _, Row as _};
    let mut connection = sqlx::PgConnection::connect_with(&schema.options())
        .await
        .expect("connect to the test schema");
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let left: i64 = sqlx::query_scalar(
            "SELECT count(*) FROM pg_stat_activity
             WHERE application_name = $1 AND pid <> pg_backend_pid()",
        )
        .bind(schema.name())
        .fetch_one(&mut connection)
        .await
        .expect("the server's connections");
        if left == 0 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the killed server's connections linger"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    sqlx::query("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY")
        .execute(&mut connection)
        .await
        .expect("begin");
    let mut tables: Vec<Rows> = Vec::new();
    for sql in QUERIES
        .into_iter()
        .chain(["SELECT CAST(last_id AS TEXT) FROM event_log_head"])
    {
        let rows = sqlx::query(sql)
            .fetch_all(&mut connection)
            .await
            .expect(sql);
        tables.push(
            rows.iter()
                .map(|row| {
                    (0..row.len())
                        .map(|i| row.try_get::<Option<String>, _>(i).expect(sql))
                        .collect()
                })
                .collect(),
        );
    }
    let _ = connection.close().await;
    let head = tables.pop().expect("the head row");
    let tables: [Rows; 5] = tables.try_into().expect("one result per query");
    Contents::new(tables, &head, None)
}

struct StoreRow {
    id: i64,
    slug: String,
    last_order_seq: i64,
    last_event_seq: i64,
}

struct OrderRow {
    id: i64,
    store: i64,
    number: String,
    status: String,
    version: i64,
}

struct EventRow {
    id: i64,
    /// Order events only: (store, store position, order, order version).
    order: Option<(i64, i64, i64, i64)>,
    kind: String,
    payload: Value,
}

/// What the database holds after a kill.
struct Contents {
    stores: Vec<StoreRow>,
    orders: Vec<OrderRow>,
    /// Order id → (item id, status), in id order.
    items: BTreeMap<i64, Vec<(i64, String)>>,
    /// Order id → (from, to), in write order.
    history: BTreeMap<i64, Vec<(Option<String>, String)>>,
    events: Vec<EventRow>,
    /// The log's newest id as the store keeps it.
    head: i64,
    /// `PRAGMA integrity_check` (SQLite only).
    integrity: Option<String>,
}

fn text(cell: &Option<String>) -> String {
    cell.clone().expect("a NOT NULL column")
}

fn int(cell: &Option<String>) -> i64 {
    text(cell).parse().expect("an integer column")
}

impl Contents {
    fn new(tables: [Rows; 5], head: &Rows, integrity: Option<String>) -> Contents {
        let [stores, orders, items, history, events] = tables;
        let mut contents = Contents {
            stores: stores
                .iter()
                .map(|r| StoreRow {
                    id: int(&r[0]),
                    slug: text(&r[1]),
                    last_order_seq: int(&r[2]),
                    last_event_seq: int(&r[3]),
                })
                .collect(),
            orders: orders
                .iter()
                .map(|r| OrderRow {
                    id: int(&r[0]),
                    store: int(&r[1]),
                    number: text(&r[2]),
                    status: text(&r[3]),
                    version: int(&r[4]),
                })
                .collect(),
            items: BTreeMap::new(),
            history: BTreeMap::new(),
            events: events
                .iter()
                .map(|r| EventRow {
                    id: int(&r[0]),
                    order: r[1]
                        .as_ref()
                        .map(|_| (int(&r[1]), int(&r[2]), int(&r[3]), int(&r[5]))),
                    kind: text(&r[4]),
                    payload: serde_json::from_str(&text(&r[6])).unwrap_or(Value::Null),
                })
                .collect(),
            head: head.first().map_or(0, |row| int(&row[0])),
            integrity,
        };
        for r in &items {
            contents
                .items
                .entry(int(&r[1]))
                .or_default()
                .push((int(&r[0]), text(&r[2])));
        }
        for r in &history {
            contents
                .history
                .entry(int(&r[0]))
                .or_default()
                .push((r[1].clone(), text(&r[2])));
        }
        contents
    }

    fn store(&self, slug: &str) -> i64 {
        self.stores
            .iter()
            .find(|store| store.slug == slug)
            .map(|store| store.id)
            .unwrap_or_else(|| panic!("no store {slug}"))
    }

    /// The events of store `store` as a stream delivers them.
    fn stream_of(&self, store: i64) -> Vec<Seen> {
        self.events
            .iter()
            .filter_map(|event| match event.order {
                Some((event_store, _, order, version)) if event_store == store => Some(Seen {
                    id: event.id,
                    order,
                    version,
                }),
                _ => None,
            })
            .collect()
    }
}

/// What one check found wrong.
#[derive(Default)]
struct Findings {
    /// Acknowledged writes, or delivered events, that are not there.
    lost: Vec<String>,
    /// Rows that disagree with each other.
    half_written: Vec<String>,
}

/// The state an order's events replay to.
#[derive(Default)]
struct Replayed {
    status: Option<String>,
    items: BTreeMap<i64, String>,
    history: Vec<(Option<String>, String)>,
}

/// Checks `contents` against itself, the acknowledged writes and what the
/// stream delivered.
fn check(contents: &Contents, acks: &[Ack], delivered: &[Seen]) -> Findings {
    let mut findings = Findings::default();
    let half = &mut findings.half_written;

    // The log: ids gap-free from 1, the head where the rows end.
    if let Some((i, event)) = (1..)
        .zip(&contents.events)
        .find(|(i, event)| event.id != *i)
    {
        half.push(format!("event ids jump from {} to {}", i - 1, event.id));
    }
    let newest = contents.events.last().map_or(0, |event| event.id);
    if contents.head != newest {
        half.push(format!(
            "the log's head is {}, its newest event {newest}",
            contents.head
        ));
    }

    // Each store: positions 1, 2, 3…, order numbers 1…last, counters agree.
    for store in &contents.stores {
        let positions: Vec<i64> = contents
            .events
            .iter()
            .filter_map(|event| event.order.filter(|o| o.0 == store.id).map(|o| o.1))
            .collect();
        if positions != (1..=positions.len() as i64).collect::<Vec<_>>() {
            half.push(format!("store {}: positions {positions:?}", store.slug));
        }
        if store.last_event_seq != positions.len() as i64 {
            half.push(format!(
                "store {}: last_event_seq {} for {} events",
                store.slug,
                store.last_event_seq,
                positions.len()
            ));
        }
        let mut numbers: Vec<i64> = contents
            .orders
            .iter()
            .filter(|order| order.store == store.id)
            .map(|order| {
                let digits = order
                    .number
                    .trim_start_matches(|c: char| !c.is_ascii_digit());
                digits.parse().unwrap_or(-1)
            })
            .collect();
        numbers.sort_unstable();
        if numbers != (1..=store.last_order_seq).collect::<Vec<_>>() {
            half.push(format!(
                "store {}: order numbers {numbers:?} for last_order_seq {}",
                store.slug, store.last_order_seq
            ));
        }
    }

    // Each order: replaying its events gives its row, its items and its
    // history; acknowledged versions replay to what was acknowledged.
    let mut acked: HashMap<(i64, i64), &Ack> = HashMap::new();
    for ack in acks {
        acked.insert((ack.order, ack.version), ack);
    }
    let mut events_of: BTreeMap<i64, Vec<&EventRow>> = BTreeMap::new();
    for event in &contents.events {
        if let Some((_, _, order, _)) = event.order {
            events_of.entry(order).or_default().push(event);
        }
    }
    let no_items = Vec::new();
    let no_history = Vec::new();
    for order in &contents.orders {
        let id = order.id;
        let events = events_of.get(&id).map_or(&[][..], Vec::as_slice);
        let items = contents.items.get(&id).unwrap_or(&no_items);
        let history = contents.history.get(&id).unwrap_or(&no_history);
        let versions: Vec<i64> = events.iter().filter_map(|e| e.order.map(|o| o.3)).collect();
        if versions != (1..=order.version).collect::<Vec<_>>() {
            half.push(format!(
                "order {id} at version {} has events of versions {versions:?}",
                order.version
            ));
            continue;
        }
        if items.is_empty() {
            half.push(format!("order {id} has no items"));
        }
        if events.first().is_some_and(|e| e.kind != "order_created") {
            half.push(format!("order {id} begins with {}", events[0].kind));
        }
        let mut state = Replayed {
            items: items
                .iter()
                .map(|(item, _)| (*item, "queued".to_owned()))
                .collect(),
            ..Replayed::default()
        };
        for (version, event) in (1..).zip(events) {
            if let Err(why) = state.apply(&event.payload) {
                half.push(format!("order {id}, version {version}: {why}"));
                break;
            }
            if let Some(ack) = acked.remove(&(id, version)) {
                let items: Vec<(i64, String)> = state
                    .items
                    .iter()
                    .map(|(item, status)| (*item, status.clone()))
                    .collect();
                if state.status.as_deref() != Some(ack.status.as_str()) || items != ack.items {
                    findings.lost.push(format!(
                        "order {id} at version {version}: acknowledged {} {:?}, the log replays to {:?} {items:?}",
                        ack.status, ack.items, state.status
                    ));
                }
            }
        }
        if state.status.as_deref() != Some(order.status.as_str()) {
            half.push(format!(
                "order {id} is {} but its events replay to {:?}",
                order.status, state.status
            ));
        }
        let stored: BTreeMap<i64, String> = items.iter().cloned().collect();
        if stored != state.items {
            half.push(format!(
                "order {id}: items {stored:?}, events replay to {:?}",
                state.items
            ));
        }
        if *history != state.history {
            half.push(format!(
                "order {id}: history {history:?}, events replay to {:?}",
                state.history
            ));
        }
    }
    for ((order, version), ack) in acked {
        findings.lost.push(format!(
            "order {order}: acknowledged version {version} ({}) is not there",
            ack.status
        ));
    }

    // Whatever a stream delivered was committed, so it is in the log.
    for seen in delivered {
        let event = contents
            .events
            .get(seen.id as usize - 1)
            .and_then(|event| event.order);
        if event.map(|(_, _, order, version)| (order, version)) != Some((seen.order, seen.version))
        {
            findings.lost.push(format!(
                "the stream delivered {seen:?}; the log has {event:?} at that id"
            ));
        }
    }
    findings
}

impl Replayed {
    /// Applies one event's payload: an item change moves that item on, a
    /// status step (`to`) the order — each from where the replay stands.
    fn apply(&mut self, payload: &Value) -> Result<(), String> {
        let item = &payload["item"];
        if !item.is_null() {
            let (Some(id), Some(from), Some(to)) = (
                item["id"].as_i64(),
                item["from"].as_str(),
                item["to"].as_str(),
            ) else {
                return Err(format!("unreadable item change {item}"));
            };
            match self.items.get_mut(&id) {
                Some(status) if status == from => *status = to.to_owned(),
                other => return Err(format!("item {id} changed from {from}, but was {other:?}")),
            }
        }
        if let Some(to) = payload["to"].as_str() {
            let from = payload["from"].as_str();
            if from != self.status.as_deref() {
                return Err(format!("moved from {from:?}, but was {:?}", self.status));
            }
            self.history.push((from.map(str::to_owned), to.to_owned()));
            self.status = Some(to.to_owned());
        }
        Ok(())
    }
}

/// Totals over a run.
#[derive(Default)]
struct Figures {
    acknowledged: usize,
    checks: usize,
    orders: usize,
    events: usize,
    resumed: usize,
    in_flight_at_kills: usize,
}

async fn crash_loop(backend: Backend) {
    let cycles = cycles();
    let seed = seed();
    let restart_pg = match &backend {
        Backend::Postgres(_) => cluster_to_restart(),
        Backend::Sqlite => None,
    };
    let crashing = Crashing {
        backend,
        dir: tempfile::tempdir().expect("tempdir"),
    };
    let name = crashing.name();
    eprintln!("crash loop on {name}: {cycles} cycles, ORDERTRACK_CRASH_SEED={seed}");
    let mut rng = StdRng::seed_from_u64(seed);
    let client = client();

    let mut server = crashing.start();
    let desk = Desk::signed_in(&client, &server).await;
    assert!(!desk.products.is_empty());
    let mut follower = Follower::new(&desk.cashier);
    follower.resume(&server).await;
    let mut acks: Vec<Ack> = Vec::new();
    let mut figures = Figures::default();

    for cycle in 1..=cycles {
        // Load, then a kill at a random moment with requests in flight.
        let load = Arc::new(Load {
            desk: Desk {
                base: server.base.clone(),
                ..desk.clone()
            },
            acks: Mutex::new(Vec::new()),
            unexpected: Mutex::new(Vec::new()),
            in_flight: AtomicUsize::new(0),
            stop: AtomicBool::new(false),
        });
        let tasks: Vec<_> = (0..TASKS)
            .map(|task| tokio::spawn(load.clone().run(task, cycle)))
            .collect();
        // The random moment counts from the first acknowledged write: on a
        // loaded machine the first answers after a restart can take longer
        // than the whole window, and a cycle that acknowledged nothing
        // would check nothing.
        let deadline = Instant::now() + Duration::from_secs(30);
        while load.acks.lock().expect("lock").is_empty() {
            assert!(
                Instant::now() < deadline,
                "cycle {cycle}: no write was acknowledged within 30 s\n{}",
                server.output()
            );
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        tokio::time::sleep(Duration::from_millis(rng.random_range(LOAD_MS))).await;
        let deadline = Instant::now() + Duration::from_secs(10);
        while load.in_flight.load(Ordering::SeqCst) == 0 {
            assert!(
                Instant::now() < deadline,
                "cycle {cycle}: the load never had requests in flight"
            );
            tokio::task::yield_now().await;
        }
        figures.in_flight_at_kills += load.in_flight.load(Ordering::SeqCst);
        server.kill();
        load.stop.store(true, Ordering::SeqCst);
        for task in tasks {
            task.await.expect("load task");
        }
        let unexpected = load.unexpected.lock().expect("lock").clone();
        assert!(
            unexpected.is_empty(),
            "cycle {cycle}: before the kill every request succeeds: {unexpected:?}\n{}",
            server.output()
        );
        let acknowledged = load.acks.lock().expect("lock").clone();
        assert!(
            !acknowledged.is_empty(),
            "cycle {cycle}: nothing was acknowledged"
        );
        figures.acknowledged += acknowledged.len();
        acks.extend(acknowledged);
        follower.ended().await;

        if let (Some(cluster), Backend::Postgres(schema)) = (&restart_pg, &crashing.backend)
            && cycle == cycles.div_ceil(2)
        {
            eprintln!("cycle {cycle}: restarting PostgreSQL ({cluster})");
            restart_postgres(cluster, schema).await;
        }

        // The data as the kill left it.
        let contents = crashing.contents().await;
        if let Some(integrity) = &contents.integrity {
            assert_eq!(integrity, "ok", "cycle {cycle}: PRAGMA integrity_check");
        }
        let findings = check(&contents, &acks, &follower.seen);
        figures.checks += acks.len();
        assert!(
            findings.lost.is_empty() && findings.half_written.is_empty(),
            "{name}, cycle {cycle} (ORDERTRACK_CRASH_SEED={seed}):\nlost: {:#?}\nhalf-written: {:#?}",
            findings.lost,
            findings.half_written
        );

        // Restarted, the stream continues where it stopped: exactly the
        // store's events, none missing, none twice.
        server = crashing.start();
        let before = follower.seen.len();
        follower.resume(&server).await;
        let expected = contents.stream_of(contents.store(RESTAURANT));
        follower
            .catch_up(expected.last().map_or(0, |seen| seen.id))
            .await;
        assert!(
            follower.seen == expected,
            "cycle {cycle}: the resumed stream differs from the log: {} events seen, {} in the log; first difference at {:?}",
            follower.seen.len(),
            expected.len(),
            follower
                .seen
                .iter()
                .zip(&expected)
                .find(|(seen, logged)| seen != logged)
        );
        figures.resumed += follower.seen.len() - before;
        figures.orders = contents.orders.len();
        figures.events = contents.events.len();
    }
    drop(server);
    eprintln!(
        "crash loop on {name}: {cycles} cycles (seed {seed}), {} acknowledged writes checked \
         ({} checks over the cycles), 0 lost, 0 half-written; {} orders, {} events in the log; \
         {} requests in flight at the kills; {} events delivered after resuming",
        figures.acknowledged,
        figures.checks,
        figures.orders,
        figures.events,
        figures.in_flight_at_kills,
        figures.resumed,
    );
}
