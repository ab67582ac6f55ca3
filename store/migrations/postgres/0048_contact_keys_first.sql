-- SQLite's 0048 leads its contact key indexes with the key instead of the
-- partner (faster list loads there); PostgreSQL keeps (partner, email) and
-- (partner, phone). Both record the partners that have contacts, which a
-- list load asks before it skips its lookups (lists_load.go).
CREATE TABLE contact_partners (
    partner TEXT NOT NULL PRIMARY KEY
);
INSERT INTO contact_partners (partner) SELECT DISTINCT partner FROM contacts;
