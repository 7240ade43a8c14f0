-- The assistant knows its tenant, and hears what people think of its answers (issue 21, parts 1 and 4).

-- 1. A tenant's profile: what every turn's system prompt says about the tenant (`tenants::profile`, which
-- checks each limit and says which; these constraints are the backstop). One row per tenant, made by its
-- first `PUT /api/v1/tenant/profile`; no row is an empty profile.
CREATE TABLE tenant_profiles (
    tenant_id   uuid PRIMARY KEY REFERENCES tenants (id) ON DELETE CASCADE,
    industry    text CHECK (char_length(industry) BETWEEN 1 AND 100),
    description text CHECK (char_length(description) BETWEEN 1 AND 2000),
    products    text[] NOT NULL DEFAULT '{}' CHECK (cardinality(products) <= 30),
    -- `[{"term": …, "meaning": …}]`, in the tenant's order.
    glossary    jsonb NOT NULL DEFAULT '[]'
        CHECK (jsonb_typeof(glossary) = 'array' AND jsonb_array_length(glossary) <= 50),
    tone        text CHECK (char_length(tone) BETWEEN 1 AND 200),
    -- BCP 47 tags (`en`, `de-CH`), as given.
    languages   text[] NOT NULL DEFAULT '{}' CHECK (cardinality(languages) <= 10),
    free_text   text CHECK (char_length(free_text) BETWEEN 1 AND 4000),
    updated_at  timestamptz NOT NULL DEFAULT now()
);
SELECT enable_tenant_rls('tenant_profiles');

-- 4. Feedback on an answer: one per message per giver (an API key, or an end user through a widget token);
-- a second one replaces the first. It goes with its message (erasure, retention, deleting the conversation
-- or the tenant all delete messages), so it never outlives what it is about.
CREATE TABLE message_feedback (
    id              uuid PRIMARY KEY,
    tenant_id       uuid NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    message_id      uuid NOT NULL REFERENCES chat_messages (id) ON DELETE CASCADE,
    -- The run that wrote the answer; kept as an id only (a run outlives its conversation's text for usage).
    run_id          uuid,
    giver_type      text NOT NULL CHECK (giver_type IN ('api_key', 'user')),
    giver_id        uuid NOT NULL,
    rating          text NOT NULL CHECK (rating IN ('up', 'down')),
    comment         text CHECK (char_length(comment) BETWEEN 1 AND 2000),
    tags            text[] NOT NULL DEFAULT '{}' CHECK (cardinality(tags) <= 10),
    -- What made the answer, copied when the feedback is given: a later change of the tenant's settings or
    -- of the answer's documents does not change what was judged.
    model           text,
    provider        text,
    -- The system prompt template (name and content hash) the service had built in when the feedback was
    -- given; `prompt_version` is for tenants' own versioned templates, which do not exist yet.
    prompt_template text,
    prompt_version  integer,
    cited_chunk_ids uuid[] NOT NULL DEFAULT '{}',
    created_at      timestamptz NOT NULL DEFAULT now(),
    updated_at      timestamptz NOT NULL DEFAULT now(),
    UNIQUE (tenant_id, message_id, giver_type, giver_id)
);
CREATE INDEX message_feedback_tenant_idx ON message_feedback (tenant_id, id);
CREATE INDEX message_feedback_message_idx ON message_feedback (message_id);
SELECT enable_tenant_rls('message_feedback');

-- 6. `multi_agent_enabled` never did anything; until a coordinator of several agents exists, turning it on
-- is refused (`tenants::parse_config_patch`), and a tenant that had turned it on is shown it off, as it
-- always was in effect. Row-level security is lifted for the statement: a migration runs with no tenant.
ALTER TABLE tenant_configs NO FORCE ROW LEVEL SECURITY;
UPDATE tenant_configs SET multi_agent_enabled = false WHERE multi_agent_enabled;
ALTER TABLE tenant_configs FORCE ROW LEVEL SECURITY;
