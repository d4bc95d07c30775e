//! A print job's paper as ESC/POS bytes, from the same [`Printout`] the
//! browser's receipt and ticket pages show: a station's ticket (order
//! number, fulfilment, that station's lines with quantities and notes, the
//! store's time) and the receipt (store, number, lines with prices, total,
//! payment).

use ordertrack_store::PrintKind;

use crate::escpos::Document;
use crate::receipts::{Printout, fulfilment_text, money, payment_line, station_items};

/// The bytes of a `kind` print of `printout` (a ticket for `station`).
pub fn document(printout: &Printout, kind: PrintKind, station: Option<&str>) -> Vec<u8> {
    match kind {
        PrintKind::Ticket => ticket(printout, station),
        PrintKind::Receipt => receipt(printout),
    }
}

fn ticket(printout: &Printout, station: Option<&str>) -> Vec<u8> {
    let order = &printout.view.order;
    let mut doc = Document::new();
    doc.large(true)
        .bold(true)
        .line(&order.number)
        .bold(false)
        .large(false);
    doc.line(&format!("Station: {}", station.unwrap_or("all")));
    // The kitchen needs the way out, not where the customer lives.
    doc.line(&fulfilment_text(order, false));
    doc.line(&printout.zone.receipt_time(order.created_at));
    doc.rule();
    for item in station_items(order, station) {
        doc.bold(true)
            .line(&format!("{} x {}", item.quantity, item.name))
            .bold(false);
        if let Some(notes) = &item.notes {
            doc.line(&format!("  ! {notes}"));
        }
    }
    if let Some(notes) = &order.notes {
        doc.rule().line(&format!("Notes: {notes}"));
    }
    doc.cut()
}

fn receipt(printout: &Printout) -> Vec<u8> {
    let order = &printout.view.order;
    let currency = order.currency.code();
    let mut doc = Document::new();
    doc.bold(true).line(&printout.store.name).bold(false);
    doc.line(&format!("Order {}", order.number));
    doc.line(&printout.zone.receipt_time(order.created_at));
    doc.line(&fulfilment_text(order, true));
    doc.rule();
    for item in &order.items {
        let price = item
            .unit_price_minor
            .saturating_mul(i64::from(item.quantity));
        doc.columns(
            &format!("{} x {}", item.quantity, item.name),
            &money(price, currency),
        );
        if let Some(notes) = &item.notes {
            doc.line(&format!("  {notes}"));
        }
    }
    doc.rule();
    doc.bold(true)
        .columns("Total", &money(order.total_minor, currency))
        .bold(false);
    doc.line(&payment_line(&order.payment, currency, &printout.zone));
    if let Some(notes) = &order.notes {
        doc.line(&format!("Notes: {notes}"));
    }
    doc.line("").line("Thank you!");
    doc.cut()
}
