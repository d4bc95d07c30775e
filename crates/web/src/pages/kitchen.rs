//! The kitchen display: tickets per station, oldest first, with item taps,
//! bump and recall; and the expo view, where every station's items of an
//! order come together and the order is handed off only when all are ready.

use axum::Form;
use axum::extract::{Query, State};
use axum::response::{IntoResponse, Response};
use maud::{Markup, html};
use ordertrack_app::kitchen::KitchenBoard;
use ordertrack_app::orders::OrderView;
use ordertrack_domain::{ItemId, ItemStatus, OrderId, may_recall};
use serde::Deserialize;
use time::format_description::well_known::Rfc3339;

use super::layout::{due_tag, live_indicator};
use super::{PageContext, PageError, encode_component, layout, same_site_path, see_other};
use crate::AppState;
use crate::extract::ApiPath;
use crate::routes::Routes;

pub fn routes() -> Routes {
    Routes::new()
        .get("/kitchen/{slug}", |s, c, p, q| {
            show(s, c, p, q, View::KITCHEN)
        })
        .get("/kitchen/{slug}/tickets", |s, c, p, q| {
            show(s, c, p, q, View::KITCHEN.tickets_only())
        })
        .get("/kitchen/{slug}/expo", |s, c, p, q| {
            show(s, c, p, q, View::EXPO)
        })
        .get("/kitchen/{slug}/expo/tickets", |s, c, p, q| {
            show(s, c, p, q, View::EXPO.tickets_only())
        })
        .post("/kitchen/{slug}/orders/{id}/items/{item_id}", tap_item)
        .post("/kitchen/{slug}/orders/{id}/bump", |s, c, p, f| {
            order_action(s, c, p, f, OrderAction::Bump)
        })
        .post("/kitchen/{slug}/orders/{id}/handoff", |s, c, p, f| {
            order_action(s, c, p, f, OrderAction::HandOff)
        })
        .post("/kitchen/{slug}/orders/{id}/recall", |s, c, p, f| {
            order_action(s, c, p, f, OrderAction::Recall)
        })
}

#[derive(Deserialize, Default)]
struct KitchenQuery {
    station: Option<String>,
    recall: Option<String>,
}

impl KitchenQuery {
    fn station(&self) -> Option<&str> {
        self.station.as_deref().filter(|s| !s.is_empty())
    }

    fn suffix(&self) -> String {
        match self.station() {
            Some(station) => format!("?station={}", encode_component(station)),
            None => String::new(),
        }
    }
}

/// A kitchen screen: the board, and the last handed-off ticket when
/// recall is asked for.
struct Screen {
    board: KitchenBoard,
    recalled: Option<OrderView>,
}

async fn screen(
    state: &AppState, ctx: &PageContext, slug: &str, query: &KitchenQuery,
) -> Result<Screen, PageError> {
    let caller = ctx.require_caller()?;
    let board = state
        .app
        .kitchen_board(caller, slug, query.station())
        .await?;
    let recalled = match query.recall {
        Some(_) => state.app.last_handed_off(&board).await?,
        None => None,
    };
    Ok(Screen { board, recalled })
}

