//! Stores, their staff and their products.

use ordertrack_domain::{ProductId, Role, StoreId, UserId};
use rusqlite::{Connection, ErrorCode, OptionalExtension, params};
use time::OffsetDateTime;

use super::events::append_access;
use super::rows::{all, first};
use super::users::unique;
use super::writer::WriteTx;
use crate::codec::{self, micros, product_columns, store_columns};
use crate::{NewProduct, NewStore, Product, ProductPatch, StaffMember, StoreError, StoreRecord};

pub fn create_store(conn: &Connection, new: &NewStore) -> Result<StoreRecord, StoreError> {
    conn.prepare_cached(
        "INSERT INTO stores (slug, name, currency, workflow, order_prefix, created_at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
    )?
    .execute(params![
        new.slug,
        new.name,
        new.currency.code(),
        new.workflow.as_str(),
        new.order_prefix,
        micros(OffsetDateTime::now_utc())
    ])
    .map_err(unique("a store with this slug"))?;
    Ok(codec::created_store(
        new,
        StoreId::new(conn.last_insert_rowid()),
    ))
}

pub fn stores(conn: &Connection) -> Result<Vec<StoreRecord>, StoreError> {
    all(
        conn,
        concat!(
            "SELECT ",
            store_columns!(),
            " FROM stores ORDER BY name, id"
        ),
        [],
        |row| codec::store(row),
    )
}

pub fn store_by_slug(conn: &Connection, slug: &str) -> Result<Option<StoreRecord>, StoreError> {
    first(
        conn,
        concat!("SELECT ", store_columns!(), " FROM stores WHERE slug = ?1"),
        [slug],
        |row| codec::store(row),
    )
}

pub fn store(conn: &Connection, id: StoreId) -> Result<Option<StoreRecord>, StoreError> {
    first(
        conn,
        concat!("SELECT ", store_columns!(), " FROM stores WHERE id = ?1"),
        [id.get()],
        |row| codec::store(row),
    )
}

/// Gives a staff role; replacing a different role logs the change.
pub fn set_membership(
    tx: &mut WriteTx<'_>,
    user: UserId,
    store: StoreId,
    role: Role,
) -> Result<(), StoreError> {
    let conn = tx.conn();
    let before: Option<String> = conn
        .prepare_cached("SELECT role FROM memberships WHERE user_id = ?1 AND store_id = ?2")?
        .query_row([user.get(), store.get()], |row| row.get(0))
        .optional()?;
    conn.prepare_cached(
        "INSERT INTO memberships (user_id, store_id, role, created_at) VALUES (?1, ?2, ?3, ?4)
         ON CONFLICT (user_id, store_id) DO UPDATE SET role = excluded.role",
    )?
    .execute(params![
        user.get(),
        store.get(),
        role.as_str(),
        micros(OffsetDateTime::now_utc())
    ])
    .map_err(|e| match e.sqlite_error_code() {
        Some(ErrorCode::ConstraintViolation) => StoreError::NotFound("user or store"),
        _ => e.into(),
    })?;
    if before.as_deref() != Some(role.as_str()) {
        // A role given counts too: a cached identity without it is stale.
        super::users::bump_mark(tx.conn(), codec::BUMP_ACCESS_MARK_SQL)?;
    }
    if let Some(change) = codec::role_replaced(user, store, before.as_deref(), role) {
        append_access(tx, change)?;
    }
    Ok(())
}

/// Removes a staff member; a removal logs the change.
pub fn remove_membership(
    tx: &mut WriteTx<'_>,
    user: UserId,
    store: StoreId,
) -> Result<bool, StoreError> {
    let removed = tx
        .conn()
        .prepare_cached("DELETE FROM memberships WHERE user_id = ?1 AND store_id = ?2")?
        .execute([user.get(), store.get()])?;
    if removed > 0 {
        super::users::bump_mark(tx.conn(), codec::BUMP_ACCESS_MARK_SQL)?;
        append_access(tx, codec::staff_removed(user, store))?;
    }
    Ok(removed > 0)
}

pub fn staff(conn: &Connection, store: StoreId) -> Result<Vec<StaffMember>, StoreError> {
    all(
        conn,
        "SELECT u.id, u.email, u.name, u.is_admin, m.role FROM memberships m
         JOIN users u ON u.id = m.user_id WHERE m.store_id = ?1 ORDER BY u.name, u.id",
        [store.get()],
        |row| codec::staff_member(row),
    )
}

pub fn create_product(
    conn: &Connection,
    store: StoreId,
    new: &NewProduct,
) -> Result<Product, StoreError> {
    conn.prepare_cached(
        "INSERT INTO products (store_id, name, description, price_minor, station, available, created_at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
    )?
    .execute(params![
        store.get(),
        new.name,
        new.description,
        new.price_minor,
        new.station,
        new.available,
        micros(OffsetDateTime::now_utc())
    ])?;
    Ok(codec::created_product(
        new,
        ProductId::new(conn.last_insert_rowid()),
        store,
    ))
}

pub fn update_product(
    conn: &Connection,
    store: StoreId,
    product: ProductId,
    patch: &ProductPatch,
) -> Result<Option<Product>, StoreError> {
    conn.prepare_cached(
        "UPDATE products SET
            name = COALESCE(?3, name),
            description = COALESCE(?4, description),
            price_minor = COALESCE(?5, price_minor),
            station = COALESCE(?6, station),
            available = COALESCE(?7, available)
         WHERE id = ?1 AND store_id = ?2",
    )?
    .execute(params![
        product.get(),
        store.get(),
        patch.name,
        patch.description,
        patch.price_minor,
        patch.station,
        patch.available
    ])?;
    first(
        conn,
        concat!(
            "SELECT ",
            product_columns!(),
            " FROM products WHERE id = ?1 AND store_id = ?2"
        ),
        [product.get(), store.get()],
        |row| codec::product(row),
    )
}

pub fn products(conn: &Connection, store: StoreId) -> Result<Vec<Product>, StoreError> {
    all(
        conn,
        concat!(
            "SELECT ",
            product_columns!(),
            " FROM products WHERE store_id = ?1 ORDER BY id"
        ),
        [store.get()],
        |row| codec::product(row),
    )
}
