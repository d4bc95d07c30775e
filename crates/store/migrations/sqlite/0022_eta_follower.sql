-- ETA durations kept by a follower of the event log (docs/eta.md): the
-- event of a status change that finishes an order by the workflow's rules
-- records the done status it finished in (`finished_in`), and the
-- follower keeps that order's durations a moment later, in bulk, from
-- the events after `eta_follower.last_event_id`. A write that keeps its
-- durations itself (while its store is still learning) leaves it NULL.
ALTER TABLE events ADD COLUMN finished_in TEXT;
CREATE TABLE eta_follower (
    id            INTEGER PRIMARY KEY CHECK (id = 1),
    last_event_id BIGINT  NOT NULL
);
-- Every order finished so far kept its durations in its own write.
INSERT INTO eta_follower (id, last_event_id) SELECT 1, COALESCE(MAX(id), 0) FROM events;
