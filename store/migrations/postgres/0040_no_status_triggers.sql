-- No trigger on a message's status any more (see the SQLite migration of
-- the same number): every statement that changes a message's status
-- tallies job_counts, and channel_minutes for failed messages, per batch
-- in its own transaction (store/tally.go). job_counts_on_message stays: the
-- delete trigger uses it.
DROP TRIGGER job_counts_on_status ON messages;
DROP TRIGGER channel_minutes_on_outcome ON messages;
DROP FUNCTION channel_minutes_on_outcome();
