//! `/stores`: the public store list and catalogs; products and staff for owners.

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use ordertrack_app::catalog::ProductInput;
use ordertrack_app::email::EmailInput;
use ordertrack_app::stores::{SettingsInput, StoreSetup};
use ordertrack_domain::{FulfilmentKind, OpeningHours, PaymentMethod, ProductId, Role, UserId};
use ordertrack_store::StoreWithSettings;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use super::views::{
    ProductBody, StatusBody, StoreBody, StoreReviewsBody, StoreSettingsBody, UserBody,
};
use crate::AppState;
use crate::error::ApiError;
use crate::extract::{ApiJson, ApiPath, ApiQuery, AuthCaller};
use crate::routes::Routes;

pub fn routes() -> Routes {
    Routes::new()
        .get("/stores", list)
        .post("/stores", open_store)
        .get("/stores/{slug}", show)
        .patch("/stores/{slug}", update_settings)
        .post("/stores/{slug}/approve", approve)
        .get("/stores/{slug}/products", products)
        .post("/stores/{slug}/products", create_product)
        .patch("/stores/{slug}/products/{id}", update_product)
        .get("/stores/{slug}/staff", staff)
        .post("/stores/{slug}/staff", add_staff)
        .delete("/stores/{slug}/staff/{user_id}", remove_staff)
        .get("/stores/{slug}/reviews", reviews)
}

/// This module's operations in the OpenAPI document.
#[derive(utoipa::OpenApi)]
#[openapi(paths(
    list,
    open_store,
    show,
    update_settings,
    approve,
    products,
    create_product,
    update_product,
    staff,
    add_staff,
    remove_staff,
    reviews
))]
pub(crate) struct Doc;

#[derive(Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
struct ReviewsQuery {
    cursor: Option<String>,
    /// How many to send: at most 100 are (0 counts as 1).
    #[param(value_type = Option<u64>, maximum = 4294967295.0)]
    limit: Option<u32>,
}

/// A page of the store's reviews with their average (owners, managers).
#[utoipa::path(
    get,
    path = "/stores/{slug}/reviews",
    tag = "stores",
    params(("slug" = String, Path, description = "The store's slug"), ReviewsQuery),
    responses((status = 200, description = "A page of reviews, newest first", body = StoreReviewsBody))
)]
async fn reviews(
    State(state): State<AppState>, AuthCaller(caller): AuthCaller, ApiPath(slug): ApiPath<String>,
    ApiQuery(query): ApiQuery<ReviewsQuery>,
) -> Result<Json<StoreReviewsBody>, ApiError> {
    let found = state
        .app
        .store_reviews(&caller, &slug, query.cursor.as_deref(), query.limit)
        .await?;
    Ok(Json(StoreReviewsBody::from(&found)))
}

#[utoipa::path(
    get,
    path = "/stores",
    tag = "stores",
    responses((status = 200, description = "The stores taking part", body = Vec<StoreBody>)),
    security(())
)]
async fn list(State(state): State<AppState>) -> Result<Json<Vec<StoreBody>>, ApiError> {
    let stores = state.app.stores().await?;
    Ok(Json(stores.iter().map(StoreBody::from).collect()))
}

#[derive(Serialize, ToSchema)]
struct StoreDetailBody {
    #[serde(flatten)]
    store: StoreSettingsBody,
    products: Vec<ProductBody>,
    /// The store's workflow states, in order.
    statuses: Vec<StatusBody>,
}

#[utoipa::path(
    get,
    path = "/stores/{slug}",
    tag = "stores",
    params(("slug" = String, Path, description = "The store's slug")),
    responses((status = 200, description = "The store, its catalog and its workflow states", body = StoreDetailBody)),
    security(())
)]
async fn show(
    State(state): State<AppState>, ApiPath(slug): ApiPath<String>,
) -> Result<Json<StoreDetailBody>, ApiError> {
    let found = state.app.store_with_products(&slug).await?;
    let workflow = state.app.current_workflow(&found.store).await?.workflow;
    Ok(Json(StoreDetailBody {
        store: StoreSettingsBody::new(&found.store, &found.settings, ordertrack_app::now()),
        products: found.products.iter().map(ProductBody::from).collect(),
        statuses: workflow.states().iter().map(StatusBody::from).collect(),
    }))
}

