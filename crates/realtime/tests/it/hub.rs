//! The hub on its own: routing by topic and station, bounded queues that drop
//! a slow subscriber (and only it), ending streams when access ends (a staff
//! change, a logout) and on shutdown, heartbeats, and unsubscribing on drop.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use ordertrack_domain::{
    Actor, EventKind, FulfilmentKind, NewEvent, OrderId, OrderSummary, Role, StoreId, UserId,
};
use ordertrack_realtime::{
    Delivery, DirectWriter, EventBus, Hub, LiveEvent, QUEUE_CAPACITY, Refused, SubscribeOptions,
    Subscription, Topic,
};
use ordertrack_store::{AccessChange, AccessEvent, CommitListener, LogEntry, StoredEvent};
use time::OffsetDateTime;

/// Generous bound for anything that should happen at once.
const WAIT: Duration = Duration::from_secs(5);

/// A committed event of `order` (of `customer`, in `store`) touching `stations`.
fn event(id: i64, order: i64, customer: i64, store: i64, stations: &[&str]) -> LogEntry {
    LogEntry::Order(stored(id, order, customer, store, stations))
}

/// The stored event behind [`event`].
fn stored(id: i64, order: i64, customer: i64, store: i64, stations: &[&str]) -> StoredEvent {
    StoredEvent {
        id,
        store_seq: id,
        event: NewEvent {
            kind: EventKind::StatusChanged,
            store_id: StoreId::new(store),
            order_id: OrderId::new(order),
            customer_id: UserId::new(customer),
            order_version: id + 1,
            from: Some("pending".into()),
            to: Some("confirmed".into()),
            actor: Some(Actor {
                id: UserId::new(99),
                role: Role::Cashier,
            }),
            note: None,
            item: None,
            stations: stations.iter().map(|s| (*s).to_owned()).collect(),
            at: OffsetDateTime::now_utc(),
            summary: OrderSummary {
                number: format!("R-{order:06}"),
                status: "confirmed".into(),
                label: "Confirmed".into(),
                icon: "✅".into(),
                progress: 15,
                customer_message: "Your order is confirmed.".into(),
                eta_minutes: Some(20),
                eta: None,
                terminal: false,
                fulfilment: Some(FulfilmentKind::Pickup),
                payment_status: None,
            },
            correction: false,
            payment: None,
            assignment: None,
        },
        public_json: None,
    }
}

fn user(id: i64, session: &str) -> SubscribeOptions {
    SubscribeOptions {
        user_id: Some(UserId::new(id)),
        session_id: Some(session.to_owned()),
        expires_at: None,
        ..SubscribeOptions::default()
    }
}

/// `user` watching as staff of `store`.
fn staff(id: i64, session: &str, store: i64) -> SubscribeOptions {
    SubscribeOptions {
        staff_of: Some(StoreId::new(store)),
        ..user(id, session)
    }
}

/// A committed access change at position `id`.
fn access(id: i64, change: AccessChange) -> LogEntry {
    LogEntry::Access(AccessEvent { id, change })
}

fn station(name: &str) -> SubscribeOptions {
    SubscribeOptions {
        station: Some(name.to_owned()),
        ..SubscribeOptions::default()
    }
}

/// The next delivery, which must come promptly.
async fn next(subscription: &mut Subscription) -> Option<Delivery> {
    tokio::time::timeout(WAIT, subscription.recv())
        .await
        .expect("a delivery (or the end) arrives promptly")
}

/// The id of the next delivery, which must be an event.
async fn next_id(subscription: &mut Subscription) -> i64 {
    match next(subscription).await {
        Some(Delivery::Event(event)) => event.id,
        other => panic!("expected an event, got {other:?}"),
    }
}

/// Asserts the subscription has ended (its queue drained first).
async fn assert_ended(subscription: &mut Subscription) {
    loop {
        match next(subscription).await {
            None => return,
            Some(Delivery::Heartbeat) => continue,
            Some(other) => panic!("expected the end of the subscription, got {other:?}"),
        }
    }
}

