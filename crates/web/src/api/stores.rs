//! `/stores`: the public store list and catalogs; products and staff for owners.

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use ordertrack_app::catalog::ProductInput;
use ordertrack_domain::{ProductId, Role, UserId};
use serde::{Deserialize, Serialize};

use super::views::{ProductBody, StatusBody, StoreBody, UserBody};
use crate::AppState;
use crate::error::ApiError;
use crate::extract::{ApiJson, ApiPath, AuthCaller};
use crate::routes::Routes;

pub fn routes() -> Routes {
    Routes::new()
        .get("/stores", list)
        .get("/stores/{slug}", show)
        .get("/stores/{slug}/products", products)
        .post("/stores/{slug}/products", create_product)
        .patch("/stores/{slug}/products/{id}", update_product)
        .get("/stores/{slug}/staff", staff)
        .post("/stores/{slug}/staff", add_staff)
        .delete("/stores/{slug}/staff/{user_id}", remove_staff)
}

async fn list(State(state): State<AppState>) -> Result<Json<Vec<StoreBody>>, ApiError> {
    let stores = state.app.stores().await?;
    Ok(Json(stores.iter().map(StoreBody::from).collect()))
}

#[derive(Serialize)]
struct StoreDetailBody {
    #[serde(flatten)]
    store: StoreBody,
    products: Vec<ProductBody>,
    /// The store's workflow states, in order.
    statuses: Vec<StatusBody>,
}

async fn show(
    State(state): State<AppState>,
    ApiPath(slug): ApiPath<String>,
) -> Result<Json<StoreDetailBody>, ApiError> {
    let found = state.app.store_with_products(&slug).await?;
    let workflow = state.app.workflows().get(&found.store.workflow)?;
    Ok(Json(StoreDetailBody {
        store: StoreBody::from(&found.store),
        products: found.products.iter().map(ProductBody::from).collect(),
        statuses: workflow.states().iter().map(StatusBody::from).collect(),
    }))
}

async fn products(
    State(state): State<AppState>,
    ApiPath(slug): ApiPath<String>,
) -> Result<Json<Vec<ProductBody>>, ApiError> {
    let found = state.app.store_with_products(&slug).await?;
    Ok(Json(found.products.iter().map(ProductBody::from).collect()))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ProductRequest {
    name: Option<String>,
    description: Option<String>,
    price_minor: Option<i64>,
    station: Option<String>,
    available: Option<bool>,
}

impl From<ProductRequest> for ProductInput {
    fn from(body: ProductRequest) -> Self {
        ProductInput {
            name: body.name,
            description: body.description,
            price_minor: body.price_minor,
            station: body.station,
            available: body.available,
        }
    }
}

async fn create_product(
    State(state): State<AppState>,
    AuthCaller(caller): AuthCaller,
    ApiPath(slug): ApiPath<String>,
    ApiJson(body): ApiJson<ProductRequest>,
) -> Result<(StatusCode, Json<ProductBody>), ApiError> {
    let product = state
        .app
        .create_product(&caller, &slug, body.into())
        .await?;
    Ok((StatusCode::CREATED, Json(ProductBody::from(&product))))
}

async fn update_product(
    State(state): State<AppState>,
    AuthCaller(caller): AuthCaller,
    ApiPath((slug, id)): ApiPath<(String, ProductId)>,
    ApiJson(body): ApiJson<ProductRequest>,
) -> Result<Json<ProductBody>, ApiError> {
    let product = state
        .app
        .update_product(&caller, &slug, id, body.into())
        .await?;
    Ok(Json(ProductBody::from(&product)))
}

#[derive(Serialize)]
struct StaffBody {
    user: UserBody,
    role: Role,
}

async fn staff(
    State(state): State<AppState>,
    AuthCaller(caller): AuthCaller,
    ApiPath(slug): ApiPath<String>,
) -> Result<Json<Vec<StaffBody>>, ApiError> {
    let staff = state.app.staff(&caller, &slug).await?;
    Ok(Json(
        staff
            .iter()
            .map(|member| StaffBody {
                user: UserBody::from(&member.user),
                role: member.role,
            })
            .collect(),
    ))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct AddStaffRequest {
    email: String,
    role: Role,
}

async fn add_staff(
    State(state): State<AppState>,
    AuthCaller(caller): AuthCaller,
    ApiPath(slug): ApiPath<String>,
    ApiJson(body): ApiJson<AddStaffRequest>,
) -> Result<(StatusCode, Json<StaffBody>), ApiError> {
    let member = state
        .app
        .add_staff(&caller, &slug, &body.email, body.role)
        .await?;
    Ok((
        StatusCode::CREATED,
        Json(StaffBody {
            user: UserBody::from(&member.user),
            role: member.role,
        }),
    ))
}

async fn remove_staff(
    State(state): State<AppState>,
    AuthCaller(caller): AuthCaller,
    ApiPath((slug, user_id)): ApiPath<(String, UserId)>,
) -> Result<StatusCode, ApiError> {
    state.app.remove_staff(&caller, &slug, user_id).await?;
    Ok(StatusCode::NO_CONTENT)
}
