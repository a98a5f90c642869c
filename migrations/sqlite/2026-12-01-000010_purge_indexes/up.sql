-- The maintenance purge finds expired rows by these columns, in batches.
CREATE INDEX refresh_tokens_expires_at ON refresh_tokens(expires_at);
CREATE INDEX sessions_expires_at ON sessions(expires_at);
