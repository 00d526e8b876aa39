-- +goose Up
-- As in the MySQL dialect: a row counts as a cap take by its scopes alone
-- (an outcome that gives the take back sets scopes to 0), the rows in
-- flight are found by send_log_inflight, and status is in no index, so an
-- outcome rewrites two index entries (msgid, inflight_grant), not five.
UPDATE send_log SET scopes = 0 WHERE status NOT IN ('inflight', 'sent', 'unknown');
UPDATE send_log SET status = 'unknown', detail = 'in flight without inflight_grant at migration 00015', finished_at = started_at
WHERE status = 'inflight' AND inflight_grant IS NULL;
DROP INDEX send_log_status;
DROP INDEX send_log_user;
DROP INDEX send_log_template;
CREATE INDEX send_log_user ON send_log (openid, template_id, started_at, scopes);
CREATE INDEX send_log_template ON send_log (template_id, started_at, scopes);

-- +goose Down
DROP INDEX send_log_template;
DROP INDEX send_log_user;
CREATE INDEX send_log_user ON send_log (openid, template_id, started_at, scopes, status);
CREATE INDEX send_log_template ON send_log (template_id, started_at, scopes, status);
CREATE INDEX send_log_status ON send_log (status);
