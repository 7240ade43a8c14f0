-- Workspaces for the IDE door and agent runs: files, runs queued in PostgreSQL and claimed by any
-- Switchboard process, and the changes a run proposes.

CREATE TABLE workspaces (
    id         uuid PRIMARY KEY,
    tenant_id  uuid NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    name       text NOT NULL CHECK (length(name) BETWEEN 1 AND 200),
    created_at timestamptz NOT NULL DEFAULT now(),
    UNIQUE (tenant_id, name)
);
SELECT enable_tenant_rls('workspaces');

CREATE TABLE workspace_files (
    tenant_id    uuid NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    workspace_id uuid NOT NULL REFERENCES workspaces (id) ON DELETE CASCADE,
    path         text NOT NULL CHECK (length(path) BETWEEN 1 AND 500),
    content      text NOT NULL,
    updated_at   timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (tenant_id, workspace_id, path)
);
SELECT enable_tenant_rls('workspace_files');

-- A change an agent run proposes: the file's new content, never applied by the run itself.
CREATE TABLE run_patches (
    id         uuid PRIMARY KEY,
    tenant_id  uuid NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    run_id     uuid NOT NULL REFERENCES runs (id) ON DELETE CASCADE,
    path       text NOT NULL,
    summary    text NOT NULL,
    content    text NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX run_patches_tenant_id_idx ON run_patches (tenant_id, run_id);
SELECT enable_tenant_rls('run_patches');

ALTER TABLE runs ADD COLUMN workspace_id uuid REFERENCES workspaces (id) ON DELETE CASCADE;
ALTER TABLE runs ADD COLUMN instruction text;
-- How many times a worker claimed it; which process did last.
ALTER TABLE runs ADD COLUMN attempts integer NOT NULL DEFAULT 0;
ALTER TABLE runs ADD COLUMN claimed_by text;
CREATE INDEX runs_queue_idx ON runs (created_at) WHERE kind = 'agent' AND status = 'queued';

-- Workers claim queued agent runs before they know their tenant: with `app.run_worker` on, a
-- transaction sees unfinished agent runs (the claimed row must stay visible to its UPDATE) and may move
-- queued ones to running, nothing else.
CREATE POLICY run_worker ON runs FOR SELECT
    USING (current_setting('app.run_worker', true) = 'on' AND kind = 'agent' AND status IN ('queued', 'running'));
CREATE POLICY run_worker_claim ON runs FOR UPDATE
    USING (current_setting('app.run_worker', true) = 'on' AND kind = 'agent' AND status = 'queued')
    WITH CHECK (current_setting('app.run_worker', true) = 'on' AND kind = 'agent' AND status = 'running');
