-- Reviews: one per order, by its customer, once the order is done (the
-- application decides when). The store's list reads newest first.
CREATE TABLE reviews (
    order_id    bigint PRIMARY KEY REFERENCES orders (id),
    store_id    bigint NOT NULL REFERENCES stores (id),
    customer_id bigint NOT NULL REFERENCES users (id),
    rating      bigint NOT NULL CHECK (rating BETWEEN 1 AND 5),
    comment     text,
    created_at  bigint NOT NULL
);
CREATE INDEX reviews_store ON reviews (store_id, order_id);
