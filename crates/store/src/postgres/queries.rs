//! The SQL of the PostgreSQL store. Every function runs on one connection:
//! a pooled read-only one for reads, the writer's (inside the batch's
//! transaction and the request's savepoint) for writes. Semantics match the
//! SQLite store's queries exactly; the conformance suite holds both to them.

use std::collections::{BTreeMap, HashMap, HashSet};

use ordertrack_domain::{
    Actor, Fulfilment, FulfilmentKind, HistoryEntry, ItemChange, ItemId, ItemStatus,
    ItemStatusChange, NewEvent, Order, OrderId, OrderItem, OrderPlan, PlanStep, ProductId, Role,
    StatusChange, StoreId, UserId, order_created, order_number,
};
use serde::Deserialize;
use sqlx::postgres::{PgConnection, PgRow};
use sqlx::{Connection, Postgres, QueryBuilder, Row};
use time::OffsetDateTime;

use crate::{
    AccessChange, AccessEvent, Credentials, EventFilter, Identity, LogEntry, Membership, NewOrder,
    NewProduct, NewSession, NewStore, NewUser, OrderInStore, OrderKey, OrderPage, OrderQuery,
    OrderScope, PlacedOrder, Product, ProductPatch, StaffMember, StoreError, StoreRecord,
    StoredEvent, User,
};

/// Why a query failed, and what the writer should do about it.
pub struct Fail {
    pub error: StoreError,
    /// A deadlock or serialization failure, or a lost connection: the batch
    /// is rolled back and run again (a failed COMMIT excepted).
    pub retry: bool,
    /// The connection itself failed (not the statement): it is not reused.
    pub broken: bool,
}

impl From<StoreError> for Fail {
    fn from(error: StoreError) -> Self {
        Fail {
            error,
            retry: false,
            broken: false,
        }
    }
}

impl From<sqlx::Error> for Fail {
    fn from(error: sqlx::Error) -> Self {
        let (retry, broken) = match &error {
            // 40001: serialization_failure, 40P01: deadlock_detected.
            sqlx::Error::Database(db) => {
                let code = db.code();
                let code = code.as_deref().unwrap_or_default();
                (
                    matches!(code, "40001" | "40P01"),
                    // 08: connection exceptions; 57P01-03: the server is
                    // shutting down or restarting and ended the session.
                    code.starts_with("08") || matches!(code, "57P01" | "57P02" | "57P03"),
                )
            }
            sqlx::Error::RowNotFound
            | sqlx::Error::ColumnNotFound(_)
            | sqlx::Error::ColumnIndexOutOfBounds { .. }
            | sqlx::Error::ColumnDecode { .. }
            | sqlx::Error::Decode(_)
            | sqlx::Error::Encode(_)
            | sqlx::Error::TypeNotFound { .. } => (false, false),
            _ => (false, true),
        };
        Fail {
            error: error.into(),
            // Before COMMIT, a lost connection lost the whole transaction
            // with it: running the batch again on a new one is safe.
            retry: retry || broken,
            broken,
        }
    }
}

impl From<Fail> for StoreError {
    fn from(fail: Fail) -> Self {
        fail.error
    }
}

pub type Result<T> = std::result::Result<T, Fail>;

/// Microseconds since the Unix epoch: how times are stored.
pub fn micros(at: OffsetDateTime) -> i64 {
    i64::try_from(at.unix_timestamp_nanos() / 1_000).unwrap_or(i64::MAX)
}

fn from_micros(value: i64) -> Result<OffsetDateTime> {
    OffsetDateTime::from_unix_timestamp_nanos(i128::from(value) * 1_000)
        .map_err(|e| StoreError::Database(format!("bad stored time {value}: {e}")).into())
}

fn corrupt(what: &str, value: &str) -> Fail {
    StoreError::Database(format!("unreadable stored {what} `{value}`")).into()
}

fn sqlstate(error: &sqlx::Error) -> Option<String> {
    match error {
        sqlx::Error::Database(db) => db.code().map(|code| code.into_owned()),
        _ => None,
    }
}

/// Maps a uniqueness violation (23505) to [`StoreError::Conflict`].
fn unique(what: &'static str) -> impl FnOnce(sqlx::Error) -> Fail {
    move |error| match sqlstate(&error).as_deref() {
        Some("23505") => StoreError::Conflict(what).into(),
        _ => error.into(),
    }
}

fn role(text: &str) -> Result<Role> {
    text.parse().map_err(|_| corrupt("role", text))
}

// ---- users and sessions ----

fn user_row(row: &PgRow) -> Result<User> {
    Ok(User {
        id: UserId::new(row.try_get(0)?),
        email: row.try_get(1)?,
        name: row.try_get(2)?,
        is_admin: row.try_get(3)?,
    })
}

pub async fn create_user(conn: &mut PgConnection, new: &NewUser) -> Result<User> {
    let email = new.email.to_lowercase();
    let id: i64 = sqlx::query_scalar(
        "INSERT INTO users (email, name, password_hash, is_admin, created_at, email_skeleton)
         VALUES ($1, $2, $3, $4, $5, $6) RETURNING id",
    )
    .bind(&email)
    .bind(&new.name)
    .bind(&new.password_hash)
    .bind(new.is_admin)
    .bind(micros(OffsetDateTime::now_utc()))
    .bind(ordertrack_domain::text::email_skeleton(&email))
    .fetch_one(&mut *conn)
    .await
    .map_err(unique("a user with this email"))?;
    Ok(User {
        id: UserId::new(id),
        email,
        name: new.name.clone(),
        is_admin: new.is_admin,
    })
}

pub async fn user_credentials(conn: &mut PgConnection, email: &str) -> Result<Option<Credentials>> {
    let row =
        sqlx::query("SELECT id, email, name, is_admin, password_hash FROM users WHERE email = $1")
            .bind(email)
            .fetch_optional(&mut *conn)
            .await?;
    row.map(|row| {
        Ok(Credentials {
            user: user_row(&row)?,
            password_hash: row.try_get(4)?,
        })
    })
    .transpose()
}

pub async fn user(conn: &mut PgConnection, id: UserId) -> Result<Option<User>> {
    sqlx::query("SELECT id, email, name, is_admin FROM users WHERE id = $1")
        .bind(id.get())
        .fetch_optional(&mut *conn)
        .await?
        .map(|row| user_row(&row))
        .transpose()
}

