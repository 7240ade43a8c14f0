-- The budget and rate-limit checks of a turn, one statement each. The two a turn makes in transactions of
-- their own, the rate limits' admission at the door and the budgets' reservation before every model call,
-- are functions that are the whole of their transaction: called alone (not inside a transaction of the
-- caller's), each binds the transaction to the tenant it is given, as `db::begin_tenant` does, before it
-- touches a table, so row-level security applies as everywhere; each refuses to run inside a transaction
-- bound to another tenant. One round trip instead of a begin, a tenant binding, the statements and a
-- commit. The settlement runs in the transaction that records the run.
--
-- The admission commits asynchronously (`synchronous_commit` off, for its own transaction only): what it
-- writes is visible to every process the moment it returns, and atomic as ever, but reaches the disk with
-- the WAL writer's next flush (a fraction of a second) or any later commit's; that wait was most of its
-- cost. A PostgreSQL crash in that moment can forget the last admissions, each whole: the limit is that
-- much looser for a minute. A budget reservation is money: it commits durably, as everything else does.

-- Reserves `amount` against every budget line (`subjects[i]` with the limit `limits[i]`) and records the
-- reservation, all or none. A line is open while its spend and reservations are below its limit and the
-- amount fits in what is left. Each line is an `INSERT … ON CONFLICT DO UPDATE … WHERE it fits`: the row
-- lock orders concurrent reservations, and the condition is evaluated on the row's latest version, so
-- together they never pass a limit; lines are taken in subject order, as every statement that locks
-- `budget_spend` rows takes them, so reservations and settlements cannot deadlock. A line that does not
-- fit undoes the lines before it (the inner block is a subtransaction) and is returned with what was
-- spent and reserved against it; no row: reserved.
CREATE FUNCTION reserve_budgets(
    for_tenant uuid, for_run uuid, reservation_id uuid, in_period date, amount numeric,
    subjects text[], limits numeric[])
RETURNS TABLE (refused_subject text, used_usd numeric)
LANGUAGE plpgsql AS $$
#variable_conflict use_column
DECLARE
    line record;
    refused text;
BEGIN
    IF current_tenant_id() IS NOT NULL AND current_tenant_id() <> for_tenant THEN
        RAISE EXCEPTION 'reserve_budgets: the transaction is bound to another tenant';
    END IF;
    PERFORM set_config('app.current_tenant_id', for_tenant::text, true);
    BEGIN
        FOR line IN
            SELECT l.subject, l.limit_usd FROM unnest(subjects, limits) AS l (subject, limit_usd) ORDER BY l.subject
        LOOP
            INSERT INTO budget_spend AS spend (tenant_id, subject, period, reserved_usd)
            SELECT for_tenant, line.subject, in_period, amount WHERE amount <= line.limit_usd AND 0 < line.limit_usd
            ON CONFLICT (tenant_id, subject, period) DO UPDATE
                SET reserved_usd = spend.reserved_usd + excluded.reserved_usd
                WHERE spend.spent_usd + spend.reserved_usd < line.limit_usd
                  AND spend.spent_usd + spend.reserved_usd + excluded.reserved_usd <= line.limit_usd;
            IF NOT FOUND THEN
                refused := line.subject;
                RAISE EXCEPTION USING ERRCODE = 'SB001', MESSAGE = 'a budget refused the reservation';
            END IF;
        END LOOP;
        INSERT INTO budget_reservations (id, tenant_id, run_id, subjects, period, amount_usd)
        VALUES (reservation_id, for_tenant, for_run, subjects, in_period, amount);
    EXCEPTION WHEN SQLSTATE 'SB001' THEN
        RETURN QUERY
        SELECT refused, coalesce((SELECT spend.spent_usd + spend.reserved_usd FROM budget_spend spend
                                  WHERE spend.subject = refused AND spend.period = in_period), 0);
    END;
END
$$;

-- Settles a run's reservations against its budget lines, in the caller's transaction (the run's record,
-- bound to the tenant): removes them, releases from each line what they reserved on it, counts `spent`
-- against each, and returns each line's spend and the highest threshold already audited. Lines are taken
-- in subject order, as reservations take them. A function of simple statements rather than one statement
-- of common table expressions, which PostgreSQL planned afresh at every call (its generic plan looked
-- dearer), at a cost greater than the work.
CREATE FUNCTION settle_budgets(for_tenant uuid, for_run uuid, in_period date, subjects text[], spent numeric)
RETURNS TABLE (subject text, spent_usd numeric, audited_percent smallint)
LANGUAGE plpgsql AS $$
#variable_conflict use_column
DECLARE
    lines text[] := ARRAY(SELECT line FROM unnest(subjects) AS line ORDER BY line);
    released numeric[] := array_fill(0::numeric, ARRAY[cardinality(subjects)]);
    taken record;
BEGIN
    FOR taken IN
        DELETE FROM budget_reservations reservation
        WHERE reservation.tenant_id = for_tenant AND reservation.run_id = for_run
        RETURNING reservation.subjects, reservation.amount_usd
    LOOP
        FOR i IN 1 .. cardinality(lines) LOOP
            IF lines[i] = ANY (taken.subjects) THEN
                released[i] := released[i] + taken.amount_usd;
            END IF;
        END LOOP;
    END LOOP;
    FOR i IN 1 .. cardinality(lines) LOOP
        RETURN QUERY
        INSERT INTO budget_spend AS spend (tenant_id, subject, period, spent_usd)
        VALUES (for_tenant, lines[i], in_period, spent)
        ON CONFLICT (tenant_id, subject, period) DO UPDATE
            SET reserved_usd = greatest(spend.reserved_usd - released[i], 0),
                spent_usd = spend.spent_usd + excluded.spent_usd
        RETURNING spend.subject, spend.spent_usd, spend.audited_percent;
    END LOOP;
END
$$;

-- The rate limits' admission: the limits that apply (the tenant's own setting for the key, the tenant and
-- the end user, else the operator's default given here), the tenant's running runs, and GCRA on every
-- limited bucket, all or nothing. A request costing `cost` of a limit of `per_minute` moves the bucket's
-- `tat` by `step_us` = cost × 60 s / per_minute, and fits when max(tat, now) + step <= now + 60 s.
--
-- The snapshot decides first, so the usual refusal writes nothing. When it says every bucket fits, each
-- is taken with an `INSERT … ON CONFLICT DO UPDATE … WHERE it still fits`, in key order (as the tokens'
-- settlement locks them, so no deadlock): the condition is evaluated on the row's latest version, so two
-- processes admitting at once never both take the last of a limit. When another transaction took the
-- last of one between the snapshot and the row lock, the shares taken are undone (the inner block is a
-- subtransaction) and the buckets' states are read again for the refusal.
--
-- One row per bucket, in key order, with its state as seen and as this request left it (`taken_tat`
-- null in every row: refused); one row with only `now` and `running` when no limit applies.
CREATE FUNCTION admit_rate_limits(
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

    SELECT count(*) INTO running_now FROM runs r WHERE r.tenant_id = for_tenant AND r.status = 'running';

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
