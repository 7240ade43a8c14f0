-- Policy profiles per API key and per end-user group (issue 22, item 4). The profile in force for a run is
-- the most specific one assigned: its key's, else its end user's group's, else the tenant's active profile
-- (`policy::store::effective`). Each tool call records which profile, which version and where it came from.

-- Lets the references below name a profile together with its tenant, so that no tenant can point at
-- another tenant's profile (a foreign key is checked without row-level security).
ALTER TABLE policy_profiles ADD CONSTRAINT policy_profiles_tenant_id_id_key UNIQUE (tenant_id, id);

-- A key's own profile; NULL: the key inherits (its end user's group, else the tenant's active profile).
-- A profile a key names cannot be deleted (the API answers 409 `policy_profile_in_use`).
ALTER TABLE api_keys ADD COLUMN policy_profile_id uuid;
ALTER TABLE api_keys
    ADD CONSTRAINT api_keys_policy_profile_fk
    FOREIGN KEY (tenant_id, policy_profile_id) REFERENCES policy_profiles (tenant_id, id);
CREATE INDEX api_keys_policy_profile_idx ON api_keys (tenant_id, policy_profile_id)
    WHERE policy_profile_id IS NOT NULL;

-- An end user's group: a label the tenant gives them (`PUT /api/v1/end-users/{id}/policy-group`). A group
-- the tenant has not mapped to a profile changes nothing: its users inherit the tenant's active profile.
ALTER TABLE users ADD COLUMN policy_group text CHECK (policy_group ~ '^[a-z0-9][a-z0-9_.-]{0,63}$');

-- Which profile each group's users get.
CREATE TABLE policy_groups (
    tenant_id         uuid NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    name              text NOT NULL CHECK (name ~ '^[a-z0-9][a-z0-9_.-]{0,63}$'),
    policy_profile_id uuid NOT NULL,
    created_at        timestamptz NOT NULL DEFAULT now(),
    updated_at        timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (tenant_id, name),
    CONSTRAINT policy_groups_policy_profile_fk
        FOREIGN KEY (tenant_id, policy_profile_id) REFERENCES policy_profiles (tenant_id, id)
);
CREATE INDEX policy_groups_policy_profile_idx ON policy_groups (tenant_id, policy_profile_id);
SELECT enable_tenant_rls('policy_groups');
GRANT SELECT, INSERT, UPDATE, DELETE ON policy_groups TO switchboard_app;

-- Where a call's profile came from; NULL for calls decided with no profile at all, and for calls recorded
-- before this migration (whose profile was always the tenant's active one).
ALTER TABLE tool_calls ADD COLUMN policy_source text CHECK (policy_source IN ('tenant', 'group', 'key'));
