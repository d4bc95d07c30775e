//! `/stores/{slug}/webhooks`: a store's webhook endpoints and their delivery
//! log, for its owners (docs/webhooks.md). The secret is shown when an
//! endpoint is added and when it is rotated, never in the list.

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use ordertrack_app::webhooks::{WebhookInput, event_type_of_stored};
use ordertrack_domain::{DeliveryId, StoreId, WebhookId};
use ordertrack_store::{Webhook, WebhookDelivery};
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;
use utoipa::{IntoParams, ToSchema};

use crate::AppState;
use crate::error::ApiError;
use crate::extract::{ApiJson, ApiPath, ApiQuery, AuthCaller};
use crate::routes::Routes;

pub fn routes() -> Routes {
    Routes::new()
        .get("/stores/{slug}/webhooks", list)
        .post("/stores/{slug}/webhooks", create)
        .delete("/stores/{slug}/webhooks/{id}", delete)
        .post("/stores/{slug}/webhooks/{id}/rotate-secret", rotate_secret)
        .get("/stores/{slug}/webhooks/{id}/deliveries", deliveries)
        .post(
            "/stores/{slug}/webhooks/{id}/deliveries/{delivery_id}/retry",
            retry,
        )
}

/// This module's operations in the OpenAPI document.
#[derive(utoipa::OpenApi)]
#[openapi(paths(list, create, delete, rotate_secret, deliveries, retry))]
pub(crate) struct Doc;

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
struct WebhookRequest {
    url: String,
    events: Vec<String>,
    enabled: Option<bool>,
}

/// An endpoint as its owners see it.
#[derive(Serialize, ToSchema)]
struct WebhookBody {
    id: WebhookId,
    store_id: StoreId,
    url: String,
    events: Vec<String>,
    enabled: bool,
    /// Why delivery turned it off (it answered 410 Gone), if it did.
    disabled_reason: Option<String>,
    /// Until when the secret before the last rotation still signs.
    #[serde(with = "time::serde::rfc3339::option")]
    previous_secret_expires_at: Option<OffsetDateTime>,
    #[serde(with = "time::serde::rfc3339")]
    created_at: OffsetDateTime,
}

impl From<&Webhook> for WebhookBody {
    fn from(webhook: &Webhook) -> Self {
        WebhookBody {
            id: webhook.id,
            store_id: webhook.store_id,
            url: webhook.url.clone(),
            events: webhook.events.clone(),
            enabled: webhook.enabled,
            disabled_reason: webhook.disabled_reason.clone(),
            previous_secret_expires_at: webhook
                .previous_secret_until
                .filter(|until| *until > ordertrack_app::now()),
            created_at: webhook.created_at,
        }
    }
}

/// An endpoint with its signing secret: shown when added or rotated.
#[derive(Serialize, ToSchema)]
struct WebhookWithSecretBody {
    #[serde(flatten)]
    webhook: WebhookBody,
    secret: String,
}

impl From<&Webhook> for WebhookWithSecretBody {
    fn from(webhook: &Webhook) -> Self {
        WebhookWithSecretBody {
            webhook: WebhookBody::from(webhook),
            secret: webhook.secret.clone(),
        }
    }
}

/// One event's delivery to the endpoint, with its last attempt.
#[derive(Serialize, ToSchema)]
struct DeliveryBody {
    id: DeliveryId,
    /// The event's position (its `webhook-id`).
    event_id: i64,
    event_type: &'static str,
    /// `pending`, `delivered` or `failed` (given up).
    state: &'static str,
    /// Attempts made.
    attempt: i64,
    /// The last attempt's HTTP status, if it got an answer.
    http_status: Option<i64>,
    duration_ms: Option<i64>,
    /// Why the last attempt got no answer (timeout, refused connection).
    error: Option<String>,
    #[serde(with = "time::serde::rfc3339::option")]
    next_retry_at: Option<OffsetDateTime>,
    #[serde(with = "time::serde::rfc3339::option")]
    last_attempt_at: Option<OffsetDateTime>,
    #[serde(with = "time::serde::rfc3339")]
    created_at: OffsetDateTime,
}

impl From<&WebhookDelivery> for DeliveryBody {
    fn from(delivery: &WebhookDelivery) -> Self {
        DeliveryBody {
            id: delivery.id,
            event_id: delivery.event_id,
            event_type: event_type_of_stored(&delivery.event_kind),
            state: delivery.state.as_str(),
            attempt: delivery.attempts,
            http_status: delivery.http_status,
            duration_ms: delivery.duration_ms,
            error: delivery.error.clone(),
            next_retry_at: delivery.next_attempt_at,
            last_attempt_at: delivery.last_attempt_at,
            created_at: delivery.created_at,
        }
    }
}

#[derive(Serialize, ToSchema)]
struct DeliveriesBody {
    items: Vec<DeliveryBody>,
}

