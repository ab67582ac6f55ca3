-- Suppressions: recipients a partner must never message again, on one
-- channel or (channel '') on all of them. The recipient is stored as the
-- sender sees it (E.164 phone, lower-case email). The sender asks once per
-- message, so the lookup (partner, recipient) is one index probe that reads
-- both the channel's row and the all-channels row; it is also the
-- uniqueness rule.
CREATE TABLE suppressions (
    id         INTEGER PRIMARY KEY,
    partner    TEXT    NOT NULL,
    channel    TEXT    NOT NULL DEFAULT '',
    recipient  TEXT    NOT NULL,
    reason     TEXT    NOT NULL DEFAULT '',
    source     TEXT    NOT NULL DEFAULT '',
    created_at INTEGER NOT NULL
) STRICT;
CREATE UNIQUE INDEX suppressions_key ON suppressions (partner, recipient, channel);
-- Cursor paging of GET /api/v1/suppressions by id within a partner.
CREATE INDEX suppressions_partner ON suppressions (partner, id);
