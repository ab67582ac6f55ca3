-- A leaner message row: partner, priority and created_at are the same for
-- every message of a job, so they are read from jobs instead of being
-- written a million times for a million-row file; and no foreign key to
-- jobs, which cost a parent lookup per inserted row (jobs and their
-- messages are created and removed together by the store). ~17% faster
-- file ingest (ingest/BENCHMARKS.md).
--
-- SQLite cannot drop columns that an index or a foreign key names, so the
-- table is rebuilt the way ALTER TABLE's documentation prescribes: create
-- the new table, copy, drop the old one, rename the new one. The migration
-- runner runs every migration with foreign keys off and checks them before
-- it commits (store/store.go): with them on, dropping the old table would
-- fail on the attempts rows that reference it. attempts' REFERENCES
-- messages (id) names the table by name, so after the rename it refers to
-- the new table; ids are copied as they are.
CREATE TABLE messages_lean (
    id              INTEGER PRIMARY KEY,
    job_id          INTEGER NOT NULL,           -- jobs (id): partner, priority and created_at come from the job
    channel         TEXT    NOT NULL,
    line            INTEGER NOT NULL DEFAULT 0, -- CSV line, 0 for API messages
    ref             TEXT    NOT NULL DEFAULT '',
    recipient       TEXT    NOT NULL,
    subject         TEXT    NOT NULL DEFAULT '',
    body            TEXT    NOT NULL,
    format          TEXT    NOT NULL DEFAULT 'text',
    sender          TEXT    NOT NULL DEFAULT '',
    vars            TEXT    NOT NULL DEFAULT '{}', -- JSON object of the row's variables
    status          TEXT    NOT NULL,           -- queued | held | sending | sent | failed | suppressed | cancelled
    attempts        INTEGER NOT NULL DEFAULT 0,
    next_attempt_at INTEGER NOT NULL,           -- also send_at for a first attempt
    lease_until     INTEGER NOT NULL DEFAULT 0,
    expires_at      INTEGER NOT NULL DEFAULT 0, -- 0: no max age
    age_from        INTEGER NOT NULL DEFAULT 0, -- 0: the max-age window starts at the job's created_at
    provider_id     TEXT    NOT NULL DEFAULT '',
    last_error      TEXT    NOT NULL DEFAULT '',
    sent_at         INTEGER,
    updated_at      INTEGER NOT NULL
) STRICT;

-- A message created after its job (a file job's rows are written over the
-- ingest's seconds) keeps its own start of the max-age window in age_from,
-- unless an admin retry already set one.
INSERT INTO messages_lean (id, job_id, channel, line, ref, recipient, subject, body, format, sender, vars,
        status, attempts, next_attempt_at, lease_until, expires_at, age_from, provider_id, last_error, sent_at, updated_at)
    SELECT m.id, m.job_id, m.channel, m.line, m.ref, m.recipient, m.subject, m.body, m.format, m.sender, m.vars,
        m.status, m.attempts, m.next_attempt_at, m.lease_until, m.expires_at,
        CASE WHEN m.age_from = 0 AND m.created_at <> j.created_at THEN m.created_at ELSE m.age_from END,
        m.provider_id, m.last_error, m.sent_at, m.updated_at
    FROM messages m LEFT JOIN jobs j ON j.id = m.job_id;

DROP TABLE messages;
-- Since SQLite 3.26 a rename re-checks every trigger and view of the
-- schema, and one that reads messages (on another table) refers, at this
-- point, to a table that does not exist: the rename would fail. The legacy
-- rename only renames; the rebuilt table has the name they refer to.
PRAGMA legacy_alter_table = ON;
ALTER TABLE messages_lean RENAME TO messages;
PRAGMA legacy_alter_table = OFF;

-- messages_queue as 0003 left it. messages_leased is not recreated: 0006
-- drops it, and a database that applied 0006 before this migration (a
-- build between the two) must not get it back.
CREATE INDEX messages_queue ON messages (job_id, status, channel, next_attempt_at);
