//! Customer e-mail on PostgreSQL: the outbox cursor, mail jobs (one per
//! event and recipient) with their retry state, and opt-outs. Several
//! instances may send: a claim locks the jobs it takes (`FOR UPDATE SKIP
//! LOCKED`) and marks them claimed until a time, so no two instances send
//! the same mail at once, and the cursor moves only from where its mover
//! read it.

use ordertrack_domain::UserId;
use sqlx::postgres::PgConnection;
use time::OffsetDateTime;

use super::jobs::{Request, Run};
use super::outbox::{self, Claim};
use super::rows::{Log, Result};
use crate::codec::{self, micros};
use crate::{Outbox, EmailAttempt, EmailEnqueue, EmailJob, EmailJobRecord, StoreError};

pub async fn email_cursor(conn: &mut PgConnection) -> Result<i64> {
    outbox::read_cursor(conn, Outbox::Email).await
}

pub async fn next_email_attempt(conn: &mut PgConnection) -> Result<Option<OffsetDateTime>> {
    outbox::next_attempt(conn, Outbox::Email).await
}

pub async fn email_jobs(conn: &mut PgConnection, event: i64) -> Result<Vec<EmailJobRecord>> {
    let rows = sqlx::query(
        "SELECT id, event_id, user_id, state, attempts, error FROM email_jobs
         WHERE event_id = $1 ORDER BY user_id",
    )
    .bind(event)
    .fetch_all(&mut *conn)
    .await?;
    Ok(rows
        .iter()
        .map(codec::email_job_record)
        .collect::<std::result::Result<_, _>>()?)
}

pub async fn email_opted_out(conn: &mut PgConnection, user: UserId) -> Result<bool> {
    Ok(sqlx::query_scalar(
        "SELECT EXISTS (SELECT 1 FROM email_opt_outs WHERE user_id = $1)",
    )
    .bind(user.get())
    .fetch_one(&mut *conn)
    .await?)
}

// ---- writes, as requests for the writer ----

impl Request for EmailEnqueue {
    type Output = bool;
    fn run<'a>(&'a self, conn: &'a mut PgConnection, _: &'a mut Log) -> Run<'a, bool> {
        Box::pin(async move {
            if !outbox::move_cursor(conn, Outbox::Email, self.after, self.upto).await? {
                return Ok(false);
            }
            if !self.jobs.is_empty() {
                let (events, users): (Vec<i64>, Vec<i64>) = self
                    .jobs
                    .iter()
                    .map(|(event, user)| (*event, user.get()))
                    .unzip();
                sqlx::query(
                    "INSERT INTO email_jobs (event_id, user_id, state, next_attempt_at, created_at)
                     SELECT event_id, user_id, 'pending', $3, $3
                     FROM UNNEST($1::int8[], $2::int8[]) AS q(event_id, user_id)
                     ON CONFLICT (event_id, user_id) DO NOTHING",
                )
                .bind(&events)
                .bind(&users)
                .bind(micros(self.at))
                .execute(&mut *conn)
                .await?;
            }
            Ok(true)
        })
    }
}

/// Claims the mail jobs due at a time until another, at most so many.
pub struct ClaimEmails(pub OffsetDateTime, pub OffsetDateTime, pub u32);

impl Request for ClaimEmails {
    type Output = Vec<EmailJob>;
    fn run<'a>(&'a self, conn: &'a mut PgConnection, _: &'a mut Log) -> Run<'a, Vec<EmailJob>> {
        let ClaimEmails(now, until, limit) = *self;
        Box::pin(async move {
            const CLAIM: Claim = Claim {
                outbox: Outbox::Email,
                due: outbox::due_jobs!("email_jobs", "event_id, id"),
                read: "SELECT id, event_id, user_id, attempts FROM email_jobs
                       WHERE id = ANY($1) ORDER BY event_id, id",
            };
            let rows = outbox::claim(conn, &CLAIM, now, until, limit).await?;
            Ok(rows
                .iter()
                .map(codec::email_job)
                .collect::<std::result::Result<_, _>>()?)
        })
    }
}

impl Request for EmailAttempt {
    type Output = ();
    fn run<'a>(&'a self, conn: &'a mut PgConnection, _: &'a mut Log) -> Run<'a, ()> {
        Box::pin(async move {
            sqlx::query(
                "UPDATE email_jobs
                 SET state = $2, attempts = attempts + 1, error = $3, last_attempt_at = $4,
                     next_attempt_at = $5, claimed_until = NULL
                 WHERE id = $1",
            )
            .bind(self.job)
            .bind(self.outcome.state())
            .bind(&self.error)
            .bind(micros(self.at))
            .bind(self.outcome.next_attempt().map(micros))
            .execute(&mut *conn)
            .await?;
            Ok(())
        })
    }
}

/// Stops or resumes mail to a customer.
pub struct SetEmailOptOut(pub UserId, pub bool, pub OffsetDateTime);

impl Request for SetEmailOptOut {
    type Output = ();
    fn run<'a>(&'a self, conn: &'a mut PgConnection, _: &'a mut Log) -> Run<'a, ()> {
        let SetEmailOptOut(user, opted_out, at) = *self;
        Box::pin(async move {
            let known: Option<i64> = sqlx::query_scalar("SELECT id FROM users WHERE id = $1")
                .bind(user.get())
                .fetch_optional(&mut *conn)
                .await?;
            if known.is_none() {
                return Err(StoreError::NotFound("user").into());
            }
            if opted_out {
                sqlx::query(
                    "INSERT INTO email_opt_outs (user_id, at) VALUES ($1, $2)
                     ON CONFLICT (user_id) DO NOTHING",
                )
                .bind(user.get())
                .bind(micros(at))
                .execute(&mut *conn)
                .await?;
            } else {
                sqlx::query("DELETE FROM email_opt_outs WHERE user_id = $1")
                    .bind(user.get())
                    .execute(&mut *conn)
                    .await?;
            }
            Ok(())
        })
    }
}
