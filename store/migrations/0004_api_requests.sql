-- API send requests by their Idempotency-Key, per partner: a client that
-- retries a POST /api/v1/messages (timeout, lost answer) gets the job it
-- already created instead of a second one. request_hash tells a retry from
-- a different request reusing the key.
CREATE TABLE api_requests (
    partner      TEXT    NOT NULL,
    key          TEXT    NOT NULL,
    request_hash TEXT    NOT NULL,
    job_id       INTEGER NOT NULL REFERENCES jobs (id),
    created_at   INTEGER NOT NULL,
    PRIMARY KEY (partner, key)
) STRICT;
