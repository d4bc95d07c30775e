//! Stores, their staff and their products.

use ordertrack_domain::{ProductId, Role, StoreId, UserId};
use sqlx::postgres::PgConnection;
use time::OffsetDateTime;

use super::rows::{Log, Result, unique, violation};
use crate::codec::{self, micros, product_columns, store_columns};
use crate::{NewProduct, NewStore, Product, ProductPatch, StaffMember, StoreError, StoreRecord};

pub async fn create_store(conn: &mut PgConnection, new: &NewStore) -> Result<StoreRecord> {
    let id: i64 = sqlx::query_scalar(
        "INSERT INTO stores (slug, name, currency, workflow, order_prefix, created_at)
         VALUES ($1, $2, $3, $4, $5, $6) RETURNING id",
    )
    .bind(&new.slug)
    .bind(&new.name)
    .bind(new.currency.code())
    .bind(new.workflow.as_str())
    .bind(&new.order_prefix)
    .bind(micros(OffsetDateTime::now_utc()))
    .fetch_one(&mut *conn)
    .await
    .map_err(unique("a store with this slug"))?;
    Ok(codec::created_store(new, StoreId::new(id)))
}

pub async fn stores(conn: &mut PgConnection) -> Result<Vec<StoreRecord>> {
    let rows = sqlx::query(concat!(
        "SELECT ",
        store_columns!(),
        " FROM stores ORDER BY name, id"
    ))
    .fetch_all(&mut *conn)
    .await?;
    Ok(rows
        .iter()
        .map(codec::store)
        .collect::<std::result::Result<_, _>>()?)
}

pub async fn store_by_slug(conn: &mut PgConnection, slug: &str) -> Result<Option<StoreRecord>> {
    let row = sqlx::query(concat!(
        "SELECT ",
        store_columns!(),
        " FROM stores WHERE slug = $1"
    ))
    .bind(slug)
    .fetch_optional(&mut *conn)
    .await?;
    Ok(row.as_ref().map(codec::store).transpose()?)
}

pub async fn store(conn: &mut PgConnection, id: StoreId) -> Result<Option<StoreRecord>> {
    let row = sqlx::query(concat!(
        "SELECT ",
        store_columns!(),
        " FROM stores WHERE id = $1"
    ))
    .bind(id.get())
    .fetch_optional(&mut *conn)
    .await?;
    Ok(row.as_ref().map(codec::store).transpose()?)
}

/// Gives a staff role; replacing a different role logs the change.
pub async fn set_membership(
    conn: &mut PgConnection,
    user: UserId,
    store: StoreId,
    role: Role,
    log: &mut Log,
) -> Result<()> {
    // Locked until commit, so a concurrent change waits and sees this one.
    let before: Option<String> = sqlx::query_scalar(
        "SELECT role FROM memberships WHERE user_id = $1 AND store_id = $2 FOR UPDATE",
    )
    .bind(user.get())
    .bind(store.get())
    .fetch_optional(&mut *conn)
    .await?;
    sqlx::query(
        "INSERT INTO memberships (user_id, store_id, role, created_at) VALUES ($1, $2, $3, $4)
         ON CONFLICT (user_id, store_id) DO UPDATE SET role = excluded.role",
    )
    .bind(user.get())
    .bind(store.get())
    .bind(role.as_str())
    .bind(micros(OffsetDateTime::now_utc()))
    .execute(&mut *conn)
    .await
    // 23503: foreign_key_violation.
    .map_err(violation("23503", StoreError::NotFound("user or store")))?;
    if before.as_deref() != Some(role.as_str()) {
        // A role given counts too: a cached identity without it is stale.
        super::users::bump_mark(conn, codec::BUMP_ACCESS_MARK_SQL).await?;
    }
    log.access
        .extend(codec::role_replaced(user, store, before.as_deref(), role));
    Ok(())
}

/// Removes a staff member; a removal logs the change.
pub async fn remove_membership(
    conn: &mut PgConnection,
    user: UserId,
    store: StoreId,
    log: &mut Log,
) -> Result<bool> {
    let removed = sqlx::query("DELETE FROM memberships WHERE user_id = $1 AND store_id = $2")
        .bind(user.get())
        .bind(store.get())
        .execute(&mut *conn)
        .await?
        .rows_affected()
        > 0;
    if removed {
        super::users::bump_mark(conn, codec::BUMP_ACCESS_MARK_SQL).await?;
        log.access.push(codec::staff_removed(user, store));
    }
    Ok(removed)
}

pub async fn staff(conn: &mut PgConnection, store: StoreId) -> Result<Vec<StaffMember>> {
    let rows = sqlx::query(
        "SELECT u.id, u.email, u.name, u.is_admin, m.role FROM memberships m
         JOIN users u ON u.id = m.user_id WHERE m.store_id = $1 ORDER BY u.name, u.id",
    )
    .bind(store.get())
    .fetch_all(&mut *conn)
    .await?;
    Ok(rows
        .iter()
        .map(codec::staff_member)
        .collect::<std::result::Result<_, _>>()?)
}

pub async fn create_product(
    conn: &mut PgConnection,
    store: StoreId,
    new: &NewProduct,
) -> Result<Product> {
    let id: i64 = sqlx::query_scalar(
        "INSERT INTO products (store_id, name, description, price_minor, station, available, created_at)
         VALUES ($1, $2, $3, $4, $5, $6, $7) RETURNING id",
    )
    .bind(store.get())
    .bind(&new.name)
    .bind(&new.description)
    .bind(new.price_minor)
    .bind(&new.station)
    .bind(new.available)
    .bind(micros(OffsetDateTime::now_utc()))
    .fetch_one(&mut *conn)
    .await?;
    Ok(codec::created_product(new, ProductId::new(id), store))
}

pub async fn update_product(
    conn: &mut PgConnection,
    store: StoreId,
    product: ProductId,
    patch: &ProductPatch,
) -> Result<Option<Product>> {
    let row = sqlx::query(concat!(
        "UPDATE products SET
            name = COALESCE($3, name),
            description = COALESCE($4, description),
            price_minor = COALESCE($5, price_minor),
            station = COALESCE($6, station),
            available = COALESCE($7, available)
         WHERE id = $1 AND store_id = $2
         RETURNING ",
        product_columns!(),
        ""
    ))
    .bind(product.get())
    .bind(store.get())
    .bind(&patch.name)
    .bind(&patch.description)
    .bind(patch.price_minor)
    .bind(&patch.station)
    .bind(patch.available)
    .fetch_optional(&mut *conn)
    .await?;
    Ok(row.as_ref().map(codec::product).transpose()?)
}

pub async fn products(conn: &mut PgConnection, store: StoreId) -> Result<Vec<Product>> {
    let rows = sqlx::query(concat!(
        "SELECT ",
        product_columns!(),
        " FROM products WHERE store_id = $1 ORDER BY id"
    ))
    .bind(store.get())
    .fetch_all(&mut *conn)
    .await?;
    Ok(rows
        .iter()
        .map(codec::product)
        .collect::<std::result::Result<_, _>>()?)
}
