//! The row codec both backends share: every record is read from a row by
//! column *name* (never by position), through [`Columns`], which each
//! backend implements for its own row type. What a stored value means — a
//! role, a status, a time in microseconds, an order with its items — is
//! decided here once, so the two stores cannot drift apart in how they read.
//!
//! Queries name their columns to match: an order row has `store_slug` and
//! `customer_name`; an order read with its store adds the store's columns
//! with a `store_` prefix (read through [`Prefixed`]).

use ordertrack_domain::report::{ReportOrder, ReportStep};
use ordertrack_domain::{
    Actor, AssignedDriver, AssignmentStep, Currency, DayBand, DurationSample, Fulfilment,
    FulfilmentKind, Fulfilments, HistoryEntry, ItemId, ItemStatus, KeptDurations, NewEvent, Order,
    OrderId, OrderItem, OrderLine, Payment, PaymentMethod, PaymentMethods, PaymentStatus,
    PaymentStep, ProductId, Role, StatusKey, StoreId, StoreStatus, StoreZone, UserId,
};
use serde::Serialize;
use time::OffsetDateTime;

use crate::{
    AccessChange, CacheMarks, Credentials, EventFilter, Invitation, LogEntry, Membership,
    NewProduct, NewStore, OrderQuery, Product, ReportQuery, ReportRows, StaffMember, StoreError,
    StoreRecord, StoreSettings, StoreWithSettings, StoreWorkflow, StoredEvent, User,
};

type Result<T> = std::result::Result<T, StoreError>;

/// A row whose columns are read by name.
pub trait Columns {
    /// An integer column.
    fn int(&self, name: &str) -> Result<i64>;
    /// An integer column that may be NULL.
    fn int_opt(&self, name: &str) -> Result<Option<i64>>;
    /// A text column.
    fn text(&self, name: &str) -> Result<String>;
    /// A text column that may be NULL.
    fn text_opt(&self, name: &str) -> Result<Option<String>>;
    /// A boolean column.
    fn flag(&self, name: &str) -> Result<bool>;
}

/// The columns of `row` whose names start with `prefix` (e.g. a joined
/// store's `store_name`), read by the rest of their names.
pub struct Prefixed<'r, R: ?Sized> {
    pub row: &'r R,
    pub prefix: &'static str,
}

impl<R: Columns + ?Sized> Prefixed<'_, R> {
    fn name(&self, name: &str) -> String {
        format!("{}{name}", self.prefix)
    }
}

impl<R: Columns + ?Sized> Columns for Prefixed<'_, R> {
    fn int(&self, name: &str) -> Result<i64> {
        self.row.int(&self.name(name))
    }
    fn int_opt(&self, name: &str) -> Result<Option<i64>> {
        self.row.int_opt(&self.name(name))
    }
    fn text(&self, name: &str) -> Result<String> {
        self.row.text(&self.name(name))
    }
    fn text_opt(&self, name: &str) -> Result<Option<String>> {
        self.row.text_opt(&self.name(name))
    }
    fn flag(&self, name: &str) -> Result<bool> {
        self.row.flag(&self.name(name))
    }
}

/// A JSON object as a row (PostgreSQL lists an order's items as an array of
/// objects keyed by column name).
impl Columns for serde_json::Map<String, serde_json::Value> {
    fn int(&self, name: &str) -> Result<i64> {
        self.int_opt(name)?.ok_or_else(|| missing(name))
    }
    fn int_opt(&self, name: &str) -> Result<Option<i64>> {
        match self.get(name) {
            None | Some(serde_json::Value::Null) => Ok(None),
            Some(value) => value.as_i64().map(Some).ok_or_else(|| missing(name)),
        }
    }
    fn text(&self, name: &str) -> Result<String> {
        self.text_opt(name)?.ok_or_else(|| missing(name))
    }
    fn text_opt(&self, name: &str) -> Result<Option<String>> {
        match self.get(name) {
            None | Some(serde_json::Value::Null) => Ok(None),
            Some(serde_json::Value::String(text)) => Ok(Some(text.clone())),
            Some(_) => Err(missing(name)),
        }
    }
    fn flag(&self, name: &str) -> Result<bool> {
        self.get(name)
            .and_then(serde_json::Value::as_bool)
            .ok_or_else(|| missing(name))
    }
}

fn missing(name: &str) -> StoreError {
    StoreError::Database(format!("unreadable stored column `{name}`"))
}

// ---- values ----

/// Microseconds since the Unix epoch: how times are stored.
pub fn micros(at: OffsetDateTime) -> i64 {
    i64::try_from(at.unix_timestamp_nanos() / 1_000).unwrap_or(i64::MAX)
}

/// `at` as it reads back once stored (to the microsecond).
pub fn stored_time(at: OffsetDateTime) -> OffsetDateTime {
    from_micros(micros(at)).unwrap_or(at)
}

/// A stored time.
pub fn from_micros(value: i64) -> Result<OffsetDateTime> {
    OffsetDateTime::from_unix_timestamp_nanos(i128::from(value) * 1_000)
        .map_err(|e| StoreError::Database(format!("bad stored time {value}: {e}")))
}

/// A stored value this version cannot read.
/// A stored currency code.
fn currency(code: &str) -> Result<Currency> {
    Currency::parse(code).map_err(|_| corrupt("currency", code))
}

pub fn corrupt(what: &str, value: &str) -> StoreError {
    StoreError::Database(format!("unreadable stored {what} `{value}`"))
}

/// A stored staff role.
pub fn role(text: &str) -> Result<Role> {
    text.parse().map_err(|_| corrupt("role", text))
}

/// A value as the JSON text stored in a column.
pub fn to_json(value: &impl Serialize) -> Result<String> {
    serde_json::to_string(value).map_err(|e| StoreError::Database(e.to_string()))
}

/// `text` as a LIKE pattern matching itself anywhere (`\` escapes the
/// wildcards).
pub fn contains_pattern(text: &str) -> String {
    let mut pattern = String::with_capacity(text.len() + 2);
    pattern.push('%');
    for c in text.chars() {
        if matches!(c, '%' | '_' | '\\') {
            pattern.push('\\');
        }
        pattern.push(c);
    }
    pattern.push('%');
    pattern
}

// ---- records ----

