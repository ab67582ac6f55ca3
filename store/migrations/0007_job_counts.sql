-- Message counts of finished jobs, per channel and status. Counting a
-- job's messages walks its whole slice of messages_queue: about a second
-- for a million-row job, paid by every GET /api/v1/jobs (once per listed
-- job) and every /metrics scrape (every message of every job). A finished
-- job's messages no longer change, so they are counted once, when the job
-- finishes, and the readers use the tally; only unfinished jobs are
-- counted live.
--
-- The triggers keep the tally exact whichever statement finishes or
-- reopens a job: finished_at goes from NULL to a time exactly when a job
-- ends (done, or cancelled with nothing left in flight) and back to NULL
-- when an admin retry reopens it; nothing changes a message of a job
-- while its finished_at is set.
CREATE TABLE job_counts (
    job_id  INTEGER NOT NULL,
    channel TEXT    NOT NULL,
    status  TEXT    NOT NULL,
    n       INTEGER NOT NULL,
    PRIMARY KEY (job_id, channel, status)
) STRICT, WITHOUT ROWID;

INSERT INTO job_counts (job_id, channel, status, n)
    SELECT m.job_id, m.channel, m.status, COUNT(*) FROM messages m
    WHERE m.job_id IN (SELECT id FROM jobs WHERE finished_at IS NOT NULL)
    GROUP BY m.job_id, m.status, m.channel;

CREATE TRIGGER job_counts_on_finish AFTER UPDATE OF finished_at ON jobs
WHEN NEW.finished_at IS NOT NULL AND OLD.finished_at IS NULL
BEGIN
    DELETE FROM job_counts WHERE job_id = NEW.id;
    INSERT INTO job_counts (job_id, channel, status, n)
        SELECT NEW.id, channel, status, COUNT(*) FROM messages WHERE job_id = NEW.id GROUP BY status, channel;
END;

CREATE TRIGGER job_counts_on_reopen AFTER UPDATE OF finished_at ON jobs
WHEN NEW.finished_at IS NULL AND OLD.finished_at IS NOT NULL
BEGIN
    DELETE FROM job_counts WHERE job_id = NEW.id;
END;
