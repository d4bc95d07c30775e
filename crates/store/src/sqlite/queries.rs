//! The SQL of the SQLite store. Every function runs on a connection (or the
//! writer's transaction) handed to it by a worker thread.

use ordertrack_domain::{
    Actor, Fulfilment, FulfilmentKind, HistoryEntry, ItemChange, ItemId, ItemStatus,
    ItemStatusChange, NewEvent, Order, OrderId, OrderItem, OrderPlan, PlanStep, ProductId, Role,
    StatusChange, StoreId, UserId, order_created, order_number,
};
use rusqlite::{Connection, ErrorCode, OptionalExtension, Row, params};
use time::OffsetDateTime;

use super::writer::WriteTx;
use crate::{
    AccessChange, AccessEvent, Credentials, EventFilter, Identity, LogEntry, Membership, NewOrder,
    NewProduct, NewSession, NewStore, NewUser, OrderInStore, OrderKey, OrderPage, OrderQuery,
    OrderScope, PlacedOrder, Product, ProductPatch, StaffMember, StoreError, StoreRecord,
    StoredEvent, User,
};

/// Microseconds since the Unix epoch: how times are stored.
pub fn micros(at: OffsetDateTime) -> i64 {
    i64::try_from(at.unix_timestamp_nanos() / 1_000).unwrap_or(i64::MAX)
}

fn from_micros(value: i64) -> Result<OffsetDateTime, StoreError> {
    OffsetDateTime::from_unix_timestamp_nanos(i128::from(value) * 1_000)
        .map_err(|e| StoreError::Database(format!("bad stored time {value}: {e}")))
}

fn corrupt(what: &str, value: &str) -> StoreError {
    StoreError::Database(format!("unreadable stored {what} `{value}`"))
}

/// Maps a uniqueness violation to [`StoreError::Conflict`].
fn unique(what: &'static str) -> impl FnOnce(rusqlite::Error) -> StoreError {
    move |error| match error.sqlite_error_code() {
        Some(ErrorCode::ConstraintViolation) => StoreError::Conflict(what),
        _ => error.into(),
    }
}

// ---- users and sessions ----

const USER_COLUMNS: &str = "id, email, name, is_admin";

fn user_row(row: &Row<'_>) -> rusqlite::Result<User> {
    Ok(User {
        id: UserId::new(row.get(0)?),
        email: row.get(1)?,
        name: row.get(2)?,
        is_admin: row.get(3)?,
    })
}

pub fn create_user(conn: &Connection, new: &NewUser) -> Result<User, StoreError> {
    let email = new.email.to_lowercase();
    conn.prepare_cached(
        "INSERT INTO users (email, name, password_hash, is_admin, created_at, email_skeleton)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
    )?
    .execute(params![
        email,
        new.name,
        new.password_hash,
        new.is_admin,
        micros(OffsetDateTime::now_utc()),
        ordertrack_domain::text::email_skeleton(&email),
    ])
    .map_err(unique("a user with this email"))?;
    Ok(User {
        id: UserId::new(conn.last_insert_rowid()),
        email,
        name: new.name.clone(),
        is_admin: new.is_admin,
    })
}

pub fn user_credentials(conn: &Connection, email: &str) -> Result<Option<Credentials>, StoreError> {
    Ok(conn
        .prepare_cached(&format!(
            "SELECT {USER_COLUMNS}, password_hash FROM users WHERE email = ?1"
        ))?
        .query_row([email], |row| {
            Ok(Credentials {
                user: user_row(row)?,
                password_hash: row.get(4)?,
            })
        })
        .optional()?)
}

pub fn user(conn: &Connection, id: UserId) -> Result<Option<User>, StoreError> {
    Ok(conn
        .prepare_cached(&format!("SELECT {USER_COLUMNS} FROM users WHERE id = ?1"))?
        .query_row([id.get()], user_row)
        .optional()?)
}

pub fn create_session(conn: &Connection, session: &NewSession) -> Result<(), StoreError> {
    conn.prepare_cached(
        "INSERT INTO sessions (id, user_id, expires_at, created_at) VALUES (?1, ?2, ?3, ?4)",
    )?
    .execute(params![
        session.id,
        session.user_id.get(),
        micros(session.expires_at),
        micros(OffsetDateTime::now_utc())
    ])?;
    Ok(())
}

