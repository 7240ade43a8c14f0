-- Erasing an end user, and retention (issue 27, parts 3 and 4).
--
-- 1. Retention, per tenant, in days (null: kept forever). A conversation is deleted, with its runs' text,
-- that many days after its last activity; usage records and audit events keep a setting of their own,
-- at least the conversations' (null, forever, when conversations are kept forever) and at least 31 days,
-- so that a budget period (a calendar month) is always covered. The service checks the same rules and
-- says which one a change breaks; these constraints are the backstop.
ALTER TABLE tenant_configs
    ADD COLUMN conversation_retention_days integer CHECK (conversation_retention_days BETWEEN 1 AND 36500),
    ADD COLUMN usage_retention_days integer CHECK (usage_retention_days BETWEEN 31 AND 36500),
    ADD COLUMN audit_retention_days integer CHECK (audit_retention_days BETWEEN 31 AND 36500),
    ADD CONSTRAINT tenant_configs_usage_outlives_conversations CHECK (
        usage_retention_days IS NULL
        OR (conversation_retention_days IS NOT NULL AND usage_retention_days >= conversation_retention_days)),
    ADD CONSTRAINT tenant_configs_audit_outlives_conversations CHECK (
        audit_retention_days IS NULL
        OR (conversation_retention_days IS NOT NULL AND audit_retention_days >= conversation_retention_days));

-- 2. An erased end user is replaced by a pseudonymous row (`external_id` = `erased-<32 hex>`, a new id)
-- that their usage records point to, so reports still group what they used; the original row is deleted.
ALTER TABLE users ADD COLUMN erased_at timestamptz;

-- 3. The audit trail stays append-only, with two narrow exceptions, each reachable only through a
-- function below that runs as the owner (the application role has no UPDATE or DELETE grant on
-- `audit_events`, so it cannot use them any other way) and names itself in `app.audit_exception` for its
-- own duration (a `SET` clause of the function, restored when it returns):
--   - `pseudonymise`: an UPDATE of the identifier columns (`actor_id`, `target_id`, `details`) of the
--     current tenant's events, every other column unchanged, checked row by row;
--   - `expire`: a DELETE of the current tenant's events older than its `audit_retention_days`, checked
--     row by row against the setting.
-- Together with 0024's tenant erasure (`app.erasing_tenant`), this is the whole of the trigger: anything
-- else, for anyone (the owner too), is refused as before, and TRUNCATE always.
CREATE OR REPLACE FUNCTION reject_audit_mutation() RETURNS trigger
LANGUAGE plpgsql AS $$
DECLARE
    erasing text := coalesce(current_setting('app.erasing_tenant', true), '');
    excepted text := coalesce(current_setting('app.audit_exception', true), '');
BEGIN
    -- A whole tenant being erased (0024).
    IF TG_OP = 'DELETE' AND erasing <> '' THEN
        IF TG_LEVEL = 'STATEMENT' THEN
            RETURN NULL;
        END IF;
        IF OLD.tenant_id::text = erasing THEN
            RETURN OLD;
        END IF;
    END IF;
    -- An erased end user's identifiers replaced by their pseudonym: nothing but the identifier columns.
    IF TG_OP = 'UPDATE' AND excepted = 'pseudonymise' THEN
        IF TG_LEVEL = 'STATEMENT' THEN
            RETURN NULL;
        END IF;
        IF OLD.tenant_id = current_tenant_id()
           AND (NEW.id, NEW.tenant_id, NEW.actor_type, NEW.action, NEW.target_type, NEW.request_id, NEW.trace_id,
                NEW.created_at)
               IS NOT DISTINCT FROM
               (OLD.id, OLD.tenant_id, OLD.actor_type, OLD.action, OLD.target_type, OLD.request_id, OLD.trace_id,
                OLD.created_at) THEN
            RETURN NEW;
        END IF;
    END IF;
    -- Events past their tenant's audit retention.
    IF TG_OP = 'DELETE' AND excepted = 'expire' THEN
        IF TG_LEVEL = 'STATEMENT' THEN
            RETURN NULL;
        END IF;
        IF OLD.tenant_id = current_tenant_id() AND EXISTS (
            SELECT 1 FROM tenant_configs c
            WHERE c.tenant_id = OLD.tenant_id
              AND OLD.created_at < now() - make_interval(days => c.audit_retention_days)) THEN
            RETURN OLD;
        END IF;
    END IF;
    RAISE EXCEPTION 'audit_events is append-only: % is not allowed', TG_OP
        USING ERRCODE = 'insufficient_privilege';
END
$$;
CREATE TRIGGER audit_events_pseudonymised_only_in_their_identifiers
    BEFORE UPDATE ON audit_events
    FOR EACH ROW EXECUTE FUNCTION reject_audit_mutation();

