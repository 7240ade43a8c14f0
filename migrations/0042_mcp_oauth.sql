-- OAuth 2.1 for connectors (issue 22, item 1): a connector whose server wants OAuth is authorized by an
-- admin in a browser; its tokens are sealed in the credential columns, refreshed before they expire, and a
-- refresh the authorization server refuses puts it in `needs_authorization`.
ALTER TABLE mcp_connectors DROP CONSTRAINT mcp_connectors_auth_kind_check;
ALTER TABLE mcp_connectors ADD CONSTRAINT mcp_connectors_auth_kind_check
    CHECK (auth_kind IN ('none', 'api_key', 'bearer', 'oauth'));
ALTER TABLE mcp_connectors DROP CONSTRAINT mcp_connectors_status_check;
ALTER TABLE mcp_connectors ADD CONSTRAINT mcp_connectors_status_check
    CHECK (status IN ('pending', 'active', 'error', 'needs_authorization'));
-- An OAuth connector has no credential until it is authorized.
DO $$
DECLARE
    found text;
BEGIN
    SELECT conname INTO found FROM pg_constraint
    WHERE conrelid = 'mcp_connectors'::regclass AND contype = 'c'
      AND pg_get_constraintdef(oid) LIKE '%secret_ciphertext IS NULL%';
    EXECUTE format('ALTER TABLE mcp_connectors DROP CONSTRAINT %I', found);
END $$;
ALTER TABLE mcp_connectors ADD CONSTRAINT mcp_connectors_secret_check
    CHECK (auth_kind = 'oauth' OR (auth_kind = 'none') = (secret_ciphertext IS NULL));
-- What is not secret about the grant: the scope asked for, and once authorized the issuer, token endpoint,
-- client id, resource indicator (RFC 8707) and the tokens' lifetime. The tokens are in secret_*.
ALTER TABLE mcp_connectors ADD COLUMN oauth jsonb;
ALTER TABLE mcp_connectors ADD COLUMN token_expires_at timestamptz;

-- Authorizations started and not yet completed. The callback comes from the admin's browser without an
-- API key: it names its row by the SHA-256 of its `state`, deletes it (single use) and learns the tenant.
CREATE TABLE mcp_oauth_states (
    state_hash         bytea PRIMARY KEY,
    tenant_id          uuid NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    connector_id       uuid NOT NULL REFERENCES mcp_connectors (id) ON DELETE CASCADE,
    -- Who started it, for the audit trail of its completion.
    actor_type         text NOT NULL CHECK (actor_type IN ('operator', 'api_key', 'user', 'system')),
    actor_id           text,
    -- The token endpoint, client id, resource and redirect URI (nothing secret).
    flow               jsonb NOT NULL,
    -- The PKCE verifier and the client's secret, if it has one, sealed to the row.
    sealed_ciphertext  bytea NOT NULL,
    sealed_nonce       bytea NOT NULL,
    sealed_key_id      text NOT NULL,
    expires_at         timestamptz NOT NULL,
    created_at         timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX mcp_oauth_states_tenant_id_idx ON mcp_oauth_states (tenant_id, connector_id);
SELECT enable_tenant_rls('mcp_oauth_states');
-- The callback may see and delete the one row whose state hash the transaction names.
CREATE POLICY mcp_oauth_state_lookup ON mcp_oauth_states FOR SELECT
    USING (state_hash = decode(current_setting('app.oauth_state_hash', true), 'hex'));
CREATE POLICY mcp_oauth_state_consume ON mcp_oauth_states FOR DELETE
    USING (state_hash = decode(current_setting('app.oauth_state_hash', true), 'hex'));
