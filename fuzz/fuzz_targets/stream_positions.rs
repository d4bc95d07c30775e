//! Resume positions and list queries: `Last-Event-ID` and the query string
//! of every stream (SSE and the WebSocket endpoint), the order lists'
//! cursors and filters, the kitchen's station. The first input byte picks
//! the endpoint, the second the caller; up to the first newline is the
//! `Last-Event-ID` header, the rest the query. No 5xx, no panic, API
//! refusals are problems. (An accepted stream's body is dropped unread.)

#![no_main]

use axum::body::Body;
use axum::http::{HeaderValue, Method};
use libfuzzer_sys::fuzz_target;
use ordertrack_fuzz::{Desk, query};

const ENDPOINTS: [&str; 11] = [
    "/api/v1/stores/{slug}/events",
    "/api/v1/orders/{order}/events",
    "/api/v1/me/events",
    "/api/v1/track/{tracking}/events",
    "/api/v1/ws",
    "/api/v1/orders",
    "/api/v1/stores/{slug}/kitchen",
    "/kitchen/{slug}",
    "/kitchen/{slug}/tickets",
    "/dashboard/{slug}/list",
    "/orders/list",
];

fuzz_target!(|data: &[u8]| {
    let [endpoint, caller, rest @ ..] = data else {
        return;
    };
    let (last_event_id, raw_query) = match rest.iter().position(|&b| b == b'\n') {
        Some(newline) => (Some(&rest[..newline]), &rest[newline + 1..]),
        None => (None, rest),
    };
    let desk = Desk::get();
    let path = desk.path(ENDPOINTS[usize::from(*endpoint) % ENDPOINTS.len()]);
    let uri = format!("{path}?{}", query(raw_query));
    let mut request = desk.request(Method::GET, &uri, *caller);
    if let Some(value) = last_event_id.and_then(|id| HeaderValue::from_bytes(id).ok()) {
        request = request.header("last-event-id", value);
    }
    // What no client could send (a URI `http` refuses) is not a request.
    let Ok(request) = request.body(Body::empty()) else {
        return;
    };
    let response = desk.send(request);
    desk.check(&path, &response);
});
