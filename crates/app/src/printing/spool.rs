//! Printing off the request path: the event log's follower, which turns
//! each order entering its store's print trigger into print jobs, and the
//! worker, which sends them to the printers.
//!
//! **Follower.** It reads the log after the print cursor (a row in the
//! database), makes the jobs those entries call for and writes them
//! together with the cursor's new position, in one transaction and only if
//! the cursor is still where it read it (`Repository::queue_print_jobs`).
//! So a crash or restart never loses an event's jobs nor queues them twice,
//! and instances sharing a database take turns instead of duplicating.
//! Past entries that print nothing (most of them) the stored cursor moves
//! every few seconds only, sparing the writer a write per commit; after a
//! restart they are read again and print nothing again. It wakes on this
//! instance's commits ([`Printing::wake_on_commit`]) and polls for other
//! instances'.
//!
//! **Worker.** It claims due jobs (each attempt counted, the job leased
//! for long enough to be sent so nobody else takes it meanwhile), sends
//! each over raw TCP with a connect and a write timeout — to one printer
//! one document at a time — and records the outcome: `printed`, or
//! `failed` with the reason and the time of the next attempt (backoff, see
//! [`PrintSettings::retry_after`]). A job whose sending was cut short by a
//! crash is tried again when its lease ends: paper may then come out twice,
//! never not at all.

use std::collections::HashMap;
use std::collections::hash_map::Entry;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use ordertrack_domain::{EventKind, NewEvent, StatusKey, StoreId};
use ordertrack_store::{
    CommitListener, LogEntry, NewPrintJob, PrintJob, PrintKind, PrintOutcome, Printer,
};
use time::OffsetDateTime;
use tokio::io::AsyncWriteExt;
use tokio::net::TcpStream;
use tokio::task::JoinHandle;

use super::{PrintSettings, Printing, render};
use crate::{App, AppError};

/// Where printing logs: the binary's target, which operators filter on.
const LOG_TARGET: &str = "ordertrack";
/// Log entries the follower reads at once.
const FOLLOW_BATCH: u32 = 500;
/// Jobs the worker claims at once.
const CLAIM_BATCH: u32 = 16;

/// The follower and the worker of one instance; dropping it stops both.
pub struct Spool {
    tasks: Vec<JoinHandle<()>>,
}

impl Drop for Spool {
    fn drop(&mut self) {
        for task in &self.tasks {
            task.abort();
        }
    }
}

/// Passes every committed batch on, then wakes the print follower.
struct WakeOnCommit {
    inner: Arc<dyn CommitListener>,
    printing: Arc<Printing>,
}

impl CommitListener for WakeOnCommit {
    fn committed(&self, events: &[LogEntry]) {
        self.inner.committed(events);
        if events.iter().any(|entry| entry.order_event().is_some()) {
            self.printing.events_committed();
        }
    }
}

impl Printing {
    /// `inner`, which also wakes this instance's print follower after each
    /// commit of order events (so paper follows a change at once).
    pub fn wake_on_commit(
        self: &Arc<Self>, inner: Arc<dyn CommitListener>,
    ) -> Arc<dyn CommitListener> {
        Arc::new(WakeOnCommit {
            inner,
            printing: self.clone(),
        })
    }
}

/// What a store prints on: its trigger state and its printers that are on.
struct StoreSetup {
    trigger: StatusKey,
    printers: Vec<Printer>,
}

/// Whether `event` is an order entering `trigger` (not a correction).
fn enters(event: &NewEvent, trigger: &StatusKey) -> bool {
    matches!(
        event.kind,
        EventKind::StatusChanged | EventKind::OrderCreated
    ) && !event.correction
        && event.to.as_ref() == Some(trigger)
        && event.from.as_ref() != Some(trigger)
}

/// The jobs `event` calls for: each printer a ticket per station it serves
/// that the order has items for, and the receipt printers the receipt.
fn jobs_for(event: &NewEvent, printers: &[Printer], at: OffsetDateTime) -> Vec<NewPrintJob> {
    let job = |printer: &Printer, kind, station: Option<&String>| NewPrintJob {
        order_id: event.order_id,
        store_id: event.store_id,
        printer_id: printer.id,
        kind,
        station: station.cloned(),
        at,
    };
    let mut jobs = Vec::new();
    for printer in printers {
        for station in &printer.stations {
            if event.stations.contains(station) {
                jobs.push(job(printer, PrintKind::Ticket, Some(station)));
            }
        }
        if printer.receipts {
            jobs.push(job(printer, PrintKind::Receipt, None));
        }
    }
    jobs
}

