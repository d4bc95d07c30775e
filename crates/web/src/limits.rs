//! Abuse limits at the HTTP edge: how long a client may take to send a
//! request, how many connections and live streams one client may hold, and
//! how fast one session may write.
//!
//! The timeouts are enforced per connection in [`crate::server`]; the
//! counts here. Sign-in and registration limits are the use cases' own
//! (`ordertrack_app::throttle`), since they are about accounts, not HTTP.
//! Live streams are what the server exists to hold open, so no timeout
//! here ever ends one: they are limited by count instead.

use std::collections::HashMap;
use std::hash::Hash;
use std::net::IpAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::extract::{Request, State};
use axum::http::Method;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use ordertrack_app::{ErrorCode, FixedWindows, SessionRef};

use crate::AppState;
use crate::error::ApiError;
use crate::extract::presented_token;

/// Every limit of the HTTP edge, with the defaults the binary's flags
/// show. A count of 0 means no limit.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Limits {
    /// How long a client has, from connecting or from starting a request,
    /// to send the request's line and headers.
    pub header_read_timeout: Duration,
    /// How long a client has, once its headers are in, to send the whole
    /// body (however it trickles in).
    pub body_read_timeout: Duration,
    /// How long a connection with no request in progress stays open
    /// (keep-alive). A live stream is a request in progress.
    pub idle_timeout: Duration,
    /// Connections open at once from one address (counted when accepted;
    /// the trusted proxies are exempt, since every client behind them
    /// shares their address).
    pub connections_per_ip: usize,
    /// Live streams (SSE and WebSocket together) open at once per user.
    pub streams_per_user: usize,
    /// Live streams open at once per client address (signed in or not).
    pub streams_per_ip: usize,
    /// Writes (POST, PUT, PATCH, DELETE) per session per minute.
    pub writes_per_token: u32,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            header_read_timeout: Duration::from_secs(30),
            body_read_timeout: Duration::from_secs(30),
            idle_timeout: Duration::from_secs(60),
            connections_per_ip: 1_024,
            streams_per_user: 400,
            streams_per_ip: 1_000,
            writes_per_token: 3_000,
        }
    }
}

/// The window writes are counted in.
const WRITE_WINDOW: Duration = Duration::from_secs(60);

/// `Retry-After` for a refused stream: streams end when their clients
/// leave, so there is no time at which one surely frees; this is a pause
/// long enough not to be hammered.
const STREAM_RETRY_AFTER: Duration = Duration::from_secs(10);

/// The limits of one running server and what they count.
pub struct Limiter {
    limits: Limits,
    connections: OpenCounts<IpAddr>,
    streams_per_user: OpenCounts<i64>,
    streams_per_ip: OpenCounts<IpAddr>,
    writes: FixedWindows<SessionRef>,
}

impl Limiter {
    /// Nothing counted yet.
    pub fn new(limits: Limits) -> Self {
        Limiter {
            limits,
            connections: OpenCounts::default(),
            streams_per_user: OpenCounts::default(),
            streams_per_ip: OpenCounts::default(),
            writes: FixedWindows::new(WRITE_WINDOW),
        }
    }

    /// The limits in force.
    pub fn limits(&self) -> &Limits {
        &self.limits
    }

    /// A place for one more connection from `ip`, or `None` when it has
    /// its share open.
    pub(crate) fn open_connection(&self, ip: IpAddr) -> Option<Slot<IpAddr>> {
        self.connections.open(ip, self.limits.connections_per_ip)
    }

    /// A place for one more live stream of `user` (if signed in) from
    /// `ip`; held for as long as the stream is open. 429 when either has
    /// its share open.
    pub(crate) fn open_stream(
        &self, user: Option<i64>, ip: IpAddr,
    ) -> Result<StreamPermit, ApiError> {
        let user = match user {
            Some(user) => Some(
                self.streams_per_user
                    .open(user, self.limits.streams_per_user)
                    .ok_or_else(|| {
                        too_many_streams(self.limits.streams_per_user, "this account")
                    })?,
            ),
            None => None,
        };
        let ip = self
            .streams_per_ip
            .open(ip, self.limits.streams_per_ip)
            .ok_or_else(|| too_many_streams(self.limits.streams_per_ip, "this address"))?;
        Ok(StreamPermit {
            _user: user,
            _ip: ip,
        })
    }

