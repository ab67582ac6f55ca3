-- job_counts becomes a live tally of every job's messages per channel and
-- status, kept by triggers in the same transactions that change a
-- message's status. 0007 tallied only finished jobs, so an unfinished
-- job was still counted row by row at every request: while a
-- 3,000,000-row job sent, GET /api/v1/jobs took 1.0-1.1 s and /metrics
-- 1.2-1.8 s. Now both read a few rows per job, whatever its size.
--
-- A file job's messages are written while the job is "ingesting", a
-- million rows in seconds: a trigger per inserted row would slow ingest,
-- so those rows are tallied once, by one count, when the job leaves
-- "ingesting" (the job writer's commit). Messages inserted into any
-- other job (API sends, CreateJob) are tallied by the store in the
-- inserting transaction (store/counts.go): even a trigger that only
-- checks the job's status cost 40% of file ingest. Status changes
-- and deletes are tallied always; for an ingesting job the recount at
-- its commit replaces whatever they left.
DROP TRIGGER job_counts_on_finish;
DROP TRIGGER job_counts_on_reopen;
DELETE FROM job_counts;
INSERT INTO job_counts (job_id, channel, status, n)
    SELECT m.job_id, m.channel, m.status, COUNT(*) FROM messages m
    WHERE m.job_id IN (SELECT id FROM jobs WHERE status <> 'ingesting')
    GROUP BY m.job_id, m.status, m.channel;

CREATE TRIGGER job_counts_on_queue AFTER UPDATE OF status ON jobs
WHEN OLD.status = 'ingesting' AND NEW.status <> 'ingesting'
BEGIN
    DELETE FROM job_counts WHERE job_id = NEW.id;
    INSERT INTO job_counts (job_id, channel, status, n)
        SELECT NEW.id, channel, status, COUNT(*) FROM messages WHERE job_id = NEW.id GROUP BY status, channel;
END;

CREATE TRIGGER job_counts_on_job_delete AFTER DELETE ON jobs
BEGIN
    DELETE FROM job_counts WHERE job_id = OLD.id;
END;

CREATE TRIGGER job_counts_on_status AFTER UPDATE OF status ON messages
WHEN OLD.status <> NEW.status
BEGIN
    UPDATE job_counts SET n = n - 1 WHERE job_id = OLD.job_id AND channel = OLD.channel AND status = OLD.status;
    INSERT INTO job_counts (job_id, channel, status, n) VALUES (NEW.job_id, NEW.channel, NEW.status, 1)
        ON CONFLICT (job_id, channel, status) DO UPDATE SET n = n + 1;
END;

CREATE TRIGGER job_counts_on_delete AFTER DELETE ON messages
BEGIN
    UPDATE job_counts SET n = n - 1 WHERE job_id = OLD.job_id AND channel = OLD.channel AND status = OLD.status;
END;

-- Messages sent and failed per channel and minute, for the status
-- console's 24-hour chart and "in the last hour" figures: kept by the
-- same kind of trigger, so the chart reads at most 1,440 rows per channel
-- instead of scanning a day of messages. Rows older than two days are
-- pruned by the admin server.
CREATE TABLE channel_minutes (
    channel TEXT    NOT NULL,
    minute  INTEGER NOT NULL,           -- Unix time / 60
    sent    INTEGER NOT NULL DEFAULT 0,
    failed  INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (channel, minute)
) STRICT, WITHOUT ROWID;

CREATE TRIGGER channel_minutes_on_outcome AFTER UPDATE OF status ON messages
WHEN OLD.status <> NEW.status AND NEW.status IN ('sent', 'failed')
BEGIN
    INSERT INTO channel_minutes (channel, minute, sent, failed)
        VALUES (NEW.channel, unixepoch() / 60, NEW.status = 'sent', NEW.status = 'failed')
        ON CONFLICT (channel, minute) DO UPDATE SET sent = sent + excluded.sent, failed = failed + excluded.failed;
END;
