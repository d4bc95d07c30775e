//! Paper: an order's receipt (customer, staff, guest with the tracking
//! link) and a station's kitchen ticket, as pages a browser prints.
//!
//! Each is a page of its own (no site header) styled by
//! `assets/receipt.css`, whose `@media print` rules leave only the sheet.
//! `?paper=80mm|58mm|a4` (default `80mm`) picks the printed page size
//! through a named `@page`; any other value is refused with a friendly
//! 422 page (`invalid_query`) rather than printed on a guessed size. A
//! kitchen ticket is always 80 mm. Times are on the store's wall clock.
//! A guest's receipt, like the tracking page, names nobody: no customer,
//! no address, no notes.

use axum::extract::{Query, State};
use axum::response::Response;
use maud::{DOCTYPE, Markup, html};
use ordertrack_app::receipts::{KitchenTicket, Printout, fulfilment_text, payment_line};
use ordertrack_app::{AppError, ErrorCode};
use ordertrack_domain::OrderId;
use serde::Deserialize;

use super::layout::{head, money};
use super::{PageContext, PageError, asset, encode_component};
use crate::AppState;
use crate::extract::ApiPath;
use crate::routes::Routes;

pub fn routes() -> Routes {
    Routes::new()
        .get("/static/receipt.css", stylesheet)
        .get("/orders/{id}/receipt", receipt)
        .get("/track/{token}/receipt", tracked_receipt)
        .get("/kitchen/{slug}/orders/{id}/ticket", kitchen_ticket)
}

async fn stylesheet() -> Response {
    asset(
        "text/css; charset=utf-8",
        include_str!("../../assets/receipt.css"),
    )
}

/// The paper a receipt is printed on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Paper {
    Roll80,
    Roll58,
    A4,
}

impl Paper {
    const ALL: [Paper; 3] = [Paper::Roll80, Paper::Roll58, Paper::A4];

    /// The `?paper=` value; none means an 80 mm roll, the counter's usual.
    fn parse(value: Option<&str>) -> Result<Paper, PageError> {
        match value {
            None => Ok(Paper::Roll80),
            Some(value) => Paper::ALL
                .into_iter()
                .find(|paper| paper.as_str() == value)
                .ok_or_else(|| {
                    PageError::from(AppError::invalid(
                        ErrorCode::InvalidQuery,
                        "paper must be 80mm, 58mm or a4",
                    ))
                }),
        }
    }

    fn as_str(self) -> &'static str {
        match self {
            Paper::Roll80 => "80mm",
            Paper::Roll58 => "58mm",
            Paper::A4 => "a4",
        }
    }

    fn label(self) -> &'static str {
        match self {
            Paper::Roll80 => "80 mm roll",
            Paper::Roll58 => "58 mm roll",
            Paper::A4 => "A4",
        }
    }
}

#[derive(Deserialize)]
struct ReceiptQuery {
    paper: Option<String>,
}

async fn receipt(
    State(state): State<AppState>, ctx: PageContext, ApiPath(id): ApiPath<OrderId>,
    Query(query): Query<ReceiptQuery>,
) -> Result<Response, PageError> {
    let caller = ctx.require_caller()?;
    let printout = state.app.receipt(caller, id).await?;
    let paper = Paper::parse(query.paper.as_deref())?;
    let base = format!("/orders/{id}");
    Ok(ctx.page(receipt_page(&printout, paper, &base)))
}

async fn tracked_receipt(
    State(state): State<AppState>, ctx: PageContext, ApiPath(token): ApiPath<String>,
    Query(query): Query<ReceiptQuery>,
) -> Result<Response, PageError> {
    let printout = state.app.tracked_receipt(&token).await?;
    let paper = Paper::parse(query.paper.as_deref())?;
    let base = format!("/track/{token}");
    Ok(ctx.page(receipt_page(&printout, paper, &base)))
}

#[derive(Deserialize)]
struct TicketQuery {
    station: Option<String>,
}

async fn kitchen_ticket(
    State(state): State<AppState>, ctx: PageContext,
    ApiPath((slug, id)): ApiPath<(String, OrderId)>, Query(query): Query<TicketQuery>,
) -> Result<Response, PageError> {
    let caller = ctx.require_caller()?;
    let ticket = state
        .app
        .kitchen_ticket(caller, &slug, id, query.station.as_deref())
        .await?;
    Ok(ctx.page(ticket_page(&ticket, &slug)))
}

