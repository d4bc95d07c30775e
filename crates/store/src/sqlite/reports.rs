//! Reports: a store's orders placed in a range, with their history when
//! asked for, in one statement (one snapshot), through the index on the
//! store and the placing time (`orders_store_placed`).

use rusqlite::{Connection, params};

use crate::codec::{self, micros};
use crate::{ReportQuery, ReportRows, StoreError};

/// The orders alone.
const ORDERS: &str = "SELECT id, number, created_at, total_minor, status, workflow_version,
        NULL AS order_id
    FROM orders WHERE store_id = ?1 AND created_at >= ?2 AND created_at < ?3
    ORDER BY created_at, id";

/// The orders, each with every entry of its history (an order's columns
/// repeat on each of its entries).
const ORDERS_WITH_HISTORY: &str = "SELECT o.id, o.number, o.created_at, o.total_minor,
        o.status, o.workflow_version,
        h.order_id, h.from_status, h.to_status, h.actor_id, h.actor_role, h.note, h.at,
        h.correction, h.payment_status, h.payment_amount_minor
    FROM orders o LEFT JOIN status_history h ON h.order_id = o.id
    WHERE o.store_id = ?1 AND o.created_at >= ?2 AND o.created_at < ?3
    ORDER BY o.created_at, o.id, h.id";

pub fn report_rows(conn: &Connection, query: ReportQuery) -> Result<ReportRows, StoreError> {
    let sql = if query.with_history {
        ORDERS_WITH_HISTORY
    } else {
        ORDERS
    };
    let mut statement = conn.prepare_cached(sql)?;
    let mut found = statement.query(params![
        query.store.get(),
        micros(query.from),
        micros(query.until)
    ])?;
    let mut rows = ReportRows::default();
    while let Some(row) = found.next()? {
        codec::add_report_row(&mut rows, row)?;
    }
    Ok(rows)
}