#[utoipa::path(
    get,
    path = "/stores/{slug}/products",
    tag = "stores",
    params(("slug" = String, Path, description = "The store's slug")),
    responses((status = 200, description = "The catalog", body = Vec<ProductBody>)),
    security(())
)]
async fn products(
    State(state): State<AppState>, ApiPath(slug): ApiPath<String>,
) -> Result<Json<Vec<ProductBody>>, ApiError> {
    let found = state.app.store_with_products(&slug).await?;
    Ok(Json(found.products.iter().map(ProductBody::from).collect()))
}

#[derive(Deserialize, ToSchema)]
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

#[utoipa::path(
    post,
    path = "/stores/{slug}/products",
    tag = "stores",
    params(("slug" = String, Path, description = "The store's slug")),
    request_body = ProductRequest,
    responses((status = 201, description = "Added", body = ProductBody))
)]
async fn create_product(
    State(state): State<AppState>, AuthCaller(caller): AuthCaller, ApiPath(slug): ApiPath<String>,
    ApiJson(body): ApiJson<ProductRequest>,
) -> Result<(StatusCode, Json<ProductBody>), ApiError> {
    let product = state
        .app
        .create_product(&caller, &slug, body.into())
        .await?;
    Ok((StatusCode::CREATED, Json(ProductBody::from(&product))))
}

#[utoipa::path(
    patch,
    path = "/stores/{slug}/products/{id}",
    tag = "stores",
    params(("slug" = String, Path, description = "The store's slug"), ("id" = i64, Path, description = "The product's id")),
    request_body = ProductRequest,
    responses((status = 200, description = "Changed", body = ProductBody))
)]
async fn update_product(
    State(state): State<AppState>, AuthCaller(caller): AuthCaller,
    ApiPath((slug, id)): ApiPath<(String, ProductId)>, ApiJson(body): ApiJson<ProductRequest>,
) -> Result<Json<ProductBody>, ApiError> {
    let product = state
        .app
        .update_product(&caller, &slug, id, body.into())
        .await?;
    Ok(Json(ProductBody::from(&product)))
}

#[derive(Serialize, ToSchema)]
struct StaffBody {
    user: UserBody,
    role: Role,
}

#[utoipa::path(
    get,
    path = "/stores/{slug}/staff",
    tag = "stores",
    params(("slug" = String, Path, description = "The store's slug")),
    responses((status = 200, description = "The staff", body = Vec<StaffBody>))
)]
async fn staff(
    State(state): State<AppState>, AuthCaller(caller): AuthCaller, ApiPath(slug): ApiPath<String>,
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

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
struct AddStaffRequest {
    email: String,
    role: Role,
}

#[utoipa::path(
    post,
    path = "/stores/{slug}/staff",
    tag = "stores",
    params(("slug" = String, Path, description = "The store's slug")),
    request_body = AddStaffRequest,
    responses((status = 201, description = "Added", body = StaffBody))
)]
async fn add_staff(
    State(state): State<AppState>, AuthCaller(caller): AuthCaller, ApiPath(slug): ApiPath<String>,
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

#[utoipa::path(
    delete,
    path = "/stores/{slug}/staff/{user_id}",
    tag = "stores",
    params(("slug" = String, Path, description = "The store's slug"), ("user_id" = i64, Path, description = "The staff member's user id")),
    responses((status = 204, description = "Removed; their streams of the store end"))
)]
async fn remove_staff(
    State(state): State<AppState>, AuthCaller(caller): AuthCaller,
    ApiPath((slug, user_id)): ApiPath<(String, UserId)>,
) -> Result<StatusCode, ApiError> {
    state.app.remove_staff(&caller, &slug, user_id).await?;
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
struct OpenStoreRequest {
    slug: String,
    name: String,
    currency: String,
    workflow: String,
    timezone: Option<String>,
}

fn settings_body(found: &StoreWithSettings) -> Json<StoreSettingsBody> {
    Json(StoreSettingsBody::new(
        &found.store,
        &found.settings,
        ordertrack_app::now(),
    ))
}

/// Opens a store; the caller becomes its owner (who may: `--store-signup`).
#[utoipa::path(
    post,
    path = "/stores",
    tag = "stores",
    request_body = OpenStoreRequest,
    responses((status = 201, description = "Opened; the caller is its owner", body = StoreSettingsBody))
)]
async fn open_store(
    State(state): State<AppState>, AuthCaller(caller): AuthCaller,
    ApiJson(body): ApiJson<OpenStoreRequest>,
) -> Result<(StatusCode, Json<StoreSettingsBody>), ApiError> {
    let opened = state
        .app
        .open_store(
            &caller,
            StoreSetup {
                slug: body.slug,
                name: body.name,
                currency: body.currency,
                workflow: body.workflow.into(),
                timezone: body.timezone,
            },
        )
        .await?;
    Ok((StatusCode::CREATED, settings_body(&opened)))
}

