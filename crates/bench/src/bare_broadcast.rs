//! The bare broadcast server: the ceiling `fanout` is measured against.
//!
//! The same HTTP stack as ordertrack (tokio, hyper, axum, jemalloc) with
//! nothing else: no database, no sign-in, no authorisation, no resume. One
//! `tokio::sync::broadcast` channel per topic; each event's SSE frame is
//! built once and the same bytes go to every subscriber. `fanout` runs it
//! as a child process (`ordertrack-bench bare-broadcast`) and drives it with
//! the same subscriber client as the real server, so the ratio of the two
//! p99s is what ordertrack's commit, authorisation and bookkeeping cost.

use std::collections::HashMap;
use std::convert::Infallible;
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::{Arc, Mutex};

use axum::Router;
use axum::body::Body;
use axum::extract::{Path, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use bytes::Bytes;
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;
use tokio::sync::broadcast::{self, error::RecvError};

/// The subcommand that runs it (hidden from `--help`).
pub const COMMAND: &str = "bare-broadcast";

/// Frames a subscriber may fall behind before it is told to reconnect
/// (ordertrack's live streams have the same bound).
const BACKLOG: usize = 1024;

const READY: &[u8] = b"event: ready\ndata: {}\n\n";
const RECONNECT: &[u8] = b"event: reconnect\ndata: {}\n\n";

/// The server's state: one channel per topic and the next event id.
#[derive(Clone)]
struct Topics {
    inner: Arc<Inner>,
}

struct Inner {
    channels: Mutex<HashMap<String, broadcast::Sender<Bytes>>>,
    next_id: AtomicI64,
    /// The length of each event's `data:` line, padded to match the real
    /// server's events (same bytes on the wire per delivery).
    data_bytes: usize,
}

impl Topics {
    fn channel(&self, topic: &str) -> broadcast::Sender<Bytes> {
        let mut channels = self
            .inner
            .channels
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        channels
            .entry(topic.to_owned())
            .or_insert_with(|| broadcast::channel(BACKLOG).0)
            .clone()
    }
}

/// The bare server's routes: `GET /healthz`, the store stream at the same
/// path as ordertrack's, and `POST /publish/{store}/{order_id}`, which
/// sends one `order_version: 2` event stamped with the current time.
pub fn router(data_bytes: usize) -> Router {
    let topics = Topics {
        inner: Arc::new(Inner {
            channels: Mutex::new(HashMap::new()),
            next_id: AtomicI64::new(1),
            data_bytes,
        }),
    };
    Router::new()
        .route("/healthz", get(|| async { "ok" }))
        .route("/api/v1/stores/{store}/events", get(subscribe))
        .route("/publish/{store}/{order_id}", post(publish))
        .with_state(topics)
}

/// Serves [`router`] on `bind`, printing `listening on http://…` once the
/// socket is bound (the line the bench waits for).
pub async fn serve(bind: &str, data_bytes: usize) -> anyhow::Result<()> {
    let listener = tokio::net::TcpListener::bind(bind).await?;
    println!("listening on http://{}", listener.local_addr()?);
    axum::serve(listener, router(data_bytes)).await?;
    Ok(())
}

async fn subscribe(State(topics): State<Topics>, Path(store): Path<String>) -> Response {
    let receiver = topics.channel(&store).subscribe();
    let events = futures::stream::unfold(Some(receiver), |receiver| async move {
        let mut receiver = receiver?;
        match receiver.recv().await {
            Ok(frame) => Some((frame, Some(receiver))),
            Err(RecvError::Lagged(_)) => Some((Bytes::from_static(RECONNECT), None)),
            Err(RecvError::Closed) => None,
        }
    });
    let frames = futures::StreamExt::map(
        futures::StreamExt::chain(
            futures::stream::once(async { Bytes::from_static(READY) }),
            events,
        ),
        Ok::<_, Infallible>,
    );
    (
        [
            (header::CONTENT_TYPE, "text/event-stream"),
            (header::CACHE_CONTROL, "no-cache"),
        ],
        Body::from_stream(frames),
    )
        .into_response()
}

async fn publish(
    State(topics): State<Topics>, Path((store, order_id)): Path<(String, i64)>,
) -> StatusCode {
    let id = topics.inner.next_id.fetch_add(1, Ordering::Relaxed);
    let frame = event_frame(
        id,
        order_id,
        OffsetDateTime::now_utc(),
        topics.inner.data_bytes,
    );
    // No subscribers is not an error: the event is simply not delivered.
    let _ = topics.channel(&store).send(frame);
    StatusCode::NO_CONTENT
}

/// One SSE frame: an order event whose `data:` line is padded with a
/// `note` field to `data_bytes` (never shorter than the fields themselves).
pub fn event_frame(id: i64, order_id: i64, at: OffsetDateTime, data_bytes: usize) -> Bytes {
    let at = at.format(&Rfc3339).unwrap_or_default();
    let mut data = format!(
        r#"{{"id":{id},"kind":"order.status_changed","order_id":{order_id},"order_version":2,"status":"confirmed","at":"{at}","note":""#
    );
    let closing = "\"}";
    let pad = data_bytes.saturating_sub(data.len() + closing.len());
    data.extend(std::iter::repeat_n('.', pad));
    data.push_str(closing);
    Bytes::from(format!("id: {id}\nevent: order\ndata: {data}\n\n"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sse::{FrameParser, event_stamp};

    #[test]
    fn a_frame_is_padded_to_the_size_asked_and_stays_parseable() {
        let at = OffsetDateTime::from_unix_timestamp(1_800_000_000).expect("a time");
        let frame = event_frame(7, 42, at, 600);
        let mut parser = FrameParser::default();
        let mut frames = Vec::new();
        parser.push(&frame, &mut frames);
        assert_eq!(frames.len(), 1);
        assert_eq!(frames[0].data.len(), 600);
        let stamp = event_stamp(&frames[0].data).expect("an order event");
        assert_eq!((stamp.order_id, stamp.order_version), (42, 2));
        assert_eq!(stamp.at_us, 1_800_000_000_000_000);
        // Smaller than the fields: no padding, still whole.
        let short = event_frame(7, 42, at, 10);
        let mut frames = Vec::new();
        FrameParser::default().push(&short, &mut frames);
        assert!(event_stamp(&frames[0].data).is_some());
    }

    #[tokio::test]
    async fn every_subscriber_of_a_topic_receives_each_published_event_once() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let base = format!("http://{}", listener.local_addr().expect("address"));
        tokio::spawn(async move { axum::serve(listener, router(300)).await });
        let client = reqwest::Client::new();
        let mut streams = Vec::new();
        for topic in ["one", "one", "other"] {
            let response = client
                .get(format!("{base}/api/v1/stores/{topic}/events"))
                .send()
                .await
                .expect("subscribe");
            assert_eq!(response.status(), 200);
            streams.push(response);
        }
        // Each stream says `ready` before anything is published.
        let mut seen: Vec<Vec<i64>> = vec![Vec::new(); streams.len()];
        let mut parsers: Vec<FrameParser> =
            streams.iter().map(|_| FrameParser::default()).collect();
        for (i, stream) in streams.iter_mut().enumerate() {
            let chunk = stream.chunk().await.expect("read").expect("a chunk");
            let mut frames = Vec::new();
            parsers[i].push(&chunk, &mut frames);
            assert_eq!(frames[0].event.as_deref(), Some("ready"));
        }
        for order in [11, 12, 13] {
            let published = client
                .post(format!("{base}/publish/one/{order}"))
                .send()
                .await
                .expect("publish");
            assert_eq!(published.status(), 204);
        }
        for (i, stream) in streams.iter_mut().take(2).enumerate() {
            while seen[i].len() < 3 {
                let chunk = stream.chunk().await.expect("read").expect("a chunk");
                let mut frames = Vec::new();
                parsers[i].push(&chunk, &mut frames);
                for frame in frames {
                    let stamp = event_stamp(&frame.data).expect("an order event");
                    assert_eq!(frame.data.len(), 300);
                    seen[i].push(stamp.order_id);
                }
            }
            assert_eq!(seen[i], [11, 12, 13], "subscriber {i}");
        }
        // The other topic's subscriber got nothing.
        let other =
            tokio::time::timeout(std::time::Duration::from_millis(200), streams[2].chunk()).await;
        assert!(other.is_err(), "an event crossed topics: {other:?}");
    }
}