pub fn delete_session(tx: &mut WriteTx<'_>, id: &str) -> Result<(), StoreError> {
    let deleted = tx
        .conn()
        .prepare_cached("DELETE FROM sessions WHERE id = ?1")?
        .execute([id])?;
    if deleted > 0 {
        append_access(
            tx,
            AccessChange::SessionEnded {
                session_id: id.to_owned(),
            },
        )?;
    }
    Ok(())
}

pub fn session_identity(
    conn: &Connection,
    session_id: &str,
    now: OffsetDateTime,
) -> Result<Option<Identity>, StoreError> {
    // One row per membership (one row without any), all from one statement,
    // so the user and their roles come from the same snapshot.
    let mut statement = conn.prepare_cached(
        "SELECT u.id, u.email, u.name, u.is_admin, s.expires_at, m.store_id, st.slug, m.role
         FROM sessions s JOIN users u ON u.id = s.user_id
         LEFT JOIN memberships m ON m.user_id = u.id LEFT JOIN stores st ON st.id = m.store_id
         WHERE s.id = ?1 AND s.expires_at > ?2 ORDER BY st.slug",
    )?;
    let mut rows = statement.query(params![session_id, micros(now)])?;
    let mut identity: Option<Identity> = None;
    while let Some(row) = rows.next()? {
        let identity = match &mut identity {
            Some(identity) => identity,
            None => identity.insert(Identity {
                user: user_row(row)?,
                session_id: session_id.to_owned(),
                session_expires_at: from_micros(row.get(4)?)?,
                memberships: Vec::new(),
            }),
        };
        let membership: (Option<i64>, Option<String>, Option<String>) =
            (row.get(5)?, row.get(6)?, row.get(7)?);
        if let (Some(store_id), Some(store_slug), Some(role)) = membership {
            identity.memberships.push(Membership {
                store_id: StoreId::new(store_id),
                store_slug,
                role: role.parse().map_err(|_| corrupt("role", &role))?,
            });
        }
    }
    Ok(identity)
}

// ---- stores, staff, products ----

const STORE_COLUMNS: &str = "id, slug, name, currency, workflow, order_prefix";

fn store_row(row: &Row<'_>) -> rusqlite::Result<StoreRecord> {
    Ok(StoreRecord {
        id: StoreId::new(row.get(0)?),
        slug: row.get(1)?,
        name: row.get(2)?,
        currency: row.get(3)?,
        workflow: row.get(4)?,
        order_prefix: row.get(5)?,
    })
}

pub fn create_store(conn: &Connection, new: &NewStore) -> Result<StoreRecord, StoreError> {
    conn.prepare_cached(
        "INSERT INTO stores (slug, name, currency, workflow, order_prefix, created_at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
    )?
    .execute(params![
        new.slug,
        new.name,
        new.currency,
        new.workflow,
        new.order_prefix,
        micros(OffsetDateTime::now_utc())
    ])
    .map_err(unique("a store with this slug"))?;
    Ok(StoreRecord {
        id: StoreId::new(conn.last_insert_rowid()),
        slug: new.slug.clone(),
        name: new.name.clone(),
        currency: new.currency.clone(),
        workflow: new.workflow.clone(),
        order_prefix: new.order_prefix.clone(),
    })
}

pub fn stores(conn: &Connection) -> Result<Vec<StoreRecord>, StoreError> {
    let mut statement = conn.prepare_cached(&format!(
        "SELECT {STORE_COLUMNS} FROM stores ORDER BY name, id"
    ))?;
    let rows = statement.query_map([], store_row)?;
    Ok(rows.collect::<Result<_, _>>()?)
}

pub fn store_by_slug(conn: &Connection, slug: &str) -> Result<Option<StoreRecord>, StoreError> {
    Ok(conn
        .prepare_cached(&format!(
            "SELECT {STORE_COLUMNS} FROM stores WHERE slug = ?1"
        ))?
        .query_row([slug], store_row)
        .optional()?)
}