/// `id, email, name, is_admin`.
pub fn user(row: &(impl Columns + ?Sized)) -> Result<User> {
    Ok(User {
        id: UserId::new(row.int("id")?),
        email: row.text("email")?,
        name: row.text("name")?,
        is_admin: row.flag("is_admin")?,
    })
}

/// A user's columns and `password_hash`.
pub fn credentials(row: &(impl Columns + ?Sized)) -> Result<Credentials> {
    Ok(Credentials {
        user: user(row)?,
        password_hash: row.text("password_hash")?,
    })
}

/// A user's columns and their `role`.
pub fn staff_member(row: &(impl Columns + ?Sized)) -> Result<StaffMember> {
    Ok(StaffMember {
        user: user(row)?,
        role: role(&row.text("role")?)?,
    })
}

/// A membership: `store_id, store_slug, role`.
pub fn membership(row: &(impl Columns + ?Sized)) -> Result<Membership> {
    Ok(Membership {
        store_id: StoreId::new(row.int("store_id")?),
        store_slug: row.text("store_slug")?,
        role: role(&row.text("role")?)?,
    })
}

/// A store row ([`store_columns`]).
pub fn store(row: &(impl Columns + ?Sized)) -> Result<StoreRecord> {
    Ok(StoreRecord {
        id: StoreId::new(row.int("id")?),
        slug: row.text("slug")?,
        name: row.text("name")?,
        currency: currency(&row.text("currency")?)?,
        workflow: row.text("workflow")?.into(),
        order_prefix: row.text("order_prefix")?,
    })
}

/// A store row with its settings columns.
pub fn store_with_settings(row: &(impl Columns + ?Sized)) -> Result<StoreWithSettings> {
    Ok(StoreWithSettings {
        store: store(row)?,
        settings: store_settings(row)?,
    })
}

/// A store's settings columns (`status`, `timezone`, `accepting_orders`,
/// `fulfilment`, `opening_hours`, `payment_methods`, `driver_self_assign`,
/// `print_trigger`): the one decoding both backends use.
fn store_settings(row: &(impl Columns + ?Sized)) -> Result<StoreSettings> {
    let status = row.text("status")?;
    let timezone = row.text("timezone")?;
    Ok(StoreSettings {
        status: StoreStatus::parse(&status).ok_or_else(|| corrupt("status", &status))?,
        timezone: StoreZone::parse(&timezone).map_err(|_| corrupt("time zone", &timezone))?,
        accepting_orders: row.flag("accepting_orders")?,
        fulfilment: Fulfilments::from_stored(&row.text("fulfilment")?),
        opening_hours: row
            .text_opt("opening_hours")?
            .map(|json| serde_json::from_str(&json).map_err(|_| corrupt("opening hours", &json)))
            .transpose()?,
        payment_methods: PaymentMethods::from_stored(&row.text("payment_methods")?),
        driver_self_assign: row.flag("driver_self_assign")?,
        print_trigger: StatusKey::from(row.text("print_trigger")?),
        email: crate::EmailSettings {
            states: {
                let json = row.text("email_states")?;
                serde_json::from_str(&json).map_err(|_| corrupt("e-mail states", &json))?
            },
            subject: row.text_opt("email_subject")?,
            body: row.text_opt("email_body")?,
        },
    })
}

/// A version of a store's workflow ([`store_workflow_columns`]).
pub fn store_workflow(row: &(impl Columns + ?Sized)) -> Result<StoreWorkflow> {
    Ok(StoreWorkflow {
        store_id: StoreId::new(row.int("store_id")?),
        version: row.int("version")?,
        name: row.text("name")?,
        definition: row.text("definition")?,
        created_at: from_micros(row.int("created_at")?)?,
    })
}

/// The columns of a version of a store's workflow (read by
/// [`store_workflow`]), in both backends' SQL.
macro_rules! store_workflow_columns {
    () => {
        "store_id, version, name, definition, created_at"
    };
}
pub(crate) use store_workflow_columns;

/// A store's columns (read by [`store`]), in both backends' SQL.
macro_rules! store_columns {
    () => {
        "id, slug, name, currency, workflow, order_prefix"
    };
}
pub(crate) use store_columns;

/// A product row ([`product_columns`]).
pub fn product(row: &(impl Columns + ?Sized)) -> Result<Product> {
    Ok(Product {
        id: ProductId::new(row.int("id")?),
        store_id: StoreId::new(row.int("store_id")?),
        name: row.text("name")?,
        description: row.text("description")?,
        price_minor: row.int("price_minor")?,
        station: row.text("station")?,
        available: row.flag("available")?,
    })
}

/// A product's columns (read by [`product`]), in both backends' SQL.
macro_rules! product_columns {
    () => {
        "id, store_id, name, description, price_minor, station, available"
    };
}
pub(crate) use product_columns;

/// The order columns both backends select (read by [`order`]; `o` is the
/// order, `s` its store, `u` its customer, `d` its driver if it has one:
/// see [`order_from`]).
macro_rules! order_columns {
    () => {
        "o.id, o.number, o.store_id, s.slug AS store_slug, o.customer_id,
    u.name AS customer_name, o.status, o.version, o.workflow_version, o.total_minor, o.currency, o.fulfilment,
    o.address, o.notes, o.tracking_token, o.created_at, o.updated_at,
    o.payment_method, o.payment_status, o.paid_at, o.refunded_minor, o.status_at,
    o.driver_id, d.name AS driver_name"
    };
}
pub(crate) use order_columns;

/// The store columns of an order read with its store (read by
/// [`order_store`]), after [`order_columns`], and the cache marks (read by
/// [`marks`]) in the same statement.
macro_rules! order_store_columns {
    () => {
        ", s.name AS store_name, s.currency AS store_currency,
    s.workflow AS store_workflow, s.order_prefix AS store_order_prefix,
    (SELECT access FROM cache_marks WHERE id = 1) AS marks_access,
    (SELECT config FROM cache_marks WHERE id = 1) AS marks_config"
    };
}
pub(crate) use order_store_columns;

/// The joins behind [`order_columns`].
macro_rules! order_from {
    () => {
        " FROM orders o JOIN stores s ON s.id = o.store_id JOIN users u ON u.id = o.customer_id
    LEFT JOIN users d ON d.id = o.driver_id"
    };
}
pub(crate) use order_from;

