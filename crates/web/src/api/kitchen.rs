//! The kitchen: its board, and bumping, handing off and recalling orders.
//! Each action is one atomic use case in `app::kitchen`; the answer is the
//! order as the order endpoints show it.

use axum::Json;
use axum::extract::State;
use ordertrack_domain::OrderId;
use serde::Deserialize;

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

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct BumpBody {
    /// Only this station's items; without it the whole order, handed off.
    #[serde(default)]
    station: Option<String>,
    expected_version: i64,
}

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
    changed(&state, &caller, id, result).await
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct HandOffBody {
    expected_version: i64,
}

async fn hand_off(
    State(state): State<AppState>, AuthCaller(caller): AuthCaller, ApiPath(id): ApiPath<OrderId>,
    ApiJson(body): ApiJson<HandOffBody>,
) -> Result<Json<OrderBody>, ApiError> {
    let result = state
        .app
        .hand_off(&caller, id, Some(body.expected_version))
        .await;
    changed(&state, &caller, id, result).await
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RecallQuery {
    /// The version the client saw; a stale one is a 409 with the order.
    #[serde(default)]
    expected_version: Option<i64>,
}

async fn recall(
    State(state): State<AppState>, AuthCaller(caller): AuthCaller, ApiPath(id): ApiPath<OrderId>,
    ApiQuery(query): ApiQuery<RecallQuery>,
) -> Result<Json<OrderBody>, ApiError> {
    let result = state.app.recall(&caller, id, query.expected_version).await;
    changed(&state, &caller, id, result).await
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct BoardQuery {
    station: Option<String>,
}

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
