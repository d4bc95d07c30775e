//! Customer pages: stores, menu and checkout, the live order page, My Orders,
//! and the guest tracking page.

use std::collections::BTreeMap;

use axum::Form;
use axum::extract::{Query, State};
use axum::response::{IntoResponse, Response};
use maud::{Markup, html};
use ordertrack_app::orders::{OrderListRequest, OrderRequest, OrderView};
use ordertrack_domain::{
    Fulfilment, FulfilmentKind, HistoryEntry, OrderId, PaymentMethod, PaymentStatus, ProductId,
    RequestedLine, Role,
};
use serde::Deserialize;

use super::layout::{
    Flash, eta_line, live_indicator, money, payment_badge, status_badge, time_tag,
};
use super::{FlashQuery, PageContext, PageError, SignedIn, layout, see_other};
use crate::AppState;
use crate::extract::ApiPath;
use crate::routes::Routes;

pub fn routes() -> Routes {
    Routes::new()
        .get("/", stores)
        .get("/stores/{slug}", menu)
        .post("/stores/{slug}/checkout", checkout)
        .get("/orders", my_orders)
        .get("/orders/list", my_orders_fragment)
        .get("/orders/{id}", order_page)
        .get("/orders/{id}/tracker", order_tracker)
        .post("/orders/{id}/cancel", cancel)
        .get("/orders/{id}/review", review_fragment)
        .post("/orders/{id}/review", review)
        .get("/track/{token}", tracking_page)
        .get("/track/{token}/tracker", tracking_tracker)
}

async fn stores(State(state): State<AppState>, ctx: PageContext) -> Result<Response, PageError> {
    let stores = state.app.stores().await?;
    let may_open = ctx
        .caller
        .as_ref()
        .is_some_and(|caller| state.app.may_open_store(caller));
    let body = html! {
        h1 { "Order from" }
        @if stores.is_empty() { p.muted { "No stores yet." } }
        @if may_open {
            p { a.button.secondary href="/stores/new" { "Open a store" } }
        }
        ul.cards {
            @for store in &stores {
                li.card {
                    h2 { a href={ "/stores/" (store.slug) } { (store.name) } }
                    p.muted { (store.workflow) " · prices in " (store.currency) }
                    a.button href={ "/stores/" (store.slug) } { "See the menu" }
                }
            }
        }
    };
    Ok(ctx.page(layout("Stores", ctx.caller.as_ref(), &ctx.csrf, None, body)))
}

async fn menu(
    State(state): State<AppState>, ctx: PageContext, ApiPath(slug): ApiPath<String>,
    Query(query): Query<FlashQuery>,
) -> Result<Response, PageError> {
    let found = state.app.store_with_products(&slug).await?;
    let store = &found.store;
    let intake = ordertrack_app::stores::intake(&found.settings, ordertrack_app::now());
    let offers = |kind| found.settings.fulfilment.offers(kind);
    let mut by_station: BTreeMap<&str, Vec<_>> = BTreeMap::new();
    for product in &found.products {
        by_station
            .entry(product.station.as_str())
            .or_default()
            .push(product);
    }
    // A fresh key per rendered form: a double submit places one order.
    let idempotency_key = ordertrack_app::random_token();
    let body = html! {
        h1 { (store.name) }
        @if !intake.is_open() {
            p.flash.warn.store-closed role="status" data-store-closed { (intake) }
        }
        form.checkout method="post" action={ "/stores/" (store.slug) "/checkout" } data-cart {
            input type="hidden" name="csrf" value=(ctx.csrf);
            input type="hidden" name="idempotency_key" value=(idempotency_key);
            @for (station, products) in &by_station {
                section.card {
                    h2 { (station) }
                    ul.menu {
                        @for product in products {
                            li.product {
                                div {
                                    strong { (product.name) }
                                    p.muted { (product.description) }
                                }
                                span.price data-price=(product.price_minor) { (money(product.price_minor, store.currency.code())) }
                                @if product.available {
                                    label.qty {
                                        span.visually-hidden { "Quantity of " (product.name) }
                                        input type="number" name={ "qty_" (product.id) } min="0" max="99" value="0" inputmode="numeric" data-product-name=(product.name);
                                    }
                                } @else {
                                    span.muted { "Sold out" }
                                }
                            }
                        }
                    }
                }
            }
            section.card {
                h2 { "Checkout" }
                p { "Total: " strong data-cart-total data-currency=(store.currency) { "—" } }
                fieldset {
                    legend { "How do you get it?" }
                    @if offers(FulfilmentKind::Pickup) {
                        label.choice { input type="radio" name="fulfilment" value="pickup" checked; " Pickup at the counter" }
                    }
                    @if offers(FulfilmentKind::Delivery) {
                        label.choice { input type="radio" name="fulfilment" value="delivery" checked[!offers(FulfilmentKind::Pickup)]; " Delivery" }
                    }
                }
                fieldset {
                    legend { "How do you pay?" }
                    @for (n, method) in found.settings.payment_methods.methods().iter().enumerate() {
                        label.choice { input type="radio" name="payment_method" value=(method.as_str()) checked[n == 0]; " " (method.label()) }
                    }
                }
                label { "Delivery address " span.muted { "(for delivery)" } textarea name="address" maxlength="300" rows="2" {} }
                label { "Notes for the store " span.muted { "(optional)" } textarea name="notes" maxlength="500" rows="2" {} }
                @if !intake.is_open() {
                    button type="submit" disabled { "Place order" }
                } @else if ctx.caller.is_some() {
                    button type="submit" { "Place order" }
                } @else {
                    p { a href={ "/login?next=/stores/" (store.slug) } { "Sign in" } " or " a href={ "/register?next=/stores/" (store.slug) } { "register" } " to order." }
                }
            }
        }
    };
    Ok(ctx.page(layout(
        &store.name,
        ctx.caller.as_ref(),
        &ctx.csrf,
        Flash::from_code(query.flash.as_deref()),
        body,
    )))
}