/// An order row ([`order_columns`]) with its items, in line order.
pub fn order(row: &(impl Columns + ?Sized), items: Vec<OrderItem>) -> Result<Order> {
    let fulfilment = row.text("fulfilment")?;
    let kind =
        FulfilmentKind::parse(&fulfilment).ok_or_else(|| corrupt("fulfilment", &fulfilment))?;
    Ok(Order {
        id: OrderId::new(row.int("id")?),
        number: row.text("number")?,
        store_id: StoreId::new(row.int("store_id")?),
        store_slug: row.text("store_slug")?,
        customer_id: UserId::new(row.int("customer_id")?),
        customer_name: row.text("customer_name")?,
        status: row.text("status")?.into(),
        version: row.int("version")?,
        workflow_version: row.int("workflow_version")?,
        items,
        total_minor: row.int("total_minor")?,
        currency: currency(&row.text("currency")?)?,
        fulfilment: Fulfilment {
            kind,
            address: row.text_opt("address")?,
        },
        notes: row.text_opt("notes")?,
        tracking_token: row.text("tracking_token")?,
        payment: Payment {
            method: payment_method(&row.text("payment_method")?)?,
            status: payment_status(&row.text("payment_status")?)?,
            paid_at: row.int_opt("paid_at")?.map(from_micros).transpose()?,
            refunded_minor: row.int("refunded_minor")?,
        },
        driver: match row.int_opt("driver_id")? {
            Some(id) => Some(AssignedDriver {
                id: UserId::new(id),
                name: row.text("driver_name")?,
            }),
            None => None,
        },
        created_at: from_micros(row.int("created_at")?)?,
        updated_at: from_micros(row.int("updated_at")?)?,
        status_since: from_micros(row.int("status_at")?)?,
    })
}

/// The store of an order row read with [`order_store_columns`]: its
/// columns carry the `store_` prefix (`store_id` and `store_slug` are the
/// order's own).
pub fn order_store(row: &(impl Columns + ?Sized)) -> Result<StoreRecord> {
    store(&Prefixed {
        row,
        prefix: "store_",
    })
}

/// The cache marks read beside a row ([`order_store_columns`]).
pub fn marks(row: &(impl Columns + ?Sized)) -> Result<CacheMarks> {
    Ok(CacheMarks {
        access: row.int("marks_access")?,
        config: row.int("marks_config")?,
    })
}

/// An item row: `id, product_id, name, quantity, unit_price_minor, notes,
/// station, status`.
pub fn item(row: &(impl Columns + ?Sized)) -> Result<OrderItem> {
    let quantity = row.int("quantity")?;
    let status = row.text("status")?;
    Ok(OrderItem {
        id: ItemId::new(row.int("id")?),
        line: OrderLine {
            product: ProductId::new(row.int("product_id")?),
            name: row.text("name")?,
            quantity: u32::try_from(quantity)
                .map_err(|_| corrupt("quantity", &quantity.to_string()))?,
            unit_price_minor: row.int("unit_price_minor")?,
            notes: row.text_opt("notes")?,
            station: row.text("station")?,
        },
        status: ItemStatus::parse(&status).ok_or_else(|| corrupt("item status", &status))?,
    })
}

/// A status-history row.
pub fn history_entry(row: &(impl Columns + ?Sized)) -> Result<HistoryEntry> {
    Ok(HistoryEntry {
        from: row.text_opt("from_status")?.map(StatusKey::from),
        to: row.text("to_status")?.into(),
        actor: Actor {
            id: UserId::new(row.int("actor_id")?),
            role: role(&row.text("actor_role")?)?,
        },
        note: row.text_opt("note")?,
        at: from_micros(row.int("at")?)?,
        correction: row.flag("correction")?,
        payment: match row.text_opt("payment_status")? {
            Some(status) => Some(PaymentStep {
                status: payment_status(&status)?,
                amount_minor: row.int_opt("payment_amount_minor")?.unwrap_or(0),
            }),
            None => None,
        },
        assignment: match row.text_opt("assignment")?.as_deref() {
            Some("assigned") => Some(AssignmentStep {
                driver: Some(UserId::new(row.int("assigned_driver_id")?)),
            }),
            Some("unassigned") => Some(AssignmentStep { driver: None }),
            Some(other) => return Err(corrupt("assignment", other)),
            None => None,
        },
    })
}

/// The statement a report reads its range with ([`add_report_row`] reads
/// its rows), the same on both backends: `$1` the store, `$2`–`$3` the
/// placing times. Without history, the orders alone; with it, each order
/// repeated on every entry of its history, oldest first.
pub fn report_sql(with_history: bool) -> &'static str {
    if with_history {
        "SELECT o.id, o.number, o.created_at, o.total_minor, o.status, o.workflow_version,
            h.order_id, h.from_status, h.to_status, h.actor_id, h.actor_role, h.note, h.at,
            h.correction, h.payment_status, h.payment_amount_minor, h.assignment,
            h.assigned_driver_id
        FROM orders o LEFT JOIN status_history h ON h.order_id = o.id
        WHERE o.store_id = $1 AND o.created_at >= $2 AND o.created_at < $3
        ORDER BY o.created_at, o.id, h.id"
    } else {
        "SELECT id, number, created_at, total_minor, status, workflow_version,
            CAST(NULL AS BIGINT) AS order_id
        FROM orders WHERE store_id = $1 AND created_at >= $2 AND created_at < $3
        ORDER BY created_at, id"
    }
}

/// An order as a report reads it: `id, number, created_at, total_minor,
/// status, workflow_version`.
pub fn report_order(row: &(impl Columns + ?Sized)) -> Result<ReportOrder> {
    Ok(ReportOrder {
        id: OrderId::new(row.int("id")?),
        number: row.text("number")?,
        placed_at: from_micros(row.int("created_at")?)?,
        total_minor: row.int("total_minor")?,
        status: row.text("status")?,
        workflow_version: row.int("workflow_version")?,
    })
}

/// A history entry with its order: `order_id` and [`history_entry`]'s.
pub fn report_step(row: &(impl Columns + ?Sized)) -> Result<ReportStep> {
    Ok(ReportStep {
        order_id: OrderId::new(row.int("order_id")?),
        entry: history_entry(row)?,
    })
}

