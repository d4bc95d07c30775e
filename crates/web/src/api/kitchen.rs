//! The kitchen: its board, and bumping, handing off and recalling orders.
//! Each action is one atomic use case in `app::kitchen`; the answer is the
//! order as the order endpoints show it.

use axum::Json;
use axum::extract::State;
use ordertrack_domain::OrderId;
use serde::Deserialize;
use utoipa::{IntoParams, ToSchema};

use super::orders::changed;
use super::views::{KitchenBoardBody, OrderBody};
use crate::AppState;
use crate::error::ApiError;
use crate::extract::{ApiJson, ApiPath, ApiQuery, AuthCaller};
use crate::routes::Routes;

pub fn routes() -> Routes {
    Routes::new()
        .post("/orders/{id}/bump", bump)
        .post("/orders/{id}/handoff", hand_off)
        .post("/orders/{id}/recall", recall)
        .get("/stores/{slug}/kitchen", board)
}

/// This module's operations in the OpenAPI document.
#[derive(utoipa::OpenApi)]
#[openapi(paths(bump, hand_off, recall, board))]
pub(crate) struct Doc;

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
struct BumpBody {
    /// Only this station's items; without it the whole order, handed off.
    #[serde(default)]
    station: Option<String>,
    expected_version: i64,
}

#[utoipa::path(
    post,
    path = "/orders/{id}/bump",
    tag = "kitchen",
    params(("id" = i64, Path, description = "The order's id")),
    request_body = BumpBody,
    responses((status = 200, description = "Bumped", body = OrderBody))
)]
async fn bump(
    State(state): State<AppState>, AuthCaller(caller): AuthCaller, ApiPath(id): ApiPath<OrderId>,
    ApiJson(body): ApiJson<BumpBody>,
) -> Result<Json<OrderBody>, ApiError> {
    let result = state
        .app
        .bump(
            &caller,
            id,
            body.station.as_deref(),
            Some(body.expected_version),
        )
        .await;
    changed(&state, (&caller).into(), id, result).await
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
struct HandOffBody {
    expected_version: i64,
}

#[utoipa::path(
    post,
    path = "/orders/{id}/handoff",
    tag = "kitchen",
    params(("id" = i64, Path, description = "The order's id")),
    request_body = HandOffBody,
    responses((status = 200, description = "Handed off", body = OrderBody))
)]
async fn hand_off(
    State(state): State<AppState>, AuthCaller(caller): AuthCaller, ApiPath(id): ApiPath<OrderId>,
    ApiJson(body): ApiJson<HandOffBody>,
) -> Result<Json<OrderBody>, ApiError> {
    let result = state
        .app
        .hand_off(&caller, id, Some(body.expected_version))
        .await;
    changed(&state, (&caller).into(), id, result).await
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RecallQuery {
    /// The version the client saw; a stale one is a 409 with the order.
    #[serde(default)]
    expected_version: Option<i64>,
}

#[utoipa::path(
    post,
    path = "/orders/{id}/recall",
    tag = "kitchen",
    params(("id" = i64, Path, description = "The order's id")),
    responses((status = 200, description = "Recalled to the kitchen", body = OrderBody))
)]
async fn recall(
    State(state): State<AppState>, AuthCaller(caller): AuthCaller, ApiPath(id): ApiPath<OrderId>,
    ApiQuery(query): ApiQuery<RecallQuery>,
) -> Result<Json<OrderBody>, ApiError> {
    let result = state.app.recall(&caller, id, query.expected_version).await;
    changed(&state, (&caller).into(), id, result).await
}

#[derive(Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
struct BoardQuery {
    station: Option<String>,
}

#[utoipa::path(
    get,
    path = "/stores/{slug}/kitchen",
    tag = "kitchen",
    params(("slug" = String, Path, description = "The store's slug"), BoardQuery),
    responses((status = 200, description = "The board", body = KitchenBoardBody))
)]
async fn board(
    State(state): State<AppState>, AuthCaller(caller): AuthCaller, ApiPath(slug): ApiPath<String>,
    ApiQuery(query): ApiQuery<BoardQuery>,
) -> Result<Json<KitchenBoardBody>, ApiError> {
    let board = state
        .app
        .kitchen_board(&caller, &slug, query.station.as_deref())
        .await?;
    Ok(Json(KitchenBoardBody::from(&board)))
}
