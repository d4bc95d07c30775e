//! Network printers: a store's printers (ESC/POS over raw TCP), the
//! tickets and receipts they print when an order enters the store's print
//! trigger, and each print job's status with a reprint.
//!
//! Printing runs off the request path ([`spool`]): a follower of the event
//! log turns each order entering the trigger state into print jobs, written
//! durably with the log position they come from, and a worker sends them,
//! retrying with backoff. A printer that is down delays its own paper and
//! nothing else: no order change ever waits for, or fails because of, a
//! printer. Printer addresses are limited to the operator's allow-list
//! ([`hosts`]), checked when a printer is added and again, after name
//! resolution, before every connection.

pub mod hosts;
mod render;
pub mod spool;

use std::sync::Arc;
use std::time::Duration;

use ordertrack_domain::text::check_line;
use ordertrack_domain::{OrderId, Role};
use ordertrack_store::{
    NewPrintJob, NewPrinter, OrderKey, PrintJob, Printer, PrinterSetup, StoreRecord,
};
use tokio::sync::Notify;

pub use hosts::{DEFAULT_PORT, PrinterAddress, PrinterHosts};

use crate::{App, AppError, Caller, ErrorCode};

/// Longest printer name, in characters.
const MAX_PRINTER_NAME_CHARS: usize = 60;
/// Most stations one printer serves.
const MAX_STATIONS: usize = 20;
/// Most printers one store has.
const MAX_PRINTERS: usize = 20;

/// How printing behaves: where printers may be, how long to wait for one,
/// and when to try again after a failure.
#[derive(Debug, Clone)]
pub struct PrintSettings {
    /// The hosts printers may be at (`--printer-hosts`; default: none).
    pub hosts: PrinterHosts,
    /// The wait after the first, second, … failed attempt; the last one
    /// repeats.
    pub retry_delays: Vec<Duration>,
    /// Attempts before a job is given up (it stays `failed`; a reprint
    /// starts afresh).
    pub max_attempts: u32,
    /// How long to wait for a printer to accept the connection.
    pub connect_timeout: Duration,
    /// How long to wait for a printer to take a whole document.
    pub write_timeout: Duration,
    /// How often the follower and the worker look for work that another
    /// instance made (their own wakes them at once).
    pub poll_interval: Duration,
}

impl Default for PrintSettings {
    fn default() -> Self {
        let secs = Duration::from_secs;
        PrintSettings {
            hosts: PrinterHosts::none(),
            retry_delays: vec![secs(2), secs(10), secs(30), secs(120), secs(300)],
            max_attempts: 10,
            connect_timeout: secs(5),
            write_timeout: secs(10),
            poll_interval: secs(2),
        }
    }
}

impl PrintSettings {
    /// The wait after attempt number `attempts` failed; `None` once it was
    /// the last.
    pub fn retry_after(&self, attempts: u32) -> Option<Duration> {
        if attempts >= self.max_attempts {
            return None;
        }
        let index = usize::try_from(attempts.saturating_sub(1)).unwrap_or(usize::MAX);
        self.retry_delays
            .get(index)
            .or(self.retry_delays.last())
            .copied()
            .or(Some(Duration::from_secs(30)))
    }
}

/// Printing's settings and the wake-ups of its follower and worker, shared
/// by the [`App`] and whatever tells them of new work.
#[derive(Debug, Default)]
pub struct Printing {
    settings: PrintSettings,
    follower: Notify,
    worker: Notify,
}

impl Printing {
    /// Printing with these settings.
    pub fn new(settings: PrintSettings) -> Self {
        Printing {
            settings,
            follower: Notify::new(),
            worker: Notify::new(),
        }
    }

    /// The settings.
    pub fn settings(&self) -> &PrintSettings {
        &self.settings
    }

    /// Tells the follower that events were committed.
    pub fn events_committed(&self) {
        self.follower.notify_one();
    }

    fn jobs_queued(&self) {
        self.worker.notify_one();
    }
}

/// A printer as its store's owner describes it.
#[derive(Debug, Clone)]
pub struct PrinterInput {
    pub name: String,
    /// `host:port` (port 9100 if left out).
    pub address: String,
    /// The kitchen stations whose tickets it prints.
    pub stations: Vec<String>,
    /// Whether it prints the receipt (the counter's printer).
    pub receipts: bool,
    pub enabled: bool,
}

fn invalid(message: impl Into<String>) -> AppError {
    AppError::invalid(ErrorCode::InvalidPrinter, message)
}

impl App {
    /// The printing settings and wake-ups.
    pub fn printing(&self) -> &Arc<Printing> {
        &self.printing
    }

    /// The store `slug` for one of its owners or managers (or an admin);
    /// its other staff get 403, anyone else 404.
    async fn printer_store(&self, caller: &Caller, slug: &str) -> Result<StoreRecord, AppError> {
        Ok(self.managed_store(caller, slug).await?.0)
    }

    /// The printers of the store `slug` (owners, managers).
    pub async fn printers(&self, caller: &Caller, slug: &str) -> Result<Vec<Printer>, AppError> {
        let store = self.printer_store(caller, slug).await?;
        Ok(self.repo.printers(store.id).await?)
    }

