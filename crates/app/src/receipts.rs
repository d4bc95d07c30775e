//! Receipts and kitchen tickets: an order as it is printed.
//!
//! A receipt is read with the same access as the order itself — its
//! customer, its store's staff (a driver: deliveries only), platform admins,
//! or a guest holding the tracking link; for anyone else the order does not
//! exist (404). A kitchen ticket is read like the kitchen display: staff of
//! the store the path names. Both carry the store's time zone, because
//! paper shows the store's wall clock, not the reader's.

use ordertrack_domain::{OrderItem, StoreZone};
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
        &self,
        caller: &Caller,
        id: ordertrack_domain::OrderId,
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
        &self,
        caller: &Caller,
        slug: &str,
        id: ordertrack_domain::OrderId,
        station: Option<&str>,
    ) -> Result<KitchenTicket, AppError> {
        let (found, workflow) = self.load_in_store(OrderKey::Id(id)).await?;
        self.staff_role_in(caller, &found, slug)?;
        // A driver sees deliveries only, here as everywhere.
        let role = self.access(caller, &found.order)?;
        let station = station_name(station);
        let items = found
            .order
            .items
            .iter()
            .filter(|item| station.as_deref().is_none_or(|s| item.station == s))
            .cloned()
            .collect();
        Ok(KitchenTicket {
            printout: self.printout(found, workflow, Some(role)).await?,
            station,
            items,
        })
    }

    async fn printout(
        &self,
        found: OrderInStore,
        workflow: std::sync::Arc<ordertrack_domain::Workflow>,
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
