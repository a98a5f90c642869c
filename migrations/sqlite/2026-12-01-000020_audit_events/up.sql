-- The audit trail (API.md "Operations"): one row per security-relevant
-- change, written in the transaction of the change itself. No foreign keys:
-- events outlive the users and keys they name. `detail` is a JSON object
-- (text) and never holds a password, hash or token.
-- AUTOINCREMENT: ids are never reused, even after the purge emptied the
-- table, so id order stays insertion order (pages and cursors rely on it).
CREATE TABLE audit_events (
    id INTEGER PRIMARY KEY AUTOINCREMENT NOT NULL,
    at TIMESTAMP NOT NULL,
    type TEXT NOT NULL,
    actor_id TEXT,
    subject_id TEXT,
    ip TEXT,
    detail TEXT NOT NULL
);
-- The admin API pages newest first by id, filtered by type or by user (actor
-- or subject); the retention purge finds old events by `at`.
CREATE INDEX audit_events_type ON audit_events(type, id);
CREATE INDEX audit_events_actor ON audit_events(actor_id, id);
CREATE INDEX audit_events_subject ON audit_events(subject_id, id);
CREATE INDEX audit_events_at ON audit_events(at);
