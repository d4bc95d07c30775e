//! The seller dashboard: a store's orders with live status tabs and search,
//! and the order detail with one button per step this person may take.

use axum::Form;
use axum::extract::{Query, State};
use axum::response::{IntoResponse, Response};
use maud::{Markup, html};
use ordertrack_app::orders::{Dashboard, OrderListRequest, StaffOrder};
use ordertrack_app::{AppError, ErrorCode};
use ordertrack_domain::{
    Actor, FulfilmentKind, Order, OrderId, PaymentRequest, PaymentStatus, Role, UserId,
    may_mark_order_paid, may_mark_paid, may_refund,
};
use ordertrack_store::{PrintJob, PrintKind, PrintStatus};
use serde::Deserialize;

use super::layout::{Flash, due_tag, live_indicator, money, payment_badge, status_badge, time_tag};
use super::{
    CsrfForm, FlashQuery, PageContext, PageError, SignedIn, encode_component, layout, see_other,
};
use crate::AppState;
use crate::extract::ApiPath;
use crate::routes::Routes;
use ordertrack_app::Caller;

pub fn routes() -> Routes {
    Routes::new()
        .get("/dashboard/{slug}", dashboard)
        .get("/dashboard/{slug}/list", dashboard_list)
        .get("/dashboard/{slug}/orders/{id}", detail)
        .get("/dashboard/{slug}/orders/{id}/panel", detail_panel)
        .post("/dashboard/{slug}/orders/{id}/transition", transition)
        .post("/dashboard/{slug}/orders/{id}/payment", payment)
        .post("/dashboard/{slug}/orders/{id}/assignment", assignment)
        .get("/dashboard/{slug}/orders/{id}/printing", printing)
        .post(
            "/dashboard/{slug}/orders/{id}/print-jobs/{job_id}/reprint",
            reprint,
        )
        .post("/dashboard/{slug}/ordering", ordering)
}

#[derive(Deserialize, Default)]
struct ListQuery {
    status: Option<String>,
    q: Option<String>,
    cursor: Option<String>,
    flash: Option<String>,
}

async fn board(
    state: &AppState, ctx: &PageContext, slug: &str, query: &ListQuery,
) -> Result<Dashboard, PageError> {
    let caller = ctx.require_caller()?;
    Ok(state
        .app
        .dashboard(
            caller,
            OrderListRequest {
                store: Some(slug.to_owned()),
                status: query.status.clone().filter(|s| !s.is_empty()),
                search: query.q.clone(),
                assigned_to_me: false,
                cursor: query.cursor.clone(),
                limit: Some(50),
            },
        )
        .await?)
}

fn list_url(slug: &str, query: &ListQuery) -> String {
    let mut url = format!("/dashboard/{slug}/list?");
    if let Some(status) = &query.status {
        url.push_str(&format!("status={}&", encode_component(status)));
    }
    if let Some(q) = &query.q {
        url.push_str(&format!("q={}&", encode_component(q)));
    }
    url
}

/// The one-click "Mark paid" button of an unpaid order (a plain form post;
/// `back` says where to return: the list or the order).
fn mark_paid_form(csrf: &str, slug: &str, order: &Order, back: &str) -> Markup {
    paid_button(csrf, slug, order, back, "small", "Mark paid")
}

/// A form whose one button marks `order` paid, labelled `label`.
fn paid_button(
    csrf: &str, slug: &str, order: &Order, back: &str, class: &str, label: &str,
) -> Markup {
    html! {
        form.inline method="post" action={ "/dashboard/" (slug) "/orders/" (order.id) "/payment" } data-enhance data-offline="Mark paid" {
            input type="hidden" name="csrf" value=(csrf);
            input type="hidden" name="expected_version" value=(order.version);
            input type="hidden" name="status" value="paid";
            input type="hidden" name="back" value=(back);
            button class=(class) type="submit" data-mark-paid=(order.id) { (label) }
        }
    }
}

