-- Times are UTC microseconds since the Unix epoch (portable and sortable).

CREATE TABLE users (
    id            INTEGER PRIMARY KEY,
    email         TEXT    NOT NULL UNIQUE,
    name          TEXT    NOT NULL,
    password_hash TEXT    NOT NULL,
    is_admin      INTEGER NOT NULL DEFAULT 0,
    created_at    INTEGER NOT NULL
);

CREATE TABLE sessions (
    id         TEXT    PRIMARY KEY,
    user_id    INTEGER NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    expires_at INTEGER NOT NULL,
    created_at INTEGER NOT NULL
);
CREATE INDEX sessions_user ON sessions (user_id);

CREATE TABLE stores (
    id             INTEGER PRIMARY KEY,
    slug           TEXT    NOT NULL UNIQUE,
    name           TEXT    NOT NULL,
    currency       TEXT    NOT NULL,
    workflow       TEXT    NOT NULL,
    order_prefix   TEXT    NOT NULL,
    last_order_seq INTEGER NOT NULL DEFAULT 0,
    last_event_seq INTEGER NOT NULL DEFAULT 0,
    created_at     INTEGER NOT NULL
);

CREATE TABLE memberships (
    user_id    INTEGER NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    store_id   INTEGER NOT NULL REFERENCES stores (id) ON DELETE CASCADE,
    role       TEXT    NOT NULL,
    created_at INTEGER NOT NULL,
    PRIMARY KEY (user_id, store_id)
);
CREATE INDEX memberships_store ON memberships (store_id);

CREATE TABLE products (
    id          INTEGER PRIMARY KEY,
    store_id    INTEGER NOT NULL REFERENCES stores (id),
    name        TEXT    NOT NULL,
    description TEXT    NOT NULL DEFAULT '',
    price_minor INTEGER NOT NULL CHECK (price_minor >= 0),
    station     TEXT    NOT NULL,
    available   INTEGER NOT NULL DEFAULT 1,
    created_at  INTEGER NOT NULL
);
CREATE INDEX products_store ON products (store_id, id);

CREATE TABLE orders (
    id             INTEGER PRIMARY KEY,
    store_id       INTEGER NOT NULL REFERENCES stores (id),
    number         TEXT    NOT NULL,
    customer_id    INTEGER NOT NULL REFERENCES users (id),
    status         TEXT    NOT NULL,
    version        INTEGER NOT NULL,
    total_minor    INTEGER NOT NULL,
    currency       TEXT    NOT NULL,
    fulfilment     TEXT    NOT NULL CHECK (fulfilment IN ('pickup', 'delivery')),
    address        TEXT,
    notes          TEXT,
    tracking_token TEXT    NOT NULL UNIQUE,
    created_at     INTEGER NOT NULL,
    updated_at     INTEGER NOT NULL,
    UNIQUE (store_id, number)
);
CREATE INDEX orders_customer ON orders (customer_id, id DESC);
CREATE INDEX orders_customer_status ON orders (customer_id, status, id DESC);
CREATE INDEX orders_store ON orders (store_id, id DESC);
CREATE INDEX orders_store_status ON orders (store_id, status, id DESC);

CREATE TABLE order_items (
    id               INTEGER PRIMARY KEY,
    order_id         INTEGER NOT NULL REFERENCES orders (id),
    position         INTEGER NOT NULL,
    product_id       INTEGER NOT NULL REFERENCES products (id),
    name             TEXT    NOT NULL,
    quantity         INTEGER NOT NULL CHECK (quantity > 0),
    unit_price_minor INTEGER NOT NULL,
    notes            TEXT,
    station          TEXT    NOT NULL,
    status           TEXT    NOT NULL CHECK (status IN ('queued', 'preparing', 'ready'))
);
CREATE INDEX order_items_order ON order_items (order_id, position);

CREATE TABLE status_history (
    id          INTEGER PRIMARY KEY,
    order_id    INTEGER NOT NULL REFERENCES orders (id),
    from_status TEXT,
    to_status   TEXT    NOT NULL,
    actor_id    INTEGER NOT NULL REFERENCES users (id),
    actor_role  TEXT    NOT NULL,
    note        TEXT,
    at          INTEGER NOT NULL
);
CREATE INDEX status_history_order ON status_history (order_id, id);

CREATE TRIGGER status_history_no_update BEFORE UPDATE ON status_history
BEGIN
    SELECT RAISE(ABORT, 'status history is append-only');
END;
CREATE TRIGGER status_history_no_delete BEFORE DELETE ON status_history
BEGIN
    SELECT RAISE(ABORT, 'status history is append-only');
END;

-- One row per change, written in the change's transaction: the outbox that
-- live streams replay from. `id` is the global position (gap-free in commit
-- order: one writer assigns it); `store_seq` the per-store position.
CREATE TABLE events (
    id            INTEGER PRIMARY KEY,
    store_id      INTEGER NOT NULL REFERENCES stores (id),
    store_seq     INTEGER NOT NULL,
    order_id      INTEGER NOT NULL REFERENCES orders (id),
    customer_id   INTEGER NOT NULL,
    kind          TEXT    NOT NULL,
    order_version INTEGER NOT NULL,
    payload       TEXT    NOT NULL,
    created_at    INTEGER NOT NULL,
    UNIQUE (store_id, store_seq)
);
CREATE INDEX events_order ON events (order_id, id);
CREATE INDEX events_customer ON events (customer_id, id);

CREATE TABLE idempotency_keys (
    customer_id  INTEGER NOT NULL REFERENCES users (id),
    key          TEXT    NOT NULL,
    request_hash TEXT    NOT NULL,
    order_id     INTEGER NOT NULL REFERENCES orders (id),
    created_at   INTEGER NOT NULL,
    PRIMARY KEY (customer_id, key)
);
