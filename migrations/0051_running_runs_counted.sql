-- Costs that grew with the number of a tenant's running runs (issue 20: at 10,000 open streams, most of
-- PostgreSQL's time went to them, and starts were refused for want of a connection).
--
-- 1. Admission counted the tenant's running runs, one row at a time, for every request: 9 ms per request
--    with 10,000 running. The count is now kept per tenant, in 16 rows so that runs starting and ending at
--    once rarely wait for each other's row; triggers on `runs` keep it, so every way a run starts or stops
--    running (its start, its end, a pause, a worker's claim, the sweeper, a deletion) moves it, in the same
--    transaction as the change. It is the same count as before, read in 16 rows instead of thousands.
--
-- 2. On `runs` and `webhook_deliveries`, the permissive policies are OR'ed, so they are a filter evaluated
--    on every row a scan visits, and `current_tenant_id()` parses the setting into a uuid on each (13 % of
--    the machine's CPU during 10,000 open streams). There, each setting is now read in a scalar subquery:
--    an InitPlan, once per statement. Not on the other tables, where a policy is mostly an index condition
--    and the bare call lets the planner see the tenant (its rows' share of a table shapes the search plans).
--
-- 3. The sweeper's policy called `executor_alive` for every running run, each call reading the whole lock
--    table (sweeps took over a second each with 10,000 runs running): it reads it once per statement now.

ALTER POLICY tenant_isolation ON runs
    USING (tenant_id = (SELECT current_tenant_id())) WITH CHECK (tenant_id = (SELECT current_tenant_id()));
ALTER POLICY tenant_isolation ON webhook_deliveries
    USING (tenant_id = (SELECT current_tenant_id())) WITH CHECK (tenant_id = (SELECT current_tenant_id()));

ALTER POLICY run_worker ON runs
    USING ((SELECT current_setting('app.run_worker', true)) = 'on' AND kind = 'agent' AND status IN ('queued', 'running'));
ALTER POLICY run_worker_claim ON runs
    USING ((SELECT current_setting('app.run_worker', true)) = 'on' AND kind = 'agent' AND status = 'queued')
    WITH CHECK ((SELECT current_setting('app.run_worker', true)) = 'on' AND kind = 'agent' AND status = 'running');

-- Every executor alive now (what `executor_alive`, 0013, says of one), from one read of the lock table.
CREATE FUNCTION alive_executors() RETURNS bigint[]
    LANGUAGE sql STABLE PARALLEL SAFE
    AS $$
        SELECT coalesce(array_agg((classid::bigint << 32) | objid::bigint), '{}') FROM pg_locks
        WHERE locktype = 'advisory' AND granted AND objsubid = 1
          AND database = (SELECT oid FROM pg_database WHERE datname = current_database())
    $$;
ALTER POLICY run_sweeper ON runs
    USING ((SELECT current_setting('app.run_sweeper', true)) = 'on'
           AND status IN ('queued', 'running')
           AND (heartbeat_at < now() - interval '30 seconds'
                OR (status = 'running' AND executor IS NOT NULL AND executor <> ALL ((SELECT alive_executors())::bigint[]))));

ALTER POLICY webhook_worker ON webhook_deliveries
    USING ((SELECT current_setting('app.webhook_worker', true)) = 'on' AND status = 'pending');
ALTER POLICY webhook_worker_claim ON webhook_deliveries
    USING ((SELECT current_setting('app.webhook_worker', true)) = 'on' AND status = 'pending')
    WITH CHECK ((SELECT current_setting('app.webhook_worker', true)) = 'on' AND status = 'pending');
ALTER POLICY backfill_sweeper ON documents_owed_vectors
    USING ((SELECT current_setting('app.backfill_sweeper', true)) = 'on');

-- A tenant's running runs, in shards: a run counts in the shard its id picks.
CREATE TABLE tenant_running_runs (
    tenant_id uuid NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    shard     smallint NOT NULL CHECK (shard BETWEEN 0 AND 15),
    running   integer NOT NULL DEFAULT 0 CHECK (running >= 0),
    PRIMARY KEY (tenant_id, shard)
);
SELECT enable_tenant_rls('tenant_running_runs');

CREATE FUNCTION running_shard(run uuid) RETURNS smallint
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    SELECT (get_byte(uuid_send(run), 15) & 15)::smallint
$$;

-- Moves the count of the changed run's tenant. A worker claims an agent run in a transaction bound to no
-- tenant (the `run_worker_claim` policy), so the count is written bound to the run's own tenant (which the
-- change itself was allowed to touch), and the transaction's binding is put back after.
CREATE FUNCTION count_running_runs() RETURNS trigger
LANGUAGE plpgsql AS $$
DECLARE
    bound text := current_setting('app.current_tenant_id', true);
BEGIN
    IF TG_OP <> 'DELETE' AND NEW.status = 'running' THEN
        PERFORM set_config('app.current_tenant_id', NEW.tenant_id::text, true);
        INSERT INTO tenant_running_runs AS counted (tenant_id, shard, running)
        VALUES (NEW.tenant_id, running_shard(NEW.id), 1)
        ON CONFLICT (tenant_id, shard) DO UPDATE SET running = counted.running + 1;
    ELSE
        -- Only an update: while a tenant is deleted, its count may already be gone.
        PERFORM set_config('app.current_tenant_id', OLD.tenant_id::text, true);
        UPDATE tenant_running_runs SET running = running - 1
        WHERE tenant_id = OLD.tenant_id AND shard = running_shard(OLD.id) AND running > 0;
    END IF;
    PERFORM set_config('app.current_tenant_id', coalesce(bound, ''), true);
    RETURN NULL;
END
$$;

CREATE TRIGGER runs_start_running AFTER INSERT ON runs
    FOR EACH ROW WHEN (NEW.status = 'running') EXECUTE FUNCTION count_running_runs();
CREATE TRIGGER runs_change_running AFTER UPDATE OF status ON runs
    FOR EACH ROW WHEN ((OLD.status = 'running') IS DISTINCT FROM (NEW.status = 'running'))
    EXECUTE FUNCTION count_running_runs();
CREATE TRIGGER runs_delete_running AFTER DELETE ON runs
    FOR EACH ROW WHEN (OLD.status = 'running') EXECUTE FUNCTION count_running_runs();

-- The runs running now, counted tenant by tenant (each bound in turn, as row-level security wants).
DO $$
DECLARE
    tenant record;
BEGIN
    FOR tenant IN SELECT id FROM tenants LOOP
        PERFORM set_config('app.current_tenant_id', tenant.id::text, true);
        INSERT INTO tenant_running_runs (tenant_id, shard, running)
        SELECT tenant_id, running_shard(id), count(*) FROM runs
        WHERE tenant_id = tenant.id AND status = 'running'
        GROUP BY tenant_id, running_shard(id);
    END LOOP;
    PERFORM set_config('app.current_tenant_id', '', true);
END
$$;

-- Nothing reads the running runs by tenant any more.
DROP INDEX runs_running_idx;

-- Admission as in 0022, reading the count instead of counting.
CREATE OR REPLACE FUNCTION admit_rate_limits(
    for_tenant uuid, api_key text, external_user text, widget_user uuid, tokens bigint,
    api_key_requests bigint, api_key_tokens bigint, tenant_requests bigint, tenant_tokens bigint,
    end_user_requests bigint, end_user_tokens bigint, max_running bigint)
RETURNS TABLE (
    now timestamptz, running bigint, scope text, subject text, kind text, per_minute bigint, cost bigint,
    step_us bigint, seen_tat timestamptz, taken_tat timestamptz)
LANGUAGE plpgsql AS $$
#variable_conflict use_column
DECLARE
    scopes text[];
    subjects text[];
    kinds text[];
    limits bigint[];
    costs bigint[];
    steps bigint[];
    seen timestamptz[];
    taken timestamptz[];
    running_now bigint;
    took bigint;
BEGIN
    IF current_tenant_id() IS NOT NULL AND current_tenant_id() <> for_tenant THEN
        RAISE EXCEPTION 'admit_rate_limits: the transaction is bound to another tenant';
    END IF;
    PERFORM set_config('app.current_tenant_id', for_tenant::text, true);
    PERFORM set_config('synchronous_commit', 'off', true);

    SELECT coalesce(sum(counted.running), 0) INTO running_now FROM tenant_running_runs counted
    WHERE counted.tenant_id = for_tenant;

    WITH holders (scope, subject, setting) AS (
             SELECT 'api_key', api_key, api_key WHERE api_key IS NOT NULL
             UNION ALL SELECT 'tenant', '', 'tenant'
             UNION ALL SELECT 'end_user', named.subject, 'end_user'
                 FROM (SELECT coalesce(external_user, (SELECT u.external_id FROM users u WHERE u.id = widget_user))
                       AS subject) AS named
                 WHERE named.subject IS NOT NULL),
         defaults (scope, kind, per_minute) AS (VALUES
             ('api_key', 'requests', api_key_requests), ('api_key', 'tokens', api_key_tokens),
             ('tenant', 'requests', tenant_requests), ('tenant', 'tokens', tenant_tokens),
             ('end_user', 'requests', end_user_requests), ('end_user', 'tokens', end_user_tokens)),
         limits AS (
             SELECT h.scope, h.subject, d.kind,
                    coalesce(CASE d.kind WHEN 'requests' THEN own.requests_per_minute
                                         ELSE own.tokens_per_minute END, d.per_minute) AS per_minute,
                    CASE d.kind WHEN 'requests' THEN 1::bigint ELSE tokens END AS cost
             FROM holders h
             JOIN defaults d ON d.scope = h.scope
             LEFT JOIN rate_limits own ON own.subject = h.setting)
    SELECT array_agg(l.scope ORDER BY l.scope, l.subject, l.kind),
           array_agg(l.subject ORDER BY l.scope, l.subject, l.kind),
           array_agg(l.kind ORDER BY l.scope, l.subject, l.kind),
           array_agg(l.per_minute ORDER BY l.scope, l.subject, l.kind),
           array_agg(l.cost ORDER BY l.scope, l.subject, l.kind),
           array_agg(l.cost * 60000000 / l.per_minute ORDER BY l.scope, l.subject, l.kind),
           array_agg(b.tat ORDER BY l.scope, l.subject, l.kind)
    INTO scopes, subjects, kinds, limits, costs, steps, seen
    FROM limits l
    LEFT JOIN rate_limit_buckets b ON (b.scope, b.subject, b.kind) = (l.scope, l.subject, l.kind)
    WHERE l.per_minute IS NOT NULL;

    IF running_now < max_running AND NOT EXISTS (
        SELECT FROM unnest(seen, steps) AS w (tat, step)
        WHERE greatest(w.tat, now()) + w.step * interval '1 microsecond' > now() + interval '1 minute')
    THEN
        BEGIN
            WITH taking AS (
                INSERT INTO rate_limit_buckets AS b (tenant_id, scope, subject, kind, tat)
                SELECT for_tenant, w.scope, w.subject, w.kind, now() + w.step * interval '1 microsecond'
                FROM unnest(scopes, subjects, kinds, steps) AS w (scope, subject, kind, step)
                ORDER BY w.scope, w.subject, w.kind
                ON CONFLICT (tenant_id, scope, subject, kind) DO UPDATE
                    SET tat = greatest(b.tat, now()) + (excluded.tat - now())
                    WHERE greatest(b.tat, now()) + (excluded.tat - now()) <= now() + interval '1 minute'
                RETURNING b.scope, b.subject, b.kind, b.tat)
            SELECT array_agg(t.tat ORDER BY t.scope, t.subject, t.kind), count(*) INTO taken, took FROM taking t;
            IF took < coalesce(cardinality(scopes), 0) THEN
                RAISE EXCEPTION USING ERRCODE = 'SB002', MESSAGE = 'a rate limit was taken meanwhile';
            END IF;
        EXCEPTION WHEN SQLSTATE 'SB002' THEN
            taken := NULL;
            SELECT array_agg(b.tat ORDER BY w.n) INTO seen
            FROM unnest(scopes, subjects, kinds) WITH ORDINALITY AS w (scope, subject, kind, n)
            LEFT JOIN rate_limit_buckets b ON (b.scope, b.subject, b.kind) = (w.scope, w.subject, w.kind);
        END;
    END IF;

    RETURN QUERY
    SELECT now(), running_now, w.scope, w.subject, w.kind, w.per_minute, w.cost, w.step, w.seen, w.taken
    FROM (SELECT) AS one
    LEFT JOIN unnest(scopes, subjects, kinds, limits, costs, steps, seen, taken)
        AS w (scope, subject, kind, per_minute, cost, step, seen, taken) ON true;
END
$$;
