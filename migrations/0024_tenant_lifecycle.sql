-- Tenants over their whole life: the operator renames, suspends and resumes them, and deletes one with
-- every row it owns. What the operator did is kept in `operator_audit_events`, a trail of its own that is
-- not tenant-scoped, so it outlives the tenants it describes.

-- `suspended`: its keys and widget tokens are refused (403 `tenant_suspended`) and its queued agent runs
-- wait. The system tenant (the shared corpus) is always active.
ALTER TABLE tenants
    ADD COLUMN status text NOT NULL DEFAULT 'active' CHECK (status IN ('active', 'suspended')),
    ADD COLUMN suspended_at timestamptz,
    ADD CONSTRAINT tenants_suspended_since CHECK ((status = 'suspended') = (suspended_at IS NOT NULL)),
    ADD CONSTRAINT tenants_system_is_active
        CHECK (id <> '00000000-0000-0000-0000-000000000000' OR status = 'active');
GRANT UPDATE (name, status, suspended_at) ON tenants TO switchboard_app;

-- The operator's trail. Not tenant-scoped (no `tenant_id` column, no RLS): the tenant it names may be gone.
CREATE TABLE operator_audit_events (
    id                 uuid PRIMARY KEY,
    action             text NOT NULL,
    target_tenant_id   uuid,
    target_tenant_slug text,
    details            jsonb NOT NULL DEFAULT '{}',
    request_id         text,
    trace_id           text,
    created_at         timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX operator_audit_events_target_idx ON operator_audit_events (target_tenant_id, created_at);

-- Append-only, like `audit_events`: for everyone (a statement-level trigger), and the app role has no grants.
CREATE FUNCTION reject_operator_audit_mutation() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'operator_audit_events is append-only: % is not allowed', TG_OP
        USING ERRCODE = 'insufficient_privilege';
END
$$;
CREATE TRIGGER operator_audit_events_append_only
    BEFORE UPDATE OR DELETE OR TRUNCATE ON operator_audit_events
    FOR EACH STATEMENT EXECUTE FUNCTION reject_operator_audit_mutation();
REVOKE UPDATE, DELETE, TRUNCATE ON operator_audit_events FROM switchboard_app;

-- A tenant's audit trail stays append-only while the tenant exists; it goes only with the whole tenant,
-- through `erase_tenant` below, which names the tenant being erased in `app.erasing_tenant`. The
-- statement-level trigger lets such a DELETE start; a row-level one refuses any row of another tenant.
CREATE OR REPLACE FUNCTION reject_audit_mutation() RETURNS trigger
LANGUAGE plpgsql AS $$
DECLARE
    erasing text := coalesce(current_setting('app.erasing_tenant', true), '');
BEGIN
    IF TG_OP = 'DELETE' AND erasing <> '' THEN
        IF TG_LEVEL = 'STATEMENT' THEN
            RETURN NULL;
        END IF;
        IF OLD.tenant_id::text = erasing THEN
            RETURN OLD;
        END IF;
    END IF;
    RAISE EXCEPTION 'audit_events is append-only: % is not allowed', TG_OP
        USING ERRCODE = 'insufficient_privilege';
END
$$;
CREATE TRIGGER audit_events_erased_only_with_their_tenant
    BEFORE DELETE ON audit_events
    FOR EACH ROW EXECUTE FUNCTION reject_audit_mutation();

-- Deletes a tenant and every row it owns: its audit trail, then the tenant, whose deletion cascades to every
-- other table (each `tenant_id` references `tenants` ON DELETE CASCADE). The one door through which the
-- application role deletes a tenant: it runs as the owner, only inside a transaction bound to that tenant
-- (so forced RLS still shows it that tenant's rows only), only for a suspended tenant, never the system one.
CREATE FUNCTION erase_tenant(target uuid) RETURNS void
LANGUAGE plpgsql SECURITY DEFINER SET search_path = public, pg_temp AS $$
BEGIN
    IF target = '00000000-0000-0000-0000-000000000000' THEN
        RAISE EXCEPTION 'the system tenant cannot be erased' USING ERRCODE = 'insufficient_privilege';
    END IF;
    IF current_tenant_id() IS DISTINCT FROM target THEN
        RAISE EXCEPTION 'erase_tenant runs only in a transaction bound to the tenant it erases'
            USING ERRCODE = 'insufficient_privilege';
    END IF;
    IF NOT EXISTS (SELECT 1 FROM tenants WHERE id = target AND status = 'suspended') THEN
        RAISE EXCEPTION 'only a suspended tenant can be erased' USING ERRCODE = 'insufficient_privilege';
    END IF;
    PERFORM set_config('app.erasing_tenant', target::text, true);
    DELETE FROM audit_events WHERE tenant_id = target;
    DELETE FROM tenants WHERE id = target;
    PERFORM set_config('app.erasing_tenant', '', true);
END
$$;
REVOKE ALL ON FUNCTION erase_tenant(uuid) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION erase_tenant(uuid) TO switchboard_app;
