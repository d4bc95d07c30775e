//! Two instances on one PostgreSQL database and one NATS server: a change
//! made through instance A reaches SSE subscribers on instance B in order,
//! with no gaps; killing A mid-stream and resuming its clients on B with
//! `Last-Event-ID` loses and duplicates nothing.
//!
//! Needs PostgreSQL (a throw-away schema on the server at
//! `ORDERTRACK_TEST_DATABASE_URL`, default 127.0.0.1:5432) and NATS at
//! 127.0.0.1:4222. Without them the test says SKIPPED, unless
//! `CI=true`, where it fails.

use std::collections::BTreeSet;
use std::net::TcpStream;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use ordertrack_realtime::{Delivery, Feeder, Hub, SubscribeOptions, Topic};
use ordertrack_store::Repository;
use ordertrack_store::conformance::TestSchema;
use ordertrack_store::testing::skip;
use reqwest::StatusCode;
use serde_json::{Value, json};
use tokio::sync::mpsc;

use crate::support::*;

const SECRET: &str = "multi-instance-test-secret-0123456789abcdef";
const NATS: &str = "nats://127.0.0.1:4222";

fn reachable(port: u16) -> bool {
    TcpStream::connect_timeout(&([127, 0, 0, 1], port).into(), Duration::from_secs(1)).is_ok()
}

/// The test's database (a throw-away schema), or `None` (after saying so)
/// when PostgreSQL or NATS is missing outside CI.
async fn services() -> Option<TestSchema> {
    if !reachable(4222) {
        skip("NATS not reachable at 127.0.0.1:4222");
        return None;
    }
    TestSchema::create_or_skip().await
}

fn time_nanos() -> u128 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock")
        .as_nanos()
}

/// `ordertrack demo` on the schema, its events going through `nats` on
/// `subject`.
fn start(schema: &TestSchema, subject: &str, data_dir: &Path, nats: &str) -> Server {
    Server::start(
        serving("demo", data_dir)
            .args(["--database-url", &schema.url()])
            .args(["--nats-url", nats, "--nats-subject", subject])
            .args(["--secret", SECRET])
            .env("ORDERTRACK_LOG", "warn"),
    )
}

