-- The count of running runs (0051) moves when a transaction commits, not when it changes a run. Counted at
-- the change, a turn's start held its shard's row from its `INSERT INTO runs` until its commit, and waited
-- meanwhile for its budget reservation on a second connection (`engine::record_turn`, the reservation
-- beside the start). A run's record, holding the tenant's `budget_spend` row from its settlement, then
-- waited for that shard to count its end; the reservation waited for the record's `budget_spend` row; the
-- start waited for the reservation in the application, where PostgreSQL sees no deadlock: all three hung.
-- Deferred to the commit, the shard's row is held only while a transaction commits, by one that waits
-- for nothing else. The count is read by others only once committed, so it says what it said before.
DROP TRIGGER runs_start_running ON runs;
DROP TRIGGER runs_change_running ON runs;
DROP TRIGGER runs_delete_running ON runs;

CREATE CONSTRAINT TRIGGER runs_start_running AFTER INSERT ON runs
    DEFERRABLE INITIALLY DEFERRED
    FOR EACH ROW WHEN (NEW.status = 'running') EXECUTE FUNCTION count_running_runs();
CREATE CONSTRAINT TRIGGER runs_change_running AFTER UPDATE OF status ON runs
    DEFERRABLE INITIALLY DEFERRED
    FOR EACH ROW WHEN ((OLD.status = 'running') IS DISTINCT FROM (NEW.status = 'running'))
    EXECUTE FUNCTION count_running_runs();
CREATE CONSTRAINT TRIGGER runs_delete_running AFTER DELETE ON runs
    DEFERRABLE INITIALLY DEFERRED
    FOR EACH ROW WHEN (OLD.status = 'running') EXECUTE FUNCTION count_running_runs();
