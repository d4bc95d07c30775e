//! The versions of a store's own workflow on SQLite: adding the next one,
//! reading one or the newest. Columns are read by name.

use ordertrack_domain::StoreId;
use rusqlite::{Connection, params};

use super::rows::first;
use super::users::unique;
use crate::codec::{self, micros, store_workflow_columns};
use crate::{NewStoreWorkflow, StoreError, StoreWorkflow};

/// Stores `new` as the store's next version (the newest plus one, from 1).
pub fn add_store_workflow(
    conn: &Connection,
    new: &NewStoreWorkflow,
) -> Result<StoreWorkflow, StoreError> {
    let mut statement = conn.prepare_cached(concat!(
        "INSERT INTO store_workflows (store_id, version, name, definition, created_at)
         SELECT ?1, COALESCE(MAX(version), 0) + 1, ?2, ?3, ?4
           FROM store_workflows WHERE store_id = ?1
         RETURNING ",
        store_workflow_columns!()
    ))?;
    let mut rows = statement
        .query(params![
            new.store_id.get(),
            new.name,
            new.definition,
            micros(new.at)
        ])
        .map_err(unique("this workflow version"))?;
    let added = match rows.next().map_err(unique("this workflow version"))? {
        Some(row) => codec::store_workflow(row)?,
        None => return Err(StoreError::NotFound("store")),
    };
    drop(rows);
    drop(statement);
    super::users::bump_mark(conn, codec::BUMP_CONFIG_MARK_SQL)?;
    Ok(added)
}

/// One version of a store's workflow.
pub fn store_workflow(
    conn: &Connection,
    store: StoreId,
    version: i64,
) -> Result<Option<StoreWorkflow>, StoreError> {
    version_or_latest(conn, store, Some(version))
}

/// The newest version of a store's workflow, if it ever uploaded one.
pub fn latest_store_workflow(
    conn: &Connection,
    store: StoreId,
) -> Result<Option<StoreWorkflow>, StoreError> {
    version_or_latest(conn, store, None)
}

/// Version `version` of a store's workflow, or (`None`) its newest.
fn version_or_latest(
    conn: &Connection,
    store: StoreId,
    version: Option<i64>,
) -> Result<Option<StoreWorkflow>, StoreError> {
    first(
        conn,
        concat!(
            "SELECT ",
            store_workflow_columns!(),
            " FROM store_workflows WHERE store_id = ?1 AND (?2 IS NULL OR version = ?2)
              ORDER BY version DESC LIMIT 1"
        ),
        params![store.get(), version],
        |row| codec::store_workflow(row),
    )
}
