-- Token status lists (draft-ietf-oauth-status-list). A list is a bounded
-- range of indices; `next_idx` is bumped by a conditional UPDATE, so two
-- instances never hand out the same index; `version` is bumped in the
-- transaction of every flip, and instances poll it to rebuild and announce.
CREATE TABLE status_lists (
    id BIGINT PRIMARY KEY NOT NULL,
    size BIGINT NOT NULL,
    next_idx BIGINT NOT NULL,
    version BIGINT NOT NULL,
    created_at TIMESTAMP NOT NULL,
    -- no longer served: every token that could reference it has expired
    retired_at TIMESTAMP
);

-- One row per handed-out index. `expires_at` is the latest expiry of any token
-- that carries it (a session's end; an exchanged token's exp), which is what
-- retirement waits for.
CREATE TABLE status_entries (
    list_id BIGINT NOT NULL REFERENCES status_lists(id) ON DELETE CASCADE,
    idx BIGINT NOT NULL,
    invalid BOOLEAN NOT NULL,
    expires_at TIMESTAMP NOT NULL,
    PRIMARY KEY (list_id, idx)
);

-- The index a session's (or API token's exchanged) access tokens carry now;
-- NULL after a role change until the next refresh assigns a new one.
ALTER TABLE sessions ADD COLUMN status_list BIGINT;
ALTER TABLE sessions ADD COLUMN status_idx BIGINT;
ALTER TABLE api_tokens ADD COLUMN status_list BIGINT;
ALTER TABLE api_tokens ADD COLUMN status_idx BIGINT;
