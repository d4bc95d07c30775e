//! Reports: a store's orders placed in a range, with their history when
//! asked for, in one statement (one snapshot), through the index on the
//! store and the placing time (`orders_store_placed`).

use sqlx::postgres::PgConnection;

use super::rows::Result;
use crate::codec::{self, micros};
use crate::{ReportQuery, ReportRows};

pub async fn report_rows(conn: &mut PgConnection, query: ReportQuery) -> Result<ReportRows> {
    let sql = codec::report_sql(query.with_history);
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
