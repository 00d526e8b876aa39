-- +goose Up
-- A sent message's outcome changes status, msgid and inflight_grant on its
-- send_log row. status was in three secondary indexes (send_log_status,
-- send_log_user, send_log_template), so each outcome rewrote five index
-- entries. Now:
--  * a row counts as a cap take by its scopes alone: an outcome that gives
--    the take back (failed) sets scopes to 0, so the cap indexes need no
--    status;
--  * the rows in flight are found by send_log_inflight (inflight_grant IS
--    NOT NULL), so send_log_status goes.
-- An outcome now rewrites two index entries (msgid, inflight_grant).
UPDATE send_log SET scopes = 0 WHERE status NOT IN ('inflight', 'sent', 'unknown');
-- A row in flight always has inflight_grant since 00009; one without it
-- (two sends of one grant in flight before 00009) is a send in doubt.
UPDATE send_log SET status = 'unknown', detail = 'in flight without inflight_grant at migration 00015', finished_at = started_at
WHERE status = 'inflight' AND inflight_grant IS NULL;
ALTER TABLE send_log
    DROP KEY send_log_status,
    DROP KEY send_log_user,
    DROP KEY send_log_template,
    ADD KEY send_log_user (openid, template_id, started_at, scopes),
    ADD KEY send_log_template (template_id, started_at, scopes);

-- +goose Down
ALTER TABLE send_log
    DROP KEY send_log_template,
    DROP KEY send_log_user,
    ADD KEY send_log_user (openid, template_id, started_at, scopes, status),
    ADD KEY send_log_template (template_id, started_at, scopes, status),
    ADD KEY send_log_status (status);
