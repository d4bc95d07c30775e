//! What operators watch: `/metrics` in the Prometheus text format.
//!
//! Each running instance keeps its own [`Metrics`] (one registry per
//! instance, not a process-wide one: the tests run many instances in one
//! process, and each must count only its own). Requests are counted by
//! route *template* (`/api/v1/orders/{id}`), never by the path a client
//! sent, so a scan of made-up paths cannot grow the series without bound:
//! whatever no route matches is counted as `unmatched`.
//!
//! `/metrics` answers only clients on this machine (loopback) unless the
//! operator sets `--metrics-token`, which a scraper then sends as a Bearer
//! token from anywhere: request counts and pool figures are not for
//! customers' eyes.

use std::sync::Arc;
use std::time::Instant;

use axum::Extension;
use axum::extract::{ConnectInfo, MatchedPath, Request, State};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use ordertrack_store::{CommitListener, LogEntry, PoolStatus};
use prometheus::{
    Encoder, Histogram, HistogramOpts, HistogramVec, IntCounter, IntCounterVec, IntGauge,
    IntGaugeVec, Opts, Registry, TextEncoder,
};

use crate::AppState;
use crate::routes::Routes;

/// Request latency buckets, in seconds: a commit takes milliseconds, a
/// report or a password hash up to a second.
const LATENCY_BUCKETS: &[f64] = &[
    0.000_5, 0.001, 0.002_5, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0,
];

/// Events per commit: group commit gathers up to a few hundred.
const BATCH_BUCKETS: &[f64] = &[1.0, 2.0, 4.0, 8.0, 16.0, 32.0, 64.0, 128.0, 256.0, 512.0];

/// The label of requests no route matched.
const UNMATCHED: &str = "unmatched";

/// The kinds of live stream, as the `kind` label names them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StreamKind {
    /// Server-Sent Events.
    Sse,
    /// A WebSocket.
    WebSocket,
}

impl StreamKind {
    fn label(self) -> &'static str {
        match self {
            StreamKind::Sse => "sse",
            StreamKind::WebSocket => "websocket",
        }
    }
}

/// The figures of one running instance.
pub struct Metrics {
    registry: Registry,
    requests: IntCounterVec,
    request_seconds: HistogramVec,
    open_streams: IntGaugeVec,
    events_committed: IntCounter,
    commit_batch: Histogram,
    db_connections: IntGaugeVec,
    db_queued: IntGauge,
    outbox_lag: IntGaugeVec,
    webhook_deliveries: IntCounterVec,
    email_deliveries: IntCounterVec,
    push_deliveries: IntCounterVec,
    /// Who may read `/metrics` from elsewhere than this machine.
    token: Option<String>,
}

