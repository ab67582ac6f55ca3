-- A started run wrote four B-tree entries besides its row's: the due
-- index, the contact index and workflow_runs_list (partner, workflow, id),
-- which served only the runs listing and cancellation by key. Accepting
-- an event is bound by the writer, two thirds of it the event's and the
-- run's inserts (workflow/BENCHMARKS.md, session 10): the list index goes.
-- The contact index now leads with the workflow, so that the one index
-- serves every lookup the list index did by (partner, workflow): the
-- contacts' latest runs and exits (partner, workflow, contact), a key's
-- cancellation and the email filter of the listing; the plain listing
-- pages through runs by id windows (ListRunsPage).
DROP INDEX workflow_runs_list;
DROP INDEX workflow_runs_contact;
CREATE INDEX workflow_runs_contact ON workflow_runs (partner, workflow, contact, id);
