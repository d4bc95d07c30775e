//! `/orders` and `/track`: place, list, read and move orders.

use axum::extract::State;
use std::hash::{Hash, Hasher};

use axum::Json;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use ordertrack_app::ErrorCode;
use ordertrack_app::orders::{OrderListRequest, OrderRequest};
use ordertrack_domain::{
    Fulfilment, FulfilmentKind, ItemId, ItemStatus, OrderId, PaymentMethod, PaymentRequest,
    ProductId, RequestedLine, UserId,
};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use super::views::{HistoryBody, OrderBody, ReviewBody, TrackedOrderBody};
use crate::AppState;
use crate::error::ApiError;
use crate::extract::{ApiJson, ApiPath, ApiQuery, AuthCaller, AuthSession};
use crate::routes::Routes;

pub fn routes() -> Routes {
    Routes::new()
        .post("/orders", place)
        .get("/orders", list)
        .get("/orders/{id}", show)
        .post("/orders/{id}/transitions", transition)
        .post("/orders/{id}/corrections", correct)
        .post("/orders/{id}/payment", set_payment)
        .post("/orders/{id}/assignment", assign)
        .delete("/orders/{id}/assignment", unassign)
        .post("/orders/{id}/review", review)
        .get("/orders/{id}/history", history)
        .patch("/orders/{id}/items/{item_id}", set_item_status)
        .get("/track/{token}", track)
}

/// This module's operations in the OpenAPI document.
#[derive(utoipa::OpenApi)]
#[openapi(paths(
    place,
    list,
    show,
    transition,
    correct,
    set_payment,
    assign,
    unassign,
    review,
    history,
    set_item_status,
    track
))]
pub(crate) struct Doc;

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
struct PlaceOrderBody {
    store: String,
    items: Vec<LineBody>,
    fulfilment: FulfilmentBody,
    #[serde(default)]
    notes: Option<String>,
    /// How the customer will pay; left out: the store's preferred method.
    #[serde(default)]
    payment: Option<PaymentChoiceBody>,
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
struct PaymentChoiceBody {
    method: PaymentMethod,
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
struct LineBody {
    product: i64,
    quantity: i64,
    #[serde(default)]
    notes: Option<String>,
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
struct FulfilmentBody {
    #[serde(rename = "type")]
    kind: FulfilmentKind,
    #[serde(default)]
    address: Option<String>,
}

#[utoipa::path(
    post,
    path = "/orders",
    tag = "orders",
    params(("Idempotency-Key" = Option<String>, Header, description = "The same key again answers the order it placed (200)")),
    request_body = PlaceOrderBody,
    responses((status = 201, description = "Placed", body = OrderBody), (status = 200, description = "Placed before under this Idempotency-Key", body = OrderBody))
)]
async fn place(
    State(state): State<AppState>, AuthSession(session): AuthSession, headers: HeaderMap,
    ApiJson(body): ApiJson<PlaceOrderBody>,
) -> Result<(StatusCode, Json<OrderBody>), ApiError> {
    let key = match headers.get("idempotency-key") {
        Some(value) => Some(value.to_str().map_err(|_| {
            ApiError::new(
                StatusCode::BAD_REQUEST,
                ErrorCode::InvalidIdempotencyKey,
                "Idempotency-Key must be visible ASCII",
            )
        })?),
        None => None,
    };
    let request = OrderRequest {
        store: body.store,
        items: body
            .items
            .into_iter()
            .map(|line| RequestedLine {
                product: ProductId::new(line.product),
                quantity: line.quantity,
                notes: line.notes,
            })
            .collect(),
        fulfilment: Fulfilment {
            kind: body.fulfilment.kind,
            address: body.fulfilment.address,
        },
        notes: body.notes,
        payment_method: body.payment.map(|payment| payment.method),
    };
    let placed = state.app.place_order(&session, request, key).await?;
    let status = if placed.created {
        StatusCode::CREATED
    } else {
        StatusCode::OK
    };
    Ok((status, Json(OrderBody::from(&placed.view))))
}

#[derive(Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
struct ListQuery {
    store: Option<String>,
    status: Option<String>,
    q: Option<String>,
    /// `me`: only the orders assigned to the caller (with `store`).
    driver: Option<String>,
    cursor: Option<String>,
    /// How many to send: at most 100 are (0 counts as 1).
    #[param(value_type = Option<u64>, maximum = 4294967295.0)]
    limit: Option<u32>,
}

#[derive(Serialize, ToSchema)]
struct OrderListBody {
    items: Vec<OrderBody>,
    next_cursor: Option<String>,
}

#[utoipa::path(
    get,
    path = "/orders",
    tag = "orders",
    params(ListQuery, ("If-None-Match" = Option<String>, Header, description = "An `ETag` already held: 304 if it is still current")),
    responses((status = 200, description = "A page of orders, newest first", body = OrderListBody, headers(("ETag" = String, description = "A strong tag of the body, for `If-None-Match`"))), (status = 304, description = "Unchanged since the `ETag` sent"))
)]
async fn list(
    State(state): State<AppState>, AuthCaller(caller): AuthCaller,
    ApiQuery(query): ApiQuery<ListQuery>, headers: HeaderMap,
) -> Result<Response, ApiError> {
    let assigned_to_me = match query.driver.as_deref() {
        None => false,
        Some("me") if query.store.is_some() => true,
        Some(_) => {
            return Err(ApiError::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                ErrorCode::InvalidDriverFilter,
                "`driver` is `me`, with `store`: the orders of that store assigned to you",
            ));
        }
    };
    let list = state
        .app
        .orders(
            &caller,
            OrderListRequest {
                store: query.store,
                status: query.status,
                search: query.q,
                assigned_to_me,
                cursor: query.cursor,
                limit: query.limit,
            },
        )
        .await?;
    let body = OrderListBody {
        items: list.orders.iter().map(OrderBody::from).collect(),
        next_cursor: list.next_cursor,
    };
    json_with_etag(&headers, &body)
}

