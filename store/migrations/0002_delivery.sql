-- Delivery bookkeeping for the sender.
--
-- age_from restarts a message's max-age window when an admin retries it
-- (0: the window starts at created_at), so a retried day-old message is not
-- failed as expired before it is tried again.
ALTER TABLE messages ADD COLUMN age_from INTEGER NOT NULL DEFAULT 0;
