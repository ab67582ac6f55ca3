-- The node writing a job while it is "ingesting" (0: not recorded). A list
-- send started through the API has no file and so no file claim to tell a
-- live node's ingest from a dead one's; with several nodes on PostgreSQL,
-- the node lets the others remove what a dead one left half-written
-- (AbandonDeadNodesListSends). SQLite has one node, which cleans up at start.
ALTER TABLE jobs ADD COLUMN node BIGINT NOT NULL DEFAULT 0;
