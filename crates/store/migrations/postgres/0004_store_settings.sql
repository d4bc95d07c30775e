-- What a store is and offers beyond its name: whether it is live
-- (`pending_approval` until a platform admin approves it), the time zone its
-- opening hours are read in, the pause switch, the fulfilment kinds it
-- offers (comma-separated) and its opening hours (JSON per weekday; NULL:
-- open around the clock). Existing stores are live, open, and offer both.
ALTER TABLE stores ADD COLUMN status TEXT NOT NULL DEFAULT 'active'
    CHECK (status IN ('active', 'pending_approval'));
ALTER TABLE stores ADD COLUMN timezone TEXT NOT NULL DEFAULT 'UTC';
ALTER TABLE stores ADD COLUMN accepting_orders BOOLEAN NOT NULL DEFAULT TRUE;
ALTER TABLE stores ADD COLUMN fulfilment TEXT NOT NULL DEFAULT 'pickup,delivery';
ALTER TABLE stores ADD COLUMN opening_hours TEXT;
