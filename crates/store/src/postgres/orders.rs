//! Orders: their items and history, placing them and changing them.
//!
//! Every change of an existing order — a status change, an item status
//! change with the status change it may bring about, each step of a plan —
//! is written by one routine, [`write_changes`]: a version-checked update of
//! any number of distinct orders (and their changed items) in one
//! statement, then their history in one more. The writer hands it the
//! changes of a whole batch at once; a single request is the same call with
//! one change.

use std::collections::{BTreeMap, HashMap, HashSet};

use ordertrack_domain::eta::WINDOW_SAMPLES;
use ordertrack_domain::{
    AssignmentStep, FulfilmentKind, HistoryEntry, ItemChange, ItemId, ItemStatusChange, KeptDurations,
    NewEvent, Order, OrderId, OrderLine, OrderPlan, Payment, PlanStep, StatusChange, StatusKey,
    StoreId, UserId, order_created, order_number,
};
use sqlx::postgres::{PgConnection, PgRow};
use sqlx::{Connection, Postgres, QueryBuilder, Row};

use super::rows::{Fail, Log, Result, listed, unique};
use crate::codec::{self, history_columns, micros, order_columns, order_from, order_store_columns};
use crate::{
    FollowedDurations, NewOrder, OrderInStore, OrderKey, OrderPage, OrderQuery, OrderScope, PlacedOrder, QueuedOrders,
    StoreError,
};

/// An order with its items (as JSON objects, in line order): one statement,
/// so the items always belong to the version of the order read with them;
/// `$extra` columns follow.
macro_rules! order_select {
    ($($extra:expr)?) => {
        concat!(
            "SELECT ",
            order_columns!(),
            ",
        (SELECT COALESCE(json_agg(json_build_object('id', i.id, 'product_id', i.product_id,
                    'name', i.name, 'quantity', i.quantity, 'unit_price_minor', i.unit_price_minor,
                    'notes', i.notes, 'station', i.station, 'status', i.status)
                  ORDER BY i.position), '[]')::text
         FROM order_items i WHERE i.order_id = o.id) AS items"
            $(, $extra)?,
            order_from!()
        )
    };
}

const ORDER_SELECT: &str = order_select!();
/// An order with the rest of its store's row.
const ORDER_IN_STORE_SELECT: &str = order_select!(order_store_columns!());

fn order_row(row: &PgRow) -> Result<Order> {
    let items = listed(row, "items", "order items", codec::item)?;
    Ok(codec::order(row, items)?)
}

/// The row of one order, read with `select`.
async fn order_where(
    conn: &mut PgConnection,
    select: &'static str,
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

/// An order that must exist (just written).
async fn written_order(conn: &mut PgConnection, id: OrderId) -> Result<Order> {
    order(conn, id)
        .await?
        .ok_or_else(|| StoreError::NotFound("order").into())
}

pub async fn order_in_store(
    conn: &mut PgConnection,
    key: &OrderKey,
) -> Result<Option<OrderInStore>> {
    order_where(conn, ORDER_IN_STORE_SELECT, key)
        .await?
        .map(|row| order_in_store_row(&row))
        .transpose()
}

/// An order read with [`ORDER_IN_STORE_SELECT`].
fn order_in_store_row(row: &PgRow) -> Result<OrderInStore> {
    Ok(OrderInStore {
        order: order_row(row)?,
        store: codec::order_store(row)?,
        marks: codec::marks(row)?,
    })
}

/// Several orders by id, each with its store and the cache marks, in one
/// statement (see [`super::gathered`]); those that do not exist are
/// left out.
pub async fn orders_in_store(
    conn: &mut PgConnection,
    ids: Vec<OrderId>,
) -> Result<HashMap<OrderId, OrderInStore>> {
    let ids: Vec<i64> = ids.iter().map(|id| id.get()).collect();
    let mut query = QueryBuilder::<Postgres>::new(ORDER_IN_STORE_SELECT);
    query.push(" WHERE o.id = ANY(").push_bind(ids).push(")");
    let rows = query.build().fetch_all(&mut *conn).await?;
    rows.iter()
        .map(|row| order_in_store_row(row).map(|found| (found.order.id, found)))
        .collect()
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
            .push_bind(
                request
                    .statuses
                    .iter()
                    .map(|status| status.to_string())
                    .collect::<Vec<_>>(),
            )
            .push(")");
    }
    if let Some(fulfilment) = request.fulfilment {
        query
            .push(" AND o.fulfilment = ")
            .push_bind(fulfilment.as_str());
    }
    if let Some(scope) = &request.driver {
        query
            .push(" AND (o.driver_id = ")
            .push_bind(scope.driver.get())
            .push(" OR (o.driver_id IS NULL AND o.status = ANY(")
            .push_bind(
                scope
                    .or_unassigned_in
                    .iter()
                    .map(|status| status.to_string())
                    .collect::<Vec<_>>(),
            )
            .push(")))");
    }
    if let Some(search) = request
        .search
        .as_deref()
        .map(str::trim)
        .filter(|s| !s.is_empty())
    {
        // ILIKE: case-insensitive like SQLite's LIKE; `\` escapes the wildcards.
        let pattern = codec::contains_pattern(search);
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
    let next_before = codec::next_page(request, &mut orders);
    Ok(OrderPage {
        orders,
        next_before,
    })
}

pub async fn status_counts(
    conn: &mut PgConnection,
    store: StoreId,
    fulfilment: Option<FulfilmentKind>,
) -> Result<Vec<(String, i64)>> {
    sqlx::query(
        "SELECT status, COUNT(*) AS n FROM orders WHERE store_id = $1
         AND ($2::text IS NULL OR fulfilment = $2) GROUP BY status ORDER BY status",
    )
    .bind(store.get())
    .bind(fulfilment.map(FulfilmentKind::as_str))
    .fetch_all(&mut *conn)
    .await?
    .iter()
    .map(|row| Ok((row.try_get("status")?, row.try_get("n")?)))
    .collect()
}

pub async fn history(conn: &mut PgConnection, order: OrderId) -> Result<Vec<HistoryEntry>> {
    let rows = sqlx::query(concat!(
        "SELECT ",
        history_columns!(),
        " FROM status_history WHERE order_id = $1 ORDER BY id"
    ))
    .bind(order.get())
    .fetch_all(&mut *conn)
    .await?;
    Ok(rows
        .iter()
        .map(codec::history_entry)
        .collect::<std::result::Result<_, _>>()?)
}

/// Writes history entries, each of its order.
async fn append_history(
    conn: &mut PgConnection,
    entries: &[(OrderId, &HistoryEntry)],
) -> Result<()> {
    if entries.is_empty() {
        return Ok(());
    }
    let column = |f: fn(&HistoryEntry) -> Option<String>| -> Vec<Option<String>> {
        entries.iter().map(|(_, entry)| f(entry)).collect()
    };
    sqlx::query(
        "INSERT INTO status_history (order_id, from_status, to_status, actor_id, actor_role,
            note, at, correction, payment_status, payment_amount_minor, assignment,
            assigned_driver_id)
         SELECT * FROM UNNEST($1::int8[], $2::text[], $3::text[], $4::int8[], $5::text[],
                              $6::text[], $7::int8[], $8::bool[], $9::text[], $10::int8[],
                              $11::text[], $12::int8[])",
    )
    .bind(
        entries
            .iter()
            .map(|(order, _)| order.get())
            .collect::<Vec<_>>(),
    )
    .bind(column(|e| e.from.clone().map(String::from)))
    .bind(column(|e| Some(e.to.to_string())))
    .bind(
        entries
            .iter()
            .map(|(_, e)| e.actor.id.get())
            .collect::<Vec<_>>(),
    )
    .bind(column(|e| Some(e.actor.role.as_str().to_owned())))
    .bind(column(|e| e.note.clone()))
    .bind(
        entries
            .iter()
            .map(|(_, e)| micros(e.at))
            .collect::<Vec<_>>(),
    )
    .bind(
        entries
            .iter()
            .map(|(_, e)| e.correction)
            .collect::<Vec<_>>(),
    )
    .bind(column(|e| e.payment.map(|p| p.status.as_str().to_owned())))
    .bind(
        entries
            .iter()
            .map(|(_, e)| e.payment.map(|p| p.amount_minor))
            .collect::<Vec<_>>(),
    )
    .bind(column(|e| e.assignment.map(|step| step.as_str().to_owned())))
    .bind(
        entries
            .iter()
            .map(|(_, e)| e.assignment.and_then(|a| a.driver).map(|d| d.get()))
            .collect::<Vec<_>>(),
    )
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
    let earlier_hash: String = earlier.try_get("request_hash")?;
    if earlier_hash != hash {
        return Err(StoreError::IdempotencyMismatch.into());
    }
    Ok(Some(PlacedOrder {
        order: written_order(conn, OrderId::new(earlier.try_get("order_id")?)).await?,
        created: false,
    }))
}

