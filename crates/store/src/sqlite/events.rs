//! The event log: order events and access changes, written in the
//! transaction that makes them; reads for replays and backfills.

use ordertrack_domain::NewEvent;
use rusqlite::{Connection, params};
use time::OffsetDateTime;

use super::rows::all;
use super::writer::WriteTx;
use crate::codec::{self, micros};
use crate::{AccessChange, AccessEvent, EventFilter, LogEntry, StoreError, StoredEvent};

/// Logs an order event, numbered in its store's sequence; `finished_in`,
/// the done status of a change that finishes its order and leaves its
/// durations to the ETA follower.
pub fn append_event(
    tx: &mut WriteTx<'_>,
    event: NewEvent,
    finished_in: Option<&str>,
) -> Result<(), StoreError> {
    let conn = tx.conn();
    let store_seq: i64 = conn
        .prepare_cached(
            "UPDATE stores SET last_event_seq = last_event_seq + 1 WHERE id = ?1 RETURNING last_event_seq",
        )?
        .query_row([event.store_id.get()], |row| row.get(0))?;
    let payload = codec::to_json(&event)?;
    let public_json = event.public_json();
    conn.prepare_cached(
        "INSERT INTO events (store_id, store_seq, order_id, customer_id, kind, order_version, payload,
            created_at, public_json, finished_in)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)",
    )?
    .execute(params![
        event.store_id.get(),
        store_seq,
        event.order_id.get(),
        event.customer_id.get(),
        event.kind.as_str(),
        event.order_version,
        payload,
        micros(event.at),
        public_json,
        finished_in,
    ])?;
    let id = conn.last_insert_rowid();
    tx.published(LogEntry::Order(StoredEvent::written(
        id,
        store_seq,
        event,
        public_json,
    )));
    Ok(())
}

/// Logs an access change in the event log, in the transaction making it.
pub fn append_access(tx: &mut WriteTx<'_>, change: AccessChange) -> Result<(), StoreError> {
    let payload = codec::to_json(&change)?;
    let conn = tx.conn();
    conn.prepare_cached("INSERT INTO events (kind, payload, created_at) VALUES (?1, ?2, ?3)")?
        .execute(params![
            AccessChange::KIND,
            payload,
            micros(OffsetDateTime::now_utc())
        ])?;
    let id = conn.last_insert_rowid();
    tx.published(LogEntry::Access(AccessEvent { id, change }));
    Ok(())
}

pub fn events_after(
    conn: &Connection,
    filter: &EventFilter,
    after: i64,
    limit: u32,
) -> Result<Vec<StoredEvent>, StoreError> {
    let (column, value) = codec::filter_column(filter);
    all(
        conn,
        &format!(
            "SELECT id, store_seq, payload, public_json FROM events
             WHERE {column} = ?1 AND id > ?2 ORDER BY id LIMIT ?3"
        ),
        params![value, after, limit],
        |row| codec::stored_event(row),
    )
}

pub fn events_since(
    conn: &Connection,
    after: i64,
    limit: u32,
) -> Result<Vec<LogEntry>, StoreError> {
    all(
        conn,
        "SELECT id, store_seq, kind, payload, public_json FROM events WHERE id > ?1 ORDER BY id LIMIT ?2",
        params![after, limit],
        |row| codec::log_entry(row),
    )
}

pub fn last_event_position(conn: &Connection) -> Result<i64, StoreError> {
    Ok(conn
        .prepare_cached("SELECT COALESCE(MAX(id), 0) FROM events")?
        .query_row([], |row| row.get(0))?)
}
