//! The event log: order events and access changes, written last in each
//! batch; reads for replays and backfills.

use std::collections::{BTreeMap, HashMap};

use ordertrack_domain::{NewEvent, OrderId, StatusKey, StoreId};
use sqlx::Row;
use sqlx::postgres::PgConnection;
use time::OffsetDateTime;

use super::rows::{Log, Result};
use crate::codec::{self, micros};
use crate::{AccessChange, AccessEvent, EventFilter, LogEntry, StoreError, StoredEvent};

/// Writes a batch's events and access changes, last thing before its
/// commit, and returns them with their positions (the order events first).
/// The counter rows are locked from here until the commit: positions are
/// handed out in commit order and never skipped.
pub async fn append_events(conn: &mut PgConnection, log: Log) -> Result<Vec<LogEntry>> {
    let Log {
        events: pending,
        access,
        finishing,
    } = log;
    if pending.is_empty() && access.is_empty() {
        return Ok(Vec::new());
    }
    // A status change's event is the one making its version of its order.
    let finishing: HashMap<(OrderId, i64), StatusKey> = finishing
        .into_iter()
        .map(|(order, version, done)| ((order, version), done))
        .collect();
    // Each store's sequence moves once per batch, by its number of events.
    let mut per_store: BTreeMap<StoreId, i64> = BTreeMap::new();
    for event in &pending {
        *per_store.entry(event.store_id).or_default() += 1;
    }
    // Each store's sequence and the log's head move in one statement.
    let stores: Vec<i64> = per_store.keys().map(|id| id.get()).collect();
    let counts: Vec<i64> = per_store.values().copied().collect();
    let total = i64::try_from(pending.len() + access.len()).unwrap_or(i64::MAX);
    let bumped = sqlx::query(
        "WITH s AS (
             UPDATE stores SET last_event_seq = stores.last_event_seq + bump.n
             FROM UNNEST($1::int8[], $2::int8[]) AS bump(id, n)
             WHERE stores.id = bump.id
             RETURNING stores.id, stores.last_event_seq
         ), h AS (
             UPDATE event_log_head SET last_id = last_id + $3 RETURNING last_id
         )
         SELECT h.last_id, s.id, s.last_event_seq FROM h LEFT JOIN s ON true",
    )
    .bind(&stores)
    .bind(&counts)
    .bind(total)
    .fetch_all(&mut *conn)
    .await?;
    let mut last_id: Option<i64> = None;
    // The next free store_seq of each store.
    let mut next_seq: BTreeMap<StoreId, i64> = BTreeMap::new();
    for row in &bumped {
        last_id = Some(row.try_get("last_id")?);
        if let Some(store) = row.try_get::<Option<i64>, _>("id")? {
            let store = StoreId::new(store);
            let last: i64 = row.try_get("last_event_seq")?;
            let count = per_store.get(&store).ok_or(StoreError::NotFound("store"))?;
            next_seq.insert(store, last - count + 1);
        }
    }
    let last_id = last_id.ok_or(StoreError::NotFound("event log head"))?;
    // Handed out in order: the order events', then the access changes'.
    let mut ids = (last_id - total + 1)..=last_id;

    let mut stored = Vec::with_capacity(pending.len() + access.len());
    let mut columns = EventColumns::default();
    for (event, id) in pending.into_iter().zip(ids.by_ref()) {
        let seq = next_seq
            .get_mut(&event.store_id)
            .ok_or(StoreError::NotFound("store"))?;
        let store_seq = *seq;
        *seq += 1;
        let payload = codec::to_json(&event)?;
        let public_json = event.public_json();
        let finished_in = finishing
            .get(&(event.order_id, event.order_version))
            .map(|done| done.to_string());
        columns.push(id, store_seq, &event, payload, public_json.clone(), finished_in);
        stored.push(LogEntry::Order(StoredEvent::written(
            id,
            store_seq,
            event,
            public_json,
        )));
    }
    if !columns.ids.is_empty() {
        sqlx::query(
            "INSERT INTO events (id, store_id, store_seq, order_id, customer_id, kind, order_version,
                payload, created_at, public_json, finished_in)
             SELECT * FROM UNNEST($1::int8[], $2::int8[], $3::int8[], $4::int8[], $5::int8[],
                                  $6::text[], $7::int8[], $8::text[], $9::int8[], $10::text[],
                                  $11::text[])",
        )
        .bind(&columns.ids)
        .bind(&columns.stores)
        .bind(&columns.store_seqs)
        .bind(&columns.orders)
        .bind(&columns.customers)
        .bind(&columns.kinds)
        .bind(&columns.versions)
        .bind(&columns.payloads)
        .bind(&columns.created)
        .bind(&columns.public_jsons)
        .bind(&columns.finished_in)
        .execute(&mut *conn)
        .await?;
    }
    if !access.is_empty() {
        let now = micros(OffsetDateTime::now_utc());
        let mut access_ids = Vec::with_capacity(access.len());
        let mut payloads = Vec::with_capacity(access.len());
        for (change, id) in access.into_iter().zip(ids) {
            payloads.push(codec::to_json(&change)?);
            access_ids.push(id);
            stored.push(LogEntry::Access(AccessEvent { id, change }));
        }
        sqlx::query(
            "INSERT INTO events (id, kind, payload, created_at)
             SELECT id, $2, payload, $3 FROM UNNEST($1::int8[], $4::text[]) AS a(id, payload)",
        )
        .bind(&access_ids)
        .bind(AccessChange::KIND)
        .bind(now)
        .bind(&payloads)
        .execute(&mut *conn)
        .await?;
    }
    Ok(stored)
}

