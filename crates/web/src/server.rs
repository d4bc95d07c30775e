//! The server loop: one task per connection, graceful shutdown.
//!
//! Connections are served by hyper's HTTP/1 connection builder around one
//! shared router — except a fresh connection whose first request is a live
//! stream, which is answered on the socket itself ([`live`]: no hyper
//! buffers held for as long as the stream lasts). Most of what this server holds at any time is idle live
//! streams, so per-connection state is what its memory scales with: one
//! router shared by reference (`axum::serve` with a `Router` rebuilds every
//! route per connection) and no HTTP/1-or-2 detection buffers. Browsers
//! speak HTTP/2 only over TLS: with a certificate ([`crate::tls`]) each
//! connection's TLS handshake picks HTTP/2 or HTTP/1.1 by ALPN, so no
//! bytes are sniffed either; without one (TLS ends at a proxy in front)
//! every connection is HTTP/1.1.
//! Each request carries its connection's peer address as axum's
//! `ConnectInfo<SocketAddr>` (sign-in limits are kept per client address).
//!
//! The connection-level limits live here too ([`crate::limits::Limits`]):
//! connections per address are counted as they are accepted; a request's
//! head must arrive within the header timeout and its body within the body
//! timeout; a connection with no request in progress closes after the idle
//! timeout. A live stream is a request in progress whose body never ends,
//! so none of these ever cut one — and an idle stream holds no timer.

use std::io;
use std::net::{IpAddr, SocketAddr};
use std::pin::{Pin, pin};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::task::{Context, Poll, ready};
use std::time::Duration;

use axum::Router;
use axum::body::{Body, Bytes, HttpBody};
use axum::extract::ConnectInfo;
use axum::http::{HeaderValue, Request, Response, StatusCode, header};
use axum::response::IntoResponse;
use hyper::body::{Frame, Incoming, SizeHint};
use hyper::server::conn::{http1, http2};
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::service::TowerToHyperService;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{Notify, watch};
use tokio::time::{Instant, Sleep};
use tower::ServiceExt;

use crate::error::ApiError;
use crate::limits::{Limiter, Slot};
use crate::tls::OverTls;

mod live;
use ordertrack_app::ErrorCode;
use tokio_rustls::TlsAcceptor;

/// How long in-flight requests get to finish after the shutdown signal.
/// A client that never reads its socket would otherwise hold shutdown forever.
pub const SHUTDOWN_GRACE: Duration = Duration::from_secs(5);

/// What the accept loop needs besides the router: the limits, and the
/// proxies exempt from the per-address connection count.
pub struct Edge {
    pub limiter: Arc<Limiter>,
    pub trusted_proxies: Arc<[IpAddr]>,
    /// Serve HTTPS with this; `None`: plain HTTP/1.1.
    pub tls: Option<TlsAcceptor>,
}

/// Accepts connections on `listener` until `shutdown` resolves; then calls
/// `on_shutdown` (which ends the live streams), lets in-flight requests
/// finish for at most [`SHUTDOWN_GRACE`], and returns.
pub async fn run(
    listener: TcpListener, router: Router, edge: Edge, shutdown: impl Future<Output = ()>,
    on_shutdown: impl FnOnce(),
) {
    // Every connection holds a receiver: sending asks them to finish, and
    // `closed()` resolves once the last one has.
    let (stop, stopping) = watch::channel(());
    let streams = live::StreamRuntime::start();
    let mut shutdown = pin!(shutdown);
    loop {
        let (stream, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(error) => {
                    wait_after_accept_error(error).await;
                    continue;
                }
            },
            () = &mut shutdown => break,
        };
        let slot = if edge.trusted_proxies.contains(&peer.ip()) {
            None
        } else {
            match edge.limiter.open_connection(peer.ip()) {
                Some(slot) => Some(slot),
                None => {
                    refuse(stream, peer);
                    continue;
                }
            }
        };
        tokio::spawn(connection(
            Watched::new(stream, slot),
            peer,
            router.clone(),
            edge.limiter.clone(),
            edge.tls.clone(),
            stopping.clone(),
            streams.handle().clone(),
        ));
    }
    drop(listener);
    on_shutdown();
    drop(stopping);
    let _ = stop.send(());
    if tokio::time::timeout(SHUTDOWN_GRACE, stop.closed())
        .await
        .is_err()
    {
        tracing::warn!("shutdown grace period over; closing the remaining connections");
    }
    // Ends the live streams still open, and the stream runtime's threads.
    drop(streams);
}

