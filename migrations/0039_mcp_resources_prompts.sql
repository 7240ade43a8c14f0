-- MCP resources and prompts (issue 22, item 3): what each connector's server lists besides its tools,
-- found by the same discovery, and the resources attached to a conversation as context.

-- A resource a server lists, or a template of URIs (RFC 6570) it reads on demand (`template`).
CREATE TABLE discovered_resources (
    tenant_id     uuid NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    connector_id  uuid NOT NULL REFERENCES mcp_connectors (id) ON DELETE CASCADE,
    uri           text NOT NULL,
    template      boolean NOT NULL,
    name          text NOT NULL,
    title         text,
    description   text,
    mime_type     text,
    size_bytes    bigint,
    discovered_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (tenant_id, connector_id, template, uri)
);
SELECT enable_tenant_rls('discovered_resources');

CREATE TABLE discovered_prompts (
    tenant_id     uuid NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    connector_id  uuid NOT NULL REFERENCES mcp_connectors (id) ON DELETE CASCADE,
    name          text NOT NULL,
    title         text,
    description   text,
    -- [{name, description, required}], as the server listed them.
    arguments     jsonb NOT NULL DEFAULT '[]',
    discovered_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (tenant_id, connector_id, name)
);
SELECT enable_tenant_rls('discovered_prompts');

-- A resource attached to a conversation: read once through the policy in force for whoever attached it
-- (blocked fields removed, rows cut), and kept as read, so every later turn's prompt holds the same text
-- and the record says what the model saw. Attaching the same URI again reads it afresh.
CREATE TABLE session_resources (
    id                uuid PRIMARY KEY,
    tenant_id         uuid NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    session_id        uuid NOT NULL REFERENCES chat_sessions (id) ON DELETE CASCADE,
    connector_id      uuid NOT NULL REFERENCES mcp_connectors (id) ON DELETE CASCADE,
    uri               text NOT NULL,
    name              text,
    mime_type         text,
    content           text NOT NULL,
    removed_fields    integer NOT NULL DEFAULT 0,
    truncated_arrays  integer NOT NULL DEFAULT 0,
    policy_profile_id uuid NOT NULL,
    policy_version    integer NOT NULL,
    policy_source     text NOT NULL CHECK (policy_source IN ('tenant', 'group', 'key')),
    attached_at       timestamptz NOT NULL DEFAULT now(),
    UNIQUE (session_id, connector_id, uri)
);
CREATE INDEX session_resources_session_idx ON session_resources (tenant_id, session_id, attached_at);
SELECT enable_tenant_rls('session_resources');
GRANT SELECT, INSERT, UPDATE, DELETE ON discovered_resources, discovered_prompts, session_resources TO switchboard_app;
