//! Durability under a crash: whatever the server acknowledged before it was
//! SIGKILLed mid-load is there after a restart on the same data.

use std::collections::{BTreeMap, HashSet};
use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::support::*;

const TASKS: usize = 16;
const LOAD: Duration = Duration::from_millis(1500);

/// `ordertrack demo` over `data_dir`.
fn start_demo(data_dir: &Path) -> Server {
    // Request logs would only slow the load down.
    Server::start(serving("demo", data_dir).env("ORDERTRACK_LOG", "warn"))
}

/// What the server acknowledged before it died.
#[derive(Default)]
struct Acknowledged {
    /// Order id → number, for every 201 to `POST /orders`.
    orders: Mutex<BTreeMap<i64, String>>,
    /// Order id → (version, status), for every 200 to a transition.
    transitions: Mutex<BTreeMap<i64, (i64, String)>>,
    /// Answers that were neither a success nor a dead connection.
    unexpected: Mutex<Vec<String>>,
}

struct Load {
    desk: Desk,
    acknowledged: Acknowledged,
    in_flight: AtomicUsize,
    stop: AtomicBool,
}

impl Load {
    /// One task: place orders as alice and (on even tasks) confirm them as the
    /// cashier, until the server stops answering or the load ends.
    async fn run(self: Arc<Self>, task: usize) {
        let mut n = task;
        while !self.stop.load(Ordering::SeqCst) {
            n += 1;
            let products = &self.desk.products;
            let items = [
                (products[n % products.len()], 1 + n as i64 % 3),
                (products[(n + 5) % products.len()], 1),
            ];
            let notes = format!("task {task} order {n}");
            self.in_flight.fetch_add(1, Ordering::SeqCst);
            let placed = self.desk.place(&items, Some(&notes)).await;
            let order = match placed {
                Ok(response) if response.status() == StatusCode::CREATED => {
                    response.json::<Value>().await.ok()
                }
                Ok(response) => {
                    self.acknowledged
                        .unexpected
                        .lock()
                        .expect("lock")
                        .push(format!("place: {}", response.status()));
                    None
                }
                Err(_) => None,
            };
            self.in_flight.fetch_sub(1, Ordering::SeqCst);
            // No order (dead server, or a body cut off by the kill): stop.
            let Some(order) = order else { break };
            let id = order["id"].as_i64().expect("id");
            let number = order["number"].as_str().expect("number").to_owned();
            self.acknowledged
                .orders
                .lock()
                .expect("lock")
                .insert(id, number);

            if task % 2 == 1 {
                continue;
            }
            self.in_flight.fetch_add(1, Ordering::SeqCst);
            let moved = self.desk.confirm(id).await;
            let moved = match moved {
                Ok(response) if response.status() == StatusCode::OK => {
                    response.json::<Value>().await.ok()
                }
                Ok(response) => {
                    self.acknowledged
                        .unexpected
                        .lock()
                        .expect("lock")
                        .push(format!("transition: {}", response.status()));
                    None
                }
                Err(_) => None,
            };
            self.in_flight.fetch_sub(1, Ordering::SeqCst);
            let Some(moved) = moved else { break };
            self.acknowledged.transitions.lock().expect("lock").insert(
                id,
                (
                    moved["version"].as_i64().expect("version"),
                    moved["status"].as_str().expect("status").to_owned(),
                ),
            );
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn acknowledged_orders_and_transitions_survive_sigkill() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut server = start_demo(dir.path());
    let client = client();
    let desk = Desk::signed_in(&client, &server).await;
    assert!(!desk.products.is_empty());
    let alice = desk.alice.clone();

    let load = Arc::new(Load {
        desk,
        acknowledged: Acknowledged::default(),
        in_flight: AtomicUsize::new(0),
        stop: AtomicBool::new(false),
    });
    let tasks: Vec<_> = (0..TASKS)
        .map(|task| tokio::spawn(load.clone().run(task)))
        .collect();

    // Let the load run, then kill the server while requests are in flight.
    tokio::time::sleep(LOAD).await;
    let deadline = Instant::now() + Duration::from_secs(10);
    while load.in_flight.load(Ordering::SeqCst) < TASKS / 2 {
        assert!(
            Instant::now() < deadline,
            "the load never had requests in flight"
        );
        tokio::task::yield_now().await;
    }
    let in_flight_at_kill = load.in_flight.load(Ordering::SeqCst);
    server.kill();
    load.stop.store(true, Ordering::SeqCst);
    for task in tasks {
        task.await.expect("load task");
    }
    let before_crash = server.output();
    drop(server);

    let orders = load.acknowledged.orders.lock().expect("lock").clone();
    let transitions = load.acknowledged.transitions.lock().expect("lock").clone();
    let unexpected = load.acknowledged.unexpected.lock().expect("lock").clone();
    assert!(
        unexpected.is_empty(),
        "before the kill every request succeeds: {unexpected:?}\n{before_crash}"
    );
    assert!(
        orders.len() >= TASKS,
        "the load placed too few orders to mean anything: {}",
        orders.len()
    );
    assert!(!transitions.is_empty(), "the load confirmed no orders");
    assert!(in_flight_at_kill > 0);
    eprintln!(
        "killed with {in_flight_at_kill} requests in flight; {} orders and {} confirmations acknowledged",
        orders.len(),
        transitions.len()
    );
    let numbers: HashSet<&String> = orders.values().collect();
    assert_eq!(
        numbers.len(),
        orders.len(),
        "acknowledged numbers are unique"
    );

    // Restart on the same data: the demo is not seeded again.
    let server = start_demo(dir.path());
    let (status, _) = get(&client, &server, "/api/v1/auth/me", Some(&alice)).await;
    assert_eq!(
        status,
        StatusCode::OK,
        "alice's acknowledged session survived"
    );
    let desk = Desk::signed_in(&client, &server).await;
    let alice = &desk.alice;

    for (id, number) in &orders {
        let (status, order) = get(
            &client,
            &server,
            &format!("/api/v1/orders/{id}"),
            Some(alice),
        )
        .await;
        assert_eq!(
            status,
            StatusCode::OK,
            "acknowledged order {id} ({number}) is lost after the crash"
        );
        assert_eq!(order["number"].as_str(), Some(number.as_str()));
        let (status, history) = get(
            &client,
            &server,
            &format!("/api/v1/orders/{id}/history"),
            Some(alice),
        )
        .await;
        assert_eq!(status, StatusCode::OK);
        let history = history.as_array().expect("history");
        assert!(!history.is_empty(), "order {id} has no history");
        assert_eq!(history[0]["from"], Value::Null, "order {id}: {history:?}");
        assert_eq!(history[0]["to"], json!("pending"));
        assert_eq!(history[0]["actor"]["role"], json!("customer"));

        let version = order["version"].as_i64().expect("version");
        match transitions.get(id) {
            Some((acked_version, acked_status)) => {
                assert!(
                    version >= *acked_version,
                    "order {id}: version {version} < acknowledged {acked_version}"
                );
                assert_eq!(&order["status"], &json!(acked_status), "order {id}");
                assert!(
                    history
                        .iter()
                        .any(|h| h["from"] == json!("pending") && h["to"] == json!("confirmed")),
                    "order {id}: the acknowledged confirmation is in its history: {history:?}"
                );
            }
            None => {
                // An unacknowledged change may or may not have landed, but the
                // order and its history must agree.
                assert_eq!(history.len() as i64, version, "order {id}: {history:?}");
            }
        }
    }

    // Numbering continues after the crash without reusing a number.
    let response = desk
        .place(&[(load.desk.products[0], 1)], None)
        .await
        .expect("place after restart");
    assert_eq!(response.status(), StatusCode::CREATED);
    let fresh: Value = response.json().await.expect("order");
    let fresh_number = fresh["number"].as_str().expect("number").to_owned();
    assert!(
        !numbers.contains(&fresh_number),
        "{fresh_number} was already acknowledged before the crash"
    );

    // The store's list holds every acknowledged order exactly once.
    let mut listed = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        let path = match &cursor {
            Some(cursor) => {
                format!("/api/v1/orders?store=demo-restaurant&limit=100&cursor={cursor}")
            }
            None => "/api/v1/orders?store=demo-restaurant&limit=100".to_owned(),
        };
        let (status, page) = get(&client, &server, &path, Some(&desk.cashier)).await;
        assert_eq!(status, StatusCode::OK, "{page}");
        for order in page["items"].as_array().expect("items") {
            listed.push(order["id"].as_i64().expect("id"));
        }
        match page["next_cursor"].as_str() {
            Some(next) => cursor = Some(next.to_owned()),
            None => break,
        }
    }
    let listed_set: HashSet<i64> = listed.iter().copied().collect();
    assert_eq!(listed_set.len(), listed.len(), "no order is listed twice");
    for id in orders.keys() {
        assert!(
            listed_set.contains(id),
            "order {id} is missing from the list"
        );
    }
}
