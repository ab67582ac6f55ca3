-- SQLite's 0059 (see there) adds workflow_runs_claimed, a partial index on
-- the claimed runs, for the UPDATE that frees a crashed node's run claims
-- (releasePreviousClaimsTx in store/nodes.go). PostgreSQL adds nothing: it
-- kept the partial due index workflow_runs_due, which already serves that
-- UPDATE (a claimed run was due when claimed), and here every fired run is
-- claimed, so an index on claimed_by would cost a write per claim and per
-- move. The migration exists so that both engines know the same numbers;
-- this statement does nothing.
SELECT 1;
