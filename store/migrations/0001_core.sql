-- Core tables: files, jobs, messages (with delivery state), attempts and
-- versioned templates. Times are Unix milliseconds (UTC) so comparisons in
-- the claim query stay integer comparisons.

CREATE TABLE meta (
    key   TEXT PRIMARY KEY,
    value TEXT NOT NULL
) STRICT;

CREATE TABLE files (
    id           INTEGER PRIMARY KEY,
    partner      TEXT    NOT NULL,
    name         TEXT    NOT NULL,              -- path in the partner home: inbox/welcome/orders.csv
    size         INTEGER NOT NULL DEFAULT 0,
    sha256       TEXT    NOT NULL DEFAULT '',
    status       TEXT    NOT NULL,              -- received | rejected | queued
    error        TEXT    NOT NULL DEFAULT '',   -- file-level summary, for the API
    rows_total   INTEGER NOT NULL DEFAULT 0,
    rows_bad     INTEGER NOT NULL DEFAULT 0,
    job_id       INTEGER,
    archive_path TEXT    NOT NULL DEFAULT '',
    created_at   INTEGER NOT NULL,
    updated_at   INTEGER NOT NULL
) STRICT;
CREATE INDEX files_partner_sha ON files (partner, sha256);
CREATE INDEX files_status ON files (status, id);

-- Every rejected row (or one file-level row, line 0) of a file.
CREATE TABLE file_errors (
    file_id INTEGER NOT NULL REFERENCES files (id),
    line    INTEGER NOT NULL,
    col     TEXT    NOT NULL DEFAULT '',
    value   TEXT    NOT NULL DEFAULT '',
    error   TEXT    NOT NULL
) STRICT;
CREATE INDEX file_errors_file ON file_errors (file_id, line);

CREATE TABLE templates (
    id         INTEGER PRIMARY KEY,
    partner    TEXT    NOT NULL,
    name       TEXT    NOT NULL,
    version    INTEGER NOT NULL,
    channel    TEXT    NOT NULL,
    subject    TEXT    NOT NULL DEFAULT '',
    format     TEXT    NOT NULL DEFAULT 'text',
    sender     TEXT    NOT NULL DEFAULT '',     -- optional "from" header line
    body       TEXT    NOT NULL,
    source     TEXT    NOT NULL,                -- the uploaded file as it was
    created_at INTEGER NOT NULL,
    UNIQUE (partner, name, version)
) STRICT;

CREATE TABLE jobs (
    id          INTEGER PRIMARY KEY,
    partner     TEXT    NOT NULL,
    source      TEXT    NOT NULL,               -- file | api | list | workflow
    file_id     INTEGER,
    file_name   TEXT    NOT NULL DEFAULT '',    -- path in the home, for reports
    status      TEXT    NOT NULL,               -- ingesting | queued | sending | paused | done | cancelled
    priority    INTEGER NOT NULL DEFAULT 1,     -- 0 transactional (api, workflow), 1 bulk
    total       INTEGER NOT NULL DEFAULT 0,
    created_at  INTEGER NOT NULL,
    started_at  INTEGER,
    finished_at INTEGER,
    reported_at INTEGER                         -- result report written
) STRICT;
CREATE INDEX jobs_status ON jobs (status, id);

CREATE TABLE messages (
    id              INTEGER PRIMARY KEY,
    job_id          INTEGER NOT NULL REFERENCES jobs (id),
    partner         TEXT    NOT NULL,
    channel         TEXT    NOT NULL,
    priority        INTEGER NOT NULL DEFAULT 1,
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
    provider_id     TEXT    NOT NULL DEFAULT '',
    last_error      TEXT    NOT NULL DEFAULT '',
    sent_at         INTEGER,
    created_at      INTEGER NOT NULL,
    updated_at      INTEGER NOT NULL
) STRICT;
-- The sender picks runnable jobs first (a small table), then claims due
-- messages of one job and channel through this partial index: only queued
-- rows are in it. Gating at the job keeps pause/resume and the
-- ingesting → queued switch to one row update, however large the job.
CREATE INDEX messages_due ON messages (job_id, channel, next_attempt_at) WHERE status = 'queued';
CREATE INDEX messages_job ON messages (job_id, status);
CREATE INDEX messages_leased ON messages (lease_until) WHERE status = 'sending';

CREATE TABLE attempts (
    message_id INTEGER NOT NULL REFERENCES messages (id),
    attempt    INTEGER NOT NULL,
    at         INTEGER NOT NULL,
    outcome    TEXT    NOT NULL,                -- sent | retry | failed
    error      TEXT    NOT NULL DEFAULT '',
    PRIMARY KEY (message_id, attempt)
) STRICT;
