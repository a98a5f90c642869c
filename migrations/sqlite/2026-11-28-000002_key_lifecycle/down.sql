DROP INDEX signing_keys_one_next;
ALTER TABLE signing_keys DROP COLUMN verify_until;
ALTER TABLE signing_keys DROP COLUMN publish_until;