/// The driver's list, made for a phone: one card per delivery with the
/// address and the customer's note, and one-tap buttons for the steps the
/// driver takes ("Out for delivery", "Delivered") and for the cash taken at
/// the door ("Paid (cash)"). Unassigned orders (where drivers take them
/// themselves) have a "Take this delivery" button instead.
fn driver_list(board: &Dashboard, query: &ListQuery, caller: UserId, csrf: &str) -> Markup {
    let slug = &board.store.slug;
    let me = Actor {
        id: caller,
        role: board.role,
    };
    html! {
        section #board.driver-board data-fragment=(list_url(slug, query)) {
            @if board.list.orders.is_empty() { p.muted { "No deliveries for you right now." } }
            @for view in &board.list.orders {
                @let order = &view.order;
                @let state = view.workflow.state(&order.status);
                @let mine = order.driver.as_ref().is_some_and(|d| d.id == caller);
                article.card.delivery data-order-id=(order.id) data-version=(order.version) {
                    header.delivery-head {
                        strong { (order.number) }
                        (status_badge(&order.status, state.map(|s| s.label.as_str()).unwrap_or(&order.status), state.map(|s| s.icon.as_str()).unwrap_or("")))
                    }
                    p.address data-address { "📍 " (order.fulfilment.address.as_deref().unwrap_or("")) }
                    p { (order.customer_name) " · " (money(order.total_minor, order.currency.code())) " · " (order.payment.method.label()) " " (payment_badge(&order.payment)) }
                    @if let Some(notes) = &order.notes { p.note data-customer-note { "“" (notes) "”" } }
                    div.actions.big {
                        @if mine {
                            @for step in view.workflow.next_states(board.role, &order.status, order.fulfilment.kind) {
                                @if !view.workflow.is_cancelled(&step.key) {
                                    form.inline method="post" action={ "/dashboard/" (slug) "/orders/" (order.id) "/transition" } data-enhance data-offline=(step.label) {
                                        input type="hidden" name="csrf" value=(csrf);
                                        input type="hidden" name="expected_version" value=(order.version);
                                        input type="hidden" name="back" value="list";
                                        button type="submit" name="to" value=(step.key) data-transition=(step.key) {
                                            span aria-hidden="true" { (step.icon) } " " (step.label)
                                        }
                                    }
                                }
                            }
                            @if order.payment.status == PaymentStatus::Unpaid && may_mark_order_paid(me, order) {
                                (paid_button(csrf, slug, order, "list", "secondary", &format!("Paid ({})", order.payment.method.label().to_lowercase())))
                            }
                        } @else if order.driver.is_none() {
                            form.inline method="post" action={ "/dashboard/" (slug) "/orders/" (order.id) "/assignment" } data-enhance {
                                input type="hidden" name="csrf" value=(csrf);
                                input type="hidden" name="expected_version" value=(order.version);
                                input type="hidden" name="driver" value=(caller);
                                input type="hidden" name="back" value="list";
                                button type="submit" data-take=(order.id) { "Take this delivery" }
                            }
                        }
                    }
                }
            }
        }
    }
}

fn board_list(board: &Dashboard, query: &ListQuery, csrf: &str) -> Markup {
    let slug = &board.store.slug;
    let total: i64 = board.counts.iter().map(|(_, n)| n).sum();
    let current = query.status.clone().unwrap_or_default();
    let now = ordertrack_app::now();
    html! {
        section #board data-fragment=(list_url(slug, query)) {
            nav.tabs aria-label="Filter by status" {
                a.tab.active[current.is_empty()] href={ "/dashboard/" (slug) } aria-current=[current.is_empty().then_some("page")] {
                    "All " span.count data-count="all" { (total) }
                }
                @for state in board.workflow.states() {
                    @let count = board.counts.iter().find(|(s, _)| s == &state.key).map_or(0, |(_, n)| *n);
                    a.tab.active[current == state.key] href={ "/dashboard/" (slug) "?status=" (state.key) } aria-current=[(current == state.key).then_some("page")] {
                        span aria-hidden="true" { (state.icon) } " " (state.label) " " span.count data-count=(state.key) { (count) }
                    }
                }
            }
            @if board.list.orders.is_empty() { p.muted { "No orders here." } }
            table.orders {
                thead { tr { th { "Order" } th { "Customer" } th { "Status" } th { "Total" } th { "Payment" } th { "Type" } th { "Placed" } th { "Due" } } }
                tbody {
                    @for view in &board.list.orders {
                        @let order = &view.order;
                        @let state = view.workflow.state(&order.status);
                        tr data-order-id=(order.id) data-version=(order.version) {
                            td {
                                a href={ "/dashboard/" (slug) "/orders/" (order.id) } { strong { (order.number) } }
                                " " a.muted href={ "/orders/" (order.id) "/receipt" } data-receipt-link { "receipt" }
                            }
                            td { (order.customer_name) }
                            td { (status_badge(&order.status, state.map(|s| s.label.as_str()).unwrap_or(&order.status), state.map(|s| s.icon.as_str()).unwrap_or(""))) }
                            td { (money(order.total_minor, order.currency.code())) }
                            td {
                                (payment_badge(&order.payment))
                                @if order.payment.status == PaymentStatus::Unpaid && may_mark_paid(board.role, order.payment.method) {
                                    " " (mark_paid_form(csrf, slug, order, "list"))
                                }
                            }
                            td { (order.fulfilment.kind.as_str()) }
                            td { (time_tag(order.created_at)) }
                            td { @if let Some(eta) = &view.eta { (due_tag(eta, now)) } }
                        }
                    }
                }
            }
            @if let Some(cursor) = &board.list.next_cursor {
                p { a.button.secondary href={ "/dashboard/" (slug) "?cursor=" (cursor) (query.status.as_ref().map(|s| format!("&status={s}")).unwrap_or_default()) } { "Older orders" } }
            }
        }
    }
}

