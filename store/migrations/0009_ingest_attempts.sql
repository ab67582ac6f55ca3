-- One row per file or template being ingested, written before its
-- processing starts and removed when it ends. A row found at the next
-- start is an attempt the daemon did not finish: it died (killed, out of
-- memory) or was stopped while reading that upload, or the read failed
-- inside dropgate. After two such attempts the upload is quarantined (moved
-- to the archive, reported, files.status = 'quarantined') instead of being
-- read a third time: one bad file or template must not make every start
-- hang or crash again. size and mtime (Unix nanoseconds) tell the same
-- upload from a new one of the same name, which starts afresh.
CREATE TABLE ingest_attempts (
    partner    TEXT    NOT NULL,
    name       TEXT    NOT NULL,              -- path in the partner home
    size       INTEGER NOT NULL,
    mtime      INTEGER NOT NULL,
    attempts   INTEGER NOT NULL,
    last_error TEXT    NOT NULL DEFAULT '',   -- dropgate's own failure, '' when it stopped or died
    started_at INTEGER NOT NULL,
    PRIMARY KEY (partner, name)
) STRICT;
