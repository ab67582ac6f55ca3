-- The template versions a job's messages were rendered from, for the job
-- page and the job JSON (issue 12): "name@version" entries separated by
-- spaces ("otp@3", or "otp@3 welcome@1" for a file whose rows name
-- templates). Template names cannot hold '@' or spaces. '' for jobs made
-- before this migration, and for messages sent with a literal body.
ALTER TABLE jobs ADD COLUMN templates TEXT NOT NULL DEFAULT '';