pub async fn create_session(conn: &mut PgConnection, session: &NewSession) -> Result<()> {
    sqlx::query(
        "INSERT INTO sessions (id, user_id, expires_at, created_at) VALUES ($1, $2, $3, $4)",
    )
    .bind(&session.id)
    .bind(session.user_id.get())
    .bind(micros(session.expires_at))
    .bind(micros(OffsetDateTime::now_utc()))
    .execute(&mut *conn)
    .await
    .map_err(unique("a session with this id"))?;
    Ok(())
}

/// Ends a session; a session that existed logs its end in `access`.
pub async fn delete_session(
    conn: &mut PgConnection,
    id: &str,
    access: &mut Vec<AccessChange>,
) -> Result<()> {
    let deleted = sqlx::query("DELETE FROM sessions WHERE id = $1")
        .bind(id)
        .execute(&mut *conn)
        .await?;
    if deleted.rows_affected() > 0 {
        access.push(AccessChange::SessionEnded {
            session_id: id.to_owned(),
        });
    }
    Ok(())
}

/// The session's user and memberships in one statement (one snapshot).
pub async fn session_identity(
    conn: &mut PgConnection,
    session_id: &str,
    now: OffsetDateTime,
) -> Result<Option<Identity>> {
    let row = sqlx::query(
        "SELECT u.id, u.email, u.name, u.is_admin, s.expires_at,
            (SELECT COALESCE(json_agg(json_build_array(m.store_id, st.slug, m.role)
                                      ORDER BY st.slug), '[]')::text
             FROM memberships m JOIN stores st ON st.id = m.store_id
             WHERE m.user_id = u.id)
         FROM sessions s JOIN users u ON u.id = s.user_id
         WHERE s.id = $1 AND s.expires_at > $2",
    )
    .bind(session_id)
    .bind(micros(now))
    .fetch_optional(&mut *conn)
    .await?;
    let Some(row) = row else { return Ok(None) };
    let user = user_row(&row)?;
    let expires_at: i64 = row.try_get(4)?;
    let json: String = row.try_get(5)?;
    let listed: Vec<(i64, String, String)> =
        serde_json::from_str(&json).map_err(|_| corrupt("memberships", &json))?;
    let memberships = listed
        .into_iter()
        .map(|(store_id, store_slug, role_text)| {
            Ok(Membership {
                store_id: StoreId::new(store_id),
                store_slug,
                role: role(&role_text)?,
            })
        })
        .collect::<Result<Vec<_>>>()?;
    Ok(Some(Identity {
        user,
        session_id: session_id.to_owned(),
        session_expires_at: from_micros(expires_at)?,
        memberships,
    }))
}

// ---- stores, staff, products ----

fn store_row(row: &PgRow) -> Result<StoreRecord> {
    Ok(StoreRecord {
        id: StoreId::new(row.try_get(0)?),
        slug: row.try_get(1)?,
        name: row.try_get(2)?,
        currency: row.try_get(3)?,
        workflow: row.try_get(4)?,
        order_prefix: row.try_get(5)?,
    })
}

pub async fn create_store(conn: &mut PgConnection, new: &NewStore) -> Result<StoreRecord> {
    let id: i64 = sqlx::query_scalar(
        "INSERT INTO stores (slug, name, currency, workflow, order_prefix, created_at)
         VALUES ($1, $2, $3, $4, $5, $6) RETURNING id",
    )
    .bind(&new.slug)
    .bind(&new.name)
    .bind(&new.currency)
    .bind(&new.workflow)
    .bind(&new.order_prefix)
    .bind(micros(OffsetDateTime::now_utc()))
    .fetch_one(&mut *conn)
    .await
    .map_err(unique("a store with this slug"))?;
    Ok(StoreRecord {
        id: StoreId::new(id),
        slug: new.slug.clone(),
        name: new.name.clone(),
        currency: new.currency.clone(),
        workflow: new.workflow.clone(),
        order_prefix: new.order_prefix.clone(),
    })
}

pub async fn stores(conn: &mut PgConnection) -> Result<Vec<StoreRecord>> {
    sqlx::query(
        "SELECT id, slug, name, currency, workflow, order_prefix FROM stores ORDER BY name, id",
    )
    .fetch_all(&mut *conn)
    .await?
    .iter()
    .map(store_row)
    .collect()
}

pub async fn store_by_slug(conn: &mut PgConnection, slug: &str) -> Result<Option<StoreRecord>> {
    sqlx::query(
        "SELECT id, slug, name, currency, workflow, order_prefix FROM stores WHERE slug = $1",
    )
    .bind(slug)
    .fetch_optional(&mut *conn)
    .await?
    .map(|row| store_row(&row))
    .transpose()
}

pub async fn store(conn: &mut PgConnection, id: StoreId) -> Result<Option<StoreRecord>> {
    sqlx::query("SELECT id, slug, name, currency, workflow, order_prefix FROM stores WHERE id = $1")
        .bind(id.get())
        .fetch_optional(&mut *conn)
        .await?
        .map(|row| store_row(&row))
        .transpose()
}

/// Gives a staff role; replacing a different role logs the change in `access`.
pub async fn set_membership(
    conn: &mut PgConnection,
    user: UserId,
    store: StoreId,
    role: Role,
    access: &mut Vec<AccessChange>,
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
    .map_err(|error| match sqlstate(&error).as_deref() {
        // 23503: foreign_key_violation.
        Some("23503") => StoreError::NotFound("user or store").into(),
        _ => Fail::from(error),
    })?;
    // A new member had no streams to end; a changed role ends those the old
    // one opened.
    if before.is_some_and(|before| before != role.as_str()) {
        access.push(AccessChange::StaffChanged {
            user_id: user,
            store_id: store,
            role: Some(role),
        });
    }
    Ok(())
}

/// Removes a staff member; a removal logs the change in `access`.
pub async fn remove_membership(
    conn: &mut PgConnection,
    user: UserId,
    store: StoreId,
    access: &mut Vec<AccessChange>,
) -> Result<bool> {
    let removed = sqlx::query("DELETE FROM memberships WHERE user_id = $1 AND store_id = $2")
        .bind(user.get())
        .bind(store.get())
        .execute(&mut *conn)
        .await?;
    let removed = removed.rows_affected() > 0;
    if removed {
        access.push(AccessChange::StaffChanged {
            user_id: user,
            store_id: store,
            role: None,
        });
    }
    Ok(removed)
}