/// The answer to a connection over its address's share: written without
/// waiting (a fresh socket has room for it) and closed, so a flood of
/// refused connections costs no task and no buffers.
fn refuse(stream: TcpStream, peer: SocketAddr) {
    static REFUSED: std::sync::LazyLock<Vec<u8>> = std::sync::LazyLock::new(|| {
        let body = serde_json::json!({
            "type": "https://ordertrack.invalid/problems/too_many_connections",
            "title": "Too Many Requests",
            "status": 429,
            "detail": "this address has too many connections open; close some first",
            "code": ErrorCode::TooManyConnections.as_str(),
        })
        .to_string();
        format!(
            "HTTP/1.1 429 Too Many Requests\r\ncontent-type: application/problem+json\r\n\
             retry-after: 10\r\nconnection: close\r\ncontent-length: {}\r\n\r\n{body}",
            body.len()
        )
        .into_bytes()
    });
    tracing::debug!(%peer, "too many connections from this address; refused");
    let _ = stream.try_write(&REFUSED);
}

/// Serves one connection until the client leaves, shutdown asks it to
/// finish its current request, or it times out (see [`Activity`]).
async fn connection(
    stream: Watched, peer: SocketAddr, router: Router, limiter: Arc<Limiter>,
    tls: Option<TlsAcceptor>, stopping: watch::Receiver<()>, streams: tokio::runtime::Handle,
) {
    // Live updates are small frames that must leave at once.
    let _ = stream.inner.set_nodelay(true);
    let activity = stream.activity.clone();
    let limits = limiter.limits();
    let header_timeout = limits.header_read_timeout;
    let edge = Arc::new(EdgeService {
        router,
        activity: activity.clone(),
        peer,
        over_tls: tls.is_some(),
        body_timeout: limits.body_read_timeout,
    });
    // A service around the shared router (not
    // `into_make_service_with_connect_info`, which would rebuild the router
    // for every connection).
    let service = TowerToHyperService::new(tower::service_fn({
        let edge = edge.clone();
        move |request: Request<Incoming>| {
            let edge = edge.clone();
            async move { Ok::<_, std::convert::Infallible>(edge.respond_to_hyper(request).await) }
        }
    }));
    let Some(acceptor) = tls else {
        let mut stream = stream;
        match live::first_request(&stream.inner, header_timeout).await {
            live::FirstRequest::Gone => return,
            live::FirstRequest::Stream { request, head_len } => {
                if let Some(response) =
                    live::answer(&mut stream.inner, &edge, request, head_len).await
                {
                    // `stopping` goes with it: shutdown waits for the
                    // stream, which the hub ends.
                    live::write_on(&streams, stream, response, stopping);
                }
                return;
            }
            live::FirstRequest::Other => {}
        }
        let served = http1_builder()
            .serve_connection(TokioIo::new(stream), service)
            .with_upgrades();
        return drive(served, &activity, limits, peer, stopping).await;
    };
    // The handshake is part of the first request's head: it has the
    // header timeout.
    let stream = match tokio::time::timeout(header_timeout, acceptor.accept(stream)).await {
        Ok(Ok(stream)) => stream,
        Ok(Err(error)) => {
            tracing::debug!(%peer, %error, "TLS handshake failed");
            return;
        }
        Err(_) => {
            tracing::debug!(%peer, "TLS handshake too slow; closed");
            return;
        }
    };
    if stream.get_ref().1.alpn_protocol() == Some(b"h2") {
        let mut builder = http2::Builder::new(TokioExecutor::new());
        // WebSockets over HTTP/2 (RFC 8441).
        builder.timer(TokioTimer::new()).enable_connect_protocol();
        let served = builder.serve_connection(TokioIo::new(stream), service);
        drive(served, &activity, limits, peer, stopping).await;
    } else {
        let served = http1_builder()
            .serve_connection(TokioIo::new(stream), service)
            .with_upgrades();
        drive(served, &activity, limits, peer, stopping).await;
    }
}

