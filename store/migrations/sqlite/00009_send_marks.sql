-- +goose Up
-- The send log is the write path's only ledger of a send (docs/store.md,
-- "The write path"): reason is a code of wxcampaign.Reason and detail the
-- free text; a row is written "inflight" just before its request goes out,
-- inflight_grant (the grant id while in flight, NULL after) is unique; the
-- row is the frequency-cap take, scopes the scopes it counts for (1
-- user_template, 2 user, 4 template); cap_takes is no longer written. Cap
-- takes made before are carried onto their send log rows by ref.
ALTER TABLE send_log ADD COLUMN detail TEXT NOT NULL DEFAULT '';
ALTER TABLE send_log ADD COLUMN scopes INTEGER NOT NULL DEFAULT 0;
ALTER TABLE send_log ADD COLUMN inflight_grant INTEGER NULL;

UPDATE send_log SET inflight_grant = grant_id
WHERE id IN (SELECT MIN(id) FROM send_log WHERE status = 'inflight' GROUP BY grant_id);

UPDATE send_log SET scopes = (SELECT c.scopes FROM cap_takes c
    WHERE c.ref = send_log.campaign || '|' || CAST(strftime('%s', substr(send_log.occurrence, 1, 19)) AS INTEGER) || '|' || send_log.grant_id)
WHERE EXISTS (SELECT 1 FROM cap_takes c
    WHERE c.ref = send_log.campaign || '|' || CAST(strftime('%s', substr(send_log.occurrence, 1, 19)) AS INTEGER) || '|' || send_log.grant_id);

CREATE UNIQUE INDEX send_log_inflight ON send_log (inflight_grant);
CREATE INDEX send_log_user ON send_log (openid, template_id, started_at, scopes, status);
CREATE INDEX send_log_template ON send_log (template_id, started_at, scopes, status);

-- +goose Down
DROP INDEX send_log_template;
DROP INDEX send_log_user;
DROP INDEX send_log_inflight;
ALTER TABLE send_log DROP COLUMN inflight_grant;
ALTER TABLE send_log DROP COLUMN scopes;
ALTER TABLE send_log DROP COLUMN detail;
