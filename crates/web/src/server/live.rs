//! Live streams served on the socket itself.
//!
//! An idle live stream is most of what this server holds, and hyper keeps
//! an 8 KiB read buffer and an 8 KiB write buffer for every connection as
//! long as it is open — for a stream, forever, though after its head not
//! one more byte is read and every event is written whole. So a fresh
//! plain-HTTP connection whose first request is a live stream (`GET
//! /api/v1/…/events`, arrived whole in the first segment, no body, no
//! upgrade) is answered here instead: the request goes through the same
//! router as any other, and its response is written straight to the
//! socket — the head once, then each frame of the body as one HTTP/1.1
//! chunk in one vectored write — and the connection closes when the body
//! ends (`connection: close`). Everything else, and every later request on
//! a kept-alive connection, is hyper's.
//!
//! The request is answered on the runtime that serves requests; the
//! answer is then written from a runtime of its own ([`StreamRuntime`]).
//! Tokio has no priorities: when one change goes out to 10,000 watchers,
//! 10,000 stream tasks wake at once, and a request arriving then would
//! wait behind all of them on the same workers. On threads of their own,
//! the streams share the cores with the request workers as the operating
//! system shares them, and a cashier's status change is answered while its
//! fan-out is still being written.

use std::collections::VecDeque;
use std::io::{self, IoSlice, Write};
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::body::{Body, HttpBody};
use axum::http::{HeaderValue, Method, Request, Response, Version, header};
use bytes::{Buf, Bytes};
use ordertrack_realtime::{Delivery, DirectWriter, Refused};
use tokio::io::AsyncWriteExt;
use tokio::net::TcpStream;
use tokio::runtime::{Handle, Runtime};
use tokio::sync::{Notify, watch};

use super::{EdgeService, Watched};
use crate::streams::{DirectStream, LiveFrames, SseParts};

/// Most header lines a live stream request may carry here (more: hyper
/// answers it).
const MAX_HEADERS: usize = 48;

/// The most of a first request this looks at; a longer head is hyper's.
const PEEK_BYTES: usize = 8 * 1024;

/// What a fresh connection's first bytes are.
pub(super) enum FirstRequest {
    /// A live stream request, whole: `head_len` bytes, still unread.
    Stream {
        request: Box<Request<Body>>,
        head_len: usize,
    },
    /// Anything else (or a head not yet whole): hyper serves it.
    Other,
    /// The client closed, or sent nothing within the header timeout.
    Gone,
}

/// Looks at (without reading) a fresh connection's first bytes.
pub(super) async fn first_request(stream: &TcpStream, header_timeout: Duration) -> FirstRequest {
    let mut buf = vec![0; PEEK_BYTES];
    let peeked = match tokio::time::timeout(header_timeout, stream.peek(&mut buf)).await {
        Ok(Ok(0)) | Ok(Err(_)) | Err(_) => return FirstRequest::Gone,
        Ok(Ok(n)) => n,
    };
    match parse_stream_request(&buf[..peeked]) {
        Some((request, head_len)) => FirstRequest::Stream {
            request: Box::new(request),
            head_len,
        },
        None => FirstRequest::Other,
    }
}

/// The request, if `bytes` begin with a whole live stream request head:
/// `GET` over HTTP/1.1 of a path under `/api/v1/` ending in `/events`, with
/// no body and no `Upgrade`.
fn parse_stream_request(bytes: &[u8]) -> Option<(Request<Body>, usize)> {
    let mut headers = [httparse::EMPTY_HEADER; MAX_HEADERS];
    let mut parsed = httparse::Request::new(&mut headers);
    let httparse::Status::Complete(head_len) = parsed.parse(bytes).ok()? else {
        return None;
    };
    if parsed.method != Some("GET") || parsed.version != Some(1) {
        return None;
    }
    let target = parsed.path?;
    let path = target.split('?').next().unwrap_or(target);
    if !(path.starts_with("/api/v1/") && path.ends_with("/events")) {
        return None;
    }
    let mut request = Request::builder()
        .method(Method::GET)
        .uri(target)
        .version(Version::HTTP_11);
    for line in parsed.headers.iter() {
        let name = line.name;
        if name.eq_ignore_ascii_case("upgrade")
            || name.eq_ignore_ascii_case("content-length")
            || name.eq_ignore_ascii_case("transfer-encoding")
        {
            return None;
        }
        request = request.header(name, line.value);
    }
    // An invalid name, value or target: hyper gives the proper answer.
    let request = request.body(Body::empty()).ok()?;
    Some((request, head_len))
}

