//! Reports: a store's orders placed in a range, with their history when
//! asked for, in one statement (one snapshot), through the index on the
//! store and the placing time (`orders_store_placed`).

use sqlx::postgres::PgConnection;

use super::rows::Result;
use crate::codec::{self, micros};
use crate::{ReportQuery, ReportRows};

/// The orders alone.
const ORDERS: &str = "SELECT id, number, created_at, total_minor, status, workflow_version,
        CAST(NULL AS BIGINT) AS order_id
    FROM orders WHERE store_id = $1 AND created_at >= $2 AND created_at < $3
    ORDER BY created_at, id";

/// The orders, each with every entry of its history (an order's columns
/// repeat on each of its entries).
const ORDERS_WITH_HISTORY: &str = "SELECT o.id, o.number, o.created_at, o.total_minor,
        o.status, o.workflow_version,
        h.order_id, h.from_status, h.to_status, h.actor_id, h.actor_role, h.note, h.at,
        h.correction, h.payment_status, h.payment_amount_minor
    FROM orders o LEFT JOIN status_history h ON h.order_id = o.id
    WHERE o.store_id = $1 AND o.created_at >= $2 AND o.created_at < $3
    ORDER BY o.created_at, o.id, h.id";

pub async fn report_rows(conn: &mut PgConnection, query: ReportQuery) -> Result<ReportRows> {
    let sql = if query.with_history {
        ORDERS_WITH_HISTORY
    } else {
        ORDERS
    };
    let found = sqlx::query(sql)
        .bind(query.store.get())
        .bind(micros(query.from))
        .bind(micros(query.until))
        .fetch_all(&mut *conn)
        .await?;
    let mut rows = ReportRows::default();
    for row in &found {
        codec::add_report_row(&mut rows, row)?;
    }
    Ok(rows)
}
