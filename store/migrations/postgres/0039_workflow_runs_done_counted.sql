-- A run's last step moves it from waiting to done, and the trigger then
-- ran two statements per run on workflow_run_counts. Only the scheduler
-- ends a run as done (Store.AdvanceRuns), and it counts its done runs
-- itself, per partner and workflow of a batch, in the same transaction (as
-- on SQLite, migration 0039 there). The trigger keeps counting every other
-- change of status.
DROP TRIGGER workflow_runs_counted_status ON workflow_runs;
CREATE TRIGGER workflow_runs_counted_status AFTER UPDATE OF status ON workflow_runs
    FOR EACH ROW WHEN (OLD.status <> NEW.status AND NEW.status <> 'done') EXECUTE FUNCTION workflow_runs_counted();