pub async fn place_order(
    conn: &mut PgConnection,
    new: &NewOrder,
    log: &mut Log,
) -> Result<PlacedOrder> {
    let Some((key, hash)) = &new.idempotency else {
        return insert_order(conn, new, log).await;
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
    let mut created = Log::default();
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
        log.events.append(&mut created.events);
        return Ok(placed);
    }
    attempt.rollback().await?;
    earlier_order(conn, new.customer_id, key, hash)
        .await?
        .ok_or_else(|| StoreError::Database("an idempotency key vanished".into()).into())
}

/// Places several new orders together (a batch's), for
/// [`insert_orders`]'s fixed number of statements plus, when some carry an
/// idempotency key, one read of the keys and one write. An order whose key
/// is already known, or repeats an earlier one of the same call, is left
/// out (`None`): the caller places it alone, as a replay or a mismatch.
/// An error (a key another instance placed meanwhile included) means
/// nothing may be kept: the caller rolls back and places each alone.
pub async fn place_orders(
    conn: &mut PgConnection,
    news: &[&NewOrder],
    log: &mut Log,
) -> Result<Vec<Option<std::result::Result<PlacedOrder, StoreError>>>> {
    let keyed: Vec<(i64, &str)> = news
        .iter()
        .filter_map(|new| {
            new.idempotency
                .as_ref()
                .map(|(key, _)| (new.customer_id.get(), key.as_str()))
        })
        .collect();
    let mut known: HashSet<(i64, String)> = HashSet::new();
    if !keyed.is_empty() {
        let (customers, keys): (Vec<i64>, Vec<&str>) = keyed.iter().copied().unzip();
        for row in sqlx::query(
            "SELECT k.customer_id, k.key FROM idempotency_keys k
             JOIN UNNEST($1::int8[], $2::text[]) AS q(customer_id, key)
               ON k.customer_id = q.customer_id AND k.key = q.key",
        )
        .bind(&customers)
        .bind(&keys)
        .fetch_all(&mut *conn)
        .await?
        {
            known.insert((row.try_get("customer_id")?, row.try_get("key")?));
        }
    }
    let mut placing: Vec<usize> = Vec::with_capacity(news.len());
    for (n, new) in news.iter().enumerate() {
        if let Some((key, _)) = &new.idempotency
            && !known.insert((new.customer_id.get(), key.clone()))
        {
            continue;
        }
        placing.push(n);
    }
    let chosen: Vec<&NewOrder> = placing.iter().map(|&n| news[n]).collect();
    let placed = insert_orders(conn, &chosen, log).await?;

    let mut keys = KeyColumns::default();
    for (new, outcome) in chosen.iter().zip(&placed) {
        if let (Some((key, hash)), Ok(placed)) = (&new.idempotency, outcome) {
            keys.customers.push(new.customer_id.get());
            keys.keys.push(key);
            keys.hashes.push(hash);
            keys.orders.push(placed.order.id.get());
            keys.created.push(micros(new.at));
        }
    }
    if !keys.customers.is_empty() {
        let inserted = sqlx::query(
            "INSERT INTO idempotency_keys (customer_id, key, request_hash, order_id, created_at)
             SELECT * FROM UNNEST($1::int8[], $2::text[], $3::text[], $4::int8[], $5::int8[])
             ON CONFLICT (customer_id, key) DO NOTHING",
        )
        .bind(&keys.customers)
        .bind(&keys.keys)
        .bind(&keys.hashes)
        .bind(&keys.orders)
        .bind(&keys.created)
        .execute(&mut *conn)
        .await?
        .rows_affected();
        if usize::try_from(inserted).ok() != Some(keys.customers.len()) {
            return Err(StoreError::Database("an idempotency key was placed meanwhile".into()).into());
        }
    }
    let mut outcomes: Vec<Option<_>> = news.iter().map(|_| None).collect();
    for (n, outcome) in placing.into_iter().zip(placed) {
        outcomes[n] = Some(outcome);
    }
    Ok(outcomes)
}

