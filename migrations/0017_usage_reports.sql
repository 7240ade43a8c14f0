-- Usage reports group by end user and by day: usage records now carry the run's end user, and the
-- report's period filter reads an index led by the tenant. `cost_micro_usd` (never written) is gone:
-- the cost is `cost_usd`, exact.

ALTER TABLE usage_records DROP COLUMN cost_micro_usd;
CREATE INDEX usage_records_created_idx ON usage_records (tenant_id, created_at);