-- `value` with every string (and object key) equal to `identifier` replaced by `pseudonym`, and
-- `old_id` replaced by `new_id` wherever it occurs in one (a user's UUID, as in `end_user:<id>`). The
-- identifier is replaced only where it is a whole string: a tenant's ids may be short ("42"), and part of
-- another string is not theirs.
CREATE FUNCTION jsonb_pseudonymise(value jsonb, identifier text, pseudonym text, old_id text, new_id text)
RETURNS jsonb
LANGUAGE plpgsql IMMUTABLE AS $$
BEGIN
    CASE jsonb_typeof(value)
    WHEN 'string' THEN
        IF value #>> '{}' = identifier THEN
            RETURN to_jsonb(pseudonym);
        END IF;
        RETURN to_jsonb(replace(value #>> '{}', old_id, new_id));
    WHEN 'array' THEN
        RETURN coalesce(
            (SELECT jsonb_agg(jsonb_pseudonymise(a.element, identifier, pseudonym, old_id, new_id) ORDER BY a.position)
             FROM jsonb_array_elements(value) WITH ORDINALITY AS a (element, position)),
            '[]'::jsonb);
    WHEN 'object' THEN
        RETURN coalesce(
            (SELECT jsonb_object_agg(
                        CASE WHEN o.name = identifier THEN pseudonym ELSE replace(o.name, old_id, new_id) END,
                        jsonb_pseudonymise(o.item, identifier, pseudonym, old_id, new_id))
             FROM jsonb_each(value) AS o (name, item)),
            '{}'::jsonb);
    ELSE
        RETURN value;
    END CASE;
END
$$;

-- Replaces an erased end user's identifiers in the current tenant's audit trail: their external id
-- (`identifier`, where a column or a JSON string is exactly it) by their pseudonym, and their old user
-- id by the pseudonymous row's (wherever it occurs). Usable only inside the erasure's own transaction:
-- the pseudonymous row must have been made by this transaction, and the old row must be gone. Records
-- that it ran, and on how many events, in the trail itself (as `event_id`, made by the caller so that it
-- sorts in time like every other event's). Returns that count.
CREATE FUNCTION pseudonymise_audit_events(
    old_user uuid, identifier text, new_user uuid, pseudonym text, event_id uuid)
RETURNS bigint
LANGUAGE plpgsql SECURITY DEFINER
SET search_path = public, pg_temp
SET app.audit_exception = 'pseudonymise'
AS $$
DECLARE
    tenant uuid := current_tenant_id();
    changed bigint;
BEGIN
    IF tenant IS NULL THEN
        RAISE EXCEPTION 'pseudonymise_audit_events runs only in a transaction bound to a tenant'
            USING ERRCODE = 'insufficient_privilege';
    END IF;
    IF pseudonym !~ '^erased-[0-9a-f]{32}$'
       OR NOT EXISTS (
           SELECT 1 FROM users u
           WHERE u.id = new_user AND u.tenant_id = tenant AND u.external_id = pseudonym
             AND u.erased_at IS NOT NULL AND u.xmin = pg_current_xact_id()::xid)
       OR EXISTS (SELECT 1 FROM users u WHERE u.id = old_user) THEN
        RAISE EXCEPTION 'pseudonymise_audit_events runs only within the erasure of an end user'
            USING ERRCODE = 'insufficient_privilege';
    END IF;
    UPDATE audit_events e
    SET actor_id = CASE WHEN e.actor_id = identifier THEN pseudonym
                        ELSE replace(e.actor_id, old_user::text, new_user::text) END,
        target_id = CASE WHEN e.target_id = identifier THEN pseudonym
                         ELSE replace(e.target_id, old_user::text, new_user::text) END,
        details = jsonb_pseudonymise(e.details, identifier, pseudonym, old_user::text, new_user::text)
    WHERE e.tenant_id = tenant
      AND (e.actor_id IN (identifier, old_user::text)
           OR e.target_id = identifier
           OR strpos(e.target_id, old_user::text) > 0
           OR strpos(e.details::text, old_user::text) > 0
           OR strpos(e.details::text, to_jsonb(identifier)::text) > 0);
    GET DIAGNOSTICS changed = ROW_COUNT;
    INSERT INTO audit_events (id, tenant_id, actor_type, action, target_type, target_id, details)
    VALUES (event_id, tenant, 'system', 'audit_events.pseudonymised', 'end_user', pseudonym,
            jsonb_build_object('events', changed));
    RETURN changed;
END
$$;
REVOKE ALL ON FUNCTION pseudonymise_audit_events(uuid, text, uuid, text, uuid) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION pseudonymise_audit_events(uuid, text, uuid, text, uuid) TO switchboard_app;

-- Deletes up to `batch` of the current tenant's audit events older than its `audit_retention_days`
-- (none when the setting is null), oldest first, skipping rows another transaction holds; records how
-- many it deleted, and before when, in the trail (as `event_id`). Returns that count.
CREATE FUNCTION expire_audit_events(batch integer, event_id uuid) RETURNS bigint
LANGUAGE plpgsql SECURITY DEFINER
SET search_path = public, pg_temp
SET app.audit_exception = 'expire'
AS $$
DECLARE
    tenant uuid := current_tenant_id();
    keep_days integer;
    cutoff timestamptz;
    removed bigint;
BEGIN
    IF tenant IS NULL THEN
        RAISE EXCEPTION 'expire_audit_events runs only in a transaction bound to a tenant'
            USING ERRCODE = 'insufficient_privilege';
    END IF;
    SELECT c.audit_retention_days INTO keep_days FROM tenant_configs c WHERE c.tenant_id = tenant;
    IF keep_days IS NULL THEN
        RETURN 0;
    END IF;
    cutoff := now() - make_interval(days => keep_days);
    DELETE FROM audit_events e
    WHERE e.id IN (
        SELECT old.id FROM audit_events old
        WHERE old.tenant_id = tenant AND old.created_at < cutoff
        ORDER BY old.created_at
        LIMIT batch
        FOR UPDATE SKIP LOCKED);
    GET DIAGNOSTICS removed = ROW_COUNT;
    IF removed > 0 THEN
        INSERT INTO audit_events (id, tenant_id, actor_type, action, target_type, target_id, details)
        VALUES (event_id, tenant, 'system', 'audit_events.expired', 'tenant', tenant::text,
                jsonb_build_object('events', removed, 'before', cutoff, 'retention_days', keep_days));
    END IF;
    RETURN removed;
END
$$;
REVOKE ALL ON FUNCTION expire_audit_events(integer, uuid) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION expire_audit_events(integer, uuid) TO switchboard_app;
