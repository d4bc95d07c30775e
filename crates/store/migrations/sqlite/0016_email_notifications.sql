-- Customer e-mail: the states whose entry mails the customer and the
-- store's own templates (NULL: the built-in one), customers who opted out,
-- one mail job per (event, recipient) with its retry state, and the
-- position in the event log up to which jobs have been made (the outbox
-- cursor).
ALTER TABLE stores ADD COLUMN email_states TEXT NOT NULL
    DEFAULT '["confirmed","ready","out_for_delivery","delivered","cancelled"]';
ALTER TABLE stores ADD COLUMN email_subject TEXT;
ALTER TABLE stores ADD COLUMN email_body TEXT;

CREATE TABLE email_opt_outs (
    user_id INTEGER PRIMARY KEY REFERENCES users (id),
    at      INTEGER NOT NULL
);

CREATE TABLE email_jobs (
    id              INTEGER PRIMARY KEY,
    event_id        INTEGER NOT NULL REFERENCES events (id),
    user_id         INTEGER NOT NULL REFERENCES users (id),
    state           TEXT    NOT NULL
        CHECK (state IN ('pending', 'sent', 'failed', 'suppressed')),
    attempts        INTEGER NOT NULL DEFAULT 0,
    error           TEXT,
    next_attempt_at INTEGER,
    last_attempt_at INTEGER,
    -- An instance sending it holds it until then (a crashed one lets go).
    claimed_until   INTEGER,
    created_at      INTEGER NOT NULL,
    -- One mail per event and recipient, however often the log is read.
    UNIQUE (event_id, user_id)
);
CREATE INDEX email_jobs_due ON email_jobs (next_attempt_at, id) WHERE state = 'pending';

CREATE TABLE email_cursor (
    id            INTEGER PRIMARY KEY CHECK (id = 1),
    last_event_id INTEGER NOT NULL
);
-- Mail follows the changes made after it exists: start at the end.
INSERT INTO email_cursor (id, last_event_id) SELECT 1, COALESCE(MAX(id), 0) FROM events;
