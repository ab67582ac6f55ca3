-- The data_dir a node runs from (a random id made once in it). A node
-- starting again on the same data_dir, whose lock proves its earlier life
-- dead, takes back at once what that life held (messages in flight, run
-- and file claims) instead of waiting for the leases to run out; a node of
-- the same name on another data_dir is left alone (TakeBackPreviousLives).
ALTER TABLE nodes ADD COLUMN instance TEXT NOT NULL DEFAULT '';