/// Idempotency keys as columns, for one multi-row insert.
#[derive(Default)]
struct KeyColumns<'a> {
    customers: Vec<i64>,
    keys: Vec<&'a str>,
    hashes: Vec<&'a str>,
    orders: Vec<i64>,
    created: Vec<i64>,
}

async fn insert_order(
    conn: &mut PgConnection,
    new: &NewOrder,
    log: &mut Log,
) -> Result<PlacedOrder> {
    let [placed] = <[_; 1]>::try_from(insert_orders(conn, &[new], log).await?)
        .map_err(|_| StoreError::Database("one order, several outcomes".into()))?;
    Ok(placed?)
}

/// Places new orders (the keys of those that have one are the caller's):
/// a fixed number of statements whatever their number — the stores'
/// order counters, the orders, their items, the days' rollups, the orders
/// read back, their history. Each store numbers its orders in the given
/// order. Returns each order's outcome, in order (a refusal: no such
/// store), and logs the events of those placed. An error means nothing may
/// be kept (roll back).
async fn insert_orders(
    conn: &mut PgConnection,
    news: &[&NewOrder],
    log: &mut Log,
) -> Result<Vec<std::result::Result<PlacedOrder, StoreError>>> {
    // Each store's counter moves once, by its number of new orders.
    let mut per_store: BTreeMap<i64, i64> = BTreeMap::new();
    for new in news {
        *per_store.entry(new.store_id.get()).or_default() += 1;
    }
    let mut stores: HashMap<i64, Numbering> = HashMap::with_capacity(per_store.len());
    for row in sqlx::query(
        "UPDATE stores SET last_order_seq = stores.last_order_seq + bump.n
         FROM UNNEST($1::int8[], $2::int8[]) AS bump(id, n)
         WHERE stores.id = bump.id
         RETURNING stores.id, stores.last_order_seq, stores.order_prefix, stores.timezone,
                   stores.slug",
    )
    .bind(per_store.keys().copied().collect::<Vec<_>>())
    .bind(per_store.values().copied().collect::<Vec<_>>())
    .fetch_all(&mut *conn)
    .await?
    {
        let id: i64 = row.try_get("id")?;
        let last: i64 = row.try_get("last_order_seq")?;
        stores.insert(
            id,
            Numbering {
                next: last - per_store[&id] + 1,
                prefix: row.try_get("order_prefix")?,
                timezone: row.try_get("timezone")?,
                slug: row.try_get("slug")?,
            },
        );
    }

    // The orders of known stores, numbered.
    let mut placing: Vec<(usize, String)> = Vec::with_capacity(news.len());
    for (n, new) in news.iter().enumerate() {
        if let Some(store) = stores.get_mut(&new.store_id.get()) {
            placing.push((n, order_number(&store.prefix, store.next)));
            store.next += 1;
        }
    }
    // By tracking token: the new order's id and its customer's name.
    let mut ids: HashMap<String, (i64, String)> = HashMap::with_capacity(placing.len());
    // By order id: its items' ids, in line order.
    let mut item_ids: HashMap<i64, Vec<ItemId>> = HashMap::with_capacity(placing.len());
    if !placing.is_empty() {
        let column = |f: fn(&NewOrder) -> Option<&str>| -> Vec<Option<&str>> {
            placing.iter().map(|&(n, _)| f(news[n])).collect()
        };
        let ints = |f: fn(&NewOrder) -> i64| -> Vec<i64> {
            placing.iter().map(|&(n, _)| f(news[n])).collect()
        };
        for row in sqlx::query(
            "INSERT INTO orders (store_id, number, customer_id, status, version, total_minor,
                currency, fulfilment, address, notes, tracking_token, created_at, updated_at,
                workflow_version, payment_method, status_at)
             SELECT o.store_id, o.number, o.customer_id, o.status, 1, o.total_minor, o.currency,
                    o.fulfilment, o.address, o.notes, o.tracking_token, o.at, o.at,
                    o.workflow_version, o.payment_method, o.at
             FROM UNNEST($1::int8[], $2::text[], $3::int8[], $4::text[], $5::int8[], $6::text[],
                         $7::text[], $8::text[], $9::text[], $10::text[], $11::int8[],
                         $12::int8[], $13::text[])
                 AS o(store_id, number, customer_id, status, total_minor, currency, fulfilment,
                      address, notes, tracking_token, at, workflow_version, payment_method)
             RETURNING id, tracking_token,
                 (SELECT u.name FROM users u WHERE u.id = customer_id) AS customer_name",
        )
        .bind(ints(|o| o.store_id.get()))
        .bind(
            placing
                .iter()
                .map(|(_, number)| number.as_str())
                .collect::<Vec<_>>(),
        )
        .bind(ints(|o| o.customer_id.get()))
        .bind(column(|o| Some(o.status.as_str())))
        .bind(ints(|o| o.total_minor))
        .bind(column(|o| Some(o.currency.code())))
        .bind(column(|o| Some(o.fulfilment.kind.as_str())))
        .bind(column(|o| o.fulfilment.address.as_deref()))
        .bind(column(|o| o.notes.as_deref()))
        .bind(column(|o| Some(o.tracking_token.as_str())))
        .bind(ints(|o| micros(o.at)))
        .bind(ints(|o| o.workflow_version))
        .bind(column(|o| Some(o.payment_method.as_str())))
        .fetch_all(&mut *conn)
        .await
        .map_err(unique("an order with this number or tracking token"))?
        {
            // No such customer fails the insert (a foreign key) first.
            let name: Option<String> = row.try_get("customer_name")?;
            ids.insert(
                row.try_get("tracking_token")?,
                (row.try_get("id")?, name.unwrap_or_default()),
            );
        }
        let id_of = |n: usize| -> Result<i64> {
            ids.get(&news[n].tracking_token)
                .map(|(id, _)| *id)
                .ok_or_else(|| StoreError::Database("an order was not inserted".into()).into())
        };

        let mut items = ItemColumns::default();
        for &(n, _) in &placing {
            items.push(id_of(n)?, &news[n].lines)?;
        }
        let inserted = sqlx::query(
            "INSERT INTO order_items (order_id, position, product_id, name, quantity,
                unit_price_minor, notes, station, status)
             SELECT line.*, 'queued'
             FROM UNNEST($1::int8[], $2::int4[], $3::int8[], $4::text[], $5::int8[], $6::int8[],
                         $7::text[], $8::text[]) AS line
             RETURNING id, order_id, position",
        )
        .bind(&items.orders)
        .bind(&items.positions)
        .bind(&items.products)
        .bind(&items.names)
        .bind(&items.quantities)
        .bind(&items.prices)
        .bind(&items.notes)
        .bind(&items.stations)
        .fetch_all(&mut *conn)
        .await?;
        let mut positioned: Vec<(i64, i32, i64)> = Vec::with_capacity(inserted.len());
        for row in &inserted {
            positioned.push((
                row.try_get("order_id")?,
                row.try_get("position")?,
                row.try_get("id")?,
            ));
        }
        positioned.sort_unstable();
        for (order, _, item) in positioned {
            item_ids.entry(order).or_default().push(ItemId::new(item));
        }

        let placed: Vec<super::rollups::Placed<'_>> = placing
            .iter()
            .map(|&(n, _)| super::rollups::Placed {
                store: news[n].store_id,
                timezone: &stores[&news[n].store_id.get()].timezone,
                at: news[n].at,
                total_minor: news[n].total_minor,
            })
            .collect();
        super::rollups::orders_placed(conn, &placed).await?;
    }

    // Each order as written: the request, and what the store gave it.
    let mut outcomes = Vec::with_capacity(news.len());
    let mut history = Vec::with_capacity(ids.len());
    let mut numbers = placing.into_iter();
    for new in news {
        let Some((id, customer_name)) = ids.remove(&new.tracking_token) else {
            outcomes.push(Err(StoreError::NotFound("store")));
            continue;
        };
        let (Some((_, number)), Some(store)) = (numbers.next(), stores.get(&new.store_id.get()))
        else {
            return Err(StoreError::Database("a placed order lost its number".into()).into());
        };
        let order = new.placed(crate::records::Numbered {
            id: OrderId::new(id),
            number,
            store_slug: &store.slug,
            customer_name,
            item_ids: item_ids.remove(&id).unwrap_or_default(),
        });
        let (entry, event) = order_created(&order, new.summary.clone(), new.placed_by);
        history.push((order.id, entry));
        log.events.push(event);
        outcomes.push(Ok(PlacedOrder {
            order,
            created: true,
        }));
    }
    let history: Vec<(OrderId, &HistoryEntry)> =
        history.iter().map(|(id, entry)| (*id, entry)).collect();
    append_history(conn, &history).await?;
    Ok(outcomes)
}

