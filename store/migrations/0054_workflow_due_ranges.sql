-- Waiting runs are found by due ranges instead of the partial index
-- workflow_runs_due: an entry (due_at, first_run, last_run) says that the
-- runs with ids first_run..last_run that still wait with that due time are
-- due then (store/workflow_due.go). Runs started together with one due
-- time are one entry, so starting a run no longer inserts an index entry,
-- and firing one no longer deletes it: the index's delete was nearly half
-- of a fired run's move (workflow/BENCHMARKS.md, session 10). The runs
-- already waiting get an entry each.
CREATE TABLE workflow_due_ranges (
    due_at    INTEGER NOT NULL,
    first_run INTEGER NOT NULL,
    last_run  INTEGER NOT NULL,
    PRIMARY KEY (due_at, first_run)
) STRICT, WITHOUT ROWID;
INSERT INTO workflow_due_ranges (due_at, first_run, last_run)
SELECT due_at, id, id FROM workflow_runs WHERE status = 'waiting';
DROP INDEX workflow_runs_due;
