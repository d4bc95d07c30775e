//! Live updates end to end: real HTTP (SSE and WebSocket) clients against a
//! real server on 127.0.0.1:0 over a fresh SQLite database. Each test is one
//! "must show" of the live-update issue.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use futures::{SinkExt, StreamExt};
use ordertrack_domain::{ItemStatus, OrderId, StoreId, UserId};
use ordertrack_store::{EventFilter, StoredEvent};
use reqwest::StatusCode;
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::sync::watch;

use crate::support::*;

fn store_path(slug: &str) -> String {
    format!("/stores/{slug}/events")
}

fn order_path(id: i64) -> String {
    format!("/orders/{id}/events")
}

const ME: &str = "/me/events";

async fn store_id(server: &TestApp, slug: &str) -> i64 {
    (server.app.store_by_slug(slug).await.expect("store").id).get()
}

/// What one watcher expects of one event.
#[derive(Debug)]
struct Expect {
    kind: &'static str,
    version: i64,
    to: Option<&'static str>,
    item: Option<(i64, &'static str)>,
}

fn status(version: i64, to: &'static str) -> Expect {
    Expect {
        kind: "status_changed",
        version,
        to: Some(to),
        item: None,
    }
}

fn item(version: i64, id: i64, to: &'static str) -> Expect {
    Expect {
        kind: "item_status_changed",
        version,
        to: None,
        item: Some((id, to)),
    }
}

/// Reads the next event of each watcher and checks it against `expect`;
/// returns the events' JSON (the same bytes for every watcher).
async fn expect_next(
    watchers: &mut [(&str, &mut Sse, &mut i64)], order: i64, expect: &Expect,
) -> String {
    let mut data = None;
    for (name, sse, last_id) in watchers.iter_mut() {
        let frame = sse
            .next_event()
            .await
            .unwrap_or_else(|| panic!("{name}: stream ended before {expect:?}"));
        let event = frame.json();
        assert_eq!(frame.event.as_deref(), Some(expect.kind), "{name}: {event}");
        assert_eq!(event["type"], expect.kind, "{name}: {event}");
        assert_eq!(event["order_id"], order, "{name}: {event}");
        assert_eq!(event["order_version"], expect.version, "{name}: {event}");
        let id = frame.id_num();
        assert_eq!(event["id"], id, "{name}: the SSE id is the event's id");
        assert!(
            id > **last_id,
            "{name}: ids strictly increase ({id} after {last_id})"
        );
        **last_id = id;
        if let Some(to) = expect.to {
            assert_eq!(event["to"], to, "{name}: {event}");
            assert_eq!(event["summary"]["status"], to, "{name}: {event}");
        }
        if let Some((item, to)) = expect.item {
            assert_eq!(event["item"]["id"], item, "{name}: {event}");
            assert_eq!(event["item"]["to"], to, "{name}: {event}");
        }
        let text = frame.data.clone().unwrap_or_default();
        match &data {
            None => data = Some(text),
            Some(first) => assert_eq!(first, &text, "{name}: every watcher gets the same event"),
        }
    }
    data.unwrap_or_default()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_order_watcher_receives_creation_then_each_transition_and_item_change_in_order() {
    let server = spawn_app().await;
    let alice = server.login("alice@demo.test").await;
    let owner = server.login("owner@demo.test").await;
    let kitchen = server.login("kitchen@demo.test").await;
    let burger = server.product_id(RESTAURANT, "Classic Burger").await;
    let fries = server.product_id(RESTAURANT, "Fries").await;

    // Alice's stream of her orders and the kitchen's store stream are open
    // before the order exists: its creation reaches them live.
    let (mut me, start) = server.ready_sse(ME, Some(&alice)).await;
    let (mut store, _) = server
        .ready_sse(&store_path(RESTAURANT), Some(&kitchen))
        .await;
    let order = server
        .place_order(&alice, RESTAURANT, &[(burger, 1), (fries, 1)])
        .await;
    let id = id(&order);
    let items = item_ids(&order);
    let (burger_item, fries_item) = (items[0], items[1]);

    // The order's own stream, opened as soon as the order exists, resumes
    // from before it and so starts with its creation too.
    let mut watch = server.sse(&order_path(id), Some(&alice), Some(start)).await;
    let (mut me_last, mut store_last, mut watch_last) = (start, start, start);
    macro_rules! watchers {
        () => {
            [
                ("order stream", &mut watch, &mut watch_last),
                ("me stream", &mut me, &mut me_last),
                ("store stream", &mut store, &mut store_last),
            ]
        };
    }

    let created = expect_next(
        &mut watchers!(),
        id,
        &Expect {
            kind: "order_created",
            version: 1,
            to: Some("pending"),
            item: None,
        },
    )
    .await;
    let created: Value = serde_json::from_str(&created).expect("JSON");
    assert_eq!(created["customer_id"], order["customer_id"]);
    assert_eq!(created["summary"]["number"], order["number"]);
    let mut stations: Vec<&str> = created["stations"]
        .as_array()
        .expect("stations")
        .iter()
        .filter_map(Value::as_str)
        .collect();
    stations.sort_unstable();
    assert_eq!(stations, ["fryer", "grill"]);

    let after = server.move_order(&owner, id, "confirmed").await;
    let event = expect_next(&mut watchers!(), id, &status(2, "confirmed")).await;
    assert_eq!(after["version"], 2);
    let event: Value = serde_json::from_str(&event).expect("JSON");
    assert_eq!(event["from"], "pending");
    assert_eq!(event["actor_role"], "owner");

    server.move_order(&kitchen, id, "preparing").await;
    expect_next(&mut watchers!(), id, &status(3, "preparing")).await;

    server
        .set_item(&kitchen, id, burger_item, "preparing")
        .await
        .expect(200);
    expect_next(&mut watchers!(), id, &item(4, burger_item, "preparing")).await;

    server
        .set_item(&kitchen, id, burger_item, "ready")
        .await
        .expect(200);
    expect_next(&mut watchers!(), id, &item(5, burger_item, "ready")).await;

    // The last item ready moves the order on by itself: two events, in order.
    let after = server
        .set_item(&kitchen, id, fries_item, "ready")
        .await
        .expect(200);
    assert_eq!(after["status"], "ready");
    assert_eq!(after["version"], 7);
    expect_next(&mut watchers!(), id, &item(6, fries_item, "ready")).await;
    let event = expect_next(&mut watchers!(), id, &status(7, "ready")).await;
    let event: Value = serde_json::from_str(&event).expect("JSON");
    assert_eq!(event["note"], "all items ready");

    let after = server.move_order(&owner, id, "completed").await;
    assert_eq!(after["version"], 8);
    let event = expect_next(&mut watchers!(), id, &status(8, "completed")).await;
    let event: Value = serde_json::from_str(&event).expect("JSON");
    assert_eq!(event["summary"]["terminal"], true);

    // The streams match the database exactly.
    let truth = server
        .events_after(EventFilter::Order(OrderId::new(id)), start)
        .await;
    assert_eq!(truth.len(), 8);
    assert_eq!(truth.last().map(|e| e.id), Some(watch_last));
}

/// A watcher that drops its connection after a random number of events and
/// resumes from the last id it saw, until it has caught up with `target`.
async fn resuming_watcher(
    server: Arc<TestApp>, name: &'static str, path: String, token: String, seed: u64,
    ready: tokio::sync::oneshot::Sender<i64>, mut target: watch::Receiver<Option<i64>>,
) -> (Vec<(i64, Value)>, usize) {
    let mut ready = Some(ready);
    let mut rng = Rng::new(seed);
    let mut seen: Vec<(i64, Value)> = Vec::new();
    let mut last: Option<i64> = None;
    let mut connections = 0;
    let deadline = Instant::now() + Duration::from_secs(40);
    loop {
        assert!(
            Instant::now() < deadline,
            "{name}: did not catch up; saw {}",
            seen.len()
        );
        let mut sse = server.sse(&path, Some(&token), last).await;
        connections += 1;
        if last.is_none() {
            let frame = sse.next_event().await.expect("ready");
            assert_eq!(frame.event.as_deref(), Some("ready"));
            last = Some(frame.id_num());
            if let Some(ready) = ready.take() {
                let _ = ready.send(frame.id_num());
            }
        }
        // Drop the connection after this many events (sometimes at once).
        let quota = rng.between(0, 20);
        let mut got = 0;
        while got < quota {
            match sse.next_event_within(Duration::from_millis(300)).await {
                Ok(Some(frame)) => {
                    assert_ne!(
                        frame.event.as_deref(),
                        Some("snapshot"),
                        "{name}: resumed too far back"
                    );
                    assert_ne!(frame.event.as_deref(), Some("ready"), "{name}: {frame:?}");
                    let id = frame.id_num();
                    seen.push((id, frame.json()));
                    last = Some(id);
                    got += 1;
                }
                Ok(None) => break,
                Err(()) => {
                    let caught_up = target
                        .borrow_and_update()
                        .is_some_and(|t| last.is_some_and(|l| l >= t));
                    if caught_up {
                        return (seen, connections);
                    }
                }
            }
        }
        drop(sse);
        let caught_up = target
            .borrow_and_update()
            .is_some_and(|t| last.is_some_and(|l| l >= t));
        if caught_up {
            return (seen, connections);
        }
        tokio::time::sleep(Duration::from_millis(rng.below(15))).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn watchers_that_drop_and_resume_during_500_changes_see_each_event_exactly_once_in_commit_order()
 {
    let server = Arc::new(spawn_app().await);
    let mut rng = Rng::from_clock("resume");
    let alice = server.login("alice@demo.test").await;
    let bob = server.login("bob@demo.test").await;
    let owner = server.login("owner@demo.test").await;
    let kitchen = server.login("kitchen@demo.test").await;
    let (alice_caller, bob_caller, owner_caller) = (
        server.caller(&alice).await,
        server.caller(&bob).await,
        server.caller(&owner).await,
    );
    let burger = server.product_id(RESTAURANT, "Classic Burger").await;
    let fries = server.product_id(RESTAURANT, "Fries").await;
    let lemonade = server.product_id(RESTAURANT, "Lemonade").await;
    let restaurant = store_id(&server, RESTAURANT).await;

    // 20 orders, half Alice's, half Bob's; every other one has a fryer item.
    let mut orders: Vec<(i64, Vec<i64>)> = Vec::new();
    for n in 0..20 {
        let caller = if n % 2 == 0 {
            &alice_caller
        } else {
            &bob_caller
        };
        let products = if n % 4 < 2 {
            vec![burger, fries]
        } else {
            vec![burger, lemonade]
        };
        orders.push(server.place_direct(caller, RESTAURANT, &products).await);
    }
    let watched_order = orders[0].0;

    // Four watchers, each of a different topic, each dropping and resuming.
    let watchers: Vec<(&'static str, String, String, EventFilter, Option<&str>)> = vec![
        (
            "store",
            store_path(RESTAURANT),
            owner.clone(),
            EventFilter::Store(StoreId::new(restaurant)),
            None,
        ),
        (
            "me",
            ME.to_owned(),
            alice.clone(),
            EventFilter::Customer(alice_caller.user.id),
            None,
        ),
        (
            "order",
            order_path(watched_order),
            alice.clone(),
            EventFilter::Order(OrderId::new(watched_order)),
            None,
        ),
        (
            "fryer station",
            format!("{}?station=fryer", store_path(RESTAURANT)),
            kitchen.clone(),
            EventFilter::Store(StoreId::new(restaurant)),
            Some("fryer"),
        ),
    ];
    let start = server.position().await;
    let mut targets = Vec::new();
    let mut tasks = Vec::new();
    let mut readies = Vec::new();
    for (name, path, token, _, _) in &watchers {
        let (target, targeted) = watch::channel(None);
        let (ready, is_ready) = tokio::sync::oneshot::channel();
        targets.push(target);
        readies.push(is_ready);
        tasks.push(tokio::spawn(resuming_watcher(
            server.clone(),
            name,
            path.clone(),
            token.clone(),
            rng.next(),
            ready,
            targeted,
        )));
    }
    // Each starts fresh (`ready`) at the current position, then follows.
    for is_ready in readies {
        assert_eq!(is_ready.await.expect("watcher ready"), start);
    }

    // 500 changes from four concurrent writers, each owning a fifth of the
    // orders: 20 confirmations, then 480 item toggles (queued ⇄ preparing,
    // never all ready, so orders stay put). A quarter go to the watched order.
    let per_writer = 125;
    let mut writers = Vec::new();
    for writer in 0..4usize {
        let server = server.clone();
        let caller = owner_caller.clone();
        let mine: Vec<(i64, Vec<i64>)> = orders
            .iter()
            .enumerate()
            .filter(|(n, _)| n % 4 == writer)
            .map(|(_, o)| o.clone())
            .collect();
        let mut rng = Rng::new(rng.next());
        writers.push(tokio::spawn(async move {
            let mut items: HashMap<i64, ItemStatus> = HashMap::new();
            let mut changes = 0;
            for (order, _) in &mine {
                server
                    .app
                    .transition(&caller, OrderId::new(*order), "confirmed", None, None)
                    .await
                    .expect("confirm");
                changes += 1;
            }
            while changes < per_writer {
                let (order, order_items) = if writer == 0 && rng.below(2) == 0 {
                    &mine[0]
                } else {
                    &mine[rng.below(mine.len() as u64) as usize]
                };
                let item = order_items[rng.below(order_items.len() as u64) as usize];
                let now = items.entry(item).or_insert(ItemStatus::Queued);
                *now = match now {
                    ItemStatus::Queued => ItemStatus::Preparing,
                    _ => ItemStatus::Queued,
                };
                server.set_item_direct(&caller, *order, item, *now).await;
                changes += 1;
                if rng.below(8) == 0 {
                    tokio::time::sleep(Duration::from_millis(rng.below(4))).await;
                }
            }
        }));
    }
    for writer in writers {
        writer.await.expect("writer");
    }
    let all = server
        .events_after(EventFilter::Store(StoreId::new(restaurant)), start)
        .await;
    assert_eq!(all.len(), 500, "500 changes, one event each");

    // The truth per watcher, from the database, in commit (id) order.
    let mut truths: Vec<Vec<StoredEvent>> = Vec::new();
    for ((_, _, _, filter, station), target) in watchers.iter().zip(&targets) {
        let truth: Vec<StoredEvent> = server
            .events_after(filter.clone(), start)
            .await
            .into_iter()
            .filter(|e| station.is_none_or(|s| e.event.stations.iter().any(|x| x == s)))
            .collect();
        target
            .send(Some(truth.last().map_or(start, |e| e.id)))
            .expect("watcher alive");
        truths.push(truth);
    }
    for ((task, truth), (name, ..)) in tasks.into_iter().zip(&truths).zip(&watchers) {
        let (seen, connections) = task.await.expect("watcher");
        let seen_ids: Vec<i64> = seen.iter().map(|(id, _)| *id).collect();
        let truth_ids: Vec<i64> = truth.iter().map(|e| e.id).collect();
        println!(
            "{name}: {} events over {connections} connections",
            seen.len()
        );
        // At most 20 events per connection: at least ⌈seen / 20⌉ of them.
        assert!(
            connections > seen.len() / 20,
            "{name} saw {} events over only {connections} connections",
            seen.len()
        );
        assert_eq!(
            seen_ids, truth_ids,
            "{name}: every event once, in commit order"
        );
        for ((_, event), stored) in seen.iter().zip(truth) {
            assert_eq!(event["order_id"], stored.event.order_id.get());
            assert_eq!(event["order_version"], stored.event.order_version);
            assert_eq!(event["type"], stored.event.kind.as_str());
        }
    }
    // Per order, versions arrive without gaps.
    let mut versions: HashMap<i64, i64> = HashMap::new();
    for event in &all {
        let last = versions.entry(event.event.order_id.get()).or_insert(1);
        assert_eq!(event.event.order_version, *last + 1);
        *last += 1;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_change_reaches_a_thousand_concurrent_watchers_of_one_store() {
    const WATCHERS: usize = 1_000;
    let limit = open_files_limit();
    assert!(
        limit >= 2_500,
        "this test opens {WATCHERS} connections (both ends live in this process) and needs \
         at least 2,500 open files; the soft limit is {limit}: run `ulimit -n 65536` first \
         (as .ci/run does)"
    );
    // One user on one address holds them all: more than the default
    // share of either, as a deployment that expects it would allow.
    let server = Arc::new(
        spawn_app_guarded(Guards {
            limits: Limits {
                streams_per_user: 2 * WATCHERS,
                streams_per_ip: 2 * WATCHERS,
                connections_per_ip: 2 * WATCHERS,
                ..Limits::default()
            },
            ..Guards::default()
        })
        .await,
    );
    let owner = server.login("owner@demo.test").await;
    let alice = server.login("alice@demo.test").await;
    let burger = server.product_id(RESTAURANT, "Classic Burger").await;
    let order = id(&server.place_order(&alice, RESTAURANT, &[(burger, 1)]).await);
    let before = server.hub().subscriber_count();

    let opened = Instant::now();
    let path = store_path(RESTAURANT);
    let streams: Vec<Sse> = futures::stream::iter(0..WATCHERS)
        .map(|_| {
            let (server, path, owner) = (server.clone(), path.clone(), owner.clone());
            async move { server.ready_sse(&path, Some(&owner)).await.0 }
        })
        .buffer_unordered(100)
        .collect()
        .await;
    println!("{WATCHERS} store streams open in {:?}", opened.elapsed());
    assert_eq!(server.hub().subscriber_count(), before + WATCHERS);

    let changed = Instant::now();
    server.move_order(&owner, order, "confirmed").await;
    let receivers: Vec<_> = streams
        .into_iter()
        .map(|mut sse| {
            tokio::spawn(async move {
                let frame = sse.next_event().await.expect("an event");
                (frame, sse)
            })
        })
        .collect();
    let mut received = 0;
    let mut keep = Vec::new();
    for receiver in receivers {
        let (frame, sse) = receiver.await.expect("receiver");
        let event = frame.json();
        assert_eq!(frame.event.as_deref(), Some("status_changed"));
        assert_eq!(event["order_id"], order);
        assert_eq!(event["to"], "confirmed");
        received += 1;
        keep.push(sse);
    }
    println!(
        "one change reached {received} watchers in {:?}",
        changed.elapsed()
    );
    assert_eq!(received, WATCHERS);
    assert_eq!(server.hub().dropped_slow(), 0);
    drop(keep);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn customer_b_cannot_open_customer_a_order_stream() {
    let server = spawn_app().await;
    let alice = server.login("alice@demo.test").await;
    let bob = server.login("bob@demo.test").await;
    let burger = server.product_id(RESTAURANT, "Classic Burger").await;
    let order = id(&server.place_order(&alice, RESTAURANT, &[(burger, 1)]).await);

    let mut codes = Vec::new();
    for resume in [None, Some(0)] {
        let refused = server
            .try_sse(&order_path(order), Some(&bob), resume)
            .await
            .err()
            .expect("Bob is refused");
        assert_eq!(refused.status, StatusCode::NOT_FOUND, "{}", refused.text);
        assert_eq!(
            refused.header("content-type"),
            Some("application/problem+json")
        );
        codes.push(refused.body["code"].clone());
    }
    // An order that does not exist looks exactly the same.
    let missing = server
        .try_sse(&order_path(order + 1000), Some(&bob), None)
        .await
        .err()
        .expect("refused");
    assert_eq!(missing.status, StatusCode::NOT_FOUND);
    codes.push(missing.body["code"].clone());
    assert!(codes.iter().all(|c| *c == codes[0]), "{codes:?}");
    // Alice may.
    server.ready_sse(&order_path(order), Some(&alice)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn customer_b_me_stream_never_shows_customer_a_events() {
    let server = spawn_app().await;
    let alice = server.login("alice@demo.test").await;
    let bob = server.login("bob@demo.test").await;
    let owner = server.login("owner@demo.test").await;
    let bob_id = server.caller(&bob).await.user.id;
    let burger = server.product_id(RESTAURANT, "Classic Burger").await;
    let start = server.position().await;

    let (mut bobs, _) = server.ready_sse(ME, Some(&bob)).await;
    let (mut alices, _) = server.ready_sse(ME, Some(&alice)).await;
    let order = id(&server.place_order(&alice, RESTAURANT, &[(burger, 1)]).await);
    server.move_order(&owner, order, "confirmed").await;
    server.move_order(&owner, order, "cancelled").await;
    // Alice sees her three events...
    for frame in alices.events(3).await {
        assert_eq!(frame.json()["order_id"], order);
    }
    // ...Bob's stream's next event is his own order, placed after all of hers.
    let his = id(&server.place_order(&bob, RESTAURANT, &[(burger, 1)]).await);
    let first = bobs.next_event().await.expect("an event");
    assert_eq!(first.json()["order_id"], his, "{first:?}");
    assert_eq!(first.json()["customer_id"], bob_id.get());

    // Replaying Bob's stream from the beginning shows only his order.
    let mut replay = server.sse(ME, Some(&bob), Some(start)).await;
    let frame = replay.next_event().await.expect("an event");
    assert_eq!(frame.json()["order_id"], his);
    assert_eq!(frame.json()["customer_id"], bob_id.get());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn staff_of_another_store_cannot_open_a_store_stream() {
    let server = spawn_app().await;
    // A second store with its own staff.
    let second = server
        .app
        .admin_create_store(ordertrack_store::NewStore {
            slug: "second-store".into(),
            name: "Second Store".into(),
            currency: "EUR".parse().expect("a currency code"),
            workflow: "restaurant".into(),
            order_prefix: "B".into(),
        })
        .await
        .expect("store");
    let User {
        token: cashier,
        id: cashier_id,
        ..
    } = server.register("cass@second.test", "Cass Second").await;
    server
        .app
        .admin_set_membership(
            UserId::new(cashier_id),
            second.id,
            ordertrack_domain::Role::Cashier,
        )
        .await
        .expect("membership");
    let seller = server.login("seller@demo.test").await;
    let alice = server.login("alice@demo.test").await;
    let kitchen = server.login("kitchen@demo.test").await;
    let burger = server.product_id(RESTAURANT, "Classic Burger").await;
    let order = id(&server.place_order(&alice, RESTAURANT, &[(burger, 1)]).await);

    for (who, token) in [
        ("staff of second-store", &cashier),
        ("owner of demo-shop", &seller),
        ("a customer", &alice),
    ] {
        for path in [
            store_path(RESTAURANT),
            format!("{}?station=grill", store_path(RESTAURANT)),
        ] {
            let refused = server
                .try_sse(&path, Some(token), None)
                .await
                .err()
                .unwrap_or_else(|| panic!("{who} may not open {path}"));
            assert_eq!(
                refused.status,
                StatusCode::NOT_FOUND,
                "{who}: {}",
                refused.text
            );
        }
        if who != "a customer" {
            let refused = server
                .try_sse(&order_path(order), Some(token), Some(0))
                .await
                .err()
                .unwrap_or_else(|| panic!("{who} may not watch the order"));
            assert_eq!(refused.status, StatusCode::NOT_FOUND);
        }
    }
    // Restaurant staff cannot watch the other stores either.
    for slug in ["second-store", SHOP, "no-such-store"] {
        let refused = server
            .try_sse(&store_path(slug), Some(&kitchen), None)
            .await
            .err()
            .expect("refused");
        assert_eq!(refused.status, StatusCode::NOT_FOUND, "{slug}");
    }
    // Each may watch their own store.
    server
        .ready_sse(&store_path("second-store"), Some(&cashier))
        .await;
    server.ready_sse(&store_path(SHOP), Some(&seller)).await;
    server
        .ready_sse(&store_path(RESTAURANT), Some(&kitchen))
        .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_invalid_tracking_token_stream_is_404() {
    let server = spawn_app().await;
    let alice = server.login("alice@demo.test").await;
    let burger = server.product_id(RESTAURANT, "Classic Burger").await;
    let order = server.place_order(&alice, RESTAURANT, &[(burger, 1)]).await;
    let real = order["tracking_token"].as_str().expect("token");
    let mut wrong = real.chars().rev().collect::<String>();
    if wrong == real {
        wrong = "0".repeat(32);
    }
    for token in [
        wrong.as_str(),
        "0123456789abcdef0123456789abcdef",
        "short",
        "zzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzz",
    ] {
        let refused = server
            .try_sse(&format!("/track/{token}/events"), None, None)
            .await
            .err()
            .unwrap_or_else(|| panic!("{token} refused"));
        assert_eq!(refused.status, StatusCode::NOT_FOUND, "{token}");
    }
    server
        .ready_sse(&format!("/track/{real}/events"), None)
        .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_guest_tracking_stream_shows_only_its_own_order_while_others_change() {
    let server = spawn_app().await;
    let alice = server.login("alice@demo.test").await;
    let bob = server.login("bob@demo.test").await;
    let owner = server.login("owner@demo.test").await;
    let burger = server.product_id(RESTAURANT, "Classic Burger").await;
    let start = server.position().await;
    let mine = server.place_order(&alice, RESTAURANT, &[(burger, 1)]).await;
    let other = id(&server.place_order(&bob, RESTAURANT, &[(burger, 1)]).await);
    let same_customer = id(&server.place_order(&alice, RESTAURANT, &[(burger, 1)]).await);
    let token = mine["tracking_token"].as_str().expect("token").to_owned();
    let mine = id(&mine);
    let path = format!("/track/{token}/events");

    let (mut guest, _) = server.ready_sse(&path, None).await;
    server.move_order(&owner, other, "confirmed").await;
    server.move_order(&owner, same_customer, "confirmed").await;
    server.move_order(&owner, mine, "confirmed").await;
    server.move_order(&owner, other, "cancelled").await;
    server.move_order(&owner, same_customer, "cancelled").await;
    server.move_order(&owner, mine, "preparing").await;
    for (frame, to) in guest.events(2).await.iter().zip(["confirmed", "preparing"]) {
        let event = frame.json();
        assert_eq!(event["order_id"], mine, "{event}");
        assert_eq!(event["to"], to);
    }
    // Replayed from the start: the same, with its creation first.
    let mut replay = server.sse(&path, None, Some(start)).await;
    let kinds: Vec<(Value, Value)> = replay
        .events(3)
        .await
        .iter()
        .map(|f| (f.json()["order_id"].clone(), f.json()["type"].clone()))
        .collect();
    assert_eq!(
        kinds,
        vec![
            (json!(mine), json!("order_created")),
            (json!(mine), json!("status_changed")),
            (json!(mine), json!("status_changed")),
        ]
    );
    // Nothing of the other orders was waiting either: the next event is
    // this order's next change.
    server.move_order(&owner, mine, "cooking").await;
    let next = replay.next_event().await.expect("an event");
    assert_eq!(next.json()["order_id"], mine);
    assert_eq!(next.json()["to"], "cooking");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn signed_in_streams_without_a_valid_token_are_401() {
    let server = spawn_app().await;
    let alice = server.login("alice@demo.test").await;
    let burger = server.product_id(RESTAURANT, "Classic Burger").await;
    let order = id(&server.place_order(&alice, RESTAURANT, &[(burger, 1)]).await);
    for path in [order_path(order), ME.to_owned(), store_path(RESTAURANT)] {
        for token in [None, Some("not-a-token"), Some(&alice[..alice.len() - 2])] {
            let refused = server
                .try_sse(&path, token, None)
                .await
                .err()
                .unwrap_or_else(|| panic!("{path} without a valid token"));
            assert_eq!(
                refused.status,
                StatusCode::UNAUTHORIZED,
                "{path} {token:?}: {}",
                refused.text
            );
        }
    }
}

/// Registers `email` and makes them staff of the restaurant in `role`,
/// through the owner; returns their token and id.
async fn restaurant_staff(server: &TestApp, owner: &str, email: &str, role: &str) -> (String, i64) {
    let User { token, id, .. } = server.register(email, "Staff Member").await;
    let added = server
        .post(
            &format!("/stores/{RESTAURANT}/staff"),
            owner,
            &json!({"email": email, "role": role}),
        )
        .await;
    assert_eq!(added.status, StatusCode::CREATED, "{}", added.text);
    (token, id)
}

/// Logs `token` out over HTTP.
async fn logout(server: &TestApp, token: &str) {
    let out = server.post_empty("/auth/logout", token).await;
    assert_eq!(out.status, StatusCode::NO_CONTENT, "{}", out.text);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn removing_a_staff_member_ends_their_open_streams_and_they_cannot_reopen_them() {
    let server = spawn_app().await;
    let owner = server.login("owner@demo.test").await;
    let cashier = server.login("cashier@demo.test").await;
    let alice = server.login("alice@demo.test").await;
    let (kim, kim_id) = restaurant_staff(&server, &owner, "kim@kitchen.test", "kitchen").await;
    let burger = server.product_id(RESTAURANT, "Classic Burger").await;
    let order = id(&server.place_order(&alice, RESTAURANT, &[(burger, 1)]).await);

    let (mut kims_store, _) = server.ready_sse(&store_path(RESTAURANT), Some(&kim)).await;
    let (mut kims_grill, _) = server
        .ready_sse(
            &format!("{}?station=grill", store_path(RESTAURANT)),
            Some(&kim),
        )
        .await;
    let (mut kims_order, _) = server.ready_sse(&order_path(order), Some(&kim)).await;
    let (mut cashiers, _) = server
        .ready_sse(&store_path(RESTAURANT), Some(&cashier))
        .await;

    let removed_at = Instant::now();
    let removed = server
        .delete(&format!("/stores/{RESTAURANT}/staff/{kim_id}"), &owner)
        .await;
    assert_eq!(removed.status, StatusCode::NO_CONTENT, "{}", removed.text);
    for (name, sse) in [
        ("store", &mut kims_store),
        ("grill", &mut kims_grill),
        ("order", &mut kims_order),
    ] {
        let before_end = sse.until_end().await;
        assert!(before_end.is_empty(), "{name}: {before_end:?}");
    }
    println!(
        "removed staff's streams ended {:?} after the removal",
        removed_at.elapsed()
    );

    // Reopening is refused, as for any non-staff.
    for path in [store_path(RESTAURANT), order_path(order)] {
        let refused = server
            .try_sse(&path, Some(&kim), None)
            .await
            .err()
            .expect("refused");
        assert_eq!(
            refused.status,
            StatusCode::NOT_FOUND,
            "{path}: {}",
            refused.text
        );
    }
    // Others' streams carry on.
    server.move_order(&owner, order, "confirmed").await;
    let event = cashiers.next_event().await.expect("an event");
    assert_eq!(event.json()["order_id"], order);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn logging_out_ends_that_session_streams_only() {
    let server = spawn_app().await;
    let owner = server.login("owner@demo.test").await;
    let first = server.login("alice@demo.test").await;
    let second = server.login("alice@demo.test").await;
    let burger = server.product_id(RESTAURANT, "Classic Burger").await;
    let order = id(&server.place_order(&first, RESTAURANT, &[(burger, 1)]).await);

    let (mut first_me, _) = server.ready_sse(ME, Some(&first)).await;
    let (mut first_order, _) = server.ready_sse(&order_path(order), Some(&first)).await;
    let (mut second_me, _) = server.ready_sse(ME, Some(&second)).await;

    logout(&server, &first).await;
    assert!(first_me.until_end().await.is_empty());
    assert!(first_order.until_end().await.is_empty());

    let refused = server
        .try_sse(ME, Some(&first), None)
        .await
        .err()
        .expect("refused");
    assert_eq!(refused.status, StatusCode::UNAUTHORIZED);
    // The other session's stream is untouched.
    server.move_order(&owner, order, "confirmed").await;
    let event = second_me.next_event().await.expect("an event");
    assert_eq!(event.json()["order_id"], order);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_expired_session_stream_ends_at_the_next_heartbeat_while_others_get_heartbeats() {
    // Sessions live 5 s; the heartbeat sweep runs every 15 s.
    let server = spawn_app_with_ttl(time::Duration::seconds(5)).await;
    let alice = server.login("alice@demo.test").await;
    let order = server
        .place_order(
            &alice,
            RESTAURANT,
            &[(server.product_id(RESTAURANT, "Classic Burger").await, 1)],
        )
        .await;
    let token = order["tracking_token"].as_str().expect("token").to_owned();
    let (mut expiring, _) = server.ready_sse(ME, Some(&alice)).await;
    let (mut guest, _) = server
        .ready_sse(&format!("/track/{token}/events"), None)
        .await;
    let wait = ordertrack_web::HEARTBEAT + Duration::from_secs(5);

    let heartbeat = loop {
        let frame = guest
            .next_frame_within(wait)
            .await
            .expect("a heartbeat within the heartbeat interval")
            .expect("the guest stream stays open");
        if frame.is_comment() {
            break frame;
        }
    };
    assert_eq!(heartbeat.comments, vec!["heartbeat".to_owned()]);
    let ended = expiring
        .next_frame_within(Duration::from_secs(5))
        .await
        .expect("the expired stream ends with the sweep");
    assert!(ended.is_none(), "{ended:?}");
}

/// Opens a stream on a raw socket that never reads; returns once the hub
/// has the subscription.
async fn open_slow_reader(server: &TestApp, path: &str, token: &str) -> tokio::net::TcpStream {
    let before = server.hub().subscriber_count();
    let mut slow = tokio::net::TcpStream::connect(server.addr)
        .await
        .expect("connect");
    slow.write_all(
        format!(
            "GET /api/v1{path} HTTP/1.1\r\nHost: {}\r\nAuthorization: Bearer {token}\r\n\
             Accept: text/event-stream\r\n\r\n",
            server.addr
        )
        .as_bytes(),
    )
    .await
    .expect("send the request");
    let deadline = Instant::now() + WAIT;
    while server.hub().subscriber_count() <= before {
        assert!(
            Instant::now() < deadline,
            "the slow reader never subscribed"
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    slow
}

/// Item toggles on `orders` (one writer each) until the hub has dropped a
/// slow subscriber; returns how many changes were made. Capped, in case it
/// never does.
async fn flood_until_a_slow_reader_is_dropped(
    server: &Arc<TestApp>, caller: &ordertrack_app::Caller, orders: &[(i64, Vec<i64>)],
) -> u64 {
    let dropped_before = server.hub().dropped_slow();
    let stop = Arc::new(AtomicBool::new(false));
    let mut writers = Vec::new();
    for (order, items) in orders.iter().cloned() {
        let (server, caller, stop) = (server.clone(), caller.clone(), stop.clone());
        writers.push(tokio::spawn(async move {
            let mut changes = 0u64;
            let mut preparing = false;
            while !stop.load(Ordering::Relaxed) && changes < 3_000 {
                preparing = !preparing;
                let to = if preparing {
                    ItemStatus::Preparing
                } else {
                    ItemStatus::Queued
                };
                for item in &items {
                    server.set_item_direct(&caller, order, *item, to).await;
                    changes += 1;
                }
                if server.hub().dropped_slow() > dropped_before {
                    stop.store(true, Ordering::Relaxed);
                }
            }
            changes
        }));
    }
    let mut flood = 0;
    for writer in writers {
        flood += writer.await.expect("writer");
    }
    flood
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_reader_that_never_reads_is_dropped_without_holding_back_others_or_growing_memory() {
    // Alone: it measures this process's memory.
    let server = Arc::new(spawn_app_alone().await);
    let owner = server.login("owner@demo.test").await;
    let owner_caller = server.caller(&owner).await;
    let alice_caller = server.caller(&server.login("alice@demo.test").await).await;
    let restaurant = store_id(&server, RESTAURANT).await;
    let products = [
        server.product_id(RESTAURANT, "Classic Burger").await,
        server.product_id(RESTAURANT, "Fries").await,
        server.product_id(RESTAURANT, "Lemonade").await,
    ];
    let mut orders = Vec::new();
    for _ in 0..8 {
        orders.push(
            server
                .place_direct(&alice_caller, RESTAURANT, &products)
                .await,
        );
    }
    let base = server.hub().subscriber_count();

    // The slow reader: a raw socket that sends its request and then never
    // reads. (Its kernel buffers, and the server's, fill first.)
    let mut slow = open_slow_reader(&server, &store_path(RESTAURANT), &owner).await;
    assert_eq!(server.hub().subscriber_count(), base + 1);

    // A normal reader of the same stream, reading as it should.
    let (mut normal, start) = server
        .ready_sse(&store_path(RESTAURANT), Some(&owner))
        .await;
    assert_eq!(server.hub().subscriber_count(), base + 2);
    let (target, mut targeted) = watch::channel(None::<i64>);
    let reader = tokio::spawn(async move {
        let mut ids = Vec::new();
        let mut give_up = None;
        loop {
            match normal.next_event_within(Duration::from_millis(500)).await {
                Ok(Some(frame)) => ids.push(frame.id_num()),
                Ok(None) => panic!("the normal reader was dropped after {} events", ids.len()),
                Err(()) => {
                    let done = *targeted.borrow_and_update();
                    if done.is_some_and(|t| ids.last().is_some_and(|l| *l >= t)) {
                        return (ids, normal);
                    }
                    // Once the flood is over, everything is due within WAIT.
                    if done.is_some() {
                        let at = *give_up.get_or_insert_with(|| Instant::now() + WAIT);
                        if Instant::now() > at {
                            return (ids, normal);
                        }
                    }
                }
            }
        }
    });

    // The flood: item toggles from eight writers until the hub drops the
    // slow reader.
    let rss_before = rss_kib();
    let flood_started = Instant::now();
    let flood = flood_until_a_slow_reader_is_dropped(&server, &owner_caller, &orders).await;
    let flood_time = flood_started.elapsed();
    let rss_after = rss_kib();
    let dropped = server.hub().dropped_slow();
    println!(
        "slow reader: {flood} events in {flood_time:?}; dropped_slow = {dropped}; \
         subscribers {} -> {}; RSS before flood {rss_before} KiB, after {rss_after} KiB, \
         growth {} KiB",
        base + 2,
        server.hub().subscriber_count(),
        rss_after as i64 - rss_before as i64
    );
    assert!(
        dropped >= 1,
        "the slow reader was never dropped after {flood} events"
    );
    assert_eq!(
        server.hub().subscriber_count(),
        base + 1,
        "only the slow reader is gone"
    );
    assert!(
        rss_after < rss_before + 64 * 1024,
        "memory grew from {rss_before} KiB to {rss_after} KiB"
    );

    // The normal reader got every event of the flood, in order.
    let truth: Vec<i64> = server
        .events_after(EventFilter::Store(StoreId::new(restaurant)), start)
        .await
        .iter()
        .map(|e| e.id)
        .collect();
    target.send(truth.last().copied()).expect("reader alive");
    let (ids, _normal) = reader.await.expect("reader");
    if ids != truth {
        let missing: Vec<&i64> = truth.iter().filter(|id| !ids.contains(id)).collect();
        panic!(
            "the normal reader saw {} of {} events; missing {:?}; last seen {:?}",
            ids.len(),
            truth.len(),
            &missing[..missing.len().min(20)],
            ids.last()
        );
    }

    // The slow reader, reading at last, finds its stream ended (after the
    // events that were queued for it), and resumes from its last id.
    let mut raw = RawResponse::default();
    let mut buffer = vec![0u8; 64 * 1024];
    let mut last_seen = None;
    let mut slow_ids = Vec::new();
    let deadline = tokio::time::Instant::now() + WAIT;
    while !raw.finished {
        let n = tokio::time::timeout_at(deadline, slow.read(&mut buffer))
            .await
            .expect("the slow reader's stream ends, and all of it arrives at once")
            .expect("read");
        assert!(n > 0, "connection closed before the end of the stream");
        raw.push(&buffer[..n]);
        while let Some(frame) = raw.frames.next_frame() {
            if frame.id.is_some() {
                last_seen = Some(frame.id_num());
                if frame.event.as_deref() != Some("ready") {
                    slow_ids.push(frame.id_num());
                }
            }
        }
    }
    // What reached it, partly written while its socket was full, is the
    // flood's first events, whole, in order, none twice.
    assert_eq!(
        slow_ids,
        truth[..slow_ids.len()],
        "the slow reader's events are a prefix of the flood"
    );
    let head = raw.head.clone().unwrap_or_default();
    assert!(head.starts_with("HTTP/1.1 200"), "{head}");
    let last_seen = last_seen.expect("the slow reader got some events");
    println!(
        "slow reader: {} body bytes reached it before its stream ended; last id {last_seen} of {}",
        raw.body_bytes,
        truth.last().copied().unwrap_or_default()
    );
    let missed = truth.iter().filter(|id| **id > last_seen).count();
    assert!(missed > 0, "it was dropped before the flood ended");
    let mut resumed = server
        .sse(&store_path(RESTAURANT), Some(&owner), Some(last_seen))
        .await;
    let first = resumed.next_event().await.expect("an event");
    if missed <= 1000 {
        let mut ids = vec![first.id_num()];
        for frame in resumed.events(missed - 1).await {
            ids.push(frame.id_num());
        }
        let expected: Vec<i64> = truth.iter().copied().filter(|id| *id > last_seen).collect();
        assert!(
            ids == expected,
            "the resumed slow reader gets exactly what it missed"
        );
    } else {
        assert_eq!(first.event.as_deref(), Some("snapshot"));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unchanged_order_or_list_is_304_and_a_change_gives_200_with_a_new_etag() {
    let server = spawn_app().await;
    let alice = server.login("alice@demo.test").await;
    let owner = server.login("owner@demo.test").await;
    let burger = server.product_id(RESTAURANT, "Classic Burger").await;
    let order = id(&server.place_order(&alice, RESTAURANT, &[(burger, 1)]).await);

    let paths = [
        (format!("/orders/{order}"), alice.clone()),
        ("/orders".to_owned(), alice.clone()),
        (format!("/orders?store={RESTAURANT}"), owner.clone()),
    ];
    let get = |path: &str, token: &str, etag: Option<&str>| {
        let mut builder = server.request(reqwest::Method::GET, path, token);
        if let Some(etag) = etag {
            builder = builder.header("if-none-match", etag);
        }
        server.send(builder)
    };
    let mut etags = Vec::new();
    for (path, token) in &paths {
        let first = get(path, token, None).await;
        assert_eq!(first.status, StatusCode::OK, "{path}: {}", first.text);
        let etag = first.header("etag").expect("an ETag").to_owned();
        assert!(
            etag.starts_with('"') && etag.ends_with('"'),
            "{path}: a strong ETag, not {etag}"
        );
        let again = get(path, token, None).await;
        assert_eq!(again.header("etag"), Some(etag.as_str()), "{path}: stable");

        let unchanged = get(path, token, Some(&etag)).await;
        assert_eq!(unchanged.status, StatusCode::NOT_MODIFIED, "{path}");
        assert!(unchanged.text.is_empty(), "{path}: 304 has no body");
        assert_eq!(unchanged.header("etag"), Some(etag.as_str()));
        let listed = get(path, token, Some(&format!("\"nope\", {etag}"))).await;
        assert_eq!(listed.status, StatusCode::NOT_MODIFIED, "{path}: in a list");
        let other = get(path, token, Some("\"something-else\"")).await;
        assert_eq!(other.status, StatusCode::OK, "{path}");
        etags.push(etag);
    }

    server.move_order(&owner, order, "confirmed").await;
    for ((path, token), old) in paths.iter().zip(&etags) {
        let changed = get(path, token, Some(old)).await;
        assert_eq!(changed.status, StatusCode::OK, "{path}: changed");
        let new = changed.header("etag").expect("an ETag").to_owned();
        assert_ne!(&new, old, "{path}: a new ETag");
        // A list has `next_cursor`; an order is its own body.
        let version = if changed.body.get("next_cursor").is_some() {
            changed.body["items"][0]["version"].clone()
        } else {
            changed.body["version"].clone()
        };
        assert_eq!(version, 2, "{path}");
        let unchanged = get(path, token, Some(&new)).await;
        assert_eq!(unchanged.status, StatusCode::NOT_MODIFIED, "{path}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_resume_position_the_server_never_sent_yields_a_snapshot_first() {
    let server = spawn_app().await;
    let alice = server.login("alice@demo.test").await;
    let owner = server.login("owner@demo.test").await;
    let burger = server.product_id(RESTAURANT, "Classic Burger").await;
    let order = server.place_order(&alice, RESTAURANT, &[(burger, 1)]).await;
    let id = id(&order);
    server.move_order(&owner, id, "confirmed").await;
    let position = server.position().await;

    for (path, token) in [
        (order_path(id), &alice),
        (ME.to_owned(), &alice),
        (store_path(RESTAURANT), &owner),
    ] {
        let mut sse = server.sse(&path, Some(token), Some(999_999)).await;
        let snapshot = sse.next_event().await.expect("a snapshot");
        assert_eq!(snapshot.event.as_deref(), Some("snapshot"), "{path}");
        assert_eq!(snapshot.id_num(), position, "{path}: resume from here");
        let body = snapshot.json();
        assert_eq!(body["reason"], "unknown_position");
        assert_eq!(body["position"], position);
        let orders = body["orders"].as_array().expect("orders");
        let shown = orders
            .iter()
            .find(|o| o["id"] == id)
            .unwrap_or_else(|| panic!("{path}: the order in {body}"));
        assert_eq!(shown["status"], "confirmed");
        assert_eq!(shown["version"], 2);
    }

    // After the snapshot, the live tail follows.
    let mut sse = server
        .sse(&order_path(id), Some(&alice), Some(999_999))
        .await;
    assert_eq!(
        sse.next_event().await.expect("snapshot").event.as_deref(),
        Some("snapshot")
    );
    server.move_order(&owner, id, "preparing").await;
    let next = sse.next_event().await.expect("an event");
    assert_eq!(next.json()["to"], "preparing");
    assert!(next.id_num() > position);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_more_than_the_replay_limit_behind_gets_a_snapshot_then_the_live_tail() {
    let server = Arc::new(spawn_app().await);
    let owner = server.login("owner@demo.test").await;
    let owner_caller = server.caller(&owner).await;
    let User {
        token: carol,
        id: carol_id,
        ..
    } = server.register("carol@demo.test", "Carol").await;
    let carol_caller = server.caller(&carol).await;
    let products = [
        server.product_id(RESTAURANT, "Classic Burger").await,
        server.product_id(RESTAURANT, "Fries").await,
    ];
    let start = server.position().await;
    // Carol's four orders and 1,000 item changes: 1,004 events on her
    // stream, more than the replay limit of 1,000. One writer per order.
    let mut orders = Vec::new();
    for _ in 0..4 {
        orders.push(
            server
                .place_direct(&carol_caller, RESTAURANT, &products)
                .await,
        );
    }
    let mut writers = Vec::new();
    for (order, items) in orders.clone() {
        let (server, caller) = (server.clone(), owner_caller.clone());
        writers.push(tokio::spawn(async move {
            for n in 0..250 {
                let to = if n % 4 < 2 {
                    ItemStatus::Preparing
                } else {
                    ItemStatus::Queued
                };
                server
                    .set_item_direct(&caller, order, items[n % 2], to)
                    .await;
            }
        }));
    }
    for writer in writers {
        writer.await.expect("writer");
    }
    let position = server.position().await;
    let truth = server
        .events_after(EventFilter::Customer(UserId::new(carol_id)), start)
        .await;
    assert_eq!(truth.len(), 1004);

    let mut behind = server.sse(ME, Some(&carol), Some(start)).await;
    let snapshot = behind.next_event().await.expect("a snapshot");
    assert_eq!(snapshot.event.as_deref(), Some("snapshot"));
    assert_eq!(
        snapshot.id_num(),
        position,
        "resume from the snapshot's position"
    );
    let body = snapshot.json();
    assert_eq!(body["reason"], "too_far_behind");
    let mut shown: Vec<(i64, i64)> = body["orders"]
        .as_array()
        .expect("orders")
        .iter()
        .map(|o| (id(o), o["version"].as_i64().expect("version")))
        .collect();
    shown.sort_unstable();
    let expected: Vec<(i64, i64)> = orders.iter().map(|(id, _)| (*id, 251)).collect();
    assert_eq!(shown, expected, "every order in its current version");

    // Exactly the limit behind is replayed in full.
    let mut replay = server.sse(ME, Some(&carol), Some(truth[3].id)).await;
    let replayed: Vec<i64> = replay
        .events(1000)
        .await
        .iter()
        .map(Frame::id_num)
        .collect();
    let expected: Vec<i64> = truth[4..].iter().map(|e| e.id).collect();
    assert!(replayed == expected, "the last 1,000 events, in order");

    // Both continue with the live tail.
    server
        .app
        .transition(
            &owner_caller,
            OrderId::new(orders[0].0),
            "cancelled",
            None,
            None,
        )
        .await
        .expect("cancel");
    for sse in [&mut behind, &mut replay] {
        let live = sse.next_event().await.expect("the live tail");
        assert_eq!(live.json()["to"], "cancelled");
        assert_eq!(live.id_num(), position + 1);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn streams_are_uncached_unbuffered_event_streams_that_start_with_a_retry_hint() {
    let server = spawn_app().await;
    let alice = server.login("alice@demo.test").await;
    let owner = server.login("owner@demo.test").await;
    let burger = server.product_id(RESTAURANT, "Classic Burger").await;
    let order = server.place_order(&alice, RESTAURANT, &[(burger, 1)]).await;
    let token = order["tracking_token"].as_str().expect("token").to_owned();
    let id = id(&order);
    let position = server.position().await;

    for (path, bearer) in [
        (order_path(id), Some(alice.as_str())),
        (format!("/track/{token}/events"), None),
        (ME.to_owned(), Some(alice.as_str())),
        (store_path(RESTAURANT), Some(owner.as_str())),
        (
            format!("{}?station=grill", store_path(RESTAURANT)),
            Some(owner.as_str()),
        ),
    ] {
        let mut sse = server.sse(&path, bearer, None).await;
        assert_eq!(
            sse.header("content-type"),
            Some("text/event-stream"),
            "{path}"
        );
        assert_eq!(sse.header("cache-control"), Some("no-cache"), "{path}");
        assert_eq!(sse.header("x-accel-buffering"), Some("no"), "{path}");
        let first = sse.next_frame().await.expect("a first frame");
        assert!(first.is_retry_only(), "{path}: {first:?}");
        assert_eq!(first.retry, Some(2000));
        let ready = sse.next_frame().await.expect("ready");
        assert_eq!(ready.event.as_deref(), Some("ready"), "{path}");
        assert_eq!(
            ready.id_num(),
            position,
            "{path}: the position to resume from"
        );
        assert_eq!(ready.json(), json!({"position": position}));
    }

    // `?last_event_id=` resumes exactly like the header.
    let start = position - 1;
    let mut by_header = server.sse(&order_path(id), Some(&alice), Some(start)).await;
    let mut by_query = server
        .sse(
            &format!("{}?last_event_id={start}", order_path(id)),
            Some(&alice),
            None,
        )
        .await;
    let header_frame = by_header.next_event().await.expect("event");
    let query_frame = by_query.next_event().await.expect("event");
    assert_eq!(header_frame, query_frame);
    assert_eq!(header_frame.id_num(), position);
    assert_eq!(header_frame.event.as_deref(), Some("order_created"));

    // A resume position that is not an id we sent is a 400.
    for bad in ["abc", "-1", "1.5"] {
        let refused = server
            .try_sse(
                &format!("{}?last_event_id={bad}", order_path(id)),
                Some(&alice),
                None,
            )
            .await
            .err()
            .expect("refused");
        assert_eq!(refused.status, StatusCode::BAD_REQUEST, "{bad}");
        assert_eq!(
            refused.body["code"], "invalid_last_event_id",
            "{bad}: {}",
            refused.text
        );
    }
}

type Ws =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

async fn ws_connect(server: &TestApp, token: Option<&str>) -> Ws {
    use tokio_tungstenite::tungstenite::client::IntoClientRequest;
    let mut request = format!("ws://{}/api/v1/ws", server.addr)
        .into_client_request()
        .expect("request");
    if let Some(token) = token {
        request.headers_mut().insert(
            "authorization",
            format!("Bearer {token}").parse().expect("header"),
        );
    }
    let (ws, response) = tokio_tungstenite::connect_async(request)
        .await
        .expect("WebSocket handshake");
    assert_eq!(response.status(), StatusCode::SWITCHING_PROTOCOLS);
    ws
}

async fn ws_send(ws: &mut Ws, message: Value) {
    ws.send(tokio_tungstenite::tungstenite::Message::text(
        message.to_string(),
    ))
    .await
    .expect("send");
}

/// The next JSON message, or `None` if the socket closed.
async fn ws_recv(ws: &mut Ws) -> Option<Value> {
    use tokio_tungstenite::tungstenite::Message;
    loop {
        let message = tokio::time::timeout(WAIT, ws.next())
            .await
            .expect("a WebSocket message in time");
        match message {
            None | Some(Err(_)) | Some(Ok(Message::Close(_))) => return None,
            Some(Ok(Message::Text(text))) => {
                return Some(serde_json::from_str(text.as_str()).expect("JSON message"));
            }
            Some(Ok(_)) => continue,
        }
    }
}

async fn ws_expect(ws: &mut Ws) -> Value {
    ws_recv(ws).await.expect("a message")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_websocket_subscription_replays_then_follows_live_with_the_same_ids_as_sse() {
    let server = spawn_app().await;
    let alice = server.login("alice@demo.test").await;
    let bob = server.login("bob@demo.test").await;
    let owner = server.login("owner@demo.test").await;
    let burger = server.product_id(RESTAURANT, "Classic Burger").await;
    let start = server.position().await;
    let order = id(&server.place_order(&alice, RESTAURANT, &[(burger, 1)]).await);
    server.move_order(&owner, order, "confirmed").await;

    let mut ws = ws_connect(&server, Some(&alice)).await;
    ws_send(
        &mut ws,
        json!({"type": "subscribe", "id": "a", "topic": "order", "order_id": order, "last_event_id": start}),
    )
    .await;
    assert_eq!(
        ws_expect(&mut ws).await,
        json!({"type": "subscribed", "id": "a"})
    );
    let mut ws_events = Vec::new();
    for _ in 0..2 {
        let message = ws_expect(&mut ws).await;
        assert_eq!(message["type"], "event", "{message}");
        assert_eq!(message["id"], "a");
        ws_events.push(message["event"].clone());
    }
    // Live.
    server.move_order(&owner, order, "preparing").await;
    let message = ws_expect(&mut ws).await;
    assert_eq!(message["type"], "event", "{message}");
    ws_events.push(message["event"].clone());
    let versions: Vec<&Value> = ws_events.iter().map(|e| &e["order_version"]).collect();
    assert_eq!(versions, [&json!(1), &json!(2), &json!(3)]);

    // The same events, byte for byte, as SSE sends them.
    let mut sse = server
        .sse(&order_path(order), Some(&alice), Some(start))
        .await;
    for (frame, event) in sse.events(3).await.iter().zip(&ws_events) {
        assert_eq!(&frame.json(), event);
        assert_eq!(frame.id_num(), event["id"].as_i64().expect("id"));
    }

    // Someone else's order does not exist for Bob; nor does anything without
    // signing in, except a tracking link.
    let mut bobs = ws_connect(&server, Some(&bob)).await;
    ws_send(
        &mut bobs,
        json!({"type": "subscribe", "id": "x", "topic": "order", "order_id": order}),
    )
    .await;
    let refused = ws_expect(&mut bobs).await;
    assert_eq!(refused["type"], "error", "{refused}");
    assert_eq!(refused["id"], "x");
    assert_eq!(refused["status"], 404);
    ws_send(
        &mut bobs,
        json!({"type": "subscribe", "id": "y", "topic": "store", "store": RESTAURANT}),
    )
    .await;
    assert_eq!(ws_expect(&mut bobs).await["status"], 404);
    let mut anonymous = ws_connect(&server, None).await;
    ws_send(
        &mut anonymous,
        json!({"type": "subscribe", "id": "m", "topic": "me"}),
    )
    .await;
    let refused = ws_expect(&mut anonymous).await;
    assert_eq!(refused["type"], "error");
    assert_eq!(refused["status"], 401);

    // A second subscription on the same socket, then unsubscribing the first:
    // the order's next change arrives on the second only.
    ws_send(
        &mut ws,
        json!({"type": "subscribe", "id": "b", "topic": "me"}),
    )
    .await;
    assert_eq!(
        ws_expect(&mut ws).await,
        json!({"type": "subscribed", "id": "b"})
    );
    let ready = ws_expect(&mut ws).await;
    assert_eq!(ready["type"], "ready", "{ready}");
    assert_eq!(ready["id"], "b");
    ws_send(&mut ws, json!({"type": "unsubscribe", "id": "a"})).await;
    assert_eq!(
        ws_expect(&mut ws).await,
        json!({"type": "unsubscribed", "id": "a"})
    );
    server.move_order(&owner, order, "cooking").await;
    server.move_order(&owner, order, "cancelled").await;
    for to in ["cooking", "cancelled"] {
        let message = ws_expect(&mut ws).await;
        assert_eq!(
            message["id"], "b",
            "nothing more for the unsubscribed: {message}"
        );
        assert_eq!(message["event"]["to"], to);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_websocket_guest_follows_a_tracking_link_and_bad_messages_are_errors() {
    let server = spawn_app().await;
    let alice = server.login("alice@demo.test").await;
    let owner = server.login("owner@demo.test").await;
    let burger = server.product_id(RESTAURANT, "Classic Burger").await;
    let order = server.place_order(&alice, RESTAURANT, &[(burger, 1)]).await;
    let token = order["tracking_token"].as_str().expect("token").to_owned();
    let id = id(&order);

    let mut guest = ws_connect(&server, None).await;
    ws_send(
        &mut guest,
        json!({"type": "subscribe", "id": "t", "topic": "track", "token": "0".repeat(32)}),
    )
    .await;
    assert_eq!(ws_expect(&mut guest).await["status"], 404);
    ws_send(
        &mut guest,
        json!({"type": "subscribe", "id": "t", "topic": "track", "token": token}),
    )
    .await;
    assert_eq!(ws_expect(&mut guest).await["type"], "subscribed");
    assert_eq!(ws_expect(&mut guest).await["type"], "ready");
    server.move_order(&owner, id, "confirmed").await;
    let event = ws_expect(&mut guest).await;
    assert_eq!(event["event"]["order_id"], id);
    assert_eq!(event["event"]["to"], "confirmed");

    for (bad, status, code) in [
        (
            json!({"type": "subscribe", "id": "u", "topic": "galaxy"}),
            422,
            "unknown_topic",
        ),
        (
            json!({"type": "subscribe", "id": "t", "topic": "track", "token": token}),
            409,
            "subscription_refused",
        ),
        (json!({"type": "dance"}), 400, "invalid_message"),
        (
            json!({"type": "subscribe", "id": 7}),
            400,
            "invalid_message",
        ),
    ] {
        ws_send(&mut guest, bad.clone()).await;
        let error = ws_expect(&mut guest).await;
        assert_eq!(error["type"], "error", "{bad}: {error}");
        assert_eq!(error["status"], status, "{bad}: {error}");
        assert_eq!(error["code"], code, "{bad}: {error}");
    }
    // The subscription is still there after all that.
    server.move_order(&owner, id, "preparing").await;
    let event = ws_expect(&mut guest).await;
    assert_eq!(event["event"]["to"], "preparing", "{event}");
}

/// A server with a new staff member of the restaurant and an order Alice
/// placed there.
struct StaffScene {
    server: TestApp,
    owner: String,
    /// The new member's token and id.
    member: (String, i64),
    order: i64,
}

async fn staff_scene(email: &str, role: &str) -> StaffScene {
    let server = spawn_app().await;
    let owner = server.login("owner@demo.test").await;
    let alice = server.login("alice@demo.test").await;
    let member = restaurant_staff(&server, &owner, email, role).await;
    let burger = server.product_id(RESTAURANT, "Classic Burger").await;
    let order = id(&server.place_order(&alice, RESTAURANT, &[(burger, 1)]).await);
    StaffScene {
        server,
        owner,
        member,
        order,
    }
}

/// Subscribes `id` to a topic and expects `subscribed` then `ready`.
async fn ws_subscribed(ws: &mut Ws, message: Value) {
    let id = message["id"].clone();
    ws_send(ws, message).await;
    assert_eq!(ws_expect(ws).await, json!({"type": "subscribed", "id": id}));
    let ready = ws_expect(ws).await;
    assert_eq!(ready["type"], "ready", "{ready}");
    assert_eq!(ready["id"], id);
}

/// The next message must be the end of subscription `id`.
async fn ws_expect_closed(ws: &mut Ws, id: &str) {
    assert_eq!(
        ws_expect(ws).await,
        json!({"type": "closed", "id": id}),
        "subscription {id} ends"
    );
}

/// Asks for a reply (unsubscribing an unknown id) and expects it next:
/// nothing else was waiting on the socket.
async fn ws_nothing_before_a_reply(ws: &mut Ws) {
    ws_send(ws, json!({"type": "unsubscribe", "id": "probe"})).await;
    assert_eq!(
        ws_expect(ws).await,
        json!({"type": "unsubscribed", "id": "probe"}),
        "nothing else arrived first"
    );
}

/// Sends a subscribe that must be refused with `status`; nothing of the
/// topic may arrive instead.
async fn ws_refused(ws: &mut Ws, message: Value, status: u16) {
    let id = message["id"].clone();
    ws_send(ws, message.clone()).await;
    let refused = ws_expect(ws).await;
    assert_eq!(
        refused["type"], "error",
        "{message} was not refused: {refused}"
    );
    assert_eq!(refused["id"], id, "{refused}");
    assert_eq!(refused["status"], status, "{refused}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn websocket_resubscribe_after_staff_removal_is_refused() {
    let StaffScene {
        server,
        owner,
        member: (kim, kim_id),
        order,
    } = staff_scene("kim@kitchen.test", "kitchen").await;
    let store = json!({"type": "subscribe", "id": "s", "topic": "store", "store": RESTAURANT});
    let one = json!({"type": "subscribe", "id": "o", "topic": "order", "order_id": order});

    let mut ws = ws_connect(&server, Some(&kim)).await;
    ws_subscribed(&mut ws, store.clone()).await;
    let removed = server
        .delete(&format!("/stores/{RESTAURANT}/staff/{kim_id}"), &owner)
        .await;
    assert_eq!(removed.status, StatusCode::NO_CONTENT, "{}", removed.text);
    ws_expect_closed(&mut ws, "s").await;

    // The same socket asks again: refused as over HTTP, for the store and
    // for its orders, from now and from the beginning.
    ws_refused(&mut ws, store.clone(), 404).await;
    let mut replay = store.clone();
    replay["last_event_id"] = json!(0);
    ws_refused(&mut ws, replay, 404).await;
    ws_refused(&mut ws, one, 404).await;
    // Nothing of the store reaches the socket afterwards.
    server.move_order(&owner, order, "confirmed").await;
    ws_nothing_before_a_reply(&mut ws).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn websocket_resubscribe_after_logout_is_refused() {
    let server = spawn_app().await;
    let owner = server.login("owner@demo.test").await;
    let alice = server.login("alice@demo.test").await;
    let burger = server.product_id(RESTAURANT, "Classic Burger").await;
    let order = id(&server.place_order(&alice, RESTAURANT, &[(burger, 1)]).await);
    let me = json!({"type": "subscribe", "id": "m", "topic": "me"});

    let mut ws = ws_connect(&server, Some(&alice)).await;
    ws_subscribed(&mut ws, me.clone()).await;
    logout(&server, &alice).await;
    ws_expect_closed(&mut ws, "m").await;

    ws_refused(&mut ws, me, 401).await;
    ws_refused(
        &mut ws,
        json!({"type": "subscribe", "id": "o", "topic": "order", "order_id": order}),
        401,
    )
    .await;
    // New events of her order never reach the socket.
    server.move_order(&owner, order, "confirmed").await;
    ws_nothing_before_a_reply(&mut ws).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn websocket_replay_after_logout_is_refused() {
    let server = spawn_app().await;
    let alice = server.login("alice@demo.test").await;
    let owner = server.login("owner@demo.test").await;
    let burger = server.product_id(RESTAURANT, "Classic Burger").await;
    let order = id(&server.place_order(&alice, RESTAURANT, &[(burger, 1)]).await);

    let mut alices = ws_connect(&server, Some(&alice)).await;
    let mut owners = ws_connect(&server, Some(&owner)).await;
    for (token, ws) in [(&alice, &mut alices), (&owner, &mut owners)] {
        logout(&server, token).await;
        // Her history, the order's, the store's: none of it replays.
        for (id, topic) in [
            ("m", json!({"topic": "me"})),
            ("o", json!({"topic": "order", "order_id": order})),
            ("s", json!({"topic": "store", "store": RESTAURANT})),
        ] {
            let mut message = topic;
            message["type"] = json!("subscribe");
            message["id"] = json!(id);
            message["last_event_id"] = json!(0);
            ws_refused(ws, message, 401).await;
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn demoted_owner_store_stream_is_closed() {
    let StaffScene {
        server,
        owner,
        member: (olga, _),
        order,
    } = staff_scene("olga@owner.test", "owner").await;
    let store = json!({"type": "subscribe", "id": "s", "topic": "store", "store": RESTAURANT});

    let (mut sse, _) = server.ready_sse(&store_path(RESTAURANT), Some(&olga)).await;
    let (mut her_order, _) = server.ready_sse(&order_path(order), Some(&olga)).await;
    let (mut cashiers, _) = server
        .ready_sse(
            &store_path(RESTAURANT),
            Some(&server.login("cashier@demo.test").await),
        )
        .await;
    let mut ws = ws_connect(&server, Some(&olga)).await;
    ws_subscribed(&mut ws, store.clone()).await;
    ws_subscribed(
        &mut ws,
        json!({"type": "subscribe", "id": "m", "topic": "me"}),
    )
    .await;

    let demoted = server
        .post(
            &format!("/stores/{RESTAURANT}/staff"),
            &owner,
            &json!({"email": "olga@owner.test", "role": "driver"}),
        )
        .await;
    assert_eq!(demoted.status, StatusCode::CREATED, "{}", demoted.text);
    assert_eq!(demoted.body["role"], "driver");
    assert!(
        sse.until_end().await.is_empty(),
        "the SSE store stream ends"
    );
    assert!(
        her_order.until_end().await.is_empty(),
        "so does the order's"
    );
    ws_expect_closed(&mut ws, "s").await;

    // She may follow the store again, as a driver now: what the API shows
    // a driver (the store's deliveries) is what the stream shows.
    ws_subscribed(&mut ws, store).await;
    let (mut again, _) = server.ready_sse(&store_path(RESTAURANT), Some(&olga)).await;
    server.move_order(&owner, order, "confirmed").await;
    let alice = server.login("alice@demo.test").await;
    let burger = server.product_id(RESTAURANT, "Classic Burger").await;
    let delivery = id(&server
        .place_delivery(&alice, RESTAURANT, &[(burger, 1)], "1 Main St")
        .await);
    let pickup_change = cashiers.next_event().await.expect("an event");
    assert_eq!(pickup_change.json()["order_id"], order);
    let first = again.next_event().await.expect("an event");
    assert_eq!(
        first.json()["order_id"],
        delivery,
        "the pickup order's change is not a driver's"
    );
    let message = ws_expect(&mut ws).await;
    assert_eq!(
        message["id"], "s",
        "the store subscription follows again: {message}"
    );
    assert_eq!(message["event"]["order_id"], delivery);
    // Read over HTTP, the driver sees the delivery, not the pickup order.
    let seen = server.get(&format!("/orders/{delivery}"), &olga).await;
    assert_eq!(seen.status, StatusCode::OK, "{}", seen.text);
    let hidden = server.get(&format!("/orders/{order}"), &olga).await;
    assert_eq!(hidden.status, StatusCode::NOT_FOUND, "{}", hidden.text);
}

/// The race between authorising a stream and its subscription reaching
/// the hub: access that ends in between (its news applied by the hub before
/// the subscription was there to end) is caught when subscribing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn access_ended_while_a_stream_was_being_authorised_is_refused_at_subscribe() {
    let StaffScene {
        server,
        owner,
        member: (kim, kim_id),
        order,
    } = staff_scene("kim@kitchen.test", "kitchen").await;
    let app = &server.app;
    let caller = server.caller(&kim).await;
    let store = app
        .store_stream(&caller, RESTAURANT, None)
        .await
        .expect("Kim is staff");
    let one = app
        .order_stream(&caller, OrderId::new(order))
        .await
        .expect("Kim is staff");
    let own = app.customer_stream(&caller);
    let before = server.hub().subscriber_count();

    let removed = server
        .delete(&format!("/stores/{RESTAURANT}/staff/{kim_id}"), &owner)
        .await;
    assert_eq!(removed.status, StatusCode::NO_CONTENT, "{}", removed.text);
    for spec in [&store, &one] {
        let refused = app.subscribe(spec).await.err().expect("refused");
        assert!(
            matches!(refused, ordertrack_app::AppError::NotFound(_)),
            "{refused:?}"
        );
    }
    // Her own orders she may still follow, until she logs out.
    let mine = app.subscribe(&own).await.expect("her own orders");
    logout(&server, &kim).await;
    let refused = app.subscribe(&own).await.err().expect("refused");
    assert!(
        matches!(refused, ordertrack_app::AppError::Unauthenticated),
        "{refused:?}"
    );
    drop(mine);
    assert_eq!(
        server.hub().subscriber_count(),
        before,
        "nothing left subscribed"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutting_down_tells_stream_clients_to_reconnect_ends_their_streams_and_keeps_acknowledged_writes()
 {
    let mut server = spawn_app().await;
    let alice = server.login("alice@demo.test").await;
    let owner = server.login("owner@demo.test").await;
    let burger = server.product_id(RESTAURANT, "Classic Burger").await;

    let (mut me, _) = server.ready_sse(ME, Some(&alice)).await;
    let (mut store, _) = server
        .ready_sse(&store_path(RESTAURANT), Some(&owner))
        .await;
    let mut ws = ws_connect(&server, Some(&alice)).await;
    ws_send(
        &mut ws,
        json!({"type": "subscribe", "id": "me", "topic": "me"}),
    )
    .await;
    assert_eq!(ws_expect(&mut ws).await["type"], "subscribed");
    assert_eq!(ws_expect(&mut ws).await["type"], "ready");

    // A write acknowledged just before the shutdown.
    let order = server.place_order(&alice, RESTAURANT, &[(burger, 1)]).await;
    let id = id(&order);
    let placed = me.next_event().await.expect("the creation");
    assert_eq!(placed.json()["order_id"], id);

    let shutting_down = Instant::now();
    let served = server.shut_down();
    for (name, sse) in [("me", &mut me), ("store", &mut store)] {
        let rest = sse.until_end().await;
        let last = rest
            .last()
            .unwrap_or_else(|| panic!("{name}: a reconnect frame"));
        assert_eq!(last.event.as_deref(), Some("reconnect"), "{name}: {rest:?}");
    }
    let mut ws_messages = Vec::new();
    while let Some(message) = ws_recv(&mut ws).await {
        let reconnect = message["type"] == "reconnect";
        ws_messages.push(message);
        if reconnect {
            break;
        }
    }
    assert!(
        ws_messages.iter().any(|m| m["type"] == "reconnect"),
        "{ws_messages:?}"
    );
    tokio::time::timeout(WAIT, served)
        .await
        .expect("the server stops")
        .expect("serve task")
        .expect("serve returns Ok");
    println!("shut down in {:?}", shutting_down.elapsed());

    // The acknowledged order is durable: a fresh store over the same
    // database (file or schema) has it.
    let reopened = server.reopen().await.repository().clone();
    let stored = reopened
        .order(OrderId::new(id))
        .await
        .expect("read")
        .expect("the order");
    assert_eq!(stored.number, order["number"].as_str().expect("number"));
    let events = reopened
        .events_after(EventFilter::Order(OrderId::new(id)), 0, 10)
        .await
        .expect("events");
    assert_eq!(events.len(), 1);
    assert_eq!(events[0].id, placed.id_num());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn shutting_down_does_not_wait_forever_for_a_client_that_never_reads() {
    let server = spawn_app().await;
    let owner = server.login("owner@demo.test").await;
    let owner_caller = server.caller(&owner).await;
    let alice_caller = server.caller(&server.login("alice@demo.test").await).await;
    let products = [
        server.product_id(RESTAURANT, "Classic Burger").await,
        server.product_id(RESTAURANT, "Fries").await,
    ];
    let mut orders = Vec::new();
    for _ in 0..4 {
        orders.push(
            server
                .place_direct(&alice_caller, RESTAURANT, &products)
                .await,
        );
    }
    // A client whose socket is full: it never reads, and events flowed to
    // it until the hub gave up on it.
    let slow = open_slow_reader(&server, &store_path(RESTAURANT), &owner).await;
    let server = Arc::new(server);
    let flood = flood_until_a_slow_reader_is_dropped(&server, &owner_caller, &orders).await;
    assert!(
        server.hub().dropped_slow() >= 1,
        "not dropped after {flood} events"
    );
    // A well-behaved watcher, to show the rest of the shutdown works.
    let (mut normal, _) = server
        .ready_sse(ME, Some(&server.login("alice@demo.test").await))
        .await;

    let mut server = Arc::into_inner(server).expect("the only owner");
    let served = server.shut_down();
    let started = Instant::now();
    let rest = normal.until_end().await;
    assert_eq!(
        rest.last().and_then(|f| f.event.as_deref()),
        Some("reconnect")
    );
    // The issue: "on SIGTERM stop accepting, tell stream clients to
    // reconnect, finish in-flight writes, exit". A peer that never reads
    // must not keep the server from exiting.
    let finished = tokio::time::timeout(2 * WAIT, served).await;
    println!(
        "shutdown with a client that never reads: serve {} after {:?}",
        if finished.is_ok() {
            "returned"
        } else {
            "still running"
        },
        started.elapsed()
    );
    assert!(
        finished.is_ok(),
        "serve() had not returned {:?} after the shutdown signal: a connection whose \
         peer never reads holds up the graceful shutdown (no deadline in \
         ordertrack_web::serve)",
        2 * WAIT
    );
    drop(slow);
}

/// Reads what the server sent next into `raw`; false once it closed the
/// connection.
async fn read_some(socket: &mut tokio::net::TcpStream, raw: &mut RawResponse) -> bool {
    let mut buffer = vec![0u8; 16 * 1024];
    let n = tokio::time::timeout(WAIT, socket.read(&mut buffer))
        .await
        .expect("the server sends in time")
        .expect("read");
    raw.push(&buffer[..n]);
    n > 0
}

/// Reads events until one of `kind` arrives.
async fn next_of_kind(
    socket: &mut tokio::net::TcpStream, raw: &mut RawResponse, kind: &str,
) -> Frame {
    loop {
        while let Some(frame) = raw.frames.next_frame() {
            if frame.event.as_deref() == Some(kind) {
                return frame;
            }
        }
        assert!(
            read_some(socket, raw).await,
            "the stream ended before {kind}"
        );
    }
}

fn stream_request(server: &TestApp, token: &str) -> String {
    format!(
        "GET /api/v1{ME} HTTP/1.1\r\nHost: {}\r\nAuthorization: Bearer {token}\r\n\
         Accept: text/event-stream\r\n\r\n",
        server.addr
    )
}

/// Asks for `token`'s stream on `socket` and reads the answer's head: what
/// was read so far, and the head in lower case.
async fn open_stream(
    socket: &mut tokio::net::TcpStream, server: &TestApp, token: &str,
) -> (RawResponse, String) {
    socket
        .write_all(stream_request(server, token).as_bytes())
        .await
        .expect("send");
    let mut raw = RawResponse::default();
    while raw.head.is_none() {
        assert!(read_some(socket, &mut raw).await, "closed before a head");
    }
    let head = raw.head.clone().unwrap_or_default().to_ascii_lowercase();
    (raw, head)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stream_on_a_fresh_connection_is_written_straight_to_its_socket_and_ends_with_it() {
    let server = spawn_app().await;
    let alice = server.login("alice@demo.test").await;
    let burger = server.product_id(RESTAURANT, "Classic Burger").await;

    // The stream's head says it is the connection's last answer; events
    // arrive as chunks.
    let before = server.hub().subscriber_count();
    let mut socket = tokio::net::TcpStream::connect(server.addr)
        .await
        .expect("connect");
    let (mut raw, head) = open_stream(&mut socket, &server, &alice).await;
    assert!(head.starts_with("http/1.1 200 ok\r\n"), "{head}");
    for line in [
        "content-type: text/event-stream",
        "transfer-encoding: chunked",
        "connection: close",
    ] {
        assert!(head.contains(line), "{line:?} missing from {head}");
    }
    next_of_kind(&mut socket, &mut raw, "ready").await;
    let order = id(&server.place_order(&alice, RESTAURANT, &[(burger, 1)]).await);
    let created = next_of_kind(&mut socket, &mut raw, "order_created").await;
    assert_eq!(created.json()["order_id"], order);

    // The client leaving ends the subscription: nothing is held for it.
    assert!(server.hub().subscriber_count() > before);
    drop(socket);
    let deadline = Instant::now() + WAIT;
    while server.hub().subscriber_count() > before {
        assert!(
            Instant::now() < deadline,
            "the closed stream is still subscribed"
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }

    // Refused the same way: a whole problem+json, then the server closes.
    let mut socket = tokio::net::TcpStream::connect(server.addr)
        .await
        .expect("connect");
    socket
        .write_all(stream_request(&server, "not-a-token").as_bytes())
        .await
        .expect("send");
    let mut everything = Vec::new();
    tokio::time::timeout(WAIT, socket.read_to_end(&mut everything))
        .await
        .expect("the server closes the connection after its answer")
        .expect("read");
    let text = String::from_utf8_lossy(&everything).into_owned();
    let (head, body) = text.split_once("\r\n\r\n").expect("a head and a body");
    let head = head.to_ascii_lowercase();
    assert!(head.starts_with("http/1.1 401 unauthorized\r\n"), "{head}");
    assert!(
        head.contains("content-type: application/problem+json"),
        "{head}"
    );
    assert!(
        head.contains(&format!("content-length: {}\r\n", body.len())),
        "{head}"
    );
    let problem: Value = serde_json::from_str(body).expect("problem json");
    assert_eq!(problem["status"], 401);

    // Asked for on a kept-alive connection after another request, a stream
    // is served as before, without closing the connection after it.
    let mut socket = tokio::net::TcpStream::connect(server.addr)
        .await
        .expect("connect");
    socket
        .write_all(format!("GET /healthz HTTP/1.1\r\nHost: {}\r\n\r\n", server.addr).as_bytes())
        .await
        .expect("send");
    let mut answer = Vec::new();
    while !String::from_utf8_lossy(&answer).contains("\r\n\r\n")
        || !String::from_utf8_lossy(&answer).ends_with("ok")
    {
        let mut buffer = [0u8; 1024];
        let n = tokio::time::timeout(WAIT, socket.read(&mut buffer))
            .await
            .expect("healthz answers")
            .expect("read");
        assert!(n > 0, "closed after /healthz");
        answer.extend_from_slice(&buffer[..n]);
    }
    let (mut raw, head) = open_stream(&mut socket, &server, &alice).await;
    assert!(head.starts_with("http/1.1 200 ok\r\n"), "{head}");
    assert!(!head.contains("connection: close"), "{head}");
    next_of_kind(&mut socket, &mut raw, "ready").await;
    let second = id(&server.place_order(&alice, RESTAURANT, &[(burger, 1)]).await);
    let created = next_of_kind(&mut socket, &mut raw, "order_created").await;
    assert_eq!(created.json()["order_id"], second);
}