async fn dashboard(
    State(state): State<AppState>, ctx: PageContext, ApiPath(slug): ApiPath<String>,
    Query(query): Query<ListQuery>,
) -> Result<Response, PageError> {
    let position = state.app.event_position().await?;
    let board = board(&state, &ctx, &slug, &query).await?;
    let caller = ctx.require_caller()?;
    let (found, role) = state.app.store_settings(caller, &slug).await?;
    let intake = ordertrack_app::stores::intake(&found.settings, ordertrack_app::now());
    let may_pause = role.manages_catalog();
    let body = html! {
        div.page-head {
            h1 { (board.store.name) " — orders" @if board.role == Role::Driver { " (deliveries)" } }
            (live_indicator())
        }
        section.card.intake data-intake {
            p { strong { (intake) } }
            @if may_pause {
                form.inline method="post" action={ "/dashboard/" (slug) "/ordering" } {
                    input type="hidden" name="csrf" value=(ctx.csrf);
                    @if found.settings.accepting_orders {
                        input type="hidden" name="accepting" value="false";
                        button.secondary type="submit" { "Pause new orders" }
                    } @else {
                        input type="hidden" name="accepting" value="true";
                        button type="submit" { "Resume" }
                    }
                }
            }
        }
        div data-stream={ "/api/v1/stores/" (slug) "/events" } data-last-event-id=(position) data-chime="order_created" {}
        form.search method="get" action={ "/dashboard/" (slug) } role="search" {
            @if let Some(status) = &query.status { input type="hidden" name="status" value=(status); }
            label { span.visually-hidden { "Search by number or customer" }
                input type="search" name="q" value=(query.q.clone().unwrap_or_default()) placeholder="Order number or customer";
            }
            button type="submit" { "Search" }
            button.secondary type="button" data-chime-toggle hidden { "Sound on new orders: off" }
        }
        (role_list(&board, &query, caller, &ctx.csrf))
    };
    Ok(ctx.page(layout(
        "Dashboard",
        ctx.caller.as_ref(),
        &ctx.csrf,
        Flash::from_code(query.flash.as_deref()),
        body,
    )))
}

async fn dashboard_list(
    State(state): State<AppState>, ctx: PageContext, ApiPath(slug): ApiPath<String>,
    Query(query): Query<ListQuery>,
) -> Result<Response, PageError> {
    let board = board(&state, &ctx, &slug, &query).await?;
    let caller = ctx.require_caller()?;
    Ok(role_list(&board, &query, caller, &ctx.csrf).into_response())
}

/// The dashboard's list for the caller's role: a driver's cards, or the
/// table of orders.
fn role_list(board: &Dashboard, query: &ListQuery, caller: &Caller, csrf: &str) -> Markup {
    if board.role == Role::Driver {
        driver_list(board, query, caller.user.id, csrf)
    } else {
        board_list(board, query, csrf)
    }
}