/// The threads live streams are written from, apart from the request
/// workers; dropping it ends the streams still open.
pub(super) struct StreamRuntime {
    handle: Handle,
    /// `None` when no runtime could be started: streams are then written
    /// from the request workers.
    runtime: Option<Runtime>,
}

impl StreamRuntime {
    /// Starts as many stream threads as there are cores.
    pub(super) fn start() -> Self {
        let built = tokio::runtime::Builder::new_multi_thread()
            .thread_name("ordertrack-streams")
            .enable_all()
            .build();
        match built {
            Ok(runtime) => StreamRuntime {
                handle: runtime.handle().clone(),
                runtime: Some(runtime),
            },
            Err(error) => {
                tracing::warn!(%error, "no stream threads; streams share the request workers");
                StreamRuntime {
                    handle: Handle::current(),
                    runtime: None,
                }
            }
        }
    }

    /// Where stream tasks are spawned.
    pub(super) fn handle(&self) -> &Handle {
        &self.handle
    }
}

impl Drop for StreamRuntime {
    fn drop(&mut self) {
        // Dropped on an async worker: a blocking shutdown would panic.
        if let Some(runtime) = self.runtime.take() {
            runtime.shutdown_background();
        }
    }
}

/// Answers the live stream request [`first_request`] found: reads its head
/// (peeked at so far) and runs it through the router. `None`: the client
/// left.
pub(super) async fn answer(
    stream: &mut TcpStream, edge: &EdgeService, request: Box<Request<Body>>, head_len: usize,
) -> Option<Response<Body>> {
    skip_head(stream, head_len).await.ok()?;
    Some(edge.respond(*request, None).await)
}

/// Writes `response` to the connection from the stream runtime; the task
/// holds the connection's place in the per-address count and `stopping`
/// (shutdown waits for it) until the stream ends. An SSE stream is written
/// directly (see [`write_direct`]), anything else as its body yields.
pub(super) fn write_on(
    streams: &Handle, stream: Watched, mut response: Response<Body>, stopping: watch::Receiver<()>,
) {
    let Watched { inner, _slot, .. } = stream;
    // Moved to the stream runtime's own reactor, so its readiness is
    // watched there too.
    let Ok(socket) = inner.into_std() else {
        return;
    };
    let direct = response
        .extensions_mut()
        .remove::<DirectStream>()
        .and_then(|direct| direct.take());
    streams.spawn(async move {
        let _held = (_slot, stopping);
        let Ok(mut socket) = TcpStream::from_std(socket) else {
            return;
        };
        match direct {
            Some(sse) => write_direct(socket, response, sse.into_parts()).await,
            None => write_response(&mut socket, response).await,
        }
    });
}

/// Consumes the request head [`first_request`] peeked at.
async fn skip_head(stream: &mut TcpStream, head_len: usize) -> io::Result<()> {
    use tokio::io::AsyncReadExt;
    let mut head = vec![0; head_len];
    stream.read_exact(&mut head).await.map(drop)
}

/// The response's head as written on a connection that is not reused:
/// its length if the body's is known, else chunked.
fn response_head(parts: &axum::http::response::Parts, length: Option<u64>) -> Vec<u8> {
    let mut head = Vec::with_capacity(256);
    head.extend_from_slice(b"HTTP/1.1 ");
    head.extend_from_slice(parts.status.as_str().as_bytes());
    head.push(b' ');
    head.extend_from_slice(
        parts
            .status
            .canonical_reason()
            .unwrap_or("Unknown")
            .as_bytes(),
    );
    head.extend_from_slice(b"\r\n");
    for (name, value) in &parts.headers {
        if [
            header::CONNECTION,
            header::CONTENT_LENGTH,
            header::TRANSFER_ENCODING,
        ]
        .contains(name)
        {
            continue;
        }
        push_header(&mut head, name.as_str(), value);
    }
    match length {
        Some(length) => push_header(&mut head, "content-length", &HeaderValue::from(length)),
        None => push_header(
            &mut head,
            "transfer-encoding",
            &HeaderValue::from_static("chunked"),
        ),
    }
    push_header(&mut head, "connection", &HeaderValue::from_static("close"));
    head.extend_from_slice(b"\r\n");
    head
}

