//! What the outbox followers of the event log (e-mail, Web Push, webhooks)
//! share on SQLite: their cursors and the claim of due jobs. The writer
//! thread runs every write, so a claim (read the due jobs, mark them) is
//! atomic.

use rusqlite::{Connection, Row, params};
use time::OffsetDateTime;

use super::rows::{all, first};
use crate::codec::{self, micros};
use crate::{Outbox, StoreError};

/// How far the follower has turned events into its jobs.
pub fn read_cursor(conn: &Connection, outbox: Outbox) -> Result<i64, StoreError> {
    let sql = format!("SELECT last_event_id FROM {} WHERE id = 1", outbox.cursor_table());
    Ok(conn.prepare_cached(&sql)?.query_row([], |row| row.get(0))?)
}

/// Moves an outbox follower's cursor from `after` to `upto`; false (and
/// nothing changed) if it is no longer at `after`.
pub fn move_cursor(
    conn: &Connection,
    outbox: Outbox,
    after: i64,
    upto: i64,
) -> Result<bool, StoreError> {
    let sql = format!(
        "UPDATE {} SET last_event_id = ?2 WHERE id = 1 AND last_event_id = ?1",
        outbox.cursor_table()
    );
    Ok(conn.prepare_cached(&sql)?.execute(params![after, upto])? > 0)
}

/// The ids of the due, unclaimed jobs of an outbox without queues (every
/// pending job is sendable: e-mail, push), in the order given — a
/// [`Claim`]'s `due`.
macro_rules! due_jobs {
    ($table:literal, $order:literal) => {
        concat!(
            "SELECT id FROM ",
            $table,
            " WHERE state = 'pending' AND next_attempt_at <= ?1
                AND (claimed_until IS NULL OR claimed_until <= ?1)
              ORDER BY ",
            $order,
            " LIMIT ?2"
        )
    };
}
pub(crate) use due_jobs;

/// One outbox's claim of due jobs.
pub struct Claim {
    /// Whose jobs: a claim sets their `claimed_until`.
    pub outbox: Outbox,
    /// The ids of the due, unclaimed jobs in the order they are sent
    /// (`?1` now, `?2` how many).
    pub due: &'static str,
    /// One job as its worker takes it (`?1` its id).
    pub read: &'static str,
}

/// Marks the jobs `claim` finds due at `now` claimed until `until`, at most
/// `limit`, and reads them in their due order.
pub fn claim<T>(
    conn: &Connection,
    claim: &Claim,
    now: OffsetDateTime,
    until: OffsetDateTime,
    limit: u32,
    decode: impl Fn(&Row<'_>) -> Result<T, StoreError>,
) -> Result<Vec<T>, StoreError> {
    let due: Vec<i64> = all(conn, claim.due, params![micros(now), limit], |row| {
        Ok(row.get(0)?)
    })?;
    let mark = format!("UPDATE {} SET claimed_until = ?2 WHERE id = ?1", claim.outbox.jobs_table());
    let mut claimed = Vec::with_capacity(due.len());
    for id in due {
        conn.prepare_cached(&mark)?
            .execute(params![id, micros(until)])?;
        claimed.extend(first(conn, claim.read, [id], &decode)?);
    }
    Ok(claimed)
}

/// When the next pending job of an outbox without queues (every pending
/// job is sendable: e-mail, push) is due: its next attempt, or the end of
/// its claim if later.
pub fn next_attempt(conn: &Connection, outbox: Outbox) -> Result<Option<OffsetDateTime>, StoreError> {
    let sql = format!(
        "SELECT MIN(MAX(next_attempt_at, COALESCE(claimed_until, 0)))
         FROM {} WHERE state = 'pending'",
        outbox.jobs_table()
    );
    let next: Option<i64> = conn.prepare_cached(&sql)?.query_row([], |row| row.get(0))?;
    next.map(codec::from_micros).transpose()
}

/// Deletes `outbox`'s jobs done with and made before `before`, at most
/// `limit`, oldest first; how many.
pub fn prune(
    conn: &Connection,
    outbox: Outbox,
    before: OffsetDateTime,
    limit: u32,
) -> Result<u64, StoreError> {
    let sql = codec::prune_sql(outbox, "?1", "?2");
    let deleted = conn
        .prepare_cached(&sql)?
        .execute(params![micros(before), limit])?;
    Ok(deleted as u64)
}
