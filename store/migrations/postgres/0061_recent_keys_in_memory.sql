-- SQLite's 0061 keeps the recent hash keys in memory (store/keyhash.go);
-- PostgreSQL has none.
SELECT 1;