/// Waits until `server` answers `/readyz` with 200 (the bus connects in
/// the background: ready within a few seconds).
async fn wait_ready(client: &reqwest::Client, server: &Server) {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let ready = client
            .get(server.url("/readyz"))
            .send()
            .await
            .expect("readyz");
        if ready.status() == StatusCode::OK {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "never ready: {}",
            server.output()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

impl Desk {
    /// Places an order and confirms it: the (order, version) pairs made.
    async fn change(&self, n: usize) -> Option<Vec<(i64, i64)>> {
        let product = self.products[n % self.products.len()];
        let response = self.place(&[(product, 1)], None).await.ok()?;
        if response.status() != StatusCode::CREATED {
            return None;
        }
        let order: Value = response.json().await.ok()?;
        let id = order["id"].as_i64()?;
        let response = self.confirm(id).await.ok()?;
        if response.status() != StatusCode::OK {
            return Some(vec![(id, 1)]);
        }
        Some(vec![(id, 1), (id, 2)])
    }
}

/// Receives until every expected (order, version) was seen (or times out).
async fn collect(
    events: &mut mpsc::UnboundedReceiver<Seen>, seen: &mut Vec<Seen>,
    expected: &BTreeSet<(i64, i64)>,
) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    loop {
        let have: BTreeSet<(i64, i64)> = seen.iter().map(|s| (s.order, s.version)).collect();
        if expected.is_subset(&have) {
            return;
        }
        match tokio::time::timeout_at(deadline, events.recv()).await {
            Ok(Some(event)) => seen.push(event),
            _ => return,
        }
    }
}

/// In id order, every id once; exactly the expected changes among `mine`.
fn check(what: &str, seen: &[Seen], expected: &BTreeSet<(i64, i64)>, mine: &BTreeSet<i64>) {
    for pair in seen.windows(2) {
        assert!(
            pair[0].id < pair[1].id,
            "{what}: ids out of order or duplicated: {pair:?}"
        );
    }
    let ours: Vec<(i64, i64)> = seen
        .iter()
        .filter(|s| mine.contains(&s.order))
        .map(|s| (s.order, s.version))
        .collect();
    let unique: BTreeSet<(i64, i64)> = ours.iter().copied().collect();
    assert_eq!(unique.len(), ours.len(), "{what}: duplicated changes");
    let missing: Vec<_> = expected.difference(&unique).collect();
    assert!(missing.is_empty(), "{what}: missing changes {missing:?}");
    // Every change of this store is ours, so ids are consecutive.
    for pair in seen.windows(2) {
        assert_eq!(pair[0].id + 1, pair[1].id, "{what}: gap between {pair:?}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn changes_through_a_reach_b_in_order_and_survive_killing_a() {
    let Some(schema) = services().await else {
        return;
    };
    let subject = format!("ordertrack.test.{}.{}", std::process::id(), time_nanos());
    let dir = tempfile::tempdir().expect("tempdir");
    let mut a = start(&schema, &subject, dir.path(), NATS);
    let b = start(&schema, &subject, dir.path(), NATS);
    let client = client();
    let stream_client = reqwest::Client::new();
    for server in [&a, &b] {
        wait_ready(&client, server).await;
    }
    let through_a = Desk::signed_in(&client, &a).await;
    let cashier = through_a.cashier.clone();

    // Subscribers: one on B, one on A.
    let (to_b, mut on_b) = mpsc::unbounded_channel();
    follow(
        stream_client.clone(),
        b.base.clone(),
        cashier.clone(),
        None,
        to_b,
    )
    .await;
    let (to_a, mut on_a) = mpsc::unbounded_channel();
    let a_stream = follow(
        stream_client.clone(),
        a.base.clone(),
        cashier.clone(),
        None,
        to_a,
    )
    .await;

    // Part 1: changes through A reach B.
    let mut expected = BTreeSet::new();
    let mut mine = BTreeSet::new();
    for n in 0..20 {
        let made = through_a.change(n).await.expect("change through A");
        for (order, version) in made {
            mine.insert(order);
            expected.insert((order, version));
        }
    }
    let mut seen_b = Vec::new();
    collect(&mut on_b, &mut seen_b, &expected).await;
    check("B after changes through A", &seen_b, &expected, &mine);
    let mut seen_a = Vec::new();
    collect(&mut on_a, &mut seen_a, &expected).await;
    check("A after changes through A", &seen_a, &expected, &mine);

    // Part 2: changes continue through B while A is killed; A's client
    // resumes on B with Last-Event-ID.
    let stop = Arc::new(AtomicBool::new(false));
    let through_b = Arc::new(Desk {
        base: b.base.clone(),
        ..through_a
    });
    let load = {
        let stop = stop.clone();
        let through_b = through_b.clone();
        tokio::spawn(async move {
            let mut made = Vec::new();
            let mut n = 1000;
            while !stop.load(Ordering::SeqCst) {
                n += 1;
                made.extend(through_b.change(n).await.expect("change through B"));
            }
            made
        })
    };
    tokio::time::sleep(Duration::from_millis(400)).await;
    a.kill();
    let _ = a_stream.await;
    while let Ok(event) = on_a.try_recv() {
        seen_a.push(event);
    }
    let resume_from = seen_a.last().map(|s| s.id).expect("A's client saw events");
    let (to_resumed, mut on_resumed) = mpsc::unbounded_channel();
    follow(
        stream_client.clone(),
        b.base.clone(),
        cashier.clone(),
        Some(resume_from),
        to_resumed,
    )
    .await;
    tokio::time::sleep(Duration::from_millis(400)).await;
    stop.store(true, Ordering::SeqCst);
    for (order, version) in load.await.expect("load") {
        mine.insert(order);
        expected.insert((order, version));
    }
    assert!(expected.len() > 40, "the load through B made changes");

    collect(&mut on_b, &mut seen_b, &expected).await;
    check("B's subscriber throughout", &seen_b, &expected, &mine);
    let mut resumed = Vec::new();
    collect(
        &mut on_resumed,
        &mut resumed,
        &expected
            .iter()
            .copied()
            .filter(|change| !seen_a.iter().any(|s| (s.order, s.version) == *change))
            .collect(),
    )
    .await;
    let mut joined = seen_a.clone();
    joined.extend(resumed);
    check("A's client, resumed on B", &joined, &expected, &mine);
    assert_eq!(
        joined.iter().map(|s| s.id).collect::<Vec<_>>(),
        seen_b.iter().map(|s| s.id).collect::<Vec<_>>(),
        "the resumed client saw exactly what B's own subscriber saw"
    );
    drop(b);

    feeder_backfills_gaps_and_drops_duplicates(&schema).await;
}

/// The subscriber side on its own, against the events just made: fed ids
/// N, N+1, N+4 (and repeats), it reads N+2 and N+3 from the database and
/// hands the hub N..N+4 exactly once, in order; a catch-up reads the rest.
async fn feeder_backfills_gaps_and_drops_duplicates(schema: &TestSchema) {
    let store = schema.open(4, None).await;
    let all = store.events_since(0, 100_000).await.expect("events");
    assert!(all.len() > 10);
    let window = &all[all.len() - 10..];
    let store_of = |entry: &ordertrack_store::LogEntry| {
        entry
            .order_event()
            .map(|e| e.event.store_id)
            .expect("only order events in this test")
    };
    let shop = store_of(&window[0]);
    assert!(window.iter().all(|e| store_of(e) == shop));
    let store: Arc<dyn Repository> = Arc::new(store);
    let hub = Hub::new();
    let mut subscription = hub.subscribe(Topic::Store(shop), SubscribeOptions::default());
    let mut feeder = Feeder::new(store, hub.clone(), window[0].id() - 1);
    for i in [0, 1, 4, 2, 4, 1, 0] {
        feeder.receive(window[i].clone()).await.expect("receive");
    }
    assert_eq!(feeder.last(), window[4].id());
    feeder.catch_up().await.expect("catch up");
    assert_eq!(feeder.last(), window[9].id());
    let mut fed = Vec::new();
    while fed.len() < window.len() {
        match tokio::time::timeout(Duration::from_secs(5), subscription.recv()).await {
            Ok(Some(Delivery::Event(event))) => fed.push(event.id),
            Ok(Some(_)) => {}
            _ => break,
        }
    }
    assert_eq!(fed, window.iter().map(|e| e.id()).collect::<Vec<_>>());
    assert!(
        tokio::time::timeout(Duration::from_millis(200), subscription.recv())
            .await
            .is_err(),
        "nothing fed twice"
    );
}

/// A publisher whose NATS is unreachable (a closed port) keeps committing;
/// an instance on the real NATS still sees every change, from the database
/// (periodic catch-up), and the publisher's `/readyz` reports the bus down.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn changes_reach_other_instances_when_the_publishers_bus_is_down() {
    let Some(schema) = services().await else {
        return;
    };
    let subject = format!(
        "ordertrack.test.down.{}.{}",
        std::process::id(),
        time_nanos()
    );
    let dir = tempfile::tempdir().expect("tempdir");
    let closed = std::net::TcpListener::bind("127.0.0.1:0").expect("port");
    let closed_port = closed.local_addr().expect("addr").port();
    drop(closed);
    let a = start(
        &schema,
        &subject,
        dir.path(),
        &format!("nats://127.0.0.1:{closed_port}"),
    );
    let b = start(&schema, &subject, dir.path(), NATS);
    let client = client();
    let ready = client.get(a.url("/readyz")).send().await.expect("readyz");
    assert_eq!(ready.status(), StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(ready.text().await.expect("text"), "event bus unavailable");
    let through_a = Desk::signed_in(&client, &a).await;
    let (to_b, mut on_b) = mpsc::unbounded_channel();
    follow(
        reqwest::Client::new(),
        b.base.clone(),
        through_a.cashier.clone(),
        None,
        to_b,
    )
    .await;
    let mut expected = BTreeSet::new();
    let mut mine = BTreeSet::new();
    for n in 0..10 {
        let made = tokio::time::timeout(Duration::from_secs(10), through_a.change(n))
            .await
            .expect("commits do not wait for the bus")
            .expect("change through A");
        for (order, version) in made {
            mine.insert(order);
            expected.insert((order, version));
        }
    }
    let mut seen_b = Vec::new();
    collect(&mut on_b, &mut seen_b, &expected).await;
    check("B while A's bus is down", &seen_b, &expected, &mine);
}

/// A NATS server of this test's own, on a port no other test uses, so it can
/// be stopped and started again without disturbing anyone.
struct PrivateNats {
    port: u16,
    child: Option<Child>,
}

impl PrivateNats {
    const BIN: &'static str = "/usr/sbin/nats-server";

    fn start() -> PrivateNats {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("free port")
            .port();
        let mut nats = PrivateNats { port, child: None };
        nats.restart();
        nats
    }

    fn restart(&mut self) {
        let child = Command::new(Self::BIN)
            .args(["-a", "127.0.0.1", "-p", &self.port.to_string()])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start nats-server");
        self.child = Some(child);
        let deadline = Instant::now() + Duration::from_secs(10);
        while !reachable(self.port) {
            assert!(Instant::now() < deadline, "nats-server did not start");
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    fn url(&self) -> String {
        format!("nats://127.0.0.1:{}", self.port)
    }
}

impl Drop for PrivateNats {
    fn drop(&mut self) {
        self.stop();
    }
}

/// NATS stopped for a moment: changes keep committing, and subscribers on
/// the other instance have every change, in order and once, after it returns.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn changes_commit_while_nats_is_stopped_and_subscribers_catch_up_when_it_returns() {
    let Some(schema) = services().await else {
        return;
    };
    if !Path::new(PrivateNats::BIN).exists() {
        skip(&format!("{} is missing", PrivateNats::BIN));
        return;
    }
    let mut nats = PrivateNats::start();
    let subject = format!(
        "ordertrack.test.outage.{}.{}",
        std::process::id(),
        time_nanos()
    );
    let dir = tempfile::tempdir().expect("tempdir");
    let a = start(&schema, &subject, dir.path(), &nats.url());
    let b = start(&schema, &subject, dir.path(), &nats.url());
    let client = client();
    let through_a = Desk::signed_in(&client, &a).await;
    let (to_b, mut on_b) = mpsc::unbounded_channel();
    follow(
        reqwest::Client::new(),
        b.base.clone(),
        through_a.cashier.clone(),
        None,
        to_b,
    )
    .await;
    let mut expected = BTreeSet::new();
    let mut mine = BTreeSet::new();
    let mut make = async |range: std::ops::Range<usize>, what: &str| {
        for n in range {
            let made = tokio::time::timeout(Duration::from_secs(10), through_a.change(n))
                .await
                .unwrap_or_else(|_| panic!("{what}: a change waited for the bus"))
                .unwrap_or_else(|| panic!("{what}: change {n} through A failed"));
            for (order, version) in made {
                mine.insert(order);
                expected.insert((order, version));
            }
        }
    };
    make(0..5, "before the outage").await;
    nats.stop();
    make(5..10, "during the outage").await;
    nats.restart();
    make(10..15, "after the outage").await;

    let mut seen_b = Vec::new();
    collect(&mut on_b, &mut seen_b, &expected).await;
    check("B across a NATS outage", &seen_b, &expected, &mine);
    assert_eq!(expected.len(), 30, "15 orders placed and confirmed");
}

/// Two instances (`demo`) on a fresh schema, A on the bus and B on
/// `b_nats` (waited for only when it is the bus), with the schema and data
/// folder that must outlive them; `None` when the services are missing.
async fn two_instances(
    topic: &str, b_nats: &str,
) -> Option<(TestSchema, tempfile::TempDir, Server, Server)> {
    let schema = services().await?;
    let subject = format!(
        "ordertrack.test.{topic}.{}.{}",
        std::process::id(),
        time_nanos()
    );
    let dir = tempfile::tempdir().expect("tempdir");
    let a = start(&schema, &subject, dir.path(), NATS);
    let b = start(&schema, &subject, dir.path(), b_nats);
    let client = client();
    wait_ready(&client, &a).await;
    if b_nats == NATS {
        wait_ready(&client, &b).await;
    }
    Some((schema, dir, a, b))
}

/// Registers `email` through `server` and makes it `role` of the
/// restaurant (as `owner`): its first session's token and its user id.
async fn new_staff_member(
    client: &reqwest::Client, server: &Server, owner: &str, email: &str, role: &str,
) -> (String, i64) {
    let registered = client
        .post(server.url("/api/v1/auth/register"))
        .json(&json!({"email": email, "password": DEMO_PASSWORD, "name": "Staff Member"}))
        .send()
        .await
        .expect("register");
    assert_eq!(registered.status(), StatusCode::CREATED, "register {email}");
    let body: Value = registered.json().await.expect("register body");
    let added = client
        .post(server.url(&format!("/api/v1/stores/{RESTAURANT}/staff")))
        .bearer_auth(owner)
        .json(&json!({"email": email, "role": role}))
        .send()
        .await
        .expect("add staff");
    assert_eq!(added.status(), StatusCode::CREATED, "add {email}");
    (
        body["token"].as_str().expect("token").to_owned(),
        body["user"]["id"].as_i64().expect("id"),
    )
}

/// Access ends on every instance: a staff member removed through A loses
/// the store and order streams they hold open on B, a staff member demoted
/// through A loses their store stream on B, and a session logged out
/// through A loses its streams on B.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_staff_member_removed_through_a_loses_their_open_stream_on_b() {
    let Some((_schema, _dir, a, b)) = two_instances("access", NATS).await else {
        return;
    };
    let client = client();
    let owner = token(&client, &a, "owner@demo.test", DEMO_PASSWORD).await;
    let staff = a.url(&format!("/api/v1/stores/{RESTAURANT}/staff"));
    let (kim, kim_id) = new_staff_member(&client, &a, &owner, "kim@kitchen.test", "kitchen").await;
    new_staff_member(&client, &a, &owner, "olga@owner.test", "owner").await;
    let olga = token(&client, &a, "olga@owner.test", DEMO_PASSWORD).await;
    let through_a = Desk::signed_in(&client, &a).await;
    let (order, _) = through_a.change(0).await.expect("an order").remove(0);

    // Streams on B: Kim's store and order streams, Olga's store stream,
    // Alice's own orders, and the cashier's store stream (untouched).
    let streams = reqwest::Client::new();
    let on_b = |path: String, token: &str| {
        let (sender, receiver) = mpsc::unbounded_channel();
        let opened = follow_url(
            streams.clone(),
            b.url(&path),
            token.to_owned(),
            None,
            sender,
        );
        async move { (opened.await, receiver) }
    };
    let store_path = format!("/api/v1/stores/{RESTAURANT}/events");
    let (kims_store, mut kims_events) = on_b(store_path.clone(), &kim).await;
    let (kims_order, _) = on_b(format!("/api/v1/orders/{order}/events"), &kim).await;
    let (olgas_store, _) = on_b(store_path.clone(), &olga).await;
    let (alices, _) = on_b("/api/v1/me/events".to_owned(), &through_a.alice).await;
    let (cashiers, mut cashiers_events) = on_b(store_path, &through_a.cashier).await;

    // Kim's stream on B is live before the removal.
    let (second, _) = through_a.change(1).await.expect("an order").remove(0);
    let seen = tokio::time::timeout(Duration::from_secs(10), kims_events.recv())
        .await
        .expect("Kim's stream on B is live")
        .expect("an event");
    assert_eq!(seen.order, second);

    let ends_within = async |stream: tokio::task::JoinHandle<()>, what: &str| {
        let started = Instant::now();
        tokio::time::timeout(Duration::from_secs(10), stream)
            .await
            .unwrap_or_else(|_| panic!("{what} on B still open 10 s later"))
            .expect("reader");
        println!(
            "{what} on B ended; waited {:?} after A answered",
            started.elapsed()
        );
    };
    let removed = client
        .delete(format!("{staff}/{kim_id}"))
        .bearer_auth(&owner)
        .send()
        .await
        .expect("remove Kim");
    assert_eq!(removed.status(), StatusCode::NO_CONTENT);
    ends_within(kims_store, "the removed member's store stream").await;
    ends_within(kims_order, "the removed member's order stream").await;

    let demoted = client
        .post(&staff)
        .bearer_auth(&owner)
        .json(&json!({"email": "olga@owner.test", "role": "driver"}))
        .send()
        .await
        .expect("demote Olga");
    assert_eq!(demoted.status(), StatusCode::CREATED);
    ends_within(olgas_store, "the demoted owner's store stream").await;

    let out = client
        .post(a.url("/api/v1/auth/logout"))
        .bearer_auth(&through_a.alice)
        .send()
        .await
        .expect("logout");
    assert_eq!(out.status(), StatusCode::NO_CONTENT);
    ends_within(alices, "the logged-out session's stream").await;

    // Refused on B as on A; everyone else's streams carry on.
    let refused = streams
        .get(b.url(&format!("/api/v1/stores/{RESTAURANT}/events")))
        .bearer_auth(&kim)
        .send()
        .await
        .expect("reopen");
    assert_eq!(refused.status(), StatusCode::NOT_FOUND);
    let cashier_on_b = Desk::signed_in(&client, &b).await;
    let (third, _) = cashier_on_b.change(2).await.expect("an order").remove(0);
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    loop {
        let seen = tokio::time::timeout_at(deadline, cashiers_events.recv())
            .await
            .expect("the cashier's stream carries on")
            .expect("an event");
        if seen.order == third {
            break;
        }
    }
    assert!(!cashiers.is_finished());
}

/// A revocation acknowledged by A is refused by B on the very next request,
/// sent the moment A answered — whatever B's bus delivered: B resolves
/// sessions from its cache only at the store's current access mark. The
/// streams the revoked access holds open on B end too.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_session_revoked_through_a_is_refused_on_b_at_once() {
    revoked_through_a_refused_on_b(NATS).await;
}

/// The same with B cut off from the bus (its NATS address answers nobody):
/// the refusal comes from the mark B reads with each request, not from
/// the bus; B's streams end when it catches up from the database.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_session_revoked_through_a_is_refused_on_b_at_once_without_the_bus() {
    revoked_through_a_refused_on_b("nats://127.0.0.1:9").await;
}

async fn revoked_through_a_refused_on_b(b_nats: &str) {
    let Some((_schema, _dir, a, b)) = two_instances("revoked", b_nats).await else {
        return;
    };
    let client = client();
    let owner = token(&client, &a, "owner@demo.test", DEMO_PASSWORD).await;
    let staff = a.url(&format!("/api/v1/stores/{RESTAURANT}/staff"));
    let (_, kim_id) = new_staff_member(&client, &a, &owner, "kim@kitchen.test", "kitchen").await;
    new_staff_member(&client, &a, &owner, "olga@owner.test", "owner").await;
    // Sessions of their own (not the one registering made).
    let kim = token(&client, &a, "kim@kitchen.test", DEMO_PASSWORD).await;
    let olga = token(&client, &a, "olga@owner.test", DEMO_PASSWORD).await;
    let alice = token(&client, &a, "alice@demo.test", DEMO_PASSWORD).await;
    let streams = reqwest::Client::new();
    let status_on = async |server: &Server, path: &str, token: &str| {
        client
            .get(server.url(path))
            .bearer_auth(token)
            .send()
            .await
            .expect("request")
            .status()
    };

    // Each case: who, the request B must refuse, the stream on B that must
    // end, and the revocation made through A.
    let kitchen = format!("/api/v1/stores/{RESTAURANT}/kitchen");
    let staff_list = format!("/api/v1/stores/{RESTAURANT}/staff");
    let store_stream = format!("/api/v1/stores/{RESTAURANT}/events");
    let cases = [
        (
            "removed staff member",
            &kim,
            kitchen.as_str(),
            store_stream.as_str(),
        ),
        (
            "demoted owner",
            &olga,
            staff_list.as_str(),
            store_stream.as_str(),
        ),
        (
            "logged-out session",
            &alice,
            "/api/v1/auth/me",
            "/api/v1/me/events",
        ),
    ];
    for (what, who, path, stream_path) in cases {
        // B has resolved (and kept) the session before the revocation.
        for _ in 0..2 {
            assert_eq!(status_on(&b, path, who).await, StatusCode::OK, "{what}");
        }
        let (sender, _events) = mpsc::unbounded_channel();
        let stream = follow_url(
            streams.clone(),
            b.url(stream_path),
            who.to_string(),
            None,
            sender,
        )
        .await;

        let revoked = match what {
            "removed staff member" => client
                .delete(format!("{staff}/{kim_id}"))
                .bearer_auth(&owner)
                .send()
                .await
                .expect("remove"),
            "demoted owner" => client
                .post(&staff)
                .bearer_auth(&owner)
                .json(&json!({"email": "olga@owner.test", "role": "driver"}))
                .send()
                .await
                .expect("demote"),
            _ => client
                .post(a.url("/api/v1/auth/logout"))
                .bearer_auth(who)
                .send()
                .await
                .expect("logout"),
        };
        assert!(
            revoked.status().is_success(),
            "{what}: {}",
            revoked.status()
        );

        // No pause: the very next request on B.
        let on_b = status_on(&b, path, who).await;
        let on_a = status_on(&a, path, who).await;
        assert_ne!(on_b, StatusCode::OK, "{what}: B still serves it");
        assert_eq!(on_b, on_a, "{what}: B refuses as A does");
        if what == "logged-out session" {
            assert_eq!(on_b, StatusCode::UNAUTHORIZED);
        }

        let started = Instant::now();
        tokio::time::timeout(Duration::from_secs(10), stream)
            .await
            .unwrap_or_else(|_| panic!("{what}: stream on B still open 10 s later"))
            .expect("reader");
        println!(
            "{what}: stream on B ended {:?} after B refused",
            started.elapsed()
        );
    }
}
