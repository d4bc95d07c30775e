//! Customer e-mail on SQLite: the outbox cursor, mail jobs (one per event
//! and recipient) with their retry state, and opt-outs. The writer thread
//! runs every write, so a claim (read the due jobs, mark them) is atomic.

use ordertrack_domain::UserId;
use rusqlite::{Connection, OptionalExtension, params};
use time::OffsetDateTime;

use super::outbox::{self, Claim};
use super::rows::all;
use crate::codec::{self, micros};
use crate::{Outbox, EmailAttempt, EmailEnqueue, EmailJob, EmailJobRecord, StoreError};

pub fn email_cursor(conn: &Connection) -> Result<i64, StoreError> {
    outbox::read_cursor(conn, Outbox::Email)
}

pub fn enqueue_emails(conn: &Connection, batch: &EmailEnqueue) -> Result<bool, StoreError> {
    if !outbox::move_cursor(conn, Outbox::Email, batch.after, batch.upto)? {
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
    const CLAIM: Claim = Claim {
        outbox: Outbox::Email,
        due: outbox::due_jobs!("email_jobs", "event_id, id"),
        read: "SELECT id, event_id, user_id, attempts FROM email_jobs WHERE id = ?1",
    };
    outbox::claim(conn, &CLAIM, now, until, limit, |row| codec::email_job(row))
}

pub fn next_email_attempt(conn: &Connection) -> Result<Option<OffsetDateTime>, StoreError> {
    outbox::next_attempt(conn, Outbox::Email)
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
