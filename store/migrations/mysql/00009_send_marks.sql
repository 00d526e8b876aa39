-- +goose Up
-- The send log is the write path's only ledger of a send (docs/store.md,
-- "The write path"):
--  * reason is a code of the closed set wxcampaign.Reason; the free text (a
--    rule's error, WeChat's errmsg) goes to detail;
--  * a row is written "inflight" just before its request goes out (the
--    mark), and inflight_grant (the grant id while in flight, NULL after)
--    is unique: no two runs have one grant in flight, without a
--    reservation row;
--  * the row is the frequency-cap take: scopes holds the cap scopes it
--    counts for (1 user_template, 2 user, 4 template), counted by
--    send_log_user and send_log_template; cap_takes is no longer written.
-- Cap takes made before are carried onto their send log rows by ref.
ALTER TABLE send_log
    ADD COLUMN detail VARCHAR(255) NOT NULL DEFAULT '' AFTER reason,
    ADD COLUMN scopes TINYINT UNSIGNED NOT NULL DEFAULT 0,
    ADD COLUMN inflight_grant BIGINT NULL,
    ADD UNIQUE KEY send_log_inflight (inflight_grant),
    ADD KEY send_log_user (openid, template_id, started_at, scopes, status),
    ADD KEY send_log_template (template_id, started_at, scopes, status);

UPDATE send_log s JOIN (SELECT MIN(id) AS id FROM send_log WHERE status = 'inflight' GROUP BY grant_id) f ON f.id = s.id
SET s.inflight_grant = s.grant_id;

UPDATE send_log s JOIN cap_takes c ON c.ref = CONCAT(s.campaign, '|', FLOOR(UNIX_TIMESTAMP(s.occurrence)), '|', s.grant_id)
SET s.scopes = c.scopes;

-- +goose Down
ALTER TABLE send_log
    DROP KEY send_log_template,
    DROP KEY send_log_user,
    DROP KEY send_log_inflight,
    DROP COLUMN inflight_grant,
    DROP COLUMN scopes,
    DROP COLUMN detail;