async fn checkout(
    State(state): State<AppState>, SignedIn { ctx, ref caller }: SignedIn,
    ApiPath(slug): ApiPath<String>, Form(form): Form<BTreeMap<String, String>>,
) -> Result<Response, PageError> {
    ctx.check_csrf(form.get("csrf").map(String::as_str).unwrap_or(""))?;
    let mut items = Vec::new();
    for (field, value) in &form {
        if let Some(id) = field.strip_prefix("qty_") {
            let quantity: i64 = value.trim().parse().unwrap_or(-1);
            let product: i64 = id.parse().unwrap_or(-1);
            if quantity != 0 {
                items.push(RequestedLine {
                    product: ProductId::new(product),
                    quantity,
                    notes: None,
                });
            }
        }
    }
    let kind = match form.get("fulfilment").map(String::as_str) {
        Some("delivery") => FulfilmentKind::Delivery,
        _ => FulfilmentKind::Pickup,
    };
    let text = |name: &str| {
        form.get(name)
            .map(|v| v.trim().to_owned())
            .filter(|v| !v.is_empty())
    };
    let request = OrderRequest {
        store: slug.clone(),
        items,
        fulfilment: Fulfilment {
            kind,
            address: text("address"),
        },
        notes: text("notes"),
        payment_method: form
            .get("payment_method")
            .and_then(|method| PaymentMethod::parse(method)),
    };
    let key = text("idempotency_key");
    match state.app.place_order(caller, request, key.as_deref()).await {
        Ok(placed) => Ok(see_other(&format!(
            "/orders/{}?flash=placed",
            placed.view.order.id
        ))),
        Err(ordertrack_app::AppError::Conflict {
            code: ordertrack_app::ErrorCode::StoreClosed,
            ..
        }) => Ok(see_other(&format!("/stores/{slug}?flash=store_closed"))),
        Err(error @ ordertrack_app::AppError::Invalid { .. }) => {
            let body = html! {
                section.card.error {
                    h1 { "We couldn't place that order" }
                    p { (error.to_string()) }
                    p { a href={ "/stores/" (slug) } { "Back to the menu" } }
                }
            };
            let mut response = ctx.page(layout("Checkout", Some(caller), &ctx.csrf, None, body));
            *response.status_mut() = axum::http::StatusCode::UNPROCESSABLE_ENTITY;
            Ok(response)
        }
        Err(error) => Err(error.into()),
    }
}

