-- Every statement that moves waiting runs to another status counts them
-- itself, per partner and workflow of the statement
-- (store/workflow_counts.go), as on SQLite (migration 0042 there). Deletes
-- are still counted by their trigger.
DROP TRIGGER workflow_runs_counted_status ON workflow_runs;
