-- Conversations, the runs that answer them, the ordered events of each run (the source of SSE replay and
-- run logs), and the usage each run consumed.

CREATE TABLE chat_sessions (
    id           uuid PRIMARY KEY,
    tenant_id    uuid NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    session_type text NOT NULL DEFAULT 'chat'
        CHECK (session_type IN ('chat', 'workspace', 'onboarding', 'integration')),
    workspace_id uuid,
    title        text,
    archived     boolean NOT NULL DEFAULT false,
    api_key_id   uuid,
    user_id      uuid REFERENCES users (id) ON DELETE SET NULL,
    created_at   timestamptz NOT NULL DEFAULT now(),
    updated_at   timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX chat_sessions_tenant_id_idx ON chat_sessions (tenant_id, updated_at DESC);
SELECT enable_tenant_rls('chat_sessions');

CREATE TABLE runs (
    id            uuid PRIMARY KEY,
    tenant_id     uuid NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    session_id    uuid REFERENCES chat_sessions (id) ON DELETE CASCADE,
    kind          text NOT NULL CHECK (kind IN ('chat', 'agent')),
    status        text NOT NULL
        CHECK (status IN ('queued', 'running', 'awaiting_approval', 'succeeded', 'failed', 'cancelled')),
    provider      text,
    model         text,
    is_byok       boolean NOT NULL DEFAULT false,
    error_code    text,
    error_message text,
    trace_id      text,
    first_token_ms integer,
    latency_ms    integer,
    created_at    timestamptz NOT NULL DEFAULT now(),
    finished_at   timestamptz
);
CREATE INDEX runs_tenant_id_idx ON runs (tenant_id, created_at DESC);
CREATE INDEX runs_session_id_idx ON runs (session_id);
SELECT enable_tenant_rls('runs');

CREATE TABLE chat_messages (
    id            uuid PRIMARY KEY,
    tenant_id     uuid NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    session_id    uuid NOT NULL REFERENCES chat_sessions (id) ON DELETE CASCADE,
    run_id        uuid REFERENCES runs (id) ON DELETE SET NULL,
    role          text NOT NULL CHECK (role IN ('system', 'user', 'assistant', 'tool')),
    content       text NOT NULL,
    -- `incomplete`: an answer cut short by a failure or a cancellation, kept as far as it got.
    status        text NOT NULL DEFAULT 'complete' CHECK (status IN ('complete', 'incomplete')),
    tool_calls    jsonb NOT NULL DEFAULT '[]',
    citations     jsonb NOT NULL DEFAULT '[]',
    input_tokens  integer,
    output_tokens integer,
    total_tokens  integer,
    model_used    text,
    provider_used text,
    is_byok       boolean,
    created_at    timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX chat_messages_tenant_id_idx ON chat_messages (tenant_id);
CREATE INDEX chat_messages_session_id_idx ON chat_messages (session_id, created_at, id);
SELECT enable_tenant_rls('chat_messages');

CREATE TABLE run_events (
    tenant_id  uuid NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    run_id     uuid NOT NULL REFERENCES runs (id) ON DELETE CASCADE,
    seq        bigint NOT NULL CHECK (seq > 0),
    event_type text NOT NULL,
    data       jsonb NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (run_id, seq)
);
CREATE INDEX run_events_tenant_id_idx ON run_events (tenant_id);
SELECT enable_tenant_rls('run_events');

CREATE TABLE usage_records (
    id            uuid PRIMARY KEY,
    tenant_id     uuid NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    -- Accounting outlives the conversation it paid for.
    run_id        uuid REFERENCES runs (id) ON DELETE SET NULL,
    api_key_id    uuid,
    user_id       uuid,
    provider      text NOT NULL,
    model         text NOT NULL,
    input_tokens  integer NOT NULL CHECK (input_tokens >= 0),
    output_tokens integer NOT NULL CHECK (output_tokens >= 0),
    -- `provider`: the provider's own report; `estimated`: counted here with tiktoken.
    token_source  text NOT NULL CHECK (token_source IN ('provider', 'estimated')),
    is_byok       boolean NOT NULL,
    cost_micro_usd bigint,
    created_at    timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX usage_records_tenant_id_idx ON usage_records (tenant_id, created_at);
SELECT enable_tenant_rls('usage_records');

-- Events are a log: once written, never rewritten.
REVOKE UPDATE ON run_events FROM switchboard_app;
