//! Webhooks on SQLite: a store's endpoints, their deliveries, the outbox
//! cursor, and the delivery worker's claims and attempts. The writer thread
//! runs every write, so a claim (read the queue heads, mark them) is atomic.

use ordertrack_domain::{DeliveryId, StoreId, WebhookId};
use rusqlite::{Connection, params};
use time::OffsetDateTime;

use super::outbox::{self, Claim};
use super::rows::{all, first};
use crate::codec::{
    self, claimed_select, delivery_is_head, delivery_select, micros, webhook_select,
};
use crate::{
    ClaimedDelivery, Outbox, NewWebhook, StoreError, Webhook, WebhookAttempt,
    WebhookDelivery, WebhookEnqueue,
};

pub fn create_webhook(conn: &Connection, new: &NewWebhook) -> Result<Webhook, StoreError> {
    conn.prepare_cached(
        "INSERT INTO webhook_endpoints
            (store_id, url, events, enabled, secret, created_at, after_event_id)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, (SELECT COALESCE(MAX(id), 0) FROM events))",
    )?
    .execute(params![
        new.store_id.get(),
        new.url,
        codec::to_json(&new.events)?,
        new.enabled,
        new.secret,
        micros(new.created_at),
    ])?;
    let id = WebhookId::new(conn.last_insert_rowid());
    webhook(conn, new.store_id, id)?.ok_or(StoreError::NotFound("webhook"))
}

fn webhook(conn: &Connection, store: StoreId, id: WebhookId) -> Result<Option<Webhook>, StoreError> {
    first(
        conn,
        concat!(webhook_select!(), " WHERE w.id = ?1 AND w.store_id = ?2"),
        params![id.get(), store.get()],
        |row| codec::webhook(row),
    )
}

pub fn webhooks(conn: &Connection, store: StoreId) -> Result<Vec<Webhook>, StoreError> {
    all(
        conn,
        concat!(webhook_select!(), " WHERE w.store_id = ?1 ORDER BY w.id"),
        [store.get()],
        |row| codec::webhook(row),
    )
}

pub fn enabled_webhooks(conn: &Connection) -> Result<Vec<Webhook>, StoreError> {
    all(
        conn,
        concat!(webhook_select!(), " WHERE w.enabled ORDER BY w.id"),
        [],
        |row| codec::webhook(row),
    )
}

pub fn delete_webhook(conn: &Connection, store: StoreId, id: WebhookId) -> Result<bool, StoreError> {
    // Its deliveries go with it (ON DELETE CASCADE).
    let deleted = conn
        .prepare_cached("DELETE FROM webhook_endpoints WHERE id = ?1 AND store_id = ?2")?
        .execute(params![id.get(), store.get()])?;
    Ok(deleted > 0)
}

pub fn rotate_webhook_secret(
    conn: &Connection,
    store: StoreId,
    id: WebhookId,
    secret: &str,
    previous_until: OffsetDateTime,
) -> Result<Option<Webhook>, StoreError> {
    conn.prepare_cached(
        "UPDATE webhook_endpoints
         SET previous_secret = secret, previous_secret_until = ?3, secret = ?4
         WHERE id = ?1 AND store_id = ?2",
    )?
    .execute(params![id.get(), store.get(), micros(previous_until), secret])?;
    webhook(conn, store, id)
}

pub fn webhook_deliveries(
    conn: &Connection,
    webhook: WebhookId,
    limit: u32,
) -> Result<Vec<WebhookDelivery>, StoreError> {
    all(
        conn,
        concat!(delivery_select!(), " WHERE d.webhook_id = ?1 ORDER BY d.id DESC LIMIT ?2"),
        params![webhook.get(), limit],
        |row| codec::webhook_delivery(row),
    )
}

