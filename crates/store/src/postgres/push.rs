//! Web Push on PostgreSQL: customers' push subscriptions, the jobs made
//! for them, the outbox cursor, and the push workers' claims and attempts.
//! Several instances may send: a claim locks the jobs it takes (`FOR UPDATE
//! SKIP LOCKED`) and marks them claimed until a time, so no two instances
//! send the same job at once, and the cursor moves only from where its
//! mover read it.

use sqlx::postgres::PgConnection;
use time::OffsetDateTime;

use super::jobs::{Request, Run};
use super::outbox::{self, Claim};
use super::rows::{Log, Result};
use crate::codec::{self, micros, push_job_select, push_subscription_select};
use crate::{
    NewPushSubscription, Outbox, PushAttempt, PushEnqueue, PushJob, PushOwner, PushSubscription,
    StoreError,
};

/// The owner's subscriptions with this endpoint go (their jobs with them).
const DELETE_OWNED: &str = "DELETE FROM push_subscriptions
    WHERE user_id IS NOT DISTINCT FROM $1 AND order_id IS NOT DISTINCT FROM $2
      AND endpoint = $3";

fn decode_subscriptions(rows: &[sqlx::postgres::PgRow]) -> Result<Vec<PushSubscription>> {
    Ok(rows
        .iter()
        .map(codec::push_subscription)
        .collect::<std::result::Result<_, _>>()?)
}

pub async fn push_subscriptions(
    conn: &mut PgConnection,
    owner: PushOwner,
) -> Result<Vec<PushSubscription>> {
    let (user, order) = owner.columns();
    let rows = sqlx::query(concat!(
        push_subscription_select!(),
        " WHERE s.user_id IS NOT DISTINCT FROM $1 AND s.order_id IS NOT DISTINCT FROM $2
          ORDER BY s.id"
    ))
    .bind(user)
    .bind(order)
    .fetch_all(&mut *conn)
    .await?;
    decode_subscriptions(&rows)
}

pub async fn push_cursor(conn: &mut PgConnection) -> Result<i64> {
    outbox::read_cursor(conn, Outbox::Push).await
}

pub async fn next_push_attempt(conn: &mut PgConnection) -> Result<Option<OffsetDateTime>> {
    outbox::next_attempt(conn, Outbox::Push).await
}

// ---- writes, as requests for the writer ----

impl Request for NewPushSubscription {
    type Output = PushSubscription;
    fn run<'a>(&'a self, conn: &'a mut PgConnection, _: &'a mut Log) -> Run<'a, PushSubscription> {
        Box::pin(async move {
            let (user, order) = self.owner.columns();
            sqlx::query(DELETE_OWNED)
                .bind(user)
                .bind(order)
                .bind(&self.endpoint)
                .execute(&mut *conn)
                .await?;
            let id: i64 = sqlx::query_scalar(
                "INSERT INTO push_subscriptions
                    (user_id, order_id, endpoint, p256dh, auth, after_event_id, created_at)
                 VALUES ($1, $2, $3, $4, $5, (SELECT last_id FROM event_log_head), $6)
                 RETURNING id",
            )
            .bind(user)
            .bind(order)
            .bind(&self.endpoint)
            .bind(&self.p256dh)
            .bind(&self.auth)
            .bind(micros(self.created_at))
            .fetch_one(&mut *conn)
            .await?;
            let row = sqlx::query(concat!(push_subscription_select!(), " WHERE s.id = $1"))
                .bind(id)
                .fetch_optional(&mut *conn)
                .await?;
            row.as_ref()
                .map(codec::push_subscription)
                .transpose()?
                .ok_or_else(|| StoreError::NotFound("push subscription").into())
        })
    }
}

/// Deletes the owner's subscription with an endpoint (its jobs go with it).
pub struct DeletePushSubscription(pub PushOwner, pub String);

