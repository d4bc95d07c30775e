//! Reports: a store's orders placed in a range, with their history when
//! asked for, in one statement (one snapshot), through the index on the
//! store and the placing time (`orders_store_placed`).

use rusqlite::{Connection, params};

use crate::codec::{self, micros};
use crate::{ReportQuery, ReportRows, StoreError};

pub fn report_rows(conn: &Connection, query: ReportQuery) -> Result<ReportRows, StoreError> {
    let sql = codec::report_sql(query.with_history);
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
