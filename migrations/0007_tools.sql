-- Tools: policy profiles (versioned), MCP connectors and the tools they expose, and every tool call a run
-- makes with the policy's decision on it.

CREATE TABLE policy_profiles (
    id         uuid PRIMARY KEY,
    tenant_id  uuid NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    name       text NOT NULL CHECK (length(name) BETWEEN 1 AND 200),
    -- Raised by every change; the calls a version decided keep pointing at it.
    version    integer NOT NULL DEFAULT 1,
    document   jsonb NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now(),
    UNIQUE (tenant_id, name)
);
SELECT enable_tenant_rls('policy_profiles');

-- Every version a profile has had, so a recorded decision can always be explained.
CREATE TABLE policy_profile_versions (
    tenant_id  uuid NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    profile_id uuid NOT NULL REFERENCES policy_profiles (id) ON DELETE CASCADE,
    version    integer NOT NULL,
    document   jsonb NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (tenant_id, profile_id, version)
);
SELECT enable_tenant_rls('policy_profile_versions');

-- The active profile cannot be deleted while named here (the API answers 409).
ALTER TABLE tenant_configs
    ADD CONSTRAINT tenant_configs_active_policy_profile_fk
    FOREIGN KEY (active_policy_profile_id) REFERENCES policy_profiles (id);

CREATE TABLE mcp_connectors (
    id                uuid PRIMARY KEY,
    tenant_id         uuid NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    -- The prefix of its tools' names (`name.tool`).
    name              text NOT NULL CHECK (name ~ '^[a-z][a-z0-9_]{0,31}$'),
    transport         text NOT NULL CHECK (transport IN ('streamable_http', 'stdio')),
    url               text,
    command           text,
    args              jsonb NOT NULL DEFAULT '[]',
    auth_kind         text NOT NULL DEFAULT 'none' CHECK (auth_kind IN ('none', 'api_key', 'bearer')),
    auth_header       text,
    -- The api key or bearer token, sealed like provider keys (the row's identity is the associated data).
    secret_ciphertext bytea,
    secret_nonce      bytea,
    secret_key_id     text,
    status            text NOT NULL DEFAULT 'pending' CHECK (status IN ('pending', 'active', 'error')),
    last_error        text,
    refreshed_at      timestamptz,
    created_at        timestamptz NOT NULL DEFAULT now(),
    updated_at        timestamptz NOT NULL DEFAULT now(),
    UNIQUE (tenant_id, name),
    CHECK ((transport = 'streamable_http') = (url IS NOT NULL)),
    CHECK ((transport = 'stdio') = (command IS NOT NULL)),
    CHECK ((auth_kind = 'none') = (secret_ciphertext IS NULL))
);
SELECT enable_tenant_rls('mcp_connectors');

CREATE TABLE discovered_tools (
    tenant_id    uuid NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    connector_id uuid NOT NULL REFERENCES mcp_connectors (id) ON DELETE CASCADE,
    name         text NOT NULL,
    description  text,
    input_schema jsonb NOT NULL,
    -- As the server sent them (`readOnlyHint`, `destructiveHint`, …); `read_only` is readOnlyHint = true.
    annotations  jsonb,
    read_only    boolean NOT NULL DEFAULT false,
    discovered_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (tenant_id, connector_id, name)
);
SELECT enable_tenant_rls('discovered_tools');

CREATE TABLE tool_calls (
    id               uuid PRIMARY KEY,
    tenant_id        uuid NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    run_id           uuid NOT NULL REFERENCES runs (id) ON DELETE CASCADE,
    -- The model step that asked for it (1 = the first answer of the turn) and its order within the step.
    step             integer NOT NULL,
    position         integer NOT NULL,
    -- The id the provider gave the call, echoed back with its result.
    provider_call_id text NOT NULL,
    connector_id     uuid REFERENCES mcp_connectors (id) ON DELETE SET NULL,
    -- `connector.tool` as the policy saw it (the model may have named a tool that does not exist).
    name             text NOT NULL,
    arguments        jsonb NOT NULL,
    decision         text NOT NULL CHECK (decision IN ('allow', 'require_approval', 'deny')),
    reason           text NOT NULL,
    policy_profile_id uuid,
    policy_version   integer,
    status           text NOT NULL
        CHECK (status IN ('awaiting_approval', 'running', 'completed', 'denied', 'failed')),
    decided_by       text,
    decided_at       timestamptz,
    -- What the model was given (after blocked fields and row limits), and a short summary for people.
    result           jsonb,
    result_summary   text,
    error_code       text,
    error            text,
    duration_ms      integer,
    created_at       timestamptz NOT NULL DEFAULT now(),
    completed_at     timestamptz,
    UNIQUE (run_id, step, position)
);
CREATE INDEX tool_calls_tenant_id_idx ON tool_calls (tenant_id, run_id);
SELECT enable_tenant_rls('tool_calls');

-- The tool steps of a run so far (the model's calls and their results, the answer's text), kept while
-- the run waits for an approval so that it can resume in any process, after any restart.
ALTER TABLE runs ADD COLUMN tool_state jsonb;