    /// Counts one write of `session`; 429 when it has made its share this
    /// minute.
    fn count_write(&self, session: SessionRef) -> Result<(), ApiError> {
        let limit = self.limits.writes_per_token;
        if limit == 0 {
            return Ok(());
        }
        self.writes
            .count(&[(session, limit)])
            .map_err(|retry_after| {
                ApiError::too_many(
                    ErrorCode::TooManyWrites,
                    format!(
                        "at most {limit} changes a minute per session; try again in {} s",
                        retry_after.as_secs()
                    ),
                    retry_after,
                )
            })
    }
}

fn too_many_streams(limit: usize, whose: &str) -> ApiError {
    ApiError::too_many(
        ErrorCode::TooManyStreams,
        format!("{whose} has {limit} live streams open already; close one first"),
        STREAM_RETRY_AFTER,
    )
}

/// A live stream's places in the per-user and per-address counts, given
/// back when it is dropped (with the stream).
pub(crate) struct StreamPermit {
    _user: Option<Slot<i64>>,
    _ip: Slot<IpAddr>,
}

/// How many things are open per key (shared with the slots that give
/// their count back).
type Counts<K> = Arc<Mutex<HashMap<K, usize>>>;

/// How many things are open per key.
struct OpenCounts<K> {
    counts: Counts<K>,
}

impl<K> Default for OpenCounts<K> {
    fn default() -> Self {
        OpenCounts {
            counts: Arc::default(),
        }
    }
}

impl<K: Hash + Eq + Clone> OpenCounts<K> {
    /// Counts one more for `key` unless it has `limit` open already
    /// (0: no limit, and nothing is counted).
    fn open(&self, key: K, limit: usize) -> Option<Slot<K>> {
        if limit == 0 {
            return Some(Slot { held: None });
        }
        // A poisoned lock only means another holder panicked mid-update;
        // the counts are still counts.
        let mut counts = self.counts.lock().unwrap_or_else(|e| e.into_inner());
        let open = counts.entry(key.clone()).or_insert(0);
        if *open >= limit {
            return None;
        }
        *open += 1;
        Some(Slot {
            held: Some((self.counts.clone(), key)),
        })
    }
}

/// One counted open thing; dropping it gives the count back.
pub(crate) struct Slot<K: Hash + Eq> {
    held: Option<(Counts<K>, K)>,
}

impl<K: Hash + Eq> Drop for Slot<K> {
    fn drop(&mut self) {
        let Some((counts, key)) = self.held.take() else {
            return;
        };
        let mut counts = counts.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(open) = counts.get_mut(&key) {
            *open = open.saturating_sub(1);
            // Keys with nothing open go, so the map holds only live clients.
            if *open == 0 {
                counts.remove(&key);
            }
        }
    }
}

/// Middleware: counts every write that presents a valid session token
/// against that session's write rate. Requests without one are left to
/// the handler (which refuses them, or is a sign-in).
pub(crate) async fn write_rate(
    State(state): State<AppState>, request: Request, next: Next,
) -> Response {
    if matches!(
        *request.method(),
        Method::GET | Method::HEAD | Method::OPTIONS
    ) {
        return next.run(request).await;
    }
    let (parts, body) = request.into_parts();
    let session = presented_token(&parts).and_then(|token| state.app.session_of(&token).ok());
    if let Some(session) = session
        && let Err(refused) = state.limits.count_write(session)
    {
        return refused.into_response();
    }
    next.run(Request::from_parts(parts, body)).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_slot_is_given_back_when_dropped() {
        let counts = OpenCounts::default();
        let first = counts.open("a", 2).expect("room for one");
        let second = counts.open("a", 2).expect("room for two");
        assert!(counts.open("a", 2).is_none());
        assert!(counts.open("b", 2).is_some(), "other keys have their own");
        drop(first);
        let third = counts.open("a", 2).expect("room again");
        drop((second, third));
        assert!(
            counts.counts.lock().unwrap().is_empty(),
            "nothing left over"
        );
    }

    #[test]
    fn a_limit_of_zero_counts_nothing() {
        let counts = OpenCounts::default();
        let slots: Vec<_> = (0..10).map(|_| counts.open("a", 0)).collect();
        assert!(slots.iter().all(Option::is_some));
        assert!(counts.counts.lock().unwrap().is_empty());
    }
}
