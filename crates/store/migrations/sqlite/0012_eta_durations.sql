-- The ETA (docs/eta.md). When an order entered its current status, kept
-- on the order so a list of orders needs no history to place its window.
ALTER TABLE orders ADD COLUMN status_at BIGINT NOT NULL DEFAULT 0;
UPDATE orders SET status_at = COALESCE(
    (SELECT MAX(h.at) FROM status_history h WHERE h.order_id = orders.id), created_at);

-- Recent durations to done: a finished (not cancelled) order entered
-- `state` and was done `seconds` later (at `at`). Written in the same
-- transaction as the move to done; the most recent 200 per store,
-- fulfilment and state are kept.
CREATE TABLE eta_samples (
    id         INTEGER PRIMARY KEY,
    store_id   BIGINT NOT NULL REFERENCES stores (id),
    fulfilment TEXT   NOT NULL,
    state      TEXT   NOT NULL,
    seconds    BIGINT NOT NULL,
    at         BIGINT NOT NULL
);
CREATE INDEX eta_samples_recent ON eta_samples (store_id, fulfilment, state, id);