#[utoipa::path(
    get,
    path = "/orders/{id}",
    tag = "orders",
    params(("id" = i64, Path, description = "The order's id"), ("If-None-Match" = Option<String>, Header, description = "An `ETag` already held: 304 if it is still current")),
    responses((status = 200, description = "The order", body = OrderBody, headers(("ETag" = String, description = "A strong tag of the body, for `If-None-Match`"))), (status = 304, description = "Unchanged since the `ETag` sent"))
)]
async fn show(
    State(state): State<AppState>, AuthCaller(caller): AuthCaller, ApiPath(id): ApiPath<OrderId>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let view = state.app.order(&caller, id).await?;
    let mut body = OrderBody::from(&view);
    body.review = state
        .app
        .review_of(&caller, &view)
        .await?
        .as_ref()
        .map(ReviewBody::from);
    json_with_etag(&headers, &body)
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
struct ReviewRequest {
    rating: i64,
    #[serde(default)]
    comment: Option<String>,
}

#[utoipa::path(
    post,
    path = "/orders/{id}/review",
    tag = "orders",
    params(("id" = i64, Path, description = "The order's id")),
    request_body = ReviewRequest,
    responses((status = 201, description = "Written", body = ReviewBody))
)]
async fn review(
    State(state): State<AppState>, AuthCaller(caller): AuthCaller, ApiPath(id): ApiPath<OrderId>,
    ApiJson(body): ApiJson<ReviewRequest>,
) -> Result<(StatusCode, Json<ReviewBody>), ApiError> {
    let review = state
        .app
        .review_order(&caller, id, body.rating, body.comment.as_deref())
        .await?;
    Ok((StatusCode::CREATED, Json(ReviewBody::from(&review))))
}