/// Adds one row of a report query to `rows`: the order's columns
/// ([`report_order`]) and, when the query joined the history, the entry's
/// ([`report_step`]; NULL `order_id` for an order without one). Rows come
/// ordered by order, so an order repeats only on consecutive rows.
pub fn add_report_row(rows: &mut ReportRows, row: &(impl Columns + ?Sized)) -> Result<()> {
    let id = OrderId::new(row.int("id")?);
    if rows.orders.last().is_none_or(|last| last.id != id) {
        rows.orders.push(report_order(row)?);
    }
    if row.int_opt("order_id")?.is_some() {
        rows.steps.push(report_step(row)?);
    }
    Ok(())
}

/// The columns of a status-history row (read by [`history_entry`]), in
/// both backends' SQL.
macro_rules! history_columns {
    () => {
        "from_status, to_status, actor_id, actor_role, note, at, correction, payment_status,
         payment_amount_minor, assignment, assigned_driver_id"
    };
}
pub(crate) use history_columns;

/// A stored payment method.
fn payment_method(text: &str) -> Result<PaymentMethod> {
    PaymentMethod::parse(text).ok_or_else(|| corrupt("payment method", text))
}

/// A stored payment status.
fn payment_status(text: &str) -> Result<PaymentStatus> {
    PaymentStatus::parse(text).ok_or_else(|| corrupt("payment status", text))
}

/// An order event: `id, store_seq, payload`.
pub fn stored_event(row: &(impl Columns + ?Sized)) -> Result<StoredEvent> {
    let payload = row.text("payload")?;
    let event: NewEvent = serde_json::from_str(&payload).map_err(|_| corrupt("event", &payload))?;
    Ok(StoredEvent {
        id: row.int("id")?,
        store_seq: row.int("store_seq")?,
        event,
        public_json: row.text_opt("public_json")?,
    })
}

/// Any event-log entry: `id, store_seq, kind, payload, public_json`.
pub fn log_entry(row: &(impl Columns + ?Sized)) -> Result<LogEntry> {
    LogEntry::from_row(
        row.int("id")?,
        row.int_opt("store_seq")?,
        &row.text("kind")?,
        &row.text("payload")?,
        row.text_opt("public_json")?,
    )
}

/// An invitation read with its store ([`invitation_select`]): the store's
/// columns carry the `store_` prefix.
pub fn invitation(row: &(impl Columns + ?Sized)) -> Result<Invitation> {
    Ok(Invitation {
        id: row.int("id")?,
        store: store(&Prefixed {
            row,
            prefix: "store_",
        })?,
        email: row.text("email")?,
        role: role(&row.text("role")?)?,
        expires_at: from_micros(row.int("expires_at")?)?,
        used_at: row.int_opt("used_at")?.map(from_micros).transpose()?,
    })
}

/// An invitation with its store (read by [`invitation`]), in both
/// backends' SQL; a `WHERE` on `i` follows.
macro_rules! invitation_select {
    () => {
        "SELECT i.id, i.email, i.role, i.expires_at, i.used_at,
    s.id AS store_id, s.slug AS store_slug, s.name AS store_name,
    s.currency AS store_currency, s.workflow AS store_workflow,
    s.order_prefix AS store_order_prefix
    FROM invitations i JOIN stores s ON s.id = i.store_id"
    };
}
pub(crate) use invitation_select;

/// A review read with its order's number and customer's name
/// ([`review_select`]).
pub fn review(row: &(impl Columns + ?Sized)) -> Result<crate::Review> {
    let rating = row.int("rating")?;
    Ok(crate::Review {
        order_id: OrderId::new(row.int("order_id")?),
        order_number: row.text("order_number")?,
        customer_name: row.text("customer_name")?,
        rating: u8::try_from(rating).map_err(|_| corrupt("rating", &rating.to_string()))?,
        comment: row.text_opt("comment")?,
        created_at: from_micros(row.int("created_at")?)?,
    })
}

/// A review with its order's number and customer's name (read by
/// [`review`]), in both backends' SQL; a `WHERE` on `r` follows.
macro_rules! review_select {
    () => {
        "SELECT r.order_id, o.number AS order_number, u.name AS customer_name, r.rating,
    r.comment, r.created_at
    FROM reviews r JOIN orders o ON o.id = r.order_id JOIN users u ON u.id = r.customer_id"
    };
}
pub(crate) use review_select;

/// A store's printer ([`printer_select`]); its stations are a JSON array.
pub fn printer(row: &(impl Columns + ?Sized)) -> Result<crate::Printer> {
    let stations = row.text("stations")?;
    Ok(crate::Printer {
        id: row.int("id")?,
        setup: crate::PrinterSetup {
            store_id: StoreId::new(row.int("store_id")?),
            name: row.text("name")?,
            host: row.text("host")?,
            port: port(row.int("port")?)?,
            stations: serde_json::from_str(&stations)
                .map_err(|_| corrupt("stations", &stations))?,
            receipts: row.flag("receipts")?,
            enabled: row.flag("enabled")?,
        },
        created_at: from_micros(row.int("created_at")?)?,
    })
}

fn port(value: i64) -> Result<u16> {
    u16::try_from(value).map_err(|_| corrupt("port", &value.to_string()))
}

/// A printer's columns (read by [`printer`]), in both backends' SQL; a
/// `WHERE` follows.
macro_rules! printer_select {
    () => {
        "SELECT id, store_id, name, host, port, stations, receipts, enabled, created_at
    FROM printers"
    };
}
pub(crate) use printer_select;