/// A field that may be sent as `null`: `Some(None)`, unlike a field left out.
fn present<'de, D, T>(deserializer: D) -> Result<Option<T>, D::Error>
where
    D: serde::Deserializer<'de>,
    T: Deserialize<'de>,
{
    T::deserialize(deserializer).map(Some)
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
struct SettingsRequest {
    name: Option<String>,
    accepting_orders: Option<bool>,
    timezone: Option<String>,
    fulfilment: Option<Vec<FulfilmentKind>>,
    /// `null` for open around the clock; left out: unchanged.
    #[serde(default, deserialize_with = "present")]
    #[schema(value_type = Option<OpeningHours>)]
    opening_hours: Option<Option<OpeningHours>>,
    payment_methods: Option<Vec<PaymentMethod>>,
    driver_self_assign: Option<bool>,
    print_trigger: Option<String>,
    email: Option<EmailRequest>,
}

/// A store's customer e-mail settings; a field left out stays, a `null`
/// template goes back to the built-in one.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
struct EmailRequest {
    states: Option<Vec<String>>,
    #[serde(default, deserialize_with = "present")]
    #[schema(value_type = Option<String>)]
    subject: Option<Option<String>>,
    #[serde(default, deserialize_with = "present")]
    #[schema(value_type = Option<String>)]
    body: Option<Option<String>>,
}

#[utoipa::path(
    patch,
    path = "/stores/{slug}",
    tag = "stores",
    params(("slug" = String, Path, description = "The store's slug")),
    request_body = SettingsRequest,
    responses((status = 200, description = "The settings now", body = StoreSettingsBody))
)]
async fn update_settings(
    State(state): State<AppState>, AuthCaller(caller): AuthCaller, ApiPath(slug): ApiPath<String>,
    ApiJson(body): ApiJson<SettingsRequest>,
) -> Result<Json<StoreSettingsBody>, ApiError> {
    let updated = state
        .app
        .update_store_settings(
            &caller,
            &slug,
            SettingsInput {
                name: body.name,
                accepting_orders: body.accepting_orders,
                timezone: body.timezone,
                fulfilment: body.fulfilment,
                opening_hours: body.opening_hours,
                payment_methods: body.payment_methods,
                driver_self_assign: body.driver_self_assign,
                print_trigger: body.print_trigger,
                email: body.email.map(|email| EmailInput {
                    states: email.states,
                    subject: email.subject,
                    body: email.body,
                }),
            },
        )
        .await?;
    Ok(settings_body(&updated))
}

#[utoipa::path(
    post,
    path = "/stores/{slug}/approve",
    tag = "stores",
    params(("slug" = String, Path, description = "The store's slug")),
    responses((status = 200, description = "Approved", body = StoreSettingsBody))
)]
async fn approve(
    State(state): State<AppState>, AuthCaller(caller): AuthCaller, ApiPath(slug): ApiPath<String>,
) -> Result<Json<StoreSettingsBody>, ApiError> {
    let approved = state.app.approve_store(&caller, &slug).await?;
    Ok(settings_body(&approved))
}