pub fn store(conn: &Connection, id: StoreId) -> Result<Option<StoreRecord>, StoreError> {
    Ok(conn
        .prepare_cached(&format!("SELECT {STORE_COLUMNS} FROM stores WHERE id = ?1"))?
        .query_row([id.get()], store_row)
        .optional()?)
}

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
    // A new member had no streams to end; a changed role ends those the old
    // one opened.
    if before.is_some_and(|before| before != role.as_str()) {
        append_access(
            tx,
            AccessChange::StaffChanged {
                user_id: user,
                store_id: store,
                role: Some(role),
            },
        )?;
    }
    Ok(())
}

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
        append_access(
            tx,
            AccessChange::StaffChanged {
                user_id: user,
                store_id: store,
                role: None,
            },
        )?;
    }
    Ok(removed > 0)
}

pub fn staff(conn: &Connection, store: StoreId) -> Result<Vec<StaffMember>, StoreError> {
    let mut statement = conn.prepare_cached(
        "SELECT u.id, u.email, u.name, u.is_admin, m.role FROM memberships m
         JOIN users u ON u.id = m.user_id WHERE m.store_id = ?1 ORDER BY u.name, u.id",
    )?;
    let rows = statement.query_map([store.get()], |row| {
        Ok((user_row(row)?, row.get::<_, String>(4)?))
    })?;
    let mut result = Vec::new();
    for row in rows {
        let (user, role) = row?;
        let role = role.parse().map_err(|_| corrupt("role", &role))?;
        result.push(StaffMember { user, role });
    }
    Ok(result)
}

const PRODUCT_COLUMNS: &str = "id, store_id, name, description, price_minor, station, available";

fn product_row(row: &Row<'_>) -> rusqlite::Result<Product> {
    Ok(Product {
        id: ProductId::new(row.get(0)?),
        store_id: StoreId::new(row.get(1)?),
        name: row.get(2)?,
        description: row.get(3)?,
        price_minor: row.get(4)?,
        station: row.get(5)?,
        available: row.get(6)?,
    })
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
    Ok(Product {
        id: ProductId::new(conn.last_insert_rowid()),
        store_id: store,
        name: new.name.clone(),
        description: new.description.clone(),
        price_minor: new.price_minor,
        station: new.station.clone(),
        available: new.available,
    })
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
    Ok(conn
        .prepare_cached(&format!(
            "SELECT {PRODUCT_COLUMNS} FROM products WHERE id = ?1 AND store_id = ?2"
        ))?
        .query_row([product.get(), store.get()], product_row)
        .optional()?)
}

pub fn products(conn: &Connection, store: StoreId) -> Result<Vec<Product>, StoreError> {
    let mut statement = conn.prepare_cached(&format!(
        "SELECT {PRODUCT_COLUMNS} FROM products WHERE store_id = ?1 ORDER BY id"
    ))?;
    let rows = statement.query_map([store.get()], product_row)?;
    Ok(rows.collect::<Result<_, _>>()?)
}

// ---- orders ----

