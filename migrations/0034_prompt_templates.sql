-- A tenant's own system prompt templates, versioned (issue 21, part 2). The built-in template
-- (`prompts/system.md.j2`) stays the default; a tenant may save its own, checked at save against the
-- variables a turn provides (`prompts::check`). Versions are immutable and numbered 1, 2, 3… per tenant and
-- name; the tenant's active one is named in `active_prompt_templates` (no row: the built-in default).

CREATE TABLE prompt_templates (
    tenant_id  uuid NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    -- The kind of prompt; `system` is the only one so far.
    name       text NOT NULL CHECK (name = 'system'),
    version    integer NOT NULL CHECK (version >= 1),
    body       text NOT NULL CHECK (char_length(body) BETWEEN 1 AND 20000),
    note       text CHECK (char_length(note) BETWEEN 1 AND 500),
    created_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (tenant_id, name, version)
);
SELECT enable_tenant_rls('prompt_templates');

-- The version in force for each name; deleting the row goes back to the built-in default.
CREATE TABLE active_prompt_templates (
    tenant_id    uuid NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    name         text NOT NULL,
    version      integer NOT NULL,
    activated_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (tenant_id, name),
    FOREIGN KEY (tenant_id, name, version) REFERENCES prompt_templates (tenant_id, name, version)
);
SELECT enable_tenant_rls('active_prompt_templates');

-- What each run's system prompt was made from, recorded when it is built: `prompt_template` is the
-- built-in template's id (`system.md.j2@` and a hash of its text) or `tenant`, with the tenant's version in
-- `prompt_version`. Both NULL for a run whose caller sent its own system prompt (the `/v1` doors), or that
-- never reached its model.
ALTER TABLE runs ADD COLUMN prompt_template text, ADD COLUMN prompt_version integer;