/// A store placing orders in a batch: the number its next order gets,
/// and what numbering and answering them needs.
struct Numbering {
    next: i64,
    prefix: String,
    timezone: String,
    slug: String,
}

/// Order lines of several orders as columns, for one multi-row insert.
#[derive(Default)]
struct ItemColumns<'a> {
    orders: Vec<i64>,
    positions: Vec<i32>,
    products: Vec<i64>,
    names: Vec<&'a str>,
    quantities: Vec<i64>,
    prices: Vec<i64>,
    notes: Vec<Option<&'a str>>,
    stations: Vec<&'a str>,
}

impl<'a> ItemColumns<'a> {
    /// Adds an order's lines, in their order.
    fn push(&mut self, order: i64, lines: &'a [OrderLine]) -> Result<()> {
        for (position, line) in lines.iter().enumerate() {
            self.orders.push(order);
            self.positions.push(
                i32::try_from(position)
                    .map_err(|_| Fail::from(StoreError::Database("too many order lines".into())))?,
            );
            self.products.push(line.product.get());
            self.names.push(line.name.as_str());
            self.quantities.push(i64::from(line.quantity));
            self.prices.push(line.unit_price_minor);
            self.notes.push(line.notes.as_deref());
            self.stations.push(line.station.as_str());
        }
        Ok(())
    }
}

/// Orders by id (those that exist), each read with its items.
async fn read_orders(conn: &mut PgConnection, ids: Vec<i64>) -> Result<HashMap<OrderId, Order>> {
    let mut orders = HashMap::with_capacity(ids.len());
    if ids.is_empty() {
        return Ok(orders);
    }
    let mut query = QueryBuilder::<Postgres>::new(ORDER_SELECT);
    query.push(" WHERE o.id = ANY(").push_bind(ids).push(")");
    for row in query.build().fetch_all(&mut *conn).await? {
        let order = order_row(&row)?;
        orders.insert(order.id, order);
    }
    Ok(orders)
}