    /// Adds a printer to the store `slug` (owners, managers). Its address
    /// must be on a host the operator allows (422
    /// `printer_host_not_allowed`).
    pub async fn add_printer(
        &self, caller: &Caller, slug: &str, input: PrinterInput,
    ) -> Result<Printer, AppError> {
        let store = self.printer_store(caller, slug).await?;
        let name = input.name.trim();
        if name.is_empty() || name.chars().count() > MAX_PRINTER_NAME_CHARS {
            return Err(invalid(format!(
                "a printer's name has 1 to {MAX_PRINTER_NAME_CHARS} characters"
            )));
        }
        check_line("name", name)?;
        let address = PrinterAddress::parse(&input.address).map_err(invalid)?;
        if !self.printing.settings.hosts.allows_host(&address.host) {
            return Err(AppError::invalid(
                ErrorCode::PrinterHostNotAllowed,
                format!(
                    "{} is not among the hosts this server may print to; the operator \
                     allows printer hosts with --printer-hosts",
                    address.host
                ),
            ));
        }
        if input.stations.len() > MAX_STATIONS {
            return Err(invalid(format!("at most {MAX_STATIONS} stations")));
        }
        let mut stations: Vec<String> = Vec::new();
        for station in &input.stations {
            // Stations are kept as products name them: trimmed, lower case.
            let station = station.trim().to_lowercase();
            if station.is_empty() || station.chars().count() > 40 {
                return Err(invalid("a station's name has 1 to 40 characters"));
            }
            check_line("station", &station)?;
            if !stations.contains(&station) {
                stations.push(station);
            }
        }
        if self.repo.printers(store.id).await?.len() >= MAX_PRINTERS {
            return Err(invalid(format!(
                "a store has at most {MAX_PRINTERS} printers"
            )));
        }
        Ok(self
            .repo
            .add_printer(NewPrinter {
                setup: PrinterSetup {
                    store_id: store.id,
                    name: name.to_owned(),
                    host: address.host,
                    port: address.port,
                    stations,
                    receipts: input.receipts,
                    enabled: input.enabled,
                },
                at: crate::now(),
            })
            .await?)
    }

    /// Removes a printer of the store `slug` (owners, managers); another
    /// store's printer does not exist here (404).
    pub async fn remove_printer(
        &self, caller: &Caller, slug: &str, printer: i64,
    ) -> Result<(), AppError> {
        let store = self.printer_store(caller, slug).await?;
        if self.repo.remove_printer(store.id, printer).await? {
            Ok(())
        } else {
            Err(AppError::NotFound("printer"))
        }
    }

    /// The staff role in which the caller works on order `id`: its
    /// store's staff (a driver: deliveries only) and admins; the order's
    /// customer gets 403; anyone else 404. From a dashboard (`slug`), the
    /// order must be that store's and the caller its staff (404 otherwise).
    async fn print_role(
        &self, caller: &Caller, id: OrderId, slug: Option<&str>,
    ) -> Result<Role, AppError> {
        let found = self
            .repo
            .order_in_store(OrderKey::Id(id))
            .await?
            .ok_or(AppError::NotFound("order"))?;
        if let Some(slug) = slug {
            self.staff_role_in(caller, &found, slug)?;
        }
        let role = self.access(caller, &found.order)?;
        if role == Role::Customer {
            return Err(AppError::Forbidden(
                "print jobs are for the store's staff".into(),
            ));
        }
        Ok(role)
    }

    /// The print jobs of an order, for its store's staff, with the role
    /// the caller has there (from a dashboard, `slug`: that store's order
    /// only).
    pub async fn print_jobs(
        &self, caller: &Caller, slug: Option<&str>, id: OrderId,
    ) -> Result<(Role, Vec<PrintJob>), AppError> {
        let role = self.print_role(caller, id, slug).await?;
        Ok((role, self.repo.print_jobs(id).await?))
    }

    /// The print jobs of an order the caller has already read as its
    /// store's staff (the dashboard's order page), without a second read
    /// of the order.
    pub async fn print_jobs_of(&self, order: OrderId) -> Result<Vec<PrintJob>, AppError> {
        Ok(self.repo.print_jobs(order).await?)
    }

    /// Queues a fresh copy of print job `job` of order `id`: its store's
    /// staff but drivers (403); the order's customer 403, anyone else 404.
    /// From a dashboard (`slug`), the order must be that store's.
    pub async fn reprint(
        &self, caller: &Caller, slug: Option<&str>, id: OrderId, job: i64,
    ) -> Result<PrintJob, AppError> {
        if self.print_role(caller, id, slug).await? == Role::Driver {
            return Err(AppError::Forbidden("drivers do not reprint".into()));
        }
        let original = self
            .repo
            .print_jobs(id)
            .await?
            .into_iter()
            .find(|j| j.id == job)
            .ok_or(AppError::NotFound("print job"))?;
        let queued = self
            .repo
            .queue_print_job(NewPrintJob {
                order_id: original.order_id,
                store_id: original.store_id,
                printer_id: original.printer_id,
                kind: original.kind,
                station: original.station,
                at: crate::now(),
            })
            .await?;
        self.printing.jobs_queued();
        Ok(queued)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retries_back_off_then_repeat_the_last_delay_then_stop() {
        let settings = PrintSettings {
            max_attempts: 7,
            ..PrintSettings::default()
        };
        let delays: Vec<Option<u64>> = (1..=8)
            .map(|n| settings.retry_after(n).map(|d| d.as_secs()))
            .collect();
        assert_eq!(
            delays,
            [
                Some(2),
                Some(10),
                Some(30),
                Some(120),
                Some(300),
                Some(300),
                None,
                None
            ]
        );
    }
}
