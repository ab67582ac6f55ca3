-- A list load writes a contact and a membership per row; this trims what
-- each costs (ingest/BENCHMARKS.md, BenchmarkListUpsert1M).
--
-- contacts_partner indexed (partner, id) for paging a partner's contacts,
-- which nothing does: contacts are found by key (the three partial unique
-- indexes) and listed through list_members. One index entry of five per
-- contact.
DROP INDEX contacts_partner;

-- list_members without its foreign keys: each membership insert looked up
-- both parents (two b-tree searches a row, and the statement journal an
-- abortable multi-row insert needs). The store writes a membership only
-- for a list and a contact it has just read or written in the same
-- transaction, and nothing deletes a list or a contact; code that comes to
-- delete one must delete their memberships in the same transaction (the
-- cascade these keys gave).
CREATE TABLE list_members_new (
    list_id    INTEGER NOT NULL,
    contact_id INTEGER NOT NULL,
    status     TEXT    NOT NULL CHECK (status IN ('subscribed', 'unsubscribed')),
    updated_at INTEGER NOT NULL,
    PRIMARY KEY (list_id, contact_id)
) STRICT, WITHOUT ROWID;
INSERT INTO list_members_new (list_id, contact_id, status, updated_at)
    SELECT list_id, contact_id, status, updated_at FROM list_members;
DROP TABLE list_members;
ALTER TABLE list_members_new RENAME TO list_members;
-- A contact's lists (unsubscribe from every list, a contact's page).
CREATE INDEX list_members_contact ON list_members (contact_id);
