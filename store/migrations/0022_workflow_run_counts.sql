-- Runs counted by partner, workflow and status, kept by triggers, so that
-- GET /api/v1/workflows and /metrics read a few rows instead of counting
-- every run ever started (their cost must not grow with the database).
-- A run's partner and workflow never change; only its status moves.
CREATE TABLE workflow_run_counts (
    partner  TEXT    NOT NULL,
    workflow TEXT    NOT NULL,
    status   TEXT    NOT NULL,
    n        INTEGER NOT NULL,
    PRIMARY KEY (partner, workflow, status)
) STRICT, WITHOUT ROWID;

INSERT INTO workflow_run_counts (partner, workflow, status, n)
SELECT partner, workflow, status, COUNT(*) FROM workflow_runs GROUP BY partner, workflow, status;

CREATE TRIGGER workflow_runs_counted_insert AFTER INSERT ON workflow_runs BEGIN
    INSERT INTO workflow_run_counts (partner, workflow, status, n) VALUES (NEW.partner, NEW.workflow, NEW.status, 1)
    ON CONFLICT (partner, workflow, status) DO UPDATE SET n = n + 1;
END;

CREATE TRIGGER workflow_runs_counted_status AFTER UPDATE OF status ON workflow_runs
WHEN OLD.status <> NEW.status BEGIN
    UPDATE workflow_run_counts SET n = n - 1
    WHERE partner = OLD.partner AND workflow = OLD.workflow AND status = OLD.status;
    INSERT INTO workflow_run_counts (partner, workflow, status, n) VALUES (NEW.partner, NEW.workflow, NEW.status, 1)
    ON CONFLICT (partner, workflow, status) DO UPDATE SET n = n + 1;
END;

CREATE TRIGGER workflow_runs_counted_delete AFTER DELETE ON workflow_runs BEGIN
    UPDATE workflow_run_counts SET n = n - 1
    WHERE partner = OLD.partner AND workflow = OLD.workflow AND status = OLD.status;
END;
