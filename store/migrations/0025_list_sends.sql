-- List sends (POST /api/v1/lists/{list}/sends, sends/<name>.toml): what a
-- job of source 'list' was made from and what became of the list's
-- members. The job's own row has no room for it, and the contacts that
-- could not be rendered have no file and no line to be reported under
-- (file_errors). Both go with their job: an aborted send (a failure, a
-- stop, AbandonInterruptedIngests at start) leaves nothing behind.
CREATE TABLE list_sends (
    job_id           INTEGER PRIMARY KEY REFERENCES jobs (id) ON DELETE CASCADE,
    list_id          INTEGER NOT NULL,
    list_name        TEXT    NOT NULL,
    template         TEXT    NOT NULL,
    template_version INTEGER NOT NULL,
    segment          TEXT    NOT NULL DEFAULT '',
    considered       INTEGER NOT NULL, -- subscribed members read
    matched          INTEGER NOT NULL, -- of them, those the segment chose
    skipped_by_error INTEGER NOT NULL, -- the segment could not be evaluated on them
    rejected         INTEGER NOT NULL, -- matched, but the message could not be made
    first_skip_error TEXT    NOT NULL DEFAULT '',
    created_at       INTEGER NOT NULL
) STRICT;

-- Each matched contact whose message could not be made (no address for
-- the template's channel, a variable the contact lacks, a failed render).
CREATE TABLE list_send_errors (
    job_id     INTEGER NOT NULL REFERENCES jobs (id) ON DELETE CASCADE,
    contact_id INTEGER NOT NULL,
    col        TEXT    NOT NULL DEFAULT '',
    value      TEXT    NOT NULL DEFAULT '',
    error      TEXT    NOT NULL
) STRICT;
CREATE INDEX list_send_errors_job ON list_send_errors (job_id, contact_id);