/// How long a claimed job is the claimer's: long enough to send a whole
/// claim to one printer that times out on every job.
fn lease(settings: &PrintSettings) -> Duration {
    (settings.connect_timeout + settings.write_timeout) * CLAIM_BATCH + Duration::from_secs(60)
}

/// Sends `bytes` to `host:port` — only to addresses the allow-list admits
/// after resolving `host` — within the settings' timeouts.
pub async fn deliver(
    settings: &PrintSettings, host: &str, port: u16, bytes: &[u8],
) -> Result<(), String> {
    let addrs = settings.hosts.resolve(host, port).await?;
    let mut why = format!("{host} has no address to print to");
    for addr in addrs {
        match tokio::time::timeout(settings.connect_timeout, TcpStream::connect(addr)).await {
            Err(_) => {
                why = format!(
                    "{addr} did not answer within {} ms",
                    settings.connect_timeout.as_millis()
                );
            }
            Ok(Err(error)) => why = format!("{addr}: {error}"),
            Ok(Ok(mut stream)) => {
                let sent = async {
                    stream.write_all(bytes).await?;
                    stream.shutdown().await
                };
                return match tokio::time::timeout(settings.write_timeout, sent).await {
                    Err(_) => Err(format!(
                        "{addr} did not take the document within {} ms",
                        settings.write_timeout.as_millis()
                    )),
                    Ok(Err(error)) => Err(format!("{addr}: {error}")),
                    Ok(Ok(())) => Ok(()),
                };
            }
        }
    }
    Err(why)
}

/// How old a change may be and still print: catching up after printing
/// was off (or the instance down) for long, the kitchen wants no stale
/// tickets.
const MAX_CATCH_UP: time::Duration = time::Duration::minutes(15);

/// How often at most the follower stores a cursor that moved past entries
/// that printed nothing (one that made jobs is stored with them at once).
const CURSOR_EVERY: Duration = Duration::from_secs(5);

/// The follower's place in the event log: how far it has read, and the
/// position stored in the database (which may lag behind only over entries
/// that printed nothing).
struct Cursor {
    read: i64,
    stored: i64,
    stored_at: std::time::Instant,
}

impl Cursor {
    fn at(position: i64) -> Cursor {
        Cursor {
            read: position,
            stored: position,
            stored_at: std::time::Instant::now(),
        }
    }

    /// Stores the position read, with the jobs made since the stored one.
    /// If another instance moved the stored cursor first, nothing is
    /// written and reading resumes from where it is.
    async fn store(&mut self, app: &App, jobs: Vec<NewPrintJob>) -> Result<(), AppError> {
        let made = !jobs.is_empty();
        if app
            .repo
            .queue_print_jobs(self.stored, self.read, jobs)
            .await?
        {
            *self = Cursor::at(self.read);
            if made {
                app.printing.jobs_queued();
            }
        } else {
            *self = Cursor::at(app.repo.print_cursor().await?);
        }
        Ok(())
    }
}

/// One lock per printer: a printer takes one document at a time.
#[derive(Default)]
struct PrinterTurns(Mutex<HashMap<i64, Arc<tokio::sync::Mutex<()>>>>);

impl PrinterTurns {
    fn of(&self, printer: i64) -> Arc<tokio::sync::Mutex<()>> {
        let mut turns = self
            .0
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        turns.entry(printer).or_default().clone()
    }
}

impl App {
    /// Starts this instance's print follower and worker; they run until
    /// the returned [`Spool`] is dropped.
    pub fn start_printing(&self) -> Spool {
        Spool {
            tasks: vec![
                tokio::spawn(self.clone().follow()),
                tokio::spawn(self.clone().work()),
            ],
        }
    }