/// A JSON response with a strong ETag (a hash of the exact body), or 304
/// when the client's `If-None-Match` already names it: cheap for pollers.
fn json_with_etag<T: Serialize>(request: &HeaderMap, body: &T) -> Result<Response, ApiError> {
    let bytes = serde_json::to_vec(body)
        .map_err(|e| ApiError::from(ordertrack_app::AppError::Internal(e.to_string())))?;
    let mut hasher = std::hash::DefaultHasher::new();
    bytes.hash(&mut hasher);
    let etag = format!("\"{:016x}{:08x}\"", hasher.finish(), bytes.len());
    let matches = request
        .get(header::IF_NONE_MATCH)
        .and_then(|value| value.to_str().ok())
        .is_some_and(|value| {
            value
                .split(',')
                .any(|tag| tag.trim() == etag || tag.trim() == "*")
        });
    let etag_value =
        HeaderValue::from_str(&etag).unwrap_or_else(|_| HeaderValue::from_static("\"\""));
    let cache = HeaderValue::from_static("private, no-cache");
    if matches {
        return Ok((
            StatusCode::NOT_MODIFIED,
            [(header::ETAG, etag_value), (header::CACHE_CONTROL, cache)],
        )
            .into_response());
    }
    Ok((
        [
            (header::ETAG, etag_value),
            (header::CACHE_CONTROL, cache),
            (
                header::CONTENT_TYPE,
                HeaderValue::from_static("application/json"),
            ),
        ],
        bytes,
    )
        .into_response())
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
struct TransitionBody {
    to: String,
    #[serde(default)]
    note: Option<String>,
    #[serde(default)]
    expected_version: Option<i64>,
}

#[utoipa::path(
    post,
    path = "/orders/{id}/transitions",
    tag = "orders",
    params(("id" = i64, Path, description = "The order's id")),
    request_body = TransitionBody,
    responses((status = 200, description = "Moved", body = OrderBody))
)]
async fn transition(
    State(state): State<AppState>, AuthSession(session): AuthSession,
    ApiPath(id): ApiPath<OrderId>, ApiJson(body): ApiJson<TransitionBody>,
) -> Result<Json<OrderBody>, ApiError> {
    let result = state
        .app
        .transition(&session, id, &body.to, body.note, body.expected_version)
        .await;
    changed(&state, (&session).into(), id, result).await
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
struct CorrectionBody {
    to: String,
    reason: String,
    #[serde(default)]
    expected_version: Option<i64>,
}

#[utoipa::path(
    post,
    path = "/orders/{id}/corrections",
    tag = "orders",
    params(("id" = i64, Path, description = "The order's id")),
    request_body = CorrectionBody,
    responses((status = 200, description = "Corrected", body = OrderBody))
)]
async fn correct(
    State(state): State<AppState>, AuthCaller(caller): AuthCaller, ApiPath(id): ApiPath<OrderId>,
    ApiJson(body): ApiJson<CorrectionBody>,
) -> Result<Json<OrderBody>, ApiError> {
    let result = state
        .app
        .correct(&caller, id, &body.to, &body.reason, body.expected_version)
        .await;
    changed(&state, (&caller).into(), id, result).await
}

/// The payment change asked for: only these two are recorded by hand.
#[derive(Deserialize, Clone, Copy, ToSchema)]
#[serde(rename_all = "snake_case")]
enum PaymentChangeStatus {
    Paid,
    Refunded,
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
struct PaymentChangeBody {
    status: PaymentChangeStatus,
    /// A refund's amount, in minor units.
    #[serde(default)]
    amount_minor: Option<i64>,
    /// Why (required for a refund; an optional note when marking paid).
    #[serde(default)]
    reason: Option<String>,
    #[serde(default)]
    expected_version: Option<i64>,
}

#[utoipa::path(
    post,
    path = "/orders/{id}/payment",
    tag = "orders",
    params(("id" = i64, Path, description = "The order's id")),
    request_body = PaymentChangeBody,
    responses((status = 200, description = "Recorded", body = OrderBody))
)]
async fn set_payment(
    State(state): State<AppState>, AuthCaller(caller): AuthCaller, ApiPath(id): ApiPath<OrderId>,
    ApiJson(body): ApiJson<PaymentChangeBody>,
) -> Result<Json<OrderBody>, ApiError> {
    let request = match (body.status, body.amount_minor) {
        (PaymentChangeStatus::Paid, None) => PaymentRequest::Paid { note: body.reason },
        (PaymentChangeStatus::Paid, Some(_)) => {
            return Err(ApiError::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                ErrorCode::InvalidAmount,
                "marking paid takes no amount: the order's total is paid",
            ));
        }
        (PaymentChangeStatus::Refunded, None) => {
            return Err(ApiError::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                ErrorCode::InvalidAmount,
                "a refund needs `amount_minor`",
            ));
        }
        (PaymentChangeStatus::Refunded, Some(amount_minor)) => PaymentRequest::Refund {
            amount_minor,
            reason: body.reason.unwrap_or_default(),
        },
    };
    let result = state
        .app
        .set_payment(&caller, id, request, body.expected_version)
        .await;
    changed(&state, (&caller).into(), id, result).await
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
struct AssignmentBody {
    /// The user id of one of the store's drivers.
    driver: i64,
    #[serde(default)]
    expected_version: Option<i64>,
}

#[utoipa::path(
    post,
    path = "/orders/{id}/assignment",
    tag = "orders",
    params(("id" = i64, Path, description = "The order's id")),
    request_body = AssignmentBody,
    responses((status = 200, description = "Assigned", body = OrderBody))
)]
async fn assign(
    State(state): State<AppState>, AuthCaller(caller): AuthCaller, ApiPath(id): ApiPath<OrderId>,
    ApiJson(body): ApiJson<AssignmentBody>,
) -> Result<Json<OrderBody>, ApiError> {
    let driver = UserId::new(body.driver);
    let result = state
        .app
        .assign_driver(&caller, id, Some(driver), body.expected_version)
        .await;
    changed(&state, (&caller).into(), id, result).await
}