/// A print job with its printer ([`print_job_select`]).
pub fn print_job(row: &(impl Columns + ?Sized)) -> Result<crate::PrintJob> {
    let attempts = row.int("attempts")?;
    Ok(crate::PrintJob {
        id: row.int("id")?,
        order_id: OrderId::new(row.int("order_id")?),
        store_id: StoreId::new(row.int("store_id")?),
        printer_id: row.int("printer_id")?,
        printer_name: row.text("printer_name")?,
        host: row.text("host")?,
        port: port(row.int("port")?)?,
        printer_enabled: row.flag("printer_enabled")?,
        kind: crate::PrintKind::parse(&row.text("kind")?)?,
        station: row.text_opt("station")?,
        status: crate::PrintStatus::parse(&row.text("status")?)?,
        attempts: u32::try_from(attempts)
            .map_err(|_| corrupt("attempts", &attempts.to_string()))?,
        last_error: row.text_opt("last_error")?,
        next_attempt_at: row
            .int_opt("next_attempt_at")?
            .map(from_micros)
            .transpose()?,
        created_at: from_micros(row.int("created_at")?)?,
        printed_at: row.int_opt("printed_at")?.map(from_micros).transpose()?,
    })
}

/// A print job with its printer's name and address (read by
/// [`print_job`]), in both backends' SQL; a `WHERE` on `j` follows.
macro_rules! print_job_select {
    () => {
        "SELECT j.id, j.order_id, j.store_id, j.printer_id, p.name AS printer_name, p.host,
    p.port, p.enabled AS printer_enabled, j.kind, j.station, j.status, j.attempts,
    j.last_error, j.next_attempt_at, j.created_at, j.printed_at
    FROM print_jobs j JOIN printers p ON p.id = j.printer_id"
    };
}
pub(crate) use print_job_select;

// ---- records written ----

/// The store just created from `new` with `id`.
pub fn created_store(new: &NewStore, id: StoreId) -> StoreRecord {
    StoreRecord {
        id,
        slug: new.slug.clone(),
        name: new.name.clone(),
        currency: new.currency.clone(),
        workflow: new.workflow.clone(),
        order_prefix: new.order_prefix.clone(),
    }
}

/// The product just created from `new` with `id`.
pub fn created_product(new: &NewProduct, id: ProductId, store: StoreId) -> Product {
    Product {
        id,
        store_id: store,
        name: new.name.clone(),
        description: new.description.clone(),
        price_minor: new.price_minor,
        station: new.station.clone(),
        available: new.available,
    }
}

/// The access change a staff role replacing `before` logs: none for a new
/// member (they had no streams to end) or the same role; a changed role
/// ends the streams the old one opened.
pub fn role_replaced(
    user: UserId, store: StoreId, before: Option<&str>, role: Role,
) -> Option<AccessChange> {
    before
        .is_some_and(|before| before != role.as_str())
        .then_some(AccessChange::StaffChanged {
            user_id: user,
            store_id: store,
            role: Some(role),
        })
}

/// The access change a staff member's removal logs.
pub fn staff_removed(user: UserId, store: StoreId) -> AccessChange {
    AccessChange::StaffChanged {
        user_id: user,
        store_id: store,
        role: None,
    }
}

// ---- orders ----

/// Cuts a page fetched with one extra row (which tells whether another
/// page follows) to the query's limit; returns where the next page starts
/// (newest-first pages only).
pub fn next_page(query: &OrderQuery, orders: &mut Vec<Order>) -> Option<OrderId> {
    let limit = query.limit as usize;
    if orders.len() <= limit {
        return None;
    }
    orders.truncate(limit);
    orders.last().map(|o| o.id).filter(|_| !query.oldest_first)
}

/// Cuts a page of reviews fetched with one extra row to `limit`; returns
/// where the next page starts.
pub fn next_review_page(reviews: &mut Vec<crate::Review>, limit: u32) -> Option<OrderId> {
    let limit = limit as usize;
    if reviews.len() <= limit {
        return None;
    }
    reviews.truncate(limit);
    reviews.last().map(|r| r.order_id)
}

/// Why a version-checked write changed no order: `current` is the order's
/// version, `None` if there is no such order.
pub fn refused(current: Option<i64>) -> StoreError {
    match current {
        Some(current) => StoreError::VersionConflict { current },
        None => StoreError::NotFound("order"),
    }
}

/// The order after a plan's steps: only an empty plan can leave it at
/// another version than the plan's last; it changes nothing, but still
/// answers for the version it was decided on.
pub fn planned(order: Order, final_version: i64) -> Result<Order> {
    if order.version != final_version {
        return Err(StoreError::VersionConflict {
            current: order.version,
        });
    }
    Ok(order)
}

// ---- events ----

/// The event column a filter matches on, and the value it must hold.
pub fn filter_column(filter: &EventFilter) -> (&'static str, i64) {
    match filter {
        EventFilter::Order(id) => ("order_id", id.get()),
        EventFilter::Customer(id) => ("customer_id", id.get()),
        EventFilter::Store(id) => ("store_id", id.get()),
    }
}

// ---- webhooks ----

/// A webhook endpoint ([`webhook_columns`]).
pub fn webhook(row: &(impl Columns + ?Sized)) -> Result<crate::Webhook> {
    let events = row.text("events")?;
    Ok(crate::Webhook {
        id: ordertrack_domain::WebhookId::new(row.int("id")?),
        store_id: StoreId::new(row.int("store_id")?),
        url: row.text("url")?,
        events: serde_json::from_str(&events).map_err(|_| corrupt("webhook events", &events))?,
        enabled: row.flag("enabled")?,
        secret: row.text("secret")?,
        previous_secret: row.text_opt("previous_secret")?,
        previous_secret_until: row
            .int_opt("previous_secret_until")?
            .map(from_micros)
            .transpose()?,
        disabled_reason: row.text_opt("disabled_reason")?,
        after_event: row.int("after_event_id")?,
        created_at: from_micros(row.int("created_at")?)?,
    })
}

/// An endpoint's columns (read by [`webhook`]) from `webhook_endpoints`
/// named `$t`, each with `$p` before its name.
macro_rules! webhook_columns {
    ($t:literal, $p:literal) => {
        concat!(
            $t,
            ".id AS ",
            $p,
            "id, ",
            $t,
            ".store_id AS ",
            $p,
            "store_id, ",
            $t,
            ".url AS ",
            $p,
            "url, ",
            $t,
            ".events AS ",
            $p,
            "events, ",
            $t,
            ".enabled AS ",
            $p,
            "enabled, ",
            $t,
            ".secret AS ",
            $p,
            "secret, ",
            $t,
            ".previous_secret AS ",
            $p,
            "previous_secret, ",
            $t,
            ".previous_secret_until AS ",
            $p,
            "previous_secret_until, ",
            $t,
            ".disabled_reason AS ",
            $p,
            "disabled_reason, ",
            $t,
            ".after_event_id AS ",
            $p,
            "after_event_id, ",
            $t,
            ".created_at AS ",
            $p,
            "created_at"
        )
    };
}
pub(crate) use webhook_columns;

