-- Webhooks: a store's endpoints, one delivery per (endpoint, event) with
-- its retry state, and the position in the event log up to which
-- deliveries have been made (the outbox cursor).
CREATE TABLE webhook_endpoints (
    id                    INTEGER PRIMARY KEY,
    store_id              INTEGER NOT NULL REFERENCES stores (id),
    url                   TEXT    NOT NULL,
    -- JSON array of event type names (`order.created`, ...) or ["*"].
    events                TEXT    NOT NULL,
    enabled               INTEGER NOT NULL,
    secret                TEXT    NOT NULL,
    -- After a rotation the old secret signs too, until `previous_secret_until`.
    previous_secret       TEXT,
    previous_secret_until INTEGER,
    -- Why delivery turned the endpoint off (it answered 410 Gone).
    disabled_reason       TEXT,
    -- The log's position when it was added: it gets the events after it.
    after_event_id        INTEGER NOT NULL,
    created_at            INTEGER NOT NULL
);
CREATE INDEX webhook_endpoints_store ON webhook_endpoints (store_id, id);

CREATE TABLE webhook_deliveries (
    id              INTEGER PRIMARY KEY,
    webhook_id      INTEGER NOT NULL REFERENCES webhook_endpoints (id) ON DELETE CASCADE,
    event_id        INTEGER NOT NULL REFERENCES events (id),
    state           TEXT    NOT NULL CHECK (state IN ('pending', 'delivered', 'failed')),
    attempts        INTEGER NOT NULL DEFAULT 0,
    http_status     INTEGER,
    duration_ms     INTEGER,
    error           TEXT,
    next_attempt_at INTEGER,
    last_attempt_at INTEGER,
    -- An instance delivering it holds it until then (a crashed one lets go).
    claimed_until   INTEGER,
    created_at      INTEGER NOT NULL,
    UNIQUE (webhook_id, event_id)
);
-- Each endpoint's pending deliveries in event order: its head is the next to go.
CREATE INDEX webhook_deliveries_pending ON webhook_deliveries (webhook_id, event_id)
    WHERE state = 'pending';
CREATE INDEX webhook_deliveries_log ON webhook_deliveries (webhook_id, id);

CREATE TABLE webhook_cursor (
    id            INTEGER PRIMARY KEY CHECK (id = 1),
    last_event_id INTEGER NOT NULL
);
-- Endpoints get the events committed after they exist: start at the end.
INSERT INTO webhook_cursor (id, last_event_id) SELECT 1, COALESCE(MAX(id), 0) FROM events;
