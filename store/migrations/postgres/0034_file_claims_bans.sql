-- Several nodes on one database share the partner homes and the login
-- defender (issue 13). file_claims: the node ingesting a file of a home
-- (or writing a job's result report) holds a claim on it, renewed while it
-- works; a claim whose lease ran out belongs to a node that died and is
-- taken over. defender_bans / defender_failures: a ban made on one node
-- holds on every node, failures on any node count together. One node on
-- SQLite uses the same tables: the claim is one small row per file.
-- A file is claimed before it is read, by its version (size, modification
-- time and inode: a new upload of the name is a new version) so it is not
-- read a second time to be hashed; the content's SHA-256 is added to the
-- claim once the one read has computed it.
CREATE TABLE file_claims (
    partner     TEXT    NOT NULL,
    name        TEXT    NOT NULL,
    version     TEXT    NOT NULL DEFAULT '',
    sha256      TEXT    NOT NULL DEFAULT '',
    node        TEXT    NOT NULL,
    claimed_at  BIGINT  NOT NULL,
    lease_until BIGINT  NOT NULL,
    PRIMARY KEY (partner, name)
);
CREATE INDEX file_claims_lease ON file_claims (lease_until);
CREATE INDEX file_claims_node ON file_claims (node);

CREATE TABLE defender_bans (
    addr       TEXT    NOT NULL PRIMARY KEY,
    until_at   BIGINT  NOT NULL,
    failures   BIGINT  NOT NULL,
    node       TEXT    NOT NULL DEFAULT '',
    created_at BIGINT  NOT NULL
);
CREATE INDEX defender_bans_until ON defender_bans (until_at);

CREATE TABLE defender_failures (
    addr TEXT    NOT NULL,
    at   BIGINT  NOT NULL
);
CREATE INDEX defender_failures_addr ON defender_failures (addr, at);