/// Writes `response` to the socket: its head, then its body (as chunks
/// unless its length is known), until the body ends, fails, or the client
/// leaves. The connection is not reused.
async fn write_response(stream: &mut TcpStream, response: Response<Body>) {
    let (parts, mut body) = response.into_parts();
    let length = body.size_hint().exact();
    let chunked = length.is_none();
    let head = response_head(&parts, length);
    // Nothing of the head is kept while the stream lasts.
    drop(parts);
    if stream.write_all(&head).await.is_err() {
        return;
    }
    drop(head);

    let (reader, mut writer) = stream.split();
    // One wait for the client to leave, for the whole stream: made afresh
    // for every event, it would join and leave the socket's waiters each
    // time.
    let gone = client_gone(reader.as_ref());
    tokio::pin!(gone);
    loop {
        let frame = tokio::select! {
            biased;
            frame = std::future::poll_fn(|cx| Pin::new(&mut body).poll_frame(cx)) => frame,
            () = &mut gone => return,
        };
        let data = match frame {
            Some(Ok(frame)) => match frame.into_data() {
                Ok(data) => data,
                // Trailers: none are sent over HTTP/1.1 here.
                Err(_) => continue,
            },
            // A failed body: cut the stream short, as hyper would.
            Some(Err(_)) => return,
            None => break,
        };
        if data.is_empty() {
            continue;
        }
        let written = if chunked {
            write_chunk(&mut writer, &data).await
        } else {
            writer.write_all(&data).await
        };
        if written.is_err() {
            return;
        }
    }
    if chunked {
        let _ = writer.write_all(LAST_CHUNK).await;
    }
    let _ = writer.shutdown().await;
}

/// The chunk that ends a chunked body.
const LAST_CHUNK: &[u8] = b"0\r\n\r\n";

/// What ends every chunk.
const CHUNK_END: &[u8] = b"\r\n";

/// Chunk pieces a stream may have waiting (three per frame: size line,
/// frame, line end) before its watcher counts as too slow, as many frames
/// as a watcher's queue holds.
const MOST_WAITING: usize = 3 * ordertrack_realtime::QUEUE_CAPACITY;

/// Most pieces handed to one vectored write.
const MOST_SLICES: usize = 64;

/// Writes a live SSE stream with its deliveries written by whoever has
/// them first: the hub's fan-out thread writes a frame straight to the
/// socket when nothing is waiting and the socket takes it whole, without
/// waking this task; what the socket cannot take at once waits, in order,
/// for this task to write when the socket is writable again. So a change
/// going out to 10,000 watchers costs 10,000 writes from one thread, not
/// 10,000 task wake-ups and queue hops. The head and the first frames wait
/// first, so nothing live overtakes them.
async fn write_direct(socket: TcpStream, response: Response<Body>, parts: SseParts) {
    let (head, body) = response.into_parts();
    drop(body);
    let SseParts {
        first,
        mut subscription,
        frames,
        held,
    } = parts;
    let _held = held;
    let mut waiting = Waiting::default();
    waiting.0.push_back(Bytes::from(response_head(&head, None)));
    drop(head);
    for frame in first {
        waiting.push_chunk(&frame, chunk_size(&mut [0; 20], frame.len()));
    }
    let socket = Arc::new(socket);
    let writer = Arc::new(DirectSse {
        socket: Arc::clone(&socket),
        outgoing: Mutex::new(Outgoing {
            frames,
            most_waiting: waiting.0.len() + MOST_WAITING,
            waiting,
            failed: false,
        }),
        more: Notify::new(),
    });
    subscription.write_directly(writer.clone());

    let gone = client_gone(&socket);
    tokio::pin!(gone);
    loop {
        if !writer.flush(gone.as_mut()).await {
            return;
        }
        tokio::select! {
            biased;
            () = &mut gone => return,
            () = writer.more.notified() => {}
            delivery = subscription.recv() => match delivery {
                // Only when the hub was gone before it could take the
                // writer (shutting down): hand on what it had queued.
                Some(delivery) => {
                    if writer.deliver(&delivery).is_err() {
                        return;
                    }
                }
                // The hub ended the stream: what it handed out is written, then the end.
                None => break,
            },
        }
    }
    writer
        .lock()
        .waiting
        .0
        .push_back(Bytes::from_static(LAST_CHUNK));
    writer.flush(gone.as_mut()).await;
}

/// A live SSE stream's socket and what is waiting to be written to it.
struct DirectSse {
    socket: Arc<TcpStream>,
    outgoing: Mutex<Outgoing>,
    /// Told when something starts waiting, or the socket failed.
    more: Notify,
}

struct Outgoing {
    frames: LiveFrames,
    waiting: Waiting,
    /// Most pieces that may wait: [`MOST_WAITING`] beyond what the stream
    /// started with (a replay may be long), so a watcher falls behind as
    /// it did with a queue.
    most_waiting: usize,
    /// The socket failed: the client is gone.
    failed: bool,
}

