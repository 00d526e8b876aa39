-- +goose Up
-- The send log's reason is a code of the closed set wxcampaign.Reason; the
-- free text (a rule's error, WeChat's errmsg) goes to detail.
ALTER TABLE send_log ADD COLUMN detail VARCHAR(255) NOT NULL DEFAULT '' AFTER reason;

-- +goose Down
ALTER TABLE send_log DROP COLUMN detail;
