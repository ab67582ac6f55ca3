-- A started run is counted by the batch that stores it (store/events_batch.go:
-- one upsert per partner, workflow and status of each multi-row insert),
-- not by a trigger per inserted row: the trigger's upsert was an eighth of
-- accepting an event (workflow/BENCHMARKS.md, session 7). Status changes
-- and deletes are still counted by their triggers (0022). acceptEvents is
-- the only writer of new runs.
DROP TRIGGER workflow_runs_counted_insert;
