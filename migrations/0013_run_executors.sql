-- A run records the process executing it (its executor number). A process holds an advisory lock on its
-- number, on a connection of its own, for as long as it lives: when the process dies, its connection
-- closes and PostgreSQL releases the lock at once. So a killed process's runs are known to be dead as
-- soon as any process looks (at its restart, or at the next sweep of another), not only when their
-- heartbeat grows old.

ALTER TABLE runs ADD COLUMN executor bigint;

-- Whether the process with this executor number is alive: it holds its lock in this database.
CREATE FUNCTION executor_alive(executor bigint) RETURNS boolean
    LANGUAGE sql STABLE PARALLEL SAFE
    AS $$
        SELECT EXISTS (
            SELECT 1 FROM pg_locks
            WHERE locktype = 'advisory' AND granted AND objsubid = 1
              AND database = (SELECT oid FROM pg_database WHERE datname = current_database())
              AND ((classid::bigint << 32) | objid::bigint) = executor)
    $$;

-- The sweeper sees a running run whose executor died at once, and any unfinished run silent for 30 s.
DROP POLICY run_sweeper ON runs;
CREATE POLICY run_sweeper ON runs FOR SELECT
    USING (current_setting('app.run_sweeper', true) = 'on'
           AND status IN ('queued', 'running')
           AND (heartbeat_at < now() - interval '30 seconds'
                OR (status = 'running' AND executor IS NOT NULL AND NOT executor_alive(executor))));
