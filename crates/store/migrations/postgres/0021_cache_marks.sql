-- What instances' in-memory caches are checked against: `access` moves in
-- the transaction of every change to who a session is (a logout, a staff
-- role given, changed or taken away), `config` in the transaction of every
-- change to a store's settings or workflow. A request reads the marks
-- (one primary-key row) and uses a cached session or store only if it was
-- read at the marks it sees, so a change committed anywhere is seen by the
-- next request on every instance, whatever the bus delivered.
CREATE TABLE cache_marks (
    id     INTEGER PRIMARY KEY CHECK (id = 1),
    access BIGINT  NOT NULL,
    config BIGINT  NOT NULL
);
INSERT INTO cache_marks (id, access, config) VALUES (1, 0, 0);
