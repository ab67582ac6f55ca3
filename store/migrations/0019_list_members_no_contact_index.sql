-- A list load wrote three b-tree entries per membership row: the row and
-- list_members_contact, which served "the lists of a contact". A partner
-- has a few lists, so those queries now go through the partner's lists
-- (lists_name) and look each (list, contact) up by the primary key, and the
-- index goes (ingest/BENCHMARKS.md, BenchmarkListUpsert1M).
DROP INDEX list_members_contact;