#[derive(Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
struct UnassignQuery {
    #[serde(default)]
    expected_version: Option<i64>,
}

#[utoipa::path(
    delete,
    path = "/orders/{id}/assignment",
    tag = "orders",
    params(("id" = i64, Path, description = "The order's id"), UnassignQuery),
    responses((status = 200, description = "Unassigned", body = OrderBody))
)]
async fn unassign(
    State(state): State<AppState>, AuthCaller(caller): AuthCaller, ApiPath(id): ApiPath<OrderId>,
    ApiQuery(query): ApiQuery<UnassignQuery>,
) -> Result<Json<OrderBody>, ApiError> {
    let result = state
        .app
        .assign_driver(&caller, id, None, query.expected_version)
        .await;
    changed(&state, (&caller).into(), id, result).await
}

/// The answer to a change of order `id`: the order as it is after the
/// change — or, when the order had moved on from the version the client
/// named (409 `version_conflict`), the problem carrying the order as it is
/// now (`order`), so the client shows the fresh state without asking again.
pub(super) async fn changed(
    state: &AppState, caller: ordertrack_app::Asker<'_>, id: OrderId,
    result: Result<ordertrack_app::orders::OrderView, ordertrack_app::AppError>,
) -> Result<Json<OrderBody>, ApiError> {
    match result {
        Ok(view) => Ok(Json(OrderBody::from(&view))),
        Err(error) => {
            let error = ApiError::from(error);
            if error.code() != ErrorCode::VersionConflict {
                return Err(error);
            }
            let caller = state.app.caller_of(caller).await?;
            let fresh = state.app.order(&caller, id).await?;
            let order = serde_json::to_value(OrderBody::from(&fresh))
                .map_err(|e| ApiError::from(ordertrack_app::AppError::Internal(e.to_string())))?;
            Err(error.with_order(order))
        }
    }
}

#[utoipa::path(
    get,
    path = "/orders/{id}/history",
    tag = "orders",
    params(("id" = i64, Path, description = "The order's id")),
    responses((status = 200, description = "Its history, oldest first", body = Vec<HistoryBody>))
)]
async fn history(
    State(state): State<AppState>, AuthCaller(caller): AuthCaller, ApiPath(id): ApiPath<OrderId>,
) -> Result<Json<Vec<HistoryBody>>, ApiError> {
    let history = state.app.history(&caller, id).await?;
    Ok(Json(history.iter().map(HistoryBody::from).collect()))
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
struct ItemStatusBody {
    status: ItemStatus,
    /// A manager's or owner's correction (with `reason`), outside the
    /// kitchen's rules.
    #[serde(default)]
    correction: bool,
    #[serde(default)]
    reason: Option<String>,
    /// The version the client saw; a stale one is a 409 with the order.
    #[serde(default)]
    expected_version: Option<i64>,
}

#[utoipa::path(
    patch,
    path = "/orders/{id}/items/{item_id}",
    tag = "orders",
    params(("id" = i64, Path, description = "The order's id"), ("item_id" = i64, Path, description = "The item's id")),
    request_body = ItemStatusBody,
    responses((status = 200, description = "Changed", body = OrderBody))
)]
async fn set_item_status(
    State(state): State<AppState>, AuthSession(session): AuthSession,
    ApiPath((id, item_id)): ApiPath<(OrderId, ItemId)>, ApiJson(body): ApiJson<ItemStatusBody>,
) -> Result<Json<OrderBody>, ApiError> {
    let result = if body.correction {
        let reason = body.reason.as_deref().unwrap_or_default();
        let caller = state.app.session_caller(&session).await?;
        state
            .app
            .correct_item(&caller, id, item_id, body.status, reason)
            .await
    } else {
        state
            .app
            .set_item_status(&session, id, item_id, body.status, body.expected_version)
            .await
    };
    changed(&state, (&session).into(), id, result).await
}

#[utoipa::path(
    get,
    path = "/track/{token}",
    tag = "orders",
    params(("token" = String, Path, description = "The order's tracking token")),
    responses((status = 200, description = "The order as its tracking link shows it", body = TrackedOrderBody)),
    security(())
)]
async fn track(
    State(state): State<AppState>, ApiPath(token): ApiPath<String>,
) -> Result<Json<TrackedOrderBody>, ApiError> {
    let (view, history) = state.app.tracked_history(&token).await?;
    Ok(Json(TrackedOrderBody::new(&view, &history)))
}
