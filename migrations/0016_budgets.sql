-- Budgets: a tenant's monthly budget (tenant_configs.monthly_budget_usd), each API key's and each end
-- user's monthly budget, and each agent run's budget in dollars and model steps. Spend is counted per
-- subject and month; before every model call the worst case is reserved in the same rows, under their
-- row locks, so concurrent calls can never spend past a budget together; after the call it is settled
-- to the actual cost, and released when the run fails, is cancelled or its process dies.

ALTER TABLE tenant_configs
    ADD COLUMN key_monthly_budget_usd numeric(14, 6) CHECK (key_monthly_budget_usd >= 0),
    ADD COLUMN end_user_monthly_budget_usd numeric(14, 6) CHECK (end_user_monthly_budget_usd >= 0),
    ADD COLUMN agent_run_budget_usd numeric(14, 6) CHECK (agent_run_budget_usd >= 0),
    ADD COLUMN agent_run_max_steps integer CHECK (agent_run_max_steps > 0);

-- One row per subject ('tenant', 'api_key:<id>', 'end_user:<id>', 'run:<id>') and period (the first day
-- of the month, UTC; a run's own budget has the month it started).
CREATE TABLE budget_spend (
    tenant_id         uuid NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    subject           text NOT NULL,
    period            date NOT NULL,
    spent_usd         numeric(20, 10) NOT NULL DEFAULT 0 CHECK (spent_usd >= 0),
    reserved_usd      numeric(20, 10) NOT NULL DEFAULT 0 CHECK (reserved_usd >= 0),
    -- The highest share of the budget (50, 80 or 100 %) already written to the audit log.
    audited_percent   smallint NOT NULL DEFAULT 0,
    PRIMARY KEY (tenant_id, subject, period)
);
SELECT enable_tenant_rls('budget_spend');

-- What a run has reserved and not yet settled: settled with its usage, released when it ends otherwise.
CREATE TABLE budget_reservations (
    id          uuid PRIMARY KEY,
    tenant_id   uuid NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    run_id      uuid NOT NULL REFERENCES runs (id) ON DELETE CASCADE,
    subjects    text[] NOT NULL,
    period      date NOT NULL,
    amount_usd  numeric(20, 10) NOT NULL CHECK (amount_usd >= 0),
    created_at  timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX budget_reservations_run_idx ON budget_reservations (tenant_id, run_id);
SELECT enable_tenant_rls('budget_reservations');
