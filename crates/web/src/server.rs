//! The HTTP/1.1 server loop: one task per connection, graceful shutdown.
//!
//! Connections are served by hyper's HTTP/1 connection builder around one
//! shared router. Most of what this server holds at any time is idle live
//! streams, so per-connection state is what its memory scales with: one
//! router shared by reference (`axum::serve` with a `Router` rebuilds every
//! route per connection) and no HTTP/1-or-2 detection buffers. Browsers
//! speak HTTP/2 only over TLS, which the proxy in front terminates.
//! Each request carries its connection's peer address as axum's
//! `ConnectInfo<SocketAddr>` (sign-in limits are kept per client address).

use std::net::SocketAddr;
use std::pin::pin;
use std::time::Duration;

use axum::Router;
use axum::extract::ConnectInfo;
use hyper::server::conn::http1;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::service::TowerToHyperService;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;

/// How long in-flight requests get to finish after the shutdown signal.
/// A client that never reads its socket would otherwise hold shutdown forever.
pub const SHUTDOWN_GRACE: Duration = Duration::from_secs(5);

/// Accepts connections on `listener` until `shutdown` resolves; then calls
/// `on_shutdown` (which ends the live streams), lets in-flight requests
/// finish for at most [`SHUTDOWN_GRACE`], and returns.
pub async fn run(
    listener: TcpListener,
    router: Router,
    shutdown: impl Future<Output = ()>,
    on_shutdown: impl FnOnce(),
) {
    // Every connection holds a receiver: sending asks them to finish, and
    // `closed()` resolves once the last one has.
    let (stop, stopping) = watch::channel(());
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
        tokio::spawn(connection(stream, peer, router.clone(), stopping.clone()));
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
}

/// Serves one connection until the client leaves or shutdown asks it to
/// finish its current request.
async fn connection(
    stream: TcpStream,
    peer: SocketAddr,
    router: Router,
    mut stopping: watch::Receiver<()>,
) {
    // Live updates are small frames that must leave at once.
    let _ = stream.set_nodelay(true);
    // A layer inserting the peer, not `into_make_service_with_connect_info`,
    // which would rebuild the router for every connection.
    let service = tower::ServiceBuilder::new()
        .map_request(move |mut request: axum::extract::Request<_>| {
            request.extensions_mut().insert(ConnectInfo(peer));
            request
        })
        .service(router);
    let served = http1::Builder::new()
        .timer(TokioTimer::new())
        .serve_connection(TokioIo::new(stream), TowerToHyperService::new(service))
        .with_upgrades();
    let mut served = pin!(served);
    let result = tokio::select! {
        result = served.as_mut() => result,
        _ = stopping.changed() => {
            served.as_mut().graceful_shutdown();
            served.await
        }
    };
    if let Err(error) = result {
        tracing::debug!(%error, "connection ended with an error");
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
