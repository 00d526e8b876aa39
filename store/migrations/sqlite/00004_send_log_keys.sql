-- +goose Up
-- One index fewer to write per send: the unique key leads with
-- (campaign, grant_id) and also serves SentBefore; send_log_status keeps
-- only the status.
DROP INDEX send_log_once;
DROP INDEX send_log_grant;
DROP INDEX send_log_status;
CREATE UNIQUE INDEX send_log_once ON send_log (campaign, grant_id, occurrence);
CREATE INDEX send_log_status ON send_log (status);

-- +goose Down
DROP INDEX send_log_once;
DROP INDEX send_log_status;
CREATE UNIQUE INDEX send_log_once ON send_log (campaign, occurrence, grant_id);
CREATE INDEX send_log_grant ON send_log (campaign, grant_id);
CREATE INDEX send_log_status ON send_log (status, holder);
