-- The refresh function (2026-12-06-000040) finding the token by its primary key only.
-- With `session_id = p_session_id` in the WHERE, PostgreSQL's generic plan (the one plpgsql
-- keeps after five calls) could take refresh_tokens_session_id instead of the primary key
-- whenever the statistics call session_id as selective as jti (a database analyzed while each
-- session had one token): every refresh then read every token its session ever had, used ones
-- included (they stay until they expire, for reuse detection), and got slower with each refresh.
-- `IS NOT DISTINCT FROM` is `=` here (all four are NOT NULL) but is not indexable, so the
-- primary key is the only way in. Same signature: CREATE OR REPLACE.
CREATE OR REPLACE FUNCTION signet_rotate_refresh(
    p_user_id TEXT, p_session_id TEXT, p_jti TEXT, p_now TIMESTAMP,
    p_successor TEXT, p_latest_expiry TIMESTAMP, p_needs_index BOOLEAN, p_touch_before TIMESTAMP)
RETURNS TABLE (
    u_id TEXT, username TEXT, username_key TEXT, email TEXT, password_hash TEXT, roles TEXT,
    disabled BOOLEAN, u_created_at TIMESTAMP, u_updated_at TIMESTAMP,
    s_id TEXT, s_created_at TIMESTAMP, last_used_at TIMESTAMP, expires_at TIMESTAMP,
    user_agent TEXT, ip TEXT, revoked_at TIMESTAMP, revoked_reason TEXT,
    status_list BIGINT, status_idx BIGINT)
LANGUAGE plpgsql AS $$
#variable_conflict use_column
DECLARE
    u users%ROWTYPE;
    s sessions%ROWTYPE;
BEGIN
    SELECT * INTO u FROM users WHERE users.id = p_user_id AND NOT users.disabled FOR SHARE;
    IF NOT FOUND THEN
        RETURN;
    END IF;
    SELECT * INTO s FROM sessions
    WHERE sessions.id = p_session_id AND sessions.user_id = p_user_id
      AND sessions.revoked_at IS NULL AND sessions.expires_at > p_now
      AND (NOT p_needs_index OR sessions.status_idx IS NOT NULL)
    FOR NO KEY UPDATE;
    IF NOT FOUND THEN
        RETURN;
    END IF;
    UPDATE refresh_tokens SET used_at = p_now, replaced_by = p_successor
    WHERE refresh_tokens.jti = p_jti
      AND (refresh_tokens.session_id, refresh_tokens.user_id) IS NOT DISTINCT FROM (p_session_id, p_user_id)
      AND refresh_tokens.used_at IS NULL AND refresh_tokens.expires_at > p_now;
    IF NOT FOUND THEN
        RETURN;
    END IF;
    INSERT INTO refresh_tokens (jti, session_id, user_id, issued_at, expires_at)
    VALUES (p_successor, s.id, s.user_id, p_now, LEAST(p_latest_expiry, date_trunc('second', s.expires_at)));
    IF s.last_used_at <= p_touch_before THEN
        UPDATE sessions SET last_used_at = p_now WHERE sessions.id = s.id;
        s.last_used_at := p_now;
    END IF;
    RETURN QUERY SELECT
        u.id, u.username, u.username_key, u.email, u.password_hash, u.roles,
        u.disabled, u.created_at, u.updated_at,
        s.id, s.created_at, s.last_used_at, s.expires_at,
        s.user_agent, s.ip, s.revoked_at, s.revoked_reason, s.status_list, s.status_idx;
END
$$;
