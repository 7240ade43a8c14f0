-- Every priced call reserves its cost before it is made, not only a run's model calls: a call made outside
-- any run (`/v1/embeddings`, a search's or a document's embedding, a rerank) reserves under an id of its
-- own, so concurrent calls cannot pass a budget together either. `run_id` names the run or that call, and
-- no longer references `runs`.
ALTER TABLE budget_reservations DROP CONSTRAINT budget_reservations_run_id_fkey;
CREATE INDEX budget_reservations_age_idx ON budget_reservations (tenant_id, created_at);

-- Releases the tenant's reservations that nobody will settle: a call's once it is older than any call
-- lasts (its process died first), a run's once that run has ended or is gone (the sweeper closes a dead
-- process's runs and releases theirs; this also catches one it missed). Rows are taken in subject order,
-- as every statement that locks `budget_spend` rows takes them. The number released.
CREATE FUNCTION release_stale_budget_reservations(for_tenant uuid, older_than interval)
RETURNS integer
LANGUAGE plpgsql AS $$
DECLARE
    released integer;
BEGIN
    WITH taken AS (
        DELETE FROM budget_reservations reservation
        WHERE reservation.tenant_id = for_tenant AND reservation.created_at < now() - older_than
          AND NOT EXISTS (SELECT 1 FROM runs
                          WHERE runs.id = reservation.run_id AND runs.status IN ('queued', 'running', 'awaiting_approval'))
        RETURNING reservation.subjects, reservation.period, reservation.amount_usd),
    amounts AS (
        SELECT subject, taken.period, sum(taken.amount_usd) AS amount
        FROM taken, unnest(taken.subjects) AS subject GROUP BY subject, taken.period),
    locked AS (
        SELECT spend.subject, spend.period, amounts.amount FROM budget_spend spend
        JOIN amounts ON (amounts.subject, amounts.period) = (spend.subject, spend.period)
        WHERE spend.tenant_id = for_tenant
        ORDER BY spend.subject, spend.period
        FOR UPDATE OF spend),
    updated AS (
        UPDATE budget_spend spend SET reserved_usd = greatest(spend.reserved_usd - locked.amount, 0)
        FROM locked
        WHERE spend.tenant_id = for_tenant AND (spend.subject, spend.period) = (locked.subject, locked.period))
    SELECT count(*) INTO released FROM taken;
    RETURN released;
END
$$;

-- As in 0044, and when a line refuses: the tenant's stale reservations are released and the reservation
-- tried once more, so a reservation left by a process that died holds a budget only until it is needed.
-- Nothing is looked at while the budgets have room.
CREATE OR REPLACE FUNCTION reserve_budgets(
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
    PERFORM set_config('synchronous_commit', 'off', true);
    FOR attempt IN 1 .. 2 LOOP
        refused := NULL;
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
            -- Handled below: the subtransaction is undone, its row locks released.
        END;
        EXIT WHEN refused IS NULL
            OR attempt = 2
            OR release_stale_budget_reservations(for_tenant, interval '15 minutes') = 0;
    END LOOP;
    IF refused IS NOT NULL THEN
        RETURN QUERY
        SELECT refused, coalesce((SELECT spend.spent_usd + spend.reserved_usd FROM budget_spend spend
                                  WHERE spend.subject = refused AND spend.period = in_period), 0);
    END IF;
END
$$;
