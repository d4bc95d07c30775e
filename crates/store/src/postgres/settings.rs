//! The SQL of a store's settings (status, time zone, pause, fulfilment,
//! opening hours) on PostgreSQL: opening a store with them, reading a store
//! with them, changing them. Columns are read by name.

use std::collections::HashMap;

use ordertrack_domain::{Fulfilments, PaymentMethods, Role, StoreId, StoreStatus, StoreZone};
use sqlx::Row;
use sqlx::postgres::PgConnection;

use super::rows::{Log, Result, listed};
use super::stores;
use crate::codec::{self};
use crate::{StoreError, StoreMenu, StoreOpening, StoreSettingsPatch, StoreWithSettings};

/// The columns of a store with its settings, as a literal (sqlx takes
/// literal SQL only).
macro_rules! columns {
    () => {
        "id, slug, name, currency, workflow, order_prefix, \
         status, timezone, accepting_orders, fulfilment, opening_hours, payment_methods, \
         driver_self_assign,
         print_trigger, email_states, email_subject, email_body"
    };
}

pub async fn stores_with_settings(conn: &mut PgConnection) -> Result<Vec<StoreWithSettings>> {
    Ok(sqlx::query(concat!(
        "SELECT ",
        columns!(),
        " FROM stores ORDER BY name, id"
    ))
    .fetch_all(&mut *conn)
    .await?
    .iter()
    .map(codec::store_with_settings)
    .collect::<std::result::Result<_, _>>()?)
}

pub async fn store_with_settings(
    conn: &mut PgConnection,
    slug: &str,
) -> Result<Option<StoreWithSettings>> {
    Ok(sqlx::query(concat!(
        "SELECT ",
        columns!(),
        " FROM stores WHERE slug = $1"
    ))
    .bind(slug)
    .fetch_optional(&mut *conn)
    .await?
    .map(|found| codec::store_with_settings(&found))
    .transpose()?)
}

/// Stores by slug, each with its settings, its newest workflow, its
/// products and the cache marks: one statement, so a customer's session,
/// the store's state and its menu are all as of the same moment. Slugs
/// with no store are left out.
pub async fn store_menus(
    conn: &mut PgConnection,
    slugs: &[String],
) -> Result<HashMap<String, StoreMenu>> {
    let rows = sqlx::query(concat!(
        "SELECT ",
        columns!(),
        ",
         (SELECT COALESCE(json_agg(json_build_object('id', p.id, 'store_id', p.store_id,
                     'name', p.name, 'description', p.description, 'price_minor', p.price_minor,
                     'station', p.station, 'available', p.available) ORDER BY p.id), '[]')::text
            FROM products p WHERE p.store_id = stores.id) AS menu,
         (SELECT json_build_object('store_id', w.store_id, 'version', w.version, 'name', w.name,
                     'definition', w.definition, 'created_at', w.created_at)::text
            FROM store_workflows w WHERE w.store_id = stores.id
            ORDER BY w.version DESC LIMIT 1) AS newest_workflow,
         (SELECT access FROM cache_marks WHERE id = 1) AS marks_access,
         (SELECT config FROM cache_marks WHERE id = 1) AS marks_config
         FROM stores WHERE slug = ANY($1)"
    ))
    .bind(slugs)
    .fetch_all(&mut *conn)
    .await?;
    let mut menus = HashMap::with_capacity(rows.len());
    for row in &rows {
        let workflow = match row.try_get::<Option<String>, _>("newest_workflow")? {
            Some(json) => {
                let object: serde_json::Map<String, serde_json::Value> =
                    serde_json::from_str(&json)
                        .map_err(|_| codec::corrupt("store workflow", &json))?;
                Some(codec::store_workflow(&object)?)
            }
            None => None,
        };
        let menu = StoreMenu {
            store: codec::store_with_settings(row)?,
            workflow,
            products: listed(row, "menu", "products", codec::product)?,
            marks: codec::marks(row)?,
        };
        menus.insert(menu.store.store.slug.clone(), menu);
    }
    Ok(menus)
}

pub async fn update_store_settings(
    conn: &mut PgConnection,
    store: StoreId,
    patch: &StoreSettingsPatch,
) -> Result<Option<StoreWithSettings>> {
    let hours = patch.opening_hours_json()?;
    let updated = sqlx::query(concat!(
        "UPDATE stores SET
            name = COALESCE($2, name),
            status = COALESCE($3, status),
            timezone = COALESCE($4, timezone),
            accepting_orders = COALESCE($5, accepting_orders),
            fulfilment = COALESCE($6, fulfilment),
            opening_hours = CASE WHEN $7 THEN $8 ELSE opening_hours END,
            payment_methods = COALESCE($9, payment_methods),
            driver_self_assign = COALESCE($10, driver_self_assign),
            print_trigger = COALESCE($11, print_trigger),
            email_states = COALESCE($12, email_states),
            email_subject = CASE WHEN $13 THEN $14 ELSE email_subject END,
            email_body = CASE WHEN $15 THEN $16 ELSE email_body END
         WHERE id = $1
         RETURNING ",
        columns!()
    ))
    .bind(store.get())
    .bind(patch.name.as_deref())
    .bind(patch.status.map(StoreStatus::as_str))
    .bind(patch.timezone.as_ref().map(StoreZone::name))
    .bind(patch.accepting_orders)
    .bind(patch.fulfilment.as_ref().map(Fulfilments::to_stored))
    .bind(patch.opening_hours.is_some())
    .bind(hours)
    .bind(
        patch
            .payment_methods
            .as_ref()
            .map(PaymentMethods::to_stored),
    )
    .bind(patch.driver_self_assign)
    .bind(patch.print_trigger.as_ref().map(|key| key.as_str()))
    .bind(patch.email_states_json()?)
    .bind(patch.email_subject.is_some())
    .bind(patch.email_subject.clone().flatten())
    .bind(patch.email_body.is_some())
    .bind(patch.email_body.clone().flatten())
    .fetch_optional(&mut *conn)
    .await?
    .map(|found| codec::store_with_settings(&found))
    .transpose()?;
    if updated.is_some() {
        super::users::bump_mark(conn, codec::BUMP_CONFIG_MARK_SQL).await?;
    }
    Ok(updated)
}

/// Creates the store, gives it its settings and its owner, in the
/// request's savepoint: any failure writes nothing.
pub async fn open_store(
    conn: &mut PgConnection,
    opening: &StoreOpening,
    log: &mut Log,
) -> Result<StoreWithSettings> {
    let store = stores::create_store(conn, &opening.store).await?;
    if let Some(owner) = opening.owner {
        stores::set_membership(conn, owner, store.id, Role::Owner, log).await?;
    }
    let patch = StoreSettingsPatch::from(&opening.settings);
    let opened = update_store_settings(conn, store.id, &patch)
        .await?
        .ok_or(StoreError::NotFound("store"))?;
    // A new store has no orders: its (empty) rollups are built.
    sqlx::query(crate::codec::ROLLUP_BUILT_SQL)
        .bind(store.id.get())
        .execute(&mut *conn)
        .await?;
    Ok(opened)
}
