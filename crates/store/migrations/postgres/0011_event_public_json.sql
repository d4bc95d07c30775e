-- The event as watchers receive it (without its id), serialised once when
-- the event is written: the live fan-out and every replay send it as it is.
-- Events written before this column existed have none and are serialised
-- on reading.
ALTER TABLE events ADD COLUMN public_json TEXT;
