-- A monthly budget of one API key's own, set by the tenant's admin when the key is made or later. Where
-- it is set it replaces the tenant's `key_monthly_budget_usd` for that key (tighter or looser); spend is
-- still counted in the key's one `budget_spend` row (`api_key:<id>`), so changing which limit applies
-- keeps what the key already spent this month. The row's RLS and index come with `api_keys` (0001).

ALTER TABLE api_keys
    ADD COLUMN monthly_budget_usd numeric(14, 6) CHECK (monthly_budget_usd >= 0);
