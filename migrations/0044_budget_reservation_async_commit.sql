-- A budget reservation commits asynchronously (issue 16's goal: the checks add at most 0.3 ms to a turn;
-- waiting for the disk was three quarters of the reservation's cost). What it writes is visible to every
-- process the moment it returns and atomic as ever; it reaches the disk with the WAL writer's next flush
-- (within a fraction of a second) or any later durable commit's, such as the run's record, which settles
-- it. What a PostgreSQL crash in that moment can lose is only reservations, never spend: each run's cost is
-- counted by its settlement, which commits durably with its usage record; until the runs whose
-- reservations were lost settle, other runs may reserve what those had held. Called alone, as before, the
-- setting is the function's own transaction's.
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
