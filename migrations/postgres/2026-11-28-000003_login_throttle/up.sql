-- Failed logins per username key, whether or not the account exists, so a
-- lockout says nothing about existence.
CREATE TABLE login_throttle (
    username_key TEXT PRIMARY KEY NOT NULL,
    failures INTEGER NOT NULL,
    -- how many lockouts in a row: the next one lasts lockout_secs * 2^lockouts
    lockouts INTEGER NOT NULL,
    locked_until TIMESTAMP,
    updated_at TIMESTAMP NOT NULL
);
CREATE INDEX login_throttle_updated_at ON login_throttle(updated_at);
