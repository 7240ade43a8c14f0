-- The `/v1/responses` door: a response is a run, and the run keeps the request it answered (the whole
-- conversation as input items, instructions, tools and options, in the Responses API's own terms), so
-- that `GET /v1/responses/{id}` can show it again and a later request naming it as
-- `previous_response_id` can continue it. Null for the runs of every other door.

ALTER TABLE runs ADD COLUMN request jsonb;