async fn load_detail(
    state: &AppState, ctx: &PageContext, slug: &str, id: OrderId,
) -> Result<StaffOrder, PageError> {
    let caller = ctx.require_caller()?;
    Ok(state.app.staff_order(caller, slug, id).await?)
}

fn panel(ctx: &PageContext, slug: &str, detail: &StaffOrder) -> Markup {
    let StaffOrder {
        view,
        history,
        role,
        ..
    } = detail;
    let role = *role;
    let order = &view.order;
    let workflow = &view.workflow;
    // A driver moves only the orders assigned to them.
    let theirs = role != Role::Driver
        || ctx.caller.as_ref().is_some_and(|caller| {
            order
                .driver
                .as_ref()
                .is_some_and(|d| d.id == caller.user.id)
        });
    let next = if theirs {
        workflow.next_states(role, &order.status, order.fulfilment.kind)
    } else {
        Vec::new()
    };
    let (cancels, steps): (Vec<_>, Vec<_>) = next
        .into_iter()
        .partition(|s| workflow.is_cancelled(&s.key));
    let action = format!("/dashboard/{slug}/orders/{}/transition", order.id);
    html! {
        div #panel data-fragment={ "/dashboard/" (slug) "/orders/" (order.id) "/panel" } data-version=(order.version) {
            section.card {
                h2 { "Move this order" }
                @if steps.is_empty() && cancels.is_empty() {
                    p.muted { "Nothing for you to do on this order right now." }
                }
                @if !steps.is_empty() {
                    form method="post" action=(action) data-enhance data-offline="Move" {
                        input type="hidden" name="csrf" value=(ctx.csrf);
                        input type="hidden" name="expected_version" value=(order.version);
                        label { "Note " span.muted { "(optional, the customer sees it)" } input type="text" name="note" maxlength="500"; }
                        div.actions {
                            @for step in &steps {
                                button type="submit" name="to" value=(step.key) data-transition=(step.key) {
                                    span aria-hidden="true" { (step.icon) } " " (step.label)
                                }
                            }
                        }
                    }
                }
                @for cancel in &cancels {
                    form method="post" action=(action) data-enhance data-confirm="Cancel this order?" {
                        input type="hidden" name="csrf" value=(ctx.csrf);
                        input type="hidden" name="expected_version" value=(order.version);
                        input type="hidden" name="to" value=(cancel.key);
                        label { "Reason for cancelling" input type="text" name="note" maxlength="500" required; }
                        button.danger type="submit" data-transition=(cancel.key) { "Cancel order" }
                    }
                }
            }
            (payment_card(ctx, slug, order, role))
            (driver_card(ctx, slug, detail))
            (super::customer::tracker(view, history, &format!("/dashboard/{slug}/orders/{}/panel", order.id)))
        }
    }
}

/// A delivery's driver, and for counter staff the "Assign driver" select
/// (one of the store's drivers, or none).
fn driver_card(ctx: &PageContext, slug: &str, detail: &StaffOrder) -> Markup {
    let order = &detail.view.order;
    if order.fulfilment.kind != FulfilmentKind::Delivery {
        return html! {};
    }
    let current = order.driver.as_ref().map(|d| d.id);
    html! {
        section.card data-driver-card {
            h2 { "Driver" }
            p data-driver {
                @match &order.driver {
                    Some(driver) => { strong { (driver.name) } }
                    None => { span.muted { "No driver assigned yet." } }
                }
            }
            @if !detail.drivers.is_empty() {
                form.inline method="post" action={ "/dashboard/" (slug) "/orders/" (order.id) "/assignment" } data-enhance {
                    input type="hidden" name="csrf" value=(ctx.csrf);
                    input type="hidden" name="expected_version" value=(order.version);
                    label { "Assign driver "
                        select name="driver" data-assign-driver {
                            option value="" selected[current.is_none()] { "— none —" }
                            @for driver in &detail.drivers {
                                option value=(driver.id) selected[current == Some(driver.id)] { (driver.name) }
                            }
                        }
                    }
                    button.small type="submit" { "Assign" }
                }
            }
        }
    }
}

