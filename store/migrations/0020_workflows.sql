-- Automated workflows (issue #11): the events partners send, the runs
-- they start and each run's steps.
--
-- An event with an id (the client's own, or one derived from an
-- Idempotency-Key) is stored once per partner: a repeat is a no-op. Times
-- are Unix milliseconds, like every other table.
CREATE TABLE events (
    id          INTEGER PRIMARY KEY,
    partner     TEXT    NOT NULL,
    event_id    TEXT    NOT NULL DEFAULT '',   -- '' for an event without an id (no idempotency)
    name        TEXT    NOT NULL,
    email       TEXT    NOT NULL DEFAULT '',
    phone       TEXT    NOT NULL DEFAULT '',
    ref         TEXT    NOT NULL DEFAULT '',
    key         TEXT    NOT NULL DEFAULT '',
    data        TEXT    NOT NULL DEFAULT '{}', -- JSON object of text values
    source      TEXT    NOT NULL,              -- api | file
    occurred_at INTEGER NOT NULL,
    received_at INTEGER NOT NULL
) STRICT;
CREATE UNIQUE INDEX events_partner_id ON events (partner, event_id) WHERE event_id <> '';

-- One run of a workflow for one contact. step is the index of the next
-- step to execute and due_at when; the scheduler reads only the partial
-- index of waiting runs in due order, so it never holds runs in memory and
-- never scans finished ones. A step and the messages it queues are
-- written in one transaction that also moves step on: a crash either
-- keeps both or neither, so a send step queues its message at most once.
CREATE TABLE workflow_runs (
    id         INTEGER PRIMARY KEY,
    partner    TEXT    NOT NULL,
    workflow   TEXT    NOT NULL,
    contact    TEXT    NOT NULL,               -- "email:a@b.c", "phone:+33..." or "ref:..."
    email      TEXT    NOT NULL DEFAULT '',
    phone      TEXT    NOT NULL DEFAULT '',
    ref        TEXT    NOT NULL DEFAULT '',
    key        TEXT    NOT NULL DEFAULT '',
    data       TEXT    NOT NULL DEFAULT '{}',  -- the starting event's data, what templates render with
    status     TEXT    NOT NULL,               -- waiting | done | cancelled | suppressed | failed
    step       INTEGER NOT NULL DEFAULT 0,
    due_at     INTEGER NOT NULL,
    event_id   INTEGER NOT NULL,               -- events (id) that started it
    exit_event INTEGER NOT NULL DEFAULT 0,     -- events (id) that cancelled it, 0 for none
    last_error TEXT    NOT NULL DEFAULT '',
    created_at INTEGER NOT NULL,
    updated_at INTEGER NOT NULL
) STRICT;
CREATE INDEX workflow_runs_due ON workflow_runs (due_at, id) WHERE status = 'waiting';
CREATE INDEX workflow_runs_contact ON workflow_runs (partner, contact, workflow, id);
CREATE INDEX workflow_runs_list ON workflow_runs (partner, workflow, status, id);

-- What each executed step did: a send's message, a deferral by quiet
-- hours, a delay, the end of the run.
CREATE TABLE workflow_steps (
    run_id     INTEGER NOT NULL,
    step       INTEGER NOT NULL,
    at         INTEGER NOT NULL,
    outcome    TEXT    NOT NULL,               -- queued | deferred | waiting | suppressed | failed | cancelled | done
    message_id INTEGER NOT NULL DEFAULT 0,
    detail     TEXT    NOT NULL DEFAULT ''
) STRICT;
CREATE INDEX workflow_steps_run ON workflow_steps (run_id, step);
