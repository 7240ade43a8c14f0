-- Tenants' own provider credentials (BYOK), sealed with the master key, and the fallback model.

CREATE TABLE provider_credentials (
    tenant_id      uuid NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    provider       text NOT NULL CHECK (provider IN ('openai', 'anthropic', 'gemini', 'openai_compatible')),
    base_url       text,
    default_model  text,
    key_ciphertext bytea NOT NULL,
    key_nonce      bytea NOT NULL,
    -- Which master key sealed it; rotation re-seals rows whose id is not the current one.
    key_id         text NOT NULL,
    created_at     timestamptz NOT NULL DEFAULT now(),
    updated_at     timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (tenant_id, provider)
);
SELECT enable_tenant_rls('provider_credentials');

ALTER TABLE tenant_configs ADD COLUMN fallback_model text;
