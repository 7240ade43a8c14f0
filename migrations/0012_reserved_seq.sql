-- A run's events are published to followers before they are written (in batches). Before an event is
-- published its sequence number is reserved here, a block at a time, so that whoever closes a run whose
-- process died numbers the closing event past anything a follower may have seen: a sequence number once
-- sent never means another event.

ALTER TABLE runs ADD COLUMN reserved_seq bigint NOT NULL DEFAULT 0;
