-- A run's executor proves it is alive; a run whose heartbeat stops (its process died) is closed as
-- failed by any Switchboard process sharing the database.

ALTER TABLE runs ADD COLUMN heartbeat_at timestamptz NOT NULL DEFAULT now();
CREATE INDEX runs_unfinished_idx ON runs (heartbeat_at) WHERE status IN ('queued', 'running');

-- The sweeper works across tenants before it knows which tenant a stale run belongs to: it may see the
-- unfinished runs whose heartbeat is old, and nothing else, when the transaction declares itself the sweeper.
CREATE POLICY run_sweeper ON runs FOR SELECT
    USING (current_setting('app.run_sweeper', true) = 'on'
           AND status IN ('queued', 'running')
           AND heartbeat_at < now() - interval '30 seconds');
