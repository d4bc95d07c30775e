//! `/push/…`: Web Push opt-in (docs/push.md). A browser subscribes with the
//! server's VAPID public key and hands its subscription over here — for
//! the signed-in customer's account, or with a `tracking_token` for that
//! one order — and removes it to opt out.

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use ordertrack_app::push::{Subscriber, SubscriptionInput};
use ordertrack_app::{AppError, Caller};
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;
use utoipa::ToSchema;

use crate::AppState;
use crate::error::ApiError;
use crate::extract::{ApiJson, MaybeSession};
use crate::routes::Routes;

pub fn routes() -> Routes {
    Routes::new()
        .get("/push/public-key", public_key)
        .post("/push/subscriptions", subscribe)
        .delete("/push/subscriptions", unsubscribe)
}

#[derive(utoipa::OpenApi)]
#[openapi(paths(public_key, subscribe, unsubscribe))]
pub(crate) struct Doc;

#[derive(Serialize, ToSchema)]
struct PublicKeyBody {
    /// The VAPID public key, base64url of the uncompressed P-256 point:
    /// `PushManager.subscribe`'s `applicationServerKey`.
    public_key: String,
}

/// The keys of a browser's subscription (`PushSubscription.toJSON().keys`).
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
struct Keys {
    p256dh: String,
    auth: String,
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
struct SubscribeRequest {
    endpoint: String,
    keys: Keys,
    /// Subscribe for the order this tracking link names (no sign-in);
    /// without it, for the signed-in customer's orders.
    tracking_token: Option<String>,
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
struct UnsubscribeRequest {
    endpoint: String,
    tracking_token: Option<String>,
}

#[derive(Serialize, ToSchema)]
struct SubscriptionBody {
    endpoint: String,
    /// `account` (every order of the customer) or `order` (one order,
    /// through its tracking link).
    scope: &'static str,
    #[serde(with = "time::serde::rfc3339")]
    created_at: OffsetDateTime,
}

#[utoipa::path(
    get,
    path = "/push/public-key",
    tag = "push",
    responses((status = 200, description = "The server's VAPID public key", body = PublicKeyBody)),
    security(())
)]
async fn public_key(State(state): State<AppState>) -> Result<Json<PublicKeyBody>, ApiError> {
    Ok(Json(PublicKeyBody {
        public_key: state.app.push_public_key()?,
    }))
}

/// The signed-in caller, or 401.
async fn caller(state: &AppState, session: MaybeSession) -> Result<Caller, ApiError> {
    let session = session.0.ok_or(AppError::Unauthenticated)?;
    Ok(state.app.session_caller(&session).await?)
}

#[utoipa::path(
    post,
    path = "/push/subscriptions",
    tag = "push",
    request_body = SubscribeRequest,
    responses((status = 201, description = "Subscribed: the browser gets this account's (or this order's) notifications", body = SubscriptionBody)),
    security((), ("bearer" = []), ("session_cookie" = []))
)]
async fn subscribe(
    State(state): State<AppState>, session: MaybeSession, ApiJson(body): ApiJson<SubscribeRequest>,
) -> Result<(StatusCode, Json<SubscriptionBody>), ApiError> {
    let input = SubscriptionInput {
        endpoint: body.endpoint,
        p256dh: body.keys.p256dh,
        auth: body.keys.auth,
    };
    let saved = match body.tracking_token.as_deref() {
        Some(token) => {
            state
                .app
                .subscribe_push(Subscriber::Tracking(token), input)
                .await?
        }
        None => {
            let caller = caller(&state, session).await?;
            state
                .app
                .subscribe_push(Subscriber::Account(&caller), input)
                .await?
        }
    };
    Ok((
        StatusCode::CREATED,
        Json(SubscriptionBody {
            endpoint: saved.endpoint,
            scope: match saved.owner {
                ordertrack_store::PushOwner::User(_) => "account",
                ordertrack_store::PushOwner::Order(_) => "order",
            },
            created_at: saved.created_at,
        }),
    ))
}

#[utoipa::path(
    delete,
    path = "/push/subscriptions",
    tag = "push",
    request_body = UnsubscribeRequest,
    responses((status = 204, description = "Unsubscribed (also when there was nothing to remove)")),
    security((), ("bearer" = []), ("session_cookie" = []))
)]
async fn unsubscribe(
    State(state): State<AppState>, session: MaybeSession,
    ApiJson(body): ApiJson<UnsubscribeRequest>,
) -> Result<StatusCode, ApiError> {
    match body.tracking_token.as_deref() {
        Some(token) => {
            state
                .app
                .unsubscribe_push(Subscriber::Tracking(token), &body.endpoint)
                .await?
        }
        None => {
            let caller = caller(&state, session).await?;
            state
                .app
                .unsubscribe_push(Subscriber::Account(&caller), &body.endpoint)
                .await?
        }
    };
    Ok(StatusCode::NO_CONTENT)
}
