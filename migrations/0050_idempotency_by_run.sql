-- When conversations go (retention, an end user's erasure), their runs' idempotency keys are deleted by
-- run (`runs::store::strip_runs_of_sessions`): without an index each pass scanned the tenant's keys.
CREATE INDEX idempotency_keys_run_idx ON idempotency_keys (run_id) WHERE run_id IS NOT NULL;