/// A delivery ([`delivery_select`]).
pub fn webhook_delivery(row: &(impl Columns + ?Sized)) -> Result<crate::WebhookDelivery> {
    let state = row.text("state")?;
    let time = |name: &str| row.int_opt(name)?.map(from_micros).transpose();
    Ok(crate::WebhookDelivery {
        id: ordertrack_domain::DeliveryId::new(row.int("id")?),
        webhook_id: ordertrack_domain::WebhookId::new(row.int("webhook_id")?),
        event_id: row.int("event_id")?,
        event_kind: row.text("event_kind")?,
        state: crate::DeliveryState::parse(&state)
            .ok_or_else(|| corrupt("delivery state", &state))?,
        attempts: row.int("attempts")?,
        http_status: row.int_opt("http_status")?,
        duration_ms: row.int_opt("duration_ms")?,
        error: row.text_opt("error")?,
        next_attempt_at: time("next_attempt_at")?,
        last_attempt_at: time("last_attempt_at")?,
        created_at: from_micros(row.int("created_at")?)?,
    })
}

/// A delivery claimed with its endpoint (whose columns carry `w_`).
pub fn claimed_delivery(row: &(impl Columns + ?Sized)) -> Result<crate::ClaimedDelivery> {
    Ok(crate::ClaimedDelivery {
        delivery: webhook_delivery(row)?,
        webhook: webhook(&Prefixed { row, prefix: "w_" })?,
    })
}

/// A delivery's columns with its event's kind (read by [`webhook_delivery`]).
macro_rules! delivery_columns {
    () => {
        "d.id, d.webhook_id, d.event_id, e.kind AS event_kind, d.state, d.attempts,
    d.http_status, d.duration_ms, d.error, d.next_attempt_at, d.last_attempt_at, d.created_at"
    };
}
pub(crate) use delivery_columns;

/// Deliveries (read by [`webhook_delivery`]), in both backends' SQL; a
/// `WHERE` on `d` follows.
macro_rules! delivery_select {
    () => {
        concat!(
            "SELECT ",
            $crate::codec::delivery_columns!(),
            " FROM webhook_deliveries d JOIN events e ON e.id = d.event_id"
        )
    };
}
pub(crate) use delivery_select;

/// Deliveries with their endpoints (read by [`claimed_delivery`]); a
/// `WHERE` on `d` and `w` follows.
macro_rules! claimed_select {
    () => {
        concat!(
            "SELECT ",
            $crate::codec::delivery_columns!(),
            ", ",
            $crate::codec::webhook_columns!("w", "w_"),
            " FROM webhook_deliveries d JOIN events e ON e.id = d.event_id
    JOIN webhook_endpoints w ON w.id = d.webhook_id"
        )
    };
}
pub(crate) use claimed_select;

/// Endpoints (read by [`webhook`]); a `WHERE` on `w` follows.
macro_rules! webhook_select {
    () => {
        concat!(
            "SELECT ",
            $crate::codec::webhook_columns!("w", ""),
            " FROM webhook_endpoints w"
        )
    };
}
pub(crate) use webhook_select;

/// The heads of the endpoints' queues — each enabled endpoint's pending
/// delivery of its oldest event — in both backends' SQL, as a condition on
/// `d` (a delivery) joined to `w` (its endpoint).
macro_rules! delivery_is_head {
    () => {
        "d.state = 'pending' AND w.enabled
    AND NOT EXISTS (SELECT 1 FROM webhook_deliveries p
        WHERE p.webhook_id = d.webhook_id AND p.state = 'pending' AND p.event_id < d.event_id)"
    };
}
pub(crate) use delivery_is_head;

/// A claimed mail job (`id`, `event_id`, `user_id`, `attempts`).
pub fn email_job(row: &(impl Columns + ?Sized)) -> Result<crate::EmailJob> {
    Ok(crate::EmailJob {
        id: row.int("id")?,
        event_id: row.int("event_id")?,
        user_id: UserId::new(row.int("user_id")?),
        attempts: row.int("attempts")?,
    })
}

/// A mail job as kept ([`email_job`]'s columns with `state` and `error`).
pub fn email_job_record(row: &(impl Columns + ?Sized)) -> Result<crate::EmailJobRecord> {
    Ok(crate::EmailJobRecord {
        id: row.int("id")?,
        event_id: row.int("event_id")?,
        user_id: UserId::new(row.int("user_id")?),
        state: row.text("state")?,
        attempts: row.int("attempts")?,
        error: row.text_opt("error")?,
    })
}

// ---- Web Push ----

/// A push subscription ([`push_subscription_select`]).
pub fn push_subscription(row: &(impl Columns + ?Sized)) -> Result<crate::PushSubscription> {
    let owner = match (row.int_opt("user_id")?, row.int_opt("order_id")?) {
        (Some(user), None) => crate::PushOwner::User(UserId::new(user)),
        (None, Some(order)) => crate::PushOwner::Order(OrderId::new(order)),
        _ => return Err(corrupt("push subscription owner", "both or neither")),
    };
    Ok(crate::PushSubscription {
        id: row.int("id")?,
        owner,
        endpoint: row.text("endpoint")?,
        p256dh: row.text("p256dh")?,
        auth: row.text("auth")?,
        after_event: row.int("after_event_id")?,
        created_at: from_micros(row.int("created_at")?)?,
    })
}

/// Push subscriptions (read by [`push_subscription`]); a `WHERE` on `s`
/// follows.
macro_rules! push_subscription_select {
    () => {
        "SELECT s.id, s.user_id, s.order_id, s.endpoint, s.p256dh, s.auth, s.after_event_id,
            s.created_at FROM push_subscriptions s"
    };
}
pub(crate) use push_subscription_select;

/// A claimed push job with its subscription ([`push_job_select`]).
pub fn push_job(row: &(impl Columns + ?Sized)) -> Result<crate::PushJob> {
    Ok(crate::PushJob {
        id: row.int("job_id")?,
        event_id: row.int("job_event_id")?,
        attempts: row.int("job_attempts")?,
        subscription: push_subscription(row)?,
    })
}

