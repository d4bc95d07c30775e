//! Receipts and kitchen tickets: an order as it is printed.
//!
//! A receipt is read with the same access as the order itself — its
//! customer, its store's staff (a driver: deliveries only), platform admins,
//! or a guest holding the tracking link; for anyone else the order does not
//! exist (404). A kitchen ticket is read like the kitchen display: staff of
//! the store the path names. Both carry the store's time zone, because
//! paper shows the store's wall clock, not the reader's.

use ordertrack_domain::{FulfilmentKind, Order, OrderItem, Payment, PaymentStatus, StoreZone};
use ordertrack_store::{OrderInStore, OrderKey, StoreRecord};

use crate::kitchen::station_name;
use crate::orders::OrderView;
use crate::{App, AppError, Caller};

/// An order ready to print: the order, its store and the store's zone.
#[derive(Debug, Clone)]
pub struct Printout {
    /// The order as the reader may see it (`role` is `None` for a guest).
    pub view: OrderView,
    /// The store it was placed at.
    pub store: StoreRecord,
    /// The store's time zone: every time on paper is on its wall clock.
    pub zone: StoreZone,
}

/// One station's ticket of an order.
#[derive(Debug, Clone)]
pub struct KitchenTicket {
    pub printout: Printout,
    /// The station it is for; `None`: every station.
    pub station: Option<String>,
    /// The order's lines for that station (all lines without one).
    pub items: Vec<OrderItem>,
}

impl App {
    /// The receipt of an order the caller may see (404 otherwise).
    pub async fn receipt(
        &self, caller: &Caller, id: ordertrack_domain::OrderId,
    ) -> Result<Printout, AppError> {
        let (found, workflow) = self.load_in_store(OrderKey::Id(id)).await?;
        let role = self.access(caller, &found.order)?;
        self.printout(found, workflow, Some(role)).await
    }

    /// The receipt of the order a tracking link names (a guest's view).
    pub async fn tracked_receipt(&self, token: &str) -> Result<Printout, AppError> {
        let (found, workflow) = self.load_tracked(token).await?;
        self.printout(found, workflow, None).await
    }

    /// The kitchen ticket of order `id` of the store `slug` for `station`
    /// (trimmed, lower case; empty: every station), for the store's staff
    /// — the kitchen display's audience. For anyone else, and for another
    /// store's order, it does not exist (404).
    pub async fn kitchen_ticket(
        &self, caller: &Caller, slug: &str, id: ordertrack_domain::OrderId, station: Option<&str>,
    ) -> Result<KitchenTicket, AppError> {
        let (found, workflow) = self.load_in_store(OrderKey::Id(id)).await?;
        self.staff_role_in(caller, &found, slug)?;
        // A driver sees deliveries only, here as everywhere.
        let role = self.access(caller, &found.order)?;
        let station = station_name(station);
        let items = station_items(&found.order, station.as_deref());
        Ok(KitchenTicket {
            printout: self.printout(found, workflow, Some(role)).await?,
            station,
            items,
        })
    }

    /// An order as printed, for the print worker (no caller: printing
    /// is the store's own doing; the printer was set up by its owners).
    pub(crate) async fn printout_of(
        &self, id: ordertrack_domain::OrderId,
    ) -> Result<Printout, AppError> {
        let (found, workflow) = self.load_in_store(OrderKey::Id(id)).await?;
        self.printout(found, workflow, Some(ordertrack_domain::Role::Admin))
            .await
    }

    async fn printout(
        &self, found: OrderInStore, workflow: std::sync::Arc<ordertrack_domain::Workflow>,
        role: Option<ordertrack_domain::Role>,
    ) -> Result<Printout, AppError> {
        // The zone lives with the store's settings, which the order's read
        // does not carry.
        let zone = self
            .repo
            .store_with_settings(&found.store.slug)
            .await?
            .map(|with| with.settings.timezone)
            .unwrap_or_else(StoreZone::utc);
        Ok(Printout {
            view: OrderView {
                order: found.order,
                workflow,
                role,
                // Paper shows what was ordered and paid, not a window that
                // moves.
                eta: None,
            },
            store: found.store,
            zone,
        })
    }
}

/// The lines of `order` a station prepares (all lines for no station).
pub fn station_items(order: &Order, station: Option<&str>) -> Vec<OrderItem> {
    order
        .items
        .iter()
        .filter(|item| station.is_none_or(|s| item.station == s))
        .cloned()
        .collect()
}

/// How the order leaves the store, as paper says it: `Pickup at the
/// counter`, `Delivery to …` — or only `Delivery` where the address must
/// not show (a guest's receipt, a kitchen ticket).
pub fn fulfilment_text(order: &Order, with_address: bool) -> String {
    match order.fulfilment.kind {
        FulfilmentKind::Pickup => "Pickup at the counter".to_owned(),
        FulfilmentKind::Delivery if !with_address => "Delivery".to_owned(),
        FulfilmentKind::Delivery => format!(
            "Delivery to {}",
            order.fulfilment.address.as_deref().unwrap_or("")
        ),
    }
}

/// The payment as a receipt states it: `Cash — unpaid`,
/// `Card at the counter — paid 12:45`, refunds with their amount.
pub fn payment_line(payment: &Payment, currency: &str, zone: &StoreZone) -> String {
    let method = payment.method.label();
    let paid = match payment.paid_at {
        Some(at) => format!("paid {}", zone.clock_time(at)),
        None => "paid".to_owned(),
    };
    let refunded = money(payment.refunded_minor, currency);
    match payment.status {
        PaymentStatus::Unpaid => format!("{method} — unpaid"),
        PaymentStatus::Paid => format!("{method} — {paid}"),
        PaymentStatus::PartiallyRefunded => format!("{method} — {paid}, refunded {refunded}"),
        PaymentStatus::Refunded => format!("{method} — refunded {refunded}"),
    }
}

/// Money in minor units, e.g. `12.50 EUR`: on pages and on paper.
pub use ordertrack_domain::format_amount as money;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_payment_line_says_how_when_and_what_was_refunded() {
        use ordertrack_domain::PaymentMethod;
        let zone = StoreZone::parse("Europe/Berlin").expect("a zone");
        let at = time::macros::datetime!(2026-11-29 11:45 UTC);
        let mut payment = Payment::unpaid(PaymentMethod::Cash);
        assert_eq!(payment_line(&payment, "EUR", &zone), "Cash — unpaid");
        payment.status = PaymentStatus::Paid;
        payment.paid_at = Some(at);
        assert_eq!(payment_line(&payment, "EUR", &zone), "Cash — paid 12:45");
        payment.status = PaymentStatus::PartiallyRefunded;
        payment.refunded_minor = 250;
        assert_eq!(
            payment_line(&payment, "EUR", &zone),
            "Cash — paid 12:45, refunded 2.50 EUR"
        );
        payment.status = PaymentStatus::Refunded;
        payment.refunded_minor = 1250;
        assert_eq!(
            payment_line(&payment, "EUR", &zone),
            "Cash — refunded 12.50 EUR"
        );
    }
}
