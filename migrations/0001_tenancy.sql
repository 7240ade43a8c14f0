-- Tenancy and access: tenants, users, API keys, tenant settings, the audit trail, and the row-level
-- security machinery every tenant-scoped table reuses.
--
-- Runs as the owner role. The role `switchboard_app` (LOGIN, NOSUPERUSER, NOBYPASSRLS) is created by the
-- service before migrations run, because roles belong to the cluster rather than to this database.

-- The tenant of the current transaction, set by the service with set_config('app.current_tenant_id', ..., true).
-- Unset means no tenant: every policy below then matches no row.
CREATE FUNCTION current_tenant_id() RETURNS uuid
LANGUAGE sql STABLE AS $$
    SELECT nullif(current_setting('app.current_tenant_id', true), '')::uuid
$$;

-- The one way a tenant-scoped table is protected: RLS enabled and forced (so the owner is bound too) and
-- one policy comparing tenant_id with the transaction's tenant, for reads and writes alike.
CREATE FUNCTION enable_tenant_rls(target regclass) RETURNS void
LANGUAGE plpgsql AS $$
BEGIN
    EXECUTE format('ALTER TABLE %s ENABLE ROW LEVEL SECURITY', target);
    EXECUTE format('ALTER TABLE %s FORCE ROW LEVEL SECURITY', target);
    EXECUTE format(
        'CREATE POLICY tenant_isolation ON %s USING (tenant_id = current_tenant_id()) '
        'WITH CHECK (tenant_id = current_tenant_id())', target);
END
$$;

-- The system tenant owns the shared documentation corpus.
CREATE TABLE tenants (
    id         uuid PRIMARY KEY,
    name       text NOT NULL CHECK (length(name) BETWEEN 1 AND 200),
    slug       text NOT NULL UNIQUE CHECK (slug ~ '^[a-z0-9][a-z0-9-]{1,62}$'),
    created_at timestamptz NOT NULL DEFAULT now()
);
INSERT INTO tenants (id, name, slug) VALUES ('00000000-0000-0000-0000-000000000000', 'System', 'system');

CREATE TABLE users (
    id           uuid PRIMARY KEY,
    tenant_id    uuid NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    actor_type   text NOT NULL CHECK (actor_type IN ('user', 'service_account')),
    external_id  text,
    display_name text,
    email        text,
    created_at   timestamptz NOT NULL DEFAULT now(),
    UNIQUE (tenant_id, external_id)
);
CREATE INDEX users_tenant_id_idx ON users (tenant_id);
SELECT enable_tenant_rls('users');

CREATE TABLE api_keys (
    id           uuid PRIMARY KEY,
    tenant_id    uuid NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    name         text NOT NULL CHECK (length(name) BETWEEN 1 AND 200),
    -- The public part of the key, used to find the row; the secret is only ever stored hashed.
    prefix       text NOT NULL UNIQUE,
    secret_hash  bytea NOT NULL,
    scopes       text[] NOT NULL CHECK (cardinality(scopes) > 0 AND scopes <@ ARRAY['admin', 'chat', 'runs']),
    user_id      uuid REFERENCES users (id) ON DELETE SET NULL,
    created_at   timestamptz NOT NULL DEFAULT now(),
    last_used_at timestamptz,
    expires_at   timestamptz,
    revoked_at   timestamptz
);
CREATE INDEX api_keys_tenant_id_idx ON api_keys (tenant_id);
SELECT enable_tenant_rls('api_keys');
-- Authentication happens before the tenant is known: it may read the one key whose prefix it names.
CREATE POLICY api_key_lookup ON api_keys FOR SELECT
    USING (prefix = current_setting('app.api_key_prefix', true));

CREATE TABLE tenant_configs (
    tenant_id                uuid PRIMARY KEY REFERENCES tenants (id) ON DELETE CASCADE,
    default_provider         text NOT NULL DEFAULT 'local',
    default_model            text NOT NULL DEFAULT 'switchboard-extractive',
    active_policy_profile_id uuid,
    monthly_budget_usd       numeric(14, 6) CHECK (monthly_budget_usd >= 0),
    multi_agent_enabled      boolean NOT NULL DEFAULT false,
    updated_at               timestamptz NOT NULL DEFAULT now()
);
SELECT enable_tenant_rls('tenant_configs');

-- No cascade from tenants: the trail outlives everything it describes.
CREATE TABLE audit_events (
    id          uuid PRIMARY KEY,
    tenant_id   uuid NOT NULL REFERENCES tenants (id),
    actor_type  text NOT NULL CHECK (actor_type IN ('operator', 'api_key', 'user', 'system')),
    actor_id    text,
    action      text NOT NULL,
    target_type text,
    target_id   text,
    details     jsonb NOT NULL DEFAULT '{}',
    request_id  text,
    created_at  timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX audit_events_tenant_id_idx ON audit_events (tenant_id, created_at DESC);
SELECT enable_tenant_rls('audit_events');

-- Append-only, whoever asks: a statement-level trigger rejects even an UPDATE or DELETE that matches no row.
CREATE FUNCTION reject_audit_mutation() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'audit_events is append-only: % is not allowed', TG_OP
        USING ERRCODE = 'insufficient_privilege';
END
$$;
CREATE TRIGGER audit_events_append_only
    BEFORE UPDATE OR DELETE OR TRUNCATE ON audit_events
    FOR EACH STATEMENT EXECUTE FUNCTION reject_audit_mutation();

-- The application role reads and writes rows, never the schema; later tables get the same grants by default.
GRANT USAGE ON SCHEMA public TO switchboard_app;
GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA public TO switchboard_app;
ALTER DEFAULT PRIVILEGES IN SCHEMA public GRANT SELECT, INSERT, UPDATE, DELETE ON TABLES TO switchboard_app;
ALTER DEFAULT PRIVILEGES IN SCHEMA public GRANT USAGE, SELECT ON SEQUENCES TO switchboard_app;
REVOKE ALL ON _sqlx_migrations FROM switchboard_app;
REVOKE UPDATE, DELETE, TRUNCATE ON audit_events FROM switchboard_app;
REVOKE INSERT, UPDATE, DELETE ON tenants FROM switchboard_app;
GRANT INSERT ON tenants TO switchboard_app;
