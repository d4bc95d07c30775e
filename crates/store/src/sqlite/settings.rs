//! The SQL of a store's settings (status, time zone, pause, fulfilment,
//! opening hours) on SQLite: opening a store with them, reading a store with
//! them, changing them. Columns are read by name.

use ordertrack_domain::{Fulfilments, Role, StoreId, StoreStatus, StoreZone};
use rusqlite::{Connection, OptionalExtension, Row, params};

use super::stores;
use super::writer::WriteTx;
use crate::{
    StoreError, StoreOpening, StoreRecord, StoreSettings, StoreSettingsPatch, StoreWithSettings,
};

const COLUMNS: &str = "id, slug, name, currency, workflow, order_prefix, \
                       status, timezone, accepting_orders, fulfilment, opening_hours";

/// A raw row: the decoding that can fail is done after rusqlite lets go.
struct RawRow {
    store: StoreRecord,
    status: String,
    timezone: String,
    accepting_orders: bool,
    fulfilment: String,
    opening_hours: Option<String>,
}

fn raw_row(row: &Row<'_>) -> rusqlite::Result<RawRow> {
    Ok(RawRow {
        store: StoreRecord {
            id: StoreId::new(row.get("id")?),
            slug: row.get("slug")?,
            name: row.get("name")?,
            currency: row.get("currency")?,
            workflow: row.get("workflow")?,
            order_prefix: row.get("order_prefix")?,
        },
        status: row.get("status")?,
        timezone: row.get("timezone")?,
        accepting_orders: row.get("accepting_orders")?,
        fulfilment: row.get("fulfilment")?,
        opening_hours: row.get("opening_hours")?,
    })
}

fn decode(raw: RawRow) -> Result<StoreWithSettings, StoreError> {
    Ok(StoreWithSettings {
        settings: StoreSettings::from_columns(
            &raw.status,
            &raw.timezone,
            raw.accepting_orders,
            &raw.fulfilment,
            raw.opening_hours.as_deref(),
        )?,
        store: raw.store,
    })
}

pub fn stores_with_settings(conn: &Connection) -> Result<Vec<StoreWithSettings>, StoreError> {
    let mut statement =
        conn.prepare_cached(&format!("SELECT {COLUMNS} FROM stores ORDER BY name, id"))?;
    let rows = statement.query_map([], raw_row)?;
    rows.map(|raw| decode(raw?)).collect()
}

pub fn store_with_settings(
    conn: &Connection,
    slug: &str,
) -> Result<Option<StoreWithSettings>, StoreError> {
    conn.prepare_cached(&format!("SELECT {COLUMNS} FROM stores WHERE slug = ?1"))?
        .query_row([slug], raw_row)
        .optional()?
        .map(decode)
        .transpose()
}

pub fn update_store_settings(
    conn: &Connection,
    store: StoreId,
    patch: &StoreSettingsPatch,
) -> Result<Option<StoreWithSettings>, StoreError> {
    let hours = patch.opening_hours_json()?;
    conn.prepare_cached(&format!(
        "UPDATE stores SET
            name = COALESCE(?2, name),
            status = COALESCE(?3, status),
            timezone = COALESCE(?4, timezone),
            accepting_orders = COALESCE(?5, accepting_orders),
            fulfilment = COALESCE(?6, fulfilment),
            opening_hours = CASE WHEN ?7 THEN ?8 ELSE opening_hours END
         WHERE id = ?1
         RETURNING {COLUMNS}"
    ))?
    .query_row(
        params![
            store.get(),
            patch.name,
            patch.status.map(StoreStatus::as_str),
            patch.timezone.as_ref().map(StoreZone::name),
            patch.accepting_orders,
            patch.fulfilment.as_ref().map(Fulfilments::to_stored),
            patch.opening_hours.is_some(),
            hours,
        ],
        raw_row,
    )
    .optional()?
    .map(decode)
    .transpose()
}

/// Creates the store, gives it its settings and its owner, in the
/// request's savepoint: any failure writes nothing.
pub fn open_store(
    tx: &mut WriteTx<'_>,
    opening: &StoreOpening,
) -> Result<StoreWithSettings, StoreError> {
    let store = stores::create_store(tx.conn(), &opening.store)?;
    if let Some(owner) = opening.owner {
        stores::set_membership(tx, owner, store.id, Role::Owner)?;
    }
    let patch = StoreSettingsPatch::from(&opening.settings);
    update_store_settings(tx.conn(), store.id, &patch)?.ok_or(StoreError::NotFound("store"))
}