pub async fn staff(conn: &mut PgConnection, store: StoreId) -> Result<Vec<StaffMember>> {
    sqlx::query(
        "SELECT u.id, u.email, u.name, u.is_admin, m.role FROM memberships m
         JOIN users u ON u.id = m.user_id WHERE m.store_id = $1 ORDER BY u.name, u.id",
    )
    .bind(store.get())
    .fetch_all(&mut *conn)
    .await?
    .iter()
    .map(|row| {
        let role_text: String = row.try_get(4)?;
        Ok(StaffMember {
            user: user_row(row)?,
            role: role(&role_text)?,
        })
    })
    .collect()
}

fn product_row(row: &PgRow) -> Result<Product> {
    Ok(Product {
        id: ProductId::new(row.try_get(0)?),
        store_id: StoreId::new(row.try_get(1)?),
        name: row.try_get(2)?,
        description: row.try_get(3)?,
        price_minor: row.try_get(4)?,
        station: row.try_get(5)?,
        available: row.try_get(6)?,
    })
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
    Ok(Product {
        id: ProductId::new(id),
        store_id: store,
        name: new.name.clone(),
        description: new.description.clone(),
        price_minor: new.price_minor,
        station: new.station.clone(),
        available: new.available,
    })
}

pub async fn update_product(
    conn: &mut PgConnection,
    store: StoreId,
    product: ProductId,
    patch: &ProductPatch,
) -> Result<Option<Product>> {
    sqlx::query(
        "UPDATE products SET
            name = COALESCE($3, name),
            description = COALESCE($4, description),
            price_minor = COALESCE($5, price_minor),
            station = COALESCE($6, station),
            available = COALESCE($7, available)
         WHERE id = $1 AND store_id = $2
         RETURNING id, store_id, name, description, price_minor, station, available",
    )
    .bind(product.get())
    .bind(store.get())
    .bind(&patch.name)
    .bind(&patch.description)
    .bind(patch.price_minor)
    .bind(&patch.station)
    .bind(patch.available)
    .fetch_optional(&mut *conn)
    .await?
    .map(|row| product_row(&row))
    .transpose()
}

pub async fn products(conn: &mut PgConnection, store: StoreId) -> Result<Vec<Product>> {
    sqlx::query(
        "SELECT id, store_id, name, description, price_minor, station, available
         FROM products WHERE store_id = $1 ORDER BY id",
    )
    .bind(store.get())
    .fetch_all(&mut *conn)
    .await?
    .iter()
    .map(product_row)
    .collect()
}

// ---- orders ----

/// An order with its items (as JSON, in line order): one statement, so the
/// items always belong to the version of the order read with them; `$extra`
/// columns follow the order's own.
macro_rules! order_select {
    ($extra:literal) => {
        concat!(
            "SELECT o.id, o.number, o.store_id, s.slug, o.customer_id, u.name,
        o.status, o.version, o.total_minor, o.currency, o.fulfilment, o.address, o.notes,
        o.tracking_token, o.created_at, o.updated_at,
        (SELECT COALESCE(json_agg(json_build_array(i.id, i.product_id, i.name, i.quantity,
                    i.unit_price_minor, i.notes, i.station, i.status) ORDER BY i.position), '[]')::text
         FROM order_items i WHERE i.order_id = o.id) AS items",
            $extra,
            "
    FROM orders o JOIN stores s ON s.id = o.store_id JOIN users u ON u.id = o.customer_id"
        )
    };
}

const ORDER_SELECT: &str = order_select!("");
/// An order with the rest of its store's row (read by [`order_store_row`]).
const ORDER_IN_STORE_SELECT: &str =
    order_select!(", s.name, s.currency, s.workflow, s.order_prefix");

/// One item as [`ORDER_SELECT`] lists it.
#[derive(Deserialize)]
struct ItemJson(i64, i64, String, i64, i64, Option<String>, String, String);

fn order_row(row: &PgRow) -> Result<Order> {
    let fulfilment: String = row.try_get(10)?;
    let kind =
        FulfilmentKind::parse(&fulfilment).ok_or_else(|| corrupt("fulfilment", &fulfilment))?;
    let items_json: String = row.try_get(16)?;
    let listed: Vec<ItemJson> =
        serde_json::from_str(&items_json).map_err(|_| corrupt("order items", &items_json))?;
    let items = listed
        .into_iter()
        .map(
            |ItemJson(id, product, name, quantity, unit_price_minor, notes, station, status)| {
                Ok(OrderItem {
                    id: ItemId::new(id),
                    product: ProductId::new(product),
                    name,
                    quantity: u32::try_from(quantity)
                        .map_err(|_| corrupt("quantity", &quantity.to_string()))?,
                    unit_price_minor,
                    notes,
                    station,
                    status: ItemStatus::parse(&status)
                        .ok_or_else(|| corrupt("item status", &status))?,
                })
            },
        )
        .collect::<Result<Vec<_>>>()?;
    Ok(Order {
        id: OrderId::new(row.try_get(0)?),
        number: row.try_get(1)?,
        store_id: StoreId::new(row.try_get(2)?),
        store_slug: row.try_get(3)?,
        customer_id: UserId::new(row.try_get(4)?),
        customer_name: row.try_get(5)?,
        status: row.try_get(6)?,
        version: row.try_get(7)?,
        items,
        total_minor: row.try_get(8)?,
        currency: row.try_get(9)?,
        fulfilment: Fulfilment {
            kind,
            address: row.try_get(11)?,
        },
        notes: row.try_get(12)?,
        tracking_token: row.try_get(13)?,
        created_at: from_micros(row.try_get(14)?)?,
        updated_at: from_micros(row.try_get(15)?)?,
    })
}

/// The store of an [`ORDER_IN_STORE_SELECT`] row.
fn order_store_row(row: &PgRow) -> Result<StoreRecord> {
    Ok(StoreRecord {
        id: StoreId::new(row.try_get(2)?),
        slug: row.try_get(3)?,
        name: row.try_get(17)?,
        currency: row.try_get(18)?,
        workflow: row.try_get(19)?,
        order_prefix: row.try_get(20)?,
    })
}

/// The row of one order, read with `select`.
async fn order_where(
    conn: &mut PgConnection,
    select: &str,
    key: &OrderKey,
) -> Result<Option<PgRow>> {
    let mut query = QueryBuilder::<Postgres>::new(select);
    match key {
        OrderKey::Id(id) => query.push(" WHERE o.id = ").push_bind((*id).get()),
        OrderKey::TrackingToken(token) => query.push(" WHERE o.tracking_token = ").push_bind(token),
    };
    Ok(query.build().fetch_optional(&mut *conn).await?)
}

pub async fn order(conn: &mut PgConnection, id: OrderId) -> Result<Option<Order>> {
    order_where(conn, ORDER_SELECT, &OrderKey::Id(id))
        .await?
        .map(|row| order_row(&row))
        .transpose()
}