/// What every request of one connection goes through: the shared router,
/// with the connection's peer (`ConnectInfo`), TLS mark and activity.
struct EdgeService {
    router: Router,
    activity: Arc<Activity>,
    peer: SocketAddr,
    over_tls: bool,
    /// How long a request body may take to arrive.
    body_timeout: Duration,
}

impl EdgeService {
    /// A request read by hyper: its body gets the body deadline, and a body
    /// that missed it turns the answer into a 408.
    async fn respond_to_hyper(&self, request: Request<Incoming>) -> Response<Body> {
        let timed_out = Arc::new(AtomicBool::new(false));
        let request = request.map(|body| {
            if body.is_end_stream() {
                Body::new(body)
            } else {
                Body::new(EdgeBody::with_deadline(
                    body,
                    self.body_timeout,
                    timed_out.clone(),
                ))
            }
        });
        self.respond(request, Some(&timed_out)).await
    }

    /// Runs `request` through the router; the response body keeps the
    /// request counted as in progress until it is done.
    async fn respond(
        &self, mut request: Request<Body>, timed_out: Option<&AtomicBool>,
    ) -> Response<Body> {
        let in_flight = self.activity.request_started();
        request.extensions_mut().insert(ConnectInfo(self.peer));
        if self.over_tls {
            request.extensions_mut().insert(OverTls);
        }
        let response = match self.router.clone().oneshot(request).await {
            Ok(response) => response,
            Err(never) => match never {},
        };
        let mut response = match timed_out {
            Some(timed_out) if timed_out.load(Ordering::Relaxed) => {
                body_timed_out(self.body_timeout)
            }
            _ => response,
        };
        if self.over_tls {
            response
                .headers_mut()
                .insert(header::STRICT_TRANSPORT_SECURITY, HSTS);
        }
        response.map(|body| Body::new(EdgeBody::in_flight(body, in_flight)))
    }
}

/// `Strict-Transport-Security` on every answer over TLS: a year, so a
/// browser that has seen the site once never tries plain HTTP again.
const HSTS: HeaderValue = HeaderValue::from_static("max-age=31536000");

/// HTTP/1.1 as every connection speaks it without TLS.
fn http1_builder() -> http1::Builder {
    let mut builder = http1::Builder::new();
    // The header timeout is ours (hyper's would also run while a
    // connection is idle between requests, which has its own timeout).
    builder
        .timer(TokioTimer::new())
        .header_read_timeout(None::<Duration>);
    builder
}

/// A connection being served, over either protocol: it runs to the end
/// as a future and can be asked to finish its current requests.
trait Served: Future<Output = Result<(), hyper::Error>> {
    fn graceful_shutdown(self: Pin<&mut Self>);
}

impl<I, S, B> Served for http1::UpgradeableConnection<I, S>
where
    S: hyper::service::HttpService<Incoming, ResBody = B>,
    S::Error: Into<axum::BoxError>,
    I: hyper::rt::Read + hyper::rt::Write + Unpin + Send + 'static,
    B: HttpBody + Send + 'static,
    B::Error: Into<axum::BoxError>,
{
    fn graceful_shutdown(self: Pin<&mut Self>) {
        http1::UpgradeableConnection::graceful_shutdown(self);
    }
}

impl<I, S, B> Served for http2::Connection<I, S, TokioExecutor>
where
    S: hyper::service::HttpService<Incoming, ResBody = B>,
    S::Error: Into<axum::BoxError>,
    I: hyper::rt::Read + hyper::rt::Write + Unpin + 'static,
    B: HttpBody + Send + 'static,
    B::Data: Send,
    B::Error: Into<axum::BoxError>,
    TokioExecutor: hyper::rt::bounds::Http2ServerConnExec<S::Future, B>,
{
    fn graceful_shutdown(self: Pin<&mut Self>) {
        http2::Connection::graceful_shutdown(self);
    }
}

/// Serves a connection until it ends, shutdown asks it to finish its
/// current requests, or it is idle for too long (see [`Activity`]).
async fn drive<C>(
    served: C, activity: &Activity, limits: &crate::limits::Limits, peer: SocketAddr,
    mut stopping: watch::Receiver<()>,
) where
    C: Served,
{
    let (header_timeout, idle_timeout) = (limits.header_read_timeout, limits.idle_timeout);
    let mut served = pin!(served);
    let result = tokio::select! {
        result = served.as_mut() => result,
        _ = stopping.changed() => {
            served.as_mut().graceful_shutdown();
            served.await
        }
        () = activity.overdue(header_timeout, idle_timeout) => {
            // Nothing is in progress: no answer is owed.
            tracing::debug!(%peer, "connection idle or its headers too slow; closed");
            return;
        }
    };
    if let Err(error) = result {
        tracing::debug!(%error, "connection ended with an error");
    }
}

