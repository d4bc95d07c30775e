//! `Idempotency-Key` on every change: a POST, PUT, PATCH or DELETE that
//! carries the header (the JSON API and the pages' form posts alike) runs
//! once per key; a retry of the same request gets the first response
//! again (with `Idempotent-Replayed: true`) and changes nothing. Placing an
//! order keeps its own key on the order (`api/orders.rs`), so that route is
//! left to it. Keys belong to the session that sent them; a request
//! without a valid session is not keyed (it changes nothing anyway).

use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{HeaderValue, Method, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use ordertrack_app::ErrorCode;
use ordertrack_app::idempotency::{KeyClaim, KeyedRequest, StoredResponse};

use crate::AppState;
use crate::error::ApiError;
use crate::extract::presented_token;

/// The request header naming the key.
const IDEMPOTENCY_KEY: &str = "idempotency-key";
/// The response header marking a replayed answer.
const REPLAYED: &str = "idempotent-replayed";

/// The middleware: see the module's documentation.
pub(crate) async fn keyed(State(state): State<AppState>, request: Request, next: Next) -> Response {
    let changes = matches!(
        *request.method(),
        Method::POST | Method::PUT | Method::PATCH | Method::DELETE
    );
    // Placing an order keeps its own key; other methods there are only
    // the router's to refuse (405).
    let places_order = request.uri().path() == "/api/v1/orders";
    if !changes || places_order || !request.headers().contains_key(IDEMPOTENCY_KEY) {
        return next.run(request).await;
    }
    let (parts, body) = request.into_parts();
    let Some(token) = presented_token(&parts).filter(|token| state.app.session_of(token).is_ok())
    else {
        return next.run(Request::from_parts(parts, body)).await;
    };
    let key = match parts.headers.get(IDEMPOTENCY_KEY).map(HeaderValue::to_str) {
        Some(Ok(key)) => key.to_owned(),
        _ => {
            return ApiError::new(
                StatusCode::BAD_REQUEST,
                ErrorCode::InvalidIdempotencyKey,
                "Idempotency-Key must be visible ASCII",
            )
            .into_response();
        }
    };
    let Ok(bytes) = axum::body::to_bytes(body, crate::MAX_BODY_BYTES).await else {
        return ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            ErrorCode::BodyTooLarge,
            format!("the body must be at most {} bytes", crate::MAX_BODY_BYTES),
        )
        .into_response();
    };
    let target = parts.uri.path_and_query().map_or("", |pq| pq.as_str());
    let content_type = parts
        .headers
        .get(header::CONTENT_TYPE)
        .map_or(&b""[..], HeaderValue::as_bytes);
    let keyed = match KeyedRequest::new(
        &token,
        &key,
        &[
            parts.method.as_str().as_bytes(),
            target.as_bytes(),
            content_type,
            &bytes,
        ],
    ) {
        Ok(keyed) => keyed,
        Err(error) => return ApiError::from(error).into_response(),
    };
    match state.app.claim_key(&keyed).await {
        Ok(KeyClaim::Run) => {}
        Ok(KeyClaim::Replay(kept)) => return replay(kept),
        Err(error) => {
            let mut response = ApiError::from(error).into_response();
            if response.status() == StatusCode::CONFLICT {
                response
                    .headers_mut()
                    .insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
            }
            return response;
        }
    }
    let response = next
        .run(Request::from_parts(parts, Body::from(bytes)))
        .await;
    let (parts, body) = response.into_parts();
    // Change answers are small (an order, a redirect); the body limit only
    // guards against a handler answering with a stream.
    let Ok(bytes) = axum::body::to_bytes(body, 4 * crate::MAX_BODY_BYTES).await else {
        let _ = state.app.release_key(keyed).await;
        return ApiError::from(ordertrack_app::AppError::Internal(
            "a keyed response could not be kept".into(),
        ))
        .into_response();
    };
    let status = parts.status;
    // Nothing lasting to replay: a server error or an unknown session;
    // the next try runs again.
    let kept = if status.is_server_error() || status == StatusCode::UNAUTHORIZED {
        state.app.release_key(keyed).await
    } else {
        let text = |name| {
            parts
                .headers
                .get(name)
                .and_then(|value: &HeaderValue| value.to_str().ok())
                .map(str::to_owned)
        };
        let response = StoredResponse {
            status: status.as_u16(),
            content_type: text(header::CONTENT_TYPE),
            location: text(header::LOCATION),
            body: bytes.to_vec(),
        };
        state.app.complete_key(keyed, response).await
    };
    if let Err(error) = kept {
        tracing::warn!(%error, "an idempotency key's response was not kept");
    }
    Response::from_parts(parts, Body::from(bytes))
}

/// The kept response of a request that ran already.
fn replay(kept: StoredResponse) -> Response {
    let status = StatusCode::from_u16(kept.status).unwrap_or(StatusCode::OK);
    let mut response = (status, kept.body).into_response();
    let headers = response.headers_mut();
    headers.remove(header::CONTENT_TYPE);
    for (name, value) in [
        (header::CONTENT_TYPE, kept.content_type),
        (header::LOCATION, kept.location),
    ] {
        if let Some(value) = value.and_then(|v| HeaderValue::from_str(&v).ok()) {
            headers.insert(name, value);
        }
    }
    headers.insert(REPLAYED, HeaderValue::from_static("true"));
    response
}
