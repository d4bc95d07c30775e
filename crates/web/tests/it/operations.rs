//! What operators rely on (issue 16): `/metrics` in the Prometheus text
//! format, read back by a Prometheus parser, whose figures move with the
//! requests, commits and streams they count; who may read it; and the
//! request id every response carries.

use std::net::SocketAddr;

use axum::body::Body;
use axum::extract::ConnectInfo;
use axum::http::{Request, StatusCode};
use openmetrics_parser::prometheus::parse_prometheus;
use openmetrics_parser::{MetricsExposition, PrometheusType, PrometheusValue};
use tower::ServiceExt;

use crate::support::*;

/// The figures as a Prometheus text-format parser reads them.
type Scrape = MetricsExposition<PrometheusType, PrometheusValue>;

/// `/metrics` once `moved` holds of it (a worker counts an attempt once it
/// has recorded it), or after 5 s as it is then.
async fn scrape_until(app: &TestApp, moved: impl Fn(&Scrape) -> bool) -> Scrape {
    let mut figures = scrape(app).await;
    for _ in 0..100 {
        if moved(&figures) {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        figures = scrape(app).await;
    }
    figures
}

/// `/metrics` as a Prometheus server reads it.
async fn scrape(app: &TestApp) -> Scrape {
    let response = app
        .client
        .get(app.page_url("/metrics"))
        .send()
        .await
        .expect("GET /metrics");
    assert_eq!(response.status(), 200);
    let content_type = response
        .headers()
        .get("content-type")
        .and_then(|value| value.to_str().ok())
        .unwrap_or_default()
        .to_owned();
    assert!(
        content_type.starts_with("text/plain; version=0.0.4"),
        "{content_type}"
    );
    let text = response.text().await.expect("the exposition");
    parse_prometheus(&text).unwrap_or_else(|error| panic!("{error:?} in\n{text}"))
}

/// The value of the sample `name` whose labels include `labels` (0 when
/// there is none yet); a histogram's count of observations.
fn sample(scrape: &Scrape, name: &str, labels: &[(&str, &str)]) -> f64 {
    let Some(family) = scrape.families.get(name) else {
        return 0.0;
    };
    family
        .iter_samples()
        .filter(|sample| {
            let set = sample.get_labelset().expect("labels");
            labels
                .iter()
                .all(|(key, value)| set.get_label_value(key) == Some(*value))
        })
        .map(|sample| match &sample.value {
            PrometheusValue::Counter(counter) => counter.value.as_f64(),
            PrometheusValue::Gauge(value) | PrometheusValue::Unknown(value) => value.as_f64(),
            PrometheusValue::Histogram(histogram) => histogram.count.unwrap_or(0) as f64,
            PrometheusValue::Summary(_) => 0.0,
        })
        .sum()
}

const REQUESTS: &str = "ordertrack_http_requests_total";

#[tokio::test]
async fn metrics_parse_and_move_with_requests_commits_and_streams() {
    let app = spawn_app().await;
    let store = app.staffed_store("metrics-cafe", "restaurant", "M").await;
    let before = scrape(&app).await;

    // A placed order: one request on its route template, events committed.
    let order = app
        .post(
            "/orders",
            &app.alice().await.token,
            &pickup(&store.slug, &[(store.product_ids()[0], 1)]),
        )
        .await
        .expect(201);
    app.get(&format!("/orders/{}", id(&order)), &store.cashier.token)
        .await
        .expect(200);
    app.get("/no/such/route", ANON).await.expect(404);
    let (stream, _) = app
        .ready_sse(
            &format!("/stores/{}/events", store.slug),
            Some(&store.owner.token),
        )
        .await;

    let after = scrape(&app).await;
    let moved = |name: &str, labels: &[(&str, &str)]| {
        sample(&after, name, labels) - sample(&before, name, labels)
    };
    let created = [
        ("method", "POST"),
        ("route", "/api/v1/orders"),
        ("status", "201"),
    ];
    assert_eq!(moved(REQUESTS, &created), 1.0);
    // Counted by template, not by the id in the path.
    let read = [
        ("method", "GET"),
        ("route", "/api/v1/orders/{id}"),
        ("status", "200"),
    ];
    assert_eq!(moved(REQUESTS, &read), 1.0);
    let unmatched = [("route", "unmatched"), ("status", "404")];
    assert_eq!(moved(REQUESTS, &unmatched), 1.0);
    let latency = [("method", "POST"), ("route", "/api/v1/orders")];
    assert_eq!(
        moved("ordertrack_http_request_duration_seconds", &latency),
        1.0
    );
    assert!(moved("ordertrack_events_committed_total", &[]) >= 1.0);
    assert!(moved("ordertrack_commit_batch_events", &[]) >= 1.0);
    assert_eq!(
        sample(&after, "ordertrack_open_streams", &[("kind", "sse")]),
        sample(&before, "ordertrack_open_streams", &[("kind", "sse")]) + 1.0
    );
    assert!(sample(&after, "ordertrack_db_connections", &[("state", "open")]) >= 1.0);

    // A closed stream is counted closed.
    drop(stream);
    let mut open = f64::MAX;
    for _ in 0..100 {
        open = sample(
            &scrape(&app).await,
            "ordertrack_open_streams",
            &[("kind", "sse")],
        );
        if open == sample(&before, "ordertrack_open_streams", &[("kind", "sse")]) {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    assert_eq!(
        open,
        sample(&before, "ordertrack_open_streams", &[("kind", "sse")])
    );
}

/// `GET /metrics` through the router in-process, as if from `peer`.
async fn metrics_from(
    router: &axum::Router, peer: &str, authorization: Option<&str>,
) -> StatusCode {
    let mut request = Request::get("/metrics");
    if let Some(value) = authorization {
        request = request.header("authorization", value);
    }
    let mut request = request.body(Body::empty()).expect("a request");
    let peer: SocketAddr = peer.parse().expect("an address");
    request.extensions_mut().insert(ConnectInfo(peer));
    router
        .clone()
        .oneshot(request)
        .await
        .expect("an answer")
        .status()
}

#[tokio::test]
async fn metrics_are_for_this_machine_or_the_operators_token() {
    let app = spawn_app_guarded(Guards {
        metrics_token: Some("scraper-secret-0123456789".into()),
        ..Guards::default()
    })
    .await;
    let router = app.reopen().await.router();
    assert_eq!(metrics_from(&router, "127.0.0.1:5000", None).await, 200);
    assert_eq!(metrics_from(&router, "[::1]:5000", None).await, 200);
    assert_eq!(metrics_from(&router, "10.1.2.3:5000", None).await, 404);
    assert_eq!(
        metrics_from(&router, "10.1.2.3:5000", Some("Bearer wrong")).await,
        404
    );
    assert_eq!(
        metrics_from(
            &router,
            "10.1.2.3:5000",
            Some("Bearer scraper-secret-0123456789")
        )
        .await,
        200
    );

    // Without a token only this machine may read them.
    let open = spawn_app().await;
    let router = open.reopen().await.router();
    assert_eq!(metrics_from(&router, "203.0.113.9:5000", None).await, 404);
    assert_eq!(
        metrics_from(&router, "203.0.113.9:5000", Some("Bearer anything")).await,
        404
    );
}

#[tokio::test]
async fn every_response_carries_a_request_id_and_a_given_one_is_echoed() {
    let app = spawn_app().await;
    let fresh = |resp: &Resp| resp.header("x-request-id").map(str::to_owned);
    let first = fresh(&app.get("/stores", ANON).await).expect("a request id");
    let second = fresh(&app.get("/no/such/route", ANON).await).expect("a request id");
    assert_eq!(first.len(), 32, "{first}");
    assert!(
        first.bytes().all(|byte| byte.is_ascii_hexdigit()),
        "{first}"
    );
    assert_ne!(first, second);

    let given = app
        .send(
            app.request(reqwest::Method::GET, "/stores", ANON)
                .header("x-request-id", "from-the-proxy-42"),
        )
        .await;
    assert_eq!(given.header("x-request-id"), Some("from-the-proxy-42"));
}

#[tokio::test]
async fn metrics_count_webhook_deliveries_and_show_how_far_the_outbox_is_behind() {
    let app = spawn_app().await;
    let store = app.staffed_store("metrics-hooks", "restaurant", "W").await;
    let receiver = Receiver::start().await;
    app.post(
        &format!("/stores/{}/webhooks", store.slug),
        &store.owner.token,
        &serde_json::json!({"url": receiver.url, "events": ["*"]}),
    )
    .await
    .expect(201);
    let before = scrape(&app).await;
    let delivered = [("outcome", "delivered")];
    app.post(
        "/orders",
        &app.alice().await.token,
        &pickup(&store.slug, &[(store.product_ids()[0], 1)]),
    )
    .await
    .expect(201);
    receiver
        .wait_for(1, std::time::Duration::from_secs(15))
        .await;

    // The attempt is counted once the worker has recorded it.
    let after = scrape_until(&app, |after| {
        sample(after, "ordertrack_webhook_deliveries_total", &delivered)
            - sample(&before, "ordertrack_webhook_deliveries_total", &delivered)
            >= 1.0
    })
    .await;
    assert_eq!(
        sample(&after, "ordertrack_webhook_deliveries_total", &delivered)
            - sample(&before, "ordertrack_webhook_deliveries_total", &delivered),
        1.0
    );
    let family = after
        .families
        .get("ordertrack_outbox_lag_events")
        .expect("the outbox lag is exposed");
    let lag = sample(
        &after,
        "ordertrack_outbox_lag_events",
        &[("follower", "webhooks")],
    );
    assert!(family.iter_samples().count() >= 1 && lag >= 0.0, "{lag}");
    // The Web Push follower is behind by nothing once it has caught up.
    let push_lag = sample(
        &after,
        "ordertrack_outbox_lag_events",
        &[("follower", "push")],
    );
    assert!(push_lag >= 0.0, "{push_lag}");
}

#[tokio::test]
async fn metrics_count_web_push_sent_failed_and_removed() {
    let app = spawn_app().await;
    let store = app.staffed_store("metrics-push", "restaurant", "P").await;
    let alice = app.alice().await;
    let gone = Receiver::start().await;
    gone.answer_always(410);
    let flaky = Receiver::start().await;
    flaky.answer_next(&[500]);
    for service in [&gone, &flaky] {
        app.post(
            "/push/subscriptions",
            &alice.token,
            &BrowserSubscription::new(&service.url).body(),
        )
        .await
        .expect(201);
    }
    let pushes = |outcome| {
        move |figures: &Scrape| {
            sample(
                figures,
                "ordertrack_push_deliveries_total",
                &[("outcome", outcome)],
            )
        }
    };
    let (sent, retried, gave_up, removed) = (
        pushes("sent"),
        pushes("retried"),
        pushes("gave_up"),
        pushes("removed"),
    );
    let before = scrape(&app).await;

    // Confirming the order pushes to both: the gone service's subscription
    // is removed, the flaky one's first attempt fails and the retry is sent.
    let order = app
        .place_order(&alice.token, &store.slug, &[(store.product_ids()[0], 1)])
        .await;
    app.advance(&store.owner.token, &order, "confirmed").await;
    gone.wait_for(1, std::time::Duration::from_secs(10)).await;
    flaky.wait_for(2, std::time::Duration::from_secs(10)).await;
    let after = scrape_until(&app, |after| {
        sent(after) - sent(&before) >= 1.0
            && retried(after) - retried(&before) >= 1.0
            && removed(after) - removed(&before) >= 1.0
    })
    .await;
    assert_eq!(sent(&after) - sent(&before), 1.0);
    assert_eq!(retried(&after) - retried(&before), 1.0);
    assert_eq!(removed(&after) - removed(&before), 1.0);
    assert_eq!(gave_up(&after) - gave_up(&before), 0.0);
}
