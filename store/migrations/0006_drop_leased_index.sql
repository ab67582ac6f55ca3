-- messages_leased (lease_until, partial on 'sending') cost an index insert
-- at every claim and a delete at every outcome: a fifth of the sender's
-- database work per message. Its only readers ran every lease/2 or at
-- start: looking for expired leases. They now probe messages_queue's
-- (job_id, status) prefix for each job that can have a message in flight,
-- and in-flight messages are few.
DROP INDEX IF EXISTS messages_leased;
