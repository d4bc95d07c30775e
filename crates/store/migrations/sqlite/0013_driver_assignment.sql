-- Driver assignment. A delivery order may have a driver (a user who is
-- the store's driver when assigned; the application checks). A store may
-- let its drivers take unassigned ready deliveries themselves (default:
-- no). A status-history entry may record an assignment change (the status
-- stays): 'assigned' with the driver, or 'unassigned'.
ALTER TABLE orders ADD COLUMN driver_id INTEGER REFERENCES users (id);
CREATE INDEX orders_driver ON orders (store_id, driver_id);
ALTER TABLE stores ADD COLUMN driver_self_assign INTEGER NOT NULL DEFAULT 0;
ALTER TABLE status_history ADD COLUMN assignment TEXT
    CHECK (assignment IN ('assigned', 'unassigned'));
ALTER TABLE status_history ADD COLUMN assigned_driver_id INTEGER;