#[test]
fn an_event_s_kept_json_is_sent_as_kept_and_matches_one_made_again() {
    let mut old = stored(41, 7, 3, 1, &["grill"]);
    old.event.note = Some("Extra \"spicy\"\n".into());
    let kept = StoredEvent {
        public_json: Some(old.event.public_json()),
        ..old.clone()
    };
    let (made, sent) = (LiveEvent::new(&old), LiveEvent::new(&kept));
    assert_eq!(made.json.get(), sent.json.get());
    assert_eq!(made.sse, sent.sse);
    let body: serde_json::Value = serde_json::from_str(sent.json.get()).expect("json");
    assert_eq!(body["id"], 41);
    assert_eq!(body["type"], "status_changed");
    assert_eq!(body["actor_role"], "cashier");
    assert!(body.get("actor").is_none(), "who acted stays private");
    assert!(sent.json.get().starts_with(r#"{"id":41,"type":"#));

    // What is sent is what was kept, not the event serialised again.
    let marked = StoredEvent {
        public_json: Some(r#"{"type":"status_changed","kept":true}"#.into()),
        ..old.clone()
    };
    assert_eq!(
        LiveEvent::new(&marked).json.get(),
        r#"{"id":41,"type":"status_changed","kept":true}"#
    );
    // A damaged body is made again rather than breaking the frame.
    let damaged = StoredEvent {
        public_json: Some(r#"{"type":"#.into()),
        ..old
    };
    assert_eq!(LiveEvent::new(&damaged).json.get(), made.json.get());
}

#[tokio::test]
async fn events_reach_the_subscribers_of_their_order_customer_and_store_only() {
    let hub = Hub::new();
    let mut order = hub.subscribe(Topic::Order(OrderId::new(1)), SubscribeOptions::default());
    let mut customer = hub.subscribe(
        Topic::Customer(UserId::new(10)),
        SubscribeOptions::default(),
    );
    let mut store = hub.subscribe(Topic::Store(StoreId::new(100)), SubscribeOptions::default());
    let mut other_order = hub.subscribe(Topic::Order(OrderId::new(2)), SubscribeOptions::default());
    let mut other_customer = hub.subscribe(
        Topic::Customer(UserId::new(20)),
        SubscribeOptions::default(),
    );
    let mut other_store =
        hub.subscribe(Topic::Store(StoreId::new(200)), SubscribeOptions::default());
    assert_eq!(hub.subscriber_count(), 6);
    assert_eq!(order.topic(), Topic::Order(OrderId::new(1)));

    hub.publish(&[event(1, 1, 10, 100, &["grill"])]);
    // Sentinels, one per other topic: if event 1 had leaked to them, it would come first.
    hub.publish(&[
        event(2, 2, 11, 101, &["grill"]),
        event(3, 3, 20, 102, &["grill"]),
        event(4, 4, 12, 200, &["grill"]),
    ]);

    assert_eq!(next_id(&mut order).await, 1);
    assert_eq!(next_id(&mut customer).await, 1);
    assert_eq!(next_id(&mut store).await, 1);
    assert_eq!(next_id(&mut other_order).await, 2);
    assert_eq!(next_id(&mut other_customer).await, 3);
    assert_eq!(next_id(&mut other_store).await, 4);
}

#[tokio::test]
async fn one_event_reaches_every_subscriber_of_a_topic_in_publish_order() {
    // One fan-out thread, or several each with its share of the subscribers.
    for hub in [Hub::with_shards(1), Hub::with_shards(4)] {
        let mut subscribers: Vec<_> = (0..50)
            .map(|_| hub.subscribe(Topic::Store(StoreId::new(7)), SubscribeOptions::default()))
            .collect();
        // Published one batch at a time and in one batch: order is kept either way.
        hub.publish(&[event(1, 1, 1, 7, &[])]);
        hub.publish(&[event(2, 1, 1, 7, &[]), event(3, 2, 1, 7, &[])]);
        for subscriber in &mut subscribers {
            assert_eq!(next_id(subscriber).await, 1);
            assert_eq!(next_id(subscriber).await, 2);
            assert_eq!(next_id(subscriber).await, 3);
        }
    }
}

/// A stream that writes its deliveries itself, as a live SSE connection
/// does: records what it is handed (events by id, a heartbeat as 0, a
/// reconnect as -1), or refuses as told.
#[derive(Default)]
struct Recorder {
    handed: Mutex<Vec<i64>>,
    refuse: Mutex<Option<Refused>>,
}

impl Recorder {
    fn handed(&self) -> Vec<i64> {
        self.handed.lock().expect("recorder").clone()
    }
}

impl DirectWriter for Recorder {
    fn deliver(&self, delivery: &Delivery) -> Result<(), Refused> {
        if let Some(refused) = *self.refuse.lock().expect("recorder") {
            return Err(refused);
        }
        self.handed.lock().expect("recorder").push(match delivery {
            Delivery::Event(event) => event.id,
            Delivery::Heartbeat => 0,
            Delivery::Reconnect => -1,
        });
        Ok(())
    }
}

#[tokio::test]
async fn a_subscription_written_directly_gets_what_was_queued_first_then_every_delivery_in_order() {
    let hub = Hub::with_shards(2);
    let mut direct = hub.subscribe(Topic::Store(StoreId::new(1)), user(1, "a"));
    let mut queued = hub.subscribe(Topic::Store(StoreId::new(1)), user(2, "b"));
    hub.publish(&[event(1, 1, 1, 1, &[]), event(2, 2, 1, 1, &[])]);
    hub.flush();

    let recorder = Arc::new(Recorder::default());
    direct.write_directly(recorder.clone());
    assert_eq!(recorder.handed(), [1, 2], "what was queued is handed over");
    hub.publish(&[event(3, 1, 1, 1, &[]), event(4, 3, 1, 1, &[])]);
    hub.publish(&[event(5, 3, 1, 1, &[])]);
    hub.flush();
    assert_eq!(recorder.handed(), [1, 2, 3, 4, 5]);
    // The other subscriber keeps its queue.
    for id in 1..=5 {
        assert_eq!(next_id(&mut queued).await, id);
    }
    // Nothing reaches the direct subscription's queue: it only ends.
    assert!(
        tokio::time::timeout(Duration::from_millis(50), direct.recv())
            .await
            .is_err()
    );

    // Shutting down: the reconnect is written too, then the end.
    hub.close_all();
    assert_eq!(recorder.handed(), [1, 2, 3, 4, 5, -1]);
    assert!(next(&mut direct).await.is_none());
    assert_eq!(hub.subscriber_count(), 0);
}

#[tokio::test]
async fn a_direct_writer_that_cannot_keep_up_or_lost_its_client_ends_its_subscription() {
    let hub = Hub::with_shards(2);
    let mut too_slow = hub.subscribe(Topic::Store(StoreId::new(1)), SubscribeOptions::default());
    let mut gone = hub.subscribe(Topic::Store(StoreId::new(1)), SubscribeOptions::default());
    let mut fine = hub.subscribe(Topic::Store(StoreId::new(1)), SubscribeOptions::default());
    for (subscription, refuse) in [
        (&mut too_slow, Some(Refused::TooSlow)),
        (&mut gone, Some(Refused::Gone)),
        (&mut fine, None),
    ] {
        let recorder = Arc::new(Recorder::default());
        *recorder.refuse.lock().expect("recorder") = refuse;
        subscription.write_directly(recorder);
    }
    hub.publish(&[event(1, 1, 1, 1, &[])]);
    hub.flush();
    assert!(next(&mut too_slow).await.is_none());
    assert!(next(&mut gone).await.is_none());
    assert_eq!(
        hub.dropped_slow(),
        1,
        "only the one too slow counts as slow"
    );
    assert_eq!(hub.subscriber_count(), 1);
    drop(fine);
    assert_eq!(hub.subscriber_count(), 0);
}

#[tokio::test]
async fn a_subscription_whose_access_ended_before_it_wrote_directly_still_gets_what_was_queued() {
    let hub = Hub::with_shards(2);
    let mut revoked = hub.subscribe(Topic::Customer(UserId::new(1)), user(1, "a"));
    hub.publish(&[event(1, 1, 1, 1, &[])]);
    hub.flush();
    hub.close_session("a");
    let recorder = Arc::new(Recorder::default());
    revoked.write_directly(recorder.clone());
    assert_eq!(recorder.handed(), [1]);
    assert!(next(&mut revoked).await.is_none());
    hub.publish(&[event(2, 1, 1, 1, &[])]);
    hub.flush();
    assert_eq!(recorder.handed(), [1], "nothing after its access ended");
}

#[tokio::test]
async fn a_station_filtered_store_subscriber_gets_only_events_touching_its_station() {
    let hub = Hub::new();
    let mut grill = hub.subscribe(Topic::Store(StoreId::new(1)), station("grill"));
    let mut drinks = hub.subscribe(Topic::Store(StoreId::new(1)), station("drinks"));
    let mut everything = hub.subscribe(Topic::Store(StoreId::new(1)), SubscribeOptions::default());

    hub.publish(&[
        event(1, 1, 1, 1, &["grill"]),
        event(2, 2, 1, 1, &["drinks"]),
        event(3, 3, 1, 1, &["fryer", "grill"]),
        event(4, 4, 1, 1, &[]),
        event(5, 5, 1, 1, &["grill", "drinks"]),
    ]);

    for id in [1, 3, 5] {
        assert_eq!(next_id(&mut grill).await, id);
    }
    for id in [2, 5] {
        assert_eq!(next_id(&mut drinks).await, id);
    }
    for id in 1..=5 {
        assert_eq!(next_id(&mut everything).await, id);
    }
    // Filtered-out events do not count against a subscriber's queue either.
    assert_eq!(hub.subscriber_count(), 3);
    assert_eq!(hub.dropped_slow(), 0);
}

#[tokio::test]
async fn a_subscriber_whose_queue_is_full_is_dropped_while_others_keep_receiving() {
    let hub = Hub::new();
    let mut fast = hub.subscribe(Topic::Store(StoreId::new(1)), SubscribeOptions::default());
    let mut slow = hub.subscribe(Topic::Store(StoreId::new(1)), SubscribeOptions::default());
    let mut id = 0;

    // Exactly a full queue: the slow subscriber is still in.
    for _ in 0..QUEUE_CAPACITY {
        id += 1;
        hub.publish(&[event(id, id, 1, 1, &[])]);
        assert_eq!(next_id(&mut fast).await, id);
    }
    // The slow one may be another fan-out thread's.
    hub.flush();
    assert_eq!(hub.subscriber_count(), 2);
    assert_eq!(hub.dropped_slow(), 0);

    // One more does not fit: the slow one is dropped, the fast one gets it.
    for _ in 0..10 {
        id += 1;
        hub.publish(&[event(id, id, 1, 1, &[])]);
        assert_eq!(next_id(&mut fast).await, id);
    }
    hub.flush();
    assert_eq!(hub.dropped_slow(), 1, "dropped once, not once per event");
    assert_eq!(hub.subscriber_count(), 1);

    // The slow subscriber still gets what was queued, in order, then its end
    // (its client resumes from the last id it saw).
    for expected in 1..=QUEUE_CAPACITY as i64 {
        assert_eq!(next_id(&mut slow).await, expected);
    }
    assert_ended(&mut slow).await;
}

#[tokio::test]
async fn a_slow_subscriber_of_one_topic_does_not_affect_other_topics() {
    let hub = Hub::new();
    let _slow_store = hub.subscribe(Topic::Store(StoreId::new(1)), SubscribeOptions::default());
    let mut order = hub.subscribe(Topic::Order(OrderId::new(5)), SubscribeOptions::default());
    for id in 1..=(QUEUE_CAPACITY as i64 + 1) {
        // Store 1 floods; the order watcher sees only its own order's events.
        hub.publish(&[event(id, 1000 + id, 1, 1, &[])]);
    }
    hub.publish(&[event(QUEUE_CAPACITY as i64 + 2, 5, 1, 2, &[])]);
    assert_eq!(next_id(&mut order).await, QUEUE_CAPACITY as i64 + 2);
    hub.flush();
    assert_eq!(hub.dropped_slow(), 1);
    assert_eq!(hub.subscriber_count(), 1);
}

#[tokio::test]
async fn a_staff_change_ends_the_streams_that_role_opened_only() {
    let hub = Hub::new();
    let mut a_store = hub.subscribe(Topic::Store(StoreId::new(1)), staff(1, "s1", 1));
    let mut a_order = hub.subscribe(Topic::Order(OrderId::new(9)), staff(1, "s1", 1));
    let mut a_other_store = hub.subscribe(Topic::Store(StoreId::new(2)), staff(1, "s1", 2));
    let mut a_me = hub.subscribe(Topic::Customer(UserId::new(1)), user(1, "s1"));
    let mut b_store = hub.subscribe(Topic::Store(StoreId::new(1)), staff(2, "s3", 1));
    let mut guest = hub.subscribe(Topic::Order(OrderId::new(9)), SubscribeOptions::default());
    assert_eq!(hub.subscriber_count(), 6);

    // User 1 is given another role in store 1 (committed as position 1).
    hub.publish(&[access(
        1,
        AccessChange::StaffChanged {
            user_id: UserId::new(1),
            store_id: StoreId::new(1),
            role: Some(Role::Driver),
        },
    )]);
    assert_eq!(hub.subscriber_count(), 4);
    assert_ended(&mut a_store).await;
    assert_ended(&mut a_order).await;

    hub.publish(&[event(2, 9, 1, 1, &[]), event(3, 10, 1, 2, &[])]);
    assert_eq!(next_id(&mut a_me).await, 2);
    assert_eq!(next_id(&mut b_store).await, 2);
    assert_eq!(next_id(&mut guest).await, 2);
    assert_eq!(next_id(&mut a_other_store).await, 3);

    // Removed from store 2 as well.
    hub.apply_access(&AccessChange::StaffChanged {
        user_id: UserId::new(1),
        store_id: StoreId::new(2),
        role: None,
    });
    assert_ended(&mut a_other_store).await;
    assert_eq!(hub.subscriber_count(), 3);
}

#[tokio::test]
async fn close_session_ends_the_streams_of_that_session_only() {
    let hub = Hub::new();
    let mut first = hub.subscribe(Topic::Customer(UserId::new(1)), user(1, "old"));
    let mut first_order = hub.subscribe(Topic::Order(OrderId::new(3)), user(1, "old"));
    let mut second = hub.subscribe(Topic::Customer(UserId::new(1)), user(1, "new"));
    let mut guest = hub.subscribe(Topic::Order(OrderId::new(3)), SubscribeOptions::default());

    hub.publish(&[access(
        7,
        AccessChange::SessionEnded {
            session_id: "old".into(),
        },
    )]);
    assert_eq!(hub.subscriber_count(), 2);
    assert_ended(&mut first).await;
    assert_ended(&mut first_order).await;

    hub.publish(&[event(1, 3, 1, 1, &[])]);
    assert_eq!(next_id(&mut second).await, 1);
    assert_eq!(next_id(&mut guest).await, 1);
}

#[tokio::test]
async fn close_all_tells_every_subscriber_to_reconnect_then_ends_them() {
    let hub = Hub::new();
    let mut subscribers = vec![
        hub.subscribe(Topic::Order(OrderId::new(1)), user(1, "a")),
        hub.subscribe(Topic::Customer(UserId::new(1)), user(1, "a")),
        hub.subscribe(Topic::Store(StoreId::new(1)), station("grill")),
        hub.subscribe(Topic::Order(OrderId::new(1)), SubscribeOptions::default()),
    ];
    hub.publish(&[event(1, 1, 1, 1, &["grill"])]);
    hub.close_all();
    assert_eq!(hub.subscriber_count(), 0);
    for subscriber in &mut subscribers {
        // Whatever was queued comes first, then the reconnect, then the end.
        assert_eq!(next_id(subscriber).await, 1);
        assert!(matches!(next(subscriber).await, Some(Delivery::Reconnect)));
        assert_ended(subscriber).await;
    }

    // Once closed, new subscriptions end at once and nothing is delivered.
    let mut late = hub.subscribe(Topic::Order(OrderId::new(1)), SubscribeOptions::default());
    assert_eq!(hub.subscriber_count(), 0);
    hub.publish(&[event(2, 1, 1, 1, &[])]);
    assert_ended(&mut late).await;
}

#[tokio::test]
async fn dropping_a_subscription_unsubscribes_it() {
    let hub = Hub::new();
    let first = hub.subscribe(Topic::Order(OrderId::new(1)), SubscribeOptions::default());
    let mut second = hub.subscribe(Topic::Order(OrderId::new(1)), SubscribeOptions::default());
    let third = hub.subscribe(Topic::Store(StoreId::new(1)), SubscribeOptions::default());
    assert_eq!(hub.subscriber_count(), 3);
    drop(first);
    assert_eq!(hub.subscriber_count(), 2);
    drop(third);
    assert_eq!(hub.subscriber_count(), 1);
    hub.publish(&[event(1, 1, 1, 1, &[])]);
    assert_eq!(next_id(&mut second).await, 1);
    drop(second);
    assert_eq!(hub.subscriber_count(), 0);
    // Publishing to nobody is fine, and dropped subscribers never count as slow.
    for id in 2..(QUEUE_CAPACITY as i64 + 10) {
        hub.publish(&[event(id, 1, 1, 1, &[])]);
    }
    assert_eq!(hub.dropped_slow(), 0);

    // A subscription outliving its hub drops cleanly.
    let orphan = {
        let hub = Hub::new();
        hub.subscribe(Topic::Order(OrderId::new(1)), SubscribeOptions::default())
    };
    drop(orphan);
}

#[tokio::test]
async fn the_heartbeat_task_keeps_streams_warm_and_ends_expired_sessions() {
    let hub = Hub::new();
    let mut live = hub.subscribe(
        Topic::Customer(UserId::new(1)),
        SubscribeOptions {
            expires_at: Some(OffsetDateTime::now_utc() + time::Duration::hours(1)),
            ..user(1, "live")
        },
    );
    let mut expired = hub.subscribe(
        Topic::Customer(UserId::new(1)),
        SubscribeOptions {
            expires_at: Some(OffsetDateTime::now_utc() - time::Duration::seconds(1)),
            ..user(1, "expired")
        },
    );
    let heartbeat = hub.start_heartbeat(Duration::from_millis(20));

    assert!(matches!(next(&mut live).await, Some(Delivery::Heartbeat)));
    assert_ended(&mut expired).await;
    assert_eq!(hub.subscriber_count(), 1);
    heartbeat.abort();
}

#[tokio::test]
async fn the_hub_hears_commits_as_a_commit_listener_and_as_an_event_bus() {
    let hub = Hub::new();
    let mut order = hub.subscribe(Topic::Order(OrderId::new(1)), SubscribeOptions::default());
    let listener: Arc<dyn CommitListener> = Arc::new(hub.clone());
    listener.committed(&[event(1, 1, 1, 1, &[])]);
    let bus: Arc<dyn EventBus> = Arc::new(hub.clone());
    bus.publish(&[event(2, 1, 1, 1, &[])]);
    assert_eq!(next_id(&mut order).await, 1);
    assert_eq!(next_id(&mut order).await, 2);
}

#[test]
fn a_live_event_is_one_sse_frame_carrying_the_public_json() {
    let stored = stored(42, 7, 3, 2, &["grill", "fryer"]);
    let live = LiveEvent::new(&stored);
    assert_eq!(live.id, 42);
    let at = |station: &str| SubscribeOptions {
        station: Some(station.to_owned()),
        ..SubscribeOptions::default()
    };
    assert!(at("fryer").wants(&live.stations, live.summary_fulfilment));
    assert!(!at("drinks").wants(&live.stations, live.summary_fulfilment));
    let drivers = SubscribeOptions {
        fulfilment: Some(FulfilmentKind::Delivery),
        ..SubscribeOptions::default()
    };
    assert!(!drivers.wants(&live.stations, live.summary_fulfilment));
    assert!(
        drivers.wants(&live.stations, None),
        "events without a fulfilment pass"
    );

    let json: serde_json::Value = serde_json::from_str(live.json.get()).expect("JSON");
    assert_eq!(json["id"], 42);
    assert_eq!(json["type"], "status_changed");
    assert_eq!(json["order_id"], 7);
    assert_eq!(json["customer_id"], 3);
    assert_eq!(json["store_id"], 2);
    assert_eq!(json["order_version"], 43);
    assert_eq!(json["to"], "confirmed");
    assert_eq!(json["actor_role"], "cashier");
    assert_eq!(json["summary"]["status"], "confirmed");
    assert_eq!(json["stations"], serde_json::json!(["grill", "fryer"]));
    // The actor's identity is not published, only their role.
    assert!(json.get("actor").is_none());

    let frame = std::str::from_utf8(&live.sse).expect("UTF-8");
    let expected = format!(
        "id: 42\nevent: status_changed\ndata: {}\n\n",
        live.json.get()
    );
    assert_eq!(frame, expected);
    assert_eq!(frame.matches('\n').count(), 4, "the data is one line");
}

/// The nice value of each of this process's threads named `name`.
#[cfg(target_os = "linux")]
fn nice_of_threads(name: &str) -> Vec<i64> {
    let mut nice = Vec::new();
    for task in std::fs::read_dir("/proc/self/task").expect("the process's threads") {
        let path = task.expect("a thread").path();
        let Ok(comm) = std::fs::read_to_string(path.join("comm")) else {
            continue; // ended meanwhile
        };
        if comm.trim_end() != name {
            continue;
        }
        let stat = std::fs::read_to_string(path.join("stat")).expect("the thread's stat");
        // Fields after the name (which may hold spaces): state is field 3,
        // the nice value field 19.
        let after_name = &stat[stat.rfind(')').expect("a stat line") + 2..];
        let field = after_name.split(' ').nth(19 - 3).expect("the nice field");
        nice.push(field.parse().expect("a number"));
    }
    nice
}

#[cfg(target_os = "linux")]
#[test]
fn the_fan_out_threads_yield_the_cores_to_requests() {
    let hub = Hub::with_shards(3);
    // Each thread lowers its priority before it takes any work.
    hub.flush();
    // Thread names are cut to 15 bytes: "ordertrack-fanout-N".
    let nice = nice_of_threads("ordertrack-fano");
    assert!(nice.len() >= 3, "the hub's three threads: {nice:?}");
    assert!(
        nice.iter().all(|n| *n > 0),
        "below the request workers' priority: {nice:?}"
    );
}