/// 408 for a request whose body did not arrive in time; the connection
/// closes after it (what is left of the body is never read).
fn body_timed_out(timeout: Duration) -> Response<Body> {
    let mut response = ApiError::new(
        StatusCode::REQUEST_TIMEOUT,
        ErrorCode::BodyTimeout,
        format!(
            "the request body did not arrive within {} s",
            timeout.as_secs_f64()
        ),
    )
    .into_response();
    response
        .headers_mut()
        .insert(header::CONNECTION, HeaderValue::from_static("close"));
    response
}

/// No value: marks "no request head started" in [`Activity::head_started`].
const NOT_STARTED: u64 = u64::MAX;

/// What a connection is doing, for its timeouts: requests in progress
/// (from their head until their response body is done — forever, for a
/// live stream), when it last fell idle, and when the bytes of the next
/// request head began to arrive.
///
/// A connection with a request in progress never times out here (a slow
/// body has its own deadline, [`Deadline`]); one without is closed
/// `idle_timeout` after it fell idle, or `header_timeout` after its next
/// request began, whichever applies. A fresh connection counts as having
/// begun its first request when it was accepted.
struct Activity {
    /// Times are milliseconds since this.
    epoch: Instant,
    in_flight: AtomicUsize,
    idle_since: AtomicU64,
    head_started: AtomicU64,
    changed: Notify,
}

impl Activity {
    fn new() -> Self {
        Activity {
            epoch: Instant::now(),
            in_flight: AtomicUsize::new(0),
            idle_since: AtomicU64::new(0),
            head_started: AtomicU64::new(0),
            changed: Notify::new(),
        }
    }

    fn now_ms(&self) -> u64 {
        u64::try_from(self.epoch.elapsed().as_millis()).unwrap_or(NOT_STARTED - 1)
    }

    /// A request head was read: the connection is busy until the returned
    /// guard (held by the response body) is dropped.
    fn request_started(self: &Arc<Self>) -> InFlight {
        self.in_flight.fetch_add(1, Ordering::SeqCst);
        self.changed.notify_one();
        InFlight(self.clone())
    }

    /// Bytes arrived: if the connection was idle, its next request began.
    fn bytes_read(&self) {
        if self.in_flight.load(Ordering::SeqCst) == 0
            && self
                .head_started
                .compare_exchange(
                    NOT_STARTED,
                    self.now_ms(),
                    Ordering::SeqCst,
                    Ordering::SeqCst,
                )
                .is_ok()
        {
            self.changed.notify_one();
        }
    }

    /// When the connection is due to close, if nothing is in progress.
    fn deadline(&self, header_timeout: Duration, idle_timeout: Duration) -> Option<Instant> {
        if self.in_flight.load(Ordering::SeqCst) > 0 {
            return None;
        }
        let ms = Duration::from_millis;
        Some(match self.head_started.load(Ordering::SeqCst) {
            NOT_STARTED => self.epoch + ms(self.idle_since.load(Ordering::SeqCst)) + idle_timeout,
            started => self.epoch + ms(started) + header_timeout,
        })
    }

    /// Resolves once the connection has been idle, or sending a request
    /// head, for too long. While a request is in progress (a live stream,
    /// say) it waits for a notification only: no timer.
    async fn overdue(&self, header_timeout: Duration, idle_timeout: Duration) {
        loop {
            let changed = self.changed.notified();
            let Some(deadline) = self.deadline(header_timeout, idle_timeout) else {
                changed.await;
                continue;
            };
            tokio::select! {
                () = changed => {}
                () = tokio::time::sleep_until(deadline) => {
                    if self
                        .deadline(header_timeout, idle_timeout)
                        .is_some_and(|due| due <= Instant::now())
                    {
                        return;
                    }
                }
            }
        }
    }
}

/// A request in progress; dropping it (with its response body) may leave
/// the connection idle.
struct InFlight(Arc<Activity>);