/// The live tracker of one order: status, progress, ETA, timeline, items.
pub fn tracker(view: &OrderView, history: &[HistoryEntry], fragment_url: &str) -> Markup {
    let order = &view.order;
    let workflow = &view.workflow;
    let state = workflow.state(&order.status);
    let label = state
        .map(|s| s.label.as_str())
        .unwrap_or(order.status.as_str());
    let icon = state.map(|s| s.icon.as_str()).unwrap_or("");
    let progress = state.map_or(0, |s| s.progress);
    html! {
        section #tracker.card.tracker data-fragment=(fragment_url) data-version=(order.version) data-status=(order.status) {
            div.status-card.{ "status-" (order.status) } {
                span.status-icon aria-hidden="true" { (icon) }
                div {
                    p.status-label data-status-label { (label) }
                    p.muted { (state.map(|s| s.customer_message.as_str()).unwrap_or("")) }
                }
            }
            // A native progress element: inline styles are barred by the CSP.
            progress.progress aria-label="Order progress" aria-valuemin="0" aria-valuemax="100" aria-valuenow=(progress) value=(progress) max="100" {
                (progress) "%"
            }
            @if let Some(eta) = &view.eta {
                (eta_line(eta, ordertrack_app::now()))
            }
            p.payment data-payment-status=(order.payment.status.as_str()) {
                "Payment: " (order.payment.method.label()) " · " (payment_badge(&order.payment))
                @if order.payment.refunded_minor > 0 {
                    " · refunded " (money(order.payment.refunded_minor, order.currency.code()))
                }
            }
            // The driver by first name only: this part is the customer's
            // and the guest's too.
            @if let Some(driver) = &order.driver {
                p.driver data-driver { "Your driver: " strong data-driver-name { (driver.first_name()) } }
            }
            h2 { "Timeline" }
            ol.timeline {
                @for entry in history {
                    @if let Some(step) = entry.payment {
                        li data-payment-entry=(step.status.as_str()) {
                            span aria-hidden="true" { "💳" } " "
                            strong {
                                @if step.status == PaymentStatus::Paid { "Paid" } @else { "Refunded " (money(step.amount_minor, order.currency.code())) }
                            }
                            " · " (time_tag(entry.at))
                            @if let Some(note) = &entry.note { p.note { "“" (note) "”" } }
                        }
                    } @else if let Some(step) = entry.assignment {
                        li data-assignment-entry=(step.as_str()) {
                            span aria-hidden="true" { "🛵" } " "
                            strong { @if step.driver.is_some() { "Driver assigned" } @else { "Driver unassigned" } }
                            " · " (time_tag(entry.at))
                        }
                    } @else {
                    li {
                        @let step = workflow.state(&entry.to);
                        span aria-hidden="true" { (step.map(|s| s.icon.as_str()).unwrap_or("•")) }
                        " "
                        strong { (step.map(|s| s.label.as_str()).unwrap_or(entry.to.as_str())) }
                        " · " (time_tag(entry.at))
                        @if entry.correction {
                            p.note.correction data-correction {
                                "Corrected by the store: " (entry.note.as_deref().unwrap_or(""))
                            }
                        } @else if let Some(note) = &entry.note { p.note { "“" (note) "”" } }
                    }
                    }
                }
            }
            h2 { "Items" }
            ul.items {
                @for item in &order.items {
                    li {
                        span { (item.quantity) " × " (item.name) }
                        span.badge.{ "item-" (item.status.as_str()) } { (item.status.as_str()) }
                    }
                }
            }
        }
    }
}

async fn order_page(
    State(state): State<AppState>, SignedIn { ctx, ref caller }: SignedIn,
    ApiPath(id): ApiPath<OrderId>, Query(query): Query<FlashQuery>,
) -> Result<Response, PageError> {
    // The position is read before the order: the stream resumes from it, so
    // nothing that happens after this read is missed.
    let position = state.app.event_position().await?;
    let (view, history) = state.app.order_with_history(caller, id).await?;
    let review = state.app.review_of(caller, &view).await?;
    let order = &view.order;
    // The button cancels as the customer (`App::customer_cancel`): shown
    // to the order's customer while the workflow lets a customer cancel.
    let can_cancel = order.customer_id == caller.user.id
        && view
            .workflow
            .next_states(Role::Customer, &order.status, order.fulfilment.kind)
            .iter()
            .any(|s| view.workflow.is_cancelled(&s.key));
    let body = html! {
        div.page-head {
            h1 { "Order " (order.number) }
            (live_indicator())
        }
        div data-stream={ "/api/v1/orders/" (order.id) "/events" } data-last-event-id=(position) data-notify {}
        (tracker(&view, &history, &format!("/orders/{}/tracker", order.id)))
        (review_card(&ctx, caller, &view, review.as_ref()))
        section.card {
            h2 { "Details" }
            p { (order.store_slug) " · placed " (time_tag(order.created_at)) }
            p { "Total " strong { (money(order.total_minor, order.currency.code())) } }
            p {
                @match order.fulfilment.kind {
                    FulfilmentKind::Pickup => { "Pickup at the counter" }
                    FulfilmentKind::Delivery => { "Delivery to " (order.fulfilment.address.as_deref().unwrap_or("")) }
                }
            }
            @if let Some(notes) = &order.notes { p { "Your notes: " (notes) } }
            p.muted {
                "Share this private link to let someone follow the order without an account: "
                a href={ "/track/" (order.tracking_token) } data-tracking-link { "/track/" (order.tracking_token) }
            }
            p { a.button.secondary href={ "/orders/" (order.id) "/receipt" } data-receipt-link { "Receipt" } }
            button.secondary type="button" data-notify-toggle hidden { "Notify me when it's ready" }
            button.secondary type="button" data-push-toggle hidden { "Notify me" }
            @if can_cancel {
                form method="post" action={ "/orders/" (order.id) "/cancel" } data-confirm="Cancel this order?" {
                    input type="hidden" name="csrf" value=(ctx.csrf);
                    input type="hidden" name="expected_version" value=(order.version);
                    button.danger type="submit" { "Cancel order" }
                }
            }
        }
    };
    Ok(ctx.page(layout(
        &format!("Order {}", order.number),
        Some(caller),
        &ctx.csrf,
        Flash::from_code(query.flash.as_deref()),
        body,
    )))
}

