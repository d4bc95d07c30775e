//! Printers and print jobs on PostgreSQL: a store's printers, the jobs the
//! event log's follower queues (with its cursor, in the same transaction),
//! claiming due jobs (`FOR UPDATE SKIP LOCKED`, so instances never take the
//! same job) and recording how each attempt ended. Columns are read by name.

use ordertrack_domain::{OrderId, StoreId};
use sqlx::postgres::PgConnection;
use time::OffsetDateTime;

use super::rows::Result;
use crate::codec::{self, micros, print_job_select, printer_select};
use crate::{NewPrintJob, NewPrinter, PrintJob, PrintOutcome, PrintStatus, Printer, StoreError};

pub async fn add_printer(conn: &mut PgConnection, new: &NewPrinter) -> Result<Printer> {
    let id: i64 = sqlx::query_scalar(
        "INSERT INTO printers (store_id, name, host, port, stations, receipts, enabled, created_at)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8) RETURNING id",
    )
    .bind(new.store_id.get())
    .bind(&new.name)
    .bind(&new.host)
    .bind(i64::from(new.port))
    .bind(codec::to_json(&new.stations)?)
    .bind(new.receipts)
    .bind(new.enabled)
    .bind(micros(new.at))
    .fetch_one(&mut *conn)
    .await?;
    let row = sqlx::query(concat!(printer_select!(), " WHERE id = $1"))
        .bind(id)
        .fetch_one(&mut *conn)
        .await?;
    Ok(codec::printer(&row)?)
}

pub async fn printers(conn: &mut PgConnection, store: StoreId) -> Result<Vec<Printer>> {
    Ok(
        sqlx::query(concat!(printer_select!(), " WHERE store_id = $1 ORDER BY id"))
            .bind(store.get())
            .fetch_all(&mut *conn)
            .await?
            .iter()
            .map(codec::printer)
            .collect::<std::result::Result<_, _>>()?,
    )
}

pub async fn remove_printer(conn: &mut PgConnection, store: StoreId, printer: i64) -> Result<bool> {
    // Its jobs go with it (ON DELETE CASCADE).
    let removed = sqlx::query("DELETE FROM printers WHERE id = $1 AND store_id = $2")
        .bind(printer)
        .bind(store.get())
        .execute(&mut *conn)
        .await?;
    Ok(removed.rows_affected() > 0)
}

pub async fn print_cursor(conn: &mut PgConnection) -> Result<i64> {
    Ok(
        sqlx::query_scalar::<_, i64>("SELECT position FROM print_cursor")
            .fetch_optional(&mut *conn)
            .await?
            .unwrap_or(0),
    )
}

async fn insert_job(conn: &mut PgConnection, job: &NewPrintJob) -> Result<i64> {
    Ok(sqlx::query_scalar(
        "INSERT INTO print_jobs (order_id, store_id, printer_id, kind, station, status,
            next_attempt_at, created_at)
         VALUES ($1, $2, $3, $4, $5, 'queued', $6, $6) RETURNING id",
    )
    .bind(job.order_id.get())
    .bind(job.store_id.get())
    .bind(job.printer_id)
    .bind(job.kind.as_str())
    .bind(job.station.as_deref())
    .bind(micros(job.at))
    .fetch_one(&mut *conn)
    .await?)
}

pub async fn queue_print_jobs(
    conn: &mut PgConnection,
    from: i64,
    to: i64,
    jobs: &[NewPrintJob],
) -> Result<bool> {
    // The row lock holds a concurrent follower until this commits; it then
    // finds the cursor moved and writes nothing.
    let moved = sqlx::query("UPDATE print_cursor SET position = $2 WHERE position = $1")
        .bind(from)
        .bind(to)
        .execute(&mut *conn)
        .await?;
    if moved.rows_affected() == 0 {
        return Ok(false);
    }
    for job in jobs {
        insert_job(conn, job).await?;
    }
    Ok(true)
}

async fn job(conn: &mut PgConnection, id: i64) -> Result<PrintJob> {
    let row = sqlx::query(concat!(print_job_select!(), " WHERE j.id = $1"))
        .bind(id)
        .fetch_optional(&mut *conn)
        .await?
        .ok_or(StoreError::NotFound("print job"))?;
    Ok(codec::print_job(&row)?)
}

pub async fn queue_print_job(conn: &mut PgConnection, new: &NewPrintJob) -> Result<PrintJob> {
    let id = insert_job(conn, new).await?;
    job(conn, id).await
}

pub async fn claim_print_jobs(
    conn: &mut PgConnection,
    now: OffsetDateTime,
    lease_until: OffsetDateTime,
    limit: u32,
) -> Result<Vec<PrintJob>> {
    let ids: Vec<i64> = sqlx::query_scalar(
        "UPDATE print_jobs SET attempts = attempts + 1, next_attempt_at = $2
         WHERE id IN (SELECT id FROM print_jobs
                      WHERE next_attempt_at <= $1 AND status <> 'printed'
                      ORDER BY next_attempt_at, id LIMIT $3
                      FOR UPDATE SKIP LOCKED)
         RETURNING id",
    )
    .bind(micros(now))
    .bind(micros(lease_until))
    .bind(i64::from(limit))
    .fetch_all(&mut *conn)
    .await?;
    let rows = sqlx::query(concat!(
        print_job_select!(),
        " WHERE j.id = ANY($1) ORDER BY j.id"
    ))
    .bind(&ids)
    .fetch_all(&mut *conn)
    .await?;
    Ok(rows
        .iter()
        .map(codec::print_job)
        .collect::<std::result::Result<_, _>>()?)
}

pub async fn finish_print_job(
    conn: &mut PgConnection,
    id: i64,
    outcome: &PrintOutcome,
) -> Result<()> {
    match outcome {
        PrintOutcome::Printed { at } => {
            sqlx::query(
                "UPDATE print_jobs SET status = $2, printed_at = $3, next_attempt_at = NULL
                 WHERE id = $1",
            )
            .bind(id)
            .bind(PrintStatus::Printed.as_str())
            .bind(micros(*at))
            .execute(&mut *conn)
            .await?;
        }
        PrintOutcome::Failed { error, retry_at } => {
            sqlx::query(
                "UPDATE print_jobs SET status = $2, last_error = $3, next_attempt_at = $4
                 WHERE id = $1",
            )
            .bind(id)
            .bind(PrintStatus::Failed.as_str())
            .bind(error)
            .bind(retry_at.map(micros))
            .execute(&mut *conn)
            .await?;
        }
    }
    Ok(())
}

pub async fn print_jobs(conn: &mut PgConnection, order: OrderId) -> Result<Vec<PrintJob>> {
    Ok(sqlx::query(concat!(
        print_job_select!(),
        " WHERE j.order_id = $1 ORDER BY j.id"
    ))
    .bind(order.get())
    .fetch_all(&mut *conn)
    .await?
    .iter()
    .map(codec::print_job)
    .collect::<std::result::Result<_, _>>()?)
}

pub async fn next_print_attempt(conn: &mut PgConnection) -> Result<Option<OffsetDateTime>> {
    let next: Option<i64> = sqlx::query_scalar(
        "SELECT MIN(next_attempt_at) FROM print_jobs WHERE next_attempt_at IS NOT NULL",
    )
    .fetch_one(&mut *conn)
    .await?;
    Ok(next.map(codec::from_micros).transpose()?)
}
