-- Nodes (issue 13): each `dropgate serve` registers itself, heartbeats,
-- and marks itself stopped on a clean stop; GET /api/v1/nodes lists the
-- live ones. On SQLite there is one node at a time.
CREATE TABLE nodes (
    id           INTEGER PRIMARY KEY,
    hostname     TEXT    NOT NULL,
    started_at   INTEGER NOT NULL,
    heartbeat_at INTEGER NOT NULL,
    stopped_at   INTEGER
);

-- The node holding a message's lease while it is "sending" (0: none
-- recorded; SQLite's single node does not record it).
ALTER TABLE messages ADD COLUMN node INTEGER NOT NULL DEFAULT 0;

-- Shared token buckets of rate-limited channels, one row per channel:
-- used on PostgreSQL, where several nodes send on one channel and the
-- configured rate is their total.
CREATE TABLE rate_buckets (
    channel TEXT    PRIMARY KEY,
    tokens  REAL    NOT NULL,
    at      INTEGER NOT NULL
);
