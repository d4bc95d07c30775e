-- Access changes (a logout; a staff member removed or given another role)
-- join order events in the one event log, so that every instance learns of
-- them as it learns of order changes (the bus, the database catch-up), and
-- ends the streams they invalidate. Their rows name no store, order or
-- customer (so no stream replays them and no store sequence moves): `kind`
-- is 'access' and the payload says whose access changed. They take their
-- `id` from `event_log_head` like every event: still gap-free in commit order.
ALTER TABLE events
    ALTER COLUMN store_id DROP NOT NULL,
    ALTER COLUMN store_seq DROP NOT NULL,
    ALTER COLUMN order_id DROP NOT NULL,
    ALTER COLUMN customer_id DROP NOT NULL,
    ALTER COLUMN order_version DROP NOT NULL,
    ADD CONSTRAINT events_order_or_access CHECK (
        CASE WHEN kind = 'access'
             THEN store_id IS NULL AND store_seq IS NULL AND order_id IS NULL
                  AND customer_id IS NULL AND order_version IS NULL
             ELSE store_id IS NOT NULL AND store_seq IS NOT NULL AND order_id IS NOT NULL
                  AND customer_id IS NOT NULL AND order_version IS NOT NULL END);