/// Events as columns, for one multi-row insert.
#[derive(Default)]
struct EventColumns {
    ids: Vec<i64>,
    stores: Vec<i64>,
    store_seqs: Vec<i64>,
    orders: Vec<i64>,
    customers: Vec<i64>,
    kinds: Vec<&'static str>,
    versions: Vec<i64>,
    payloads: Vec<String>,
    created: Vec<i64>,
    public_jsons: Vec<String>,
    finished_in: Vec<Option<String>>,
}

impl EventColumns {
    fn push(
        &mut self,
        id: i64,
        store_seq: i64,
        event: &NewEvent,
        payload: String,
        public_json: String,
        finished_in: Option<String>,
    ) {
        self.ids.push(id);
        self.stores.push(event.store_id.get());
        self.store_seqs.push(store_seq);
        self.orders.push(event.order_id.get());
        self.customers.push(event.customer_id.get());
        self.kinds.push(event.kind.as_str());
        self.versions.push(event.order_version);
        self.payloads.push(payload);
        self.created.push(micros(event.at));
        self.public_jsons.push(public_json);
        self.finished_in.push(finished_in);
    }
}

pub async fn events_after(
    conn: &mut PgConnection,
    filter: &EventFilter,
    after: i64,
    limit: u32,
) -> Result<Vec<StoredEvent>> {
    let (column, value) = codec::filter_column(filter);
    let mut query =
        sqlx::QueryBuilder::new("SELECT id, store_seq, payload, public_json FROM events WHERE ");
    query
        .push(column)
        .push(" = ")
        .push_bind(value)
        .push(" AND id > ")
        .push_bind(after)
        .push(" ORDER BY id LIMIT ")
        .push_bind(i64::from(limit));
    let rows = query.build().fetch_all(&mut *conn).await?;
    Ok(rows
        .iter()
        .map(codec::stored_event)
        .collect::<std::result::Result<_, _>>()?)
}

pub async fn events_since(
    conn: &mut PgConnection,
    after: i64,
    limit: u32,
) -> Result<Vec<LogEntry>> {
    let rows = sqlx::query(
        "SELECT id, store_seq, kind, payload, public_json FROM events WHERE id > $1 ORDER BY id LIMIT $2",
    )
    .bind(after)
    .bind(i64::from(limit))
    .fetch_all(&mut *conn)
    .await?;
    Ok(rows
        .iter()
        .map(codec::log_entry)
        .collect::<std::result::Result<_, _>>()?)
}

pub async fn last_event_position(conn: &mut PgConnection) -> Result<i64> {
    Ok(sqlx::query_scalar("SELECT last_id FROM event_log_head")
        .fetch_one(&mut *conn)
        .await?)
}
