//! The versions of a store's own workflow on PostgreSQL: adding the next
//! one, reading one or the newest. Columns are read by name.

use ordertrack_domain::StoreId;
use sqlx::postgres::PgConnection;

use super::rows::{Result, unique};
use crate::codec::{self, micros, store_workflow_columns};
use crate::{NewStoreWorkflow, StoreWorkflow};

/// Stores `new` as the store's next version (the newest plus one, from 1).
pub async fn add_store_workflow(
    conn: &mut PgConnection,
    new: &NewStoreWorkflow,
) -> Result<StoreWorkflow> {
    let row = sqlx::query(concat!(
        "INSERT INTO store_workflows (store_id, version, name, definition, created_at)
         SELECT $1, COALESCE(MAX(version), 0) + 1, $2, $3, $4
           FROM store_workflows WHERE store_id = $1
         RETURNING ",
        store_workflow_columns!()
    ))
    .bind(new.store_id.get())
    .bind(&new.name)
    .bind(&new.definition)
    .bind(micros(new.at))
    .fetch_one(&mut *conn)
    .await
    .map_err(unique("this workflow version"))?;
    super::users::bump_mark(conn, codec::BUMP_CONFIG_MARK_SQL).await?;
    Ok(codec::store_workflow(&row)?)
}

/// One version of a store's workflow.
pub async fn store_workflow(
    conn: &mut PgConnection,
    store: StoreId,
    version: i64,
) -> Result<Option<StoreWorkflow>> {
    version_or_latest(conn, store, Some(version)).await
}

/// The newest version of a store's workflow, if it ever uploaded one.
pub async fn latest_store_workflow(
    conn: &mut PgConnection,
    store: StoreId,
) -> Result<Option<StoreWorkflow>> {
    version_or_latest(conn, store, None).await
}

/// Version `version` of a store's workflow, or (`None`) its newest.
///
/// Two statements rather than one with `$2 IS NULL OR version = $2`:
/// PostgreSQL cannot use one generic plan for that form, so it planned it
/// again on every call.
async fn version_or_latest(
    conn: &mut PgConnection,
    store: StoreId,
    version: Option<i64>,
) -> Result<Option<StoreWorkflow>> {
    let query = match version {
        Some(version) => sqlx::query(concat!(
            "SELECT ",
            store_workflow_columns!(),
            " FROM store_workflows WHERE store_id = $1 AND version = $2"
        ))
        .bind(store.get())
        .bind(version),
        None => sqlx::query(concat!(
            "SELECT ",
            store_workflow_columns!(),
            " FROM store_workflows WHERE store_id = $1 ORDER BY version DESC LIMIT 1"
        ))
        .bind(store.get()),
    };
    let row = query.fetch_optional(&mut *conn).await?;
    Ok(row.as_ref().map(codec::store_workflow).transpose()?)
}
