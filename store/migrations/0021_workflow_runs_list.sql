-- A run's status changes when its last step fires. With status in
-- workflow_runs_list, every fired run also moved in that index (a delete
-- and a random-order insert), a tenth of firing a run
-- (workflow/BENCHMARKS.md, session 5). Listing a workflow's runs reads
-- them in id order and checks the status on the row; counting them by
-- status reads the row too.
DROP INDEX workflow_runs_list;
CREATE INDEX workflow_runs_list ON workflow_runs (partner, workflow, id);
