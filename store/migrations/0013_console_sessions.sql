-- Sessions of the status console: the browser holds a signed random id,
-- never a token; the row says who signed in and the form token (CSRF) of
-- the session. Only the id's SHA-256 is stored, so a copy of the database
-- does not hold live cookies.
CREATE TABLE console_sessions (
    id_hash    TEXT    PRIMARY KEY,
    admin      INTEGER NOT NULL,
    partner    TEXT    NOT NULL DEFAULT '',
    csrf       TEXT    NOT NULL,
    created_at INTEGER NOT NULL,
    expires_at INTEGER NOT NULL
) STRICT, WITHOUT ROWID;

-- The console's "files today": the day's files without a scan of them all.
CREATE INDEX files_created ON files (created_at);
