-- Every statement that moves waiting runs to another status now counts
-- them itself, one pair of statements per partner and workflow of the
-- statement (store/workflow_counts.go): the scheduler's batches (done,
-- suppressed, failed), exit events, and cancellations by hand. The
-- trigger of migration 0039 still entered its sub-program for every run a
-- batch moved, even the done ones its WHEN left out: a quarter of moving a
-- fired run (workflow/BENCHMARKS.md, session 8). Deletes are still counted
-- by their trigger (0022).
DROP TRIGGER workflow_runs_counted_status;
