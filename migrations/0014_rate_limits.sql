-- Rate limits per API key, per tenant and per end user (requests and tokens per minute), kept here so that
-- every Switchboard process on this database shares them, and the count of running runs a tenant's cap is
-- checked against. See src/rate_limits/ for the algorithm (GCRA) and docs_corpus/usage-and-limits.md.

-- The limits a tenant's admin set. `subject` says whose: 'tenant' (the tenant as a whole), 'end_user'
-- (each end user apart, the same limit for all), or an API key's id. A null column is no limit of the
-- tenant's own: the operator's default (from the environment) applies, if any.
CREATE TABLE rate_limits (
    tenant_id           uuid NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    subject             text NOT NULL,
    requests_per_minute bigint CHECK (requests_per_minute > 0),
    tokens_per_minute   bigint CHECK (tokens_per_minute > 0),
    updated_at          timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (tenant_id, subject)
);
SELECT enable_tenant_rls('rate_limits');

-- One GCRA state per limited thing: `tat`, the theoretical arrival time, is when the bucket is full again.
-- A request costing c of a limit of L per minute is admitted when max(tat, now) + c·60 s/L <= now + 60 s,
-- and then moves `tat` there. `subject` is the key's id, '' for the tenant, or the end user's external id.
-- A row whose `tat` is past means a full bucket, exactly as no row does.
CREATE TABLE rate_limit_buckets (
    tenant_id uuid NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    scope     text NOT NULL CHECK (scope IN ('api_key', 'tenant', 'end_user')),
    subject   text NOT NULL,
    kind      text NOT NULL CHECK (kind IN ('requests', 'tokens')),
    tat       timestamptz NOT NULL,
    PRIMARY KEY (tenant_id, scope, subject, kind)
);
SELECT enable_tenant_rls('rate_limit_buckets');

-- Admission counts the tenant's running runs (the cap on concurrent runs): this keeps that count to the
-- few rows it is about, whatever the size of the tenant's history.
CREATE INDEX runs_running_idx ON runs (tenant_id) WHERE status = 'running';
