//! Orders: their items and history, placing them and changing them.

use ordertrack_domain::eta::WINDOW_SAMPLES;
use ordertrack_domain::{
    FulfilmentKind, KeptDurations, HistoryEntry, ItemChange, ItemStatusChange, NewEvent, Order,
    AssignmentStep, OrderId, OrderPlan, Payment, PlanStep, StatusChange, StoreId, order_created, order_number, StatusKey,
};
use rusqlite::{Connection, OptionalExtension, Row, params};
use time::OffsetDateTime;

use super::events::append_event;
use super::rows::{all, first};
use super::users::unique;
use super::writer::WriteTx;
use crate::codec::{self, Columns, history_columns, micros, order_columns, order_from, order_store_columns};
use crate::{
    FollowedDurations, NewOrder, OrderInStore, OrderKey, OrderPage, OrderQuery, OrderScope,
    PlacedOrder, QueuedOrders, StoreError,
};

/// An order's own columns.
const ORDER_SELECT: &str = concat!("SELECT ", order_columns!(), order_from!());
/// An order with the rest of its store's row.
const ORDER_IN_STORE_SELECT: &str = concat!(
    "SELECT ",
    order_columns!(),
    order_store_columns!(),
    order_from!()
);

/// Loads the items of `orders` (in place), in their original line order.
fn attach_items(conn: &Connection, orders: &mut [Order]) -> Result<(), StoreError> {
    if orders.is_empty() {
        return Ok(());
    }
    // One prepared statement for any number of orders: the ids travel as
    // one JSON array parameter.
    let ids: Vec<String> = orders.iter().map(|o| o.id.to_string()).collect();
    let ids = format!("[{}]", ids.join(","));
    all(
        conn,
        "SELECT order_id, id, product_id, name, quantity, unit_price_minor, notes, station, status
         FROM order_items WHERE order_id IN (SELECT value FROM json_each(?1))
         ORDER BY order_id, position",
        [ids],
        |row| {
            let order_id = OrderId::new(row.get("order_id")?);
            let item = codec::item(row)?;
            if let Some(order) = orders.iter_mut().find(|o| o.id == order_id) {
                order.items.push(item);
            }
            Ok(())
        },
    )?;
    Ok(())
}

/// One order (`select` reads the order's columns, and what `extra` reads
/// from the same row), with its items.
fn load_order<T>(
    conn: &Connection,
    select: &str,
    key: &OrderKey,
    extra: impl FnOnce(&Row<'_>) -> Result<T, StoreError>,
) -> Result<Option<(Order, T)>, StoreError> {
    let raw_id;
    let (condition, value): (&str, &dyn rusqlite::ToSql) = match key {
        OrderKey::Id(id) => {
            raw_id = id.get();
            ("o.id = ?1", &raw_id)
        }
        OrderKey::TrackingToken(token) => ("o.tracking_token = ?1", token),
    };
    let found = first(
        conn,
        &format!("{select} WHERE {condition}"),
        [value],
        |row| Ok((codec::order(row, Vec::new())?, extra(row)?)),
    )?;
    let Some((order, extra)) = found else {
        return Ok(None);
    };
    let mut orders = [order];
    attach_items(conn, &mut orders)?;
    let [order] = orders;
    Ok(Some((order, extra)))
}

pub fn order(conn: &Connection, id: OrderId) -> Result<Option<Order>, StoreError> {
    Ok(load_order(conn, ORDER_SELECT, &OrderKey::Id(id), |_| Ok(()))?.map(|(order, ())| order))
}

/// An order that must exist (just written).
fn written_order(conn: &Connection, id: OrderId) -> Result<Order, StoreError> {
    order(conn, id)?.ok_or(StoreError::NotFound("order"))
}

pub fn order_in_store(
    conn: &Connection,
    key: &OrderKey,
) -> Result<Option<OrderInStore>, StoreError> {
    Ok(load_order(conn, ORDER_IN_STORE_SELECT, key, |row| {
        Ok((codec::order_store(row)?, codec::marks(row)?))
    })?
    .map(|(order, (store, marks))| OrderInStore {
        order,
        store,
        marks,
    }))
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
        values.push(Box::new(codec::to_json(&query.statuses)?));
    }
    if let Some(fulfilment) = query.fulfilment {
        sql.push_str(" AND o.fulfilment = ?");
        values.push(Box::new(fulfilment.as_str()));
    }
    if let Some(scope) = &query.driver {
        sql.push_str(
            " AND (o.driver_id = ? OR (o.driver_id IS NULL
               AND o.status IN (SELECT value FROM json_each(?))))",
        );
        values.push(Box::new(scope.driver.get()));
        values.push(Box::new(codec::to_json(&scope.or_unassigned_in)?));
    }
    if let Some(search) = query
        .search
        .as_deref()
        .map(str::trim)
        .filter(|s| !s.is_empty())
    {
        sql.push_str(" AND (o.number LIKE ? ESCAPE '\\' OR u.name LIKE ? ESCAPE '\\')");
        let pattern = codec::contains_pattern(search);
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

    let mut orders = all(
        conn,
        &sql,
        rusqlite::params_from_iter(values.iter()),
        |row| codec::order(row, Vec::new()),
    )?;
    let next_before = codec::next_page(query, &mut orders);
    attach_items(conn, &mut orders)?;
    Ok(OrderPage {
        orders,
        next_before,
    })
}

