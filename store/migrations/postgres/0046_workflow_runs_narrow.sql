-- A run no longer carries copies of its starting event's email, phone,
-- ref and data: they are in events, reached by event_id, and every run
-- read joins it (SQLite's 0046 says why).
ALTER TABLE workflow_runs DROP COLUMN email, DROP COLUMN phone, DROP COLUMN ref, DROP COLUMN data;