impl Request for DeletePushSubscription {
    type Output = bool;
    fn run<'a>(&'a self, conn: &'a mut PgConnection, _: &'a mut Log) -> Run<'a, bool> {
        Box::pin(async move {
            let (user, order) = self.0.columns();
            let deleted = sqlx::query(DELETE_OWNED)
                .bind(user)
                .bind(order)
                .bind(&self.1)
                .execute(&mut *conn)
                .await?
                .rows_affected();
            Ok(deleted > 0)
        })
    }
}

impl Request for PushEnqueue {
    type Output = bool;
    fn run<'a>(&'a self, conn: &'a mut PgConnection, _: &'a mut Log) -> Run<'a, bool> {
        Box::pin(async move {
            if !outbox::move_cursor(conn, Outbox::Push, self.after, self.upto).await? {
                return Ok(false);
            }
            if !self.events.is_empty() {
                let events: Vec<i64> = self.events.iter().map(|e| e.event_id).collect();
                let customers: Vec<i64> = self.events.iter().map(|e| e.customer_id.get()).collect();
                let orders: Vec<i64> = self.events.iter().map(|e| e.order_id.get()).collect();
                sqlx::query(
                    "INSERT INTO push_jobs
                        (subscription_id, event_id, state, next_attempt_at, created_at)
                     SELECT s.id, q.event_id, 'pending', $4, $4
                     FROM UNNEST($1::int8[], $2::int8[], $3::int8[])
                          AS q(event_id, customer_id, order_id)
                     JOIN push_subscriptions s
                       ON (s.user_id = q.customer_id OR s.order_id = q.order_id)
                      AND s.after_event_id < q.event_id
                     ON CONFLICT (subscription_id, event_id) DO NOTHING",
                )
                .bind(&events)
                .bind(&customers)
                .bind(&orders)
                .bind(micros(self.at))
                .execute(&mut *conn)
                .await?;
            }
            Ok(true)
        })
    }
}

/// Claims the jobs due at a time until another, at most so many.
pub struct ClaimPushJobs(pub OffsetDateTime, pub OffsetDateTime, pub u32);

impl Request for ClaimPushJobs {
    type Output = Vec<PushJob>;
    fn run<'a>(&'a self, conn: &'a mut PgConnection, _: &'a mut Log) -> Run<'a, Vec<PushJob>> {
        let ClaimPushJobs(now, until, limit) = *self;
        Box::pin(async move {
            const CLAIM: Claim = Claim {
                outbox: Outbox::Push,
                due: outbox::due_jobs!("push_jobs", "next_attempt_at, id"),
                read: concat!(
                    push_job_select!(),
                    " WHERE j.id = ANY($1) ORDER BY j.next_attempt_at, j.id"
                ),
            };
            let rows = outbox::claim(conn, &CLAIM, now, until, limit).await?;
            Ok(rows
                .iter()
                .map(codec::push_job)
                .collect::<std::result::Result<_, _>>()?)
        })
    }
}

impl Request for PushAttempt {
    type Output = ();
    fn run<'a>(&'a self, conn: &'a mut PgConnection, _: &'a mut Log) -> Run<'a, ()> {
        Box::pin(async move {
            let Some((state, next)) = self.next_state() else {
                // Gone: the subscription goes, its jobs with it (ON DELETE CASCADE).
                sqlx::query(
                    "DELETE FROM push_subscriptions
                     WHERE id = (SELECT subscription_id FROM push_jobs WHERE id = $1)",
                )
                .bind(self.job)
                .execute(&mut *conn)
                .await?;
                return Ok(());
            };
            sqlx::query(
                "UPDATE push_jobs
                 SET state = $2, attempts = attempts + 1, http_status = $3, error = $4,
                     next_attempt_at = $5, claimed_until = NULL
                 WHERE id = $1",
            )
            .bind(self.job)
            .bind(state)
            .bind(self.http_status.map(i64::from))
            .bind(&self.error)
            .bind(next.map(micros))
            .execute(&mut *conn)
            .await?;
            Ok(())
        })
    }
}