#[derive(Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
struct DeliveriesQuery {
    /// How many to send: at most 100 are (0 counts as 1).
    #[param(value_type = Option<u64>, maximum = 4294967295.0)]
    limit: Option<u32>,
}

#[utoipa::path(
    get,
    path = "/stores/{slug}/webhooks",
    tag = "webhooks",
    params(("slug" = String, Path, description = "The store's slug")),
    responses((status = 200, description = "The store's endpoints", body = Vec<WebhookBody>))
)]
async fn list(
    State(state): State<AppState>, AuthCaller(caller): AuthCaller, ApiPath(slug): ApiPath<String>,
) -> Result<Json<Vec<WebhookBody>>, ApiError> {
    let webhooks = state.app.webhooks(&caller, &slug).await?;
    Ok(Json(webhooks.iter().map(WebhookBody::from).collect()))
}

#[utoipa::path(
    post,
    path = "/stores/{slug}/webhooks",
    tag = "webhooks",
    params(("slug" = String, Path, description = "The store's slug")),
    request_body = WebhookRequest,
    responses((status = 201, description = "Added, with its signing secret", body = WebhookWithSecretBody))
)]
async fn create(
    State(state): State<AppState>, AuthCaller(caller): AuthCaller, ApiPath(slug): ApiPath<String>,
    ApiJson(body): ApiJson<WebhookRequest>,
) -> Result<(StatusCode, Json<WebhookWithSecretBody>), ApiError> {
    let webhook = state
        .app
        .create_webhook(
            &caller,
            &slug,
            WebhookInput {
                url: body.url,
                events: body.events,
                enabled: body.enabled,
            },
        )
        .await?;
    Ok((
        StatusCode::CREATED,
        Json(WebhookWithSecretBody::from(&webhook)),
    ))
}

#[utoipa::path(
    delete,
    path = "/stores/{slug}/webhooks/{id}",
    tag = "webhooks",
    params(("slug" = String, Path, description = "The store's slug"), ("id" = i64, Path, description = "The endpoint's id")),
    responses((status = 204, description = "Removed"))
)]
async fn delete(
    State(state): State<AppState>, AuthCaller(caller): AuthCaller,
    ApiPath((slug, id)): ApiPath<(String, WebhookId)>,
) -> Result<StatusCode, ApiError> {
    state.app.delete_webhook(&caller, &slug, id).await?;
    Ok(StatusCode::NO_CONTENT)
}

#[utoipa::path(
    post,
    path = "/stores/{slug}/webhooks/{id}/rotate-secret",
    tag = "webhooks",
    params(("slug" = String, Path, description = "The store's slug"), ("id" = i64, Path, description = "The endpoint's id")),
    responses((status = 200, description = "A new secret; the old one signs for 24 hours more", body = WebhookWithSecretBody))
)]
async fn rotate_secret(
    State(state): State<AppState>, AuthCaller(caller): AuthCaller,
    ApiPath((slug, id)): ApiPath<(String, WebhookId)>,
) -> Result<Json<WebhookWithSecretBody>, ApiError> {
    let webhook = state.app.rotate_webhook_secret(&caller, &slug, id).await?;
    Ok(Json(WebhookWithSecretBody::from(&webhook)))
}

#[utoipa::path(
    get,
    path = "/stores/{slug}/webhooks/{id}/deliveries",
    tag = "webhooks",
    params(("slug" = String, Path, description = "The store's slug"), ("id" = i64, Path, description = "The endpoint's id"), DeliveriesQuery),
    responses((status = 200, description = "The delivery log, newest first", body = DeliveriesBody))
)]
async fn deliveries(
    State(state): State<AppState>, AuthCaller(caller): AuthCaller,
    ApiPath((slug, id)): ApiPath<(String, WebhookId)>, ApiQuery(query): ApiQuery<DeliveriesQuery>,
) -> Result<Json<DeliveriesBody>, ApiError> {
    let deliveries = state
        .app
        .webhook_deliveries(&caller, &slug, id, query.limit)
        .await?;
    Ok(Json(DeliveriesBody {
        items: deliveries.iter().map(DeliveryBody::from).collect(),
    }))
}

#[utoipa::path(
    post,
    path = "/stores/{slug}/webhooks/{id}/deliveries/{delivery_id}/retry",
    tag = "webhooks",
    params(("slug" = String, Path, description = "The store's slug"), ("id" = i64, Path, description = "The endpoint's id"), ("delivery_id" = i64, Path, description = "The delivery's id")),
    responses((status = 202, description = "Queued to be sent again", body = DeliveryBody))
)]
async fn retry(
    State(state): State<AppState>, AuthCaller(caller): AuthCaller,
    ApiPath((slug, id, delivery)): ApiPath<(String, WebhookId, DeliveryId)>,
) -> Result<(StatusCode, Json<DeliveryBody>), ApiError> {
    let delivery = state
        .app
        .retry_webhook_delivery(&caller, &slug, id, delivery)
        .await?;
    Ok((StatusCode::ACCEPTED, Json(DeliveryBody::from(&delivery))))
}
