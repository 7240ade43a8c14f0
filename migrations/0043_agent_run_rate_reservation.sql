-- An agent run's rate-limit reservation (issue 16): the tokens its request reserved at the door, from
-- which buckets, kept with the queued run so that whichever worker executes it corrects them to what it
-- used, as a chat turn does.
ALTER TABLE runs ADD COLUMN rate_reservation jsonb;
