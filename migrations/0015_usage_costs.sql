-- What each model call cost, by the model catalog's prices, in exact decimal; and its tokens as every
-- provider reports them once normalised: cache reads and writes are part of the input, reasoning part of
-- the output. A model the catalog has no price for is recorded with no cost and `priced` false (never 0).

ALTER TABLE usage_records
    ADD COLUMN cached_input_tokens integer NOT NULL DEFAULT 0,
    ADD COLUMN cache_write_tokens integer NOT NULL DEFAULT 0,
    ADD COLUMN reasoning_tokens integer NOT NULL DEFAULT 0,
    ADD COLUMN cost_usd numeric(20, 10),
    ADD COLUMN priced boolean NOT NULL DEFAULT false,
    ADD CONSTRAINT usage_records_cost_is_priced CHECK ((cost_usd IS NOT NULL) = priced AND cost_usd >= 0);
