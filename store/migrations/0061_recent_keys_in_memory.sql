-- The recent level of the hash keys moves from tables into the writer's
-- memory (store/keyhash.go, keymem.go): every commit rewrote most pages of
-- event_keys_recent and run_keys_recent, a quarter of an event's writer
-- time (workflow/BENCHMARKS.md, session 13). Their keys are settled here;
-- key_marks holds, for each kind of key (0: events' ids, 1: runs'
-- contacts) and range of keys (the top four bits of the key), the last row
-- whose key is in the settled table. The rows after a range's mark have
-- their keys in memory, read again from the rows at start.
INSERT INTO event_keys (hash, event) SELECT hash, event FROM event_keys_recent ORDER BY 1, 2;
INSERT INTO run_keys (hash, run) SELECT hash, run FROM run_keys_recent ORDER BY 1, 2;
DROP TABLE event_keys_recent;
DROP TABLE run_keys_recent;
CREATE TABLE key_marks (
	kind  INTEGER NOT NULL,
	slice INTEGER NOT NULL,
	upto  INTEGER NOT NULL,
	PRIMARY KEY (kind, slice)
) WITHOUT ROWID, STRICT;
WITH RECURSIVE slices(n) AS (SELECT 0 UNION ALL SELECT n + 1 FROM slices WHERE n < 15)
INSERT INTO key_marks (kind, slice, upto)
	SELECT 0, n, (SELECT COALESCE(MAX(id), 0) FROM events) FROM slices
	UNION ALL SELECT 1, n, (SELECT COALESCE(MAX(id), 0) FROM workflow_runs) FROM slices;