/// Push jobs with their subscriptions (read by [`push_job`]); a `WHERE`
/// on `j` follows.
macro_rules! push_job_select {
    () => {
        "SELECT j.id AS job_id, j.event_id AS job_event_id, j.attempts AS job_attempts,
            s.id, s.user_id, s.order_id, s.endpoint, s.p256dh, s.auth, s.after_event_id,
            s.created_at
         FROM push_jobs j JOIN push_subscriptions s ON s.id = j.subscription_id"
    };
}
pub(crate) use push_job_select;
// ---- per-day report rollups (both backends' SQL) ----

/// An order as its rollup day needs it: its store, placing time, total and
/// the store's time zone.
pub const ROLLUP_ORDER_SQL: &str = "SELECT o.store_id, o.created_at, o.total_minor, s.timezone
     FROM orders o JOIN stores s ON s.id = o.store_id WHERE o.id = $1";

/// A day's kept times.
pub const DAY_TIMES_SQL: &str = "SELECT times FROM report_days WHERE store_id = $1 AND day = $2";

/// Adds counts to a day's rollup (creating it); with `$8` true its times
/// become `$7`.
pub const DAY_UPSERT_SQL: &str =
    "INSERT INTO report_days (store_id, day, orders, completed, cancelled, revenue_minor, times)
     VALUES ($1, $2, $3, $4, $5, $6, $7)
     ON CONFLICT (store_id, day) DO UPDATE SET
         orders = report_days.orders + excluded.orders,
         completed = report_days.completed + excluded.completed,
         cancelled = report_days.cancelled + excluded.cancelled,
         revenue_minor = report_days.revenue_minor + excluded.revenue_minor,
         times = CASE WHEN $8 THEN excluded.times ELSE report_days.times END";

/// The days of a range (`day` text compares as dates), with or without
/// their times.
pub fn report_days_sql(with_times: bool) -> &'static str {
    if with_times {
        "SELECT day, orders, completed, cancelled, revenue_minor, times FROM report_days
         WHERE store_id = $1 AND day >= $2 AND day <= $3"
    } else {
        "SELECT day, orders, completed, cancelled, revenue_minor FROM report_days
         WHERE store_id = $1 AND day >= $2 AND day <= $3"
    }
}

/// The zone a store's rollups were built in.
pub const ROLLUP_ZONE_SQL: &str = "SELECT timezone FROM report_rollups WHERE store_id = $1";

/// Moves the access mark ([`crate::CacheMarks::access`]), in the
/// transaction of a change to who a session is.
pub const BUMP_ACCESS_MARK_SQL: &str = "UPDATE cache_marks SET access = access + 1 WHERE id = 1";

/// Moves the configuration mark ([`crate::CacheMarks::config`]), in the
/// transaction of a change to a store's settings or workflow.
pub const BUMP_CONFIG_MARK_SQL: &str = "UPDATE cache_marks SET config = config + 1 WHERE id = 1";

/// Reads both marks (one primary-key row).
pub const CACHE_MARKS_SQL: &str = "SELECT access, config FROM cache_marks WHERE id = 1";

/// Marks a store's rollups as built in its current zone.
pub const ROLLUP_BUILT_SQL: &str = "INSERT INTO report_rollups (store_id, timezone)
     SELECT id, timezone FROM stores WHERE id = $1
     ON CONFLICT (store_id) DO UPDATE SET timezone = excluded.timezone";

/// The placing times of a store's first and last orders.
pub const ORDER_SPAN_SQL: &str =
    "SELECT MIN(created_at) AS first, MAX(created_at) AS last FROM orders WHERE store_id = $1";

/// A stored time zone.
pub fn zone(text: &str) -> Result<StoreZone> {
    StoreZone::parse(text).map_err(|_| corrupt("time zone", text))
}

/// A day's sales counts from its row (`orders`, `completed`, `cancelled`,
/// `revenue_minor`) and its decoded times.
pub fn day_rollup(
    row: &(impl Columns + ?Sized), times: Option<&[u8]>,
) -> Result<ordertrack_domain::rollup::DayRollup> {
    Ok(ordertrack_domain::rollup::DayRollup {
        orders: row.int("orders")?,
        completed: row.int("completed")?,
        cancelled: row.int("cancelled")?,
        revenue_minor: row.int("revenue_minor")?,
        times: match times {
            Some(bytes) => decode_times(bytes)?,
            None => Default::default(),
        },
    })
}

/// A day's kept times from their stored form.
pub fn decode_times(bytes: &[u8]) -> Result<ordertrack_domain::rollup::DayTimes> {
    ordertrack_domain::rollup::DayTimes::decode(bytes)
        .ok_or_else(|| corrupt("report day times", &format!("{} bytes", bytes.len())))
}

/// The width of the chunks a rebuild reads a store's orders in: a week
/// of a busy store is a few tens of thousands of orders in memory.
pub const REBUILD_CHUNK_MICROS: i64 = 7 * 24 * 3_600 * 1_000_000;

/// The queries a rebuild reads a store's orders placed from `first` to
/// `last` (micros) in, a [`REBUILD_CHUNK_MICROS`] chunk each.
pub fn rebuild_queries(
    store: StoreId, first: Option<i64>, last: Option<i64>,
) -> Result<Vec<ReportQuery>> {
    let (Some(first), Some(last)) = (first, last) else {
        return Ok(Vec::new());
    };
    let mut queries = Vec::new();
    let mut from = first;
    while from <= last {
        let until = from.saturating_add(REBUILD_CHUNK_MICROS);
        queries.push(ReportQuery {
            store,
            from: from_micros(from)?,
            until: from_micros(until)?,
            with_history: true,
        });
        from = until;
    }
    Ok(queries)
}

