-- Reviews: one per order, by its customer, once the order is done (the
-- application decides when). The store's list reads newest first.
CREATE TABLE reviews (
    order_id    INTEGER PRIMARY KEY REFERENCES orders (id),
    store_id    INTEGER NOT NULL REFERENCES stores (id),
    customer_id INTEGER NOT NULL REFERENCES users (id),
    rating      INTEGER NOT NULL CHECK (rating BETWEEN 1 AND 5),
    comment     TEXT,
    created_at  INTEGER NOT NULL
);
CREATE INDEX reviews_store ON reviews (store_id, order_id);