/// One version step of one order: an item status change, a status change,
/// or both at once (an item change and the automatic advance it brings
/// about, which expects the version the item change makes).
#[derive(Clone, Copy)]
pub struct Change<'a> {
    order_id: OrderId,
    expected_version: i64,
    item: Option<(&'a ItemChange, &'a NewEvent)>,
    status: Option<&'a StatusChange>,
    /// The order as the change leaves it, when the request says: the answer
    /// without reading the order back.
    after: Option<&'a Order>,
}

impl<'a> Change<'a> {
    /// A status change.
    pub fn status(change: &'a StatusChange) -> Self {
        Change {
            order_id: change.order_id,
            expected_version: change.expected_version,
            item: None,
            status: Some(change),
            after: change.after.as_deref(),
        }
    }

    /// An item change (and its automatic advance) as steps: one, or two
    /// when the advance does not expect the version the item change makes.
    pub fn item(change: &'a ItemStatusChange) -> Vec<Self> {
        let item = Change {
            order_id: change.order_id,
            expected_version: change.expected_version,
            item: Some((&change.item, &change.event)),
            status: None,
            after: None,
        };
        let after = change.after.as_deref();
        match &change.then {
            None => vec![Change { after, ..item }],
            Some(then)
                if then.order_id == change.order_id
                    && then.expected_version == change.expected_version + 1 =>
            {
                vec![Change {
                    status: Some(then),
                    after,
                    ..item
                }]
            }
            Some(then) => vec![
                item,
                Change {
                    after: None,
                    ..Change::status(then)
                },
            ],
        }
    }

    /// A plan's steps.
    fn plan(plan: &'a OrderPlan) -> Vec<Self> {
        plan.steps
            .iter()
            .map(|step| match step {
                PlanStep::Item(step) => Change {
                    order_id: plan.order_id,
                    expected_version: step.expected_version,
                    item: Some((&step.item, &step.event)),
                    status: None,
                    after: None,
                },
                PlanStep::Status(change) => Change {
                    after: None,
                    ..Change::status(change)
                },
            })
            .collect()
    }

    pub fn order_id(&self) -> OrderId {
        self.order_id
    }

    /// By how much the order's version moves.
    fn bump(&self) -> i64 {
        i64::from(self.item.is_some()) + i64::from(self.status.is_some())
    }

    /// The order's `updated_at` afterwards: the time of its last write.
    fn at(&self) -> i64 {
        match (self.status, self.item) {
            (Some(status), _) => micros(status.history.at),
            (None, Some((_, event))) => micros(event.at),
            (None, None) => 0,
        }
    }

    /// The events it writes, in order.
    fn events(&self) -> impl Iterator<Item = &'a NewEvent> {
        let item = self.item.map(|(_, event)| event);
        item.into_iter()
            .chain(self.status.map(|status| &status.event))
    }
}