/// A printable sheet: a toolbar (Print, paper, back) the printer never
/// sees, then the sheet itself.
fn sheet(title: &str, paper: Paper, toolbar: Markup, body: Markup) -> Markup {
    html! {
        (DOCTYPE)
        html lang="en" {
            (head(title, &super::asset_url("receipt.css")))
            body.{ "paper-" (paper.as_str()) } data-paper=(paper.as_str()) {
                nav.toolbar.no-print aria-label="Printing" {
                    // Shown by live.js, which calls `window.print()`: an
                    // inline handler would be refused by the CSP.
                    button type="button" data-print hidden { "Print" }
                    (toolbar)
                }
                main.sheet { (body) }
            }
        }
    }
}

fn fulfilment_line(printout: &Printout, guest: bool) -> Markup {
    // A guest's page never shows where the customer lives.
    html! { (fulfilment_text(&printout.view.order, !guest)) }
}

fn receipt_page(printout: &Printout, paper: Paper, base: &str) -> Markup {
    let order = &printout.view.order;
    let guest = printout.view.role.is_none();
    let currency = order.currency.code();
    let toolbar = html! {
        span.papers {
            "Paper: "
            @for choice in Paper::ALL {
                @if choice == paper {
                    strong aria-current="true" { (choice.label()) }
                } @else {
                    a href={ (base) "/receipt?paper=" (choice.as_str()) } { (choice.label()) }
                }
                " "
            }
        }
        a href=(base) { "Back to the order" }
    };
    let body = html! {
        article.receipt data-receipt=(order.id) {
            header {
                h1 data-store-name { (printout.store.name) }
                p { "Order " strong data-order-number { (order.number) } }
                p data-placed { (printout.zone.receipt_time(order.created_at)) }
                p data-fulfilment { (fulfilment_line(printout, guest)) }
            }
            table.lines {
                thead { tr { th.num { "Qty" } th { "Item" } th.num { "Each" } th.num { "Price" } } }
                tbody {
                    @for item in &order.items {
                        tr data-line=(item.name) {
                            td.num { (item.quantity) }
                            td {
                                (item.name)
                                @if let (false, Some(notes)) = (guest, &item.notes) { br; span.note { (notes) } }
                            }
                            td.num { (money(item.unit_price_minor, currency)) }
                            td.num { (money(item.unit_price_minor.saturating_mul(i64::from(item.quantity)), currency)) }
                        }
                    }
                }
                tfoot {
                    tr.total { th colspan="3" { "Total" } th.num data-total { (money(order.total_minor, currency)) } }
                }
            }
            // Notes are the customer's words to the store: not for a guest,
            // as on the tracking page.
            @if let (false, Some(notes)) = (guest, &order.notes) { p.notes data-notes { "Notes: " (notes) } }
            p.payment data-payment=(order.payment.status.as_str()) {
                (payment_line(&order.payment, currency, &printout.zone))
            }
            footer { p { "Thank you!" } }
        }
    };
    sheet(&format!("Receipt {}", order.number), paper, toolbar, body)
}

fn ticket_page(ticket: &KitchenTicket, slug: &str) -> Markup {
    let printout = &ticket.printout;
    let order = &printout.view.order;
    let back = match &ticket.station {
        Some(station) => format!("/kitchen/{slug}?station={}", encode_component(station)),
        None => format!("/kitchen/{slug}"),
    };
    let toolbar = html! { a href=(back) { "Back to the kitchen" } };
    let body = html! {
        article.ticket-sheet data-ticket=(order.id) {
            header {
                h1 { strong data-order-number { (order.number) } }
                p data-station { @match &ticket.station { Some(s) => { "Station: " (s) }, None => { "All stations" } } }
                p data-fulfilment { (fulfilment_line(printout, true)) }
                p data-placed { (printout.zone.receipt_time(order.created_at)) }
            }
            @if ticket.items.is_empty() { p { "Nothing for this station." } }
            ul.ticket-lines {
                @for item in &ticket.items {
                    li data-ticket-item=(item.name) {
                        span.qty { (item.quantity) "×" } " " (item.name)
                        @if let Some(notes) = &item.notes { br; span.note { (notes) } }
                    }
                }
            }
            @if let Some(notes) = &order.notes { p.notes data-notes { "Notes: " (notes) } }
        }
    };
    sheet(
        &format!("Ticket {}", order.number),
        Paper::Roll80,
        toolbar,
        body,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paper_is_80mm_by_default_and_refuses_what_it_does_not_know() {
        assert_eq!(Paper::parse(None).ok(), Some(Paper::Roll80));
        assert_eq!(Paper::parse(Some("58mm")).ok(), Some(Paper::Roll58));
        assert_eq!(Paper::parse(Some("a4")).ok(), Some(Paper::A4));
        for bad in ["", "A4", "letter", "80"] {
            assert!(Paper::parse(Some(bad)).is_err(), "{bad:?} accepted");
        }
    }
}
