-- The unique indexes of a contact's keys lead with the key, not the
-- partner: (email, partner), (phone, partner) and (ref, partner) hold the
-- same entries and keep each key unique within a partner, but a seek decides
-- on the key at once instead of comparing the partner name first in every
-- entry on its way down, and a list load spends a third of its writing
-- time in these seeks and inserts (ingest/BENCHMARKS.md, "Session 9,
-- listup3": 8% less CPU for a 1M-row list). Every query that finds a
-- contact by key names both the partner and the key, so each still uses
-- its index.
DROP INDEX contacts_email;
DROP INDEX contacts_phone;
CREATE UNIQUE INDEX contacts_email ON contacts (email, partner) WHERE email IS NOT NULL;
CREATE UNIQUE INDEX contacts_phone ON contacts (phone, partner) WHERE phone IS NOT NULL;
DROP INDEX contacts_ref;
CREATE UNIQUE INDEX contacts_ref ON contacts (ref, partner) WHERE ref IS NOT NULL;

-- What the partner-first indexes also answered: does the partner have any
-- contact yet (a list load into a partner without contacts skips its
-- lookups, lists_load.go)? A row here once a partner's first contact is
-- written; nothing deletes contacts, so it stays true.
CREATE TABLE contact_partners (
    partner TEXT NOT NULL PRIMARY KEY
) STRICT, WITHOUT ROWID;
INSERT INTO contact_partners (partner) SELECT DISTINCT partner FROM contacts;
