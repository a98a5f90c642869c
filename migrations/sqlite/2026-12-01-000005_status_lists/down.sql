ALTER TABLE api_tokens DROP COLUMN status_idx;
ALTER TABLE api_tokens DROP COLUMN status_list;
ALTER TABLE sessions DROP COLUMN status_idx;
ALTER TABLE sessions DROP COLUMN status_list;
DROP TABLE status_entries;
DROP TABLE status_lists;