/// Writes changes of distinct orders: one version-checked update of the
/// orders and their changed items, one history insert. Returns each
/// change's outcome, in order (a refusal: a newer version, no such order,
/// no such item in it), and logs the events of those applied. An error
/// means nothing may be kept (roll back).
pub async fn write_changes(
    conn: &mut PgConnection,
    changes: &[Change<'_>],
    log: &mut Log,
) -> Result<Vec<std::result::Result<(), StoreError>>> {
    let ids: Vec<i64> = changes.iter().map(|c| c.order_id.get()).collect();
    let expected: Vec<i64> = changes.iter().map(|c| c.expected_version).collect();
    let bumps: Vec<i64> = changes.iter().map(Change::bump).collect();
    let statuses: Vec<Option<&str>> = changes
        .iter()
        .map(|c| c.status.map(|s| s.to.as_str()))
        .collect();
    let times: Vec<i64> = changes.iter().map(Change::at).collect();
    let items: Vec<Option<i64>> = changes
        .iter()
        .map(|c| c.item.map(|(item, _)| item.id.get()))
        .collect();
    let item_statuses: Vec<Option<&str>> = changes
        .iter()
        .map(|c| c.item.map(|(item, _)| item.to.as_str()))
        .collect();
    let payments: Vec<Option<&Payment>> = changes
        .iter()
        .map(|c| c.status.and_then(|s| s.payment.as_ref()))
        .collect();
    let payment_statuses: Vec<Option<&str>> = payments
        .iter()
        .map(|p| p.map(|p| p.status.as_str()))
        .collect();
    let paid_at: Vec<Option<i64>> = payments
        .iter()
        .map(|p| p.and_then(|p| p.paid_at).map(micros))
        .collect();
    let refunded: Vec<Option<i64>> = payments
        .iter()
        .map(|p| p.map(|p| p.refunded_minor))
        .collect();
    let assignments: Vec<Option<&AssignmentStep>> = changes
        .iter()
        .map(|c| c.status.and_then(|s| s.assignment.as_ref()))
        .collect();
    let assigns: Vec<bool> = assignments.iter().map(Option::is_some).collect();
    let drivers: Vec<Option<i64>> = assignments
        .iter()
        .map(|a| a.and_then(|a| a.driver).map(|d| d.get()))
        .collect();
    // The orders are updated only where the version matches and the item
    // (if any) belongs to the order; the items only of the orders updated.
    // A concurrent writer's uncommitted change to one of the orders makes
    // this wait for its commit, then see the new version.
    let rows = sqlx::query(
        "WITH c AS (
             SELECT * FROM UNNEST($1::int8[], $2::int8[], $3::int8[], $4::text[], $5::int8[],
                                  $6::int8[], $7::text[], $8::text[], $9::int8[], $10::int8[],
                                  $11::bool[], $12::int8[])
                 AS c(id, expected, bump, to_status, at, item_id, item_status, payment_status,
                      paid_at, refunded_minor, assigns, driver_id)
         ), o AS (
             UPDATE orders AS o
             SET version = o.version + c.bump, status = COALESCE(c.to_status, o.status),
                 updated_at = c.at,
                 payment_status = COALESCE(c.payment_status, o.payment_status),
                 paid_at = CASE WHEN c.payment_status IS NULL THEN o.paid_at ELSE c.paid_at END,
                 refunded_minor = COALESCE(c.refunded_minor, o.refunded_minor),
                 driver_id = CASE WHEN c.assigns THEN c.driver_id ELSE o.driver_id END,
                 -- Entering a status starts its clock; a payment keeps it.
                 status_at = CASE WHEN c.to_status IS NULL OR c.to_status = o.status
                                  THEN o.status_at ELSE c.at END
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
         SELECT o.id, (SELECT COUNT(*) FROM i) AS items FROM o",
    )
    .bind(&ids)
    .bind(&expected)
    .bind(&bumps)
    .bind(&statuses)
    .bind(&times)
    .bind(&items)
    .bind(&item_statuses)
    .bind(&payment_statuses)
    .bind(&paid_at)
    .bind(&refunded)
    .bind(&assigns)
    .bind(&drivers)
    .fetch_all(&mut *conn)
    .await?;
    let mut applied: HashSet<i64> = HashSet::with_capacity(rows.len());
    let mut items_updated: i64 = 0;
    for row in &rows {
        applied.insert(row.try_get("id")?);
        items_updated = row.try_get("items")?;
    }
    let items_applied = (0..changes.len())
        .filter(|&n| items[n].is_some() && applied.contains(&ids[n]))
        .count();
    if usize::try_from(items_updated).ok() != Some(items_applied) {
        return Err(StoreError::Database("item update did not match its orders".into()).into());
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
                 SELECT 1 FROM order_items i WHERE i.id = c.item_id AND i.order_id = c.id) AS item
             FROM UNNEST($1::int8[], $2::int8[]) AS c(id, item_id)
             LEFT JOIN orders o ON o.id = c.id",
        )
        .bind(refused.iter().map(|&n| ids[n]).collect::<Vec<_>>())
        .bind(refused.iter().map(|&n| items[n]).collect::<Vec<_>>())
        .fetch_all(&mut *conn)
        .await?
        {
            found.insert(
                row.try_get("id")?,
                (row.try_get("version")?, row.try_get("item")?),
            );
        }
    }

    let mut outcomes = Vec::with_capacity(changes.len());
    let mut history = Vec::new();
    let mut finished = Vec::new();
    let mut outcomes_changed = Vec::new();
    for (n, change) in changes.iter().enumerate() {
        if applied.contains(&ids[n]) {
            log.events.extend(change.events().cloned());
            history.extend(change.status.map(|s| (s.order_id, &s.history)));
            if let Some(status) = change.status.filter(|s| s.finishes) {
                if status.durations_at_once {
                    finished.push((status.order_id, status.to.as_str(), micros(status.history.at)));
                } else {
                    log.finishing.push((status.order_id, status.event.order_version, status.to.clone()));
                }
            }
            outcomes_changed.extend(
                change
                    .status
                    .and_then(|s| s.outcomes.as_deref().map(|o| (s.order_id, o))),
            );
            outcomes.push(Ok(()));
            continue;
        }
        outcomes.push(Err(match found.get(&ids[n]) {
            None | Some((None, _)) => codec::refused(None),
            Some(&(Some(current), _)) if current != expected[n] => codec::refused(Some(current)),
            Some((Some(_), false)) if items[n].is_some() => StoreError::NotFound("order item"),
            // Nothing explains the refusal.
            _ => return Err(StoreError::Database("change refused for no reason".into()).into()),
        }));
    }
    append_history(conn, &history).await?;
    super::rollups::outcomes_changed(conn, &outcomes_changed).await?;
    if !finished.is_empty() {
        keep_durations(conn, &finished).await?;
    }
    Ok(outcomes)
}

/// Keeps how long each of the `finished` orders (id, the done status it
/// reached, when) took from each status it entered before (its last entry
/// into it) to done ([`finished_samples`]), and trims the stores' kept
/// durations of those statuses to the most recent [`WINDOW_SAMPLES`] per
/// fulfilment and status ([`keep_samples`]). Returns the stores whose
/// durations changed.
async fn keep_durations(
    conn: &mut PgConnection, finished: &[(OrderId, &str, i64)],
) -> Result<Vec<StoreId>> {
    let samples = finished_samples(conn, finished).await?;
    keep_samples(conn, samples).await
}

/// The durations of the `finished` orders, from their own history in one
/// read, with the band of the store's day each status was entered in
/// (told in Rust: SQL cannot read zone rules); only those the trim after
/// them leaves ([`codec::outliving_trim`]). A read, so a reader can do it.
async fn finished_samples(
    conn: &mut PgConnection, finished: &[(OrderId, &str, i64)],
) -> Result<Vec<codec::KeptSample>> {
    let ids: Vec<i64> = finished.iter().map(|f| f.0.get()).collect();
    let done: Vec<&str> = finished.iter().map(|f| f.1).collect();
    let times: Vec<i64> = finished.iter().map(|f| f.2).collect();
    let entered = sqlx::query(
        "SELECT o.store_id, o.fulfilment, s.timezone, h.to_status AS state, f.at,
                MAX(h.at) AS entered
         FROM UNNEST($1::int8[], $2::int8[], $3::text[]) AS f(id, at, done)
         JOIN orders o ON o.id = f.id
         JOIN stores s ON s.id = o.store_id
         JOIN status_history h ON h.order_id = f.id
         WHERE h.to_status <> f.done
           -- Not a status entered after it finished (reopened since).
           AND h.id < (SELECT MAX(d.id) FROM status_history d
                       WHERE d.order_id = f.id AND d.to_status = f.done AND d.at = f.at)
         GROUP BY f.id, f.at, o.store_id, o.fulfilment, s.timezone, h.to_status
         ORDER BY f.id, h.to_status",
    )
    .bind(&ids)
    .bind(&times)
    .bind(&done)
    .fetch_all(&mut *conn)
    .await?;
    let mut samples = Vec::with_capacity(entered.len());
    for row in &entered {
        let (since, at): (i64, i64) = (row.try_get("entered")?, row.try_get("at")?);
        let timezone: String = row.try_get("timezone")?;
        samples.push((
            row.try_get("store_id")?,
            row.try_get("fulfilment")?,
            row.try_get("state")?,
            codec::sample_band(&timezone, since).map(|band| band.as_str()),
            (at - since) / 1_000_000,
            at,
        ));
    }
    Ok(codec::outliving_trim(samples))
}