/// The order's payment, with what the caller may record: "Mark paid" while
/// unpaid, a refund once paid (managers and owners).
fn payment_card(ctx: &PageContext, slug: &str, order: &Order, role: Role) -> Markup {
    let payment = &order.payment;
    let action = format!("/dashboard/{slug}/orders/{}/payment", order.id);
    let currency = order.currency.code();
    html! {
        section.card data-payment-card {
            h2 { "Payment" }
            p {
                (payment.method.label()) " · " (payment_badge(payment))
                @if let Some(at) = payment.paid_at { " · paid " (time_tag(at)) }
                @if payment.refunded_minor > 0 { " · refunded " (money(payment.refunded_minor, currency)) }
            }
            @if payment.status == PaymentStatus::Unpaid && ctx.caller.as_ref().is_some_and(|caller| may_mark_order_paid(Actor { id: caller.user.id, role }, order)) {
                (mark_paid_form(&ctx.csrf, slug, order, "order"))
            }
            @if payment.status.is_paid() && may_refund(role) {
                form method="post" action=(action) data-enhance data-confirm="Refund this amount?" {
                    input type="hidden" name="csrf" value=(ctx.csrf);
                    input type="hidden" name="expected_version" value=(order.version);
                    input type="hidden" name="status" value="refunded";
                    input type="hidden" name="back" value="order";
                    label { "Refund (in minor units, e.g. cents) "
                        input type="number" name="amount_minor" min="1" max=(order.total_minor - payment.refunded_minor) required;
                    }
                    label { "Reason " input type="text" name="reason" maxlength="500" required; }
                    button.danger type="submit" { "Refund" }
                }
            }
        }
    }
}

/// What was printed of the order: each ticket and receipt with its status
/// (printed, failed with the reason, queued) and a "Reprint" button. It
/// refreshes itself while the page is open: printing happens after the
/// change that triggers it, and a job's progress is no order event.
fn printing_card(
    ctx: &PageContext, slug: &str, order: OrderId, role: Role, jobs: &[PrintJob],
) -> Markup {
    let base = format!("/dashboard/{slug}/orders/{order}");
    html! {
        section.card #printing data-fragment={ (base) "/printing" } data-poll="3000" {
            h2 { "Printing" }
            @if jobs.is_empty() {
                p.muted { "Nothing sent to a printer yet." }
            }
            ul.print-jobs {
                @for job in jobs {
                    li data-print-job=(job.id) data-print-status=(job.status.as_str()) {
                        @match (job.kind, &job.station) {
                            (PrintKind::Ticket, Some(station)) => { "Ticket (" (station) ")" }
                            (PrintKind::Ticket, None) => { "Ticket" }
                            (PrintKind::Receipt, _) => { "Receipt" }
                        }
                        " on " strong { (job.printer_name) } " — "
                        @match job.status {
                            PrintStatus::Printed => {
                                span.badge.print-printed { "printed" }
                                @if let Some(at) = job.printed_at { " " (time_tag(at)) }
                            }
                            PrintStatus::Queued => { span.badge.print-queued { "queued" } }
                            PrintStatus::Failed => {
                                span.badge.print-failed { "failed" } " "
                                span.print-error data-print-error { (job.last_error.as_deref().unwrap_or("")) }
                                @match job.next_attempt_at {
                                    Some(at) => { " · next try " (time_tag(at)) }
                                    None => { " · gave up after " (job.attempts) " attempts" }
                                }
                            }
                        }
                        @if role != Role::Driver {
                            " "
                            form.inline method="post" action={ (base) "/print-jobs/" (job.id) "/reprint" } {
                                input type="hidden" name="csrf" value=(ctx.csrf);
                                button.small.secondary type="submit" data-reprint=(job.id) { "Reprint" }
                            }
                        }
                    }
                }
            }
        }
    }
}

async fn printing(
    State(state): State<AppState>, SignedIn { ctx, ref caller }: SignedIn,
    ApiPath((slug, id)): ApiPath<(String, OrderId)>,
) -> Result<Response, PageError> {
    let (role, jobs) = state.app.print_jobs(caller, Some(&slug), id).await?;
    Ok(printing_card(&ctx, &slug, id, role, &jobs).into_response())
}

