-- A store's own workflows, versioned: each upload is a new version (from 1
-- up, per store) holding the whole definition as JSON; nothing is changed
-- or deleted, because orders keep the version they were placed under.
-- Version 0 is the built-in named in `stores.workflow`, which every store
-- without an upload runs; existing orders were placed under it.
CREATE TABLE store_workflows (
    store_id   BIGINT NOT NULL REFERENCES stores (id),
    version    BIGINT NOT NULL CHECK (version > 0),
    name       TEXT   NOT NULL,
    definition TEXT   NOT NULL,
    created_at BIGINT NOT NULL,
    PRIMARY KEY (store_id, version)
);
ALTER TABLE orders ADD COLUMN workflow_version BIGINT NOT NULL DEFAULT 0;
