-- Reports read a store's orders by the day they were placed: this index
-- lets them read only the range asked for, in placing order.
CREATE INDEX orders_store_placed ON orders (store_id, created_at, id);
