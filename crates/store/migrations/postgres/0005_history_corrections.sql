-- A status-history entry may be a correction: a manager or owner moving an
-- order outside the workflow's rules, its note saying why. Existing entries
-- are steps of the workflow.
ALTER TABLE status_history ADD COLUMN correction boolean NOT NULL DEFAULT false;
