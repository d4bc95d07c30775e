-- Access changes (a logout; a staff member removed or given another role)
-- join order events in the one event log, so that every instance learns of
-- them as it learns of order changes, and ends the streams they invalidate.
-- Their rows name no store, order or customer (so no stream replays them):
-- `kind` is 'access' and the payload says whose access changed.
-- SQLite cannot drop NOT NULL in place: the table is rebuilt.
CREATE TABLE events_new (
    id            INTEGER PRIMARY KEY,
    store_id      INTEGER REFERENCES stores (id),
    store_seq     INTEGER,
    order_id      INTEGER REFERENCES orders (id),
    customer_id   INTEGER,
    kind          TEXT    NOT NULL,
    order_version INTEGER,
    payload       TEXT    NOT NULL,
    created_at    INTEGER NOT NULL,
    UNIQUE (store_id, store_seq),
    CHECK (CASE WHEN kind = 'access'
                THEN store_id IS NULL AND store_seq IS NULL AND order_id IS NULL
                     AND customer_id IS NULL AND order_version IS NULL
                ELSE store_id IS NOT NULL AND store_seq IS NOT NULL AND order_id IS NOT NULL
                     AND customer_id IS NOT NULL AND order_version IS NOT NULL END)
);
INSERT INTO events_new (id, store_id, store_seq, order_id, customer_id, kind, order_version,
                        payload, created_at)
SELECT id, store_id, store_seq, order_id, customer_id, kind, order_version, payload, created_at
FROM events;
DROP TABLE events;
ALTER TABLE events_new RENAME TO events;
CREATE INDEX events_order ON events (order_id, id);
CREATE INDEX events_customer ON events (customer_id, id);