fn ticket(
    ctx: &PageContext, screen: &Screen, view: &OrderView, station: Option<&str>, expo: bool,
    recalled: bool,
) -> Markup {
    let order = &view.order;
    let board = &screen.board;
    let slug = &board.store.slug;
    let items: Vec<_> = order
        .items
        .iter()
        .filter(|item| expo || station.is_none_or(|s| item.station == s))
        .collect();
    let all_ready = order.items.iter().all(|i| i.status == ItemStatus::Ready);
    let station_ready = items.iter().all(|i| i.status == ItemStatus::Ready);
    let created = order.created_at.format(&Rfc3339).unwrap_or_default();
    // The version of the workflow this order runs (it may be older than
    // the board's).
    let workflow = &view.workflow;
    let state = workflow.state(&order.status);
    // At least a minute, so a new ticket is never late at once.
    let expected_minutes = workflow
        .expected_minutes_to_hand_off(order.fulfilment.kind)
        .map(|minutes| minutes.max(1));
    let back = if expo {
        format!("/kitchen/{slug}/expo")
    } else {
        format!(
            "/kitchen/{slug}{}",
            station
                .map(|s| format!("?station={}", encode_component(s)))
                .unwrap_or_default()
        )
    };
    html! {
        article.ticket.recalled[recalled] data-order-id=(order.id) data-version=(order.version) data-created-at=(created) data-expected-minutes=[expected_minutes] {
            header {
                h2 { (order.number) }
                span.age data-age { "" }
                span.muted { (state.map(|s| s.label.as_str()).unwrap_or(&order.status)) " · " (order.fulfilment.kind.as_str()) }
                @if let Some(eta) = &view.eta { (due_tag(eta, ordertrack_app::now())) }
                a.print-ticket href={ "/kitchen/" (slug) "/orders/" (order.id) "/ticket" (station.map(|s| format!("?station={}", encode_component(s))).unwrap_or_default()) } data-ticket-link { "Print ticket" }
            }
            @if let Some(notes) = &order.notes { p.note { (notes) } }
            @if expo {
                @let stations = ordertrack_domain::stations_of(&order.items);
                ul.stations {
                    @for s in &stations {
                        @let done = order.items.iter().filter(|i| &i.station == s).all(|i| i.status == ItemStatus::Ready);
                        li.done[done] data-station=(s) { (s) ": " @if done { "✓ done" } @else { "… in progress" } }
                    }
                }
            }
            ul.ticket-items {
                @for item in &items {
                    li {
                        form method="post" action={ "/kitchen/" (slug) "/orders/" (order.id) "/items/" (item.id) } data-enhance data-offline={ (item.name) " → " (item.status.next().map_or("ready", |s| s.as_str())) } {
                            input type="hidden" name="csrf" value=(ctx.csrf);
                            input type="hidden" name="back" value=(back);
                            button.item.{ "item-" (item.status.as_str()) } type="submit" disabled[recalled || item.status == ItemStatus::Ready] data-item-id=(item.id) data-item-status=(item.status.as_str()) {
                                span.qty { (item.quantity) "×" } " " (item.name)
                                @if expo { span.muted { " · " (item.station) } }
                                span.state { (match item.status { ItemStatus::Queued => "queued", ItemStatus::Preparing => "preparing", ItemStatus::Ready => "ready ✓" }) }
                            }
                        }
                        @if let Some(notes) = &item.notes { p.note { (notes) } }
                    }
                }
            }
            @if recalled && may_recall(workflow, order, board.role) {
                form method="post" action={ "/kitchen/" (slug) "/orders/" (order.id) "/recall" } data-enhance data-offline="Recall" {
                    input type="hidden" name="csrf" value=(ctx.csrf);
                    input type="hidden" name="back" value=(back);
                    button.bump type="submit" data-recall { "Recall to the kitchen" }
                }
            }
            @if !recalled {
                @if expo {
                    form method="post" action={ "/kitchen/" (slug) "/orders/" (order.id) "/handoff" } data-enhance data-offline="Hand off" {
                        input type="hidden" name="csrf" value=(ctx.csrf);
                        input type="hidden" name="back" value=(back);
                        button.bump type="submit" disabled[!all_ready] data-handoff { @if all_ready { "Hand off" } @else { "Waiting for every station" } }
                    }
                } @else {
                    form method="post" action={ "/kitchen/" (slug) "/orders/" (order.id) "/bump" } data-enhance data-offline="Bump" {
                        input type="hidden" name="csrf" value=(ctx.csrf);
                        input type="hidden" name="back" value=(back);
                        @if let Some(s) = station { input type="hidden" name="station" value=(s); }
                        button.bump type="submit" data-bump { @if station_ready { "Bump" } @else { "Bump (all ready)" } }
                    }
                }
            }
        }
    }
}

fn tickets(ctx: &PageContext, screen: &Screen, query: &KitchenQuery, expo: bool) -> Markup {
    let station = query.station();
    let url = if expo {
        format!("/kitchen/{}/expo/tickets", screen.board.store.slug)
    } else {
        let mut url = format!(
            "/kitchen/{}/tickets{}",
            screen.board.store.slug,
            query.suffix()
        );
        if query.recall.is_some() {
            url.push_str(if url.contains('?') {
                "&recall=1"
            } else {
                "?recall=1"
            });
        }
        url
    };
    html! {
        section #tickets.tickets data-fragment=(url) {
            @if let Some(view) = &screen.recalled {
                div.recall-slot { p.muted { "Recalled (last bumped)" } (ticket(ctx, screen, view, station, expo, true)) }
            }
            @if screen.board.tickets.is_empty() { p.muted.empty { "No tickets. " span aria-hidden="true" { "🎉" } } }
            @for view in &screen.board.tickets {
                (ticket(ctx, screen, view, station, expo, false))
            }
        }
    }
}

fn kitchen_page(
    ctx: &PageContext, screen: &Screen, query: &KitchenQuery, expo: bool, position: i64,
) -> Markup {
    let slug = &screen.board.store.slug;
    let station = query.station();
    let stream = match (expo, station) {
        (false, Some(s)) => format!(
            "/api/v1/stores/{slug}/events?station={}",
            encode_component(s)
        ),
        _ => format!("/api/v1/stores/{slug}/events"),
    };
    html! {
        div.page-head.kitchen-head {
            h1 { @if expo { "Expo" } @else { "Kitchen" } " · " (screen.board.store.name) @if let Some(s) = station { " · " (s) } }
            (live_indicator())
        }
        nav.tabs aria-label="Stations" {
            a.tab.active[!expo && station.is_none()] href={ "/kitchen/" (slug) } { "All stations" }
            @for s in &screen.board.stations {
                a.tab.active[!expo && station == Some(s.as_str())] href={ "/kitchen/" (slug) "?station=" (s) } { (s) }
            }
            a.tab.active[expo] href={ "/kitchen/" (slug) "/expo" } { "Expo" }
            @if !expo { a.tab href={ "/kitchen/" (slug) (if query.recall.is_some() { query.suffix() } else if station.is_some() { format!("{}&recall=1", query.suffix()) } else { "?recall=1".to_owned() }) } { @if query.recall.is_some() { "Hide recall" } @else { "Recall last bumped" } } }
            button.secondary type="button" data-chime-toggle hidden { "Chime: off" }
        }
        div data-stream=(stream) data-last-event-id=(position) data-chime="order_created" {}
        (tickets(ctx, screen, query, expo))
    }
}

