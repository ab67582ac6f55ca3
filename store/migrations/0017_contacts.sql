-- Contacts: a partner's audience, fed by lists/<list>/ drops and the list
-- API. A contact is found by any of its keys: email (lower-case), phone
-- (E.164, normalised with the partner's region like recipient files) or
-- ref (the partner's own id). Each key is unique within a partner, so a
-- row naming keys of two different contacts is a conflict to report, not
-- a merge to guess.
CREATE TABLE contacts (
    id         INTEGER PRIMARY KEY,
    partner    TEXT    NOT NULL,
    email      TEXT,
    phone      TEXT,
    ref        TEXT,
    -- A JSON object of typed values: integers, numbers and booleans as
    -- JSON's own, times as RFC 3339 strings, the rest as strings. The type
    -- of each name is recorded in contact_fields, so a time is read back
    -- as a time without guessing from its text.
    attributes TEXT    NOT NULL DEFAULT '{}',
    created_at INTEGER NOT NULL,
    updated_at INTEGER NOT NULL,
    CHECK (email IS NOT NULL OR phone IS NOT NULL OR ref IS NOT NULL)
) STRICT;
CREATE UNIQUE INDEX contacts_email ON contacts (partner, email) WHERE email IS NOT NULL;
CREATE UNIQUE INDEX contacts_phone ON contacts (partner, phone) WHERE phone IS NOT NULL;
CREATE UNIQUE INDEX contacts_ref ON contacts (partner, ref) WHERE ref IS NOT NULL;
-- Cursor paging of a partner's contacts by id.
CREATE INDEX contacts_partner ON contacts (partner, id);

-- The type of each attribute name of a partner, decided by the first file
-- or request that used it; later values must fit it.
CREATE TABLE contact_fields (
    partner TEXT NOT NULL,
    name    TEXT NOT NULL,
    type    TEXT NOT NULL CHECK (type IN ('integer', 'number', 'boolean', 'time', 'string')),
    PRIMARY KEY (partner, name)
) STRICT, WITHOUT ROWID;

CREATE TABLE lists (
    id         INTEGER PRIMARY KEY,
    partner    TEXT    NOT NULL,
    name       TEXT    NOT NULL,
    created_at INTEGER NOT NULL
) STRICT;
CREATE UNIQUE INDEX lists_name ON lists (partner, name);

-- A contact's membership of a list. WITHOUT ROWID: the primary key is the
-- only access path a list send needs (every member of one list in contact
-- order), and it saves a second b-tree per row.
CREATE TABLE list_members (
    list_id    INTEGER NOT NULL REFERENCES lists (id) ON DELETE CASCADE,
    contact_id INTEGER NOT NULL REFERENCES contacts (id) ON DELETE CASCADE,
    status     TEXT    NOT NULL CHECK (status IN ('subscribed', 'unsubscribed')),
    updated_at INTEGER NOT NULL,
    PRIMARY KEY (list_id, contact_id)
) STRICT, WITHOUT ROWID;
-- A contact's lists (unsubscribe from every list, a contact's page).
CREATE INDEX list_members_contact ON list_members (contact_id);
