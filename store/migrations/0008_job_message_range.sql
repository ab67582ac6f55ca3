-- The range of message ids each job's messages lie in. A job's messages
-- are written together, so their ids are (nearly) contiguous: listing them
-- in id order is then a walk of the table's own b-tree over that range,
-- which stops after a page of results. Without it a page of
-- GET /api/v1/jobs/{id}/messages, and the result report, read the job's
-- every index entry and sorted them: about half a second per page of a
-- million-row job, so paging through it was quadratic.
-- 0 / 0: no messages (or not known, for a job whose writer never set it).
ALTER TABLE jobs ADD COLUMN first_message_id INTEGER NOT NULL DEFAULT 0;
ALTER TABLE jobs ADD COLUMN last_message_id  INTEGER NOT NULL DEFAULT 0;

UPDATE jobs SET
    first_message_id = COALESCE((SELECT MIN(id) FROM messages WHERE job_id = jobs.id), 0),
    last_message_id  = COALESCE((SELECT MAX(id) FROM messages WHERE job_id = jobs.id), 0);
