-- A run no longer carries copies of its starting event's email, phone,
-- ref and data: they are in events, reached by event_id (its primary
-- key), and every run read joins it (the scheduler's due runs, the run
-- routes). Each fired run's move rewrote the whole ~110-byte row, and each
-- started run's insert wrote the copies again: the run move was a third of
-- the scheduler's writer time, and the run insert one of the two row
-- inserts that are most of accepting an event (workflow/BENCHMARKS.md,
-- sessions 8 and 9). contact and key stay: exit events,
-- reentry and cancellation by key look runs up by them. Events are never
-- deleted, so every run finds its event.
--
-- SQLite drops a column only by rebuilding the table; its indexes and its
-- delete trigger (0022) go with it and are made again.
CREATE TABLE workflow_runs_narrow (
    id            INTEGER PRIMARY KEY,
    partner       TEXT    NOT NULL,
    workflow      TEXT    NOT NULL,
    contact       TEXT    NOT NULL,               -- "email:a@b.c", "phone:+33..." or "ref:..."
    key           TEXT    NOT NULL DEFAULT '',
    status        TEXT    NOT NULL,               -- waiting | done | cancelled | suppressed | failed
    step          INTEGER NOT NULL DEFAULT 0,
    due_at        INTEGER NOT NULL,
    event_id      INTEGER NOT NULL,               -- events (id) that started it: its addresses and data
    exit_event    INTEGER NOT NULL DEFAULT 0,
    last_error    TEXT    NOT NULL DEFAULT '',
    created_at    INTEGER NOT NULL,
    updated_at    INTEGER NOT NULL,
    claimed_by    TEXT    NOT NULL DEFAULT '',
    claimed_until INTEGER NOT NULL DEFAULT 0
) STRICT;
INSERT INTO workflow_runs_narrow (id, partner, workflow, contact, key, status, step, due_at, event_id, exit_event,
    last_error, created_at, updated_at, claimed_by, claimed_until)
SELECT id, partner, workflow, contact, key, status, step, due_at, event_id, exit_event,
    last_error, created_at, updated_at, claimed_by, claimed_until FROM workflow_runs;
DROP TABLE workflow_runs;
ALTER TABLE workflow_runs_narrow RENAME TO workflow_runs;
CREATE INDEX workflow_runs_due ON workflow_runs (due_at, id) WHERE status = 'waiting';
CREATE INDEX workflow_runs_contact ON workflow_runs (partner, contact, workflow, id);
CREATE INDEX workflow_runs_list ON workflow_runs (partner, workflow, id);
CREATE TRIGGER workflow_runs_counted_delete AFTER DELETE ON workflow_runs BEGIN
    UPDATE workflow_run_counts SET n = n - 1
    WHERE partner = OLD.partner AND workflow = OLD.workflow AND status = OLD.status;
END;
