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

-- status_totals: how many files and jobs are in each status, and how
-- many messages of finished jobs per channel and status, so /metrics
-- reads a few rows instead of every job's tally. Files and jobs change
-- rarely (a trigger per row is nothing); messages are added per job, when
-- it finishes, and taken back when a retry reopens it (the store reopens
-- the job before it changes any message, so what is taken back is what
-- was added). Unfinished jobs' messages are read from job_counts.
CREATE TABLE status_totals (
    kind    TEXT    NOT NULL,           -- files | jobs | messages
    channel TEXT    NOT NULL,           -- messages only
    status  TEXT    NOT NULL,
    n       INTEGER NOT NULL,
    PRIMARY KEY (kind, channel, status)
) STRICT, WITHOUT ROWID;
INSERT INTO status_totals (kind, channel, status, n) SELECT 'files', '', status, COUNT(*) FROM files GROUP BY status;
INSERT INTO status_totals (kind, channel, status, n) SELECT 'jobs', '', status, COUNT(*) FROM jobs GROUP BY status;
INSERT INTO status_totals (kind, channel, status, n)
    SELECT 'messages', c.channel, c.status, SUM(c.n) FROM job_counts c JOIN jobs j ON j.id = c.job_id
    WHERE j.finished_at IS NOT NULL GROUP BY c.channel, c.status;
CREATE INDEX jobs_unfinished ON jobs (id) WHERE finished_at IS NULL;

CREATE TRIGGER status_totals_file_insert AFTER INSERT ON files
BEGIN
    INSERT INTO status_totals (kind, channel, status, n) VALUES ('files', '', NEW.status, 1)
        ON CONFLICT (kind, channel, status) DO UPDATE SET n = n + 1;
END;
CREATE TRIGGER status_totals_file_status AFTER UPDATE OF status ON files
WHEN OLD.status <> NEW.status
BEGIN
    UPDATE status_totals SET n = n - 1 WHERE kind = 'files' AND channel = '' AND status = OLD.status;
    INSERT INTO status_totals (kind, channel, status, n) VALUES ('files', '', NEW.status, 1)
        ON CONFLICT (kind, channel, status) DO UPDATE SET n = n + 1;
END;
CREATE TRIGGER status_totals_file_delete AFTER DELETE ON files
BEGIN
    UPDATE status_totals SET n = n - 1 WHERE kind = 'files' AND channel = '' AND status = OLD.status;
END;
CREATE TRIGGER status_totals_job_insert AFTER INSERT ON jobs
BEGIN
    INSERT INTO status_totals (kind, channel, status, n) VALUES ('jobs', '', NEW.status, 1)
        ON CONFLICT (kind, channel, status) DO UPDATE SET n = n + 1;
END;

-- One trigger for a job's status and finished_at, so that a job queued
-- and finished by one statement (a file with no rows) is tallied in order:
-- first its messages are counted, then added to the totals.
CREATE TRIGGER job_counts_on_job AFTER UPDATE OF status, finished_at ON jobs
BEGIN
    UPDATE status_totals SET n = n - 1 WHERE OLD.status <> NEW.status AND kind = 'jobs' AND channel = '' AND status = OLD.status;
    INSERT INTO status_totals (kind, channel, status, n) SELECT 'jobs', '', NEW.status, 1 WHERE OLD.status <> NEW.status
        ON CONFLICT (kind, channel, status) DO UPDATE SET n = n + 1;

    DELETE FROM job_counts WHERE OLD.status = 'ingesting' AND NEW.status <> 'ingesting' AND job_id = NEW.id;
    INSERT INTO job_counts (job_id, channel, status, n)
        SELECT NEW.id, channel, status, COUNT(*) FROM messages
        WHERE OLD.status = 'ingesting' AND NEW.status <> 'ingesting' AND job_id = NEW.id GROUP BY status, channel;

    INSERT INTO status_totals (kind, channel, status, n)
        SELECT 'messages', channel, status, n FROM job_counts
        WHERE NEW.finished_at IS NOT NULL AND OLD.finished_at IS NULL AND job_id = NEW.id
        ON CONFLICT (kind, channel, status) DO UPDATE SET n = n + excluded.n;
    UPDATE status_totals SET n = n - COALESCE((SELECT c.n FROM job_counts c
            WHERE c.job_id = NEW.id AND c.channel = status_totals.channel AND c.status = status_totals.status), 0)
        WHERE NEW.finished_at IS NULL AND OLD.finished_at IS NOT NULL AND kind = 'messages';
END;

CREATE TRIGGER job_counts_on_job_delete AFTER DELETE ON jobs
BEGIN
    UPDATE status_totals SET n = n - 1 WHERE kind = 'jobs' AND channel = '' AND status = OLD.status;
    UPDATE status_totals SET n = n - COALESCE((SELECT c.n FROM job_counts c
            WHERE c.job_id = OLD.id AND c.channel = status_totals.channel AND c.status = status_totals.status), 0)
        WHERE OLD.finished_at IS NOT NULL AND kind = 'messages';
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
