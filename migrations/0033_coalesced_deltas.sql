-- Consecutive message deltas are stored as one row: its `data.text` is their text joined, `delta_pieces`
-- the byte length of each, and its `seq` the number of the last (the first is seq - cardinality + 1).
-- Readers give the pieces back one by one, so replay is the live stream again. NULL: one event.
ALTER TABLE run_events ADD COLUMN delta_pieces integer[];
