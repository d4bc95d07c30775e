-- Network printers (ESC/POS over raw TCP). A store's printers: where each
-- is (`host`, `port`), the kitchen stations whose tickets it prints (a JSON
-- array of names) and whether it prints the receipt. `print_trigger` is the
-- workflow state whose entry prints an order (default: confirmed).
-- A print job is one ticket or receipt for one printer: queued until it is
-- sent, `failed` (with why) while it waits for its next attempt or after
-- its last, `printed` once the printer took it. `print_cursor` is the
-- position in the event log up to which jobs have been made: it moves in
-- the transaction that writes them, so a restart neither loses nor repeats
-- a job. It starts at the log's end: earlier orders are not printed.
ALTER TABLE stores ADD COLUMN print_trigger TEXT NOT NULL DEFAULT 'confirmed';
CREATE TABLE printers (
    id         INTEGER PRIMARY KEY,
    store_id   INTEGER NOT NULL REFERENCES stores (id),
    name       TEXT    NOT NULL,
    host       TEXT    NOT NULL,
    port       INTEGER NOT NULL CHECK (port BETWEEN 1 AND 65535),
    stations   TEXT    NOT NULL DEFAULT '[]',
    receipts   INTEGER NOT NULL DEFAULT 0,
    enabled    INTEGER NOT NULL DEFAULT 1,
    created_at INTEGER NOT NULL
);
CREATE INDEX printers_store ON printers (store_id, id);
CREATE TABLE print_jobs (
    id              INTEGER PRIMARY KEY,
    order_id        INTEGER NOT NULL REFERENCES orders (id),
    store_id        INTEGER NOT NULL REFERENCES stores (id),
    printer_id      INTEGER NOT NULL REFERENCES printers (id) ON DELETE CASCADE,
    kind            TEXT    NOT NULL CHECK (kind IN ('ticket', 'receipt')),
    station         TEXT,
    status          TEXT    NOT NULL DEFAULT 'queued'
        CHECK (status IN ('queued', 'printed', 'failed')),
    attempts        INTEGER NOT NULL DEFAULT 0,
    last_error      TEXT,
    next_attempt_at INTEGER,
    created_at      INTEGER NOT NULL,
    printed_at      INTEGER
);
CREATE INDEX print_jobs_order ON print_jobs (order_id, id);
CREATE INDEX print_jobs_due ON print_jobs (next_attempt_at) WHERE next_attempt_at IS NOT NULL;
CREATE TABLE print_cursor (
    id       INTEGER PRIMARY KEY CHECK (id = 1),
    position INTEGER NOT NULL
);
INSERT INTO print_cursor (id, position) SELECT 1, COALESCE(MAX(id), 0) FROM events;
