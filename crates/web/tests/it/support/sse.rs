//! The live streams from a client's side: an SSE client that parses frames
//! off the wire as the SSE spec says, and an HTTP/1.1 response read off a
//! raw socket, for clients that misbehave.

use std::time::Duration;

use bytes::BytesMut;
use futures::StreamExt;
use reqwest::StatusCode;
use reqwest::header::HeaderMap;
use serde_json::Value;

use super::{ANON, Resp, TestApp};

/// How long anything that should happen "at once" may take, generously.
pub const WAIT: Duration = Duration::from_secs(10);

impl TestApp {
    /// Opens an SSE stream on an API path (`/me/events`), signed in with
    /// `token` or not at all; `Err` carries the refusal.
    pub async fn try_sse(
        &self, path: &str, token: Option<&str>, last_event_id: Option<i64>,
    ) -> Result<Sse, Resp> {
        let mut builder = self
            .request(reqwest::Method::GET, path, token.unwrap_or(ANON))
            .header("accept", "text/event-stream");
        if let Some(id) = last_event_id {
            builder = builder.header("last-event-id", id.to_string());
        }
        Sse::open(builder).await
    }

    /// Opens an SSE stream that must be accepted.
    pub async fn sse(&self, path: &str, token: Option<&str>, last_event_id: Option<i64>) -> Sse {
        match self.try_sse(path, token, last_event_id).await {
            Ok(sse) => sse,
            Err(resp) => panic!("{path} refused: {} {}", resp.status, resp.text),
        }
    }

    /// Opens a fresh stream and waits for its `ready` frame; returns the stream
    /// and the position it announced.
    pub async fn ready_sse(&self, path: &str, token: Option<&str>) -> (Sse, i64) {
        let mut sse = self.sse(path, token, None).await;
        let ready = sse.next_event().await.expect("a ready frame");
        assert_eq!(ready.event.as_deref(), Some("ready"), "{ready:?}");
        let position = ready.id_num();
        (sse, position)
    }

    /// Everyone who watches `order` of the store `slug`, each on a fresh
    /// ready stream: its customer (`customer`'s token), the store (`staff`'s
    /// token) and a guest with its tracking link — named for messages.
    pub async fn order_watchers(
        &self, order: &Value, slug: &str, customer: &str, staff: &str,
    ) -> [(&'static str, Sse); 3] {
        let id = order["id"].as_i64().expect("an order id");
        let token = order["tracking_token"].as_str().expect("a tracking token");
        let (customer, _) = self
            .ready_sse(&format!("/orders/{id}/events"), Some(customer))
            .await;
        let (store, _) = self
            .ready_sse(&format!("/stores/{slug}/events"), Some(staff))
            .await;
        let (guest, _) = self
            .ready_sse(&format!("/track/{token}/events"), None)
            .await;
        [
            ("the customer", customer),
            ("the store", store),
            ("a guest", guest),
        ]
    }
}

/// One SSE frame as the client parsed it (fields per the SSE spec).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Frame {
    pub id: Option<String>,
    pub event: Option<String>,
    /// `data:` lines joined with `\n`.
    pub data: Option<String>,
    pub retry: Option<u64>,
    /// Comment lines (`: heartbeat`).
    pub comments: Vec<String>,
}

impl Frame {
    /// A frame that only keeps the connection warm.
    pub fn is_comment(&self) -> bool {
        self.id.is_none() && self.event.is_none() && self.data.is_none() && self.retry.is_none()
    }

    /// A frame that only sets the reconnection delay.
    pub fn is_retry_only(&self) -> bool {
        self.retry.is_some() && self.id.is_none() && self.event.is_none() && self.data.is_none()
    }

    pub fn id_num(&self) -> i64 {
        self.id
            .as_deref()
            .and_then(|id| id.parse().ok())
            .unwrap_or_else(|| panic!("a numeric id in {self:?}"))
    }

    pub fn json(&self) -> Value {
        serde_json::from_str(self.data.as_deref().unwrap_or_default())
            .unwrap_or_else(|e| panic!("JSON data in {self:?}: {e}"))
    }
}

/// Splits an SSE byte stream into frames, per the SSE spec.
#[derive(Default)]
pub struct FrameParser {
    buffer: BytesMut,
    pending: Frame,
}

impl FrameParser {
    pub fn push(&mut self, bytes: &[u8]) {
        self.buffer.extend_from_slice(bytes);
    }

    /// The next complete frame, if one has arrived.
    pub fn next_frame(&mut self) -> Option<Frame> {
        loop {
            let newline = self.buffer.iter().position(|b| *b == b'\n')?;
            let mut line = self.buffer.split_to(newline + 1);
            line.truncate(newline);
            if line.last() == Some(&b'\r') {
                line.truncate(line.len() - 1);
            }
            let line = String::from_utf8(line.to_vec()).expect("UTF-8 stream");
            if line.is_empty() {
                let frame = std::mem::take(&mut self.pending);
                if frame != Frame::default() {
                    return Some(frame);
                }
                continue;
            }
            if let Some(comment) = line.strip_prefix(':') {
                self.pending.comments.push(comment.trim().to_owned());
                continue;
            }
            let (field, value) = match line.split_once(':') {
                Some((field, value)) => (field, value.strip_prefix(' ').unwrap_or(value)),
                None => (line.as_str(), ""),
            };
            match field {
                "id" => self.pending.id = Some(value.to_owned()),
                "event" => self.pending.event = Some(value.to_owned()),
                "data" => {
                    let data = self.pending.data.get_or_insert_with(String::new);
                    if !data.is_empty() {
                        data.push('\n');
                    }
                    data.push_str(value);
                }
                "retry" => self.pending.retry = value.parse().ok(),
                other => panic!("unknown SSE field {other:?} in {line:?}"),
            }
        }
    }
}

