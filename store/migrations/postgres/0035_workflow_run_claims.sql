-- Several nodes on one PostgreSQL database split the due workflow runs
-- (issue 13): a node claims a batch of due runs (claimed_by, until
-- claimed_until, ms) before it renders their steps, and the other nodes'
-- schedulers skip them until the run moves on or the claim lapses (a node
-- that died). One node on SQLite reads its due runs as before and never
-- sets these columns; they are here so that both engines keep one schema.
ALTER TABLE workflow_runs ADD COLUMN claimed_by TEXT NOT NULL DEFAULT '';
ALTER TABLE workflow_runs ADD COLUMN claimed_until BIGINT NOT NULL DEFAULT 0;