pub async fn order_in_store(
    conn: &mut PgConnection,
    key: &OrderKey,
) -> Result<Option<OrderInStore>> {
    order_where(conn, ORDER_IN_STORE_SELECT, key)
        .await?
        .map(|row| {
            Ok(OrderInStore {
                order: order_row(&row)?,
                store: order_store_row(&row)?,
            })
        })
        .transpose()
}

pub async fn orders(conn: &mut PgConnection, request: &OrderQuery) -> Result<OrderPage> {
    let mut query = QueryBuilder::<Postgres>::new(ORDER_SELECT);
    match request.scope {
        OrderScope::Customer(customer) => query
            .push(" WHERE o.customer_id = ")
            .push_bind(customer.get()),
        OrderScope::Store(store) => query.push(" WHERE o.store_id = ").push_bind(store.get()),
    };
    if !request.statuses.is_empty() {
        query
            .push(" AND o.status = ANY(")
            .push_bind(request.statuses.clone())
            .push(")");
    }
    if let Some(fulfilment) = request.fulfilment {
        query
            .push(" AND o.fulfilment = ")
            .push_bind(fulfilment.as_str());
    }
    if let Some(search) = request
        .search
        .as_deref()
        .map(str::trim)
        .filter(|s| !s.is_empty())
    {
        // ILIKE: case-insensitive like SQLite's LIKE; `\` escapes the wildcards.
        let pattern = format!("%{}%", escape_like(search));
        query
            .push(" AND (o.number ILIKE ")
            .push_bind(pattern.clone())
            .push(" ESCAPE '\\' OR u.name ILIKE ")
            .push_bind(pattern)
            .push(" ESCAPE '\\')");
    }
    if let Some(before) = request.before {
        query.push(" AND o.id < ").push_bind(before.get());
    }
    // One extra row tells whether another page follows.
    query
        .push(if request.oldest_first {
            " ORDER BY o.id ASC LIMIT "
        } else {
            " ORDER BY o.id DESC LIMIT "
        })
        .push_bind(i64::from(request.limit) + 1);
    let mut orders = query
        .build()
        .fetch_all(&mut *conn)
        .await?
        .iter()
        .map(order_row)
        .collect::<Result<Vec<_>>>()?;
    let next_before = if orders.len() > request.limit as usize {
        orders.truncate(request.limit as usize);
        orders
            .last()
            .map(|o| o.id)
            .filter(|_| !request.oldest_first)
    } else {
        None
    };
    Ok(OrderPage {
        orders,
        next_before,
    })
}

fn escape_like(text: &str) -> String {
    let mut escaped = String::with_capacity(text.len());
    for c in text.chars() {
        if matches!(c, '%' | '_' | '\\') {
            escaped.push('\\');
        }
        escaped.push(c);
    }
    escaped
}

pub async fn status_counts(
    conn: &mut PgConnection,
    store: StoreId,
    fulfilment: Option<FulfilmentKind>,
) -> Result<Vec<(String, i64)>> {
    sqlx::query(
        "SELECT status, COUNT(*) FROM orders WHERE store_id = $1
         AND ($2::text IS NULL OR fulfilment = $2) GROUP BY status ORDER BY status",
    )
    .bind(store.get())
    .bind(fulfilment.map(FulfilmentKind::as_str))
    .fetch_all(&mut *conn)
    .await?
    .iter()
    .map(|row| Ok((row.try_get(0)?, row.try_get(1)?)))
    .collect()
}

pub async fn history(conn: &mut PgConnection, order: OrderId) -> Result<Vec<HistoryEntry>> {
    sqlx::query(
        "SELECT from_status, to_status, actor_id, actor_role, note, at FROM status_history
         WHERE order_id = $1 ORDER BY id",
    )
    .bind(order.get())
    .fetch_all(&mut *conn)
    .await?
    .iter()
    .map(|row| {
        let role_text: String = row.try_get(3)?;
        Ok(HistoryEntry {
            from: row.try_get(0)?,
            to: row.try_get(1)?,
            actor: Actor {
                id: UserId::new(row.try_get(2)?),
                role: role(&role_text)?,
            },
            note: row.try_get(4)?,
            at: from_micros(row.try_get(5)?)?,
        })
    })
    .collect()
}

async fn append_history(
    conn: &mut PgConnection,
    order: OrderId,
    entry: &HistoryEntry,
) -> Result<()> {
    sqlx::query(
        "INSERT INTO status_history (order_id, from_status, to_status, actor_id, actor_role, note, at)
         VALUES ($1, $2, $3, $4, $5, $6, $7)",
    )
    .bind(order.get())
    .bind(&entry.from)
    .bind(&entry.to)
    .bind(entry.actor.id.get())
    .bind(entry.actor.role.as_str())
    .bind(&entry.note)
    .bind(micros(entry.at))
    .execute(&mut *conn)
    .await?;
    Ok(())
}

/// The original order of an idempotency key, or `None` if the key is new.
async fn earlier_order(
    conn: &mut PgConnection,
    customer: UserId,
    key: &str,
    hash: &str,
) -> Result<Option<PlacedOrder>> {
    let earlier = sqlx::query(
        "SELECT request_hash, order_id FROM idempotency_keys WHERE customer_id = $1 AND key = $2",
    )
    .bind(customer.get())
    .bind(key)
    .fetch_optional(&mut *conn)
    .await?;
    let Some(earlier) = earlier else {
        return Ok(None);
    };
    let earlier_hash: String = earlier.try_get(0)?;
    if earlier_hash != hash {
        return Err(StoreError::IdempotencyMismatch.into());
    }
    let order = order(conn, OrderId::new(earlier.try_get(1)?))
        .await?
        .ok_or(StoreError::NotFound("order"))?;
    Ok(Some(PlacedOrder {
        order,
        created: false,
    }))
}