/// Writes kept durations with the trim of each (store, fulfilment,
/// status) they add to, by an indexed bound, in one statement whatever
/// their number. Returns the stores whose durations changed.
async fn keep_samples(
    conn: &mut PgConnection, samples: Vec<codec::KeptSample>,
) -> Result<Vec<StoreId>> {
    let mut rows = KeptRows::default();
    for sample in samples {
        rows.push(sample);
    }
    let (keys, keep) = rows.keys();
    // The trim sees the rows as they were before this statement (one
    // snapshot), so it keeps the newest `keep` old rows of each key: with
    // the new ones, the key's newest WINDOW_SAMPLES.
    sqlx::query(
        "WITH trimmed AS (
             DELETE FROM eta_samples e USING (
                 SELECT k.store_id, k.fulfilment, k.state, (
                     SELECT x.id FROM eta_samples x
                     WHERE x.store_id = k.store_id AND x.fulfilment = k.fulfilment
                       AND x.state = k.state
                     ORDER BY x.id DESC OFFSET k.keep LIMIT 1) AS bound
                 FROM UNNEST($7::int8[], $8::text[], $9::text[], $10::int8[])
                     AS k(store_id, fulfilment, state, keep)
             ) b
             WHERE e.store_id = b.store_id AND e.fulfilment = b.fulfilment
               AND e.state = b.state AND e.id <= b.bound)
         INSERT INTO eta_samples (store_id, fulfilment, state, band, seconds, at)
         SELECT * FROM UNNEST($1::int8[], $2::text[], $3::text[], $4::text[], $5::int8[],
                              $6::int8[])",
    )
    .bind(&rows.stores)
    .bind(&rows.fulfilments)
    .bind(&rows.states)
    .bind(&rows.bands)
    .bind(&rows.seconds)
    .bind(&rows.at)
    .bind(keys.iter().map(|k| k.0).collect::<Vec<_>>())
    .bind(keys.iter().map(|k| k.1.as_str()).collect::<Vec<_>>())
    .bind(keys.iter().map(|k| k.2.as_str()).collect::<Vec<_>>())
    .bind(&keep)
    .execute(&mut *conn)
    .await?;
    let mut stores: Vec<StoreId> = keys.iter().map(|k| StoreId::new(k.0)).collect();
    stores.sort_unstable();
    stores.dedup();
    Ok(stores)
}

/// What a round of the ETA durations follower read: from where, to where,
/// and the durations to keep.
pub struct FollowedRound {
    after: i64,
    upto: i64,
    orders: usize,
    more: bool,
    samples: Vec<codec::KeptSample>,
}

/// The reading half of a round of the ETA durations follower (see
/// [`crate::Repository::keep_followed_durations`]), on a reader: the
/// events after its position, at most `limit`; the durations of the
/// orders those marked as finishing. `None` when nothing was written
/// since. The writer's time goes only to [`keep_followed_round`].
pub async fn read_followed_round(
    conn: &mut PgConnection, limit: u32,
) -> Result<Option<FollowedRound>> {
    let after: i64 = sqlx::query_scalar(codec::FOLLOWER_POSITION_SQL)
        .fetch_one(&mut *conn)
        .await?;
    let (upto, scanned): (Option<i64>, i64) = sqlx::query_as(codec::FOLLOWER_RANGE_SQL)
        .bind(after)
        .bind(i64::from(limit))
        .fetch_one(&mut *conn)
        .await?;
    let Some(upto) = upto else {
        return Ok(None);
    };
    let finished: Vec<(i64, String, i64)> = sqlx::query_as(codec::FOLLOWER_FINISHED_SQL)
        .bind(after)
        .bind(upto)
        .fetch_all(&mut *conn)
        .await?;
    let orders: Vec<(OrderId, &str, i64)> = finished
        .iter()
        .map(|(order, done, at)| (OrderId::new(*order), done.as_str(), *at))
        .collect();
    let samples = match orders.is_empty() {
        true => Vec::new(),
        false => finished_samples(conn, &orders).await?,
    };
    Ok(Some(FollowedRound {
        after,
        upto,
        orders: orders.len(),
        more: scanned >= i64::from(limit),
        samples,
    }))
}

/// The writing half of a round: moves the follower's position from where
/// the round read it to the end of its range — unless another instance's
/// round moved it meanwhile (then this one keeps nothing: `busy`; the
/// position's row lock makes the two queue, and the second sees the
/// first's move) — and keeps the round's durations, in the writer's batch.
pub async fn keep_followed_round(
    conn: &mut PgConnection, round: &FollowedRound,
) -> Result<FollowedDurations> {
    let moved = sqlx::query(codec::FOLLOWER_MOVE_SQL)
        .bind(round.upto)
        .bind(round.after)
        .execute(&mut *conn)
        .await?
        .rows_affected();
    if moved == 0 {
        return Ok(FollowedDurations {
            busy: true,
            ..FollowedDurations::default()
        });
    }
    let stores = match round.samples.is_empty() {
        true => Vec::new(),
        false => keep_samples(conn, round.samples.clone()).await?,
    };
    Ok(FollowedDurations {
        stores,
        orders: round.orders,
        more: round.more,
        busy: false,
    })
}

/// The kept duration rows of a batch, as columns to bind.
#[derive(Default)]
struct KeptRows {
    stores: Vec<i64>,
    fulfilments: Vec<String>,
    states: Vec<String>,
    bands: Vec<Option<&'static str>>,
    seconds: Vec<i64>,
    at: Vec<i64>,
}