/// Chunk pieces not yet written, in order; the first may be partly
/// written already (advanced past what was).
#[derive(Default)]
struct Waiting(VecDeque<Bytes>);

impl Waiting {
    fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// Queues `frame` as one chunk whose size line is `size`.
    fn push_chunk(&mut self, frame: &Bytes, size: &[u8]) {
        self.0.push_back(Bytes::copy_from_slice(size));
        self.0.push_back(frame.clone());
        self.0.push_back(Bytes::from_static(CHUNK_END));
    }

    /// The first pieces, for one vectored write.
    fn slices(&self) -> Vec<IoSlice<'_>> {
        self.0
            .iter()
            .take(MOST_SLICES)
            .map(|piece| IoSlice::new(piece))
            .collect()
    }

    /// Drops the first `written` bytes.
    fn written(&mut self, mut written: usize) {
        while written > 0 {
            let Some(front) = self.0.front_mut() else {
                return;
            };
            if front.len() > written {
                front.advance(written);
                return;
            }
            written -= front.len();
            self.0.pop_front();
        }
    }
}

impl DirectSse {
    fn lock(&self) -> std::sync::MutexGuard<'_, Outgoing> {
        // Every change to `Outgoing` leaves it whole.
        self.outgoing
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Writes what is waiting, waiting for the socket as it must. `false`:
    /// the client is gone.
    async fn flush(&self, mut gone: Pin<&mut impl Future<Output = ()>>) -> bool {
        loop {
            {
                let mut outgoing = self.lock();
                if outgoing.failed {
                    return false;
                }
                if outgoing.waiting.is_empty() {
                    return true;
                }
                let slices = outgoing.waiting.slices();
                let result = self.socket.try_write_vectored(&slices);
                drop(slices);
                match result {
                    Ok(0) => {
                        outgoing.failed = true;
                        return false;
                    }
                    Ok(written) => {
                        outgoing.waiting.written(written);
                        continue;
                    }
                    Err(error) if error.kind() == io::ErrorKind::WouldBlock => {}
                    Err(_) => {
                        outgoing.failed = true;
                        return false;
                    }
                }
            }
            tokio::select! {
                biased;
                () = &mut gone => return false,
                ready = self.socket.writable() => if ready.is_err() {
                    return false;
                },
            }
        }
    }
}

impl DirectWriter for DirectSse {
    fn deliver(&self, delivery: &Delivery) -> Result<(), Refused> {
        let mut outgoing = self.lock();
        if outgoing.failed {
            return Err(Refused::Gone);
        }
        if matches!(delivery, Delivery::Heartbeat) && !outgoing.waiting.is_empty() {
            // Busy writing anyway: the connection is warm.
            return Ok(());
        }
        let Some(frame) = outgoing.frames.frame(delivery) else {
            return Ok(());
        };
        let mut size_line = [0; 20];
        let size = chunk_size(&mut size_line, frame.len());
        let mut written = 0;
        if outgoing.waiting.is_empty() {
            let pieces = [
                IoSlice::new(size),
                IoSlice::new(&frame),
                IoSlice::new(CHUNK_END),
            ];
            match self.socket.try_write_vectored(&pieces) {
                Ok(n) if n == size.len() + frame.len() + CHUNK_END.len() => return Ok(()),
                Ok(n) => written = n,
                Err(error) if error.kind() == io::ErrorKind::WouldBlock => {}
                Err(_) => {
                    outgoing.failed = true;
                    drop(outgoing);
                    self.more.notify_one();
                    return Err(Refused::Gone);
                }
            }
        } else if outgoing.waiting.0.len() >= outgoing.most_waiting {
            return Err(Refused::TooSlow);
        }
        outgoing.waiting.push_chunk(&frame, size);
        outgoing.waiting.written(written);
        drop(outgoing);
        self.more.notify_one();
        Ok(())
    }
}

/// The size line of a chunk of `len` bytes, written into `buf`.
fn chunk_size(buf: &mut [u8; 20], len: usize) -> &[u8] {
    let mut cursor = io::Cursor::new(&mut buf[..]);
    // 16 hex digits and the line end fit in 20 bytes.
    let _ = write!(cursor, "{len:x}\r\n");
    let end = usize::try_from(cursor.position()).unwrap_or(0);
    &buf[..end]
}