/// Which screen a route shows: the kitchen display (one station or all)
/// or the expo view, whole or just its tickets (for live refresh).
#[derive(Clone, Copy)]
struct View {
    expo: bool,
    tickets_only: bool,
}

impl View {
    const KITCHEN: View = View {
        expo: false,
        tickets_only: false,
    };
    const EXPO: View = View {
        expo: true,
        tickets_only: false,
    };

    fn tickets_only(self) -> View {
        View {
            tickets_only: true,
            ..self
        }
    }
}

/// The handler behind the four screen routes; each names its view. The
/// expo view has no station and no recall slot: it ignores the query.
async fn show(
    State(state): State<AppState>, ctx: PageContext, ApiPath(slug): ApiPath<String>,
    Query(query): Query<KitchenQuery>, view: View,
) -> Result<Response, PageError> {
    let query = if view.expo {
        KitchenQuery::default()
    } else {
        query
    };
    let expo = view.expo;
    if view.tickets_only {
        let screen = screen(&state, &ctx, &slug, &query).await?;
        return Ok(tickets(&ctx, &screen, &query, expo).into_response());
    }
    let position = state.app.event_position().await?;
    let screen = screen(&state, &ctx, &slug, &query).await?;
    let body = kitchen_page(&ctx, &screen, &query, expo, position);
    let title = if expo { "Expo" } else { "Kitchen" };
    Ok(ctx.page(layout(
        title,
        ctx.caller.as_ref(),
        &ctx.csrf,
        None,
        html! { div.kitchen { (body) } },
    )))
}

#[derive(Deserialize)]
struct KitchenForm {
    csrf: String,
    back: Option<String>,
    station: Option<String>,
    /// The version the screen showed: sent by a tap replayed after the
    /// connection came back, so a ticket moved meanwhile is not changed
    /// blindly (a live tap leaves it out and acts on the current order).
    expected_version: Option<i64>,
}

fn back_to(form: &KitchenForm, slug: &str) -> Response {
    let fallback = format!("/kitchen/{slug}");
    let target = same_site_path(form.back.as_deref())
        .filter(|b| b.starts_with(&fallback))
        .unwrap_or(&fallback);
    see_other(target)
}

/// What a tap on a whole ticket asks for.
#[derive(Clone, Copy)]
enum OrderAction {
    Bump,
    HandOff,
    Recall,
}

/// What a tap on the kitchen screen asks for.
enum KitchenAction {
    /// One item one step further.
    Item(ItemId),
    /// The whole ticket.
    Order(OrderAction),
}

/// Signs, checks and performs one kitchen action, then returns to the
/// screen it came from.
async fn act(
    state: &AppState, ctx: &PageContext, slug: &str, id: OrderId, form: &KitchenForm,
    action: KitchenAction,
) -> Result<Response, PageError> {
    let caller = ctx.require_caller()?;
    ctx.check_csrf(&form.csrf)?;
    let app = &state.app;
    let seen = form.expected_version;
    match action {
        KitchenAction::Item(item_id) => drop(app.advance_item(caller, id, item_id, seen).await?),
        KitchenAction::Order(OrderAction::Bump) => {
            drop(app.bump(caller, id, form.station.as_deref(), seen).await?)
        }
        KitchenAction::Order(OrderAction::HandOff) => drop(app.hand_off(caller, id, seen).await?),
        KitchenAction::Order(OrderAction::Recall) => drop(app.recall(caller, id, seen).await?),
    }
    Ok(back_to(form, slug))
}

async fn tap_item(
    State(state): State<AppState>, ctx: PageContext,
    ApiPath((slug, id, item_id)): ApiPath<(String, OrderId, ItemId)>,
    Form(form): Form<KitchenForm>,
) -> Result<Response, PageError> {
    act(&state, &ctx, &slug, id, &form, KitchenAction::Item(item_id)).await
}

/// The handler behind the bump, hand-off and recall forms; each route
/// names its action.
async fn order_action(
    State(state): State<AppState>, ctx: PageContext,
    ApiPath((slug, id)): ApiPath<(String, OrderId)>, Form(form): Form<KitchenForm>,
    action: OrderAction,
) -> Result<Response, PageError> {
    act(&state, &ctx, &slug, id, &form, KitchenAction::Order(action)).await
}
