-- The sender's two transitions, a claim (queued -> sending) and a
-- delivery (sending -> sent), are nearly every status change of a healthy
-- run: with the per-row triggers of 0012 each cost two job_counts upserts,
-- and a delivery a channel_minutes upsert too, a few microseconds a
-- message on the sender's hot path. The store now tallies those two
-- transitions itself, one upsert per job, channel and status per batch,
-- in the statement's own transaction (store/tally.go). Every statement
-- that makes either transition must tally it: claimSQL, the sent
-- statements of CompleteMessages, and the settling of deliveries
-- recorded by versions before the delivery log. Every other status
-- change is still tallied by the triggers.
DROP TRIGGER job_counts_on_status;
CREATE TRIGGER job_counts_on_status AFTER UPDATE OF status ON messages
WHEN OLD.status <> NEW.status
    AND NOT (OLD.status = 'queued' AND NEW.status = 'sending')
    AND NOT (OLD.status = 'sending' AND NEW.status = 'sent')
BEGIN
    UPDATE job_counts SET n = n - 1 WHERE job_id = OLD.job_id AND channel = OLD.channel AND status = OLD.status;
    INSERT INTO job_counts (job_id, channel, status, n) VALUES (NEW.job_id, NEW.channel, NEW.status, 1)
        ON CONFLICT (job_id, channel, status) DO UPDATE SET n = n + 1;
END;

DROP TRIGGER channel_minutes_on_outcome;
CREATE TRIGGER channel_minutes_on_outcome AFTER UPDATE OF status ON messages
WHEN OLD.status <> NEW.status AND (NEW.status = 'failed' OR (NEW.status = 'sent' AND OLD.status <> 'sending'))
BEGIN
    INSERT INTO channel_minutes (channel, minute, sent, failed)
        VALUES (NEW.channel, unixepoch() / 60, NEW.status = 'sent', NEW.status = 'failed')
        ON CONFLICT (channel, minute) DO UPDATE SET sent = sent + excluded.sent, failed = failed + excluded.failed;
END;
