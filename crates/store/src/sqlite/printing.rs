//! Printers and print jobs on SQLite: a store's printers, the jobs the
//! event log's follower queues (with its cursor, in the same transaction),
//! claiming due jobs and recording how each attempt ended. Columns are read
//! by name.

use ordertrack_domain::{OrderId, StoreId};
use rusqlite::{Connection, OptionalExtension, params};
use time::OffsetDateTime;

use super::rows::{all, first};
use crate::codec::{self, micros, print_job_select, printer_select};
use crate::{NewPrintJob, NewPrinter, PrintJob, PrintOutcome, PrintStatus, Printer, StoreError};

pub fn add_printer(conn: &Connection, new: &NewPrinter) -> Result<Printer, StoreError> {
    let id: i64 = conn
        .prepare_cached(
            "INSERT INTO printers (store_id, name, host, port, stations, receipts, enabled, created_at)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8) RETURNING id",
        )?
        .query_row(
            params![
                new.store_id.get(),
                new.name,
                new.host,
                new.port,
                codec::to_json(&new.stations)?,
                new.receipts,
                new.enabled,
                micros(new.at)
            ],
            |row| row.get(0),
        )?;
    first(
        conn,
        concat!(printer_select!(), " WHERE id = ?1"),
        [id],
        |row| codec::printer(row),
    )?
    .ok_or(StoreError::NotFound("printer"))
}

pub fn printers(conn: &Connection, store: StoreId) -> Result<Vec<Printer>, StoreError> {
    all(
        conn,
        concat!(printer_select!(), " WHERE store_id = ?1 ORDER BY id"),
        [store.get()],
        |row| codec::printer(row),
    )
}

pub fn remove_printer(conn: &Connection, store: StoreId, printer: i64) -> Result<bool, StoreError> {
    // Its jobs go with it (ON DELETE CASCADE).
    let removed = conn
        .prepare_cached("DELETE FROM printers WHERE id = ?1 AND store_id = ?2")?
        .execute(params![printer, store.get()])?;
    Ok(removed > 0)
}

pub fn print_cursor(conn: &Connection) -> Result<i64, StoreError> {
    Ok(conn
        .prepare_cached("SELECT position FROM print_cursor WHERE id = 1")?
        .query_row([], |row| row.get(0))
        .optional()?
        .unwrap_or(0))
}

fn insert_job(conn: &Connection, job: &NewPrintJob) -> Result<i64, StoreError> {
    Ok(conn
        .prepare_cached(
            "INSERT INTO print_jobs (order_id, store_id, printer_id, kind, station, status,
                next_attempt_at, created_at)
             VALUES (?1, ?2, ?3, ?4, ?5, 'queued', ?6, ?6) RETURNING id",
        )?
        .query_row(
            params![
                job.order_id.get(),
                job.store_id.get(),
                job.printer_id,
                job.kind.as_str(),
                job.station,
                micros(job.at)
            ],
            |row| row.get(0),
        )?)
}

pub fn queue_print_jobs(
    conn: &Connection,
    from: i64,
    to: i64,
    jobs: &[NewPrintJob],
) -> Result<bool, StoreError> {
    let moved = conn
        .prepare_cached("UPDATE print_cursor SET position = ?2 WHERE id = 1 AND position = ?1")?
        .execute(params![from, to])?;
    if moved == 0 {
        return Ok(false);
    }
    for job in jobs {
        insert_job(conn, job)?;
    }
    Ok(true)
}

fn job(conn: &Connection, id: i64) -> Result<PrintJob, StoreError> {
    first(
        conn,
        concat!(print_job_select!(), " WHERE j.id = ?1"),
        [id],
        |row| codec::print_job(row),
    )?
    .ok_or(StoreError::NotFound("print job"))
}

pub fn queue_print_job(conn: &Connection, new: &NewPrintJob) -> Result<PrintJob, StoreError> {
    let id = insert_job(conn, new)?;
    job(conn, id)
}

pub fn claim_print_jobs(
    conn: &Connection,
    now: OffsetDateTime,
    lease_until: OffsetDateTime,
    limit: u32,
) -> Result<Vec<PrintJob>, StoreError> {
    // One writer: nothing runs between the read and the update.
    let due: Vec<i64> = all(
        conn,
        "SELECT id FROM print_jobs WHERE next_attempt_at <= ?1 AND status <> 'printed'
         ORDER BY next_attempt_at, id LIMIT ?2",
        params![micros(now), limit],
        |row| Ok(row.get("id")?),
    )?;
    let mut claimed = Vec::with_capacity(due.len());
    for id in due {
        conn.prepare_cached(
            "UPDATE print_jobs SET attempts = attempts + 1, next_attempt_at = ?2 WHERE id = ?1",
        )?
        .execute(params![id, micros(lease_until)])?;
        claimed.push(job(conn, id)?);
    }
    Ok(claimed)
}

pub fn finish_print_job(
    conn: &Connection,
    id: i64,
    outcome: &PrintOutcome,
) -> Result<(), StoreError> {
    match outcome {
        PrintOutcome::Printed { at } => conn
            .prepare_cached(
                "UPDATE print_jobs SET status = ?2, printed_at = ?3, next_attempt_at = NULL
                 WHERE id = ?1",
            )?
            .execute(params![id, PrintStatus::Printed.as_str(), micros(*at)])?,
        PrintOutcome::Failed { error, retry_at } => conn
            .prepare_cached(
                "UPDATE print_jobs SET status = ?2, last_error = ?3, next_attempt_at = ?4
                 WHERE id = ?1",
            )?
            .execute(params![
                id,
                PrintStatus::Failed.as_str(),
                error,
                retry_at.map(micros)
            ])?,
    };
    Ok(())
}

pub fn print_jobs(conn: &Connection, order: OrderId) -> Result<Vec<PrintJob>, StoreError> {
    all(
        conn,
        concat!(print_job_select!(), " WHERE j.order_id = ?1 ORDER BY j.id"),
        [order.get()],
        |row| codec::print_job(row),
    )
}

pub fn next_print_attempt(conn: &Connection) -> Result<Option<OffsetDateTime>, StoreError> {
    let next: Option<i64> = conn
        .prepare_cached(
            "SELECT MIN(next_attempt_at) FROM print_jobs WHERE next_attempt_at IS NOT NULL",
        )?
        .query_row([], |row| row.get(0))?;
    next.map(codec::from_micros).transpose()
}