impl Drop for InFlight {
    fn drop(&mut self) {
        let activity = &self.0;
        activity
            .idle_since
            .store(activity.now_ms(), Ordering::SeqCst);
        activity.head_started.store(NOT_STARTED, Ordering::SeqCst);
        activity.in_flight.fetch_sub(1, Ordering::SeqCst);
        activity.changed.notify_one();
    }
}

/// A body passing through the edge: a request body with its deadline
/// ([`Deadline`]), or a response body keeping its request counted as in
/// progress ([`InFlight`]) until it is done.
struct EdgeBody<B> {
    body: B,
    deadline: Option<Deadline>,
    _in_flight: Option<InFlight>,
}

/// When a request body must have arrived in full, set when its head was
/// read: however slowly the body trickles in, reading it fails then (and
/// the response becomes a 408, [`body_timed_out`]).
struct Deadline {
    at: Instant,
    /// Made at the first read: a body never read needs no timer.
    sleep: Option<Pin<Box<Sleep>>>,
    timed_out: Arc<AtomicBool>,
}

impl EdgeBody<Incoming> {
    fn with_deadline(body: Incoming, timeout: Duration, timed_out: Arc<AtomicBool>) -> Self {
        EdgeBody {
            body,
            deadline: Some(Deadline {
                at: Instant::now() + timeout,
                sleep: None,
                timed_out,
            }),
            _in_flight: None,
        }
    }
}

impl EdgeBody<Body> {
    fn in_flight(body: Body, in_flight: InFlight) -> Self {
        EdgeBody {
            body,
            deadline: None,
            _in_flight: Some(in_flight),
        }
    }
}

/// Why a request body read failed.
#[derive(Debug, thiserror::Error)]
#[error("the request body did not arrive in time")]
struct BodyTimedOut;

impl<B> HttpBody for EdgeBody<B>
where
    B: HttpBody<Data = Bytes> + Unpin,
    B::Error: Into<axum::BoxError>,
{
    type Data = Bytes;
    type Error = axum::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>, cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, axum::Error>>> {
        let this = &mut *self;
        if let Poll::Ready(frame) = Pin::new(&mut this.body).poll_frame(cx) {
            return Poll::Ready(frame.map(|frame| frame.map_err(axum::Error::new)));
        }
        let Some(deadline) = &mut this.deadline else {
            return Poll::Pending;
        };
        let at = deadline.at;
        let sleep = deadline
            .sleep
            .get_or_insert_with(|| Box::pin(tokio::time::sleep_until(at)));
        ready!(sleep.as_mut().poll(cx));
        deadline.timed_out.store(true, Ordering::Relaxed);
        Poll::Ready(Some(Err(axum::Error::new(BodyTimedOut))))
    }

    fn is_end_stream(&self) -> bool {
        self.body.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.body.size_hint()
    }
}

/// The accepted socket, noting reads for [`Activity`] and holding its
/// place in the per-address count for as long as it is open — also after
/// a WebSocket upgrade has taken it over.
struct Watched {
    inner: TcpStream,
    activity: Arc<Activity>,
    _slot: Option<Slot<IpAddr>>,
}

impl Watched {
    fn new(inner: TcpStream, slot: Option<Slot<IpAddr>>) -> Self {
        Watched {
            inner,
            activity: Arc::new(Activity::new()),
            _slot: slot,
        }
    }
}

impl AsyncRead for Watched {
    fn poll_read(
        mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let before = buf.filled().len();
        ready!(Pin::new(&mut self.inner).poll_read(cx, buf))?;
        if buf.filled().len() > before {
            self.activity.bytes_read();
        }
        Poll::Ready(Ok(()))
    }
}

impl AsyncWrite for Watched {
    fn poll_write(
        mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>, cx: &mut Context<'_>, bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

/// A client that gave up before we accepted it is nothing to wait for; any
/// other error (out of file descriptors, say) gets a pause before retrying
/// so the loop does not spin.
async fn wait_after_accept_error(error: std::io::Error) {
    use std::io::ErrorKind::{ConnectionAborted, ConnectionRefused, ConnectionReset};
    if matches!(
        error.kind(),
        ConnectionAborted | ConnectionRefused | ConnectionReset
    ) {
        return;
    }
    tracing::error!(%error, "accepting a connection failed; retrying shortly");
    tokio::time::sleep(Duration::from_millis(100)).await;
}