    async fn follow(self) {
        let mut cursor = None;
        loop {
            let found = match cursor.as_mut() {
                Some(cursor) => self.follow_once(cursor).await,
                None => match self.repo.print_cursor().await {
                    Ok(at) => {
                        cursor = Some(Cursor::at(at));
                        continue;
                    }
                    Err(error) => Err(error.into()),
                },
            };
            match found {
                Ok(true) => continue,
                Ok(false) => {}
                Err(error) => {
                    // Start again from the stored cursor.
                    cursor = None;
                    tracing::warn!(target: LOG_TARGET, %error, "print follower: reading the event log failed");
                }
            }
            let poll = self.printing.settings.poll_interval;
            let _ = tokio::time::timeout(poll, self.printing.follower.notified()).await;
        }
    }

    /// Reads the log after the cursor and queues the jobs its entries call
    /// for, moving the stored cursor with them; true if there were entries.
    async fn follow_once(&self, cursor: &mut Cursor) -> Result<bool, AppError> {
        let entries = self.repo.events_since(cursor.read, FOLLOW_BATCH).await?;
        let Some(to) = entries.last().map(LogEntry::id) else {
            if cursor.read != cursor.stored && cursor.stored_at.elapsed() >= CURSOR_EVERY {
                cursor.store(self, Vec::new()).await?;
            }
            return Ok(false);
        };
        let at = crate::now();
        let mut setups: HashMap<StoreId, Option<StoreSetup>> = HashMap::new();
        let mut jobs = Vec::new();
        for stored in entries.iter().filter_map(LogEntry::order_event) {
            let event = &stored.event;
            if !matches!(
                event.kind,
                EventKind::StatusChanged | EventKind::OrderCreated
            ) || at - event.at > MAX_CATCH_UP
            {
                continue;
            }
            if let Entry::Vacant(vacant) = setups.entry(event.store_id) {
                vacant.insert(self.print_setup(event.store_id).await?);
            }
            if let Some(Some(setup)) = setups.get(&event.store_id)
                && enters(event, &setup.trigger)
            {
                jobs.extend(jobs_for(event, &setup.printers, at));
            }
        }
        cursor.read = to;
        // Entries that print nothing move the stored cursor now and then
        // only: read again after a restart, they would print nothing again.
        if !jobs.is_empty() || cursor.stored_at.elapsed() >= CURSOR_EVERY {
            cursor.store(self, jobs).await?;
        }
        Ok(true)
    }

    /// A store's trigger and printers that are on; `None` if it has none.
    async fn print_setup(&self, store: StoreId) -> Result<Option<StoreSetup>, AppError> {
        let printers: Vec<Printer> = self
            .repo
            .printers(store)
            .await?
            .into_iter()
            .filter(|printer| printer.enabled)
            .collect();
        if printers.is_empty() {
            return Ok(None);
        }
        let Some(record) = self.repo.store(store).await? else {
            return Ok(None);
        };
        let Some(found) = self.repo.store_with_settings(&record.slug).await? else {
            return Ok(None);
        };
        Ok(Some(StoreSetup {
            trigger: found.settings.print_trigger,
            printers,
        }))
    }

    async fn work(self) {
        let turns = Arc::new(PrinterTurns::default());
        let settings = self.printing.settings.clone();
        loop {
            let now = crate::now();
            let mut wait = settings.poll_interval;
            match self
                .repo
                .claim_print_jobs(now, now + lease(&settings), CLAIM_BATCH)
                .await
            {
                Ok(jobs) => {
                    for job in jobs {
                        let turn = turns.of(job.printer_id);
                        tokio::spawn(self.clone().print(job, turn));
                    }
                    if let Ok(Some(next)) = self.repo.next_print_attempt().await {
                        let until = (next - crate::now()).max(time::Duration::ZERO);
                        wait = wait.min(until.unsigned_abs());
                    }
                }
                Err(error) => {
                    tracing::warn!(target: LOG_TARGET, %error, "print worker: claiming jobs failed");
                }
            }
            let _ = tokio::time::timeout(wait, self.printing.worker.notified()).await;
        }
    }

