//! Webhooks on PostgreSQL: a store's endpoints, their deliveries, the
//! outbox cursor, and the delivery workers' claims and attempts. Several
//! instances may deliver: a claim locks the queue heads it takes (`FOR
//! UPDATE SKIP LOCKED`) and marks them claimed until a time, so no two
//! instances send the same delivery at once, and the cursor moves only
//! from where its mover read it.

use ordertrack_domain::{DeliveryId, StoreId, WebhookId};
use sqlx::postgres::PgConnection;
use time::OffsetDateTime;

use super::jobs::{Request, Run};
use super::outbox::{self, Claim};
use super::rows::{Log, Result};
use crate::codec::{
    self, claimed_select, delivery_is_head, delivery_select, micros, webhook_select,
};
use crate::{
    Outbox, AttemptOutcome, ClaimedDelivery, NewWebhook, StoreError, Webhook, WebhookAttempt,
    WebhookDelivery, WebhookEnqueue,
};

async fn webhook(
    conn: &mut PgConnection,
    store: StoreId,
    id: WebhookId,
) -> Result<Option<Webhook>> {
    let row = sqlx::query(concat!(webhook_select!(), " WHERE w.id = $1 AND w.store_id = $2"))
        .bind(id.get())
        .bind(store.get())
        .fetch_optional(&mut *conn)
        .await?;
    Ok(row.as_ref().map(codec::webhook).transpose()?)
}

pub async fn webhooks(conn: &mut PgConnection, store: StoreId) -> Result<Vec<Webhook>> {
    let rows = sqlx::query(concat!(webhook_select!(), " WHERE w.store_id = $1 ORDER BY w.id"))
        .bind(store.get())
        .fetch_all(&mut *conn)
        .await?;
    decode_webhooks(&rows)
}

pub async fn enabled_webhooks(conn: &mut PgConnection) -> Result<Vec<Webhook>> {
    let rows = sqlx::query(concat!(webhook_select!(), " WHERE w.enabled ORDER BY w.id"))
        .fetch_all(&mut *conn)
        .await?;
    decode_webhooks(&rows)
}

fn decode_webhooks(rows: &[sqlx::postgres::PgRow]) -> Result<Vec<Webhook>> {
    Ok(rows
        .iter()
        .map(codec::webhook)
        .collect::<std::result::Result<_, _>>()?)
}

pub async fn webhook_deliveries(
    conn: &mut PgConnection,
    webhook: WebhookId,
    limit: u32,
) -> Result<Vec<WebhookDelivery>> {
    let rows = sqlx::query(concat!(
        delivery_select!(),
        " WHERE d.webhook_id = $1 ORDER BY d.id DESC LIMIT $2"
    ))
    .bind(webhook.get())
    .bind(i64::from(limit))
    .fetch_all(&mut *conn)
    .await?;
    Ok(rows
        .iter()
        .map(codec::webhook_delivery)
        .collect::<std::result::Result<_, _>>()?)
}

pub async fn webhook_cursor(conn: &mut PgConnection) -> Result<i64> {
    outbox::read_cursor(conn, Outbox::Webhooks).await
}

pub async fn next_webhook_attempt(conn: &mut PgConnection) -> Result<Option<OffsetDateTime>> {
    let next: Option<i64> = sqlx::query_scalar(concat!(
        "SELECT MIN(GREATEST(d.next_attempt_at, COALESCE(d.claimed_until, 0)))
         FROM webhook_deliveries d JOIN webhook_endpoints w ON w.id = d.webhook_id
         WHERE ",
        delivery_is_head!()
    ))
    .fetch_one(&mut *conn)
    .await?;
    Ok(next.map(codec::from_micros).transpose()?)
}

// ---- writes, as requests for the writer ----

impl Request for NewWebhook {
    type Output = Webhook;
    fn run<'a>(&'a self, conn: &'a mut PgConnection, _: &'a mut Log) -> Run<'a, Webhook> {
        Box::pin(async move {
            let id: i64 = sqlx::query_scalar(
                "INSERT INTO webhook_endpoints
                    (store_id, url, events, enabled, secret, created_at, after_event_id)
                 VALUES ($1, $2, $3, $4, $5, $6, (SELECT last_id FROM event_log_head))
                 RETURNING id",
            )
            .bind(self.store_id.get())
            .bind(&self.url)
            .bind(codec::to_json(&self.events)?)
            .bind(self.enabled)
            .bind(&self.secret)
            .bind(micros(self.created_at))
            .fetch_one(&mut *conn)
            .await?;
            webhook(conn, self.store_id, WebhookId::new(id))
                .await?
                .ok_or_else(|| StoreError::NotFound("webhook").into())
        })
    }
}

/// Deletes a store's endpoint (its deliveries go with it).
pub struct DeleteWebhook(pub StoreId, pub WebhookId);

impl Request for DeleteWebhook {
    type Output = bool;
    fn run<'a>(&'a self, conn: &'a mut PgConnection, _: &'a mut Log) -> Run<'a, bool> {
        Box::pin(async move {
            let deleted = sqlx::query("DELETE FROM webhook_endpoints WHERE id = $1 AND store_id = $2")
                .bind(self.1.get())
                .bind(self.0.get())
                .execute(&mut *conn)
                .await?
                .rows_affected();
            Ok(deleted > 0)
        })
    }
}

/// Gives a store's endpoint a new secret, the old one signing until a time.
pub struct RotateWebhookSecret(pub StoreId, pub WebhookId, pub String, pub OffsetDateTime);

