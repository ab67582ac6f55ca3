-- One index for the message queue instead of two. messages_due (partial:
-- queued rows) and messages_job (job_id, status) cost two index inserts per
-- message at ingest, most of a bulk insert's b-tree work. messages_queue
-- serves both: its (job_id, status, channel, next_attempt_at) prefix is the
-- claim's equality-equality-equality-range with the order it wants
-- (next_attempt_at, then id), and its (job_id, status) prefix is every
-- per-job count, cancel, retry and "anything left?" probe.
-- messages_leased stays: it is partial on 'sending', so inserting queued
-- rows never touches it.
DROP INDEX messages_due;
DROP INDEX messages_job;
CREATE INDEX messages_queue ON messages (job_id, status, channel, next_attempt_at);