impl KeptRows {
    fn push(&mut self, (store, fulfilment, state, band, seconds, at): codec::KeptSample) {
        self.stores.push(store);
        self.fulfilments.push(fulfilment);
        self.states.push(state);
        self.bands.push(band);
        self.seconds.push(seconds);
        self.at.push(at);
    }

    /// Each (store, fulfilment, status) the rows add to, with how many of
    /// its old rows to keep: [`WINDOW_SAMPLES`] less the rows added.
    fn keys(&self) -> (Vec<(i64, String, String)>, Vec<i64>) {
        let mut added: HashMap<(i64, &str, &str), i64> = HashMap::new();
        for n in 0..self.stores.len() {
            *added
                .entry((self.stores[n], &self.fulfilments[n], &self.states[n]))
                .or_default() += 1;
        }
        added
            .into_iter()
            .map(|((store, fulfilment, state), count)| {
                let keep = (WINDOW_SAMPLES as i64 - count).max(0);
                ((store, fulfilment.to_owned(), state.to_owned()), keep)
            })
            .unzip()
    }
}

/// A store's kept durations to done (see [`keep_durations`]) and its zone.
pub async fn store_durations(conn: &mut PgConnection, store: StoreId) -> Result<KeptDurations> {
    let rows = sqlx::query(codec::STORE_DURATIONS_SQL)
        .bind(store.get())
        .fetch_all(&mut *conn)
        .await?;
    let timezone = match rows.first() {
        Some(row) => Some(row.try_get("timezone")?),
        None => None,
    };
    let samples = rows
        .iter()
        .map(codec::duration_sample)
        .collect::<std::result::Result<_, _>>()?;
    Ok(codec::kept_durations(timezone, samples)?)
}

/// The ids of the store's oldest `limit` orders in any of `statuses`,
/// oldest first — per status the oldest `limit` through
/// `orders_store_status` (a lateral join), merged — and the event log's
/// last id, in one statement, so one snapshot.
pub async fn queued_orders(
    conn: &mut PgConnection,
    store: StoreId,
    statuses: &[StatusKey],
    limit: usize,
) -> Result<QueuedOrders> {
    let statuses: Vec<&str> = statuses.iter().map(StatusKey::as_str).collect();
    let rows: Vec<(i64, Option<i64>)> = sqlx::query_as(
        "WITH mark AS (SELECT last_id AS as_of FROM event_log_head),
         queue AS (
             SELECT q.id FROM UNNEST($2::text[]) AS s(status)
             CROSS JOIN LATERAL (
                 SELECT id FROM orders WHERE store_id = $1 AND status = s.status
                 ORDER BY id LIMIT $3) AS q
             ORDER BY q.id LIMIT $3)
         SELECT mark.as_of, queue.id FROM mark LEFT JOIN queue ON true ORDER BY queue.id",
    )
    .bind(store.get())
    .bind(&statuses)
    .bind(i64::try_from(limit).unwrap_or(i64::MAX))
    .fetch_all(&mut *conn)
    .await?;
    let mut queued = QueuedOrders::default();
    for (as_of, id) in rows {
        queued.as_of = as_of;
        queued.ids.extend(id.map(OrderId::new));
    }
    Ok(queued)
}

/// Applies changes of distinct orders (each one step) and reads the
/// changed orders back: each change's outcome, in order.
pub async fn apply_changes(
    conn: &mut PgConnection,
    changes: &[Change<'_>],
    log: &mut Log,
) -> Result<Vec<std::result::Result<Order, StoreError>>> {
    let outcomes = write_changes(conn, changes, log).await?;
    // Read back only the orders whose request did not say how the change
    // leaves them.
    let unknown: Vec<i64> = changes
        .iter()
        .zip(&outcomes)
        .filter(|(change, outcome)| outcome.is_ok() && change.after.is_none())
        .map(|(change, _)| change.order_id.get())
        .collect();
    let mut orders = read_orders(conn, unknown).await?;
    changes
        .iter()
        .zip(outcomes)
        .map(|(change, outcome)| match (outcome, change.after) {
            (Ok(()), Some(after)) => Ok(Ok(after.clone())),
            (Ok(()), None) => orders
                .remove(&change.order_id)
                .map(Ok)
                .ok_or_else(|| StoreError::NotFound("order").into()),
            (Err(refused), _) => Ok(Err(refused)),
        })
        .collect()
}

/// Applies the steps of one order's change in turn (a refused step fails
/// the request; the writer rolls back the steps before it) and reads the
/// order back.
async fn apply_steps(
    conn: &mut PgConnection,
    order_id: OrderId,
    steps: &[Change<'_>],
    log: &mut Log,
) -> Result<Order> {
    if let [step] = steps {
        let [outcome] = <[_; 1]>::try_from(apply_changes(conn, &[*step], log).await?)
            .map_err(|_| StoreError::Database("one change, several outcomes".into()))?;
        return Ok(outcome?);
    }
    for step in steps {
        for outcome in write_changes(conn, &[*step], log).await? {
            outcome?;
        }
    }
    written_order(conn, order_id).await
}

pub async fn apply_status_change(
    conn: &mut PgConnection,
    change: &StatusChange,
    log: &mut Log,
) -> Result<Order> {
    apply_steps(conn, change.order_id, &[Change::status(change)], log).await
}

pub async fn apply_item_change(
    conn: &mut PgConnection,
    change: &ItemStatusChange,
    log: &mut Log,
) -> Result<Order> {
    apply_steps(conn, change.order_id, &Change::item(change), log).await
}

/// Writes every step of a plan in the request's savepoint: a failing step
/// fails the request, and the writer rolls all of its steps back.
pub async fn apply_plan(conn: &mut PgConnection, plan: &OrderPlan, log: &mut Log) -> Result<Order> {
    let order = apply_steps(conn, plan.order_id, &Change::plan(plan), log).await?;
    Ok(codec::planned(order, plan.final_version())?)
}