/// The printing card's "Reprint": a fresh job like the one pressed.
async fn reprint(
    State(state): State<AppState>, SignedIn { ctx, ref caller }: SignedIn,
    ApiPath((slug, id, job)): ApiPath<(String, OrderId, i64)>, Form(form): Form<CsrfForm>,
) -> Result<Response, PageError> {
    ctx.check_csrf(&form.csrf)?;
    state.app.reprint(caller, Some(&slug), id, job).await?;
    Ok(see_other(&format!(
        "/dashboard/{slug}/orders/{id}?flash=reprint"
    )))
}

async fn detail(
    State(state): State<AppState>, ctx: PageContext,
    ApiPath((slug, id)): ApiPath<(String, OrderId)>, Query(query): Query<FlashQuery>,
) -> Result<Response, PageError> {
    let position = state.app.event_position().await?;
    let detail = load_detail(&state, &ctx, &slug, id).await?;
    let order = &detail.view.order;
    let jobs = state.app.print_jobs_of(order.id).await?;
    let body = html! {
        div.page-head {
            h1 { "Order " (order.number) }
            (live_indicator())
        }
        p {
            a href={ "/dashboard/" (slug) } { "← All orders" }
            " · " a href={ "/orders/" (order.id) "/receipt" } data-receipt-link { "Print receipt" }
        }
        div data-stream={ "/api/v1/orders/" (order.id) "/events" } data-last-event-id=(position) {}
        section.card {
            h2 { "Customer" }
            p { strong { (order.customer_name) } }
            p {
                @match order.fulfilment.kind {
                    FulfilmentKind::Pickup => { "Pickup" }
                    FulfilmentKind::Delivery => { "Delivery to " (order.fulfilment.address.as_deref().unwrap_or("")) }
                }
            }
            @if let Some(notes) = &order.notes { p { "Notes: " (notes) } }
            table.lines {
                @for item in &order.items {
                    tr {
                        td { (item.quantity) " × " (item.name) @if let Some(n) = &item.notes { br; span.muted { (n) } } }
                        td { (item.station) }
                        td { (money(item.unit_price_minor * i64::from(item.quantity), order.currency.code())) }
                    }
                }
                tr { th colspan="2" { "Total" } th { (money(order.total_minor, order.currency.code())) } }
            }
        }
        (panel(&ctx, &slug, &detail))
        (printing_card(&ctx, &slug, order.id, detail.role, &jobs))
    };
    Ok(ctx.page(layout(
        &format!("Order {}", order.number),
        ctx.caller.as_ref(),
        &ctx.csrf,
        Flash::from_code(query.flash.as_deref()),
        body,
    )))
}

async fn detail_panel(
    State(state): State<AppState>, ctx: PageContext,
    ApiPath((slug, id)): ApiPath<(String, OrderId)>,
) -> Result<Response, PageError> {
    let detail = load_detail(&state, &ctx, &slug, id).await?;
    Ok(panel(&ctx, &slug, &detail).into_response())
}

#[derive(Deserialize)]
struct TransitionForm {
    csrf: String,
    to: String,
    expected_version: Option<i64>,
    note: Option<String>,
    /// `list`: back to the dashboard (the driver's one-tap buttons);
    /// otherwise to the order.
    back: Option<String>,
}

/// Where a dashboard form returns to: the list (`back=list`) or the order,
/// with a flash message.
fn back_to(slug: &str, id: OrderId, back: Option<&str>, flash: &str) -> Response {
    match back {
        Some("list") => see_other(&format!("/dashboard/{slug}?flash={flash}")),
        _ => see_other(&format!("/dashboard/{slug}/orders/{id}?flash={flash}")),
    }
}

async fn transition(
    State(state): State<AppState>, SignedIn { ctx, ref caller }: SignedIn,
    ApiPath((slug, id)): ApiPath<(String, OrderId)>, Form(form): Form<TransitionForm>,
) -> Result<Response, PageError> {
    ctx.check_csrf(&form.csrf)?;
    let back = |flash: &str| back_to(&slug, id, form.back.as_deref(), flash);
    match state
        .app
        .staff_transition(
            caller,
            &slug,
            id,
            &form.to,
            form.note,
            form.expected_version,
        )
        .await
    {
        Ok(_) => Ok(back("moved")),
        Err(AppError::Conflict { code, .. }) => Ok(back(match code {
            ErrorCode::VersionConflict => "conflict",
            ErrorCode::ItemsNotReady => "items_not_ready",
            ErrorCode::PaymentRequired => "payment_required",
            _ => "not_allowed",
        })),
        Err(error) => Err(error.into()),
    }
}

