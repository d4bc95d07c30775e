-- Idempotency keys of changes other than placing an order (which keeps its
-- key on the order): one row per (scope, key), claimed before the change
-- runs and holding its response once it has answered, so a retry with the
-- same key gets that response replayed instead of running the change again.
-- Rows are dropped once older than the server's retention.
CREATE TABLE change_keys (
    -- Who the key belongs to (a hash of the session's token).
    scope        TEXT    NOT NULL,
    key          TEXT    NOT NULL,
    -- A hash of the request (method, path, body): the same key with
    -- another request is refused.
    fingerprint  TEXT    NOT NULL,
    -- NULL while the first request is still running.
    status       INTEGER,
    content_type TEXT,
    location     TEXT,
    body         BLOB,
    created_at   INTEGER NOT NULL,
    PRIMARY KEY (scope, key)
);
CREATE INDEX change_keys_created ON change_keys (created_at);
