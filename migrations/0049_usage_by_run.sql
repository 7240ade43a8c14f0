-- A run's usage is read by its run: every non-streamed answer on the OpenAI-compatible and Anthropic
-- doors reports it, as does `GET /api/v1/runs/{id}`. Without an index that read scanned all of the
-- tenant's usage records, so it grew with the tenant's history (0.26 ms a turn at two thousand records).
CREATE INDEX usage_records_run_idx ON usage_records (run_id) WHERE run_id IS NOT NULL;