pub async fn place_order(
    conn: &mut PgConnection,
    new: &NewOrder,
    events: &mut Vec<NewEvent>,
) -> Result<PlacedOrder> {
    let Some((key, hash)) = &new.idempotency else {
        return insert_order(conn, new, events).await;
    };
    if let Some(replay) = earlier_order(conn, new.customer_id, key, hash).await? {
        return Ok(replay);
    }
    // Another instance may be placing the same request right now. Its key
    // row makes our insert wait for its commit; then ours does nothing and
    // the request is a replay of the order it placed.
    let mut attempt = conn.begin().await?;
    // Inside the batch's transaction sqlx opens a savepoint of this name.
    super::opened("SAVEPOINT _sqlx_savepoint_1");
    let mut created = Vec::new();
    let placed = insert_order(&mut attempt, new, &mut created).await?;
    let inserted = sqlx::query(
        "INSERT INTO idempotency_keys (customer_id, key, request_hash, order_id, created_at)
         VALUES ($1, $2, $3, $4, $5) ON CONFLICT (customer_id, key) DO NOTHING",
    )
    .bind(new.customer_id.get())
    .bind(key)
    .bind(hash)
    .bind(placed.order.id.get())
    .bind(micros(new.at))
    .execute(&mut *attempt)
    .await?
    .rows_affected();
    if inserted == 1 {
        attempt.commit().await?;
        events.append(&mut created);
        return Ok(placed);
    }
    attempt.rollback().await?;
    earlier_order(conn, new.customer_id, key, hash)
        .await?
        .ok_or_else(|| StoreError::Database("an idempotency key vanished".into()).into())
}

async fn insert_order(
    conn: &mut PgConnection,
    new: &NewOrder,
    events: &mut Vec<NewEvent>,
) -> Result<PlacedOrder> {
    let numbered = sqlx::query(
        "UPDATE stores SET last_order_seq = last_order_seq + 1 WHERE id = $1
         RETURNING last_order_seq, order_prefix",
    )
    .bind(new.store_id.get())
    .fetch_optional(&mut *conn)
    .await?
    .ok_or(StoreError::NotFound("store"))?;
    let sequence: i64 = numbered.try_get(0)?;
    let prefix: String = numbered.try_get(1)?;
    let number = order_number(&prefix, sequence);
    let at = micros(new.at);
    let order_id: i64 = sqlx::query_scalar(
        "INSERT INTO orders (store_id, number, customer_id, status, version, total_minor, currency,
            fulfilment, address, notes, tracking_token, created_at, updated_at)
         VALUES ($1, $2, $3, $4, 1, $5, $6, $7, $8, $9, $10, $11, $11) RETURNING id",
    )
    .bind(new.store_id.get())
    .bind(&number)
    .bind(new.customer_id.get())
    .bind(&new.status)
    .bind(new.total_minor)
    .bind(&new.currency)
    .bind(new.fulfilment.kind.as_str())
    .bind(&new.fulfilment.address)
    .bind(&new.notes)
    .bind(&new.tracking_token)
    .bind(at)
    .fetch_one(&mut *conn)
    .await
    .map_err(unique("an order with this number or tracking token"))?;

    let count = new.lines.len();
    let mut positions = Vec::with_capacity(count);
    let mut products = Vec::with_capacity(count);
    let mut names = Vec::with_capacity(count);
    let mut quantities = Vec::with_capacity(count);
    let mut prices = Vec::with_capacity(count);
    let mut notes = Vec::with_capacity(count);
    let mut stations = Vec::with_capacity(count);
    for (position, line) in new.lines.iter().enumerate() {
        positions.push(
            i32::try_from(position)
                .map_err(|_| Fail::from(StoreError::Database("too many order lines".into())))?,
        );
        products.push(line.product.get());
        names.push(line.name.as_str());
        quantities.push(i64::from(line.quantity));
        prices.push(line.unit_price_minor);
        notes.push(line.notes.as_deref());
        stations.push(line.station.as_str());
    }
    sqlx::query(
        "INSERT INTO order_items (order_id, position, product_id, name, quantity, unit_price_minor,
            notes, station, status)
         SELECT $1, line.*, 'queued'
         FROM UNNEST($2::int4[], $3::int8[], $4::text[], $5::int8[], $6::int8[], $7::text[],
                     $8::text[]) AS line",
    )
    .bind(order_id)
    .bind(&positions)
    .bind(&products)
    .bind(&names)
    .bind(&quantities)
    .bind(&prices)
    .bind(&notes)
    .bind(&stations)
    .execute(&mut *conn)
    .await?;

    let order = order(conn, OrderId::new(order_id))
        .await?
        .ok_or(StoreError::NotFound("order"))?;
    let (history, event) = order_created(&order, new.summary.clone(), new.placed_by);
    append_history(conn, OrderId::new(order_id), &history).await?;
    events.push(event);
    Ok(PlacedOrder {
        order,
        created: true,
    })
}

/// Bumps the order's version if it is still `expected`; otherwise reports
/// the current version. A concurrent writer's uncommitted change to the same
/// order makes this wait for its commit, then see the new version.
async fn bump_version(
    conn: &mut PgConnection,
    order: OrderId,
    expected: i64,
    status: Option<&str>,
    at: OffsetDateTime,
) -> Result<()> {
    let changed = sqlx::query(
        "UPDATE orders SET version = version + 1, status = COALESCE($3, status), updated_at = $4
         WHERE id = $1 AND version = $2",
    )
    .bind(order.get())
    .bind(expected)
    .bind(status)
    .bind(micros(at))
    .execute(&mut *conn)
    .await?
    .rows_affected();
    if changed == 1 {
        return Ok(());
    }
    let current: Option<i64> = sqlx::query_scalar("SELECT version FROM orders WHERE id = $1")
        .bind(order.get())
        .fetch_optional(&mut *conn)
        .await?;
    Err(match current {
        Some(current) => StoreError::VersionConflict { current },
        None => StoreError::NotFound("order"),
    }
    .into())
}

async fn write_status_change(
    conn: &mut PgConnection,
    change: &StatusChange,
    events: &mut Vec<NewEvent>,
) -> Result<()> {
    bump_version(
        conn,
        change.order_id,
        change.expected_version,
        Some(&change.to),
        change.history.at,
    )
    .await?;
    append_history(conn, change.order_id, &change.history).await?;
    events.push(change.event.clone());
    Ok(())
}

pub async fn apply_status_change(
    conn: &mut PgConnection,
    change: &StatusChange,
    events: &mut Vec<NewEvent>,
) -> Result<Order> {
    write_status_change(conn, change, events).await?;
    order(conn, change.order_id)
        .await?
        .ok_or_else(|| StoreError::NotFound("order").into())
}

/// Writes one item's status change: version check, the item, its event.
async fn write_item_change(
    conn: &mut PgConnection,
    order_id: OrderId,
    expected_version: i64,
    item: &ItemChange,
    event: &NewEvent,
    events: &mut Vec<NewEvent>,
) -> Result<()> {
    bump_version(conn, order_id, expected_version, None, event.at).await?;
    let updated = sqlx::query("UPDATE order_items SET status = $1 WHERE id = $2 AND order_id = $3")
        .bind(item.to.as_str())
        .bind(item.id.get())
        .bind(order_id.get())
        .execute(&mut *conn)
        .await?
        .rows_affected();
    if updated != 1 {
        return Err(StoreError::NotFound("order item").into());
    }
    events.push(event.clone());
    Ok(())
}

