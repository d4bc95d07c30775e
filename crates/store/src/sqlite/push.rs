//! Web Push on SQLite: customers' push subscriptions, the jobs made for
//! them, the outbox cursor, and the push worker's claims and attempts. The
//! writer thread runs every write, so a claim (read the due jobs, mark
//! them) is atomic.

use rusqlite::{Connection, params};
use time::OffsetDateTime;

use super::outbox::{self, Claim};
use super::rows::{all, first};
use crate::codec::{self, micros, push_job_select, push_subscription_select};
use crate::{
    NewPushSubscription, Outbox, PushAttempt, PushEnqueue, PushJob, PushOwner, PushSubscription,
    StoreError,
};

/// The owner's subscriptions with this endpoint go (their jobs with them).
const DELETE_OWNED: &str = "DELETE FROM push_subscriptions
    WHERE user_id IS ?1 AND order_id IS ?2 AND endpoint = ?3";

pub fn save_push_subscription(
    conn: &Connection,
    new: &NewPushSubscription,
) -> Result<PushSubscription, StoreError> {
    let (user, order) = new.owner.columns();
    conn.prepare_cached(DELETE_OWNED)?
        .execute(params![user, order, new.endpoint])?;
    conn.prepare_cached(
        "INSERT INTO push_subscriptions
            (user_id, order_id, endpoint, p256dh, auth, after_event_id, created_at)
         VALUES (?1, ?2, ?3, ?4, ?5, (SELECT COALESCE(MAX(id), 0) FROM events), ?6)",
    )?
    .execute(params![
        user,
        order,
        new.endpoint,
        new.p256dh,
        new.auth,
        micros(new.created_at)
    ])?;
    let id = conn.last_insert_rowid();
    first(
        conn,
        concat!(push_subscription_select!(), " WHERE s.id = ?1"),
        [id],
        |row| codec::push_subscription(row),
    )?
    .ok_or(StoreError::NotFound("push subscription"))
}

pub fn delete_push_subscription(
    conn: &Connection,
    owner: PushOwner,
    endpoint: &str,
) -> Result<bool, StoreError> {
    let (user, order) = owner.columns();
    let deleted = conn
        .prepare_cached(DELETE_OWNED)?
        .execute(params![user, order, endpoint])?;
    Ok(deleted > 0)
}

pub fn push_subscriptions(
    conn: &Connection,
    owner: PushOwner,
) -> Result<Vec<PushSubscription>, StoreError> {
    let (user, order) = owner.columns();
    all(
        conn,
        concat!(
            push_subscription_select!(),
            " WHERE s.user_id IS ?1 AND s.order_id IS ?2 ORDER BY s.id"
        ),
        params![user, order],
        |row| codec::push_subscription(row),
    )
}

pub fn push_cursor(conn: &Connection) -> Result<i64, StoreError> {
    outbox::read_cursor(conn, Outbox::Push)
}

pub fn enqueue_push_jobs(conn: &Connection, batch: &PushEnqueue) -> Result<bool, StoreError> {
    if !outbox::move_cursor(conn, Outbox::Push, batch.after, batch.upto)? {
        return Ok(false);
    }
    let mut insert = conn.prepare_cached(
        "INSERT INTO push_jobs (subscription_id, event_id, state, next_attempt_at, created_at)
         SELECT s.id, ?1, 'pending', ?4, ?4 FROM push_subscriptions s
         WHERE (s.user_id = ?2 OR s.order_id = ?3) AND s.after_event_id < ?1
         ON CONFLICT (subscription_id, event_id) DO NOTHING",
    )?;
    for event in &batch.events {
        insert.execute(params![
            event.event_id,
            event.customer_id.get(),
            event.order_id.get(),
            micros(batch.at)
        ])?;
    }
    Ok(true)
}

pub fn claim_push_jobs(
    conn: &Connection,
    now: OffsetDateTime,
    until: OffsetDateTime,
    limit: u32,
) -> Result<Vec<PushJob>, StoreError> {
    const CLAIM: Claim = Claim {
        outbox: Outbox::Push,
        due: outbox::due_jobs!("push_jobs", "next_attempt_at, id"),
        read: concat!(push_job_select!(), " WHERE j.id = ?1"),
    };
    outbox::claim(conn, &CLAIM, now, until, limit, |row| codec::push_job(row))
}

pub fn next_push_attempt(conn: &Connection) -> Result<Option<OffsetDateTime>, StoreError> {
    outbox::next_attempt(conn, Outbox::Push)
}

pub fn record_push_attempt(conn: &Connection, attempt: &PushAttempt) -> Result<(), StoreError> {
    let Some((state, next)) = attempt.next_state() else {
        // Gone: the subscription goes, its jobs with it (ON DELETE CASCADE).
        conn.prepare_cached(
            "DELETE FROM push_subscriptions
             WHERE id = (SELECT subscription_id FROM push_jobs WHERE id = ?1)",
        )?
        .execute([attempt.job])?;
        return Ok(());
    };
    conn.prepare_cached(
        "UPDATE push_jobs
         SET state = ?2, attempts = attempts + 1, http_status = ?3, error = ?4,
             next_attempt_at = ?5, claimed_until = NULL
         WHERE id = ?1",
    )?
    .execute(params![
        attempt.job,
        state,
        attempt.http_status,
        attempt.error,
        next.map(micros),
    ])?;
    Ok(())
}