/// An open SSE stream, parsed incrementally off the wire.
pub struct Sse {
    pub headers: HeaderMap,
    body: futures::stream::BoxStream<'static, reqwest::Result<bytes::Bytes>>,
    parser: FrameParser,
    pub ended: bool,
}

impl Sse {
    pub async fn open(builder: reqwest::RequestBuilder) -> Result<Sse, Resp> {
        let response = builder.send().await.expect("send the stream request");
        if response.status() != StatusCode::OK {
            return Err(Resp::from(response).await);
        }
        Ok(Sse {
            headers: response.headers().clone(),
            body: response.bytes_stream().boxed(),
            parser: FrameParser::default(),
            ended: false,
        })
    }

    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }

    /// The next frame of any kind, `None` at the end of the stream. Panics
    /// if nothing arrives within [`WAIT`].
    pub async fn next_frame(&mut self) -> Option<Frame> {
        self.next_frame_within(WAIT)
            .await
            .expect("a frame (or the end of the stream) arrives in time")
    }

    /// The next frame within `wait`: `Err` on timeout, `Ok(None)` at the end.
    pub async fn next_frame_within(&mut self, wait: Duration) -> Result<Option<Frame>, ()> {
        let deadline = tokio::time::Instant::now() + wait;
        loop {
            if let Some(frame) = self.parser.next_frame() {
                return Ok(Some(frame));
            }
            if self.ended {
                return Ok(None);
            }
            match tokio::time::timeout_at(deadline, self.body.next()).await {
                Err(_) => return Err(()),
                Ok(Some(Ok(chunk))) => self.parser.push(&chunk),
                // A reset connection ends the stream like a clean end does.
                Ok(Some(Err(_))) | Ok(None) => self.ended = true,
            }
        }
    }

    /// The next frame that is not a comment or a bare `retry:`.
    pub async fn next_event(&mut self) -> Option<Frame> {
        loop {
            let frame = self.next_frame().await?;
            if !frame.is_comment() && !frame.is_retry_only() {
                return Some(frame);
            }
        }
    }

    /// The next event within `wait`; `Err` on timeout.
    pub async fn next_event_within(&mut self, wait: Duration) -> Result<Option<Frame>, ()> {
        let deadline = tokio::time::Instant::now() + wait;
        loop {
            let left = deadline.saturating_duration_since(tokio::time::Instant::now());
            match self.next_frame_within(left).await? {
                Some(frame) if frame.is_comment() || frame.is_retry_only() => continue,
                other => return Ok(other),
            }
        }
    }

    /// The next `n` events (panics if the stream ends first).
    pub async fn events(&mut self, n: usize) -> Vec<Frame> {
        let mut frames = Vec::with_capacity(n);
        while frames.len() < n {
            let frame = self
                .next_event()
                .await
                .unwrap_or_else(|| panic!("stream ended after {} of {n} events", frames.len()));
            frames.push(frame);
        }
        frames
    }

    /// Waits for the end of the stream; returns the frames (other than
    /// comments) that came before it.
    pub async fn until_end(&mut self) -> Vec<Frame> {
        let mut seen = Vec::new();
        while let Some(frame) = self.next_frame().await {
            if !frame.is_comment() {
                seen.push(frame);
            }
        }
        seen
    }
}

/// An HTTP/1.1 response read off a raw socket: the head, then the chunked
/// body fed to an SSE parser.
#[derive(Default)]
pub struct RawResponse {
    pub head: Option<String>,
    buffer: BytesMut,
    pub frames: FrameParser,
    /// The terminating zero-size chunk arrived: the server ended the stream.
    pub finished: bool,
    pub body_bytes: usize,
}

impl RawResponse {
    pub fn push(&mut self, bytes: &[u8]) {
        self.buffer.extend_from_slice(bytes);
        if self.head.is_none() {
            let Some(end) = self.buffer.windows(4).position(|w| w == b"\r\n\r\n") else {
                return;
            };
            let head = self.buffer.split_to(end + 4);
            self.head = Some(String::from_utf8_lossy(&head).into_owned());
        }
        while !self.finished {
            let Some(line_end) = self.buffer.windows(2).position(|w| w == b"\r\n") else {
                return;
            };
            let line = std::str::from_utf8(&self.buffer[..line_end]).expect("chunk size line");
            let size = usize::from_str_radix(line.split(';').next().unwrap_or("").trim(), 16)
                .unwrap_or_else(|_| panic!("a chunk size, not {line:?}"));
            if self.buffer.len() < line_end + 2 + size + 2 {
                return;
            }
            let _ = self.buffer.split_to(line_end + 2);
            let data = self.buffer.split_to(size);
            let _ = self.buffer.split_to(2);
            if size == 0 {
                self.finished = true;
            } else {
                self.body_bytes += size;
                self.frames.push(&data);
            }
        }
    }
}
