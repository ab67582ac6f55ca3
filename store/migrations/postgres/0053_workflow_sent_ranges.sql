-- A send step that queued its message is one row per range of runs fired
-- together with consecutive ids and consecutive message ids, instead of a
-- workflow_steps row per run: see the SQLite migration of the same number.
CREATE TABLE workflow_sent_ranges (
    first_run     BIGINT NOT NULL,
    last_run      BIGINT NOT NULL,
    step          BIGINT NOT NULL,
    at            BIGINT NOT NULL,
    first_message BIGINT NOT NULL,
    PRIMARY KEY (first_run, step)
);