    /// Sends one claimed job (waiting for its printer's turn) and records
    /// how it went.
    async fn print(self, job: PrintJob, turn: Arc<tokio::sync::Mutex<()>>) {
        let _turn = turn.lock().await;
        let settings = &self.printing.settings;
        let outcome = match self.send(&job).await {
            Ok(()) => PrintOutcome::Printed { at: crate::now() },
            Err(error) => {
                let retry_at = match job.printer_enabled {
                    true => settings
                        .retry_after(job.attempts)
                        .map(|wait| crate::now() + wait),
                    false => None,
                };
                tracing::warn!(
                    target: LOG_TARGET,
                    job = job.id,
                    printer = %job.printer_name,
                    attempt = job.attempts,
                    retry = retry_at.is_some(),
                    %error,
                    "printing failed"
                );
                PrintOutcome::Failed { error, retry_at }
            }
        };
        if let Err(error) = self.repo.finish_print_job(job.id, outcome).await {
            tracing::warn!(target: LOG_TARGET, job = job.id, %error, "print worker: recording a job failed");
        }
        // The next attempt may now be sooner than the worker thinks.
        self.printing.jobs_queued();
    }

    async fn send(&self, job: &PrintJob) -> Result<(), String> {
        if !job.printer_enabled {
            return Err("the printer is switched off".into());
        }
        let printout = self
            .printout_of(job.order_id)
            .await
            .map_err(|error| format!("cannot read the order: {error}"))?;
        let bytes = render::document(&printout, job.kind, job.station.as_deref());
        deliver(&self.printing.settings, &job.host, job.port, &bytes).await
    }
}

#[cfg(test)]
mod tests {
    use ordertrack_domain::{OrderId, OrderSummary, UserId};

    use super::*;

    fn event(kind: EventKind, from: Option<&str>, to: &str, stations: &[&str]) -> NewEvent {
        NewEvent {
            kind,
            store_id: StoreId::new(1),
            order_id: OrderId::new(7),
            customer_id: UserId::new(3),
            order_version: 2,
            from: from.map(StatusKey::from),
            to: Some(StatusKey::from(to)),
            actor: None,
            note: None,
            item: None,
            assignment: None,
            stations: stations.iter().map(|s| (*s).to_owned()).collect(),
            at: crate::now(),
            summary: OrderSummary {
                number: "R-000001".into(),
                status: to.into(),
                label: String::new(),
                icon: String::new(),
                progress: 0,
                customer_message: String::new(),
                eta_minutes: None,
                eta: None,
                terminal: false,
                fulfilment: None,
                payment_status: None,
            },
            correction: false,
            payment: None,
        }
    }

    fn printer(id: i64, stations: &[&str], receipts: bool) -> Printer {
        Printer {
            id,
            setup: ordertrack_store::PrinterSetup {
                store_id: StoreId::new(1),
                name: format!("P{id}"),
                host: "10.0.0.1".into(),
                port: 9100,
                stations: stations.iter().map(|s| (*s).to_owned()).collect(),
                receipts,
                enabled: true,
            },
            created_at: crate::now(),
        }
    }

    #[test]
    fn only_entering_the_trigger_prints() {
        let trigger = StatusKey::from("confirmed");
        let confirmed = event(EventKind::StatusChanged, Some("pending"), "confirmed", &[]);
        assert!(enters(&confirmed, &trigger));
        let placed = event(EventKind::OrderCreated, None, "confirmed", &[]);
        assert!(enters(&placed, &trigger));
        let later = event(
            EventKind::StatusChanged,
            Some("confirmed"),
            "preparing",
            &[],
        );
        assert!(!enters(&later, &trigger));
        let paid = event(
            EventKind::PaymentChanged,
            Some("confirmed"),
            "confirmed",
            &[],
        );
        assert!(!enters(&paid, &trigger));
        let mut corrected = confirmed.clone();
        corrected.correction = true;
        assert!(!enters(&corrected, &trigger));
    }

    #[test]
    fn each_station_s_printer_gets_its_ticket_and_the_counter_the_receipt() {
        let confirmed = event(
            EventKind::StatusChanged,
            Some("pending"),
            "confirmed",
            &["grill", "drinks"],
        );
        let printers = [
            printer(1, &["grill"], false),
            printer(2, &["fryer"], false),
            printer(3, &["drinks"], true),
        ];
        let jobs: Vec<(i64, PrintKind, Option<String>)> =
            jobs_for(&confirmed, &printers, crate::now())
                .into_iter()
                .map(|job| (job.printer_id, job.kind, job.station))
                .collect();
        assert_eq!(
            jobs,
            [
                (1, PrintKind::Ticket, Some("grill".to_owned())),
                (3, PrintKind::Ticket, Some("drinks".to_owned())),
                (3, PrintKind::Receipt, None),
            ]
        );
    }
}
