-- Files by partner and name. Every upload now looks up the earlier files of
-- its name: the held upload it replaces, and the queued upload of the last
-- 24 hours it may extend (a resumed transfer queues only the new rows).
-- Without the index each lookup scanned every file the partner ever sent.
CREATE INDEX files_partner_name ON files (partner, name, id);