impl Metrics {
    /// Every figure at zero. `token`: the Bearer token that lets a scraper
    /// elsewhere than on this machine read them.
    pub fn new(token: Option<String>) -> Arc<Metrics> {
        let registry = Registry::new();
        let requests = IntCounterVec::new(
            Opts::new(
                "ordertrack_http_requests_total",
                "HTTP requests answered, by method, route template and status.",
            ),
            &["method", "route", "status"],
        )
        .expect("a valid metric");
        let request_seconds = HistogramVec::new(
            HistogramOpts::new(
                "ordertrack_http_request_duration_seconds",
                "Time to answer a request (until the response head; a live stream's \
                 body is not counted), by method and route template.",
            )
            .buckets(LATENCY_BUCKETS.to_vec()),
            &["method", "route"],
        )
        .expect("a valid metric");
        let open_streams = IntGaugeVec::new(
            Opts::new("ordertrack_open_streams", "Live streams open now, by kind."),
            &["kind"],
        )
        .expect("a valid metric");
        let events_committed = IntCounter::new(
            "ordertrack_events_committed_total",
            "Entries of the event log committed by this instance's writer.",
        )
        .expect("a valid metric");
        let commit_batch = Histogram::with_opts(
            HistogramOpts::new(
                "ordertrack_commit_batch_events",
                "Events made durable by one commit of the writer (group commit).",
            )
            .buckets(BATCH_BUCKETS.to_vec()),
        )
        .expect("a valid metric");
        let db_connections = IntGaugeVec::new(
            Opts::new(
                "ordertrack_db_connections",
                "Database connections for reading, by state (open; idle where the \
                 backend tells).",
            ),
            &["state"],
        )
        .expect("a valid metric");
        let db_queued = IntGauge::new(
            "ordertrack_db_queued_jobs",
            "Reads and writes waiting for a database connection (SQLite).",
        )
        .expect("a valid metric");
        let outbox_lag = IntGaugeVec::new(
            Opts::new(
                "ordertrack_outbox_lag_events",
                "Events of the log a follower has not handled yet, by follower \
                 (webhooks; printing where printer hosts are allowed; email \
                 where an SMTP server is given).",
            ),
            &["follower"],
        )
        .expect("a valid metric");
        let webhook_deliveries = IntCounterVec::new(
            Opts::new(
                "ordertrack_webhook_deliveries_total",
                "Webhook delivery attempts by this instance, by outcome \
                 (delivered, retried, gave_up, endpoint_gone).",
            ),
            &["outcome"],
        )
        .expect("a valid metric");
        let email_deliveries = IntCounterVec::new(
            Opts::new(
                "ordertrack_email_deliveries_total",
                "Customer e-mail attempts by this instance, by outcome \
                 (sent, retried, gave_up, suppressed).",
            ),
            &["outcome"],
        )
        .expect("a valid metric");
        let push_deliveries = IntCounterVec::new(
            Opts::new(
                "ordertrack_push_deliveries_total",
                "Web Push attempts by this instance, by outcome (sent; failed: \
                 retried or gave_up; removed: the push service said the \
                 subscription is gone, so it was deleted).",
            ),
            &["outcome"],
        )
        .expect("a valid metric");
        for collector in [
            Box::new(requests.clone()) as Box<dyn prometheus::core::Collector>,
            Box::new(request_seconds.clone()),
            Box::new(open_streams.clone()),
            Box::new(events_committed.clone()),
            Box::new(commit_batch.clone()),
            Box::new(db_connections.clone()),
            Box::new(db_queued.clone()),
            Box::new(outbox_lag.clone()),
            Box::new(webhook_deliveries.clone()),
            Box::new(email_deliveries.clone()),
            Box::new(push_deliveries.clone()),
        ] {
            registry.register(collector).expect("distinct metric names");
        }
        // Both kinds are listed from the start, at zero.
        for kind in [StreamKind::Sse, StreamKind::WebSocket] {
            open_streams.with_label_values(&[kind.label()]);
        }
        Arc::new(Metrics {
            registry,
            requests,
            request_seconds,
            open_streams,
            events_committed,
            commit_batch,
            db_connections,
            db_queued,
            outbox_lag,
            webhook_deliveries,
            email_deliveries,
            push_deliveries,
            token,
        })
    }

    /// Counts one answered request.
    fn observe_request(&self, method: &Method, route: &str, status: StatusCode, seconds: f64) {
        let method = method.as_str();
        self.requests
            .with_label_values(&[method, route, status.as_str()])
            .inc();
        self.request_seconds
            .with_label_values(&[method, route])
            .observe(seconds);
    }

    /// Counts a live stream as open until the returned guard is dropped
    /// (with the stream).
    pub fn stream_opened(&self, kind: StreamKind) -> OpenStream {
        let gauge = self.open_streams.with_label_values(&[kind.label()]);
        gauge.inc();
        OpenStream { gauge }
    }

    /// Wraps the listener the writer tells about commits, counting them on
    /// the way.
    pub fn count_commits(
        self: &Arc<Self>, inner: Arc<dyn CommitListener>,
    ) -> Arc<dyn CommitListener> {
        Arc::new(CountedCommits {
            metrics: self.clone(),
            inner,
        })
    }

    /// The text exposition, with the database pool, the followers' lag and
    /// the webhook, e-mail and push outcomes as they are now.
    fn render(&self, now: Snapshot) -> String {
        let Snapshot {
            pool,
            lags,
            deliveries,
            emails,
            pushes,
        } = now;
        for (follower, lag) in lags {
            self.outbox_lag.with_label_values(&[follower]).set(lag);
        }
        let counted = [
            (&self.webhook_deliveries, deliveries),
            (&self.email_deliveries, emails),
            (&self.push_deliveries, pushes),
        ];
        for (metric, outcomes) in counted {
            for (outcome, attempts) in outcomes {
                let counter = metric.with_label_values(&[outcome]);
                // The app counts; the exposition catches up with it.
                counter.inc_by(attempts.saturating_sub(counter.get()));
            }
        }
        self.db_connections
            .with_label_values(&["open"])
            .set(i64::from(pool.connections));
        if let Some(idle) = pool.idle {
            self.db_connections
                .with_label_values(&["idle"])
                .set(i64::from(idle));
        }
        if let Some(queued) = pool.queued {
            self.db_queued.set(i64::from(queued));
        }
        let mut text = Vec::new();
        // Encoding into memory fails only on a broken metric, which
        // `new` would have refused.
        let _ = TextEncoder::new().encode(&self.registry.gather(), &mut text);
        String::from_utf8_lossy(&text).into_owned()
    }

