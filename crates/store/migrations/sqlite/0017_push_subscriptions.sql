-- Web Push: customers' push subscriptions (a browser's push endpoint and
-- keys, for a customer account or for one order watched by its tracking
-- link), one job per (subscription, event) with its retry state, and the
-- position in the event log up to which jobs have been made (the cursor).
CREATE TABLE push_subscriptions (
    id             INTEGER PRIMARY KEY,
    -- Exactly one owner: a customer account, or an order (a tracking link).
    user_id        INTEGER REFERENCES users (id) ON DELETE CASCADE,
    order_id       INTEGER REFERENCES orders (id) ON DELETE CASCADE,
    endpoint       TEXT    NOT NULL,
    -- The browser's P-256 public key and auth secret, base64url.
    p256dh         TEXT    NOT NULL,
    auth           TEXT    NOT NULL,
    -- The log's position when it was made: it gets the events after it.
    after_event_id INTEGER NOT NULL,
    created_at     INTEGER NOT NULL,
    CHECK ((user_id IS NULL) <> (order_id IS NULL))
);
CREATE INDEX push_subscriptions_user ON push_subscriptions (user_id) WHERE user_id IS NOT NULL;
CREATE INDEX push_subscriptions_order ON push_subscriptions (order_id) WHERE order_id IS NOT NULL;
CREATE INDEX push_subscriptions_endpoint ON push_subscriptions (endpoint);

CREATE TABLE push_jobs (
    id              INTEGER PRIMARY KEY,
    subscription_id INTEGER NOT NULL REFERENCES push_subscriptions (id) ON DELETE CASCADE,
    event_id        INTEGER NOT NULL REFERENCES events (id),
    state           TEXT    NOT NULL CHECK (state IN ('pending', 'sent', 'failed')),
    attempts        INTEGER NOT NULL DEFAULT 0,
    -- The last attempt's HTTP status, or why it got no answer.
    http_status     INTEGER,
    error           TEXT,
    next_attempt_at INTEGER,
    -- An instance sending it holds it until then (a crashed one lets go).
    claimed_until   INTEGER,
    created_at      INTEGER NOT NULL,
    UNIQUE (subscription_id, event_id)
);
CREATE INDEX push_jobs_due ON push_jobs (next_attempt_at) WHERE state = 'pending';

CREATE TABLE push_cursor (
    id            INTEGER PRIMARY KEY CHECK (id = 1),
    last_event_id INTEGER NOT NULL
);
-- Subscriptions get the events committed after they exist: start at the end.
INSERT INTO push_cursor (id, last_event_id) SELECT 1, COALESCE(MAX(id), 0) FROM events;
