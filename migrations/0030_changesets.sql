-- The IDE door, complete: files carry the hash of their content (the ETag an IDE sends back, and the base
-- a change is made against); changes are proposed as changesets of patches, reviewed, and applied
-- atomically; checks (tenants' MCP tools) leave immutable artifacts.

-- Lowercase hex SHA-256 of the content's UTF-8 bytes; every write sets it (workspaces::content_hash).
-- Row-level security is lifted for the statements that fill in existing rows: a migration runs with no
-- tenant.
ALTER TABLE workspace_files NO FORCE ROW LEVEL SECURITY;
ALTER TABLE run_patches NO FORCE ROW LEVEL SECURITY;
ALTER TABLE runs NO FORCE ROW LEVEL SECURITY;
ALTER TABLE workspace_files ADD COLUMN content_hash text;
UPDATE workspace_files SET content_hash = encode(sha256(convert_to(content, 'UTF8')), 'hex');
ALTER TABLE workspace_files ALTER COLUMN content_hash SET NOT NULL;

-- The MCP tools (`connector.tool`) run as the workspace's checks.
ALTER TABLE workspaces ADD COLUMN checks text[] NOT NULL DEFAULT '{}';

-- Quotas per workspace, set by the tenant.
ALTER TABLE tenant_configs ADD COLUMN workspace_max_files integer NOT NULL DEFAULT 5000
    CHECK (workspace_max_files BETWEEN 1 AND 100000);
ALTER TABLE tenant_configs ADD COLUMN workspace_max_bytes bigint NOT NULL DEFAULT 52428800
    CHECK (workspace_max_bytes BETWEEN 1 AND 1073741824);

-- States: draft → pending_review → approved → applied; rejected and superseded end it too.
CREATE TABLE changesets (
    id             uuid PRIMARY KEY,
    tenant_id      uuid NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    workspace_id   uuid NOT NULL REFERENCES workspaces (id) ON DELETE CASCADE,
    -- The agent run that proposed it; NULL when an IDE opened it.
    run_id         uuid REFERENCES runs (id) ON DELETE SET NULL,
    title          text NOT NULL CHECK (length(title) BETWEEN 1 AND 500),
    status         text NOT NULL DEFAULT 'draft'
        CHECK (status IN ('draft', 'pending_review', 'approved', 'rejected', 'applied', 'superseded')),
    created_by     text NOT NULL,
    reviewed_by    text,
    review_comment text,
    created_at     timestamptz NOT NULL DEFAULT now(),
    updated_at     timestamptz NOT NULL DEFAULT now(),
    applied_at     timestamptz
);
CREATE UNIQUE INDEX changesets_run_idx ON changesets (run_id) WHERE run_id IS NOT NULL;
CREATE INDEX changesets_workspace_idx ON changesets (tenant_id, workspace_id, created_at);
SELECT enable_tenant_rls('changesets');

-- One patch per path of a changeset: the file's state after the changeset, against the base it was made on.
-- Later edits of the same path in the changeset update the patch (its base stays the first one).
CREATE TABLE changeset_patches (
    id             uuid PRIMARY KEY,
    tenant_id      uuid NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    changeset_id   uuid NOT NULL REFERENCES changesets (id) ON DELETE CASCADE,
    position       integer NOT NULL,
    -- The file acted on (a rename's source).
    path           text NOT NULL CHECK (length(path) BETWEEN 1 AND 500),
    operation      text NOT NULL CHECK (operation IN ('create', 'modify', 'delete', 'rename')),
    -- A rename's destination.
    new_path       text CHECK (length(new_path) BETWEEN 1 AND 500),
    -- The content hash the patch was made against; NULL for a create (the file must not exist).
    base_hash      text,
    -- The content it was made against, kept for a three-way merge when the file moved on.
    base_content   text,
    -- The file's content after the patch; NULL for a delete.
    content        text,
    diff           text NOT NULL,
    summary        text NOT NULL DEFAULT '',
    review         text NOT NULL DEFAULT 'pending' CHECK (review IN ('pending', 'approved', 'rejected')),
    review_comment text,
    created_at     timestamptz NOT NULL DEFAULT now(),
    updated_at     timestamptz NOT NULL DEFAULT now(),
    UNIQUE (tenant_id, changeset_id, path),
    CHECK ((operation = 'rename') = (new_path IS NOT NULL)),
    CHECK ((operation = 'create') = (base_hash IS NULL)),
    CHECK ((operation = 'delete') = (content IS NULL))
);
SELECT enable_tenant_rls('changeset_patches');

-- What a check printed and reported for a changeset's version of the files; never changed once written.
CREATE TABLE changeset_artifacts (
    id           uuid PRIMARY KEY,
    tenant_id    uuid NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    changeset_id uuid NOT NULL REFERENCES changesets (id) ON DELETE CASCADE,
    -- The agent run that ran it; NULL when a person asked for it.
    run_id       uuid REFERENCES runs (id) ON DELETE SET NULL,
    check_name   text NOT NULL,
    status       text NOT NULL CHECK (status IN ('passed', 'failed', 'error', 'denied')),
    stdout       text NOT NULL DEFAULT '',
    stderr       text NOT NULL DEFAULT '',
    report       text,
    content_type text NOT NULL,
    truncated    boolean NOT NULL DEFAULT false,
    created_at   timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX changeset_artifacts_changeset_idx ON changeset_artifacts (tenant_id, changeset_id, created_at);
SELECT enable_tenant_rls('changeset_artifacts');

-- The one change allowed: forgetting the run when it is deleted (`ON DELETE SET NULL`).
CREATE FUNCTION reject_artifact_update() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    IF NEW.run_id IS NULL AND (to_jsonb(NEW) - 'run_id') = (to_jsonb(OLD) - 'run_id') THEN
        RETURN NEW;
    END IF;
    RAISE EXCEPTION 'changeset_artifacts are immutable: UPDATE is not allowed';
END
$$;
CREATE TRIGGER changeset_artifacts_immutable
    BEFORE UPDATE ON changeset_artifacts
    FOR EACH ROW EXECUTE FUNCTION reject_artifact_update();

ALTER TABLE changesets NO FORCE ROW LEVEL SECURITY;
ALTER TABLE changeset_patches NO FORCE ROW LEVEL SECURITY;

-- The changes runs proposed before changesets: each run's become one changeset awaiting review, a patch
-- per path (the last proposal wins), with no known base (applying one whose file exists is a conflict).
INSERT INTO changesets (id, tenant_id, workspace_id, run_id, title, status, created_by, created_at, updated_at)
SELECT DISTINCT ON (p.run_id) gen_random_uuid(), p.tenant_id, r.workspace_id, p.run_id,
       left(coalesce(nullif(r.instruction, ''), 'Proposed changes'), 500), 'pending_review', 'agent run',
       p.created_at, p.created_at
FROM run_patches p JOIN runs r ON r.id = p.run_id
WHERE r.workspace_id IS NOT NULL
ORDER BY p.run_id, p.created_at;

INSERT INTO changeset_patches (id, tenant_id, changeset_id, position, path, operation, content, diff, summary,
                               created_at, updated_at)
SELECT gen_random_uuid(), latest.tenant_id, c.id,
       row_number() OVER (PARTITION BY c.id ORDER BY latest.created_at)::integer,
       latest.path, 'create', latest.content, '', latest.summary, latest.created_at, latest.created_at
FROM (SELECT DISTINCT ON (run_id, path) * FROM run_patches ORDER BY run_id, path, created_at DESC) latest
JOIN changesets c ON c.run_id = latest.run_id;

DROP TABLE run_patches;
ALTER TABLE workspace_files FORCE ROW LEVEL SECURITY;
ALTER TABLE runs FORCE ROW LEVEL SECURITY;
ALTER TABLE changesets FORCE ROW LEVEL SECURITY;
ALTER TABLE changeset_patches FORCE ROW LEVEL SECURITY;
