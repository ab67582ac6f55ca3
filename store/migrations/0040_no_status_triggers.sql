-- No trigger on a message's status any more. Since 0016 the sender's two
-- transitions (queued -> sending, sending -> sent) were tallied by the
-- store per batch, but SQLite still entered the two AFTER UPDATE OF status
-- triggers' programs for every row the claim and the outcome changed (3 to
-- 4.5 us a row in each statement, their WHEN clauses notwithstanding).
-- Every statement that changes a message's status now returns (job_id,
-- channel, status) of each row it changed and tallies job_counts, and
-- channel_minutes for failed messages, in its own transaction
-- (store/tally.go: tallyMovesTx for the sender's batches, tallyChangesTx
-- for cancel, retry, release, lease recovery and the retried, failed,
-- expired and suppressed outcomes). Deletes are still counted by
-- job_counts_on_delete.
DROP TRIGGER job_counts_on_status;
DROP TRIGGER channel_minutes_on_outcome;
