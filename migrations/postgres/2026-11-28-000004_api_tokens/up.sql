-- Long-lived opaque API tokens (DRF's Token, done safely): only a keyed hash
-- of the secret is stored.
CREATE TABLE api_tokens (
    id TEXT PRIMARY KEY NOT NULL,
    user_id TEXT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    name TEXT NOT NULL,
    -- hex HMAC-SHA256 of the whole token under a key derived from the master key
    token_hash TEXT NOT NULL UNIQUE,
    -- the token's first characters, to recognise it in a list
    prefix TEXT NOT NULL,
    created_at TIMESTAMP NOT NULL,
    expires_at TIMESTAMP,
    last_used_at TIMESTAMP,
    revoked_at TIMESTAMP
);
CREATE INDEX api_tokens_user_id ON api_tokens(user_id);
