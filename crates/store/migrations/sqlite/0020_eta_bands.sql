-- ETA durations per band of the day (docs/eta.md): each kept duration
-- records the band of the store's wall clock (`morning`, `lunch`,
-- `afternoon`, `evening`, `night`) in which its order entered the state.
-- The kept rows are given theirs after this script, from when their order
-- entered the state (`at` less `seconds`) in their store's time zone (SQL
-- cannot read the zone rules); a row whose band cannot be told stays NULL
-- and counts only with all bands together. The kept rows are still trimmed
-- per store, fulfilment and state (index `eta_samples_recent`).
ALTER TABLE eta_samples ADD COLUMN band TEXT;
