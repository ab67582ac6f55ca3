-- SQLite finds waiting runs by due ranges instead of the partial index
-- workflow_runs_due (see the SQLite migration of the same number).
-- PostgreSQL keeps the index, which its claims lock rows through
-- (store/workflow_claim_pg.go); the table exists on both engines so that
-- the schema stays one, and stays empty here.
CREATE TABLE workflow_due_ranges (
    due_at    BIGINT NOT NULL,
    first_run BIGINT NOT NULL,
    last_run  BIGINT NOT NULL,
    PRIMARY KEY (due_at, first_run)
);
