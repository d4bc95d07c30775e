-- Invitations to join a store's staff. Only a hash (SHA-256, hex) of the
-- token is kept: the token itself is shown once, to the owner who made it.
-- An invitation is single use: `used_at`/`used_by` are set by the one write
-- that also gives the membership.
CREATE TABLE invitations (
    id         INTEGER PRIMARY KEY,
    store_id   INTEGER NOT NULL REFERENCES stores (id) ON DELETE CASCADE,
    email      TEXT    NOT NULL,
    role       TEXT    NOT NULL,
    token_hash TEXT    NOT NULL UNIQUE,
    invited_by INTEGER NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    created_at INTEGER NOT NULL,
    expires_at INTEGER NOT NULL,
    used_at    INTEGER,
    used_by    INTEGER REFERENCES users (id) ON DELETE SET NULL
);
CREATE INDEX invitations_store ON invitations (store_id);