pub fn retry_webhook_delivery(
    conn: &Connection,
    webhook: WebhookId,
    delivery: DeliveryId,
    at: OffsetDateTime,
) -> Result<Option<WebhookDelivery>, StoreError> {
    conn.prepare_cached(
        "UPDATE webhook_deliveries SET state = 'pending', next_attempt_at = ?3
         WHERE id = ?1 AND webhook_id = ?2",
    )?
    .execute(params![delivery.get(), webhook.get(), micros(at)])?;
    first(
        conn,
        concat!(delivery_select!(), " WHERE d.id = ?1 AND d.webhook_id = ?2"),
        params![delivery.get(), webhook.get()],
        |row| codec::webhook_delivery(row),
    )
}

pub fn webhook_cursor(conn: &Connection) -> Result<i64, StoreError> {
    outbox::read_cursor(conn, Outbox::Webhooks)
}

pub fn enqueue_webhook_deliveries(
    conn: &Connection,
    batch: &WebhookEnqueue,
) -> Result<bool, StoreError> {
    if !outbox::move_cursor(conn, Outbox::Webhooks, batch.after, batch.upto)? {
        return Ok(false);
    }
    let mut insert = conn.prepare_cached(
        "INSERT INTO webhook_deliveries (webhook_id, event_id, state, next_attempt_at, created_at)
         VALUES (?1, ?2, 'pending', ?3, ?3) ON CONFLICT (webhook_id, event_id) DO NOTHING",
    )?;
    for (webhook, event) in &batch.deliveries {
        insert.execute(params![webhook.get(), event, micros(batch.at)])?;
    }
    Ok(true)
}

pub fn claim_webhook_deliveries(
    conn: &Connection,
    now: OffsetDateTime,
    until: OffsetDateTime,
    limit: u32,
) -> Result<Vec<ClaimedDelivery>, StoreError> {
    const CLAIM: Claim = Claim {
        outbox: Outbox::Webhooks,
        due: concat!(
            "SELECT d.id FROM webhook_deliveries d JOIN webhook_endpoints w ON w.id = d.webhook_id
             WHERE ",
            delivery_is_head!(),
            " AND d.next_attempt_at <= ?1 AND (d.claimed_until IS NULL OR d.claimed_until <= ?1)
             ORDER BY d.next_attempt_at, d.id LIMIT ?2"
        ),
        read: concat!(claimed_select!(), " WHERE d.id = ?1"),
    };
    outbox::claim(conn, &CLAIM, now, until, limit, |row| codec::claimed_delivery(row))
}

pub fn next_webhook_attempt(conn: &Connection) -> Result<Option<OffsetDateTime>, StoreError> {
    let next: Option<i64> = conn
        .prepare_cached(concat!(
            "SELECT MIN(MAX(d.next_attempt_at, COALESCE(d.claimed_until, 0)))
             FROM webhook_deliveries d JOIN webhook_endpoints w ON w.id = d.webhook_id
             WHERE ",
            delivery_is_head!()
        ))?
        .query_row([], |row| row.get(0))?;
    next.map(codec::from_micros).transpose()
}

pub fn record_webhook_attempt(
    conn: &Connection,
    attempt: &WebhookAttempt,
) -> Result<(), StoreError> {
    let (state, next) = attempt.next_state();
    conn.prepare_cached(
        "UPDATE webhook_deliveries
         SET state = ?2, attempts = attempts + 1, http_status = ?3, duration_ms = ?4, error = ?5,
             last_attempt_at = ?6, next_attempt_at = ?7, claimed_until = NULL
         WHERE id = ?1",
    )?
    .execute(params![
        attempt.delivery.get(),
        state.as_str(),
        attempt.http_status,
        attempt.duration_ms,
        attempt.error,
        micros(attempt.at),
        next.map(micros),
    ])?;
    if attempt.outcome == crate::AttemptOutcome::EndpointGone {
        conn.prepare_cached(
            "UPDATE webhook_endpoints SET enabled = 0, disabled_reason = ?2
             WHERE id = (SELECT webhook_id FROM webhook_deliveries WHERE id = ?1)",
        )?
        .execute(params![attempt.delivery.get(), crate::GONE_REASON])?;
    }
    Ok(())
}
