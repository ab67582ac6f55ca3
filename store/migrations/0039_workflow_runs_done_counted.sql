-- A run's last step moves it from waiting to done, and the trigger of
-- migration 0022 then ran two statements per run (a decrement and an
-- upsert of workflow_run_counts): two thirds of the update that fires a
-- batch of runs (workflow/BENCHMARKS.md, session 7). Only the scheduler
-- ends a run as done (Store.AdvanceRuns), and it now counts its done runs
-- itself, two statements per partner and workflow of a batch, in the same
-- transaction. The trigger keeps counting every other change of status
-- (cancellations, exit events, suppressed and failed runs).
DROP TRIGGER workflow_runs_counted_status;
CREATE TRIGGER workflow_runs_counted_status AFTER UPDATE OF status ON workflow_runs
WHEN OLD.status <> NEW.status AND NEW.status <> 'done' BEGIN
    UPDATE workflow_run_counts SET n = n - 1
    WHERE partner = OLD.partner AND workflow = OLD.workflow AND status = OLD.status;
    INSERT INTO workflow_run_counts (partner, workflow, status, n) VALUES (NEW.partner, NEW.workflow, NEW.status, 1)
    ON CONFLICT (partner, workflow, status) DO UPDATE SET n = n + 1;
END;