/// The order query, with `$extra` columns after the order's own.
macro_rules! order_select {
    ($extra:literal) => {
        concat!(
            "SELECT o.id, o.number, o.store_id, s.slug, o.customer_id, u.name, o.status,
        o.version, o.total_minor, o.currency, o.fulfilment, o.address, o.notes, o.tracking_token,
        o.created_at, o.updated_at",
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

struct OrderRow {
    order: Order,
    fulfilment: String,
    created_at: i64,
    updated_at: i64,
}

fn order_row(row: &Row<'_>) -> rusqlite::Result<OrderRow> {
    Ok(OrderRow {
        order: Order {
            id: OrderId::new(row.get(0)?),
            number: row.get(1)?,
            store_id: StoreId::new(row.get(2)?),
            store_slug: row.get(3)?,
            customer_id: UserId::new(row.get(4)?),
            customer_name: row.get(5)?,
            status: row.get(6)?,
            version: row.get(7)?,
            items: Vec::new(),
            total_minor: row.get(8)?,
            currency: row.get(9)?,
            fulfilment: Fulfilment {
                kind: FulfilmentKind::Pickup,
                address: row.get(11)?,
            },
            notes: row.get(12)?,
            tracking_token: row.get(13)?,
            created_at: OffsetDateTime::UNIX_EPOCH,
            updated_at: OffsetDateTime::UNIX_EPOCH,
        },
        fulfilment: row.get(10)?,
        created_at: row.get(14)?,
        updated_at: row.get(15)?,
    })
}

fn finish_order(row: OrderRow) -> Result<Order, StoreError> {
    let mut order = row.order;
    order.fulfilment.kind = FulfilmentKind::parse(&row.fulfilment)
        .ok_or_else(|| corrupt("fulfilment", &row.fulfilment))?;
    order.created_at = from_micros(row.created_at)?;
    order.updated_at = from_micros(row.updated_at)?;
    Ok(order)
}

fn item_row(row: &Row<'_>) -> rusqlite::Result<(OrderId, OrderItem, String)> {
    Ok((
        OrderId::new(row.get(0)?),
        OrderItem {
            id: ItemId::new(row.get(1)?),
            product: ProductId::new(row.get(2)?),
            name: row.get(3)?,
            quantity: row.get(4)?,
            unit_price_minor: row.get(5)?,
            notes: row.get(6)?,
            station: row.get(7)?,
            status: ItemStatus::Queued,
        },
        row.get(8)?,
    ))
}

const ITEM_SELECT: &str =
    "SELECT order_id, id, product_id, name, quantity, unit_price_minor, notes,
    station, status FROM order_items";

/// Loads the items of `orders` (in place), in their original line order.
fn attach_items(conn: &Connection, orders: &mut [Order]) -> Result<(), StoreError> {
    if orders.is_empty() {
        return Ok(());
    }
    // One prepared statement for any number of orders: the ids travel as
    // one JSON array parameter.
    let ids: Vec<String> = orders.iter().map(|o| o.id.to_string()).collect();
    let ids = format!("[{}]", ids.join(","));
    let mut statement = conn.prepare_cached(&format!(
        "{ITEM_SELECT} WHERE order_id IN (SELECT value FROM json_each(?1))
         ORDER BY order_id, position"
    ))?;
    let rows = statement.query_map([ids], item_row)?;
    for row in rows {
        let (order_id, mut item, status) = row?;
        item.status = ItemStatus::parse(&status).ok_or_else(|| corrupt("item status", &status))?;
        if let Some(order) = orders.iter_mut().find(|o| o.id == order_id) {
            order.items.push(item);
        }
    }
    Ok(())
}

/// The store of an [`ORDER_IN_STORE_SELECT`] row.
fn order_store_row(row: &Row<'_>) -> rusqlite::Result<StoreRecord> {
    Ok(StoreRecord {
        id: StoreId::new(row.get(2)?),
        slug: row.get(3)?,
        name: row.get(16)?,
        currency: row.get(17)?,
        workflow: row.get(18)?,
        order_prefix: row.get(19)?,
    })
}

/// One order (`select` ends with the order's columns, then what `extra`
/// reads from the same row), with its items.
fn load_order<T>(
    conn: &Connection,
    select: &str,
    key: &OrderKey,
    extra: impl FnOnce(&Row<'_>) -> rusqlite::Result<T>,
) -> Result<Option<(Order, T)>, StoreError> {
    let raw_id;
    let (condition, value): (&str, &dyn rusqlite::ToSql) = match key {
        OrderKey::Id(id) => {
            raw_id = id.get();
            ("o.id = ?1", &raw_id)
        }
        OrderKey::TrackingToken(token) => ("o.tracking_token = ?1", token),
    };
    let row = conn
        .prepare_cached(&format!("{select} WHERE {condition}"))?
        .query_row([value], |row| Ok((order_row(row)?, extra(row)?)))
        .optional()?;
    let Some((row, extra)) = row else {
        return Ok(None);
    };
    let mut orders = [finish_order(row)?];
    attach_items(conn, &mut orders)?;
    let [order] = orders;
    Ok(Some((order, extra)))
}

pub fn order(conn: &Connection, id: OrderId) -> Result<Option<Order>, StoreError> {
    Ok(load_order(conn, ORDER_SELECT, &OrderKey::Id(id), |_| Ok(()))?.map(|(order, ())| order))
}

pub fn order_in_store(
    conn: &Connection,
    key: &OrderKey,
) -> Result<Option<OrderInStore>, StoreError> {
    Ok(
        load_order(conn, ORDER_IN_STORE_SELECT, key, order_store_row)?
            .map(|(order, store)| OrderInStore { order, store }),
    )
}

pub fn orders(conn: &Connection, query: &OrderQuery) -> Result<OrderPage, StoreError> {
    let mut sql = format!("{ORDER_SELECT} WHERE ");
    let mut values: Vec<Box<dyn rusqlite::ToSql>> = Vec::new();
    match query.scope {
        OrderScope::Customer(customer) => {
            sql.push_str("o.customer_id = ?");
            values.push(Box::new(customer.get()));
        }
        OrderScope::Store(store) => {
            sql.push_str("o.store_id = ?");
            values.push(Box::new(store.get()));
        }
    }
    if !query.statuses.is_empty() {
        // One prepared statement for any number of statuses: they travel as
        // one JSON array parameter.
        sql.push_str(" AND o.status IN (SELECT value FROM json_each(?))");
        let statuses = serde_json::to_string(&query.statuses)
            .map_err(|e| StoreError::Database(e.to_string()))?;
        values.push(Box::new(statuses));
    }
    if let Some(fulfilment) = query.fulfilment {
        sql.push_str(" AND o.fulfilment = ?");
        values.push(Box::new(fulfilment.as_str()));
    }
    if let Some(search) = query
        .search
        .as_deref()
        .map(str::trim)
        .filter(|s| !s.is_empty())
    {
        sql.push_str(" AND (o.number LIKE ? ESCAPE '\\' OR u.name LIKE ? ESCAPE '\\')");
        let pattern = format!("%{}%", escape_like(search));
        values.push(Box::new(pattern.clone()));
        values.push(Box::new(pattern));
    }
    if let Some(before) = query.before {
        sql.push_str(" AND o.id < ?");
        values.push(Box::new(before.get()));
    }
    sql.push_str(if query.oldest_first {
        " ORDER BY o.id ASC LIMIT ?"
    } else {
        " ORDER BY o.id DESC LIMIT ?"
    });
    // One extra row tells whether another page follows.
    values.push(Box::new(i64::from(query.limit) + 1));

    let mut statement = conn.prepare_cached(&sql)?;
    let rows = statement.query_map(rusqlite::params_from_iter(values.iter()), order_row)?;
    let mut orders = Vec::new();
    for row in rows {
        orders.push(finish_order(row?)?);
    }
    let next_before = if orders.len() > query.limit as usize {
        orders.truncate(query.limit as usize);
        orders.last().map(|o| o.id).filter(|_| !query.oldest_first)
    } else {
        None
    };
    attach_items(conn, &mut orders)?;
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

pub fn status_counts(
    conn: &Connection,
    store: StoreId,
    fulfilment: Option<FulfilmentKind>,
) -> Result<Vec<(String, i64)>, StoreError> {
    let mut statement = conn.prepare_cached(
        "SELECT status, COUNT(*) FROM orders WHERE store_id = ?1 AND (?2 IS NULL OR fulfilment = ?2)
         GROUP BY status ORDER BY status",
    )?;
    let rows = statement.query_map(
        params![store.get(), fulfilment.map(FulfilmentKind::as_str)],
        |row| Ok((row.get(0)?, row.get(1)?)),
    )?;
    Ok(rows.collect::<Result<_, _>>()?)
}

pub fn history(conn: &Connection, order: OrderId) -> Result<Vec<HistoryEntry>, StoreError> {
    let mut statement = conn.prepare_cached(
        "SELECT from_status, to_status, actor_id, actor_role, note, at FROM status_history
         WHERE order_id = ?1 ORDER BY id",
    )?;
    let rows = statement.query_map([order.get()], |row| {
        Ok((
            row.get::<_, Option<String>>(0)?,
            row.get::<_, String>(1)?,
            row.get::<_, i64>(2)?,
            row.get::<_, String>(3)?,
            row.get::<_, Option<String>>(4)?,
            row.get::<_, i64>(5)?,
        ))
    })?;
    let mut entries = Vec::new();
    for row in rows {
        let (from, to, actor_id, role, note, at) = row?;
        entries.push(HistoryEntry {
            from,
            to,
            actor: Actor {
                id: UserId::new(actor_id),
                role: role.parse().map_err(|_| corrupt("role", &role))?,
            },
            note,
            at: from_micros(at)?,
        });
    }
    Ok(entries)
}

fn append_history(
    conn: &Connection,
    order: OrderId,
    entry: &HistoryEntry,
) -> Result<(), StoreError> {
    conn.prepare_cached(
        "INSERT INTO status_history (order_id, from_status, to_status, actor_id, actor_role, note, at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
    )?
    .execute(params![
        order.get(),
        entry.from,
        entry.to,
        entry.actor.id.get(),
        entry.actor.role.as_str(),
        entry.note,
        micros(entry.at)
    ])?;
    Ok(())
}

fn append_event(tx: &mut WriteTx<'_>, event: NewEvent) -> Result<(), StoreError> {
    let conn = tx.conn();
    let store_seq: i64 = conn
        .prepare_cached(
            "UPDATE stores SET last_event_seq = last_event_seq + 1 WHERE id = ?1 RETURNING last_event_seq",
        )?
        .query_row([event.store_id.get()], |row| row.get(0))?;
    let payload = serde_json::to_string(&event).map_err(|e| StoreError::Database(e.to_string()))?;
    conn.prepare_cached(
        "INSERT INTO events (store_id, store_seq, order_id, customer_id, kind, order_version, payload, created_at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
    )?
    .execute(params![
        event.store_id.get(),
        store_seq,
        event.order_id.get(),
        event.customer_id.get(),
        event.kind.as_str(),
        event.order_version,
        payload,
        micros(event.at)
    ])?;
    let id = conn.last_insert_rowid();
    tx.published(LogEntry::Order(StoredEvent {
        id,
        store_seq,
        event,
    }));
    Ok(())
}

/// Logs an access change in the event log, in the transaction making it.
fn append_access(tx: &mut WriteTx<'_>, change: AccessChange) -> Result<(), StoreError> {
    let payload =
        serde_json::to_string(&change).map_err(|e| StoreError::Database(e.to_string()))?;
    let conn = tx.conn();
    conn.prepare_cached("INSERT INTO events (kind, payload, created_at) VALUES (?1, ?2, ?3)")?
        .execute(params![
            AccessChange::KIND,
            payload,
            micros(OffsetDateTime::now_utc())
        ])?;
    let id = conn.last_insert_rowid();
    tx.published(LogEntry::Access(AccessEvent { id, change }));
    Ok(())
}

pub fn place_order(tx: &mut WriteTx<'_>, new: NewOrder) -> Result<PlacedOrder, StoreError> {
    let conn = tx.conn();
    if let Some((key, hash)) = &new.idempotency {
        let earlier: Option<(String, i64)> = conn
            .prepare_cached(
                "SELECT request_hash, order_id FROM idempotency_keys WHERE customer_id = ?1 AND key = ?2",
            )?
            .query_row(params![new.customer_id.get(), key], |row| Ok((row.get(0)?, row.get(1)?)))
            .optional()?;
        if let Some((earlier_hash, order_id)) = earlier {
            if &earlier_hash != hash {
                return Err(StoreError::IdempotencyMismatch);
            }
            let order =
                order(conn, OrderId::new(order_id))?.ok_or(StoreError::NotFound("order"))?;
            return Ok(PlacedOrder {
                order,
                created: false,
            });
        }
    }

    let (sequence, prefix): (i64, String) = conn
        .prepare_cached(
            "UPDATE stores SET last_order_seq = last_order_seq + 1 WHERE id = ?1
             RETURNING last_order_seq, order_prefix",
        )?
        .query_row([new.store_id.get()], |row| Ok((row.get(0)?, row.get(1)?)))
        .optional()?
        .ok_or(StoreError::NotFound("store"))?;
    let number = order_number(&prefix, sequence);
    let at = micros(new.at);
    conn.prepare_cached(
        "INSERT INTO orders (store_id, number, customer_id, status, version, total_minor, currency,
            fulfilment, address, notes, tracking_token, created_at, updated_at)
         VALUES (?1, ?2, ?3, ?4, 1, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?11)",
    )?
    .execute(params![
        new.store_id.get(),
        number,
        new.customer_id.get(),
        new.status,
        new.total_minor,
        new.currency,
        new.fulfilment.kind.as_str(),
        new.fulfilment.address,
        new.notes,
        new.tracking_token,
        at
    ])
    .map_err(unique("an order with this number or tracking token"))?;
    let order_id = OrderId::new(conn.last_insert_rowid());
    {
        let mut insert_item = conn.prepare_cached(
            "INSERT INTO order_items (order_id, position, product_id, name, quantity, unit_price_minor,
                notes, station, status)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, 'queued')",
        )?;
        for (position, line) in new.lines.iter().enumerate() {
            insert_item.execute(params![
                order_id.get(),
                position as i64,
                line.product.get(),
                line.name,
                line.quantity,
                line.unit_price_minor,
                line.notes,
                line.station
            ])?;
        }
    }
    if let Some((key, hash)) = &new.idempotency {
        conn.prepare_cached(
            "INSERT INTO idempotency_keys (customer_id, key, request_hash, order_id, created_at)
             VALUES (?1, ?2, ?3, ?4, ?5)",
        )?
        .execute(params![
            new.customer_id.get(),
            key,
            hash,
            order_id.get(),
            at
        ])?;
    }
    let order = order(conn, order_id)?.ok_or(StoreError::NotFound("order"))?;
    let (history, event) = order_created(&order, new.summary, new.placed_by);
    append_history(conn, order_id, &history)?;
    append_event(tx, event)?;
    Ok(PlacedOrder {
        order,
        created: true,
    })
}

/// Bumps the order's version if it is still `expected`; otherwise reports
/// the current version.
fn bump_version(
    conn: &Connection,
    order: OrderId,
    expected: i64,
    status: Option<&str>,
    at: OffsetDateTime,
) -> Result<(), StoreError> {
    let changed = conn
        .prepare_cached(
            "UPDATE orders SET version = version + 1, status = COALESCE(?3, status), updated_at = ?4
             WHERE id = ?1 AND version = ?2",
        )?
        .execute(params![order.get(), expected, status, micros(at)])?;
    if changed == 1 {
        return Ok(());
    }
    let current: Option<i64> = conn
        .prepare_cached("SELECT version FROM orders WHERE id = ?1")?
        .query_row([order.get()], |row| row.get(0))
        .optional()?;
    match current {
        Some(current) => Err(StoreError::VersionConflict { current }),
        None => Err(StoreError::NotFound("order")),
    }
}

fn write_status_change(tx: &mut WriteTx<'_>, change: StatusChange) -> Result<(), StoreError> {
    bump_version(
        tx.conn(),
        change.order_id,
        change.expected_version,
        Some(&change.to),
        change.history.at,
    )?;
    append_history(tx.conn(), change.order_id, &change.history)?;
    append_event(tx, change.event)
}

pub fn apply_status_change(
    tx: &mut WriteTx<'_>,
    change: StatusChange,
) -> Result<Order, StoreError> {
    let order_id = change.order_id;
    write_status_change(tx, change)?;
    order(tx.conn(), order_id)?.ok_or(StoreError::NotFound("order"))
}

/// Writes one item's status change: version check, the item, its event.
fn write_item_change(
    tx: &mut WriteTx<'_>,
    order_id: OrderId,
    expected_version: i64,
    item: &ItemChange,
    event: NewEvent,
) -> Result<(), StoreError> {
    bump_version(tx.conn(), order_id, expected_version, None, event.at)?;
    let updated = tx
        .conn()
        .prepare_cached("UPDATE order_items SET status = ?1 WHERE id = ?2 AND order_id = ?3")?
        .execute(params![item.to.as_str(), item.id.get(), order_id.get()])?;
    if updated != 1 {
        return Err(StoreError::NotFound("order item"));
    }
    append_event(tx, event)
}

pub fn apply_item_change(
    tx: &mut WriteTx<'_>,
    change: ItemStatusChange,
) -> Result<Order, StoreError> {
    let order_id = change.order_id;
    write_item_change(
        tx,
        order_id,
        change.expected_version,
        &change.item,
        change.event,
    )?;
    if let Some(then) = change.then {
        write_status_change(tx, then)?;
    }
    order(tx.conn(), order_id)?.ok_or(StoreError::NotFound("order"))
}

/// Writes every step of a plan in the request's savepoint: a failing step
/// fails the request, and the writer rolls all of its steps back.
pub fn apply_plan(tx: &mut WriteTx<'_>, plan: OrderPlan) -> Result<Order, StoreError> {
    let order_id = plan.order_id;
    let final_version = plan.final_version();
    for step in plan.steps {
        match step {
            PlanStep::Item(step) => {
                write_item_change(tx, order_id, step.expected_version, &step.item, step.event)?
            }
            PlanStep::Status(change) => write_status_change(tx, change)?,
        }
    }
    let order = order(tx.conn(), order_id)?.ok_or(StoreError::NotFound("order"))?;
    if order.version != final_version {
        // Only an empty plan gets here with another version: it changes
        // nothing, but still answers for the version it was decided on.
        return Err(StoreError::VersionConflict {
            current: order.version,
        });
    }
    Ok(order)
}

// ---- events ----

pub fn events_after(
    conn: &Connection,
    filter: &EventFilter,
    after: i64,
    limit: u32,
) -> Result<Vec<StoredEvent>, StoreError> {
    let (column, value) = match filter {
        EventFilter::Order(id) => ("order_id", id.get()),
        EventFilter::Customer(id) => ("customer_id", id.get()),
        EventFilter::Store(id) => ("store_id", id.get()),
    };
    let mut statement = conn.prepare_cached(&format!(
        "SELECT id, store_seq, payload FROM events WHERE {column} = ?1 AND id > ?2 ORDER BY id LIMIT ?3"
    ))?;
    let rows = statement.query_map(params![value, after, limit], event_row)?;
    stored_events(rows)
}

pub fn events_since(
    conn: &Connection,
    after: i64,
    limit: u32,
) -> Result<Vec<LogEntry>, StoreError> {
    let mut statement = conn.prepare_cached(
        "SELECT id, store_seq, kind, payload FROM events WHERE id > ?1 ORDER BY id LIMIT ?2",
    )?;
    let rows = statement.query_map(params![after, limit], |row| {
        Ok((
            row.get::<_, i64>(0)?,
            row.get::<_, Option<i64>>(1)?,
            row.get::<_, String>(2)?,
            row.get::<_, String>(3)?,
        ))
    })?;
    let mut entries = Vec::new();
    for row in rows {
        let (id, store_seq, kind, payload) = row?;
        entries.push(LogEntry::from_row(id, store_seq, &kind, &payload)?);
    }
    Ok(entries)
}

fn event_row(row: &Row<'_>) -> rusqlite::Result<(i64, i64, String)> {
    Ok((row.get(0)?, row.get(1)?, row.get(2)?))
}

fn stored_events(
    rows: impl Iterator<Item = rusqlite::Result<(i64, i64, String)>>,
) -> Result<Vec<StoredEvent>, StoreError> {
    let mut events = Vec::new();
    for row in rows {
        let (id, store_seq, payload) = row?;
        let event: NewEvent =
            serde_json::from_str(&payload).map_err(|_| corrupt("event", &payload))?;
        events.push(StoredEvent {
            id,
            store_seq,
            event,
        });
    }
    Ok(events)
}

pub fn last_event_position(conn: &Connection) -> Result<i64, StoreError> {
    Ok(conn
        .prepare_cached("SELECT COALESCE(MAX(id), 0) FROM events")?
        .query_row([], |row| row.get(0))?)
}
