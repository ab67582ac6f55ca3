-- A send step that queued its message is no longer a workflow_steps row
-- per run: runs fired together with consecutive ids whose messages got
-- consecutive ids (a batch's runs, in due order, are mostly consecutive
-- runs started together, and one job's messages are consecutive) are one
-- row here. Run first_run + k queued message first_message + k at step
-- `step`, at `at` (outcome queued, no detail). Each queued step's row was
-- a sixth of the scheduler's writer time per fired run
-- (workflow/BENCHMARKS.md, session 10). A range spans at most 4,096 run
-- ids, so that the ranges holding a run are found by the key's prefix
-- (first_run between id - 4,095 and id). Older queued steps stay in
-- workflow_steps; StepsOfRun reads both.
CREATE TABLE workflow_sent_ranges (
    first_run     INTEGER NOT NULL,
    last_run      INTEGER NOT NULL,
    step          INTEGER NOT NULL,
    at            INTEGER NOT NULL,
    first_message INTEGER NOT NULL,
    PRIMARY KEY (first_run, step)
) STRICT, WITHOUT ROWID;
