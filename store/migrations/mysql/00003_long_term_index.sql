-- +goose Up
-- The (openid, template_id) index of every grant served only the revoke of
-- long-term grants on a reject, yet cost a random B-tree insert for every
-- imported one-time credit. lt_openid holds the openid of long-term grants
-- only (NULL for one-time credits), so its index gets NULL entries that are
-- appended in order, and a revoke probes a small index.
ALTER TABLE grants ADD COLUMN lt_openid VARCHAR(128) NULL, DROP INDEX grants_user;
UPDATE grants SET lt_openid = openid WHERE kind = 'long_term';
CREATE INDEX grants_long_term ON grants (lt_openid, template_id);

-- +goose Down
DROP INDEX grants_long_term ON grants;
CREATE INDEX grants_user ON grants (openid, template_id);
ALTER TABLE grants DROP COLUMN lt_openid;