impl Request for RotateWebhookSecret {
    type Output = Option<Webhook>;
    fn run<'a>(&'a self, conn: &'a mut PgConnection, _: &'a mut Log) -> Run<'a, Option<Webhook>> {
        let RotateWebhookSecret(store, id, secret, until) = self;
        Box::pin(async move {
            sqlx::query(
                "UPDATE webhook_endpoints
                 SET previous_secret = secret, previous_secret_until = $3, secret = $4
                 WHERE id = $1 AND store_id = $2",
            )
            .bind(id.get())
            .bind(store.get())
            .bind(micros(*until))
            .bind(secret)
            .execute(&mut *conn)
            .await?;
            webhook(conn, *store, *id).await
        })
    }
}

/// Makes an endpoint's delivery pending, due at a time.
pub struct RetryWebhookDelivery(pub WebhookId, pub DeliveryId, pub OffsetDateTime);

impl Request for RetryWebhookDelivery {
    type Output = Option<WebhookDelivery>;
    fn run<'a>(
        &'a self,
        conn: &'a mut PgConnection,
        _: &'a mut Log,
    ) -> Run<'a, Option<WebhookDelivery>> {
        let RetryWebhookDelivery(webhook, delivery, at) = *self;
        Box::pin(async move {
            sqlx::query(
                "UPDATE webhook_deliveries SET state = 'pending', next_attempt_at = $3
                 WHERE id = $1 AND webhook_id = $2",
            )
            .bind(delivery.get())
            .bind(webhook.get())
            .bind(micros(at))
            .execute(&mut *conn)
            .await?;
            let row = sqlx::query(concat!(
                delivery_select!(),
                " WHERE d.id = $1 AND d.webhook_id = $2"
            ))
            .bind(delivery.get())
            .bind(webhook.get())
            .fetch_optional(&mut *conn)
            .await?;
            Ok(row.as_ref().map(codec::webhook_delivery).transpose()?)
        })
    }
}

impl Request for WebhookEnqueue {
    type Output = bool;
    fn run<'a>(&'a self, conn: &'a mut PgConnection, _: &'a mut Log) -> Run<'a, bool> {
        Box::pin(async move {
            if !outbox::move_cursor(conn, Outbox::Webhooks, self.after, self.upto).await? {
                return Ok(false);
            }
            if !self.deliveries.is_empty() {
                let (webhooks, events): (Vec<i64>, Vec<i64>) = self
                    .deliveries
                    .iter()
                    .map(|(webhook, event)| (webhook.get(), *event))
                    .unzip();
                sqlx::query(
                    "INSERT INTO webhook_deliveries
                        (webhook_id, event_id, state, next_attempt_at, created_at)
                     SELECT webhook_id, event_id, 'pending', $3, $3
                     FROM UNNEST($1::int8[], $2::int8[]) AS q(webhook_id, event_id)
                     ON CONFLICT (webhook_id, event_id) DO NOTHING",
                )
                .bind(&webhooks)
                .bind(&events)
                .bind(micros(self.at))
                .execute(&mut *conn)
                .await?;
            }
            Ok(true)
        })
    }
}

/// Claims the deliveries due at a time until another, at most so many.
pub struct ClaimWebhookDeliveries(pub OffsetDateTime, pub OffsetDateTime, pub u32);

impl Request for ClaimWebhookDeliveries {
    type Output = Vec<ClaimedDelivery>;
    fn run<'a>(
        &'a self,
        conn: &'a mut PgConnection,
        _: &'a mut Log,
    ) -> Run<'a, Vec<ClaimedDelivery>> {
        let ClaimWebhookDeliveries(now, until, limit) = *self;
        Box::pin(async move {
            const CLAIM: Claim = Claim {
                outbox: Outbox::Webhooks,
                due: concat!(
                    "SELECT d.id FROM webhook_deliveries d
                     JOIN webhook_endpoints w ON w.id = d.webhook_id
                     WHERE ",
                    delivery_is_head!(),
                    " AND d.next_attempt_at <= $1
                       AND (d.claimed_until IS NULL OR d.claimed_until <= $1)
                     ORDER BY d.next_attempt_at, d.id LIMIT $2
                     FOR UPDATE OF d SKIP LOCKED"
                ),
                read: concat!(
                    claimed_select!(),
                    " WHERE d.id = ANY($1) ORDER BY d.next_attempt_at, d.id"
                ),
            };
            let rows = outbox::claim(conn, &CLAIM, now, until, limit).await?;
            Ok(rows
                .iter()
                .map(codec::claimed_delivery)
                .collect::<std::result::Result<_, _>>()?)
        })
    }
}

impl Request for WebhookAttempt {
    type Output = ();
    fn run<'a>(&'a self, conn: &'a mut PgConnection, _: &'a mut Log) -> Run<'a, ()> {
        Box::pin(async move {
            let (state, next) = self.next_state();
            sqlx::query(
                "UPDATE webhook_deliveries
                 SET state = $2, attempts = attempts + 1, http_status = $3, duration_ms = $4,
                     error = $5, last_attempt_at = $6, next_attempt_at = $7, claimed_until = NULL
                 WHERE id = $1",
            )
            .bind(self.delivery.get())
            .bind(state.as_str())
            .bind(self.http_status.map(i64::from))
            .bind(self.duration_ms)
            .bind(&self.error)
            .bind(micros(self.at))
            .bind(next.map(micros))
            .execute(&mut *conn)
            .await?;
            if self.outcome == AttemptOutcome::EndpointGone {
                sqlx::query(
                    "UPDATE webhook_endpoints SET enabled = FALSE, disabled_reason = $2
                     WHERE id = (SELECT webhook_id FROM webhook_deliveries WHERE id = $1)",
                )
                .bind(self.delivery.get())
                .bind(crate::GONE_REASON)
                .execute(&mut *conn)
                .await?;
            }
            Ok(())
        })
    }
}