/// Adds a chunk of a store's raw rows to a rebuild.
pub fn rebuild_chunk(
    builder: &mut ordertrack_domain::rollup::RollupBuilder, zone: &StoreZone,
    rules: &std::collections::HashMap<i64, ordertrack_domain::rollup::OutcomeRules>,
    rows: &ReportRows,
) {
    let none = ordertrack_domain::rollup::OutcomeRules::default();
    let mut steps = rows.steps.as_slice();
    for order in &rows.orders {
        // Steps come grouped by order, in the orders' order.
        let own = steps.iter().take_while(|s| s.order_id == order.id).count();
        let (mine, rest) = steps.split_at(own);
        steps = rest;
        builder.add(
            zone,
            rules.get(&order.workflow_version).unwrap_or(&none),
            order,
            mine,
        );
    }
}

// ---- outbox pruning (both backends' SQL) ----

/// Deletes an outbox's jobs that are done with (not `pending`) and were
/// made before the time bound to `before`, at most as many as `limit`,
/// oldest first. Ids grow with `created_at`, so the old rows are those
/// below the first recent one: found from the start of the primary key
/// without scanning what is kept.
pub(crate) fn prune_sql(outbox: crate::Outbox, before: &str, limit: &str) -> String {
    let table = outbox.jobs_table();
    format!(
        "DELETE FROM {table} WHERE id IN (
             SELECT id FROM {table}
             WHERE state <> 'pending'
               AND id < COALESCE(
                   (SELECT id FROM {table} WHERE created_at >= {before} ORDER BY id LIMIT 1),
                   9223372036854775807)
             ORDER BY id LIMIT {limit})"
    )
}
// ---- kept ETA durations (both backends' SQL) ----

/// A store's kept durations to done, each row with the store's time zone
/// (the bands are read in it; a store without samples needs none).
pub const STORE_DURATIONS_SQL: &str =
    "SELECT (SELECT timezone FROM stores WHERE id = $1) AS timezone,
            fulfilment, state, band, seconds
     FROM eta_samples WHERE store_id = $1";

/// The ETA durations follower's position in the event log: the last event
/// it has kept the durations of.
pub const FOLLOWER_POSITION_SQL: &str = "SELECT last_event_id FROM eta_follower WHERE id = 1";

/// The follower's next range of the log: the last id of the (at most `$2`)
/// events after `$1`, and how many there are. Event ids are handed out in
/// commit order, so a committed id is never passed over.
pub const FOLLOWER_RANGE_SQL: &str = "SELECT MAX(id), COUNT(*) FROM (
         SELECT id FROM events WHERE id > $1 ORDER BY id LIMIT $2) AS range_of_log";

/// The events of a range that finish an order and leave its durations to
/// the follower: the order, the done status, when.
pub const FOLLOWER_FINISHED_SQL: &str = "SELECT order_id, finished_in, created_at FROM events
     WHERE id > $1 AND id <= $2 AND finished_in IS NOT NULL ORDER BY id";

/// Moves the follower's position (`$2`, where its round read from) to the
/// end of the range it kept; moves nothing if another round moved it.
pub const FOLLOWER_MOVE_SQL: &str =
    "UPDATE eta_follower SET last_event_id = $1 WHERE id = 1 AND last_event_id = $2";

/// One kept duration from a [`STORE_DURATIONS_SQL`] row.
pub fn duration_sample(row: &(impl Columns + ?Sized)) -> Result<DurationSample> {
    let fulfilment = row.text("fulfilment")?;
    let band = match row.text_opt("band")? {
        Some(band) => Some(DayBand::parse(&band).ok_or_else(|| corrupt("band", &band))?),
        None => None,
    };
    Ok(DurationSample {
        fulfilment: FulfilmentKind::parse(&fulfilment)
            .ok_or_else(|| corrupt("fulfilment", &fulfilment))?,
        state: row.text("state")?.into(),
        band,
        seconds: row.int("seconds")?,
    })
}

/// A store's kept durations: `samples` and the `timezone` of its
/// [`STORE_DURATIONS_SQL`] rows (none without samples, when no band is
/// read).
pub fn kept_durations(
    timezone: Option<String>, samples: Vec<DurationSample>,
) -> Result<KeptDurations> {
    let zone = match timezone {
        Some(timezone) => zone(&timezone)?,
        None => StoreZone::utc(),
    };
    Ok(KeptDurations { zone, samples })
}

/// The band of the day a sample's order entered its state in (`entered`,
/// stored micros), on the wall clock of the store's zone (`timezone`);
/// `None` when either cannot be read, so a sample is still kept (for all
/// bands together) rather than the order's step refused.
pub fn sample_band(timezone: &str, entered: i64) -> Option<DayBand> {
    let zone = StoreZone::parse(timezone).ok()?;
    Some(DayBand::at(&zone, from_micros(entered).ok()?))
}

/// One kept duration to write: store, fulfilment, status, band, seconds,
/// when the order was done (stored micros).
pub type KeptSample = (i64, String, String, Option<&'static str>, i64, i64);

/// Of kept durations about to be written, in the order they are written,
/// the ones the trim after them leaves: the last
/// [`WINDOW_SAMPLES`](ordertrack_domain::eta::WINDOW_SAMPLES) of each
/// (store, fulfilment, status). A round that follows a busy spell holds
/// several windows' worth, and writing the rest only to delete them again
/// was most of what a round cost.
pub fn outliving_trim(samples: Vec<KeptSample>) -> Vec<KeptSample> {
    let window = ordertrack_domain::eta::WINDOW_SAMPLES;
    let outlives: Vec<bool> = {
        let mut left: std::collections::HashMap<(i64, &str, &str), usize> =
            std::collections::HashMap::new();
        for (store, fulfilment, state, ..) in &samples {
            *left.entry((*store, fulfilment, state)).or_default() += 1;
        }
        samples
            .iter()
            .map(|(store, fulfilment, state, ..)| {
                let count = left.entry((*store, fulfilment, state)).or_default();
                *count -= 1;
                *count < window
            })
            .collect()
    };
    samples
        .into_iter()
        .zip(outlives)
        .filter_map(|(sample, outlives)| outlives.then_some(sample))
        .collect()
}

/// The kept samples of every store with the store's zone and when each
/// sample's order entered its state (`at` less `seconds`): what migration
/// 20 gives each kept sample its band from.
pub const SAMPLES_TO_BAND_SQL: &str =
    "SELECT e.id, s.timezone, e.at - e.seconds * 1000000 AS entered
     FROM eta_samples e JOIN stores s ON s.id = e.store_id WHERE e.band IS NULL";