pub fn status_counts(
    conn: &Connection,
    store: StoreId,
    fulfilment: Option<FulfilmentKind>,
) -> Result<Vec<(String, i64)>, StoreError> {
    all(
        conn,
        "SELECT status, COUNT(*) AS n FROM orders WHERE store_id = ?1
         AND (?2 IS NULL OR fulfilment = ?2) GROUP BY status ORDER BY status",
        params![store.get(), fulfilment.map(FulfilmentKind::as_str)],
        |row| Ok((row.get("status")?, row.get("n")?)),
    )
}

pub fn history(conn: &Connection, order: OrderId) -> Result<Vec<HistoryEntry>, StoreError> {
    all(
        conn,
        concat!(
            "SELECT ",
            history_columns!(),
            " FROM status_history WHERE order_id = ?1 ORDER BY id"
        ),
        [order.get()],
        |row| codec::history_entry(row),
    )
}

fn append_history(
    conn: &Connection,
    order: OrderId,
    entry: &HistoryEntry,
) -> Result<(), StoreError> {
    conn.prepare_cached(
        "INSERT INTO status_history
            (order_id, from_status, to_status, actor_id, actor_role, note, at, correction,
             payment_status, payment_amount_minor, assignment, assigned_driver_id)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12)",
    )?
    .execute(params![
        order.get(),
        entry.from.as_deref(),
        entry.to.as_str(),
        entry.actor.id.get(),
        entry.actor.role.as_str(),
        entry.note,
        micros(entry.at),
        entry.correction,
        entry.payment.map(|step| step.status.as_str()),
        entry.payment.map(|step| step.amount_minor),
        entry.assignment.map(AssignmentStep::as_str),
        entry
            .assignment
            .and_then(|step| step.driver)
            .map(|driver| driver.get())
    ])?;
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
            return Ok(PlacedOrder {
                order: written_order(conn, OrderId::new(order_id))?,
                created: false,
            });
        }
    }

    let (sequence, prefix, timezone): (i64, String, String) = conn
        .prepare_cached(
            "UPDATE stores SET last_order_seq = last_order_seq + 1 WHERE id = ?1
             RETURNING last_order_seq, order_prefix, timezone",
        )?
        .query_row([new.store_id.get()], |row| {
            Ok((row.get(0)?, row.get(1)?, row.get(2)?))
        })
        .optional()?
        .ok_or(StoreError::NotFound("store"))?;
    let number = order_number(&prefix, sequence);
    let at = micros(new.at);
    conn.prepare_cached(
        "INSERT INTO orders (store_id, number, customer_id, status, version, total_minor, currency,
            fulfilment, address, notes, tracking_token, created_at, updated_at, workflow_version,
            payment_method, status_at)
         VALUES (?1, ?2, ?3, ?4, 1, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?11, ?12, ?13, ?11)",
    )?
    .execute(params![
        new.store_id.get(),
        number,
        new.customer_id.get(),
        new.status.as_str(),
        new.total_minor,
        new.currency.code(),
        new.fulfilment.kind.as_str(),
        new.fulfilment.address,
        new.notes,
        new.tracking_token,
        at,
        new.workflow_version,
        new.payment_method.as_str()
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
    super::rollups::order_placed(conn, new.store_id, &timezone, new.at, new.total_minor)?;
    let order = written_order(conn, order_id)?;
    let (history, event) = order_created(&order, new.summary, new.placed_by);
    append_history(conn, order_id, &history)?;
    append_event(tx, event, None)?;
    Ok(PlacedOrder {
        order,
        created: true,
    })
}

/// Bumps the order's version if it is still `expected` (setting its status,
/// payment and driver, when given); otherwise reports the current version.
fn bump_version(
    conn: &Connection,
    order: OrderId,
    expected: i64,
    status: Option<&str>,
    payment: Option<&Payment>,
    assignment: Option<&AssignmentStep>,
    at: OffsetDateTime,
) -> Result<(), StoreError> {
    let changed = conn
        .prepare_cached(
            "UPDATE orders SET version = version + 1, status = COALESCE(?3, status), updated_at = ?4,
                payment_status = COALESCE(?5, payment_status),
                paid_at = CASE WHEN ?5 IS NULL THEN paid_at ELSE ?6 END,
                refunded_minor = COALESCE(?7, refunded_minor),
                driver_id = CASE WHEN ?8 THEN ?9 ELSE driver_id END,
                -- Entering a status starts its clock; a payment keeps it.
                status_at = CASE WHEN ?3 IS NULL OR ?3 = status THEN status_at ELSE ?4 END
             WHERE id = ?1 AND version = ?2",
        )?
        .execute(params![
            order.get(),
            expected,
            status,
            micros(at),
            payment.map(|p| p.status.as_str()),
            payment.and_then(|p| p.paid_at).map(micros),
            payment.map(|p| p.refunded_minor),
            assignment.is_some(),
            assignment.and_then(|a| a.driver).map(|driver| driver.get())
        ])?;
    if changed == 1 {
        return Ok(());
    }
    let current: Option<i64> = conn
        .prepare_cached("SELECT version FROM orders WHERE id = ?1")?
        .query_row([order.get()], |row| row.get(0))
        .optional()?;
    Err(codec::refused(current))
}

fn write_status_change(tx: &mut WriteTx<'_>, change: StatusChange) -> Result<(), StoreError> {
    bump_version(
        tx.conn(),
        change.order_id,
        change.expected_version,
        Some(&change.to),
        change.payment.as_ref(),
        change.assignment.as_ref(),
        change.history.at,
    )?;
    append_history(tx.conn(), change.order_id, &change.history)?;
    if let Some(outcomes) = &change.outcomes {
        super::rollups::outcome_changed(tx.conn(), change.order_id, outcomes)?;
    }
    let mut finished_in = None;
    if change.finishes && change.durations_at_once {
        keep_durations(
            tx.conn(),
            &[(change.order_id, change.to.as_str(), micros(change.history.at))],
        )?;
    } else if change.finishes {
        finished_in = Some(change.to.as_str());
    }
    append_event(tx, change.event, finished_in)
}

/// Keeps how long each of the `finished` orders (id, the done status it
/// reached, when) took from each status it entered before to done (see
/// [`finished_samples`], [`keep_samples`]), in the writer's transaction.
/// Returns the stores whose durations changed.
fn keep_durations(
    conn: &Connection,
    finished: &[(OrderId, &str, i64)],
) -> Result<Vec<StoreId>, StoreError> {
    keep_samples(conn, &finished_samples(conn, finished)?)
}

/// One kept duration to write.
type Sample = codec::KeptSample;

/// The durations of the `finished` orders: per order, one read of its own
/// history — its last entry into each status before the entry that
/// finished it, with its store's fulfilment and zone — and the band of
/// the store's day each status was entered in (told in Rust: SQL cannot
/// read zone rules); only those the trim after them leaves
/// ([`codec::outliving_trim`]). Reads only, so a reader can do it.
fn finished_samples(
    conn: &Connection,
    finished: &[(OrderId, &str, i64)],
) -> Result<Vec<Sample>, StoreError> {
    let mut entered_before = conn.prepare_cached(
        "SELECT o.store_id, o.fulfilment, s.timezone, h.to_status, MAX(h.at) AS entered
         FROM orders o JOIN stores s ON s.id = o.store_id
         JOIN status_history h ON h.order_id = o.id
         WHERE o.id = ?1 AND h.to_status <> ?2
           -- Not a status entered after it finished (reopened since).
           AND h.id < (SELECT MAX(d.id) FROM status_history d
                       WHERE d.order_id = ?1 AND d.to_status = ?2 AND d.at = ?3)
         GROUP BY h.to_status",
    )?;
    let mut samples = Vec::new();
    for &(order, done, done_at) in finished {
        let mut rows = entered_before.query(params![order.get(), done, done_at])?;
        while let Some(row) = rows.next()? {
            let timezone: String = row.get(2)?;
            let since: i64 = row.get(4)?;
            samples.push((
                row.get(0)?,
                row.get(1)?,
                row.get(3)?,
                codec::sample_band(&timezone, since).map(|band| band.as_str()),
                (done_at - since) / 1_000_000,
                done_at,
            ));
        }
    }
    Ok(codec::outliving_trim(samples))
}

/// Rows kept by one multi-row insert (six values each, well under
/// SQLite's limit on values per statement).
const SAMPLES_PER_INSERT: usize = 200;

/// Writes kept durations, a few hundred rows per statement, and trims
/// each (store, fulfilment, status) they add to, once, to the most recent
/// [`WINDOW_SAMPLES`] by an indexed bound: the work does not grow with
/// the rows kept. Returns the stores whose durations changed.
fn keep_samples(conn: &Connection, samples: &[Sample]) -> Result<Vec<StoreId>, StoreError> {
    for chunk in samples.chunks(SAMPLES_PER_INSERT) {
        let rows = vec!["(?, ?, ?, ?, ?, ?)"; chunk.len()].join(", ");
        let sql = format!(
            "INSERT INTO eta_samples (store_id, fulfilment, state, band, seconds, at) VALUES {rows}"
        );
        let mut values: Vec<&dyn rusqlite::ToSql> = Vec::with_capacity(chunk.len() * 6);
        for (store, fulfilment, state, band, seconds, at) in chunk {
            values.extend([
                store as &dyn rusqlite::ToSql,
                fulfilment,
                state,
                band,
                seconds,
                at,
            ]);
        }
        // A full chunk's text is always the same, so it stays cached.
        conn.prepare_cached(&sql)?.execute(values.as_slice())?;
    }
    let keys: std::collections::BTreeSet<(i64, &str, &str)> = samples
        .iter()
        .map(|(store, fulfilment, state, ..)| (*store, fulfilment.as_str(), state.as_str()))
        .collect();
    let mut trim = conn.prepare_cached(
        "DELETE FROM eta_samples
         WHERE store_id = ?1 AND fulfilment = ?2 AND state = ?3 AND id <= (
             SELECT id FROM eta_samples
             WHERE store_id = ?1 AND fulfilment = ?2 AND state = ?3
             ORDER BY id DESC LIMIT 1 OFFSET ?4)",
    )?;
    let mut stores = Vec::new();
    for (store, fulfilment, state) in keys {
        trim.execute(params![store, fulfilment, state, WINDOW_SAMPLES as i64])?;
        stores.push(StoreId::new(store));
    }
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
    samples: Vec<Sample>,
}

/// The reading half of a round of the ETA durations follower (see
/// [`crate::Repository::keep_followed_durations`]), on a reader: the
/// events after its position, at most `limit`, read by primary key (the
/// log's newest, so a short range); the durations of the orders those
/// marked as finishing. `None` when nothing was written since. The
/// writer's time goes only to [`keep_followed_round`].
pub fn read_followed_round(
    conn: &Connection,
    limit: u32,
) -> Result<Option<FollowedRound>, StoreError> {
    let after: i64 = conn
        .prepare_cached(codec::FOLLOWER_POSITION_SQL)?
        .query_row([], |row| row.get(0))?;
    let (upto, scanned): (Option<i64>, i64) = conn
        .prepare_cached(codec::FOLLOWER_RANGE_SQL)?
        .query_row(params![after, limit], |row| Ok((row.get(0)?, row.get(1)?)))?;
    let Some(upto) = upto else {
        return Ok(None);
    };
    let finished = all(
        conn,
        codec::FOLLOWER_FINISHED_SQL,
        params![after, upto],
        |row| {
            Ok((
                OrderId::new(row.get(0)?),
                row.get::<_, String>(1)?,
                row.get::<_, i64>(2)?,
            ))
        },
    )?;
    let orders: Vec<(OrderId, &str, i64)> = finished
        .iter()
        .map(|(order, done, at)| (*order, done.as_str(), *at))
        .collect();
    Ok(Some(FollowedRound {
        after,
        upto,
        orders: orders.len(),
        more: scanned >= i64::from(limit),
        samples: finished_samples(conn, &orders)?,
    }))
}

/// The writing half of a round: moves the follower's position from where
/// the round read it to the end of its range — unless another round moved
/// it meanwhile (then this one keeps nothing: `busy`) — and keeps the
/// round's durations, in one write.
pub fn keep_followed_round(
    conn: &Connection,
    round: &FollowedRound,
) -> Result<FollowedDurations, StoreError> {
    let moved = conn
        .prepare_cached(
            "UPDATE eta_follower SET last_event_id = ?2 WHERE id = 1 AND last_event_id = ?1",
        )?
        .execute(params![round.after, round.upto])?;
    if moved == 0 {
        return Ok(FollowedDurations {
            busy: true,
            ..FollowedDurations::default()
        });
    }
    Ok(FollowedDurations {
        stores: keep_samples(conn, &round.samples)?,
        orders: round.orders,
        more: round.more,
        busy: false,
    })
}

/// A store's kept durations to done (see [`keep_durations`]) and its zone.
pub fn store_durations(conn: &Connection, store: StoreId) -> Result<KeptDurations, StoreError> {
    let mut timezone = None;
    let samples = all(conn, codec::STORE_DURATIONS_SQL, [store.get()], |row| {
        if timezone.is_none() {
            timezone = Some(row.text("timezone")?);
        }
        codec::duration_sample(row)
    })?;
    codec::kept_durations(timezone, samples)
}

/// The ids of the store's oldest `limit` orders in any of `statuses`,
/// oldest first — per status the oldest `limit` through
/// `orders_store_status`, merged — and the event log's last id, in one
/// statement, so one snapshot (its text depends only on how many
/// statuses, so it stays cached).
pub fn queued_orders(
    conn: &Connection,
    store: StoreId,
    statuses: &[StatusKey],
    limit: usize,
) -> Result<QueuedOrders, StoreError> {
    const MARK: &str = "SELECT COALESCE(MAX(id), 0) FROM events";
    if statuses.is_empty() || limit == 0 {
        let as_of = conn.prepare_cached(MARK)?.query_row([], |row| row.get(0))?;
        return Ok(QueuedOrders {
            ids: Vec::new(),
            as_of,
        });
    }
    let per_status: Vec<String> = (0..statuses.len())
        .map(|n| {
            format!(
                "SELECT id FROM (SELECT id FROM orders WHERE store_id = ?1 AND status = ?{} \
                 ORDER BY id LIMIT ?2)",
                n + 3
            )
        })
        .collect();
    let sql = format!(
        "WITH mark (as_of) AS ({MARK}), queue (id) AS ({} ORDER BY id LIMIT ?2) \
         SELECT mark.as_of, queue.id FROM mark LEFT JOIN queue ON 1 ORDER BY queue.id",
        per_status.join(" UNION ALL ")
    );
    let limit = i64::try_from(limit).unwrap_or(i64::MAX);
    let store = store.get();
    let statuses: Vec<&str> = statuses.iter().map(StatusKey::as_str).collect();
    let mut values: Vec<&dyn rusqlite::ToSql> = vec![&store, &limit];
    values.extend(statuses.iter().map(|status| status as &dyn rusqlite::ToSql));
    let mut queued = QueuedOrders::default();
    let mut statement = conn.prepare_cached(&sql)?;
    let mut rows = statement.query(values.as_slice())?;
    while let Some(row) = rows.next()? {
        queued.as_of = row.get(0)?;
        if let Some(id) = row.get::<_, Option<i64>>(1)? {
            queued.ids.push(OrderId::new(id));
        }
    }
    Ok(queued)
}

pub fn apply_status_change(
    tx: &mut WriteTx<'_>,
    mut change: StatusChange,
) -> Result<Order, StoreError> {
    let order_id = change.order_id;
    let after = change.after.take();
    write_status_change(tx, change)?;
    answer(tx, order_id, after)
}

/// The order a change left: as its request said (the write's version
/// check makes that exact), else read back.
fn answer(
    tx: &mut WriteTx<'_>, order_id: OrderId, after: Option<Box<Order>>,
) -> Result<Order, StoreError> {
    match after {
        Some(after) => Ok(*after),
        None => written_order(tx.conn(), order_id),
    }
}

/// Writes one item's status change: version check, the item, its event.
fn write_item_change(
    tx: &mut WriteTx<'_>,
    order_id: OrderId,
    expected_version: i64,
    item: &ItemChange,
    event: NewEvent,
) -> Result<(), StoreError> {
    bump_version(
        tx.conn(),
        order_id,
        expected_version,
        None,
        None,
        None,
        event.at,
    )?;
    let updated = tx
        .conn()
        .prepare_cached("UPDATE order_items SET status = ?1 WHERE id = ?2 AND order_id = ?3")?
        .execute(params![item.to.as_str(), item.id.get(), order_id.get()])?;
    if updated != 1 {
        return Err(StoreError::NotFound("order item"));
    }
    append_event(tx, event, None)
}

pub fn apply_item_change(
    tx: &mut WriteTx<'_>,
    mut change: ItemStatusChange,
) -> Result<Order, StoreError> {
    let order_id = change.order_id;
    let after = change.after.take();
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
    answer(tx, order_id, after)
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
    codec::planned(written_order(tx.conn(), order_id)?, final_version)
}
