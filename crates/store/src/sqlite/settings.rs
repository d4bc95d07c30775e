//! The SQL of a store's settings (status, time zone, pause, fulfilment,
//! opening hours) on SQLite: opening a store with them, reading a store with
//! them, changing them. Columns are read by name.

use ordertrack_domain::{Fulfilments, PaymentMethods, Role, StoreId, StoreStatus, StoreZone};
use rusqlite::{Connection, params};

use super::rows::{all, first};
use super::stores;
use super::writer::WriteTx;
use crate::codec::{self};
use crate::{StoreError, StoreMenu, StoreOpening, StoreSettingsPatch, StoreWithSettings};

const COLUMNS: &str = "id, slug, name, currency, workflow, order_prefix, \
                       status, timezone, accepting_orders, fulfilment, opening_hours, payment_methods, \
                       driver_self_assign,
                       print_trigger, email_states, email_subject, email_body";

pub fn stores_with_settings(conn: &Connection) -> Result<Vec<StoreWithSettings>, StoreError> {
    all(
        conn,
        &format!("SELECT {COLUMNS} FROM stores ORDER BY name, id"),
        [],
        |row| codec::store_with_settings(row),
    )
}

pub fn store_with_settings(
    conn: &Connection,
    slug: &str,
) -> Result<Option<StoreWithSettings>, StoreError> {
    first(
        conn,
        &format!("SELECT {COLUMNS} FROM stores WHERE slug = ?1"),
        [slug],
        |row| codec::store_with_settings(row),
    )
}

/// A store with its settings, its newest workflow, its products and the
/// cache marks, read in one transaction (one snapshot).
pub fn store_menu(conn: &Connection, slug: &str) -> Result<Option<StoreMenu>, StoreError> {
    let snapshot = conn.unchecked_transaction()?;
    let marks = super::users::cache_marks(&snapshot)?;
    let Some(store) = store_with_settings(&snapshot, slug)? else {
        return Ok(None);
    };
    let workflow = super::workflows::latest_store_workflow(&snapshot, store.store.id)?;
    let products = stores::products(&snapshot, store.store.id)?;
    Ok(Some(StoreMenu {
        store,
        workflow,
        products,
        marks,
    }))
}

pub fn update_store_settings(
    conn: &Connection,
    store: StoreId,
    patch: &StoreSettingsPatch,
) -> Result<Option<StoreWithSettings>, StoreError> {
    let hours = patch.opening_hours_json()?;
    let updated = first(
        conn,
        &format!(
            "UPDATE stores SET
            name = COALESCE(?2, name),
            status = COALESCE(?3, status),
            timezone = COALESCE(?4, timezone),
            accepting_orders = COALESCE(?5, accepting_orders),
            fulfilment = COALESCE(?6, fulfilment),
            opening_hours = CASE WHEN ?7 THEN ?8 ELSE opening_hours END,
            payment_methods = COALESCE(?9, payment_methods),
            driver_self_assign = COALESCE(?10, driver_self_assign),
            print_trigger = COALESCE(?11, print_trigger),
            email_states = COALESCE(?12, email_states),
            email_subject = CASE WHEN ?13 THEN ?14 ELSE email_subject END,
            email_body = CASE WHEN ?15 THEN ?16 ELSE email_body END
         WHERE id = ?1
         RETURNING {COLUMNS}"
        ),
        params![
            store.get(),
            patch.name,
            patch.status.map(StoreStatus::as_str),
            patch.timezone.as_ref().map(StoreZone::name),
            patch.accepting_orders,
            patch.fulfilment.as_ref().map(Fulfilments::to_stored),
            patch.opening_hours.is_some(),
            hours,
            patch
                .payment_methods
                .as_ref()
                .map(PaymentMethods::to_stored),
            patch.driver_self_assign,
            patch.print_trigger.as_ref().map(|key| key.as_str()),
            patch.email_states_json()?,
            patch.email_subject.is_some(),
            patch.email_subject.clone().flatten(),
            patch.email_body.is_some(),
            patch.email_body.clone().flatten(),
        ],
        |row| codec::store_with_settings(row),
    )?;
    if updated.is_some() {
        super::users::bump_mark(conn, codec::BUMP_CONFIG_MARK_SQL)?;
    }
    Ok(updated)
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
    let opened =
        update_store_settings(tx.conn(), store.id, &patch)?.ok_or(StoreError::NotFound("store"))?;
    // A new store has no orders: its (empty) rollups are built.
    tx.conn()
        .prepare_cached(codec::ROLLUP_BUILT_SQL)?
        .execute([store.id.get()])?;
    Ok(opened)
}
