-- What each account's e-mail looks like (its UTS #39 skeleton): no two
-- accounts may have confusable addresses (`аlice@…` with a Cyrillic `а` and
-- `alice@…`). Existing rows are filled in by the migration runner, which
-- computes skeletons; a row whose skeleton is taken already keeps NULL.
ALTER TABLE users ADD COLUMN email_skeleton TEXT;
CREATE UNIQUE INDEX users_email_skeleton ON users (email_skeleton);
