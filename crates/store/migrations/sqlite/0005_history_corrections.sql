-- A status-history entry may be a correction: a manager or owner moving an
-- order outside the workflow's rules, its note saying why. Existing entries
-- are steps of the workflow.
ALTER TABLE status_history ADD COLUMN correction INTEGER NOT NULL DEFAULT 0
    CHECK (correction IN (0, 1));