#[derive(Deserialize)]
struct PaymentForm {
    csrf: String,
    /// `paid` or `refunded`.
    status: String,
    expected_version: Option<i64>,
    amount_minor: Option<i64>,
    reason: Option<String>,
    /// `list`: back to the dashboard; otherwise to the order.
    back: Option<String>,
}

/// The dashboard's "Mark paid" and refund buttons.
async fn payment(
    State(state): State<AppState>, SignedIn { ctx, ref caller }: SignedIn,
    ApiPath((slug, id)): ApiPath<(String, OrderId)>, Form(form): Form<PaymentForm>,
) -> Result<Response, PageError> {
    ctx.check_csrf(&form.csrf)?;
    let back = |flash: &str| back_to(&slug, id, form.back.as_deref(), flash);
    let request = match (form.status.as_str(), form.amount_minor) {
        ("paid", _) => PaymentRequest::Paid { note: None },
        ("refunded", Some(amount_minor)) => PaymentRequest::Refund {
            amount_minor,
            reason: form.reason.clone().unwrap_or_default(),
        },
        _ => return Ok(back("invalid")),
    };
    match state
        .app
        .staff_set_payment(caller, &slug, id, request, form.expected_version)
        .await
    {
        Ok(view) if view.order.payment.status == PaymentStatus::Paid => Ok(back("paid")),
        Ok(_) => Ok(back("refunded")),
        Err(error) => refused_flash(error).map(back),
    }
}

/// The flash a refused change of an order page comes back with: someone
/// else changed the order first, or a rule refuses it; anything else is an
/// error page.
fn refused_flash(error: AppError) -> Result<&'static str, PageError> {
    match error {
        AppError::Conflict {
            code: ErrorCode::VersionConflict,
            ..
        } => Ok("conflict"),
        AppError::Conflict { .. } => Ok("not_allowed"),
        AppError::Invalid { .. } => Ok("invalid"),
        error => Err(error.into()),
    }
}

#[derive(Deserialize)]
struct AssignmentForm {
    csrf: String,
    /// A driver's user id; empty: unassign.
    driver: String,
    expected_version: Option<i64>,
    /// `list`: back to the dashboard; otherwise to the order.
    back: Option<String>,
}

/// The order page's "Assign driver" select and the driver's "Take this
/// delivery".
async fn assignment(
    State(state): State<AppState>, SignedIn { ctx, ref caller }: SignedIn,
    ApiPath((slug, id)): ApiPath<(String, OrderId)>, Form(form): Form<AssignmentForm>,
) -> Result<Response, PageError> {
    ctx.check_csrf(&form.csrf)?;
    let back = |flash: &str| back_to(&slug, id, form.back.as_deref(), flash);
    let driver = match form.driver.trim() {
        "" => None,
        text => match text.parse::<i64>() {
            Ok(raw) => Some(UserId::new(raw)),
            Err(_) => return Ok(back("invalid")),
        },
    };
    match state
        .app
        .staff_assign_driver(caller, &slug, id, driver, form.expected_version)
        .await
    {
        Ok(_) if driver.is_some() => Ok(back("assigned")),
        Ok(_) => Ok(back("unassigned")),
        Err(error) => refused_flash(error).map(back),
    }
}

#[derive(Deserialize)]
struct OrderingForm {
    csrf: String,
    accepting: bool,
}

/// The dashboard's one-click "Pause new orders" / "Resume".
async fn ordering(
    State(state): State<AppState>, SignedIn { ctx, ref caller }: SignedIn,
    ApiPath(slug): ApiPath<String>, Form(form): Form<OrderingForm>,
) -> Result<Response, PageError> {
    ctx.check_csrf(&form.csrf)?;
    let input = ordertrack_app::stores::SettingsInput {
        accepting_orders: Some(form.accepting),
        ..Default::default()
    };
    state
        .app
        .update_store_settings(caller, &slug, input)
        .await?;
    let flash = if form.accepting { "resumed" } else { "paused" };
    Ok(see_other(&format!("/dashboard/{slug}?flash={flash}")))
}