fn push_header(head: &mut Vec<u8>, name: &str, value: &HeaderValue) {
    head.extend_from_slice(name.as_bytes());
    head.extend_from_slice(b": ");
    head.extend_from_slice(value.as_bytes());
    head.extend_from_slice(b"\r\n");
}

/// Resolves when the client closes its side (or resets). Bytes it sends
/// meanwhile are read and dropped: nothing more is expected on a stream.
async fn client_gone(socket: &TcpStream) {
    let mut sink = [0u8; 64];
    loop {
        if socket.readable().await.is_err() {
            return;
        }
        match socket.try_read(&mut sink) {
            Ok(0) => return,
            Ok(_) => {}
            Err(error) if error.kind() == io::ErrorKind::WouldBlock => {}
            Err(_) => return,
        }
    }
}

/// One chunk: its size line, the data and the closing line in one
/// vectored write (usually one system call).
async fn write_chunk(writer: &mut tokio::net::tcp::WriteHalf<'_>, data: &Bytes) -> io::Result<()> {
    let mut size_line = [0; 20];
    let mut parts = [
        IoSlice::new(chunk_size(&mut size_line, data.len())),
        IoSlice::new(data),
        IoSlice::new(CHUNK_END),
    ];
    let mut parts: &mut [IoSlice<'_>] = &mut parts;
    while !parts.is_empty() {
        let n = writer.write_vectored(parts).await?;
        if n == 0 {
            return Err(io::ErrorKind::WriteZero.into());
        }
        IoSlice::advance_slices(&mut parts, n);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(head: &str) -> Option<(Request<Body>, usize)> {
        parse_stream_request(head.as_bytes())
    }

    #[test]
    fn chunks_wait_whole_and_in_order_and_leave_as_they_are_written() {
        let mut size_line = [0; 20];
        assert_eq!(chunk_size(&mut size_line, 0x1a2), b"1a2\r\n");
        assert_eq!(chunk_size(&mut size_line, usize::MAX).len(), 18);

        let mut waiting = Waiting::default();
        for frame in ["first\n\n", "second event\n\n"] {
            let frame = Bytes::from_static(frame.as_bytes());
            waiting.push_chunk(&frame, chunk_size(&mut size_line, frame.len()));
        }
        let wire = b"7\r\nfirst\n\n\r\ne\r\nsecond event\n\n\r\n";
        let joined = |waiting: &Waiting| -> Vec<u8> {
            waiting
                .slices()
                .iter()
                .flat_map(|slice| slice.iter().copied())
                .collect()
        };
        assert_eq!(joined(&waiting), wire);
        // A write that stops inside a piece, one that ends on a piece's
        // end, then the rest.
        for (written, total) in [(4, 4), (8, 12), (wire.len() - 12, wire.len())] {
            waiting.written(written);
            assert_eq!(joined(&waiting), &wire[total..]);
        }
        assert!(waiting.is_empty());
        waiting.written(3);
        assert!(waiting.is_empty());
    }

    #[test]
    fn only_a_whole_get_of_a_live_stream_is_taken() {
        let (request, len) = parse(
            "GET /api/v1/stores/demo/events?station=grill HTTP/1.1\r\nHost: x\r\n\
             Authorization: Bearer t\r\nLast-Event-ID: 7\r\n\r\n",
        )
        .expect("a live stream request");
        assert_eq!(request.uri().path(), "/api/v1/stores/demo/events");
        assert_eq!(request.uri().query(), Some("station=grill"));
        assert_eq!(request.headers()["authorization"], "Bearer t");
        assert_eq!(request.headers()["last-event-id"], "7");
        assert_eq!(len, 109);

        for other in [
            // Not whole yet.
            "GET /api/v1/me/events HTTP/1.1\r\nHost: x\r\n",
            // Not a stream, not GET, not HTTP/1.1.
            "GET /api/v1/orders/1 HTTP/1.1\r\nHost: x\r\n\r\n",
            "POST /api/v1/me/events HTTP/1.1\r\nHost: x\r\n\r\n",
            "GET /api/v1/me/events HTTP/1.0\r\n\r\n",
            // A WebSocket, or a body.
            "GET /api/v1/me/events HTTP/1.1\r\nUpgrade: websocket\r\nConnection: upgrade\r\n\r\n",
            "GET /api/v1/me/events HTTP/1.1\r\nContent-Length: 3\r\n\r\nabc",
            // Pages are hyper's too.
            "GET /track/abc/events HTTP/1.1\r\n\r\n",
            // Garbage.
            "\u{0}\u{1}GET",
        ] {
            assert!(parse(other).is_none(), "{other:?}");
        }
    }
}
