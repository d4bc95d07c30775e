//! What the outbox followers of the event log (e-mail, Web Push, webhooks)
//! share on PostgreSQL: their cursors and the claim of due jobs. Several
//! instances may send: a claim locks the jobs it takes (`FOR UPDATE SKIP
//! LOCKED`) and marks them claimed until a time, so no two instances send
//! the same job at once, and a cursor moves only from where its mover read
//! it.
//!
//! The SQL built here names tables only through [`Outbox`]'s fixed names
//! (never input), hence `AssertSqlSafe`.

use sqlx::AssertSqlSafe;
use sqlx::postgres::{PgConnection, PgRow};
use time::OffsetDateTime;

use super::jobs::{Request, Run};
use super::rows::{Log, Result};
use crate::Outbox;
use crate::codec::{self, micros};

/// How far the follower has turned events into its jobs.
pub async fn read_cursor(conn: &mut PgConnection, outbox: Outbox) -> Result<i64> {
    let sql = format!("SELECT last_event_id FROM {} WHERE id = 1", outbox.cursor_table());
    Ok(sqlx::query_scalar(AssertSqlSafe(sql)).fetch_one(&mut *conn).await?)
}

/// Moves an outbox follower's cursor from `after` to `upto`; false (and
/// nothing changed) if it is no longer at `after`.
pub async fn move_cursor(
    conn: &mut PgConnection,
    outbox: Outbox,
    after: i64,
    upto: i64,
) -> Result<bool> {
    let sql = format!(
        "UPDATE {} SET last_event_id = $2 WHERE id = 1 AND last_event_id = $1",
        outbox.cursor_table()
    );
    let moved = sqlx::query(AssertSqlSafe(sql))
        .bind(after)
        .bind(upto)
        .execute(&mut *conn)
        .await?
        .rows_affected();
    Ok(moved > 0)
}

/// The ids of the due, unclaimed jobs of an outbox without queues (every
/// pending job is sendable: e-mail, push), in the order given — a
/// [`Claim`]'s `due`.
macro_rules! due_jobs {
    ($table:literal, $order:literal) => {
        concat!(
            "SELECT id FROM ",
            $table,
            " WHERE state = 'pending' AND next_attempt_at <= $1
                AND (claimed_until IS NULL OR claimed_until <= $1)
              ORDER BY ",
            $order,
            " LIMIT $2 FOR UPDATE SKIP LOCKED"
        )
    };
}
pub(crate) use due_jobs;

/// One outbox's claim of due jobs.
pub struct Claim {
    /// Whose jobs: a claim sets their `claimed_until`.
    pub outbox: Outbox,
    /// The ids (column `id`) of the due, unclaimed jobs, locked `FOR UPDATE
    /// SKIP LOCKED` (`$1` now, `$2` how many).
    pub due: &'static str,
    /// The claimed jobs as their worker takes them: `$1` their ids.
    pub read: &'static str,
}

/// Marks the jobs `claim` finds due at `now` claimed until `until`, at most
/// `limit`, and reads them (the rows of `claim.read`).
pub async fn claim(
    conn: &mut PgConnection,
    claim: &Claim,
    now: OffsetDateTime,
    until: OffsetDateTime,
    limit: u32,
) -> Result<Vec<PgRow>> {
    let due: Vec<i64> = sqlx::query_scalar(claim.due)
        .bind(micros(now))
        .bind(i64::from(limit))
        .fetch_all(&mut *conn)
        .await?;
    if due.is_empty() {
        return Ok(Vec::new());
    }
    let mark = format!("UPDATE {} SET claimed_until = $2 WHERE id = ANY($1)", claim.outbox.jobs_table());
    sqlx::query(AssertSqlSafe(mark))
        .bind(&due)
        .bind(micros(until))
        .execute(&mut *conn)
        .await?;
    Ok(sqlx::query(claim.read).bind(&due).fetch_all(&mut *conn).await?)
}

/// When the next pending job of an outbox without queues (every pending
/// job is sendable: e-mail, push) is due: its next attempt, or the end of
/// its claim if later.
pub async fn next_attempt(conn: &mut PgConnection, outbox: Outbox) -> Result<Option<OffsetDateTime>> {
    let sql = format!(
        "SELECT MIN(GREATEST(next_attempt_at, COALESCE(claimed_until, 0)))
         FROM {} WHERE state = 'pending'",
        outbox.jobs_table()
    );
    let next: Option<i64> = sqlx::query_scalar(AssertSqlSafe(sql)).fetch_one(&mut *conn).await?;
    Ok(next.map(codec::from_micros).transpose()?)
}

/// Deletes an outbox's jobs done with and made before a time, at most so
/// many, oldest first; how many.
pub struct PruneOutbox(pub Outbox, pub OffsetDateTime, pub u32);

impl Request for PruneOutbox {
    type Output = u64;
    fn run<'a>(&'a self, conn: &'a mut PgConnection, _: &'a mut Log) -> Run<'a, u64> {
        let PruneOutbox(outbox, before, limit) = *self;
        Box::pin(async move {
            let sql = codec::prune_sql(outbox, "$1", "$2");
            let deleted = sqlx::query(AssertSqlSafe(sql))
                .bind(micros(before))
                .bind(i64::from(limit))
                .execute(&mut *conn)
                .await?
                .rows_affected();
            Ok(deleted)
        })
    }
}
