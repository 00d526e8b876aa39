-- +goose Up
-- The fingerprint of the result first recorded under a request id: a later
-- result with the same id and another fingerprint is a conflict (HTTP 409),
-- not a retry. Rows recorded before this migration have '' (not compared).
ALTER TABLE subscription_requests ADD COLUMN fingerprint VARCHAR(64) NOT NULL DEFAULT '';

-- +goose Down
ALTER TABLE subscription_requests DROP COLUMN fingerprint;
