-- SQLite's 0060 moves the events' id and the runs' contact lookups onto
-- tables of hash keys (store/keyhash.go). PostgreSQL keeps its text
-- indexes; the copy from SQLite leaves those tables behind (copy.go).
SELECT 1;