pub async fn apply_item_change(
    conn: &mut PgConnection,
    change: &ItemStatusChange,
    events: &mut Vec<NewEvent>,
) -> Result<Order> {
    let order_id = change.order_id;
    write_item_change(
        conn,
        order_id,
        change.expected_version,
        &change.item,
        &change.event,
        events,
    )
    .await?;
    if let Some(then) = &change.then {
        write_status_change(conn, then, events).await?;
    }
    order(conn, order_id)
        .await?
        .ok_or_else(|| StoreError::NotFound("order").into())
}

/// Writes every step of a plan in the request's savepoint: a failing step
/// fails the request, and the writer rolls all of its steps back.
pub async fn apply_plan(
    conn: &mut PgConnection,
    plan: &OrderPlan,
    events: &mut Vec<NewEvent>,
) -> Result<Order> {
    for step in &plan.steps {
        match step {
            PlanStep::Item(step) => {
                write_item_change(
                    conn,
                    plan.order_id,
                    step.expected_version,
                    &step.item,
                    &step.event,
                    events,
                )
                .await?
            }
            PlanStep::Status(change) => write_status_change(conn, change, events).await?,
        }
    }
    let order = order(conn, plan.order_id)
        .await?
        .ok_or(StoreError::NotFound("order"))?;
    if order.version != plan.final_version() {
        // Only an empty plan gets here with another version: it changes
        // nothing, but still answers for the version it was decided on.
        return Err(StoreError::VersionConflict {
            current: order.version,
        }
        .into());
    }
    Ok(order)
}

/// A change of one order taken in bulk: a status change, or an item status
/// change (with the status change it may bring about).
#[derive(Clone, Copy)]
pub enum BulkChange<'a> {
    Status(&'a StatusChange),
    Item(&'a ItemStatusChange),
}

impl BulkChange<'_> {
    fn order_id(self) -> OrderId {
        match self {
            BulkChange::Status(change) => change.order_id,
            BulkChange::Item(change) => change.order_id,
        }
    }

    fn expected_version(self) -> i64 {
        match self {
            BulkChange::Status(change) => change.expected_version,
            BulkChange::Item(change) => change.expected_version,
        }
    }

    /// The status change written: the change itself, or the item change's
    /// auto-advance.
    fn status_change(&self) -> Option<&StatusChange> {
        match self {
            BulkChange::Status(change) => Some(change),
            BulkChange::Item(change) => change.then.as_ref(),
        }
    }

    /// By how much the order's version moves.
    fn bump(&self) -> i64 {
        match self {
            BulkChange::Status(_) => 1,
            BulkChange::Item(change) => 1 + i64::from(change.then.is_some()),
        }
    }

    /// The order's `updated_at` afterwards: the time of its last write.
    fn at(&self) -> i64 {
        match self {
            BulkChange::Status(change) => micros(change.history.at),
            BulkChange::Item(change) => match &change.then {
                Some(then) => micros(then.history.at),
                None => micros(change.event.at),
            },
        }
    }
}

/// Whether an item change can be written in bulk: one statement can apply
/// it and its auto-advance only if the auto-advance expects the version the
/// item change makes (which is how the domain plans it).
pub fn bulk_item_change_ok(change: &ItemStatusChange) -> bool {
    change.then.as_ref().is_none_or(|then| {
        then.order_id == change.order_id && then.expected_version == change.expected_version + 1
    })
}

