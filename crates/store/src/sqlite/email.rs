//! Customer e-mail on SQLite: the outbox cursor, mail jobs (one per event
//! and recipient) with their retry state, and opt-outs. The writer thread
//! runs every write, so a claim (read the due jobs, mark them) is atomic.

use ordertrack_domain::UserId;
use rusqlite::{Connection, OptionalExtension, params};
use time::OffsetDateTime;

use super::rows::all;
use crate::codec::{self, micros};
use crate::{EmailAttempt, EmailEnqueue, EmailJob, EmailJobRecord, StoreError};

pub fn email_cursor(conn: &Connection) -> Result<i64, StoreError> {
    Ok(conn
        .prepare_cached("SELECT last_event_id FROM email_cursor WHERE id = 1")?
        .query_row([], |row| row.get(0))?)
}

pub fn enqueue_emails(conn: &Connection, batch: &EmailEnqueue) -> Result<bool, StoreError> {
    if !super::events::move_cursor(conn, crate::OutboxCursor::Email, batch.after, batch.upto)? {
        return Ok(false);
    }
    let mut insert = conn.prepare_cached(
        "INSERT INTO email_jobs (event_id, user_id, state, next_attempt_at, created_at)
         VALUES (?1, ?2, 'pending', ?3, ?3) ON CONFLICT (event_id, user_id) DO NOTHING",
    )?;
    for (event, user) in &batch.jobs {
        insert.execute(params![event, user.get(), micros(batch.at)])?;
    }
    Ok(true)
}

pub fn claim_emails(
    conn: &Connection,
    now: OffsetDateTime,
    until: OffsetDateTime,
    limit: u32,
) -> Result<Vec<EmailJob>, StoreError> {
    let due = all(
        conn,
        "SELECT id, event_id, user_id, attempts FROM email_jobs
         WHERE state = 'pending' AND next_attempt_at <= ?1
           AND (claimed_until IS NULL OR claimed_until <= ?1)
         ORDER BY event_id, id LIMIT ?2",
        params![micros(now), limit],
        |row| codec::email_job(row),
    )?;
    let mut claim = conn.prepare_cached("UPDATE email_jobs SET claimed_until = ?2 WHERE id = ?1")?;
    for job in &due {
        claim.execute(params![job.id, micros(until)])?;
    }
    Ok(due)
}

pub fn next_email_attempt(conn: &Connection) -> Result<Option<OffsetDateTime>, StoreError> {
    let next: Option<i64> = conn
        .prepare_cached(
            "SELECT MIN(MAX(next_attempt_at, COALESCE(claimed_until, 0)))
             FROM email_jobs WHERE state = 'pending'",
        )?
        .query_row([], |row| row.get(0))?;
    next.map(codec::from_micros).transpose()
}

pub fn record_email_attempt(conn: &Connection, attempt: &EmailAttempt) -> Result<(), StoreError> {
    conn.prepare_cached(
        "UPDATE email_jobs
         SET state = ?2, attempts = attempts + 1, error = ?3, last_attempt_at = ?4,
             next_attempt_at = ?5, claimed_until = NULL
         WHERE id = ?1",
    )?
    .execute(params![
        attempt.job,
        attempt.outcome.state(),
        attempt.error,
        micros(attempt.at),
        attempt.outcome.next_attempt().map(micros),
    ])?;
    Ok(())
}

pub fn email_jobs(conn: &Connection, event: i64) -> Result<Vec<EmailJobRecord>, StoreError> {
    all(
        conn,
        "SELECT id, event_id, user_id, state, attempts, error FROM email_jobs
         WHERE event_id = ?1 ORDER BY user_id",
        [event],
        |row| codec::email_job_record(row),
    )
}

pub fn set_email_opt_out(
    conn: &Connection,
    user: UserId,
    opted_out: bool,
    at: OffsetDateTime,
) -> Result<(), StoreError> {
    let known: Option<i64> = conn
        .prepare_cached("SELECT id FROM users WHERE id = ?1")?
        .query_row([user.get()], |row| row.get(0))
        .optional()?;
    if known.is_none() {
        return Err(StoreError::NotFound("user"));
    }
    if opted_out {
        conn.prepare_cached(
            "INSERT INTO email_opt_outs (user_id, at) VALUES (?1, ?2)
             ON CONFLICT (user_id) DO NOTHING",
        )?
        .execute(params![user.get(), micros(at)])?;
    } else {
        conn.prepare_cached("DELETE FROM email_opt_outs WHERE user_id = ?1")?
            .execute([user.get()])?;
    }
    Ok(())
}

pub fn email_opted_out(conn: &Connection, user: UserId) -> Result<bool, StoreError> {
    Ok(conn
        .prepare_cached("SELECT EXISTS (SELECT 1 FROM email_opt_outs WHERE user_id = ?1)")?
        .query_row([user.get()], |row| row.get(0))?)
}
