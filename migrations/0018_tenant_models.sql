-- Models a tenant declares for its own OpenAI-compatible server: what the catalog knows of the hosted
-- providers' models (context window, output ceiling, prices per million tokens), for a model only the
-- tenant knows. History is trimmed to the window; usage is priced and budgeted with the prices.

CREATE TABLE tenant_models (
    tenant_id          uuid NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    name               text NOT NULL CHECK (length(name) BETWEEN 1 AND 200),
    context_window     integer NOT NULL CHECK (context_window > 0),
    max_output_tokens  integer NOT NULL CHECK (max_output_tokens > 0),
    input_usd          numeric(20, 10) NOT NULL CHECK (input_usd >= 0),
    output_usd         numeric(20, 10) NOT NULL CHECK (output_usd >= 0),
    cached_input_usd   numeric(20, 10) CHECK (cached_input_usd >= 0),
    cache_write_usd    numeric(20, 10) CHECK (cache_write_usd >= 0),
    updated_at         timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (tenant_id, name)
);
SELECT enable_tenant_rls('tenant_models');