async fn order_tracker(
    State(state): State<AppState>, SignedIn { ref caller, .. }: SignedIn,
    ApiPath(id): ApiPath<OrderId>,
) -> Result<Response, PageError> {
    let (view, history) = state.app.order_with_history(caller, id).await?;
    Ok(tracker(&view, &history, &format!("/orders/{id}/tracker")).into_response())
}

/// The order's rating: the customer's review once written; the form to
/// write it once the order is done; nothing before (the part refreshes
/// live, so the form appears the moment the order is done).
fn review_card(
    ctx: &PageContext, caller: &ordertrack_app::Caller, view: &OrderView,
    review: Option<&ordertrack_store::Review>,
) -> Markup {
    let order = &view.order;
    let mine = order.customer_id == caller.user.id;
    let done = ordertrack_domain::review::is_done(&view.workflow, order);
    html! {
        section #review data-fragment={ "/orders/" (order.id) "/review" } {
            @if let Some(review) = review {
                div.card data-review=(review.rating) {
                    h2 { "Your rating" }
                    p { strong { (review.rating) " / 5" } }
                    @if let Some(comment) = &review.comment { p.note { "“" (comment) "”" } }
                }
            } @else if mine && done {
                form.card method="post" action={ "/orders/" (order.id) "/review" } data-review-form {
                    input type="hidden" name="csrf" value=(ctx.csrf);
                    h2 { "How was it?" }
                    fieldset.rating {
                        legend { "Your rating" }
                        @for n in 1..=5 {
                            label.choice { input type="radio" name="rating" value=(n) required; " " (n) }
                        }
                    }
                    label { "Comment " span.muted { "(optional)" } textarea name="comment" maxlength="500" rows="2" {} }
                    button type="submit" { "Send rating" }
                }
            }
        }
    }
}

async fn review_fragment(
    State(state): State<AppState>, SignedIn { ctx, ref caller }: SignedIn,
    ApiPath(id): ApiPath<OrderId>,
) -> Result<Response, PageError> {
    let view = state.app.order(caller, id).await?;
    let review = state.app.review_of(caller, &view).await?;
    Ok(review_card(&ctx, caller, &view, review.as_ref()).into_response())
}

#[derive(Deserialize)]
struct ReviewForm {
    csrf: String,
    rating: Option<i64>,
    comment: Option<String>,
}

/// The order page's rating form.
async fn review(
    State(state): State<AppState>, SignedIn { ctx, ref caller }: SignedIn,
    ApiPath(id): ApiPath<OrderId>, Form(form): Form<ReviewForm>,
) -> Result<Response, PageError> {
    ctx.check_csrf(&form.csrf)?;
    let back = |flash: &str| Ok(see_other(&format!("/orders/{id}?flash={flash}")));
    match state
        .app
        .review_order(
            caller,
            id,
            form.rating.unwrap_or(0),
            form.comment.as_deref(),
        )
        .await
    {
        Ok(_) => back("reviewed"),
        Err(ordertrack_app::AppError::Conflict { .. }) => back("not_allowed"),
        Err(ordertrack_app::AppError::Invalid { .. }) => back("invalid"),
        Err(error) => Err(error.into()),
    }
}

/// The order page's cancel button. (Older pages also post the target
/// state as `to`; it is ignored: this form only ever cancels.)
#[derive(Deserialize)]
struct CancelForm {
    csrf: String,
    expected_version: Option<i64>,
}

