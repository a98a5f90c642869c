-- Key lifecycle: next -> active -> retired (or revoked on compromise).
-- For a `next` key, activated_at is the planned activation time.
ALTER TABLE signing_keys ADD COLUMN publish_until TIMESTAMP;
ALTER TABLE signing_keys ADD COLUMN verify_until TIMESTAMP;
-- At most one pre-published key, whatever the instances racing to create it.
CREATE UNIQUE INDEX signing_keys_one_next ON signing_keys(state) WHERE state = 'next';