/// Applies changes of distinct orders together: one version-checked update
/// of the orders and their changed items, one history insert, one read of
/// the changed orders. Returns each change's outcome, in order, and records
/// the events of those applied (an item change's before its auto-advance's).
/// An error means nothing may be kept (roll back); one that is not a retry
/// also means the changes should be run one by one.
pub async fn bulk_changes(
    conn: &mut PgConnection,
    changes: &[BulkChange<'_>],
    events: &mut Vec<NewEvent>,
) -> Result<Vec<std::result::Result<Order, StoreError>>> {
    let ids: Vec<i64> = changes.iter().map(|c| c.order_id().get()).collect();
    let expected: Vec<i64> = changes.iter().map(|c| c.expected_version()).collect();
    let bumps: Vec<i64> = changes.iter().map(|c| c.bump()).collect();
    let statuses: Vec<Option<&str>> = changes
        .iter()
        .map(|c| c.status_change().map(|s| s.to.as_str()))
        .collect();
    let times: Vec<i64> = changes.iter().map(|c| c.at()).collect();
    let items: Vec<Option<i64>> = changes
        .iter()
        .map(|c| match c {
            BulkChange::Item(change) => Some(change.item.id.get()),
            BulkChange::Status(_) => None,
        })
        .collect();
    let item_statuses: Vec<Option<&str>> = changes
        .iter()
        .map(|c| match c {
            BulkChange::Item(change) => Some(change.item.to.as_str()),
            BulkChange::Status(_) => None,
        })
        .collect();
    // The orders are updated only where the version matches and the item
    // (if any) belongs to the order; the items only of the orders updated.
    let rows = sqlx::query(
        "WITH c AS (
             SELECT * FROM UNNEST($1::int8[], $2::int8[], $3::int8[], $4::text[], $5::int8[],
                                  $6::int8[], $7::text[])
                 AS c(id, expected, bump, to_status, at, item_id, item_status)
         ), o AS (
             UPDATE orders AS o
             SET version = o.version + c.bump, status = COALESCE(c.to_status, o.status),
                 updated_at = c.at
             FROM c
             WHERE o.id = c.id AND o.version = c.expected
               AND (c.item_id IS NULL OR EXISTS (
                   SELECT 1 FROM order_items i WHERE i.id = c.item_id AND i.order_id = c.id))
             RETURNING o.id
         ), i AS (
             UPDATE order_items AS i SET status = c.item_status
             FROM c JOIN o ON o.id = c.id
             WHERE c.item_id IS NOT NULL AND i.id = c.item_id AND i.order_id = c.id
             RETURNING i.id
         )
         SELECT o.id, (SELECT COUNT(*) FROM i) FROM o",
    )
    .bind(&ids)
    .bind(&expected)
    .bind(&bumps)
    .bind(&statuses)
    .bind(&times)
    .bind(&items)
    .bind(&item_statuses)
    .fetch_all(&mut *conn)
    .await?;
    let mut applied: HashSet<i64> = HashSet::with_capacity(rows.len());
    let mut items_updated: i64 = 0;
    for row in &rows {
        applied.insert(row.try_get(0)?);
        items_updated = row.try_get(1)?;
    }
    let items_applied = changes
        .iter()
        .filter(|c| matches!(c, BulkChange::Item(_)) && applied.contains(&c.order_id().get()))
        .count();
    if usize::try_from(items_updated).ok() != Some(items_applied) {
        return Err(
            StoreError::Database("bulk item update did not match its orders".into()).into(),
        );
    }

    // Why the others were refused: a newer version, no such order, or no
    // such item in it.
    let refused: Vec<usize> = (0..changes.len())
        .filter(|&n| !applied.contains(&ids[n]))
        .collect();
    let mut found: HashMap<i64, (Option<i64>, bool)> = HashMap::new();
    if !refused.is_empty() {
        for row in sqlx::query(
            "SELECT c.id, o.version, EXISTS (
                 SELECT 1 FROM order_items i WHERE i.id = c.item_id AND i.order_id = c.id)
             FROM UNNEST($1::int8[], $2::int8[]) AS c(id, item_id)
             LEFT JOIN orders o ON o.id = c.id",
        )
        .bind(refused.iter().map(|&n| ids[n]).collect::<Vec<_>>())
        .bind(refused.iter().map(|&n| items[n]).collect::<Vec<_>>())
        .fetch_all(&mut *conn)
        .await?
        {
            found.insert(row.try_get(0)?, (row.try_get(1)?, row.try_get(2)?));
        }
    }
    let mut refusals: HashMap<usize, StoreError> = HashMap::new();
    for &n in &refused {
        let error = match found.get(&ids[n]) {
            None | Some((None, _)) => StoreError::NotFound("order"),
            Some(&(Some(current), _)) if current != expected[n] => {
                StoreError::VersionConflict { current }
            }
            Some((Some(_), false)) if items[n].is_some() => StoreError::NotFound("order item"),
            // Nothing explains the refusal: let the one-by-one path decide.
            _ => {
                return Err(
                    StoreError::Database("bulk change refused for no reason".into()).into(),
                );
            }
        };
        refusals.insert(n, error);
    }

    let done: Vec<&StatusChange> = changes
        .iter()
        .filter(|c| applied.contains(&c.order_id().get()))
        .filter_map(|c| c.status_change())
        .collect();
    if !done.is_empty() {
        let entries: Vec<&HistoryEntry> = done.iter().map(|c| &c.history).collect();
        sqlx::query(
            "INSERT INTO status_history (order_id, from_status, to_status, actor_id, actor_role,
                note, at)
             SELECT * FROM UNNEST($1::int8[], $2::text[], $3::text[], $4::int8[], $5::text[],
                                  $6::text[], $7::int8[])",
        )
        .bind(done.iter().map(|c| c.order_id.get()).collect::<Vec<_>>())
        .bind(
            entries
                .iter()
                .map(|e| e.from.as_deref())
                .collect::<Vec<_>>(),
        )
        .bind(entries.iter().map(|e| e.to.as_str()).collect::<Vec<_>>())
        .bind(entries.iter().map(|e| e.actor.id.get()).collect::<Vec<_>>())
        .bind(
            entries
                .iter()
                .map(|e| e.actor.role.as_str())
                .collect::<Vec<_>>(),
        )
        .bind(
            entries
                .iter()
                .map(|e| e.note.as_deref())
                .collect::<Vec<_>>(),
        )
        .bind(entries.iter().map(|e| micros(e.at)).collect::<Vec<_>>())
        .execute(&mut *conn)
        .await?;
    }

    let mut orders: HashMap<i64, Order> = HashMap::new();
    if !applied.is_empty() {
        let mut query = QueryBuilder::<Postgres>::new(ORDER_SELECT);
        query
            .push(" WHERE o.id = ANY(")
            .push_bind(applied.iter().copied().collect::<Vec<_>>())
            .push(")");
        for row in query.build().fetch_all(&mut *conn).await? {
            let order = order_row(&row)?;
            orders.insert(order.id.get(), order);
        }
    }

    let mut outcomes = Vec::with_capacity(changes.len());
    for (n, change) in changes.iter().enumerate() {
        if let Some(error) = refusals.remove(&n) {
            outcomes.push(Err(error));
            continue;
        }
        let order = orders
            .remove(&change.order_id().get())
            .ok_or(StoreError::NotFound("order"))?;
        match change {
            BulkChange::Status(change) => events.push(change.event.clone()),
            BulkChange::Item(change) => {
                events.push(change.event.clone());
                if let Some(then) = &change.then {
                    events.push(then.event.clone());
                }
            }
        }
        outcomes.push(Ok(order));
    }
    Ok(outcomes)
}

// ---- events ----

/// Locks the rows of `stores` (sorted) until the end of the transaction.
pub async fn lock_stores(conn: &mut PgConnection, stores: &[StoreId]) -> Result<()> {
    if !stores.is_empty() {
        let ids: Vec<i64> = stores.iter().map(|id| id.get()).collect();
        sqlx::query("SELECT id FROM stores WHERE id = ANY($1) ORDER BY id FOR UPDATE")
            .bind(ids)
            .execute(&mut *conn)
            .await?;
    }
    Ok(())
}