async fn cancel(
    State(state): State<AppState>, SignedIn { ctx, ref caller }: SignedIn,
    ApiPath(id): ApiPath<OrderId>, Form(form): Form<CancelForm>,
) -> Result<Response, PageError> {
    ctx.check_csrf(&form.csrf)?;
    match state
        .app
        .customer_cancel(caller, id, form.expected_version)
        .await
    {
        Ok(_) => Ok(see_other(&format!("/orders/{id}?flash=cancelled"))),
        Err(ordertrack_app::AppError::Conflict { .. }) => {
            Ok(see_other(&format!("/orders/{id}?flash=conflict")))
        }
        Err(error) => Err(error.into()),
    }
}

#[derive(Deserialize)]
struct PageQuery {
    cursor: Option<String>,
}

fn orders_list(views: &[OrderView], next_cursor: Option<&str>, fragment_url: &str) -> Markup {
    html! {
        section #my-orders data-fragment=(fragment_url) {
            @if views.is_empty() { p.muted { "No orders yet. " a href="/" { "Find something good." } } }
            ul.order-list {
                @for view in views {
                    @let order = &view.order;
                    @let state = view.workflow.state(&order.status);
                    li.card.order-row data-order-id=(order.id) {
                        a href={ "/orders/" (order.id) } { strong { (order.number) } }
                        span.muted { (order.store_slug) }
                        (status_badge(&order.status, state.map(|s| s.label.as_str()).unwrap_or(&order.status), state.map(|s| s.icon.as_str()).unwrap_or("")))
                        span { (money(order.total_minor, order.currency.code())) }
                        span.muted { (time_tag(order.created_at)) }
                    }
                }
            }
            @if let Some(cursor) = next_cursor {
                p { a.button.secondary href={ "/orders?cursor=" (cursor) } { "Older orders" } }
            }
        }
    }
}

/// The caller's orders list (one page), as a refreshable fragment.
async fn my_orders_section(
    state: &AppState, caller: &ordertrack_app::Caller, cursor: Option<String>,
) -> Result<Markup, PageError> {
    let fragment = match &cursor {
        Some(cursor) => format!("/orders/list?cursor={}", super::encode_component(cursor)),
        None => "/orders/list".to_owned(),
    };
    let list = state
        .app
        .orders(
            caller,
            OrderListRequest {
                cursor,
                ..OrderListRequest::default()
            },
        )
        .await?;
    Ok(orders_list(
        &list.orders,
        list.next_cursor.as_deref(),
        &fragment,
    ))
}

async fn my_orders(
    State(state): State<AppState>, SignedIn { ctx, ref caller }: SignedIn,
    Query(query): Query<PageQuery>,
) -> Result<Response, PageError> {
    let position = state.app.event_position().await?;
    let list = my_orders_section(&state, caller, query.cursor).await?;
    let body = html! {
        div.page-head {
            h1 { "My orders" }
            (live_indicator())
        }
        div data-stream="/api/v1/me/events" data-last-event-id=(position) {}
        p { button.secondary type="button" data-push-toggle hidden { "Notify me" } }
        (list)
    };
    Ok(ctx.page(layout("My orders", Some(caller), &ctx.csrf, None, body)))
}

async fn my_orders_fragment(
    State(state): State<AppState>, SignedIn { ref caller, .. }: SignedIn,
    Query(query): Query<PageQuery>,
) -> Result<Response, PageError> {
    Ok(my_orders_section(&state, caller, query.cursor)
        .await?
        .into_response())
}

async fn tracking_page(
    State(state): State<AppState>, ctx: PageContext, ApiPath(token): ApiPath<String>,
) -> Result<Response, PageError> {
    let position = state.app.event_position().await?;
    let (view, history) = state.app.tracked_history(&token).await?;
    let body = html! {
        div.page-head {
            h1 { "Order " (view.order.number) }
            (live_indicator())
        }
        div data-stream={ "/api/v1/track/" (token) "/events" } data-last-event-id=(position) data-notify {}
        (tracker(&view, &history, &format!("/track/{token}/tracker")))
        p { a.button.secondary href={ "/track/" (token) "/receipt" } data-receipt-link { "Receipt" } }
        button.secondary type="button" data-notify-toggle hidden { "Notify me when it's ready" }
        button.secondary type="button" data-push-toggle data-push-tracking=(token) hidden { "Notify me" }
    };
    Ok(ctx.page(layout(
        &format!("Order {}", view.order.number),
        ctx.caller.as_ref(),
        &ctx.csrf,
        None,
        body,
    )))
}

async fn tracking_tracker(
    State(state): State<AppState>, ApiPath(token): ApiPath<String>,
) -> Result<Response, PageError> {
    let (view, history) = state.app.tracked_history(&token).await?;
    Ok(tracker(&view, &history, &format!("/track/{token}/tracker")).into_response())
}
