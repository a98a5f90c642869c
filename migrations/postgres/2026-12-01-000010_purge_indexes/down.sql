DROP INDEX sessions_expires_at;
DROP INDEX refresh_tokens_expires_at;