/// Writes a batch's events and access changes, last thing before its
/// commit, and returns them with their positions (the order events first).
/// The counter rows are locked from here until the commit: positions are
/// handed out in commit order and never skipped.
pub async fn append_events(
    conn: &mut PgConnection,
    pending: Vec<NewEvent>,
    access: Vec<AccessChange>,
) -> Result<Vec<LogEntry>> {
    if pending.is_empty() && access.is_empty() {
        return Ok(Vec::new());
    }
    // Each store's sequence moves once per batch, by its number of events.
    let mut per_store: BTreeMap<StoreId, i64> = BTreeMap::new();
    for event in &pending {
        *per_store.entry(event.store_id).or_default() += 1;
    }
    let mut next_seq: BTreeMap<StoreId, i64> = BTreeMap::new();
    if !per_store.is_empty() {
        let stores: Vec<i64> = per_store.keys().map(|id| id.get()).collect();
        let counts: Vec<i64> = per_store.values().copied().collect();
        let bumped = sqlx::query(
            "UPDATE stores SET last_event_seq = stores.last_event_seq + bump.n
             FROM UNNEST($1::int8[], $2::int8[]) AS bump(id, n)
             WHERE stores.id = bump.id
             RETURNING stores.id, stores.last_event_seq",
        )
        .bind(&stores)
        .bind(&counts)
        .fetch_all(&mut *conn)
        .await?;
        // The next free store_seq of each store.
        for row in &bumped {
            let store = StoreId::new(row.try_get(0)?);
            let last: i64 = row.try_get(1)?;
            next_seq.insert(store, last - per_store[&store] + 1);
        }
    }
    let total = i64::try_from(pending.len() + access.len()).unwrap_or(i64::MAX);
    let last_id: i64 =
        sqlx::query_scalar("UPDATE event_log_head SET last_id = last_id + $1 RETURNING last_id")
            .bind(total)
            .fetch_one(&mut *conn)
            .await?;
    // Handed out in order: the order events', then the access changes'.
    let mut ids = (last_id - total + 1)..=last_id;

    let mut stored = Vec::with_capacity(pending.len() + access.len());
    let mut columns = EventColumns::default();
    for (event, id) in pending.into_iter().zip(ids.by_ref()) {
        let seq = next_seq
            .get_mut(&event.store_id)
            .ok_or(StoreError::NotFound("store"))?;
        let store_seq = *seq;
        *seq += 1;
        let payload =
            serde_json::to_string(&event).map_err(|e| StoreError::Database(e.to_string()))?;
        columns.push(id, store_seq, &event, payload);
        stored.push(LogEntry::Order(StoredEvent {
            id,
            store_seq,
            event,
        }));
    }
    if !columns.ids.is_empty() {
        sqlx::query(
            "INSERT INTO events (id, store_id, store_seq, order_id, customer_id, kind, order_version,
                payload, created_at)
             SELECT * FROM UNNEST($1::int8[], $2::int8[], $3::int8[], $4::int8[], $5::int8[],
                                  $6::text[], $7::int8[], $8::text[], $9::int8[])",
        )
        .bind(&columns.ids)
        .bind(&columns.stores)
        .bind(&columns.store_seqs)
        .bind(&columns.orders)
        .bind(&columns.customers)
        .bind(&columns.kinds)
        .bind(&columns.versions)
        .bind(&columns.payloads)
        .bind(&columns.created)
        .execute(&mut *conn)
        .await?;
    }
    if !access.is_empty() {
        let now = micros(OffsetDateTime::now_utc());
        let mut access_ids = Vec::with_capacity(access.len());
        let mut payloads = Vec::with_capacity(access.len());
        for (change, id) in access.into_iter().zip(ids) {
            payloads.push(
                serde_json::to_string(&change).map_err(|e| StoreError::Database(e.to_string()))?,
            );
            access_ids.push(id);
            stored.push(LogEntry::Access(AccessEvent { id, change }));
        }
        sqlx::query(
            "INSERT INTO events (id, kind, payload, created_at)
             SELECT id, $2, payload, $3 FROM UNNEST($1::int8[], $4::text[]) AS a(id, payload)",
        )
        .bind(&access_ids)
        .bind(AccessChange::KIND)
        .bind(now)
        .bind(&payloads)
        .execute(&mut *conn)
        .await?;
    }
    Ok(stored)
}

/// Events as columns, for one multi-row insert.
#[derive(Default)]
struct EventColumns {
    ids: Vec<i64>,
    stores: Vec<i64>,
    store_seqs: Vec<i64>,
    orders: Vec<i64>,
    customers: Vec<i64>,
    kinds: Vec<&'static str>,
    versions: Vec<i64>,
    payloads: Vec<String>,
    created: Vec<i64>,
}

impl EventColumns {
    fn push(&mut self, id: i64, store_seq: i64, event: &NewEvent, payload: String) {
        self.ids.push(id);
        self.stores.push(event.store_id.get());
        self.store_seqs.push(store_seq);
        self.orders.push(event.order_id.get());
        self.customers.push(event.customer_id.get());
        self.kinds.push(event.kind.as_str());
        self.versions.push(event.order_version);
        self.payloads.push(payload);
        self.created.push(micros(event.at));
    }
}

pub async fn events_after(
    conn: &mut PgConnection,
    filter: &EventFilter,
    after: i64,
    limit: u32,
) -> Result<Vec<StoredEvent>> {
    let (sql, value) = match filter {
        EventFilter::Order(id) => (
            "SELECT id, store_seq, payload FROM events
             WHERE order_id = $1 AND id > $2 ORDER BY id LIMIT $3",
            id.get(),
        ),
        EventFilter::Customer(id) => (
            "SELECT id, store_seq, payload FROM events
             WHERE customer_id = $1 AND id > $2 ORDER BY id LIMIT $3",
            id.get(),
        ),
        EventFilter::Store(id) => (
            "SELECT id, store_seq, payload FROM events
             WHERE store_id = $1 AND id > $2 ORDER BY id LIMIT $3",
            id.get(),
        ),
    };
    let rows = sqlx::query(sql)
        .bind(value)
        .bind(after)
        .bind(i64::from(limit))
        .fetch_all(&mut *conn)
        .await?;
    stored_events(&rows)
}

pub async fn events_since(
    conn: &mut PgConnection,
    after: i64,
    limit: u32,
) -> Result<Vec<LogEntry>> {
    let rows = sqlx::query(
        "SELECT id, store_seq, kind, payload FROM events WHERE id > $1 ORDER BY id LIMIT $2",
    )
    .bind(after)
    .bind(i64::from(limit))
    .fetch_all(&mut *conn)
    .await?;
    rows.iter()
        .map(|row| {
            let kind: &str = row.try_get(2)?;
            let payload: &str = row.try_get(3)?;
            Ok(LogEntry::from_row(
                row.try_get(0)?,
                row.try_get(1)?,
                kind,
                payload,
            )?)
        })
        .collect()
}

fn stored_events(rows: &[PgRow]) -> Result<Vec<StoredEvent>> {
    rows.iter()
        .map(|row| {
            let payload: String = row.try_get(2)?;
            let event: NewEvent =
                serde_json::from_str(&payload).map_err(|_| corrupt("event", &payload))?;
            Ok(StoredEvent {
                id: row.try_get(0)?,
                store_seq: row.try_get(1)?,
                event,
            })
        })
        .collect()
}

pub async fn last_event_position(conn: &mut PgConnection) -> Result<i64> {
    Ok(sqlx::query_scalar("SELECT last_id FROM event_log_head")
        .fetch_one(&mut *conn)
        .await?)
}
