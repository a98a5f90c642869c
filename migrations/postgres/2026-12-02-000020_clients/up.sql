-- OAuth 2.0 clients (service accounts). Only a keyed hash of the secret is
-- stored, as for API tokens (a high-entropy secret needs no bcrypt).
CREATE TABLE clients (
    -- the client_id (a UUID)
    id TEXT PRIMARY KEY NOT NULL,
    name TEXT NOT NULL,
    -- hex HMAC-SHA256 of the secret under a key derived from the master key
    secret_hash TEXT NOT NULL,
    -- JSON arrays, like users.roles
    roles TEXT NOT NULL,
    audiences TEXT NOT NULL,
    created_at TIMESTAMP NOT NULL,
    updated_at TIMESTAMP NOT NULL,
    disabled BOOLEAN NOT NULL,
    -- The session the client-credentials tokens carry now (`sid`), its end
    -- (no token outlives it) and its status-list index. NULL until the next
    -- token after a revocation, deletion or secret rotation.
    session_id TEXT,
    session_expires_at TIMESTAMP,
    status_list BIGINT,
    status_idx BIGINT
);
