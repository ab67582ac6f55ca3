-- SQLite's 0056 (see there): list members stored as ranges of contact
-- ids. PostgreSQL's list load writes a row per member and never makes a
-- range, but the readers are the same SQL for both engines, so the table
-- exists here too (always empty unless a future load fills it).
CREATE TABLE list_member_ranges (
    list_id    BIGINT NOT NULL,
    lo         BIGINT NOT NULL,
    hi         BIGINT NOT NULL,
    status     TEXT   NOT NULL CHECK (status IN ('subscribed', 'unsubscribed')),
    updated_at BIGINT NOT NULL,
    PRIMARY KEY (list_id, lo),
    CHECK (lo <= hi)
);
