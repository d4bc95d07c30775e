-- Per-day report rollups (docs/reports.md): one row per store and calendar
-- day in the store's time zone (the day orders were placed), kept in the
-- same transaction as each order's placing and each change between open,
-- done and cancelled. `times` holds that day's finished orders' time in
-- each state and to done as histograms (crates/domain/src/rollup.rs).
CREATE TABLE report_days (
    store_id      BIGINT NOT NULL REFERENCES stores (id),
    day           TEXT   NOT NULL,
    orders        BIGINT NOT NULL DEFAULT 0,
    completed     BIGINT NOT NULL DEFAULT 0,
    cancelled     BIGINT NOT NULL DEFAULT 0,
    revenue_minor BIGINT NOT NULL DEFAULT 0,
    times         BYTEA  NOT NULL DEFAULT ''::bytea,
    PRIMARY KEY (store_id, day)
);

-- The time zone a store's rollups were built in. A store without a row, or
-- whose zone has changed since, is rebuilt from its orders (at start, and
-- when its zone changes); until then its reports read the orders.
CREATE TABLE report_rollups (
    store_id BIGINT NOT NULL PRIMARY KEY REFERENCES stores (id),
    timezone TEXT   NOT NULL
);
