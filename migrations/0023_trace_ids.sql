-- The OpenTelemetry trace of what caused a row, when traces are on: on runs, usage records and audit events.
-- Runs kept their request's id in `trace_id`; it moves to `request_id`, beside the trace.
ALTER TABLE runs ADD COLUMN request_id text;
ALTER TABLE runs NO FORCE ROW LEVEL SECURITY;
UPDATE runs SET request_id = trace_id, trace_id = NULL WHERE trace_id IS NOT NULL;
ALTER TABLE runs FORCE ROW LEVEL SECURITY;
ALTER TABLE usage_records ADD COLUMN trace_id text;
ALTER TABLE audit_events ADD COLUMN trace_id text;