    /// Whether this request may read the figures: from this machine, or
    /// with the operator's token.
    fn allows(&self, peer: Option<std::net::SocketAddr>, headers: &HeaderMap) -> bool {
        if let Some(token) = &self.token {
            let presented = headers
                .get(header::AUTHORIZATION)
                .and_then(|value| value.to_str().ok())
                .and_then(|value| value.strip_prefix("Bearer "));
            if presented.is_some_and(|presented| constant_time_eq(presented, token)) {
                return true;
            }
        }
        peer.is_some_and(|peer| peer.ip().is_loopback())
    }
}

/// Equal strings, compared without stopping at the first difference (a
/// token must not be guessable from response times).
fn constant_time_eq(a: &str, b: &str) -> bool {
    a.len() == b.len()
        && a.bytes()
            .zip(b.bytes())
            .fold(0u8, |diff, (x, y)| diff | (x ^ y))
            == 0
}

/// What `/metrics` reads from the app at scrape time.
struct Snapshot {
    pool: PoolStatus,
    lags: Vec<(&'static str, i64)>,
    deliveries: [(&'static str, u64); 4],
    emails: [(&'static str, u64); 4],
    pushes: [(&'static str, u64); 4],
}

/// A live stream counted as open; dropping it counts it closed.
pub struct OpenStream {
    gauge: IntGauge,
}

impl Drop for OpenStream {
    fn drop(&mut self) {
        self.gauge.dec();
    }
}

/// Counts each commit, then tells the listener behind it.
struct CountedCommits {
    metrics: Arc<Metrics>,
    inner: Arc<dyn CommitListener>,
}

impl CommitListener for CountedCommits {
    fn committed(&self, events: &[LogEntry]) {
        let count = events.len() as u64;
        self.metrics.events_committed.inc_by(count);
        self.metrics.commit_batch.observe(count as f64);
        self.inner.committed(events);
    }
}

/// Middleware: counts every request by its route template and status, and
/// how long it took to answer.
pub async fn count_requests(
    State(metrics): State<Arc<Metrics>>, request: Request, next: Next,
) -> Response {
    let started = Instant::now();
    let method = request.method().clone();
    // A shared string: cloning it allocates nothing on this hot path.
    let route = request.extensions().get::<MatchedPath>().cloned();
    let response = next.run(request).await;
    metrics.observe_request(
        &method,
        route.as_ref().map_or(UNMATCHED, MatchedPath::as_str),
        response.status(),
        started.elapsed().as_secs_f64(),
    );
    response
}

/// `GET /metrics`.
pub fn routes() -> Routes {
    Routes::new().get("/metrics", scrape)
}

async fn scrape(
    State(state): State<AppState>, peer: Option<Extension<ConnectInfo<std::net::SocketAddr>>>,
    headers: HeaderMap,
) -> Response {
    let metrics = &state.metrics;
    if !metrics.allows(peer.map(|Extension(ConnectInfo(peer))| peer), &headers) {
        // As if there were nothing here: the figures are for operators.
        return crate::error::not_found().await.into_response();
    }
    let lags = match state.app.follower_lags().await {
        Ok(lags) => lags,
        Err(error) => {
            tracing::warn!(%error, "reading the followers' positions for /metrics");
            Vec::new()
        }
    };
    let text = metrics.render(Snapshot {
        pool: state.app.pool_status(),
        lags,
        deliveries: state.app.webhook_delivery_outcomes(),
        emails: state.app.email_outcomes(),
        pushes: state.app.push_outcomes(),
    });
    (
        [(
            header::CONTENT_TYPE,
            HeaderValue::from_static("text/plain; version=0.0.4; charset=utf-8"),
        )],
        text,
    )
        .into_response()
}
